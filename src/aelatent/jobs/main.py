"""The ``main`` entry point: the whole study on the built-in faces in one command.

``mlflow run . -e main --env-manager local`` (what ``make demo`` runs): train case I and II,
evaluate every sampler on each, search b on each, write the report. Every step is a child
run of one parent run "main study", named and tagged like the stand-alone entry points, so
the MLflow UI shows the study as one tree and every child compares with stand-alone runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import mlflow

from aelatent.arguments import ArgumentParser, parse_int
from aelatent.io.tracking import entry_point_run, run_entry_point
from aelatent.jobs import evaluate, search, train
from aelatent.jobs.report import print_where, write_report
from aelatent.limits import MAX_SEED, SEED_WHY
from aelatent.reporting.output_folder import check_output_folder

if TYPE_CHECKING:
    from aelatent.jobs.evaluate.request import EvaluateRequest
    from aelatent.jobs.report import ReportResult
    from aelatent.jobs.search.request import SearchRequest
    from aelatent.jobs.train import TrainRequest

RequestT = TypeVar("RequestT", "EvaluateRequest", "SearchRequest")

CASES = ("I", "II")
AUTO = "auto"
DEFAULT_N_SAMPLES = "200000"
DEFAULT_N_TRIALS = "30"


@dataclass(frozen=True)
class MainRequest:
    """Every step's validated request, built once before any training.

    The evaluate and search requests are made for ``train_run = newest``; each is pointed at
    its case's train run (:func:`for_train_run`) once that run exists.
    """

    data: str
    output: Path | None
    train: dict[str, TrainRequest]  # per case
    evaluate: EvaluateRequest
    search: SearchRequest


def parse_args(argv: Sequence[str] | None) -> MainRequest:
    """main's parameters, each handed to the parser of the job it belongs to (so a value
    means the same as in the stand-alone entry point, and a typo fails here, in a second)."""
    parser = ArgumentParser(prog="aelatent main", description=__doc__)
    parser.add_argument("--data", default="orl", help="'orl' (built-in faces) or a folder/zip")
    parser.add_argument("--epochs", default=AUTO, help="'auto' = each case YAML's epochs")
    parser.add_argument("--image-size", default=AUTO, help="'auto' = each case YAML's size")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--n-samples", default=DEFAULT_N_SAMPLES, help="vectors per sampler/b")
    parser.add_argument("--n-trials", default=DEFAULT_N_TRIALS, help="Optuna trials per case")
    parser.add_argument("--output", default=AUTO, help="report folder (reports/<timestamp>)")
    args = parser.parse_args(argv)
    parse_int(args.seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY)
    trains = {
        case: train.build_request(case, args.data, args.epochs, args.image_size, args.seed)
        for case in CASES
    }
    # n_samples is evaluate's (vectors per sampler and scale); the search keeps its own
    # default per trial, which its exact curve and interval are sized for
    return MainRequest(
        data=args.data,
        output=None if args.output in ("", AUTO) else Path(args.output),
        train=trains,
        evaluate=evaluate.parse_args(
            ["--sampler", "all", "--n-samples", args.n_samples, "--seed", args.seed]
        ),
        search=search.parse_args(["--n-trials", args.n_trials, "--seed", args.seed]),
    )


def for_train_run(request: RequestT, train_run: str) -> RequestT:
    """An evaluate or search request pointed at one train run (its logged params too)."""
    changes: dict[str, Any] = {"train_run": train_run, "case": None}
    raw = getattr(request, "raw", None)
    if raw is not None:
        changes["raw"] = {**raw, "train_run": train_run}
    return replace(request, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    request = parse_args(argv)
    if request.output is not None:  # a bad folder fails now, not after the training
        check_output_folder(request.output.resolve())
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    # a user mistake in any step also lands in this run's `error` tag (entry_point_run)
    with entry_point_run("main", "main study", {"dataset": request.data}) as parent:
        report = run_study(request, seconds)
        seconds["total"] = time.perf_counter() - started
        mlflow.log_metrics({f"seconds/{k}": v for k, v in seconds.items()})
        mlflow.set_tag("report_run", report.run_id)
    print(
        f"\naelatent main: the study took {seconds['total']:.0f} s "
        f"(parent run {parent.info.run_id})."
    )
    print_where(report)
    print(f"MLflow UI: {ui_command(mlflow.get_tracking_uri(), parent.info.experiment_id)}")


def run_study(request: MainRequest, seconds: dict[str, float]) -> ReportResult:
    """Every step as a child run of the active (parent) run, timed into ``seconds``."""
    children: list[str] = []
    trains: dict[str, str] = {}
    for case in CASES:
        with _timed(seconds, f"train_{case}"):
            trains[case] = run_train(request.train[case])
        children.append(trains[case])
    for case in CASES:
        with _timed(seconds, f"evaluate_{case}"):
            children.append(run_evaluate(for_train_run(request.evaluate, trains[case])))
    for case in CASES:
        with _timed(seconds, f"search_{case}"):
            children.append(run_search(for_train_run(request.search, trains[case])))
    with _timed(seconds, "report"):
        return write_report(None, children, request.output, nested=True)


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Record a step's wall time, so the parent run says where the demo's minutes go."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = time.perf_counter() - started


def run_train(request: TrainRequest) -> str:
    """Train one case as a nested run (in this process); returns the train run id."""
    return train.train(request, train.load_training_images(request), nested=True)


def run_evaluate(request: EvaluateRequest) -> str:
    """Evaluate every sampler on one train run as a nested run; returns its run id."""
    return evaluate.evaluate(request, evaluate.load_train_inputs(request), nested=True)


def run_search(request: SearchRequest) -> str:
    """Search b on one train run as a nested run, its trials nested in it; returns its run id."""
    objective, target = search.prepare(request)
    return search.search(request, objective, target, nested=True)


RUNS_TABLE = "?workflowType=machine_learning"  # MLflow 3's UI opens on GenAI otherwise


def ui_command(tracking_uri: str, experiment_id: str) -> str:
    """How to open the MLflow UI on this tracking store, at the experiment's runs table."""
    page = f"#/experiments/{experiment_id}{RUNS_TABLE}"
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri.rstrip('/')}/{page} (a tracking server)"
    return f"mlflow ui --backend-store-uri {tracking_uri}  then open http://127.0.0.1:5000/{page}"


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("main", main, argv)


if __name__ == "__main__":
    cli()
