"""The hit test: fast grid against the straightforward loop, and against exact probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aelatent.core.hits import hit_grid, hit_grid_loop, hit_window
from aelatent.core.samplers import GaussianSampler, MVNSampler, UniformSampler

SCALES = [0.5, 1.0, 1.5, 3.0]
KS = [0.5, 1.0, 2.0, 4.0]


def synthetic_region(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.3, d), rng.uniform(0.2, 0.8, d)


def samplers(d: int) -> list:
    rng = np.random.default_rng(11)
    a = rng.normal(size=(d, d)) / math.sqrt(d)
    return [
        UniformSampler(1.0, d),
        GaussianSampler(rng.normal(0, 0.3, d), rng.uniform(0.2, 0.6, d)),
        MVNSampler(rng.normal(0, 0.3, d), 0.1 * a @ a.T + np.diag(np.full(d, 0.05)), ghk_draws=300),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["uniform", "gaussian", "mvn"])
def test_fast_grid_equals_the_straightforward_loop_on_the_same_draws(index: int):
    d, n = 16, 3000
    mu, hw = synthetic_region(d)
    sampler = samplers(d)[index]
    grid = hit_grid(sampler, SCALES, KS, mu, hw, n, np.random.default_rng(5), chunk_size=700)
    loop = hit_grid_loop(sampler, SCALES, KS, mu, hw, n, 5)
    np.testing.assert_array_equal(grid.hits, loop)
    assert grid.hits.min() < n // 2 and grid.hits.max() > 0  # the grid spans misses and hits


def test_results_do_not_depend_on_the_chunk_size():
    d, n = 8, 2000
    mu, hw = synthetic_region(d)
    kw = {"scales": SCALES, "ks": KS, "mu": mu, "hw": hw, "n_samples": n}
    sampler = GaussianSampler(mu, hw)
    a = hit_grid(sampler, rng=np.random.default_rng(1), chunk_size=1, **kw)
    b = hit_grid(sampler, rng=np.random.default_rng(1), chunk_size=4096, **kw)
    np.testing.assert_array_equal(a.hits, b.hits)
    np.testing.assert_array_equal(a.miss_counts, b.miss_counts)
    np.testing.assert_allclose(a.radius_mean, b.radius_mean, rtol=1e-9)
    np.testing.assert_allclose(a.radius_std, b.radius_std, rtol=1e-6)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["uniform", "gaussian", "mvn"])
def test_monte_carlo_rates_agree_with_the_exact_probability_within_binomial_error(index: int):
    d, n = 4, 40_000
    mu, hw = synthetic_region(d, seed=3)
    sampler = samplers(d)[index]
    grid = hit_grid(sampler, SCALES, KS, mu, hw, n, np.random.default_rng(2))
    p = 10.0**grid.log10_p_hit
    sigma = np.sqrt(n * p * (1 - p))
    # 4 binomial sigma per cell; the mvn value is a GHK estimate, allow its own 2 % on top
    slack = 4 * sigma + 1 + (0.02 * n * p if sampler.name == "mvn" else 0)
    assert np.all(np.abs(grid.hits - n * p) <= slack), (grid.hits, n * p)
    assert p.min() < 0.01 and p.max() > 0.35  # rare and common hits both tested


def test_miss_counts_add_up_and_match_per_component_probabilities():
    d, n = 32, 20_000
    mu, hw = synthetic_region(d, seed=4)
    b = 1.5
    grid = hit_grid(UniformSampler(b, d), [b], KS, mu, hw, n, np.random.default_rng(6))
    assert grid.miss_counts.shape == (1, len(KS), d + 1)
    assert np.all(grid.miss_counts.sum(axis=-1) == n)
    np.testing.assert_array_equal(grid.miss_counts[0, :, 0], grid.hits[0])  # 0 misses = a hit
    for m, k in enumerate(KS):
        lo, hi = hit_window(mu, hw, k)
        p_in = np.clip(np.minimum(hi, b) - np.maximum(lo, -b), 0, None) / (2 * b)
        expected = np.sum(1 - p_in)
        sd = math.sqrt(np.sum(p_in * (1 - p_in)) / n)
        assert grid.miss_count_mean()[0, m] == pytest.approx(expected, abs=4 * sd + 1e-9)


def test_miss_counts_for_a_chosen_multiple_only():
    d = 8
    mu, hw = synthetic_region(d)
    grid = hit_grid(
        UniformSampler(1, d), [1, 2], KS, mu, hw, 500, np.random.default_rng(0), miss_ks=[2.0]
    )
    assert grid.miss_counts.shape == (2, 1, d + 1)
    assert grid.ks[grid.miss_k_index].tolist() == [2.0]
    with pytest.raises(ValueError):
        hit_grid(UniformSampler(1, d), [1], KS, mu, hw, 10, np.random.default_rng(0), miss_ks=[3.0])


@pytest.mark.parametrize("index", [0, 1, 2], ids=["uniform", "gaussian", "mvn"])
def test_radius_statistics_are_those_of_the_drawn_vectors(index: int):
    d, n = 16, 3000
    mu, hw = synthetic_region(d)
    sampler = samplers(d)[index]
    grid = hit_grid(
        sampler, SCALES, KS, mu, hw, n, np.random.default_rng(9), n_radii=100, chunk_size=512
    )
    for j, s in enumerate(SCALES):
        r = np.linalg.norm(
            sampler.with_scale(s).sample(n, np.random.default_rng(9)).astype(float), axis=1
        )
        assert grid.radius_mean[j] == pytest.approx(r.mean(), rel=1e-5)
        assert grid.radius_std[j] == pytest.approx(r.std(ddof=1), rel=1e-3)
        np.testing.assert_allclose(grid.radii[j], r[:100], rtol=1e-5)


def test_invalid_grids_are_rejected():
    mu, hw = synthetic_region(4)
    s, rng = UniformSampler(1, 4), np.random.default_rng(0)
    for scales, ks, h in [
        ([0], [1], hw),
        ([1], [-1], hw),
        ([1], [1], np.zeros(4)),
        ([1], [1], hw[:3]),
    ]:
        with pytest.raises(ValueError):
            hit_grid(s, scales, ks, mu, h, 10, rng)
