"""Report content and rendering from fake collected data: no MLflow, no TensorFlow, fast."""

from __future__ import annotations

import base64
import csv
import math
import re
from pathlib import Path

import pytest
from PIL import Image

from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.content import build_document
from aelatent.reporting.document import Document, Figure, Note, Paragraph, Section, Table, walk
from aelatent.reporting.render import format_cell, write_document
from aelatent.reporting.sections.hit_metrics import CEILING_ROW

SECTIONS = (
    "runs",
    "configuration",
    "distributions",
    "observations",
    "dominant",
    "radius",
    "verdict",
    "hits",
    "search",
    "decoded",
)


def _png(path: Path, shade: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), (shade, 80, 200 - shade)).save(path)
    return path


def _artifacts(root: Path, run_id: str, paths: list[str]) -> dict[str, Path]:
    found = {}
    for i, path in enumerate(paths):
        local = root / run_id / path
        if path.endswith(".png"):
            _png(local, 40 + 10 * i)
        found[path] = local
    return found


def _components_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["component", "mu", "hw", "sigma", "mean", "std", "fit_r2", "dominant"])
        for c in range(8):
            writer.writerow([c, 0.1 * c, 1.0 + 0.5 * c, 0.4, 0.1 * c, 0.5, 0.97, c in (3, 7)])
    return path


def _train(root: Path, run_id: str, case: str) -> RunData:
    artifacts = _artifacts(
        root,
        run_id,
        [
            "reconstructions.png",
            "histograms/components.png",
            "histograms/dominant.png",
            "stats/radius.png",
            "correlations/dominant_pair.png",
            "pca/spectrum.png",
            "extra/unexpected.png",
        ],
    )
    artifacts["stats/components.csv"] = _components_csv(root / run_id / "stats/components.csv")
    return RunData(
        run_id=run_id,
        name=f"train case {case}",
        entry_point="train",
        status="FINISHED",
        start_time=1_700_000_000_000,
        tags={"case": case, "dataset": "orl"},
        params={"model.encoder.filters": "32,64" if case == "I" else "64,64", "seed": "0"},
        metrics={
            "frac_gaussian_like": 0.93,
            "frac_mu_near_0": 0.95,
            "value_min": -6.2,
            "value_max": 7.1,
            "n_mu_abs_ge_0.25": 12.0,
            "n_mu_abs_ge_1": 2.0,
            "n_hw_ge_1": 30.0,
            "n_hw_ge_1.5": 11.0,
            "n_hw_ge_3": 7.0,
            "n_dominant": 2.0,
            "radius_mean": 10.5,
            "radius_std": 1.25,
            "final_loss": 0.012,
        },
        histories={"loss": [(0, 0.05), (1, 0.02)], "val_loss": [(0, 0.06), (1, 0.03)]},
        artifacts=artifacts,
    )


def _evaluate(root: Path) -> RunData:
    metrics = {}
    for b in ("1", "1.5", "12"):
        for k in ("1", "2"):
            metrics[f"hit_rate/uniform/b{b}/k{k}"] = 0.5 if b == "1" else 0.0
            metrics[f"hits/uniform/b{b}/k{k}"] = 100.0 if b == "1" else 0.0
            metrics[f"log10_p_hit/uniform/b{b}/k{k}"] = -0.3 if b == "1" else -120.0
        metrics[f"radius_mean/uniform/b{b}"] = 9.2 * float(b)
        metrics[f"radius_std/uniform/b{b}"] = 0.4 * float(b)
        metrics[f"radius_mean_theory/uniform/b{b}"] = 9.23 * float(b)
        metrics[f"radius_std_theory/uniform/b{b}"] = 0.41 * float(b)
    return RunData(
        run_id="eval1",
        name="evaluate case I",
        entry_point="evaluate",
        status="FINISHED",
        tags={"case": "I", "train_run": "train1"},
        params={"sampler": "uniform"},
        metrics=metrics,
        artifacts=_artifacts(
            root,
            "eval1",
            ["hits/heatmap_uniform.png", "radius/radii_uniform.png", "decoded/uniform_b1.png"],
        ),
    )


def _windows_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "component",
                "estimator",
                "mu",
                "mu_lo",
                "mu_hi",
                "mu_se",
                "hw",
                "hw_lo",
                "hw_hi",
                "hw_se",
            ]
        )
        for c in range(8):
            writer.writerow([c, "kde" if c == 5 else "fit", 0.1, 0, 0.2, 0.05, 1, 0.9, 1.1, 0.05])
    return path


