"""Section 7, "Hit rates": per sampler and case the box test (hit rate and log10 P(hit) over
b x k with intervals and the held-out ceiling), its curves (drawn by the report from the
merged runs), the k-NN test beside it, the decoded vectors, heat maps and misses; last the
study's method 1, the grid, where it was logged."""

from __future__ import annotations

import math
from functools import partial

from aelatent.core.sampler_registry import REGISTRY
from aelatent.plots.evaluation import RateInterval, save_hit_rate_curves
from aelatent.reporting.collect import CaseData
from aelatent.reporting.document import Block, Figure, Heading, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import SectionContext, no_evaluation, slug
from aelatent.reporting.sections.decoded import decoded_order
from aelatent.reporting.sections.formatting import (
    cell_value,
    finite,
    number,
    sampler_key,
    with_interval,
)
from aelatent.reporting.sections.hit_metrics import (
    CEILING_ROW,
    GHK_REL_SE_LIMIT,
    GRID_METRIC,
    HIT_FIGURE_COLUMNS,
    TOO_UNCERTAIN,
    Cells,
    ceiling_from_metrics,
    evaluation_grid,
    flagged,
    grid_method,
    interval_note,
    too_uncertain,
    windows_text,
)
from aelatent.reporting.sections.knn import (
    BOX_VS_KNN_CAPTION,
    KNN_INTRO,
    knn_blocks,
)
from aelatent.schema import BOX_VS_KNN_PNG, DECODED_DIR

Ceiling = dict[str, dict[str, float]]  # {k: {"hit_rate": .., ...}}


def hits_section(ctx: SectionContext) -> Section:
    grids = {c.label: evaluation_grid(c.evaluations) for c in ctx.data.cases}
    samplers = sorted({s for g in grids.values() for s in g}, key=sampler_key)
    blocks: list[Block] = [
        Paragraph(
            "Fraction of generated vectors with every component inside [mu_i - k*hw_i, "
            "mu_i + k*hw_i] (Monte Carlo), and the log10 probability of a hit (exact; mvn "
            "and gmm: a GHK estimate; flow: none), for each b (samplers other than uniform: "
            "the width scale) and half-width multiple k. In "
            "brackets the 95% interval: Wilson for a rate; for log10 P the uncertainty of "
            "the windows propagated (mvn, gmm: with the GHK estimate's own error). The last "
            "row of each hit-rate table and the dashed lines of its figure are the ceiling: "
            "held-out real latents, which the windows were not estimated from, in the same "
            "windows; no generator can be expected to hit more often than real faces do. "
            "A box hit is necessary, not sufficient: each component is judged alone, so a "
            "generator that fills the box corner to corner passes it without making a face "
            "(the verdict above sees the correlations). " + KNN_INTRO
        )
    ]
    if not samplers:
        blocks += ctx.per_case(
            lambda c: (
                [no_evaluation(c)]
                if not c.evaluations
                else [Note("Not logged: no hit_rate/... metrics in the evaluate runs.")]
            )
        )
        return Section("hits", "Hit rates", blocks)
    for sampler in samplers:
        blocks.append(Heading(f"sampler {sampler}"))
        blocks += ctx.per_case(partial(hit_panel, ctx, sampler=sampler, grids=grids))
    blocks += grid_method_blocks(ctx)
    return Section("hits", "Hit rates", blocks)


def hit_panel(
    ctx: SectionContext, case: CaseData, *, sampler: str, grids: dict[str, dict[str, Cells]]
) -> list[Block]:
    """One case and sampler: the tables, the curves, the k-NN test and the figures."""
    if not case.evaluations:
        return [no_evaluation(case)]
    cells = grids[case.label].get(sampler)
    if not cells:
        return [
            Note(
                f"Not run: no evaluate run of train run {case.train.run_id} covered "
                f"sampler {sampler}."
            )
        ]
    bs = sorted({b for b, _ in cells}, key=number)
    ks = sorted({k for _, k in cells}, key=number)
    name = f"{slug(case)}_{sampler}"
    runs = [
        r
        for r in case.evaluations
        if any((m := GRID_METRIC.match(key)) and m["sampler"] == sampler for key in r.metrics)
    ]
    ceiling, n_heldout = ceiling_from_metrics(runs)
    blocks: list[Block] = [Paragraph(f"Windows: {windows_text(runs)}.")]
    blocks += hit_rate_table(name, sampler, bs, ks, cells, ceiling, n_heldout)
    blocks += log10_p_table(name, sampler, bs, ks, cells)
    blocks.append(hit_figures_table(name, sampler, bs, ks, cells, ceiling))
    blocks += hit_rate_curves(ctx, case, sampler, name, cells, ceiling)
    blocks += knn_blocks(name, sampler, case.evaluations)  # the region test without a box
    blocks += hit_images(ctx, case, sampler)
    return blocks


