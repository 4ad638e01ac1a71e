"""The latent analysis as a job: after training, and as the ``analyse`` entry point.

``analyse_and_log`` runs inside the active MLflow run (the train job calls it right after
logging ``latents/latents.npy``). The ``analyse`` entry point re-runs the analysis on an
existing train run without retraining, e.g. with other thresholds, into a new run:

``mlflow run . -e analyse -P train_run=<run id> -P mu_threshold=0.5 --env-manager local``

Parameters: ``train_run`` (run id or ``newest``), ``case`` (with ``newest``: its case),
``mu_threshold``, ``hw_threshold``, ``estimate`` (histogram, fit, robust: which mu and hw the
thresholds judge), ``n_bins``. The new run is tagged ``entry_point=analyse``,
``train_run=<id>``, ``case`` and named ``analyse <case>``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from aelatent.arguments import (
    ArgumentParser,
    add_train_run_arguments,
    parse_int,
    parse_train_run_choice,
)
from aelatent.core.analysis import DEFAULT_THRESHOLDS, LatentAnalysis, analyse_latents
from aelatent.core.components import DominanceThresholds
from aelatent.core.histograms import DEFAULT_N_BINS
from aelatent.core.windows import WINDOW_ESTIMATORS
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import write_analysis
from aelatent.io.mlflow_native import (
    log_csv_table,
    log_train_dataset,
    set_description,
    train_run_line,
)
from aelatent.io.run_artifacts import load_latents, load_partitions
from aelatent.io.tracking import entry_point_run, resolve_train_run, run_entry_point
from aelatent.schema import WINDOWS_CSV, WINDOWS_TABLE

ENTRY_POINT = "analyse"
MAX_BINS = 10_000


def analyse_and_log(
    latents: np.ndarray,
    thresholds: DominanceThresholds = DEFAULT_THRESHOLDS,
    n_bins: int = DEFAULT_N_BINS,
    window_rows: np.ndarray | None = None,
) -> LatentAnalysis:
    """Analyse ``latents``; log artifacts, ``analysis_*`` params and metrics to the active run.

    ``window_rows``: the rows (training partition) the windows are estimated from.
    """
    if mlflow.active_run() is None:
        raise RuntimeError("analyse_and_log needs an active MLflow run")
    analysis = analyse_latents(
        latents, n_bins=n_bins, thresholds=thresholds, window_rows=window_rows
    )
    with tempfile.TemporaryDirectory(prefix="aelatent-analysis-") as tmp:
        write_analysis(analysis, Path(tmp))
        mlflow.log_artifacts(tmp)
        log_csv_table(Path(tmp) / WINDOWS_CSV, WINDOWS_TABLE)  # shown in the UI as a table
    mlflow.log_params(
        {
            "analysis_mu_threshold": thresholds.mu_abs,
            "analysis_hw_threshold": thresholds.hw,
            "analysis_estimate": thresholds.estimate,
            "analysis_n_bins": n_bins,
        }
    )
    mlflow.log_metrics(analysis.metrics())
    return analysis


@dataclass(frozen=True)
class AnalyseRequest:
    """Validated parameters of the ``analyse`` entry point."""

    train_run: str | None  # None: the newest finished train run (of ``case``)
    case: str | None
    thresholds: DominanceThresholds
    n_bins: int


def _positive_float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{name}={text!r} is not a number; expected a number > 0") from None
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{name}={text!r} is out of range; expected a finite number > 0")
    return value


def parse_args(argv: Sequence[str] | None) -> AnalyseRequest:
    parser = ArgumentParser(prog="aelatent analyse", description=__doc__)
    add_train_run_arguments(parser)
    parser.add_argument(
        "--mu-threshold", default=str(DEFAULT_THRESHOLDS.mu_abs), help="dominant if |mu| >= this"
    )
    parser.add_argument(
        "--hw-threshold", default=str(DEFAULT_THRESHOLDS.hw), help="dominant if hw >= this"
    )
    parser.add_argument(
        "--estimate",
        default=DEFAULT_THRESHOLDS.estimate,
        help="window estimator (stats/windows.csv), also the mu and hw the "
        f"thresholds judge: {', '.join(WINDOW_ESTIMATORS)}",
    )
    parser.add_argument("--n-bins", default=str(DEFAULT_N_BINS), help="histogram bins")
    args = parser.parse_args(argv)
    n_bins = parse_int(args.n_bins, "n_bins", minimum=2)
    if n_bins > MAX_BINS:
        raise UserError(f"n_bins={n_bins} is out of range; expected an integer in [2, {MAX_BINS}]")
    thresholds = DominanceThresholds(
        mu_abs=_positive_float(args.mu_threshold, "mu_threshold"),
        hw=_positive_float(args.hw_threshold, "hw_threshold"),
        estimate=args.estimate,
    )
    train_run, case = parse_train_run_choice(args.train_run, args.case)
    return AnalyseRequest(
        train_run=train_run,
        case=case,
        thresholds=thresholds,
        n_bins=n_bins,
    )


def main(argv: Sequence[str] | None = None) -> str:
    """Re-analyse a train run's latents into a new ``analyse`` run; returns its run id."""
    request = parse_args(argv)
    train_run = resolve_train_run(request.train_run, request.case)
    run_id = train_run.info.run_id
    case = train_run.data.tags.get("case", "?")
    tags = {"train_run": run_id, "case": case}
    if "dataset" in train_run.data.tags:
        tags["dataset"] = train_run.data.tags["dataset"]
    with entry_point_run(ENTRY_POINT, f"analyse {case}", tags) as run:
        log_train_dataset(run_id)
        set_description(train_run_line(run_id))
        latents = load_latents(run_id)
        partitions = load_partitions(run_id, latents.shape[0])  # windows from the train rows
        window_rows = None if partitions is None else partitions == "train"
        analysis = analyse_and_log(latents, request.thresholds, request.n_bins, window_rows)
        print(
            f"aelatent analyse: train run {run_id} (case {case}): "
            f"{int(analysis.components.dominant.sum())} of {analysis.z_dim} components "
            f"dominant; logged to run {run.info.run_id}"
        )
        return run.info.run_id


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point(ENTRY_POINT, main, argv)


if __name__ == "__main__":
    cli()
