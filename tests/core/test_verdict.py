"""The verdict: the real-against-real row passes at the nominal rate, generators that ignore
the correlations are rejected, and the rows carry what the job and the report read."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from aelatent.core import verdict as v
from aelatent.core.sampler_registry import build_sampler
from aelatent.core.verdict import Criterion, VerdictRow

D = 16
TESTS = ("c2st_linear", "c2st_nonlinear", "mmd", "fd", "ellipsoid")


def _latents(n: int, rng: np.random.Generator, heavy: bool = False) -> np.ndarray:
    """90% of the variance in 3 tilted directions of 16; Gaussian or t5 components."""
    scales = np.r_[np.full(3, 3.0), np.full(D - 3, 0.4)]
    basis = np.linalg.qr(np.random.default_rng(7).standard_normal((D, D)))[0]
    e = rng.standard_t(5, (n, D)) / math.sqrt(5 / 3) if heavy else rng.standard_normal((n, D))
    return (e * scales) @ basis.T + 0.5


def _fit(name: str):
    def fit(x: np.ndarray, seed: int):
        hw = 2.3548 * x.std(0)
        return build_sampler(name, x.mean(0), hw, x, seed=seed)

    return fit


@pytest.mark.parametrize("heavy", [False, True], ids=["gaussian", "t5"])
def test_the_real_row_differs_at_most_at_the_nominal_rate(heavy):
    """Over 40 data sets of 120 real latents (3 splits each, Holm over 5 tests), the real
    row 'differs' in a binomial count with p <= 0.05 (each aggregated p-value is valid, Holm
    keeps the family-wise level): at most the 99.9% quantile of binomial(40, 0.05), 7. The
    full calibration (200 data sets, n = 40 to 2,000) is in benchmarks/bench_verdict.py."""
    rng = np.random.default_rng(11 if heavy else 10)
    differs = 0
    for i in range(40):
        splits = v.make_splits(_latents(120, rng, heavy), 3, seed=i)
        differs += v.real_rows(splits, np.empty((0, D)), TESTS)[0].verdict == "differs"
    assert differs <= stats.binom.ppf(0.999, 40, 0.05), differs


def test_generators_that_ignore_the_correlations_are_rejected_and_mvn_ranks_first():
    rng = np.random.default_rng(3)
    latents, heldout = _latents(400, rng), _latents(40, rng)
    splits = v.make_splits(latents, 2, seed=0)
    rows = v.real_rows(splits, heldout, TESTS)
    for name, axis, scale in (
        ("uniform", "b", 2.0),
        ("gaussian", "scale", 1.0),
        ("mvn", "scale", 1.0),
    ):
        fitted = v.fit_samplers(_fit(name), splits)
        rows.append(v.generator_row(name, axis, scale, fitted, splits, TESTS))
    by_name = {r.name: r for r in rows}
    assert by_name["uniform"].verdict == "differs" and by_name["gaussian"].verdict == "differs"
    assert "ellipsoid" in by_name["gaussian"].rejected_by  # the box's blind spot
    assert [r.name for r in v.rank(rows)][:3] == ["real", "heldout", "mvn"]
    assert by_name["real"].verdict == "indistinguishable"


def _criterion(test: str, p: float) -> Criterion:
    return Criterion(test, 0.5, 0.4, 0.6, p, 10, 10, (0.5,))


def test_holm_rejects_in_order_and_stops_at_the_first_failure():
    row = VerdictRow(
        "mvn",
        "scale",
        1.0,
        {t: _criterion(t, p) for t, p in (("mmd", 0.011), ("fd", 0.02), ("c2st_linear", 0.9))},
        0.6,
    )
    # Holm at 0.05 over 3: 0.011 <= 0.0167 rejects, 0.02 <= 0.025 rejects, 0.9 > 0.05 stops
    assert row.rejected_by == ("mmd", "fd") and row.verdict == "differs"
    lone = VerdictRow(
        "mvn", "scale", 1.0, {"mmd": _criterion("mmd", 0.03), "fd": _criterion("fd", 0.04)}, 0.6
    )
    assert lone.rejected_by == ()  # 0.03 > 0.05 / 2: nothing rejected, the rest not tried


def test_metrics_and_the_json_table_name_every_test():
    row = VerdictRow(
        "uniform", "b", 2.5, {"c2st_nonlinear": _criterion("c2st_nonlinear", 1e-5)}, 0.61
    )
    metrics = row.metrics()
    assert metrics["c2st_nonlinear_acc/uniform/b2.5"] == 0.5
    assert metrics["c2st_nonlinear_acc_lo/uniform/b2.5"] == 0.4
    assert metrics["c2st_nonlinear_p/uniform/b2.5"] == 1e-5
    assert metrics["verdict_differs/uniform/b2.5"] == 1.0
    real = VerdictRow(v.REAL, "", math.nan, {"mmd": _criterion("mmd", 0.5)}, 0.6)
    assert "mmd2/real" in real.metrics()
    rows = v.rows_from_json(v.rows_to_json([real, row], {"n_test": 10}))
    assert [r["label"] for r in rows] == ["real latents (random split)", "uniform b=2.5"]
    assert rows[1]["rejected_by"] == ["c2st_nonlinear"] and rows[0]["value"] is None
    json.dumps(rows)  # plain JSON: no NaN


def test_unknown_tests_and_too_few_latents_are_refused():
    with pytest.raises(ValueError, match="unknown test 'knn'"):
        v.check_tests(["mmd", "knn"])
    assert v.check_tests(["fd", "mmd"]) == ("mmd", "fd")
    with pytest.raises(ValueError, match="at least 16 latents, got 10"):
        v.make_splits(np.zeros((10, 4)), 1, 0)
    assert v.min_training_latents(TESTS) >= 16
