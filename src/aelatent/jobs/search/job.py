"""The ``search`` entry point: the b for which uniform [-b, b]^N best lands on the real latents.

``mlflow run . -e search --env-manager local -P n_trials=30``

An Optuna study over ``b`` (log scale) maximises :mod:`aelatent.core.objective` (box hit
weighted by how typical the sampled radius is among the real radii; ``objective=band``: box
hit AND a radius inside the real band) or, with ``mode=multi``, the pair (hit rate, radius
agreement). The exact curve of the same objective over the whole range cross-checks Optuna's
answer and gives the interval of b as good as the best within Monte Carlo error.
One parent MLflow run per worker, one nested child run per trial. The study
lives in an Optuna storage (default: an SQLite file beside the MLflow store), so running
the same command again continues it and several workers may share it at once; watch it
live with ``optuna-dashboard <storage URL>``.

This module runs the job (prepare, the worker's trials); its parts live beside it in the
package :mod:`aelatent.jobs.search` (parameters, study, one trial, artifacts, summary).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna

from aelatent.console import optuna_progress
from aelatent.core.knn_objective import GRID_POINTS as KNN_GRID_POINTS
from aelatent.core.knn_objective import (
    REFINE_POINTS,
    KnnSearchObjective,
)
from aelatent.core.objective import (
    DEFAULT_OBJECTIVE,
    RealSource,
    UniformSearchObjective,
    radius_band,
    theory_b,
)
from aelatent.core.radius import radii
from aelatent.core.sampler_registry import build_sampler, check_fits, spec_of
from aelatent.core.samplers import Sampler
from aelatent.core.verdict import make_splits, min_training_latents
from aelatent.core.verdict_objective import C2ST_OBJECTIVES, TwoSampleSearchObjective
from aelatent.core.verdict_objective import DEFAULT_SPLITS as C2ST_SPLITS
from aelatent.core.windows import (
    Windows,
    estimate_windows,
)
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import write_csv
from aelatent.io.mlflow_native import (
    log_csv_table,
    log_train_dataset,
    set_description,
    train_run_line,
)
from aelatent.io.tracking import (
    entry_point_run,
    resolve_train_run,
    run_entry_point,
)
from aelatent.io.train_run import read_run
from aelatent.jobs.evaluate import knn
from aelatent.jobs.evaluate.verdict import MAX_LATENTS as MAX_VERDICT_LATENTS
from aelatent.jobs.generator_search.job import search_generators
from aelatent.jobs.search.request import (
    GENERATORS,
    SearchObjective,
    SearchRequest,
    parse_args,
)
from aelatent.jobs.search.study import (
    TrialSeededSampler,
    check_existing_study,
    default_storage_url,
    default_study_name,
    open_storage,
    open_study,
    quiet_optuna,
    redact,
    study_definition,
)
from aelatent.jobs.search.summary import (
    log_summary,
)
from aelatent.jobs.search.trials import TrialRunner
from aelatent.schema import WINDOWS_CSV, WINDOWS_TABLE
from aelatent.serving.generator_model import log_search_generator

ENTRY_POINT = "search"


KNN_SWEEP = f"{KNN_GRID_POINTS}+{REFINE_POINTS}"  # param knn_sweep: the grid, then the refinement

# The tags no_best_b and best_b_unconfirmed keep their names for a scale search too: the
# report and older runs read them by name; their text names the axis.


@dataclass(frozen=True)
class StudyTarget:
    """Where the study lives and what it is about, resolved and checked before any work."""

    storage: optuna.storages.BaseStorage
    url: str
    name: str
    definition: dict[str, Any]
    resumed: bool
    train_run: str
    case: str
    n_real: int
    windows: Windows
    box: UniformSearchObjective  # the box test on the same windows: b_theory, log10 P(hit)
    family: Sampler  # the searched sampler at scale 1 (gmm: the mixture BIC chose)
    latents: np.ndarray  # the training latents (the generator's mvn and gmm fits)


def main(argv: Sequence[str] | None = None) -> None:
    request = parse_args(argv)
    if request.space == GENERATORS:  # families and settings, not one axis
        search_generators(request)
        return
    objective, target = prepare(request)
    search(request, objective, target)


def prepare(request: SearchRequest) -> tuple[SearchObjective, StudyTarget]:
    """Resolve the train run, open and check the study, build the objective; no MLflow run.

    Every mistake (unknown run, unreachable storage, a study made for another question,
    mismatched artifacts) surfaces here, before any MLflow run of the search is started.
    """
    run = resolve_train_run(request.train_run, request.case)  # the storage before the latents
    train_id, case = run.info.run_id, run.data.tags.get("case", "?")
    url = request.storage or default_storage_url(mlflow.get_tracking_uri())
    storage = open_storage(url)
    name = request.study_name or default_study_name(
        train_id, request.k, request.mode, request.objective, request.radius_band, request.sampler
    )
    definition = study_definition(request, train_id)
    resumed = check_existing_study(storage, name, definition)

    train = read_run(run, request.estimate, request.seed, check=_check_knn_sizes(request))
    windows = train.windows
    real_radii = np.concatenate([radii(train.latents), radii(train.heldout)])  # every real one
    band = radius_band(real_radii, request.radius_band)
    if not band.lo > 0:
        raise UserError(
            f"train run {train_id!r}: the real radii at percentile "
            f"{request.radius_band[0]:g} are 0; raise radius_band's lower percentile"
        )
    box_kind = DEFAULT_OBJECTIVE if request.replicate else request.objective
    box = UniformSearchObjective(
        windows.mu,
        windows.hw,
        request.k,
        band,
        request.n_samples,
        request.seed,
        kind=box_kind,
        real_radii=real_radii,
        source=RealSource(
            train.latents, radii(train.heldout), request.estimate, request.radius_band
        ),
    )
    objective: SearchObjective = box
    family = build_sampler(  # at scale 1
        request.sampler, train.mu, train.hw, train.latents, seed=request.seed
    )
    if request.knn:
        manifold = knn.build_manifold(train.latents, request.knn_k, request.knn_n, request.seed)
        objective = KnnSearchObjective(manifold, family.with_scale, request.knn_n, request.seed)
    elif request.replicate:  # a C2ST on cross-fitted splits
        objective = c2st_objective(request, train.latents)
    target = StudyTarget(
        storage,
        url,
        name,
        definition,
        resumed,
        train_id,
        case,
        len(real_radii),
        windows,
        box,
        family,
        train.latents,
    )
    return objective, target


def c2st_objective(request: SearchRequest, latents: np.ndarray) -> TwoSampleSearchObjective:
    """objective=c2st(_linear): the sampler refitted on each split's fit half (windows by the
    run's estimator, then the registry's builder), scored against its test half."""

    def fit(x: np.ndarray, seed: int) -> Sampler:
        windows = estimate_windows(x, request.estimate, seed=seed)
        return build_sampler(request.sampler, windows.mu, windows.hw, x, seed=seed)

    x = np.asarray(latents)
    if x.shape[0] > MAX_VERDICT_LATENTS:  # the verdict's cap (2,000 per half)
        rng = np.random.default_rng([request.seed, 31])
        rows = rng.choice(x.shape[0], MAX_VERDICT_LATENTS, replace=False)
        x = x[np.sort(rows)]
    splits = make_splits(x, C2ST_SPLITS, request.seed)
    return TwoSampleSearchObjective(request.objective, splits, fit, request.seed)


def _check_knn_sizes(request: SearchRequest) -> Callable[[str, np.ndarray], None] | None:
    """objective=knn: k must fit the real set, and a mixture its latents; c2st: enough latents
    for two halves (checked before the windows are estimated)."""
    if not request.replicate:
        return None

    def check(run_id: str, latents: np.ndarray) -> None:
        check_fits(request.sampler, run_id, int(latents.shape[0]))
        if request.knn:
            knn.check_knn_sizes(request.knn_k, request.knn_n, int(latents.shape[0]))
        else:
            need = min_training_latents([C2ST_OBJECTIVES[request.objective]])
            if latents.shape[0] < need:
                raise UserError(
                    f"objective={request.objective} needs at least {need} training latents "
                    f"(two halves); train run {run_id!r} has {latents.shape[0]}"
                )

    return check


def start_point(request: SearchRequest, box: UniformSearchObjective) -> tuple[float, str]:
    """The creator's first trial, a good start that TPE refines: radius theory's b for uniform,
    the fitted width (scale 1) for the others."""
    if spec_of(request.sampler).has_box:
        return theory_b(box.band.median, box.z_dim), "radius theory"
    return 1.0, "fitted width"


def search(
    request: SearchRequest,
    objective: SearchObjective,
    target: StudyTarget,
    *,
    nested: bool = False,
) -> str:
    """Run this worker's trials and log the parent run; returns its run id.

    With ``nested``, the search run is a child of the active run (the ``main`` study) and
    the trials' runs are children of the search run.
    """
    url, name, train_id, case = target.url, target.name, target.train_run, target.case
    box = target.box
    start, start_source = start_point(request, box)
    tags = {"train_run": train_id, "case": case}
    parent_tags = {
        **tags,
        "study_name": name,
        "optuna_storage": redact(url),
        "mode": request.mode,
    }
    print(
        f"aelatent search: study {name!r} in {redact(url)} "
        f"({'continued' if target.resumed else 'new'}); "
        f"watch it with: optuna-dashboard {redact(url)}",
        file=sys.stderr,
        flush=True,
    )
    what = "search" if spec_of(request.sampler).has_box else f"search {request.sampler}"
    with entry_point_run(ENTRY_POINT, f"{what} case {case}", parent_tags, nested=nested) as run:
        parent_id = run.info.run_id
        _log_params_once(
            {
                "train_run": train_id,
                "case": case,
                "k": f"{request.k:g}",
                "n_trials": request.n_trials,
                "n_samples": request.n_samples,
                "b_min": f"{request.b_min:g}",
                "b_max": f"{request.b_max:g}",
                "mode": request.mode,
                "sampler": request.sampler,
                "storage": redact(url),
                "study_name": name,
                "seed": request.seed,
                "z_dim": box.z_dim,
                "n_real": target.n_real,
                "estimate": request.estimate,
                "objective": request.objective,
                "radius_band": ",".join(f"{p:g}" for p in request.radius_band),
                **({"knn_k": request.knn_k, "knn_n": request.knn_n} if request.knn else {}),
                **({"knn_sweep": KNN_SWEEP} if request.replicate else {}),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(
                str(write_csv(Path(tmp) / WINDOWS_CSV, target.windows.columns())), "stats"
            )
            log_csv_table(Path(tmp) / WINDOWS_CSV, WINDOWS_TABLE)
        log_train_dataset(train_id)  # context "evaluation"
        set_description(train_run_line(train_id))
        with quiet_optuna():
            study, created = open_study(
                target.storage, name, target.definition, TrialSeededSampler(request.seed)
            )
            mlflow.set_tag("resumed", str(not created).lower())  # joined an existing study
            runner = TrialRunner(objective, box, request, name, parent_id, tags)
            n_trials = request.n_trials
            if created and request.b_min <= start <= request.b_max:
                # only the creator adds it, so concurrent workers do not evaluate it twice
                runner.add_fixed_trial(study, start, start_source)
                n_trials -= 1
            if n_trials:  # a bar on a terminal, a few lines in a log
                with optuna_progress(n_trials, "aelatent search") as progress:
                    study.optimize(runner, n_trials=n_trials, **progress)
        log_summary(study, objective, box, request, start, parent_id)

        log_search_generator(
            parent_id,
            train_id,
            target.windows.mu,
            target.windows.hw,
            sampler=request.sampler,
            latents=target.latents,
            fitted={request.sampler: target.family},
        )
        return parent_id


def _log_params_once(params: dict[str, Any]) -> None:
    """Log what ``mlflow run`` has not logged already (it logs the entry point's own values)."""
    active = mlflow.active_run()
    assert active is not None
    present = mlflow.get_run(active.info.run_id).data.params
    missing = {k: v for k, v in params.items() if k not in present}
    if missing:
        mlflow.log_params(missing)


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point(ENTRY_POINT, main, argv)


if __name__ == "__main__":
    cli()
