"""The search's summary: the exact optimum beside Optuna's, its interval, and why none.

Read by :mod:`~aelatent.jobs.search.job` once the worker's trials are done: the parent
run's ``best_*`` metrics (:func:`summary_metrics`), the curve over the whole range
(:func:`sweep_objective`), the printed and tagged headline, and the explanations where no b
scores at all.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
from optuna.study import Study
from optuna.trial import TrialState

from aelatent.core.best_b_interval import best_b_interval
from aelatent.core.knn_objective import GRID_POINTS as KNN_GRID_POINTS
from aelatent.core.knn_objective import (
    KnnBest,
    KnnObjectiveValue,
    ReplicateObjective,
    refined_best,
)
from aelatent.core.objective import (
    BestB,
    UniformSearchObjective,
)
from aelatent.core.sampler_registry import spec_of
from aelatent.io.mlflow_native import (
    log_csv_table,
)
from aelatent.jobs.search.artifacts import (
    save_objective_curve,
    save_optuna_plots,
    write_curve_csv,
    write_pareto_csv,
    write_trials_csv,
)
from aelatent.jobs.search.request import (
    Curve,
    SearchObjective,
    SearchRequest,
    Sweep,
)
from aelatent.jobs.search.study import (
    best_trial,
    objective_of,
)
from aelatent.jobs.search.trials import finite_or_none
from aelatent.schema import TRIALS_TABLE

ARTIFACT_DIR = "search"  # the parent run's artifact folder
CURVE_POINTS = 600
NO_BEST_B_TAG = "no_best_b"  # why: the objective is 0 for every b in the range
OUTSIDE_TAG = "best_b_unconfirmed"  # Optuna's best is not as good as the exact optimum
RANGE_END_TAG = "best_at_range_end"  # the interval reaches b_min or b_max: widen the range


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
    with_latents_error = False  # whether best_<axis>_lo/hi carry the real latents' error
    if objective is box and box.source is not None and isinstance(sweep, BestB):
        metrics.update(best_b_interval(box, sweep, request.b_min, request.b_max).metrics(axis))
        with_latents_error = True
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
    # the interval with the latents' error (the box's best_b_interval, wider than one draw's
    # plateau); the other objectives' interval is the sweep's own bracket and its test, so
    # there the two say the same
    lo, hi = metrics[f"best_{axis}_lo"], metrics[f"best_{axis}_hi"]
    inside = lo <= value.b <= hi if with_latents_error else agrees
    metrics[f"best_{axis}_in_ci"] = float(inside)
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


def log_summary(
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
    warn_at_range_end(sweep, request)
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
        print(f"aelatent search: {optuna_advice(metrics, axis, sweep)}", file=sys.stderr)


def optuna_advice(metrics: dict[str, float], axis: str, sweep: Sweep) -> str:
    """What Optuna's best trial off the sampled optimum means. Why not "run more trials"
    alone: the sweep has already found the sampled optimum, and where Optuna's point lies
    inside the interval of the best (the latents' own error, wider than one draw's plateau)
    more trials only move it within that error; the answer is the sweep's either way."""
    lo, hi = metrics[f"best_{axis}_lo"], metrics[f"best_{axis}_hi"]
    point = f"Optuna's best {axis} {metrics[f'best_{axis}']:.4g}"
    if metrics[f"best_{axis}_in_ci"]:
        return (
            f"{point} is off the sampled optimum by more than the draw's error "
            f"([{sweep.lo:.4g}, {sweep.hi:.4g}]) but inside the interval of the best "
            f"[{lo:.4g}, {hi:.4g}]: the difference is below what the real latents can tell; "
            f"the best {axis} is the sweep's"
        )
    return (
        f"{point} is outside the interval of the best [{lo:.4g}, {hi:.4g}]: the study's "
        f"trials did not reach the optimum; the best {axis} is the sweep's (more trials, or a "
        "narrower b_min..b_max, bring Optuna nearer)"
    )


def warn_at_range_end(sweep: Sweep, request: SearchRequest) -> None:
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
