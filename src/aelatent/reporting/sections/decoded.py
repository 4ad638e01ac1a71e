"""Section 9, "Decoded samples": sampled latent vectors put through the decoder, next to the
real reconstructions; and the order in which decoded grids are shown everywhere."""

from __future__ import annotations

import math
from pathlib import Path

from aelatent.reporting.collect import CaseData
from aelatent.reporting.document import Block, Figure, Note, Paragraph, Section
from aelatent.reporting.sections.context import IMAGE_SUFFIXES, SectionContext, no_evaluation
from aelatent.reporting.sections.formatting import number, sampler_key


def decoded_order(item: tuple[str, Path]) -> tuple[int, tuple[int, str], float, str]:
    """Overview first, then real reconstructions, then per sampler by increasing b."""
    name = item[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    first = {"overview": 0, "reconstructions": 1}.get(name, 2)
    sampler, _, b = name.partition("_b")
    value = number(b) if b else 0.0
    return first, sampler_key(sampler), math.inf if math.isnan(value) else value, name


def decoded_section(ctx: SectionContext) -> Section:
    return ctx.per_case_section(
        "decoded",
        "Decoded samples",
        "Sampled latent vectors put through the decoder, next to real reconstructions "
        "(section 2): which samplers make faces?",
        lambda c: decoded_panel(ctx, c),
    )


def decoded_panel(ctx: SectionContext, case: CaseData) -> list[Block]:
    """Each evaluate run's overview grid (or every grid where it has none)."""
    if not case.evaluations:
        return [no_evaluation(case)]
    blocks: list[Block] = []
    for run in case.evaluations:
        found = sorted(
            (item for item in run.find("decoded/*") if item[0].endswith(IMAGE_SUFFIXES)),
            key=decoded_order,
        )
        overview = [item for item in found if "overview" in item[0]]
        for path, _ in found:
            ctx.used.add((run.run_id, path))
        for path, local in overview or found:
            blocks.append(Figure(local, f"{path} (run {run.name}, {run.run_id[:8]})"))
        if overview and len(found) > len(overview):
            rest = ", ".join(p.rsplit("/", 1)[-1] for p, _ in found if "overview" not in p)
            blocks.append(
                Paragraph(
                    f"The same samples per sampler and b, larger, in the run's "
                    f"artifacts under decoded/: {rest}."
                )
            )
    if not blocks:
        blocks.append(Note("Not logged: the evaluate runs have no decoded/ images."))
    return blocks
