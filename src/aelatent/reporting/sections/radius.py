"""Section 6, "Radius distributions": the lengths |z| of the real latents and of each
sampler's vectors per b, beside what radius theory predicts (docs/science.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aelatent.reporting.collect import CaseData, RunData
from aelatent.reporting.document import Block, Section, Table
from aelatent.reporting.sections.context import SectionContext, no_evaluation, slug
from aelatent.reporting.sections.formatting import cell_value, number, sampler_key
from aelatent.schema import RADIUS_PNG

RADIUS_METRIC = re.compile(
    r"^(?P<kind>radius_(?:mean|std)(?:_theory)?)/(?P<sampler>[^/]+)/b(?P<b>[^/]+)$"
)


def radius_metrics(runs: Iterable[RunData]) -> dict[str, dict[str, dict[str, float]]]:
    """``{sampler: {b: {"radius_mean": .., "radius_std": .., "radius_mean_theory": ..}}}``."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for run in reversed(list(runs)):
        for name, value in run.metrics.items():
            match = RADIUS_METRIC.match(name)
            if match:
                found.setdefault(match["sampler"], {}).setdefault(match["b"], {})[match["kind"]] = (
                    value
                )
    return found


def radius_section(ctx: SectionContext) -> Section:
    return ctx.per_case_section(
        "radius",
        "Radius distributions",
        (
            "A right box is not enough: the lengths |z| of generated vectors must also fall "
            "where the real ones are. For the uniform sampler <R> ~ b*sqrt(N/3) grows with b "
            "while its spread stays small, so only a narrow band of b matches the real radii."
        ),
        lambda c: radius_panel(ctx, c),
    )


def radius_panel(ctx: SectionContext, case: CaseData) -> list[Block]:
    """The real radii's figure, each evaluate run's, and the table of means and spreads."""
    blocks = ctx.figure(
        case.train,
        RADIUS_PNG,
        "*radius*.png",
        caption="radius distribution of the real latents",
    )
    if not case.evaluations:
        return [*blocks, no_evaluation(case)]
    for run in case.evaluations:
        blocks += ctx.figure(
            run,
            "*radius*.png",
            "radius*/*.png",
            caption="sample radii for each b over the real radii",
        )
    rows: list[list] = [
        [
            "real latents",
            None,
            case.train.metrics.get("radius_mean"),
            case.train.metrics.get("radius_std"),
            None,
            None,
        ]
    ]
    for sampler, per_b in sorted(
        radius_metrics(case.evaluations).items(), key=lambda item: sampler_key(item[0])
    ):
        for b, values in sorted(per_b.items(), key=lambda item: number(item[0])):
            rows.append(
                [
                    sampler,
                    cell_value(b),
                    values.get("radius_mean"),
                    values.get("radius_std"),
                    values.get("radius_mean_theory"),
                    values.get("radius_std_theory"),
                ]
            )
    blocks.append(
        Table(
            f"radius_{slug(case)}",
            ["vectors", "b", "mean |z|", "std |z|", "theory mean", "theory std"],
            rows,
            caption="Radii of the real latents and of the samples, beside the theory",
        )
    )
    return blocks
