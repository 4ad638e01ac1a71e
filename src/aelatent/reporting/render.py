"""Write a :class:`~aelatent.reporting.document.Document` as HTML, Markdown and CSV files.

``report.html`` is self-contained (CSS inline, images and CSV downloads as base64 data
URIs), so it opens from a file, from an MLflow artifact download or as an e-mail
attachment with no network. ``report.md`` refers to images copied into ``images/`` and
tables written to ``tables/`` next to it. What the folder may hold and who holds it is
:mod:`aelatent.reporting.output_folder`'s: nothing of the user's is ever overwritten.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aelatent.reporting.document import (
    Block,
    Columns,
    Document,
    Figure,
    Heading,
    Note,
    Paragraph,
    Table,
    walk,
)
from aelatent.reporting.output_folder import (
    HTML_NAME,
    IMAGES_DIR,
    MARKDOWN_NAME,
    TABLES_DIR,
    clear_earlier_report,
    listed_files,
    refuse_foreign_files,
    sha256,
    write_marker,
)

MIME_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}
MISSING = "–"
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|inf|nan)"
# a number with its interval, maybe flagged: "0.5 [0.49, 0.51]", "† -3.2 [-4, -2.4]"
NUMBER_TEXT = re.compile(rf"^(?:† )?(?:{_NUMBER}|–)(?: \[{_NUMBER}, {_NUMBER}\])?$")

CSS = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #d8dde5; --bg: #ffffff; --tint: #f4f6f9;
        --accent: #2b5d9b; --warn: #9a5b00; --warn-bg: #fff6e5; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 24px 32px 12px; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 26px; }
.subtitle { margin: 0; color: var(--muted); }
nav { padding: 8px 32px; border-bottom: 1px solid var(--line); background: var(--tint); }
nav ol { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; }
nav a { color: var(--accent); text-decoration: none; }
main { padding: 0 32px 48px; max-width: 1600px; }
section { padding-top: 8px; border-bottom: 1px solid var(--line); padding-bottom: 16px; }
h2 { font-size: 21px; margin: 20px 0 8px; }
h3 { font-size: 17px; margin: 16px 0 6px; }
h4 { font-size: 15px; margin: 4px 0 6px; color: var(--accent); }
p { margin: 6px 0; max-width: 70em; }
.note { background: var(--warn-bg); color: var(--warn); border-left: 4px solid var(--warn);
        padding: 6px 10px; margin: 8px 0; max-width: 70em; }
.columns { display: grid; gap: 16px 24px; align-items: start;
           grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); }
.panel { min-width: 0; }
figure { margin: 8px 0 14px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--tint); }
td.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.more { color: var(--muted); font-size: 12px; }
a.csv { color: var(--accent); }
"""


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    tables: list[Path]
    images: list[Path]