def hit_rate_table(
    name: str,
    sampler: str,
    bs: list[str],
    ks: list[str],
    cells: Cells,
    ceiling: Ceiling,
    n_heldout: float | None,
) -> list[Block]:
    """Hit rate over b x k with its Wilson interval, the ceiling as the last row."""

    def rate(values: dict[str, float]) -> float | str | None:
        return with_interval(
            values.get("hit_rate"), values.get("hit_rate_lo"), values.get("hit_rate_hi")
        )

    rows: list[list] = [[cell_value(b), *[rate(cells.get((b, k), {})) for k in ks]] for b in bs]
    caption = f"hit rate (Monte Carlo){interval_note(cells, 'hit_rate_lo')}, sampler {sampler}"
    if ceiling:
        rows.append([CEILING_ROW, *[rate(ceiling.get(k, {})) for k in ks]])
        held = "" if n_heldout is None else f"{n_heldout:.0f} "
        caption += f"; last row: {held}held-out real latents, the ceiling"
    blocks: list[Block] = [
        Table(f"hit_rate_{name}", ["b \\ k", *[f"k={k}" for k in ks]], rows, caption=caption)
    ]
    if not ceiling:
        blocks.append(
            Note(
                "Not logged: no held-out ceiling (hit_rate/heldout/k...) in the evaluate "
                f"runs of sampler {sampler}, which predate it; rerun evaluate to get it."
            )
        )
    return blocks


PROBABILITY_LABELS = {"exact": "exact", "ghk_estimate": "GHK estimate", "none": "none computed"}


def probability_label(sampler: str) -> str:
    """How the sampler's log10 P(hit) was computed, read from its registry entry's
    ``probability`` (a flow has none: its NaN must not read as exact); a sampler this
    version does not know: "method unknown"."""
    spec = REGISTRY.get(sampler)
    return "method unknown" if spec is None else PROBABILITY_LABELS[spec.probability]


def log10_p_table(
    name: str, sampler: str, bs: list[str], ks: list[str], cells: Cells
) -> list[Block]:
    """log10 P(hit) over b x k with its interval; GHK estimates too uncertain are flagged."""
    uncertain: list[tuple[str, str]] = []
    rows = []
    for b in bs:
        row: list = [cell_value(b)]
        for k in ks:
            cell = cells.get((b, k), {})
            value = with_interval(
                cell.get("log10_p_hit"), cell.get("log10_p_hit_lo"), cell.get("log10_p_hit_hi")
            )
            if too_uncertain(cell):
                uncertain.append((b, k))
                value = flagged(value)
            row.append(value)
        rows.append(row)
    method = probability_label(sampler)
    blocks: list[Block] = [
        Table(
            f"log10_p_hit_{name}",
            ["b \\ k", *[f"k={k}" for k in ks]],
            rows,
            caption=f"log10 P(hit) ({method}){interval_note(cells, 'log10_p_hit_lo')}, "
            f"sampler {sampler}",
        )
    ]
    if uncertain:
        where = ", ".join(f"b={b} k={k}" for b, k in uncertain)
        blocks.append(
            Paragraph(
                f"{TOO_UNCERTAIN} too uncertain to read: the GHK estimate of P(hit) has a "
                f"relative standard error above {GHK_REL_SE_LIMIT:g} (ghk_rel_se) at "
                f"{where}; neither the value nor its interval can be trusted there."
            )
        )
    return blocks


def hit_figures_table(
    name: str, sampler: str, bs: list[str], ks: list[str], cells: Cells, ceiling: Ceiling
) -> Table:
    """Every figure and interval as plain numbers, one row per (b, k): a CSV only."""
    rows: list[list] = []
    for b in bs:
        for k in ks:
            cell = cells.get((b, k))
            if cell is not None:
                rows.append(
                    [
                        sampler,
                        cell_value(b),
                        cell_value(k),
                        *[cell.get(c) for c in HIT_FIGURE_COLUMNS],
                        too_uncertain(cell),
                    ]
                )
    for k in ks:
        if k in ceiling:
            rows.append(
                [
                    "heldout",
                    None,
                    cell_value(k),
                    *[ceiling[k].get(c) for c in HIT_FIGURE_COLUMNS],
                    False,
                ]
            )
    return Table(
        f"hit_figures_{name}",
        ["vectors", "b", "k", *HIT_FIGURE_COLUMNS, "too_uncertain"],
        rows,
        caption=f"Every hit figure of sampler {sampler} with its interval, as numbers",
        max_rows=0,
    )


