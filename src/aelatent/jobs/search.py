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

This module runs the job (prepare, the worker's trials, the summary); its parts live beside
it: :mod:`~aelatent.jobs.search_request` (the parameters), :mod:`~aelatent.jobs.search_study`
(the Optuna storage and study), :mod:`~aelatent.jobs.search_trials` (one trial as a nested
run) and :mod:`~aelatent.jobs.search_artifacts` (the CSVs and plots).

Why this size: prepare, the worker's loop and the summary (with its explanations when no b
scores) read the same objective and study; every part that stands alone is beside it.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
from optuna.study import Study
from optuna.trial import TrialState

from aelatent.console import optuna_progress
from aelatent.core.best_b_interval import best_b_interval
from aelatent.core.knn_objective import GRID_POINTS as KNN_GRID_POINTS
from aelatent.core.knn_objective import (
    REFINE_POINTS,
    KnnBest,
    KnnObjectiveValue,
    KnnSearchObjective,
    ReplicateObjective,
    refined_best,
)
from aelatent.core.objective import (
    DEFAULT_OBJECTIVE,
    BestB,
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
from aelatent.jobs.generator_search import search_generators
from aelatent.jobs.search_artifacts import (
    save_objective_curve,
    save_optuna_plots,
    write_curve_csv,
    write_pareto_csv,
    write_trials_csv,
)
from aelatent.jobs.search_request import (
    GENERATORS,
    Curve,
    SearchObjective,
    SearchRequest,
    Sweep,
    parse_args,
)
from aelatent.jobs.search_study import (
    TrialSeededSampler,
    best_trial,
    check_existing_study,
    default_storage_url,
    default_study_name,
    objective_of,
    open_storage,
    open_study,
    quiet_optuna,
    redact,
    study_definition,
)
from aelatent.jobs.search_trials import TrialRunner, finite_or_none
from aelatent.schema import TRIALS_TABLE, WINDOWS_CSV, WINDOWS_TABLE
from aelatent.serving.generator_model import log_search_generator

ENTRY_POINT = "search"


ARTIFACT_DIR = "search"


CURVE_POINTS = 600


NO_BEST_B_TAG = "no_best_b"  # why: the objective is 0 for every b in the range


OUTSIDE_TAG = "best_b_unconfirmed"  # Optuna's best is not as good as the exact optimum


RANGE_END_TAG = "best_at_range_end"  # the interval reaches b_min or b_max: widen the range


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
        _log_summary(study, objective, box, request, start, parent_id)

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


def summary_metrics(
    study: Study,
    objective: SearchObjective,
    box: UniformSearchObjective,
    request: SearchRequest,
    start: float,
    sweep: Sweep | None,
    parent_id: str,
) -> dict[str, float]:
    """The parent run's metrics: Optuna's best ``b`` (or ``scale``) beside the exact optimum
    and its interval, named after the axis (``best_b``, ``best_b_lo``, ... or ``best_scale``,
    ...). Nothing named ``best_*`` when the objective is 0 everywhere (there is no best).

    The box objectives: ``best_b_lo``..``best_b_hi`` carries the windows' and the real
    radii's error too (:func:`~aelatent.core.best_b_interval.best_b_interval`, a bootstrap
    over the real latents); the Monte Carlo plateau alone is ``best_b_mc_lo``..``_mc_hi``."""
    axis = request.axis
    best = best_trial(study)
    at_start = objective(start).objective
    trials = study.get_trials(deepcopy=False)
    metrics: dict[str, float] = {
        **(
            {"b_theory": start, "objective_at_b_theory": at_start}
            if axis == "b"
            else {"objective_at_scale_1": at_start}
        ),
        "n_windows_excluding_0": box.n_windows_excluding_zero,
        "radius_band_lo": box.band.lo,
        "radius_band_hi": box.band.hi,
        "radius_median": box.band.median,
        "n_trials_study": sum(t.state == TrialState.COMPLETE for t in trials),
        "n_trials_run": sum(t.user_attrs.get("mlflow_parent_run_id") == parent_id for t in trials),
    }
    if sweep is None:
        return metrics
    metrics.update(
        {
            f"best_{axis}_sweep": sweep.b,
            "best_value_sweep": sweep.value.objective,
            "best_value_sweep_se": sweep.value.objective_se,
            f"best_{axis}_lo": sweep.lo,
            f"best_{axis}_hi": sweep.hi,
        }
    )
    if objective is box and box.source is not None and isinstance(sweep, BestB):
        metrics.update(best_b_interval(box, sweep, request.b_min, request.b_max).metrics(axis))
    if best is None or not (objective_of(best) or 0.0) > 0:
        return metrics
    value = objective(float(best.params[axis]))
    agrees = sweep.contains(value.b)
    if isinstance(objective, ReplicateObjective) and isinstance(sweep, KnnBest):
        # the bracket's ends are significantly worse points: inside is not enough
        agrees = agrees and isinstance(value, KnnObjectiveValue) and sweep.as_good(value)
    metrics.update(
        {
            f"best_{axis}": value.b,
            "best_value": value.objective,
            "best_value_se": value.objective_se,
            **{f"best_{part}": x for part, x in value.parts().items()},
            "best_trial": best.number,
            f"best_{axis}_gap": value.b - sweep.b,
            f"best_{axis}_in_interval": float(agrees),
        }
    )
    log10_p = finite_or_none(box.log10_p_hit(value.b)) if axis == "b" else None
    if log10_p is not None:
        metrics["best_log10_p_hit"] = log10_p
    return metrics


def sweep_objective(
    objective: SearchObjective, request: SearchRequest
) -> tuple[Curve, Sweep | None]:
    """The objective over the whole range, and its best value with the interval as good.

    The box objectives: a dense exact maximiser and a 600-point curve for the plot; knn: one
    curve on the k-NN sweep's grid, refined around its best point (:func:`refined_best`).
    """
    if isinstance(objective, ReplicateObjective):
        grid = np.geomspace(request.b_min, request.b_max, KNN_GRID_POINTS)
        return refined_best(objective, objective.curve(grid))
    sweep = objective.best_in(request.b_min, request.b_max)
    return objective.curve(np.geomspace(request.b_min, request.b_max, CURVE_POINTS)), sweep


def _log_summary(
    study: Study,
    objective: SearchObjective,
    box: UniformSearchObjective,
    request: SearchRequest,
    start: float,
    parent_id: str,
) -> None:
    axis = request.axis
    curve, sweep = sweep_objective(objective, request)
    metrics = summary_metrics(study, objective, box, request, start, sweep, parent_id)
    parts = list(curve.parts())
    with tempfile.TemporaryDirectory() as tmp:  # artifacts first: nothing below can lose them
        out = Path(tmp)
        write_trials_csv(study, out / "trials.csv", parts, axis)
        write_curve_csv(curve, out / "objective_curve.csv", axis)
        if request.multi:
            write_pareto_csv(study, out / "pareto_front.csv", parts, axis)
        save_objective_curve(
            objective, curve, study, request, start, sweep, out / "objective_curve.png"
        )
        save_optuna_plots(study, out, request.multi, parts, axis)
        mlflow.log_artifacts(tmp, artifact_path=ARTIFACT_DIR)
        log_csv_table(out / "trials.csv", TRIALS_TABLE)  # every trial, as a UI table
    mlflow.log_metrics(metrics)
    if sweep is None:
        message = (
            explain_zero(box, request)
            if objective is box
            else explain_knn_zero(request)
            if request.knn
            else explain_c2st_zero(request)
        )
        mlflow.set_tag(NO_BEST_B_TAG, message[:5000])
        print(f"aelatent search: no best {axis}: {message}", file=sys.stderr)
        return
    _warn_at_range_end(sweep, request)
    where = (
        f"as good within error for {axis} in"
        if objective is box
        else "the optimum lies in"  # the refined sweep's bracket
    )
    exact = (
        f"{'exact optimum' if objective is box else 'best point of the refined sweep'} of the "
        f"sampled objective {axis} = {sweep.b:.4g} ({sweep.value.objective:.4g} +- "
        f"{sweep.value.objective_se:.2g}), {where} [{sweep.lo:.4g}, {sweep.hi:.4g}]"
    )
    best = f"best_{axis}"
    if best not in metrics:
        mlflow.set_tag(OUTSIDE_TAG, "every Optuna trial scored 0")
        print(
            f"aelatent search: every Optuna trial scored 0, yet the {exact}; run more trials "
            "or narrow b_min..b_max",
            file=sys.stderr,
        )
        return
    start_text = f"radius theory b = {start:.4g}" if axis == "b" else "fitted width scale = 1"
    named = axis if axis == "b" else f"{request.sampler} {axis}"
    # the headline is the sweep's best with its own interval; Optuna's answer is what it is,
    # one trial's point (it may lie outside that interval: said below)
    print(
        f"aelatent search: best {named} = {sweep.b:.4g} [{metrics[f'{best}_lo']:.4g}, "
        f"{metrics[f'{best}_hi']:.4g}] "
        f"({exact}); Optuna's best trial {metrics['best_trial']:g}: {axis} = "
        f"{metrics[best]:.4g} (objective {metrics['best_value']:.4g} +- "
        f"{metrics['best_value_se']:.2g}); {start_text}; "
        f"{metrics['n_trials_study']:g} trials in the study",
        file=sys.stderr,
    )
    if not metrics[f"{best}_in_interval"]:
        mlflow.set_tag(
            OUTSIDE_TAG,
            f"Optuna's best {axis} {metrics[best]:.4g} is outside [{sweep.lo:.4g}, {sweep.hi:.4g}]",
        )
        print(
            f"aelatent search: Optuna's best {axis} {metrics[best]:.4g} is outside the interval "
            "of the exact optimum; run more trials",
            file=sys.stderr,
        )


def _warn_at_range_end(sweep: Sweep, request: SearchRequest) -> None:
    """Tag and say when the interval of the best reaches an end of the searched range: the
    optimum may lie beyond it (nothing significantly worse was seen on that side)."""
    ends = [
        f"{name}={end:g}"
        for name, edge, end in (
            ("b_min", sweep.lo, request.b_min),
            ("b_max", sweep.hi, request.b_max),
        )
        if math.isclose(edge, end, rel_tol=1e-9)
    ]
    if not ends:
        return
    message = (
        f"the interval of the best {request.axis} reaches {' and '.join(ends)}: the optimum may "
        "lie outside the searched range; widen b_min..b_max"
    )
    mlflow.set_tag(RANGE_END_TAG, message)
    print(f"aelatent search: {message}", file=sys.stderr)


def explain_zero(objective: UniformSearchObjective, request: SearchRequest) -> str:
    """Why no b scores: which of the two conditions fails where.

    Both parts come from the sampled vectors themselves, not from a grid of b (which steps
    over a narrow band when the range is wide): vector j's radius b |y_j| is in the real band
    for b in [band.lo / |y_j|, band.hi / |y_j|], where its radius weight is > 0; it hits for
    b in [hit_lo_j, hit_hi_j], so the hit rate is largest at b_min or at one of those starts.
    """
    b_min, b_max = request.b_min, request.b_max
    norm = objective.norm[objective.norm > 0]
    radius_from, radius_to = objective.band.lo / norm, objective.band.hi / norm
    overlaps = (radius_from <= b_max) & (radius_to >= b_min)
    radius_text = (
        f"the radii alone match for b in [{max(b_min, radius_from[overlaps].min()):.3g}, "
        f"{min(b_max, radius_to[overlaps].max()):.3g}]"
        if overlaps.any()
        else "no b in the range matches the real radii"
    )
    hits = objective.hit_lo <= objective.hit_hi
    starts, ends = np.sort(objective.hit_lo[hits]), np.sort(objective.hit_hi[hits])
    at = np.concatenate([[b_min], starts[(starts > b_min) & (starts <= b_max)]])
    n_hit = np.searchsorted(starts, at, side="right") - np.searchsorted(ends, at, side="left")
    return (
        f"the objective is 0 for every b in [{b_min:g}, {b_max:g}]: at "
        f"k={request.k:g} the hit rate is at most {n_hit.max() / objective.n_samples:.3g}, with "
        f"{objective.n_windows_excluding_zero} of {objective.z_dim} hit windows excluding 0 "
        f"(the real region is off the origin), and {radius_text}. No uniform b reproduces "
        "these latents; try a larger k, mode=multi, or the evaluate entry point's other samplers"
    )


def explain_c2st_zero(request: SearchRequest) -> str:
    """Why the C2ST objective is 0 everywhere: the classifier tells every setting apart."""
    return (
        f"the objective is 0 for every {request.axis} in [{request.b_min:g}, {request.b_max:g}]: "
        f"a classifier tells the {request.sampler} vectors from real latents every time at "
        "every width; no setting of this sampler lands where the faces are. Try another sampler"
    )


def explain_knn_zero(request: SearchRequest) -> str:
    """Why the k-NN objective is 0 everywhere: no generated vector in any real ball."""
    advice = (
        "the real region is not reached by a centred uniform generator. Try sampler=gaussian, "
        "mvn or gmm"
        if spec_of(request.sampler).has_box
        else f"no width of the {request.sampler} sampler reaches the real region; widen "
        "b_min..b_max or try another sampler"
    )
    return (
        f"the objective is 0 for every {request.axis} in [{request.b_min:g}, "
        f"{request.b_max:g}]: no {request.sampler} vector lands in the k-NN ball "
        f"(k={request.knn_k}) of any of the real latents, so precision and recall are 0; "
        f"{advice}"
    )


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point(ENTRY_POINT, main, argv)


if __name__ == "__main__":
    cli()