def format_cell(value: Any) -> str:
    """Numbers compact (``f"{x:.4g}"``), whole numbers without a fraction, missing as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if value <= -1.79e308:  # -inf, or MLflow's stored form of it
            return "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def write_document(document: Document, out_dir: Path, name: str = "output") -> ReportFiles:
    """Write ``report.html``, ``report.md``, ``tables/*.csv`` and ``images/*`` into ``out_dir``,
    in place of the files an earlier report there wrote.

    Every file to be written is known first: one of them that is there but that no report
    wrote is a :class:`UserError` before anything is touched. The marker lists, at every
    instant, every file a report wrote that is in the folder (the earlier report's and this
    one's while it writes, this one's at the end), so an interrupted report is cleaned by
    the next. Call it inside :func:`lock_output_folder` when another report may write here.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_names = _table_file_names(document)
    image_names = _image_file_names(document)
    html_path, md_path = out_dir / HTML_NAME, out_dir / MARKDOWN_NAME
    tables = [out_dir / TABLES_DIR / n for n in csv_names.values()]
    images = [out_dir / IMAGES_DIR / n for n in image_names.values()]
    planned = [html_path, md_path, *tables, *images]
    refuse_foreign_files(out_dir, planned, name)
    mine = {p.relative_to(out_dir).as_posix(): p for p in planned}
    write_marker(out_dir, {**listed_files(out_dir), **dict.fromkeys(mine)})
    clear_earlier_report(out_dir)
    for table in _all_tables(document):
        path = out_dir / TABLES_DIR / csv_names[id(table)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table_csv(table))
    html_path.write_text(render_html(document, csv_names), encoding="utf-8")
    markdown = render_markdown(document, csv_names, out_dir, image_names)
    md_path.write_text(markdown, encoding="utf-8")
    write_marker(out_dir, {relative: sha256(path) for relative, path in mine.items()})
    return ReportFiles(html=html_path, markdown=md_path, tables=tables, images=images)


def table_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def _all_tables(document: Document) -> list[Table]:
    return [
        block
        for section in document.sections
        for block in walk(section.blocks)
        if isinstance(block, Table)
    ]


def _table_file_names(document: Document) -> dict[int, str]:
    """A unique, file-system-safe CSV name per table (``name.csv``, ``name-2.csv``, ...)."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for table in _all_tables(document):
        stem = _safe_name(table.name) or "table"
        name, n = f"{stem}.csv", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}.csv"
        used.add(name)
        names[id(table)] = name
    return names


def _image_file_names(document: Document) -> dict[int, str]:
    """``images/<nnn>-<name>`` per figure, numbered in reading order (as the Markdown)."""
    figures = [
        block
        for section in document.sections
        for block in walk(section.blocks)
        if isinstance(block, Figure)
    ]
    return {
        id(figure): f"{i:03d}-{_safe_name(figure.path.name)}" for i, figure in enumerate(figures, 1)
    }


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")


# ---------------------------------------------------------------------------------- HTML


def render_html(document: Document, csv_names: dict[int, str] | None = None) -> str:
    csv_names = csv_names if csv_names is not None else _table_file_names(document)
    esc = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(document.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>{esc(document.title)}</h1>",
        f'<p class="subtitle">{esc(document.subtitle)}</p></header>',
        "<nav><ol>",
        *(
            f'<li><a href="#{esc(s.key)}">{i}. {esc(s.title)}</a></li>'
            for i, s in enumerate(document.sections, 1)
        ),
        "</ol></nav><main>",
    ]
    for i, section in enumerate(document.sections, 1):
        parts.append(f'<section id="{esc(section.key)}"><h2>{i}. {esc(section.title)}</h2>')
        parts.extend(_html_block(block, csv_names) for block in section.blocks)
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _html_block(block: Block, csv_names: dict[int, str]) -> str:
    esc = html.escape
    if isinstance(block, Paragraph):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Note):
        return f'<p class="note">{esc(block.text)}</p>'
    if isinstance(block, Heading):
        return f"<h3>{esc(block.text)}</h3>"
    if isinstance(block, Figure):
        return (
            f'<figure><img src="{_data_uri(block.path)}" alt="{esc(block.caption)}">'
            f"<figcaption>{esc(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Table):
        return _html_table(block, csv_names[id(block)])
    if isinstance(block, Columns):
        panels = "".join(
            f'<div class="panel"><h4>{esc(panel.title)}</h4>'
            + "".join(_html_block(b, csv_names) for b in panel.blocks)
            + "</div>"
            for panel in block.panels
        )
        return f'<div class="columns">{panels}</div>'
    raise TypeError(f"unknown block {type(block).__name__}")


def _html_table(table: Table, csv_name: str) -> str:
    esc = html.escape
    csv_data = base64.b64encode(table_csv(table).encode()).decode("ascii")
    link = (
        f'<a class="csv" download="{esc(csv_name)}" href="data:text/csv;base64,{csv_data}">'
        f"CSV</a> ({TABLES_DIR}/{esc(csv_name)})"
    )
    caption = f"{esc(table.caption)} · {link}" if table.caption else link
    if table.max_rows == 0:  # a table only worth downloading
        return f'<p class="more">{caption}: {len(table.rows)} rows</p>'
    shown = table.rows if table.max_rows is None else table.rows[: table.max_rows]
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_html_cell(v) for v in row) + "</tr>" for row in shown)
    more = len(table.rows) - len(shown)
    more_html = f'<p class="more">… {more} more rows in the CSV</p>' if more > 0 else ""
    return (
        f'<figure class="table"><div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{more_html}<figcaption>{caption}</figcaption></figure>"
    )


def _html_cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    numeric = numeric or (isinstance(value, str) and NUMBER_TEXT.match(value) is not None)
    opening = '<td class="num">' if numeric else "<td>"
    return f"{opening}{html.escape(format_cell(value))}</td>"


def _data_uri(path: Path) -> str:
    mime = MIME_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


# ------------------------------------------------------------------------------ Markdown


def render_markdown(
    document: Document,
    csv_names: dict[int, str],
    out_dir: Path,
    image_names: dict[int, str] | None = None,
) -> str:
    """The Markdown text; images are copied to ``out_dir/images`` and linked relatively."""
    image_names = image_names if image_names is not None else _image_file_names(document)
    lines = [f"# {document.title}", "", document.subtitle, ""]
    lines += [f"{i}. [{s.title}](#{s.key})" for i, s in enumerate(document.sections, 1)]
    lines.append("")
    for i, section in enumerate(document.sections, 1):
        lines += [f'<a id="{section.key}"></a>', "", f"## {i}. {section.title}", ""]
        for block in section.blocks:
            lines += _md_block(block, csv_names, out_dir, image_names, level=3)
    return "\n".join(lines).rstrip() + "\n"


def _md_block(
    block: Block,
    csv_names: dict[int, str],
    out_dir: Path,
    image_names: dict[int, str],
    level: int,
) -> list[str]:
    if isinstance(block, Paragraph):
        return [block.text, ""]
    if isinstance(block, Note):
        return [f"> **Note:** {block.text}", ""]
    if isinstance(block, Heading):
        return [f"{'#' * level} {block.text}", ""]
    if isinstance(block, Figure):
        target = out_dir / IMAGES_DIR / image_names[id(block)]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(block.path, target)
        relative = target.relative_to(out_dir).as_posix()
        return [f"![{_md_text(block.caption)}]({relative})", "", f"*{_md_text(block.caption)}*", ""]
    if isinstance(block, Table):
        return _md_table(block, csv_names[id(block)])
    if isinstance(block, Columns):
        lines: list[str] = []
        for panel in block.panels:
            lines += [f"{'#' * (level + 1)} {panel.title}", ""]
            for inner in panel.blocks:
                lines += _md_block(inner, csv_names, out_dir, image_names, level + 2)
        return lines
    raise TypeError(f"unknown block {type(block).__name__}")


def _md_text(text: str) -> str:
    return _md_cell(text).replace("[", "(").replace("]", ")")


def _md_cell(text: str) -> str:
    """A table cell: one line, no column break; brackets stay (``0.5 [0.4, 0.6]``)."""
    return text.replace("\n", " ").replace("|", "\\|")


def _md_table(table: Table, csv_name: str) -> list[str]:
    caption = f"{table.caption} · " if table.caption else ""
    link = f"CSV: [{TABLES_DIR}/{csv_name}]({TABLES_DIR}/{csv_name})"
    if table.max_rows == 0:
        return [f"{caption}{link} ({len(table.rows)} rows)", ""]
    shown = table.rows if table.max_rows is None else table.rows[: table.max_rows]
    lines = [
        "| " + " | ".join(_md_text(c) for c in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(format_cell(v)) for v in row) + " |" for row in shown]
    more = len(table.rows) - len(shown)
    lines.append("")
    if more > 0:
        lines += [f"… {more} more rows in the CSV.", ""]
    lines += [f"{caption}{link}", ""]
    return lines
