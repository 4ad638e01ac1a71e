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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aelatent.io.tracking import ArgumentParser, entry_point_run, parse_int, run_entry_point
from aelatent.limits import MAX_SEED, SEED_WHY

if TYPE_CHECKING:
    from aelatent.jobs.report import ReportResult

CASES = ("I", "II")
AUTO = "auto"
DEFAULT_N_SAMPLES = "200000"
DEFAULT_N_TRIALS = "30"
PLACEHOLDER_RUN = "newest"


@dataclass(frozen=True)
class MainRequest:
    """Validated parameters; every step's own arguments are checked before any training."""

    data: str
    epochs: str
    image_size: str
    seed: str
    n_samples: str
    n_trials: str
    output: Path | None

    def train_argv(self, case: str) -> list[str]:
        return [
            "--case",
            case,
            "--data",
            self.data,
            "--epochs",
            self.epochs,
            "--image-size",
            self.image_size,
            "--seed",
            self.seed,
        ]

    def evaluate_argv(self, train_run: str) -> list[str]:
        return [
            "--train-run",
            train_run,
            "--sampler",
            "all",
            "--n-samples",
            self.n_samples,
            "--seed",
            self.seed,
        ]

    def search_argv(self, train_run: str) -> list[str]:
        """``n_samples`` is evaluate's (vectors per sampler and scale); the search keeps its own
        default per trial, which its exact curve and interval are sized for."""
        return [
            "--train-run",
            train_run,
            "--n-trials",
            self.n_trials,
            "--seed",
            self.seed,
        ]


def parse_args(argv: Sequence[str] | None) -> MainRequest:
    from aelatent.jobs import evaluate, search, train

    parser = ArgumentParser(prog="aelatent main", description=__doc__)
    parser.add_argument("--data", default="orl", help="'orl' (built-in faces) or a folder/zip")
    parser.add_argument("--epochs", default=AUTO, help="'auto' = each case YAML's epochs")
    parser.add_argument("--image-size", default=AUTO, help="'auto' = each case YAML's size")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--n-samples", default=DEFAULT_N_SAMPLES, help="vectors per sampler/b")
    parser.add_argument("--n-trials", default=DEFAULT_N_TRIALS, help="Optuna trials per case")
    parser.add_argument("--output", default=AUTO, help="report folder (reports/<timestamp>)")
    args = parser.parse_args(argv)
    request = MainRequest(
        data=args.data,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        n_samples=args.n_samples,
        n_trials=args.n_trials,
        output=None if args.output in ("", AUTO) else Path(args.output),
    )
    parse_int(request.seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY)
    for case in CASES:  # a typo fails here in a second, not after the training
        train.parse_args(request.train_argv(case))
    evaluate.parse_args(request.evaluate_argv(PLACEHOLDER_RUN))
    search.parse_args(request.search_argv(PLACEHOLDER_RUN))
    return request


def main(argv: Sequence[str] | None = None) -> None:
    import mlflow

    from aelatent.jobs.report import print_where
    from aelatent.reporting.render import check_output_folder

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
    print(f"MLflow UI: {ui_command(mlflow.get_tracking_uri())}  then open http://127.0.0.1:5000")


def run_study(request: MainRequest, seconds: dict[str, float]) -> ReportResult:
    """Every step as a child run of the active (parent) run, timed into ``seconds``."""
    from aelatent.jobs.report import write_report

    children: list[str] = []
    trains: dict[str, str] = {}
    for case in CASES:
        with _timed(seconds, f"train_{case}"):
            trains[case] = run_train(request.train_argv(case))
        children.append(trains[case])
    for case in CASES:
        with _timed(seconds, f"evaluate_{case}"):
            children.append(run_evaluate(request.evaluate_argv(trains[case])))
    for case in CASES:
        with _timed(seconds, f"search_{case}"):
            children.append(run_search(request.search_argv(trains[case])))
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


def run_train(argv: list[str]) -> str:
    """Train one case as a nested run (in this process); returns the train run id."""
    from aelatent.jobs import train

    request = train.parse_args(argv)
    return train.train(request, train.load_training_images(request), nested=True)


def run_evaluate(argv: list[str]) -> str:
    """Evaluate every sampler on one train run as a nested run; returns its run id."""
    from aelatent.jobs import evaluate

    request = evaluate.parse_args(argv)
    return evaluate.evaluate(request, evaluate.load_train_inputs(request), nested=True)


def run_search(argv: list[str]) -> str:
    """Search b on one train run as a nested run, its trials nested in it; returns its run id."""
    from aelatent.jobs import search

    request = search.parse_args(argv)
    objective, target = search.prepare(request)
    return search.search(request, objective, target, nested=True)


def ui_command(tracking_uri: str) -> str:
    """How to open the MLflow UI on this tracking store."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} (a tracking server)"
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("main", main, argv)


if __name__ == "__main__":
    cli()
