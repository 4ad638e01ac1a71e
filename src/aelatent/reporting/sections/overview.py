"""Section 1, "Runs in this report": which runs each case column comes from, where to open
them in the MLflow UI, and what could not be fetched."""

from __future__ import annotations

from aelatent.reporting.document import Block, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import SectionContext


def ui_hint(tracking_uri: str) -> str:
    """Where the same runs open in the MLflow UI: the server itself, or the command for a store."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"the tracking server {tracking_uri}"
    return f"`mlflow ui --backend-store-uri {tracking_uri}`"


def runs_section(ctx: SectionContext) -> Section:
    data = ctx.data
    rows = []
    for case in data.cases:
        for run in [case.train, *case.evaluations, *([case.search] if case.search else [])]:
            rows.append(
                [
                    case.label,
                    run.entry_point,
                    run.name,
                    run.run_id,
                    run.status,
                    run.started,
                    run.tags.get("dataset") or case.train.tags.get("dataset"),
                    run.params.get("samplers") or run.params.get("sampler", ""),
                ]
            )
    blocks: list[Block] = [
        Paragraph(
            f"Selection: {data.selection}. Each case column shows one train run and "
            "the evaluate and search runs made on that train run, from the tracking store "
            f"{data.tracking_uri}. Every table is also a CSV file (tables/). "
            f"Open the same runs in the MLflow UI ({ui_hint(data.tracking_uri)}) and "
            "compare them there (select runs, then Compare)."
        ),
        Table(
            "runs",
            [
                "case",
                "entry point",
                "run name",
                "run id",
                "status",
                "started",
                "dataset",
                "sampler",
            ],
            rows,
            caption="The runs behind this report",
        ),
    ]
    if not data.cases:
        blocks.append(ctx.per_case(lambda c: [])[0])
    blocks += [Note(f"Could not fetch: {p}") for p in data.problems]
    return Section("runs", "Runs in this report", blocks)
