"""The report's scale-free observations table: new runs fill it, old runs show dashes."""

from __future__ import annotations

from pathlib import Path

from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.content import build_document
from aelatent.reporting.document import Document, Note, Paragraph, Table, walk
from aelatent.reporting.render import write_document
from aelatent.reporting.sections.observations import SCALE_FREE_LEVELS

OLD_METRICS = {
    "n_mu_abs_ge_0.25": 37.0,
    "n_mu_abs_ge_1": 6.0,
    "n_hw_ge_1": 256.0,
    "n_hw_ge_1.5": 250.0,
    "n_hw_ge_3": 6.0,
    "n_dominant": 256.0,
}
NEW_METRICS = {
    **OLD_METRICS,
    "scale_median_hw": 2.3548,
    "n_mu_abs_ge_0.25s": 4.0,
    "n_mu_abs_ge_1s": 0.0,
    "n_hw_ge_1.5s": 6.0,
    "n_hw_ge_2s": 6.0,
    "n_hw_ge_3s": 0.0,
    "n_sig_mu_abs_ge_0.25s": 4.0,
    "n_sig_mu_abs_ge_1s": 0.0,
    "n_sig_hw_ge_1.5s": 6.0,
    "n_sig_hw_ge_2s": 5.0,
    "n_sig_hw_ge_3s": 0.0,
    "n_sig_mu_abs_ge_0.25": 4.0,
    "n_sig_mu_abs_ge_1": 0.0,
    "n_sig_hw_ge_1": 256.0,
    "n_sig_hw_ge_1.5": 256.0,
    "n_sig_hw_ge_3": 6.0,
    "n_dominant_sig": 10.0,
}


def _data(*metrics: dict[str, float]) -> ReportData:
    cases = [
        CaseData(
            label,
            label,
            RunData(f"train{label}", f"train case {label}", "train", "FINISHED", metrics=dict(m)),
        )
        for label, m in zip(("I", "II"), metrics, strict=False)
    ]
    return ReportData(cases=cases, selection="fake", tracking_uri="sqlite:///x.db", created="now")


def _scale_free(document: Document) -> tuple[Table, list]:
    section = next(s for s in document.sections if s.key == "observations")
    blocks = list(walk(section.blocks))
    name = "observations_scale_free"
    return next(b for b in blocks if isinstance(b, Table) and b.name == name), blocks


def test_a_new_run_fills_the_table_and_an_old_one_shows_dashes(tmp_path: Path):
    document = build_document(_data(NEW_METRICS, OLD_METRICS), tmp_path / "work")
    table, blocks = _scale_free(document)
    assert table.columns[:6] == [
        "level",
        "level in s",
        "case I: study",
        "case I: significant",
        "case I: in s",
        "case I: significant in s",
    ]
    rows = {row[1] or row[0]: row for row in table.rows}
    assert len(rows) == len(SCALE_FREE_LEVELS)
    assert rows["|mu| >= 0.25 s"][2:6] == [37.0, 4.0, 4.0, 4.0]
    assert rows["hw >= 2 s"][2:6] == ["", "", 6.0, 5.0]  # no absolute count at 2
    assert rows["hw >= 1"][2:6] == [256.0, 256.0, "", ""]
    assert rows["dominant: |mu| >= 0.25 s or hw >= 1.5 s"][2:6] == [256.0, "", "", 10.0]
    # case II is from before the metrics: its study count stays, the new ones are dashes
    assert rows["|mu| >= 0.25 s"][6:10] == [37.0, None, None, None]
    text = " ".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "case I s = 2.35" in text and "case II s = –" in text and "Bonferroni" in text
    assert not any(isinstance(b, Note) and "scale-free" in b.text for b in blocks)
    files = write_document(document, tmp_path / "out")
    assert (tmp_path / "out" / "tables" / "observations_scale_free.csv").is_file()
    assert "Scale-free observations" in files.html.read_text()


def test_only_old_runs_still_render(tmp_path: Path):
    document = build_document(_data(OLD_METRICS), tmp_path / "work")
    table, blocks = _scale_free(document)
    assert all(
        cell is None or cell == "" or isinstance(cell, float)
        for row in table.rows
        for cell in row[2:]
    )
    assert any(isinstance(b, Note) and "scale-free" in b.text for b in blocks)
    files = write_document(document, tmp_path / "out")
    assert "Scale-free observations" in files.markdown.read_text()
