"""MLflow at the edge: entry-point runs, user-error handling, finding runs.

Every entry point goes through :func:`run_entry_point`, so a user mistake always ends the
same way: one line on stderr, exit code 2, the MLflow run (if any) marked FAILED with the
reason in the ``error`` tag, and whatever was already logged kept.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.errors import UserError

NEWEST = "newest"
ANY_CASE = "any"
USER_ERROR_EXIT_CODE = 2
ENTRY_POINT_TAG = "entry_point"
ERROR_TAG = "error"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports mistakes as :class:`UserError` instead of exiting on its own."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


def parse_float_list(text: str, name: str, *, positive: bool = True) -> list[float]:
    """``"1,1.5,2"`` -> ``[1.0, 1.5, 2.0]``; every value finite and (by default) > 0."""
    values: list[float] = []
    for part in str(text).split(","):
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"{name}={text!r}: {part.strip()!r} is not a number; give e.g. 1,1.5,2"
            ) from None
        if not math.isfinite(value):
            raise UserError(f"{name}={text!r}: {part.strip()!r} must be a finite number")
        if positive and value <= 0:
            raise UserError(f"{name}={text!r}: every value must be > 0, got {value:g}")
        values.append(value)
    return values


def parse_int(text: str, name: str, *, minimum: int) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise UserError(
            f"{name}={text!r} is not an integer; expected an integer >= {minimum}"
        ) from None
    if value < minimum:
        raise UserError(f"{name}={value} is out of range; expected an integer >= {minimum}")
    return value


def parse_train_run_choice(train_run: str, case: str) -> tuple[str | None, str | None]:
    """``train_run`` and ``case`` parameters: ``newest``/empty and ``any``/empty mean None
    (the newest finished train run, of any case), as :func:`resolve_train_run` takes them."""
    run, chosen_case = train_run.strip(), case.strip()
    return (
        None if run.lower() in ("", NEWEST) else run,
        None if chosen_case.lower() in ("", ANY_CASE) else chosen_case,
    )


def run_entry_point(
    entry_point: str, main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None
) -> None:
    """Call ``main`` and turn a :class:`UserError` into one line, a FAILED run and exit 2."""
    try:
        main(argv)
    except UserError as exc:
        fail_run(entry_point, str(exc))
    except KeyboardInterrupt:
        if mlflow.active_run() is not None:
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        print(f"aelatent {entry_point}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def fail_run(entry_point: str, message: str) -> NoReturn:
    """Mark the active (or ``mlflow run``-provided) run FAILED with the reason; exit 2."""
    print(f"aelatent {entry_point}: error: {message}", file=sys.stderr, flush=True)
    run_id = _current_run_id()
    if run_id is not None:
        try:
            client = MlflowClient()
            client.set_tag(run_id, ERROR_TAG, message[:5000])
            client.set_tag(run_id, ENTRY_POINT_TAG, entry_point)
            if mlflow.active_run() is not None:
                mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            else:
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        except MlflowException as tracking_error:  # the tracking store itself is unreachable
            print(
                f"aelatent {entry_point}: could not mark run {run_id} FAILED: "
                f"{str(tracking_error).splitlines()[0]}",
                file=sys.stderr,
            )
    raise SystemExit(USER_ERROR_EXIT_CODE)


def _current_run_id() -> str | None:
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id
    return os.environ.get("MLFLOW_RUN_ID") or None


@contextmanager
def entry_point_run(
    entry_point: str,
    run_name: str,
    tags: dict[str, str] | None = None,
    nested: bool = False,
    run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under ``mlflow run`` or with ``run_id``, continue) an entry point's run.

    Ends it FINISHED, FAILED (a user mistake also leaves its reason in the ``error`` tag) or
    KILLED (Ctrl-C); what was logged before stays.
    """
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=nested)
    try:
        mlflow.set_tags({ENTRY_POINT_TAG: entry_point, "mlflow.runName": run_name, **(tags or {})})
        yield run
    except UserError as exc:
        mlflow.set_tag(ERROR_TAG, str(exc)[:5000])
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def get_run(run_id: str, *, expected_entry_point: str | None = None) -> Run:
    """The run with this id; a clear error when it does not exist or is of another kind."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise UserError(
            f"run {run_id!r} does not exist in the tracking store {mlflow.get_tracking_uri()}"
        ) from None
    kind = run.data.tags.get(ENTRY_POINT_TAG)
    if expected_entry_point is not None and kind != expected_entry_point:
        raise UserError(
            f"run {run_id!r} is a {kind or 'untagged'} run, not a {expected_entry_point} run"
        )
    return run


def newest_finished_run(entry_point: str, case: str | None = None) -> Run:
    """The newest FINISHED run of an entry point (optionally of one case), in any experiment."""
    filters = [f"tags.{ENTRY_POINT_TAG} = '{entry_point}'", "attributes.status = 'FINISHED'"]
    if case:
        filters.append(f"tags.`case` = '{case}'")
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=" and ".join(filters),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        which = f"{entry_point} run" + (f" of case {case}" if case else "")
        raise UserError(
            f"no finished {which} in {mlflow.get_tracking_uri()}: run "
            f"`mlflow run . -e train -P case={case or 'I'} --env-manager local` first"
        )
    return runs[0]


def resolve_train_run(train_run: str | None, case: str | None = None) -> Run:
    """An explicit train run id, or the newest finished train run (of ``case``)."""
    if train_run:
        run = get_run(train_run, expected_entry_point="train")
        if run.info.status != "FINISHED":
            raise UserError(f"train run {train_run!r} is {run.info.status}, not FINISHED")
        return run
    return newest_finished_run("train", case)
