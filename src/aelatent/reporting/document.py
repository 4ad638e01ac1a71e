"""A small, format-free document model, so that one content builder feeds HTML and Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Note:
    """A piece that is missing (not run, not logged): shown, never a crash."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table shown in the report and written as ``tables/<name>.csv``.

    ``rows`` hold raw values (numbers stay numbers in the CSV); ``max_rows`` only limits
    how many are shown, the CSV always has them all.
    """

    name: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    max_rows: int | None = None


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str


@dataclass(frozen=True)
class Panel:
    """One column of a side-by-side row, e.g. one case."""

    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Columns:
    """Panels shown next to each other (HTML) or one after the other (Markdown)."""

    panels: list[Panel]


@dataclass(frozen=True)
class Heading:
    text: str


Block = Paragraph | Note | Table | Figure | Columns | Heading


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: list[Section]


def walk(blocks: list[Block]):
    """Every block, panels' contents included, in reading order."""
    for block in blocks:
        yield block
        if isinstance(block, Columns):
            for panel in block.panels:
                yield from walk(panel.blocks)