def _evaluate_new(root: Path, run_id: str = "eval2") -> RunData:
    """An evaluate run with intervals, the held-out ceiling and method 1 (the grid)."""
    metrics = {"n_heldout": 40.0}
    for b in ("1", "2"):
        for k in ("1", "2"):
            for sampler in ("uniform", "mvn"):
                key = f"{sampler}/b{b}/k{k}"
                metrics |= {
                    f"hit_rate/{key}": 0.0123,
                    f"hit_rate_lo/{key}": 0.0101,
                    f"hit_rate_hi/{key}": 0.0149,
                    f"hits/{key}": 123.0,
                    f"log10_p_hit/{key}": -1.91,
                    f"log10_p_hit_lo/{key}": -2.05,
                    f"log10_p_hit_hi/{key}": -1.77,
                    f"log10_p_hit_se/{key}": 0.07,
                }
            metrics[f"ghk_rel_se/mvn/b{b}/k{k}"] = 0.8 if (b, k) == ("2", "1") else 0.05
            metrics[f"grid_log10_inside/b{b}/k{k}"] = -math.inf if k == "1" else 3.5
        metrics[f"grid_log10_points/b{b}"] = 8 * math.log10(4 * float(b) + 1)
    for k, rate in (("1", 0.625), ("2", 0.975)):
        metrics |= {
            f"hit_rate/heldout/k{k}": rate,
            f"hit_rate_lo/heldout/k{k}": rate - 0.15,
            f"hit_rate_hi/heldout/k{k}": min(rate + 0.1, 1.0),
            f"hits/heldout/k{k}": rate * 40,
        }
    artifacts = _artifacts(
        root,
        run_id,
        ["hits/heatmap_uniform.png", "hits/heatmap_mvn.png", "hits/rate_curves_uniform.png"],
    )
    artifacts["stats/windows.csv"] = _windows_csv(root / run_id / "stats/windows.csv")
    return RunData(
        run_id=run_id,
        name="evaluate case I (new)",
        entry_point="evaluate",
        status="FINISHED",
        tags={"case": "I", "train_run": "train1"},
        params={"sampler": "all", "estimate": "auto", "grid_spacing": "0.5"},
        metrics=metrics,
        artifacts=artifacts,
    )


def _search(root: Path) -> RunData:
    trials = [
        RunData(
            f"t{i}",
            f"trial {i}",
            "search",
            "FINISHED",
            params={"b": str(b)},
            metrics={"objective": obj},
        )
        for i, (b, obj) in enumerate([(1.0, 0.2), (1.4, 0.9), (3.0, 0.0)])
    ]
    return RunData(
        run_id="search1",
        name="search case I",
        entry_point="search",
        status="FINISHED",
        params={"k": "2", "n_trials": "3"},
        metrics={"best_b": 1.4, "best_value": 0.9, "b_theory": 1.3},
        artifacts=_artifacts(root, "search1", ["plots/history.png"]),
        children=trials,
    )


@pytest.fixture
def report_data(tmp_path: Path) -> ReportData:
    """Case I measured completely; case II only trained (evaluate and search not run)."""
    root = tmp_path / "artifacts"
    return ReportData(
        cases=[
            CaseData("I", "I", _train(root, "train1", "I"), [_evaluate(root)], _search(root)),
            CaseData("II", "II", _train(root, "train2", "II")),
        ],
        selection="two fake train runs",
        tracking_uri="sqlite:///fake.db",
        created="2024-01-01 00:00 UTC",
    )


def _table(document: Document, name: str) -> Table:
    tables = [b for s in document.sections for b in walk(s.blocks) if isinstance(b, Table)]
    return next(t for t in tables if t.name == name)


def _notes(section: Section) -> list[str]:
    return [b.text for b in walk(section.blocks) if isinstance(b, Note)]


def test_every_section_and_missing_pieces_are_notes(report_data, tmp_path):
    document = build_document(report_data, tmp_path / "work")
    keys = [s.key for s in document.sections]
    assert keys[: len(SECTIONS)] == list(SECTIONS)
    by_key = {s.key: s for s in document.sections}
    for key in ("hits", "search", "decoded", "radius"):
        assert any("Not run" in n and "train2" in n for n in _notes(by_key[key])), key
    assert not any("train1" in n for n in _notes(by_key["search"]))
    assert "other" in keys  # extra/unexpected.png is shown, not dropped


