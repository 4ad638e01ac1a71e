"""What the report says: its sections, in order, built from collected run data.

The sections (:mod:`aelatent.reporting.sections`, one module each) know the science (the
study's reference figures in docs/science.md, the metric and artifact names of
docs/architecture.md) but neither MLflow nor any output format: together they turn a
:class:`~aelatent.reporting.collect.ReportData` into a
:class:`~aelatent.reporting.document.Document`. Every piece that a run does not have
becomes a :class:`~aelatent.reporting.document.Note` that says what to run, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aelatent.reporting.collect import ReportData
from aelatent.reporting.document import Document, Section
from aelatent.reporting.sections.components import distributions_section, dominant_section
from aelatent.reporting.sections.context import SectionContext
from aelatent.reporting.sections.decoded import decoded_section
from aelatent.reporting.sections.hits import hits_section
from aelatent.reporting.sections.observations import observations_section
from aelatent.reporting.sections.other import other_figures_section
from aelatent.reporting.sections.overview import runs_section
from aelatent.reporting.sections.radius import radius_section
from aelatent.reporting.sections.search import search_section
from aelatent.reporting.sections.training import configuration_section
from aelatent.reporting.sections.verdict import verdict_section

# the report's order; "Other figures" comes after them, as it shows what they did not
SECTIONS: tuple[Callable[[SectionContext], Section], ...] = (
    runs_section,
    configuration_section,
    distributions_section,
    observations_section,
    dominant_section,
    radius_section,
    verdict_section,
    hits_section,
    search_section,
    decoded_section,
)


def build_document(data: ReportData, work_dir: Path) -> Document:
    """The whole report; ``work_dir`` receives the figures the report draws itself."""
    ctx = SectionContext(data, work_dir)
    sections = [make(ctx) for make in SECTIONS]
    others = other_figures_section(ctx)
    if others is not None:
        sections.append(others)
    cases = ", ".join(c.label for c in data.cases) or "no runs"
    return Document(
        title="aelatent report: where the autoencoder puts its faces",
        subtitle=f"Cases {cases} · {data.selection} · tracking store {data.tracking_uri} · "
        f"written {data.created}",
        sections=sections,
    )
