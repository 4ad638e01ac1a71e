"""The k-NN test's glue inside evaluate: sizes, metric names, the table (no MLflow)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from aelatent.core.samplers import GaussianSampler
from aelatent.errors import UserError
from aelatent.jobs.evaluate.knn import (
    KNN_COLUMNS,
    RegionTest,
    check_knn_sizes,
)
from aelatent.schema import knn_metric


def test_k_must_fit_the_real_and_the_generated_sets():
    check_knn_sizes(5, 2000, 360)
    check_knn_sizes(500, 0, 10)  # knn_n = 0: no k-NN test, nothing to check
    with pytest.raises(UserError, match=r"knn_k=360 is too large.*has 360; give knn_k < 360"):
        check_knn_sizes(360, 2000, 360)
    with pytest.raises(UserError, match=r"at most knn_n\) has 50"):
        check_knn_sizes(60, 50, 400)


def test_region_test_names_its_metrics_like_the_hit_figures(tmp_path):
    rng = np.random.default_rng(0)
    train, heldout = rng.standard_normal((300, 6)), rng.standard_normal((40, 6))
    region = RegionTest(train, heldout, k=3, n=200, seed=1)
    start = region.start_metrics()
    assert start["knn_n_real"] == 200 and start["knn_n_heldout"] == 40
    assert {"precision/heldout", "recall_lo/heldout", "coverage_hi/heldout"} <= set(start)
    sampler = GaussianSampler(np.zeros(6), np.ones(6))
    metrics = region.score("gaussian", sampler, [0.5, 1.0], 1)
    assert knn_metric("precision", "gaussian", 0.5) == "precision/gaussian/b0.5"
    for b in ("0.5", "1"):
        for kind in ("precision", "recall", "density", "coverage"):
            key = f"gaussian/b{b}"
            assert (
                metrics[f"{kind}_lo/{key}"]
                <= metrics[f"{kind}/{key}"]
                <= metrics[f"{kind}_hi/{key}"]
            )
    assert metrics["recall/gaussian/b0.5"] < metrics["recall/gaussian/b1"]
    files = region.files(tmp_path, "gaussian", {1.0: {0.5: (1.0, 0.9, 1.0)}}, None, "scale s")
    assert [p.name for p in files] == ["box_vs_knn_gaussian.png", "knn_scores.csv"]
    with files[1].open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == KNN_COLUMNS
    assert [(r["sampler"], r["b"]) for r in rows] == [
        ("gaussian", "0.5"),
        ("gaussian", "1"),
        ("heldout", ""),
    ]
