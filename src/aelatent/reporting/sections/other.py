"""The last section, "Other figures": every image the runs logged that no section before it
showed, so nothing is hidden. Built last, from :attr:`SectionContext.used`."""

from __future__ import annotations

from aelatent.reporting.document import Block, Columns, Figure, Panel, Paragraph, Section
from aelatent.reporting.sections.context import IMAGE_PATTERNS, SectionContext


def other_figures_section(ctx: SectionContext) -> Section | None:
    """None where every image is shown already."""
    panels = []
    for case in ctx.data.cases:
        blocks: list[Block] = []
        runs = [case.train, *case.evaluations, *([case.search] if case.search else [])]
        for run in runs:
            for path, local in run.find(*IMAGE_PATTERNS):
                if (run.run_id, path) not in ctx.used:
                    blocks.append(Figure(local, f"{path} (run {run.name}, {run.run_id[:8]})"))
        if blocks:
            panels.append(Panel(f"case {case.label}", blocks))
    if not panels:
        return None
    return Section(
        "other",
        "Other figures",
        [Paragraph("Further images the runs logged."), Columns(panels)],
    )