def test_tables_carry_the_numbers(report_data, tmp_path):
    document = build_document(report_data, tmp_path / "work")
    observations = _table(document, "observations")
    rows = {row[1]: row for row in observations.rows}
    hw3 = rows["components with hw >= 3"]
    assert hw3[2] == "<= 5" and hw3[3] == 7.0 and hw3[4] == "no"
    assert rows["components with |mu| >= 0.25"][4] == "yes"
    assert rows["value range covered"][3] == "[-6.2, 7.1]"
    dominant = _table(document, "dominant_I")
    assert [row[0] for row in dominant.rows] == [3, 7]
    assert len(_table(document, "dominant_reference").rows) == 20
    hit_rate = _table(document, "hit_rate_I_uniform")
    assert hit_rate.columns == ["b \\ k", "k=1", "k=2"]
    assert [row[0] for row in hit_rate.rows] == [1, 1.5, 12]
    assert hit_rate.rows[0][1:] == [0.5, 0.5]
    trials = _table(document, "search_trials_I")
    assert [row[1] for row in trials.rows] == [1.4, 1.0, 3.0]  # best first
    search = dict((r[0], r[1]) for r in _table(document, "search_I").rows)
    assert search["best_b"] == 1.4 and search["b_theory"] == 1.3
    radius = _table(document, "radius_I")
    assert radius.rows[0][:4] == ["real latents", None, 10.5, 1.25]
    assert radius.rows[1][:2] == ["uniform", 1]


