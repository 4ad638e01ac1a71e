"""What every section builder is handed: the collected runs, a folder for the figures the
report draws itself, and the record of which logged images a section already shows.

The record lets the last section ("Other figures") show every image no other section did,
so nothing a run logged is hidden; sections add to it through :meth:`SectionContext.figure`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.document import (
    Block,
    Columns,
    Figure,
    Note,
    Panel,
    Paragraph,
    Section,
    Table,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")
IMAGE_PATTERNS = tuple(f"*{s}" for s in IMAGE_SUFFIXES)
ENV = "--env-manager local"


@dataclass
class SectionContext:
    data: ReportData
    work_dir: Path
    used: set[tuple[str, str]] = field(default_factory=set)  # (run id, artifact path) shown

    def figure(self, run: RunData, *patterns: str, caption: str = "") -> list[Block]:
        """Every artifact image of ``run`` matching the patterns, or a note that none is."""
        found = [
            (p, local) for p, local in run.find(*patterns) if p.lower().endswith(IMAGE_SUFFIXES)
        ]
        if not found:
            return [
                Note(f"Not logged: run {run.run_id} ({run.name}) has no {' or '.join(patterns)}.")
            ]
        blocks: list[Block] = []
        for path, local in found:
            self.used.add((run.run_id, path))
            text = f"{caption}: {path}" if caption else path
            blocks.append(Figure(local, f"{text} (run {run.name}, {run.run_id[:8]})"))
        return blocks

    def per_case_section(
        self, key: str, title: str, intro: str, panel: Callable[[CaseData], list[Block]]
    ) -> Section:
        """The common section: an introduction, then one panel per case side by side."""
        return Section(key, title, [Paragraph(intro), *self.per_case(panel)])

    def per_case(self, make: Callable[[CaseData], list[Block]]) -> list[Block]:
        """One panel per case side by side, or a note that no train run was selected."""
        if not self.data.cases:
            return [
                Note(
                    "Not run: no train run was selected, so there is nothing to show. "
                    f"Run `mlflow run . -e train -P case=I {ENV}` (or `-e main`) first."
                )
            ]
        return [Columns([Panel(f"case {c.label}", make(c)) for c in self.data.cases])]


def train_metric_table(
    name: str, keys: list[str], cases: list[CaseData], caption: str, max_rows: int | None = None
) -> Table:
    """One row per train-run metric in ``keys``, one column per case."""
    return Table(
        name,
        ["metric", *[f"case {c.label}" for c in cases]],
        [[k, *[c.train.metrics.get(k) for c in cases]] for k in keys],
        caption=caption,
        max_rows=max_rows,
    )


def not_run(case: CaseData, entry_point: str) -> Note:
    """The note where a case has no finished run of ``entry_point``, with the command."""
    return Note(
        f"Not run: no finished {entry_point} run of train run {case.train.run_id} "
        f"(case {case.case}). Run `mlflow run . -e {entry_point} -P "
        f"train_run={case.train.run_id} {ENV}`."
    )


def no_evaluation(case: CaseData) -> Note:
    return not_run(case, "evaluate")


def slug(case: CaseData) -> str:
    """The case label as part of a table's file name."""
    return re.sub(r"[^A-Za-z0-9]+", "_", case.label).strip("_") or "case"
