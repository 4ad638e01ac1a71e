"""Section 8, "Search for b": the search run's answer (best b with its interval, or why there
is none), its metrics and parameters, the trials best first, and its plots."""

from __future__ import annotations

import math

from aelatent.core.sampler_registry import axis_of
from aelatent.reporting.collect import CaseData, RunData
from aelatent.reporting.document import Block, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import IMAGE_PATTERNS, SectionContext, not_run, slug
from aelatent.reporting.sections.formatting import cell_value
from aelatent.reporting.sections.generator_search import generator_panel, is_generator_search
from aelatent.schema import OBJECTIVE_CURVE_PNG

SEARCH_PARAMS = (
    "sampler",
    "k",
    "objective",
    "radius_band",
    "knn_k",
    "knn_n",
    "n_trials",
    "n_samples",
    "b_min",
    "b_max",
    "mode",
    "seed",
    "study_name",
)
SEARCH_FIRST = (
    "best_b",
    "best_b_lo",
    "best_b_hi",
    "best_value",
    "best_value_se",
    "best_b_sweep",
    "best_value_sweep",
    "best_b_gap",
    "best_b_in_interval",
    "best_b_in_ci",
    "b_theory",
    "best_scale",
    "best_scale_lo",
    "best_scale_hi",
    "best_scale_sweep",
    "best_scale_gap",
    "best_scale_in_interval",
    "best_scale_in_ci",
    "objective_at_scale_1",
)
RANGE_END_TAG = "best_at_range_end"  # jobs.search: the interval reaches b_min or b_max
MAX_TRIAL_ROWS = 10


def no_search(case: CaseData) -> Note:
    return not_run(case, "search")


def search_axis(run: RunData) -> str:
    """``b`` for a uniform search (and runs from before the sampler parameter), else ``scale``."""
    return axis_of(run.params.get("sampler", "uniform"))


def search_summary(run: RunData) -> Block:
    """One line on a search run's answer: best b (or scale) with its interval, or why there is
    none."""
    m, axis = run.metrics, search_axis(run)
    best = f"best_{axis}"
    if "no_best_b" in run.tags:
        return Note(f"No best {axis}: {run.tags['no_best_b']}")
    if f"{best}_lo" not in m:
        if best in m:  # a search run from before the interval was logged
            return Paragraph(f"Best {axis} = {m[best]:.4g} (no interval logged by this run).")
        return Note(f"Not logged: the search run has no {best} metric.")
    interval = f"[{m[f'{best}_lo']:.4g}, {m[f'{best}_hi']:.4g}]"
    # a grid sweep over replicate sets (k-NN sets, cross-fitted C2ST splits)
    knn = run.params.get("objective") in ("knn", "c2st", "c2st_linear")
    refined = knn and "knn_sweep" in run.params  # older knn runs: one 48-point grid
    maximiser = (
        "the best point of the refined sweep"
        if refined
        else "the best of the 48-point sweep"
        if knn
        else "the exact maximiser"
    )
    where = "the optimum lies in" if refined else f"as good within error for {axis} in"
    sampler = run.params.get("sampler", "uniform")
    exact = (
        f"{maximiser} of the sampled objective is {axis} = {m[f'{best}_sweep']:.4g} "
        f"(objective {m['best_value_sweep']:.3g}), {where} {interval}"
    )
    if best not in m:
        return Note(f"Every Optuna trial scored 0; {exact}.")
    verdict = (
        "inside that interval: Optuna and the exact curve agree"
        if m.get(f"{best}_in_interval")
        else "off the sampled optimum by more than one draw's error, but inside the interval "
        "of the best: below what the real latents can tell; the best is the sweep's"
        if m.get(f"{best}_in_ci")
        else "OUTSIDE that interval: the trials did not reach the optimum (the best is the "
        "sweep's; more trials bring Optuna nearer)"
    )
    named = axis if axis == "b" else f"{sampler} {axis}"
    # the headline is the sweep's best with its own interval, never Optuna's point beside it
    return Paragraph(
        f"Best {named} = {m[f'{best}_sweep']:.4g} {interval}: {exact}. Optuna's best trial "
        f"is {axis} = {m[best]:.4g} (objective {m['best_value']:.3g} ± "
        f"{1.96 * m.get('best_value_se', math.nan):.2g}), {verdict}."
    )


