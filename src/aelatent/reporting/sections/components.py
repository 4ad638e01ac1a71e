"""Sections 3 and 5, the latent components: "Number distributions" (the analysis figures of
every component) and "Dominant components" (the study's list beside each run's, then the
correlations and principal components)."""

from __future__ import annotations

from dataclasses import replace

from aelatent.reporting.collect import CaseData
from aelatent.reporting.document import (
    Block,
    Columns,
    Heading,
    Note,
    Panel,
    Paragraph,
    Section,
    Table,
)
from aelatent.reporting.sections.context import SectionContext, slug
from aelatent.reporting.sections.formatting import cell_value, read_csv, truthy
from aelatent.schema import COMPONENTS_CSV, COMPONENTS_PNG, DOMINANT_MD, DOMINANT_PNG, TOP_PAIRS_CSV

# The study (docs/science.md): dominant components reported for case II on CelebA (i, mu, hw).
REFERENCE_DOMINANT = (
    (15, -0.25, 1.5),
    (16, 0.5, 1.125),
    (56, 0.0, 1.625),
    (58, 0.25, 2.125),
    (66, 0.25, 1.5),
    (68, 0.0, 2.0),
    (110, 0.5, 1.875),
    (118, 2.25, 2.25),
    (151, 1.5, 4.125),
    (177, -1.0, 2.25),
    (178, 0.5, 1.875),
    (180, -0.25, 1.5),
    (188, 0.25, 1.75),
    (195, -1.5, 2.0),
    (202, -0.5, 2.25),
    (204, -0.5, 1.25),
    (210, 0.0, 1.75),
    (230, 0.25, 1.5),
    (242, -0.25, 2.375),
    (253, -0.5, 1.0),
)
DOMINANT_COLUMNS = ("component", "mu", "hw", "mu_fit", "hw_fit", "sigma", "fit_r2", "gaussian_like")
MAX_DOMINANT_ROWS = 40
MAX_PAIR_ROWS = 10


def distributions_section(ctx: SectionContext) -> Section:
    return ctx.per_case_section(
        "distributions",
        "Number distributions",
        "Number distributions of the latent components over every encoded image: all "
        "components in one figure, and the dominant ones (relatively large |mu| or hw) "
        "with their fitted Gaussians.",
        lambda c: [
            *ctx.figure(c.train, COMPONENTS_PNG, caption="all components"),
            *ctx.figure(c.train, DOMINANT_PNG, caption="dominant components"),
        ],
    )


def dominant_section(ctx: SectionContext) -> Section:
    reference = Panel(
        "reference: CelebA, case II (the study)",
        [
            Table(
                "dominant_reference",
                ["component", "mu", "hw"],
                [list(r) for r in REFERENCE_DOMINANT],
                caption="Dominant components the study reported",
            )
        ],
    )
    blocks: list[Block] = [
        Paragraph(
            "Components with a relatively large centre |mu| or half-width hw "
            "(stats/components.csv, column 'dominant')."
        ),
        Columns([reference, *[dominant_panel(c) for c in ctx.data.cases]]),
        Heading("Correlations and principal components"),
    ]
    blocks += ctx.per_case(lambda c: correlations(ctx, c))
    return Section("dominant", "Dominant components", blocks)


def dominant_panel(case: CaseData) -> Panel:
    """The run's dominant components from stats/components.csv, under the rule it used."""
    path = case.train.first(COMPONENTS_CSV)
    if path is None:
        return Panel(
            f"case {case.label}",
            [Note(f"Not logged: run {case.train.run_id} has no stats/components.csv.")],
        )
    rows = read_csv(path)
    dominant = [r for r in rows if truthy(r.get("dominant"))]
    columns = [c for c in DOMINANT_COLUMNS if rows and c in rows[0]]
    table = Table(
        f"dominant_{slug(case)}",
        columns,
        [[cell_value(r.get(c)) for c in columns] for r in dominant],
        caption=f"{len(dominant)} of {len(rows)} components are dominant",
        max_rows=MAX_DOMINANT_ROWS,
    )
    blocks: list[Block] = [table]
    if not dominant:  # the table stays for its CSV, shown as a link only
        blocks = [
            replace(table, max_rows=0),
            Note("No component is flagged dominant in stats/components.csv."),
        ]
    rule = case.train.first(DOMINANT_MD)
    if rule is not None:
        lines = [x for x in rule.read_text().splitlines() if x.startswith("Rule:")]
        blocks[:0] = [Paragraph(x) for x in lines[:1]]
    return Panel(f"case {case.label}", blocks)


def correlations(ctx: SectionContext, case: CaseData) -> list[Block]:
    """The correlation and PCA figures and the most correlated pairs of one case."""
    blocks = ctx.figure(case.train, "correlations/*", "pca/*", caption="correlations and PCA")
    pairs = case.train.first(TOP_PAIRS_CSV)
    if pairs is not None:
        rows = read_csv(pairs)
        columns = list(rows[0]) if rows else []
        blocks.append(
            Table(
                f"correlated_pairs_{slug(case)}",
                columns,
                [[cell_value(r.get(c)) for c in columns] for r in rows],
                caption="Most correlated component pairs (r)",
                max_rows=MAX_PAIR_ROWS,
            )
        )
    return blocks
