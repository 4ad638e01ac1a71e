"""MLflow at the edge: entry-point runs, user-error handling, finding runs.

Every entry point goes through :func:`run_entry_point`, so a user mistake always ends the
same way: one line on stderr, exit code 2, the MLflow run (if any) marked FAILED with the
reason in the ``error`` tag, and whatever was already logged kept. Ctrl-C and SIGTERM end
the run KILLED with the signal in the ``error`` tag (exit 130 / 143); an unusable tracking
store is one line naming ``MLFLOW_TRACKING_URI`` (exit 2); a full disk or a vanished SQLite
store is one line naming the path (exit 2, the run FAILED where the store takes it, else the
line says why not); any other failure (a bug) is tagged FAILED with its one-line message and
keeps its traceback.

Every job first closes the runs of the store whose process is known dead
(:func:`aelatent.io.lifecycle.close_dead_runs`), and every top-level run records its owner
and a heartbeat, so a job killed with SIGKILL leaves no run RUNNING past the next job.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.arguments import check_case_name
from aelatent.console import quiet_native_logs
from aelatent.errors import UserError
from aelatent.io.exhaustion import Exhausted, exhausted_resource, local_artifact_folder
from aelatent.io.experiment import choose_experiment, mark_experiment
from aelatent.io.lifecycle import (
    close_dead_runs,
    failure_reason,
    heartbeat,
    keep_killed_under_launcher,
    mlflow_run_launcher,
    no_http_retries,
    quiet_store_error_logs,
    shown_uri,
    stop_exit_code,
    stop_reason,
    stop_signals,
    tracking_store_problem,
)
from aelatent.io.mlflow_native import is_model_uri, train_run_of_model

USER_ERROR_EXIT_CODE = 2
ENTRY_POINT_TAG = "entry_point"
ERROR_TAG = "error"
_started_runs: list[str] = []  # top-level runs entry_point_run started in this job
_artifact_folders: list[Path] = []  # their local artifact folders: where a full disk may be


@dataclass(frozen=True)
class Closing:
    """What :func:`close_run` did: the run (None: there was none), the status it has now (None:
    unknown, or still RUNNING), and why the store refused what it refused (one line that names
    the tracking URI): the new status (``problem``), or only the ``error`` tag (``tag_problem``)."""

    run_id: str | None
    status: str | None = None
    problem: str | None = None
    tag_problem: str | None = None

    @property
    def closed(self) -> bool:
        return self.run_id is not None and self.problem is None

    def outcome(self, status: int, reason: str = "") -> str:
        """The end of the job's error line: where the run stands now (``reason``: the line's
        own, not repeated when the store refused for the same reason)."""
        if self.run_id is None:
            return ""
        if self.problem is None:
            untagged = (
                ""
                if self.tag_problem is None
                else f" (its error tag could not be written: {_same(self.tag_problem, reason)})"
            )
            return f"; run {self.run_id} is {self.status}{untagged}, what it logged is kept"
        return (
            f"; could not mark run {self.run_id} {RunStatus.to_string(status)} "
            f"({_same(self.problem, reason)}): it stays RUNNING until a job started against "
            "that store closes it"
        )


def _same(problem: str, reason: str) -> str:
    """``problem``, or "the same reason" when it says what ``reason`` said (the free space in
    parentheses may have changed in between)."""
    return "the same reason" if problem.partition(" (")[0] == reason.partition(" (")[0] else problem


def run_entry_point(
    entry_point: str, main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None
) -> None:
    """Call ``main``; every way it can go wrong ends in one line and a closed, tagged run.

    - :class:`UserError`: one line, the run FAILED with the reason in ``error``, exit 2;
    - Ctrl-C or SIGTERM: one line, the run KILLED with the signal in ``error``, exit 130/143;
    - an unusable tracking store: one line naming the URI and what to check, exit 2;
    - a full disk (ENOSPC, EDQUOT, SQLite's "database or disk is full") or a vanished SQLite
      store: one line naming the path and what is full or missing, the run FAILED where the
      store still takes it (else the line says why it could not be closed), exit 2;
    - anything else (a bug): the run FAILED with the one-line message in ``error``, and the
      exception goes on with its traceback.

    First, runs left RUNNING by a dead process are closed KILLED (best effort). Under
    ``mlflow run``, the job stops (KILLED) when its launcher ends first.
    """
    _started_runs.clear()
    _artifact_folders.clear()
    quiet_native_logs()  # before TensorFlow is imported
    quiet_store_error_logs()  # a store error is reported once, below
    launcher = os.environ.get("MLFLOW_RUN_ID")  # `mlflow run`'s; end_run() forgets it
    launcher_pid = mlflow_run_launcher()
    # stays in force while the run is closed: a repeat is ignored
    with stop_signals(launcher_pid):
        try:
            _close_dead_runs(entry_point)
            main(argv)
        except UserError as exc:
            fail_run(entry_point, str(exc))
        except KeyboardInterrupt as exc:
            reason = stop_reason(exc)
            closing = close_run(entry_point, RunStatus.KILLED, reason)
            if (
                closing.closed
                and closing.run_id == launcher
                and (launcher_pid is None or os.getppid() == launcher_pid)
            ):
                keep_killed_under_launcher(str(closing.run_id), reason)
            where = closing.outcome(RunStatus.KILLED)
            print(f"aelatent {entry_point}: error: {reason}{where}", file=sys.stderr, flush=True)
            raise SystemExit(stop_exit_code(exc)) from None
        except Exception as exc:
            exhausted = _exhausted(exc)
            if exhausted is not None:  # a full disk or a vanished store: not a bug
                closing = close_run(entry_point, RunStatus.FAILED, exhausted.message)
                where = closing.outcome(RunStatus.FAILED, exhausted.message)
                print(
                    f"aelatent {entry_point}: error: {exhausted.message}{where}",
                    file=sys.stderr,
                    flush=True,
                )
                raise SystemExit(USER_ERROR_EXIT_CODE) from None
            problem = tracking_store_problem(exc, mlflow.get_tracking_uri())
            if problem is not None:  # nothing can be tagged in a store that cannot be used
                print(f"aelatent {entry_point}: error: {problem}", file=sys.stderr, flush=True)
                raise SystemExit(USER_ERROR_EXIT_CODE) from None
            closing = close_run(entry_point, RunStatus.FAILED, failure_reason(exc))
            if closing.problem is not None:  # the traceback follows: say where the run stands
                print(
                    f"aelatent {entry_point}: {closing.outcome(RunStatus.FAILED).lstrip('; ')}",
                    file=sys.stderr,
                    flush=True,
                )
            raise
        finally:
            _started_runs.clear()
            _artifact_folders.clear()


def _exhausted(exc: BaseException) -> Exhausted | None:
    """A full disk or a vanished store behind ``exc``, placed among the folders this job
    writes to (its runs' local artifact folders, the temporary folder, the current one)."""
    places = [*_artifact_folders, Path(tempfile.gettempdir()), Path.cwd()]
    return exhausted_resource(exc, mlflow.get_tracking_uri(), places)


def _close_dead_runs(entry_point: str) -> None:
    """Close the runs whose process is dead; never in the way of the job (a store that cannot
    be used is reported by the job itself, without waiting on retries here)."""
    with no_http_retries(), suppress(Exception):
        close_dead_runs(by=f"aelatent {entry_point}, process {os.getpid()}")


def fail_run(entry_point: str, message: str) -> NoReturn:
    """Mark the active (or ``mlflow run``-provided) run FAILED with the reason; exit 2. The
    line is printed first (closing may wait on the store); a store that refuses adds one."""
    print(f"aelatent {entry_point}: error: {message}", file=sys.stderr, flush=True)
    closing = close_run(entry_point, RunStatus.FAILED, message)
    if closing.problem is not None:
        print(
            f"aelatent {entry_point}: {closing.outcome(RunStatus.FAILED).lstrip('; ')}",
            file=sys.stderr,
            flush=True,
        )
    raise SystemExit(USER_ERROR_EXIT_CODE)


def close_run(entry_point: str, status: int, message: str) -> Closing:
    """End the active (or ``mlflow run``-provided) run with ``status`` and ``message`` in its
    ``error`` tag; a run already ended (by :func:`entry_point_run`) keeps its status and tag.
    The status first: a store with room for an update but not for a new tag (a full disk)
    still ends the run. Prints nothing: the caller puts the outcome into its one line."""
    run_id = _current_run_id()
    if run_id is None:
        return Closing(None)
    refused: list[BaseException] = []

    def attempt(write: Callable[[], object]) -> None:
        try:
            write()
        except Exception as tracking_error:  # the store itself failed: said in the outcome
            refused.append(tracking_error)

    name = RunStatus.to_string(status)
    client = MlflowClient()
    while mlflow.active_run() is not None:  # innermost first: nested runs end too
        attempt(lambda: mlflow.set_tag(ERROR_TAG, message[:5000]))
        attempt(lambda: mlflow.end_run(name))  # forgets the run even when the store refuses
    try:
        run = client.get_run(run_id)
        if run.info.status == "RUNNING":
            attempt(lambda: client.set_terminated(run_id, name))
        if ERROR_TAG not in run.data.tags:
            attempt(lambda: client.set_tag(run_id, ERROR_TAG, message[:5000]))
        if ENTRY_POINT_TAG not in run.data.tags:
            attempt(lambda: client.set_tag(run_id, ENTRY_POINT_TAG, entry_point))
        now = client.get_run(run_id)
    except Exception as tracking_error:  # cannot even be read: the status is unknown
        return Closing(run_id, problem=_store_refusal(tracking_error))
    last = refused[-1] if refused else None
    if now.info.status == "RUNNING":
        return Closing(run_id, problem=_store_refusal(last))
    tagged = ERROR_TAG in now.data.tags
    return Closing(run_id, now.info.status, tag_problem=None if tagged else _store_refusal(last))


def _store_refusal(tracking_error: BaseException | None) -> str:
    """Why the tracking store refused a write: one line naming the store."""
    uri = mlflow.get_tracking_uri()
    if tracking_error is None:
        return f"the store did not take it; MLFLOW_TRACKING_URI={shown_uri(uri)}"
    exhausted = exhausted_resource(tracking_error, uri, during=False)
    why = exhausted.message if exhausted else failure_reason(tracking_error)
    if "MLFLOW_TRACKING_URI=" not in why:
        why += f"; MLFLOW_TRACKING_URI={shown_uri(uri)}"
    return why


def _current_run_id() -> str | None:
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id
    return os.environ.get("MLFLOW_RUN_ID") or (_started_runs[-1] if _started_runs else None)


@contextmanager
def entry_point_run(
    entry_point: str,
    run_name: str,
    tags: dict[str, str] | None = None,
    nested: bool = False,
    run_id: str | None = None,
    owned: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, under ``mlflow run`` or with ``run_id``, continue) an entry point's run.

    Ends it FINISHED, FAILED or KILLED (Ctrl-C, SIGTERM) with the reason in the ``error``
    tag (a user mistake's message, the signal, or a bug's one-line message); what was logged
    before stays. A top-level run (or, with ``owned``, a nested one) is tagged with this
    process as its owner and keeps a heartbeat while it runs
    (:func:`aelatent.io.lifecycle.live_owner` tells a live run from an interrupted one; a
    nested run belongs to its parent's owner).
    """
    top_level = mlflow.active_run() is None
    if top_level and run_id is None and not os.environ.get("MLFLOW_RUN_ID"):
        choose_experiment()  # `aelatent` unless MLFLOW_EXPERIMENT_NAME/ID say otherwise
    run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=nested)
    if top_level:
        _started_runs.append(run.info.run_id)
        if (folder := local_artifact_folder(run.info.artifact_uri)) is not None:
            _artifact_folders.append(folder)
        mark_experiment(run.info.experiment_id)  # the UI opens it on the runs table
    try:
        mlflow.set_tags({ENTRY_POINT_TAG: entry_point, "mlflow.runName": run_name, **(tags or {})})
        with heartbeat(run.info.run_id) if owned or top_level else nullcontext():
            yield run
    except UserError as exc:
        _end_active_run(RunStatus.FAILED, str(exc))
        raise
    except KeyboardInterrupt as exc:
        _end_active_run(RunStatus.KILLED, stop_reason(exc))
        raise
    except Exception as exc:  # a full disk's or a vanished store's one line, else the bug's
        exhausted = _exhausted(exc)
        _end_active_run(
            RunStatus.FAILED, failure_reason(exc) if exhausted is None else exhausted.message
        )
        raise
    except BaseException as exc:
        _end_active_run(RunStatus.FAILED, failure_reason(exc))
        raise
    else:
        mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def _end_active_run(status: int, message: str) -> None:
    """Tag and end the active run; a failing store must not hide the exception being raised."""
    with suppress(Exception):  # the original exception says more
        mlflow.set_tag(ERROR_TAG, message[:5000])
    with suppress(Exception):
        mlflow.end_run(RunStatus.to_string(status))


def get_run(run_id: str, *, expected_entry_point: str | None = None) -> Run:
    """The run with this id; a clear error when it does not exist, is deleted or is of
    another kind (an unreachable store raises on, for :func:`run_entry_point` to report)."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise UserError(
            f"run {run_id!r} does not exist in the tracking store {mlflow.get_tracking_uri()}"
        ) from None
    if run.info.lifecycle_stage == "deleted":
        raise UserError(
            f"run {run_id!r} is deleted (in the trash of the tracking store): restore it with "
            f"`mlflow runs restore --run-id {run_id}`, or choose another run"
        )
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
        filters.append(f"tags.`case` = '{check_case_name(case)}'")
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
    """An explicit train run id, a registered model version (``models:/aelatent-case-I/3``,
    ``models:/aelatent-case-I@champion``: the run that logged it), or the newest finished
    train run (of ``case``)."""
    if train_run:
        if is_model_uri(train_run):
            train_run = train_run_of_model(train_run)
        run = get_run(train_run, expected_entry_point="train")
        if run.info.status != "FINISHED":
            raise UserError(f"train run {train_run!r} is {run.info.status}, not FINISHED")
        return run
    return newest_finished_run("train", case)