def test_html_is_self_contained_and_markdown_links_resolve(report_data, tmp_path):
    document = build_document(report_data, tmp_path / "work")
    out = tmp_path / "out"
    files = write_document(document, out)
    html = files.html.read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) >= 15
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:4] == b"\x89PNG"
    assert not re.search(r'(src|href)="(https?:|//|file:)', html)
    assert "<link" not in html and "<script" not in html
    assert "Not run" in html

    markdown = files.markdown.read_text()
    for section in document.sections:
        assert f"## {document.sections.index(section) + 1}. {section.title}" in markdown
    links = re.findall(r"\]\(((?:images|tables)/[^)]+)\)", markdown)
    assert len([x for x in links if x.startswith("images/")]) == len(sources)
    for link in links:
        assert (out / link).is_file(), link

    with (out / "tables" / "observations.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["#", "observation", "reference (CelebA, case II, 30 epochs)"]
    assert {p.name for p in files.tables} >= {
        "runs.csv",
        "configuration.csv",
        "training_curves.csv",
        "observations.csv",
        "hit_rate_I_uniform.csv",
        "log10_p_hit_I_uniform.csv",
        "search_trials_I.csv",
    }


def test_no_runs_at_all_still_renders(tmp_path):
    data = ReportData(cases=[], selection="nothing", tracking_uri="sqlite:///x.db", created="now")
    files = write_document(build_document(data, tmp_path / "work"), tmp_path / "out")
    html = files.html.read_text()
    assert html.count("Not run: no train run was selected") >= 5


@pytest.fixture
def new_style(tmp_path: Path) -> ReportData:
    """Case I evaluated by a new-style run; case II by an old-style one (no intervals)."""
    root = tmp_path / "artifacts"
    return ReportData(
        cases=[
            CaseData("I", "I", _train(root, "train1", "I"), [_evaluate_new(root)]),
            CaseData("II", "II", _train(root, "train2", "II"), [_evaluate(root)]),
        ],
        selection="fake runs",
        tracking_uri="sqlite:///fake.db",
        created="2024-01-01 00:00 UTC",
    )


def _blocks(document: Document, key: str) -> list:
    return list(walk(next(s for s in document.sections if s.key == key).blocks))


def test_hit_tables_show_intervals_and_the_ceiling(new_style, tmp_path):
    document = build_document(new_style, tmp_path / "work")
    rate = _table(document, "hit_rate_I_uniform")
    assert [row[0] for row in rate.rows] == [1, 2, CEILING_ROW]
    assert rate.rows[0][1:] == ["0.0123 [0.0101, 0.0149]"] * 2
    assert rate.rows[-1][1:] == ["0.625 [0.475, 0.725]", "0.975 [0.825, 1]"]
    assert "[95% interval]" in rate.caption and "40 held-out real latents" in rate.caption
    log10 = _table(document, "log10_p_hit_I_uniform")
    assert log10.rows[0][1:] == ["-1.91 [-2.05, -1.77]"] * 2
    assert "exact" in log10.caption
    figures = _table(document, "hit_figures_I_uniform")
    assert figures.max_rows == 0 and figures.rows[0][:6] == ["uniform", 1, 1, 123.0, 0.0123, 0.0101]
    assert figures.rows[-1][:4] == ["heldout", None, 2, 39.0]
    texts = [b.text for b in _blocks(document, "hits") if isinstance(b, Paragraph)]
    assert any("Windows: estimate=auto" in t and "fit 7, kde 1" in t for t in texts)
    curves = [
        b
        for b in _blocks(document, "hits")
        if isinstance(b, Figure) and b.path.name == "hit_rates_I_uniform.png"
    ]
    assert len(curves) == 1 and curves[0].path.is_file() and "ceiling" in curves[0].caption
    # the run's own rate curves are not repeated, nor listed as other figures
    assert not any(
        "rate_curves_uniform" in b.caption
        for s in document.sections
        for b in walk(s.blocks)
        if isinstance(b, Figure)
    )


def test_uncertain_ghk_estimates_are_flagged(new_style, tmp_path):
    document = build_document(new_style, tmp_path / "work")
    log10 = _table(document, "log10_p_hit_I_mvn")
    assert "GHK estimate" in log10.caption
    rows = {row[0]: row[1:] for row in log10.rows}
    assert rows[2] == ["† -1.91 [-2.05, -1.77]", "-1.91 [-2.05, -1.77]"]
    assert rows[1] == ["-1.91 [-2.05, -1.77]"] * 2
    notes = [b.text for b in _blocks(document, "hits") if isinstance(b, Paragraph)]
    assert any(t.startswith("† too uncertain to read") and "b=2 k=1" in t for t in notes)
    assert [r[-1] for r in _table(document, "hit_figures_I_mvn").rows[:4]] == [
        False,
        False,
        True,
        False,
    ]


def test_grid_method_table(new_style, tmp_path):
    document = build_document(new_style, tmp_path / "work")
    grid = _table(document, "grid_method_I")
    assert grid.columns == ["b", "log10 points", "log10 inside, k=1", "log10 inside, k=2"]
    assert grid.rows[0][0] == 1 and grid.rows[0][1] == pytest.approx(8 * math.log10(5))
    assert grid.rows[0][2:] == [-math.inf, 3.5]
    assert "spacing 0.5" in grid.caption
    hits = next(s for s in document.sections if s.key == "hits")
    assert any("predate method 1" in n for n in _notes(hits))  # case II: an old run


def test_old_runs_render_without_intervals(new_style, tmp_path):
    document = build_document(new_style, tmp_path / "work")
    rate = _table(document, "hit_rate_II_uniform")
    assert [row[0] for row in rate.rows] == [1, 1.5, 12]  # no ceiling row
    assert "interval" not in rate.caption
    assert rate.rows[0][1:] == [0.5, 0.5]
    assert _table(document, "log10_p_hit_II_uniform").rows[0][1:] == [-0.3, -0.3]
    notes = _notes(next(s for s in document.sections if s.key == "hits"))
    assert any("no held-out ceiling" in n for n in notes)
    texts = [b.text for b in _blocks(document, "hits") if isinstance(b, Paragraph)]
    assert any("stats/components.csv" in t and "before the estimate" in t for t in texts)
    out = tmp_path / "out"
    files = write_document(document, out)
    html = files.html.read_text()
    assert '<td class="num">0.0123 [0.0101, 0.0149]</td>' in html
    assert "held-out real latents (ceiling)" in html
    markdown = files.markdown.read_text()
    assert "| 1 | 0.0123 [0.0101, 0.0149] | 0.0123 [0.0101, 0.0149] |" in markdown
    assert "| 1 | 0.5 | 0.5 |" in markdown
    assert (out / "tables" / "hit_figures_I_mvn.csv").is_file()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (3, "3"),
        (12.0, "12"),
        (0.000123456, "0.0001235"),
        (float("nan"), "–"),
        ("x", "x"),
        (True, "yes"),
    ],
)
def test_format_cell(value, text):
    assert format_cell(value) == text
