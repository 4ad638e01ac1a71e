"""Correlations and PCA recover a planted correlation and a known low-rank structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aelatent.core.correlations import (
    PcaSpectrum,
    correlation_matrix,
    mean_and_covariance,
    pca_spectrum,
    top_pairs,
)

SEED = 13


def test_mean_and_covariance_equal_numpy():
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((9000, 7)) * [1, 2, 3, 0.1, 5, 1, 1] + 40.0  # far off 0
    mean, cov = mean_and_covariance(latents)
    np.testing.assert_allclose(mean, latents.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(latents, rowvar=False), rtol=1e-10, atol=1e-12)
    # float32 input: float32 products per block, float64 sums; ~1e-6 relative
    _, cov32 = mean_and_covariance(latents.astype(np.float32))
    np.testing.assert_allclose(
        cov32,
        np.cov(latents.astype(np.float32).astype(np.float64), rowvar=False),
        rtol=1e-5,
        atol=1e-6,
    )


def test_planted_correlation_is_the_top_pair():
    rng = np.random.default_rng(SEED)
    n, r = 20_000, 0.8
    latents = rng.standard_normal((n, 12))
    latents[:, 9] = r * latents[:, 3] + math.sqrt(1 - r * r) * latents[:, 9]
    latents[:, 5] = -0.5 * latents[:, 1] + math.sqrt(0.75) * latents[:, 5]
    corr = correlation_matrix(mean_and_covariance(latents)[1])
    np.testing.assert_allclose(corr, np.corrcoef(latents, rowvar=False), atol=1e-12)
    pairs = top_pairs(corr, k=3)
    assert (pairs.i[0], pairs.j[0]) == (3, 9)
    assert pairs.r[0] == pytest.approx(r, abs=4 * (1 - r * r) / math.sqrt(n))
    assert (pairs.i[1], pairs.j[1]) == (1, 5)
    assert pairs.r[1] == pytest.approx(-0.5, abs=4 * 0.75 / math.sqrt(n))
    assert abs(pairs.r[2]) < 0.05  # the rest is noise


def test_top_pairs_when_fewer_pairs_than_asked():
    pairs = top_pairs(np.array([[1.0, 0.2, -0.9], [0.2, 1.0, 0.1], [-0.9, 0.1, 1.0]]), k=20)
    assert list(zip(pairs.i, pairs.j, strict=True)) == [(0, 2), (0, 1), (1, 2)]


def test_constant_component_correlates_zero():
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((100, 3))
    latents[:, 2] = 1.5
    corr = correlation_matrix(mean_and_covariance(latents)[1])
    assert np.all(np.isfinite(corr))
    np.testing.assert_array_equal(corr[2, :2], 0.0)
    assert corr[2, 2] == 1.0


def test_low_rank_latents_have_a_short_spectrum():
    rng = np.random.default_rng(SEED)
    n, d, rank = 5000, 40, 3
    factors = rng.standard_normal((n, rank)) * [3.0, 2.0, 1.0]
    latents = factors @ rng.standard_normal((rank, d)) + 0.01 * rng.standard_normal((n, d))
    cov = mean_and_covariance(latents.astype(np.float32))[1]
    spectrum = pca_spectrum(cov)
    np.testing.assert_allclose(
        spectrum.eigenvalues, np.sort(np.linalg.eigvalsh(cov))[::-1].clip(0), rtol=1e-10, atol=1e-12
    )
    assert spectrum.cumulative_ratio[-1] == pytest.approx(1.0)
    assert spectrum.n_for(0.9) <= rank
    assert spectrum.n_for(0.99) == rank
    assert spectrum.explained_ratio[rank:].sum() < 1e-3


def test_n_for_counts_an_exact_fraction():
    equal = pca_spectrum(np.eye(10))
    assert equal.n_for(0.9) == 9 and equal.n_for(0.99) == 10 and equal.n_for(0.05) == 1
    empty = PcaSpectrum(np.zeros(3), np.zeros(3), np.zeros(3))
    assert empty.n_for(0.9) == 0
