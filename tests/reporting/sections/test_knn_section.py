"""The report's k-NN view: the table per sampler, the box-versus-k-NN figure with the
sampler's decoded grids in the hits section, and the figure itself."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

from aelatent.plots.evaluation import save_box_vs_knn
from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.content import build_document
from aelatent.reporting.document import Figure, Note, Table, walk
from aelatent.reporting.sections.knn import HELDOUT_ROW, knn_cells, knn_heldout


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), (90, 80, 110)).save(path)
    return path


def _evaluate(root: Path) -> RunData:
    metrics: dict[str, float] = {
        "knn_k": 5.0,
        "knn_n_generated": 2000.0,
        "knn_n_real": 360.0,
        "knn_n_heldout": 40.0,
    }
    for b in ("0.5", "1", "2"):
        for k in ("1", "2"):
            metrics[f"hit_rate/gmm/b{b}/k{k}"] = 0.5
            metrics[f"log10_p_hit/gmm/b{b}/k{k}"] = -0.3
        for kind, value in (
            ("precision", 0.9),
            ("recall", 0.4),
            ("density", 1.2),
            ("coverage", 0.7),
        ):
            metrics[f"{kind}/gmm/b{b}"] = value
            metrics[f"{kind}_lo/gmm/b{b}"] = value - 0.05
            metrics[f"{kind}_hi/gmm/b{b}"] = value + 0.05
    for kind in ("precision", "recall", "density", "coverage"):
        metrics[f"{kind}/heldout"] = 0.8
        metrics[f"{kind}_lo/heldout"] = 0.7
        metrics[f"{kind}_hi/heldout"] = 0.9
    paths = [
        "hits/box_vs_knn_gmm.png",
        "hits/heatmap_gmm.png",
        "decoded/gmm_b2.png",
        "decoded/gmm_b0.5.png",
        "decoded/gmm_b1.png",
        "decoded/overview.png",
    ]
    return RunData(
        run_id="eval1",
        name="evaluate case I gmm",
        entry_point="evaluate",
        status="FINISHED",
        tags={"case": "I", "train_run": "train1"},
        params={"samplers": "gmm"},
        metrics=metrics,
        artifacts={p: _png(root / p) for p in paths},
    )


def test_the_hits_section_shows_the_knn_table_figure_and_decoded_grids(tmp_path):
    train = RunData(
        run_id="train1",
        name="train case I",
        entry_point="train",
        status="FINISHED",
        tags={"case": "I"},
    )
    run = _evaluate(tmp_path / "artifacts")
    data = ReportData(
        cases=[CaseData("I", "I", train, [run])],
        selection="fake",
        tracking_uri="sqlite:///fake.db",
        created="2024-01-01 00:00 UTC",
    )
    document = build_document(data, tmp_path / "work")
    hits = next(s for s in document.sections if s.key == "hits")
    table = next(b for b in walk(hits.blocks) if isinstance(b, Table) and b.name == "knn_I_gmm")
    assert table.columns == ["b", "precision", "recall", "density", "coverage"]
    assert [row[0] for row in table.rows] == [0.5, 1.0, 2.0, HELDOUT_ROW]
    assert table.rows[0][1] == "0.9 [0.85, 0.95]"
    figures = [b.caption for b in walk(hits.blocks) if isinstance(b, Figure)]
    box = next(i for i, c in enumerate(figures) if "box_vs_knn_gmm" in c)
    decoded = [i for i, c in enumerate(figures) if "decoded/gmm_b" in c]
    assert decoded == [box + 1, box + 2, box + 3]  # right after the figure, by scale
    assert "gmm_b0.5" in figures[decoded[0]] and "gmm_b2" in figures[decoded[-1]]
    assert not any("knn" in n.text for n in walk(hits.blocks) if isinstance(n, Note))


def test_runs_without_knn_figures_get_a_note(tmp_path):
    run = RunData(
        run_id="old",
        name="evaluate",
        entry_point="evaluate",
        status="FINISHED",
        metrics={"hit_rate/uniform/b1/k1": 0.5},
    )
    assert knn_cells([run], "uniform") == {}
    assert knn_heldout([run]) == ({}, None)
    train = RunData(
        run_id="train1",
        name="train case I",
        entry_point="train",
        status="FINISHED",
        tags={"case": "I"},
    )
    data = ReportData(
        cases=[CaseData("I", "I", train, [run])],
        selection="fake",
        tracking_uri="sqlite:///fake.db",
        created="2024-01-01 00:00 UTC",
    )
    document = build_document(data, tmp_path / "work")
    hits = next(s for s in document.sections if s.key == "hits")
    assert any("no k-NN figures" in n.text for n in walk(hits.blocks) if isinstance(n, Note))


def test_box_vs_knn_figure_draws_with_and_without_intervals(tmp_path):
    rates = {1.0: {0.5: (1.0, 0.99, 1.0), 1.0: (0.7, 0.6, 0.8), 2.0: (0.0, 0.0, 0.01)}}
    knn = {
        "precision": {0.5: (1.0, 0.98, 1.0), 1.0: (0.9, 0.85, 0.95), 2.0: (0.05, 0.0, 0.1)},
        "recall": {0.5: (0.02, 0.0, 0.05), 1.0: (0.9, 0.85, 0.95), 2.0: (1.0, 0.98, 1.0)},
        "density": {0.5: (400.0, 390.0, 410.0), 1.0: (1.0, 0.9, 1.1), 2.0: (0.0, 0.0, 0.0)},
        "coverage": {1.0: (0.8, math.nan, math.nan)},
    }
    path = save_box_vs_knn(
        rates,
        {1.0: (0.75, 0.6, 0.85)},
        knn,
        {"precision": (0.9, 0.8, 0.95)},
        tmp_path / "box.png",
        "scale s",
    )
    assert path.stat().st_size > 10_000
    bare = save_box_vs_knn(rates, None, {}, None, tmp_path / "bare.png")
    assert bare.stat().st_size > 5_000
