"""Radii of latents: exact lengths, and the chi distribution of Gaussian latents by Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from aelatent.core.radius import PERCENTILES, radii, radius_stats

SEED = 11


def test_radii_are_euclidean_lengths():
    rng = np.random.default_rng(SEED)
    latents = (rng.standard_normal((70_001, 5)) * 3).astype(np.float32)  # several row blocks
    expected = np.linalg.norm(latents.astype(np.float64), axis=1)
    np.testing.assert_allclose(radii(latents), expected, rtol=1e-12)
    assert radii(latents).dtype == np.float64


def test_gaussian_latents_have_chi_distributed_radii():
    """|z| of N(0, s^2 I_d) is s * chi_d: mean s*sqrt(2)*G((d+1)/2)/G(d/2), var s^2 d - mean^2."""
    rng = np.random.default_rng(SEED)
    d, s, n = 64, 0.7, 20_000
    stats = radius_stats(radii(rng.standard_normal((n, d)) * s))
    mean = s * math.sqrt(2) * math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    std = math.sqrt(s * s * d - mean * mean)
    assert stats.mean == pytest.approx(mean, abs=4 * std / math.sqrt(n))
    assert stats.std == pytest.approx(std, abs=4 * std / math.sqrt(2 * n))
    # chi_d is close to normal for large d: the median sits near the mean
    assert stats.percentiles[50] == pytest.approx(mean, abs=0.02 * mean)


def test_histogram_percentiles_and_metrics():
    rng = np.random.default_rng(SEED)
    lengths = rng.gamma(9.0, size=5000)
    stats = radius_stats(lengths, n_bins=50)
    assert stats.counts.sum() == 5000 and stats.counts.dtype == np.int64
    assert stats.edges[0] == lengths.min() and stats.edges[-1] == lengths.max()
    assert len(stats.edges) == 51
    for q in PERCENTILES:
        assert stats.percentiles[q] == pytest.approx(np.percentile(lengths, q))
    assert stats.std == pytest.approx(np.std(lengths, ddof=1))
    assert set(stats.metrics()) == {
        "radius_mean",
        "radius_std",
        "radius_min",
        "radius_max",
        "radius_p1",
        "radius_p5",
        "radius_p50",
        "radius_p95",
        "radius_p99",
    }


def test_equal_radii_get_a_visible_bin():
    stats = radius_stats(np.full(10, 3.0))
    assert stats.counts.sum() == 10 and stats.std == 0.0
    assert stats.edges[0] < 3.0 < stats.edges[-1]