def hit_rate_curves(
    ctx: SectionContext, case: CaseData, sampler: str, name: str, cells: Cells, ceiling: Ceiling
) -> list[Block]:
    """Hit rate against b per k, with error bars where known and the ceiling dashed."""

    def point(values: dict[str, float]) -> RateInterval:
        return tuple(  # type: ignore[return-value]
            float(v) if finite(v := values.get(key)) else math.nan
            for key in ("hit_rate", "hit_rate_lo", "hit_rate_hi")
        )

    curves: dict[float, dict[float, RateInterval]] = {}
    for (b, k), values in cells.items():
        if finite(values.get("hit_rate")) and finite(number(b)) and finite(number(k)):
            curves.setdefault(number(k), {})[number(b)] = point(values)
    if not curves:
        return []
    limits = {
        number(k): point(values)
        for k, values in ceiling.items()
        if finite(values.get("hit_rate")) and finite(number(k))
    }
    path = save_hit_rate_curves(
        curves,
        limits or None,
        ctx.work_dir / f"hit_rates_{name}.png",
        _axis_label(sampler),
        title=f"case {case.label}, {sampler}: hit rate (95% interval)",
    )
    has_bars = any(math.isfinite(p[1]) for c in curves.values() for p in c.values())
    notes = [
        "error bars: Wilson 95% intervals" if has_bars else "no intervals logged",
        "dashed: held-out real latents (ceiling)" if limits else "no ceiling logged",
    ]
    caption = f"hit rate against {_axis_label(sampler)} per k, sampler {sampler}; " + "; ".join(
        notes
    )
    return [Figure(path, caption)]


def hit_images(ctx: SectionContext, case: CaseData, sampler: str) -> list[Block]:
    """The logged figures of one sampler: box vs k-NN with the decoded vectors under it, the
    heat map and the misses (the run's own rate curves are drawn anew, so not repeated)."""
    blocks: list[Block] = []
    figure = BOX_VS_KNN_PNG.format(sampler=sampler)
    runs = [r for r in case.evaluations if r.find(figure)]
    if runs:  # box and k-NN test side by side, then what the vectors decode to
        blocks += ctx.figure(runs[0], figure, caption=BOX_VS_KNN_CAPTION)
        for path, local in sorted(
            runs[0].find(f"{DECODED_DIR}/{sampler}_b*.png"), key=decoded_order
        ):
            ctx.used.add((runs[0].run_id, path))
            blocks.append(Figure(local, f"decoded {sampler} vectors: {path}"))
    heatmaps = (f"hits/heatmap*{sampler}*.png", f"*heatmap*{sampler}*.png")
    misses = (f"misses/*{sampler}*.png",)
    # the report draws the rate curves itself (merged runs); a run's own copy is not repeated
    for run in case.evaluations:
        own = run.find(f"hits/rate_curves_{sampler}.png")
        ctx.used.update((run.run_id, path) for path, _ in own)
    runs = [r for r in case.evaluations if r.find(*heatmaps)]
    if runs:
        blocks += ctx.figure(runs[0], *heatmaps, caption=f"hit rates over b x k, {sampler}")
    else:
        blocks.append(Note(f"Not logged: no heat map for sampler {sampler}."))
    runs = [r for r in case.evaluations if r.find(*misses)]
    if runs:
        blocks += ctx.figure(runs[0], *misses, caption="components a vector misses")
    return blocks


def grid_method_blocks(ctx: SectionContext) -> list[Block]:
    """Method 1, the grid, per case: only where some evaluate run logged it."""
    found = {c.label: grid_method(c.evaluations) for c in ctx.data.cases}
    if not any(points or inside for points, inside in found.values()):
        return []

    def make(case: CaseData) -> list[Block]:
        points, inside = found[case.label]
        if not case.evaluations:
            return [no_evaluation(case)]
        if not points and not inside:
            return [
                Note(
                    "Not logged: no grid_log10_points/... metrics in the evaluate runs, "
                    "which predate method 1; rerun evaluate to get them."
                )
            ]
        bs = sorted({*points, *(b for b, _ in inside)}, key=number)
        ks = sorted({k for _, k in inside}, key=number)
        spacing = next(
            (r.params["grid_spacing"] for r in case.evaluations if "grid_spacing" in r.params),
            None,
        )
        caption = "log10 of the grid points over [-b, b]^z_dim and of those inside the windows"
        if spacing is not None:
            caption += f", spacing {spacing}"
        return [
            Table(
                f"grid_method_{slug(case)}",
                ["b", "log10 points", *[f"log10 inside, k={k}" for k in ks]],
                [[cell_value(b), points.get(b), *[inside.get((b, k)) for k in ks]] for b in bs],
                caption=caption,
            )
        ]

    return [
        Heading("Method 1: the grid"),
        Paragraph(
            "The study's first method: a regular grid over the box [-b, b]^z_dim "
            "(parameter grid_spacing), counted instead of sampled. log10 of its number of "
            "points, and of those inside every window at multiple k (-inf: none); their "
            "difference is log10 of the fraction of the box inside the windows."
        ),
        *ctx.per_case(make),
    ]


def _axis_label(sampler: str) -> str:
    """The sampler's axis label; ``b`` for a sampler this version does not know."""
    spec = REGISTRY.get(sampler)
    return spec.axis_label if spec is not None else "b"
