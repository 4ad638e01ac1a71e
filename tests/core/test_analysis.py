"""The whole analysis on synthetic latents with known structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aelatent.core.analysis import PAIR_SAMPLES, analyse_latents
from aelatent.core.components import DominanceThresholds

SEED = 17
N, Z = 20_000, 32
MUS = {3: 1.5, 7: -0.6, 11: 0.4}  # |mu| >= 0.25
WIDE = {20: 0.9, 25: 1.4}  # sigma -> hw = 2.12, 3.30 (>= 1.5)
BASE_SIGMA = 0.35  # hw = 0.82


def _latents() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((N, Z)) * BASE_SIGMA
    for j, sigma in WIDE.items():
        latents[:, j] *= sigma / BASE_SIGMA
    latents[:, 30] = 0.9 * latents[:, 20] + math.sqrt(1 - 0.81) * latents[:, 30] * 0.9 / 0.35
    for j, mu in MUS.items():
        latents[:, j] += mu
    return latents.astype(np.float32)


@pytest.fixture(scope="module")
def analysis():
    return analyse_latents(_latents())


EXPECTED_METRICS = {
    "frac_gaussian_like",
    "frac_mu_near_0",
    "value_min",
    "value_max",
    "value_range",
    "n_mu_abs_ge_0.25",
    "n_mu_abs_ge_1",
    "n_hw_ge_1",
    "n_hw_ge_1.5",
    "n_hw_ge_3",
    "n_dominant",
    "centre_norm",
    "n_axes_centre_90",
    "radius_mean",
    "radius_std",
    "radius_min",
    "radius_max",
    "radius_p1",
    "radius_p5",
    "radius_p50",
    "radius_p95",
    "radius_p99",
    "pca_n_90",
    "pca_n_99",
    "corr_max_abs",
    # in the run's own units and beyond the windows' errors (core/significance.py)
    "scale_median_hw",
    "n_mu_abs_ge_0.25s",
    "n_mu_abs_ge_1s",
    "n_hw_ge_1.5s",
    "n_hw_ge_2s",
    "n_hw_ge_3s",
    "n_sig_mu_abs_ge_0.25s",
    "n_sig_mu_abs_ge_1s",
    "n_sig_hw_ge_1.5s",
    "n_sig_hw_ge_2s",
    "n_sig_hw_ge_3s",
    "n_sig_mu_abs_ge_0.25",
    "n_sig_mu_abs_ge_1",
    "n_sig_hw_ge_1",
    "n_sig_hw_ge_1.5",
    "n_sig_hw_ge_3",
    "n_dominant_sig",
}


def test_metric_names_and_values(analysis):
    metrics = analysis.metrics()
    assert set(metrics) == EXPECTED_METRICS
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["n_mu_abs_ge_0.25"] == 3 and metrics["n_mu_abs_ge_1"] == 1
    assert metrics["n_hw_ge_1.5"] == 3  # 20, 25 and 30 (which copies 20's spread)
    assert metrics["n_hw_ge_3"] == 1
    assert metrics["n_dominant"] == 6
    assert metrics["frac_mu_near_0"] == (Z - 3) / Z
    assert metrics["frac_gaussian_like"] == 1.0
    assert metrics["value_range"] % 0.5 == 0 and metrics["value_range"] >= metrics["value_max"]
    centre = math.sqrt(sum(mu * mu for mu in MUS.values()))
    assert metrics["centre_norm"] == pytest.approx(centre, abs=0.03)
    assert metrics["n_axes_centre_90"] == 2  # 1.5^2 + 0.6^2 = 2.61 of 2.77 is 94%
    assert metrics["corr_max_abs"] == pytest.approx(0.9, abs=0.01)
    # s = the hw of the 27 base components, 0.82: the planted |mu| 1.5, 0.6, 0.4 >= 0.25 s,
    # only 1.5 >= 1 s; hw 2.12, 3.30, 2.12 >= 2 s, only 3.30 >= 3 s; at n = 20,000 all clear
    assert metrics["scale_median_hw"] == pytest.approx(2.3548 * BASE_SIGMA, rel=0.05)
    assert metrics["n_sig_mu_abs_ge_0.25s"] == 3 and metrics["n_sig_mu_abs_ge_1s"] == 1
    assert metrics["n_sig_hw_ge_1.5s"] == metrics["n_sig_hw_ge_2s"] == 3
    assert metrics["n_sig_hw_ge_3s"] == 1
    assert metrics["n_sig_mu_abs_ge_0.25"] == 3 and metrics["n_sig_hw_ge_1.5"] == 3
    assert metrics["n_dominant_sig"] == 6


def test_dominant_components_and_pair(analysis):
    np.testing.assert_array_equal(analysis.dominant_components, [3, 7, 11, 20, 25, 30])
    np.testing.assert_array_equal(
        np.flatnonzero(analysis.dominant_significant), [3, 7, 11, 20, 25, 30]
    )
    assert analysis.dominant_pair == (3, 7)  # scores |mu|/0.25: 6, 2.4; then 25: hw/1.5 = 2.2
    assert analysis.pair_sample.shape == (PAIR_SAMPLES, 2)
    assert analysis.pair_sample[:, 0].mean() == pytest.approx(1.5, abs=0.05)
    assert (analysis.pairs.i[0], analysis.pairs.j[0]) == (20, 30)


def test_radius_matches_the_planted_spread(analysis):
    latents = _latents().astype(np.float64)
    r = np.linalg.norm(latents, axis=1)
    assert analysis.metrics()["radius_mean"] == pytest.approx(r.mean(), rel=1e-9)
    assert analysis.radius.counts.sum() == N


def test_deterministic_and_input_untouched():
    latents = _latents()
    before = latents.copy()
    first = analyse_latents(latents)
    second = analyse_latents(latents)
    np.testing.assert_array_equal(latents, before)
    assert first.metrics() == second.metrics()
    np.testing.assert_array_equal(first.pair_sample, second.pair_sample)


def test_thresholds_are_applied():
    strict = analyse_latents(_latents(), thresholds=DominanceThresholds(mu_abs=1.0, hw=3.0))
    np.testing.assert_array_equal(strict.dominant_components, [3, 25])
    assert strict.metrics()["n_mu_abs_ge_0.25"] == 3  # observation counts keep the study's levels


def test_small_sample_like_the_built_in_faces():
    rng = np.random.default_rng(SEED)
    analysis = analyse_latents((rng.standard_normal((400, 256)) * 0.5).astype(np.float32))
    metrics = analysis.metrics()
    assert metrics["frac_gaussian_like"] >= 0.97
    assert analysis.histograms.counts.shape == (256, 100)
    fit = analyse_latents(
        (rng.standard_normal((400, 256)) * 0.5).astype(np.float32),
        thresholds=DominanceThresholds(estimate="fit"),
    )
    assert fit.metrics()["n_mu_abs_ge_0.25"] == 0  # mean: SE 0.025, nowhere near 0.25


@pytest.mark.parametrize(
    ("latents", "match"),
    [
        (np.zeros(5, np.float32), "shape"),
        (np.zeros((1, 3), np.float32), "shape"),
        (np.zeros((4, 3), np.int64), "floating"),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "NaN"),
    ],
)
def test_bad_input_is_refused(latents, match):
    with pytest.raises(ValueError, match=match):
        analyse_latents(latents)