def search_section(ctx: SectionContext) -> Section:
    return ctx.per_case_section(
        "search",
        "Search for b",
        (
            "The b for which the uniform generator best reproduces the real latents, found "
            "by Optuna: the box hit rate weighted by how typical the sampled radius is among "
            "the real radii (objective 'typical'; 'band' runs count a hit with a radius "
            "inside the real band; 'knn' runs maximise the harmonic mean of k-NN precision "
            "and recall, and may search the width factor ('scale') of the gaussian, mvn or "
            "gmm sampler instead of b). Beside it the exact maximiser of the same sampled "
            "objective, the interval of b whose objective is not significantly below the "
            "best (knn: the refined sweep's bracket of the optimum), and the b that radius "
            "theory predicts."
        ),
        lambda c: search_panel(ctx, c),
    )


def search_panel(ctx: SectionContext, case: CaseData) -> list[Block]:
    run = case.search
    if run is None:
        return [no_search(case)]
    if is_generator_search(run):
        return generator_panel(ctx, case, run)
    keys = [k for k in SEARCH_FIRST if k in run.metrics]
    keys += sorted(k for k in run.metrics if k not in SEARCH_FIRST)
    params = [k for k in SEARCH_PARAMS if k in run.params]
    blocks: list[Block] = [search_summary(run)]
    if RANGE_END_TAG in run.tags:
        blocks.append(Note(f"At the range's end: {run.tags[RANGE_END_TAG]}."))
    blocks += [
        Table(
            f"search_{slug(case)}",
            ["quantity", "value"],
            [[k, run.metrics[k]] for k in keys]
            + [[f"param {k}", cell_value(run.params[k])] for k in params],
            caption=f"Search run {run.name} ({run.run_id[:8]})",
        ),
    ]
    if run.children:
        blocks.append(trials_table(run, slug(case)))
    images = run.find(*IMAGE_PATTERNS)
    if run.find(OBJECTIVE_CURVE_PNG):
        blocks += ctx.figure(
            run,
            OBJECTIVE_CURVE_PNG,
            caption=(
                f"objective over {search_axis(run)}: the exact curve with its 95% Monte "
                "Carlo band (black), "
                "its two parts, the Optuna trials (red) and the interval of the best "
                f"{search_axis(run)} (shaded)"
            ),
        )
        images = [i for i in images if i[0] != OBJECTIVE_CURVE_PNG]
    if images:
        blocks += ctx.figure(run, *(path for path, _ in images), caption="search")
    else:
        blocks.append(Note(f"Not logged: the search run {run.run_id} has no plots."))
    return blocks


def trials_table(run: RunData, name: str) -> Table:
    """The trials (child runs), best objective first; the CSV has every one."""
    axis = search_axis(run)
    metric_keys = sorted({k for t in run.children for k in t.metrics} - {axis})
    if "objective" in metric_keys:
        metric_keys.remove("objective")
        metric_keys.insert(0, "objective")
    rows = [
        [t.name, cell_value(t.params.get(axis)), *[t.metrics.get(k) for k in metric_keys]]
        for t in run.children
    ]
    rows.sort(
        key=lambda r: (
            -(r[2] if isinstance(r[2], int | float) and not math.isnan(r[2]) else -math.inf)
        )
    )
    return Table(
        f"search_trials_{name}",
        ["trial", axis, *metric_keys],
        rows,
        caption=f"{len(rows)} trials (child runs), best first",
        max_rows=MAX_TRIAL_ROWS,
    )
