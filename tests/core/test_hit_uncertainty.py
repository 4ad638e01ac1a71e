"""Intervals of the hit figures: Wilson coverage, the grid count, the held-out ceiling, mvn."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from aelatent.core.hit_uncertainty import (
    grid_log10_inside,
    heldout_ceiling,
    hit_intervals,
    log10_p_hit_interval,
    wilson_interval,
)
from aelatent.core.hits import hit_grid
from aelatent.core.samplers import MVNSampler, UniformSampler, grid_log10_point_count
from aelatent.core.windows import estimate_windows


@pytest.mark.parametrize("p", [0.002, 0.05, 0.5])
def test_wilson_interval_coverage(p):
    """400 binomial counts of n = 1000: the 95% interval covers p in 90-99% of them."""
    hits = np.random.default_rng(0).binomial(1000, p, size=400)
    lo, hi = wilson_interval(hits, 1000)
    assert 0.90 <= np.mean((lo <= p) & (p <= hi)) <= 0.99


def test_wilson_interval_at_zero_hits_is_not_a_point():
    lo, hi = wilson_interval(np.array([0]), 200_000)
    assert lo[0] == 0 and 0 < hi[0] < 5e-5


def test_grid_counts_match_a_brute_force_count():
    x = np.random.default_rng(1).standard_normal((200, 3))
    w = estimate_windows(x, "fit")
    b, k, spacing = 2.0, 0.6, 0.5
    axis = np.arange(-b, b + 1e-9, spacing)
    points = np.array(list(itertools.product(axis, repeat=3)))
    lo, hi = w.bounds(k)
    inside = np.count_nonzero(np.all((points >= lo) & (points <= hi), axis=1))
    assert grid_log10_point_count(b, spacing, 3) == pytest.approx(math.log10(len(points)))
    assert grid_log10_inside(w, b, k, spacing) == pytest.approx(math.log10(inside))


def test_heldout_ceiling_counts_vectors_inside_every_window():
    rng = np.random.default_rng(2)
    w = estimate_windows(rng.standard_normal((400, 8)), "fit")
    heldout = rng.standard_normal((300, 8))
    ceiling = heldout_ceiling(heldout, w, np.array([0.5, 1.0]))
    for i, k in enumerate((0.5, 1.0)):
        lo, hi = w.bounds(k)
        assert ceiling.hits[i] == np.count_nonzero(np.all((heldout >= lo) & (heldout <= hi), 1))
        assert ceiling.lo[i] <= ceiling.rate[i] <= ceiling.hi[i]


def test_mvn_interval_has_a_finite_error_and_the_ghk_error():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 16)) @ (np.eye(16) + 0.2 * rng.standard_normal((16, 16)))
    w = estimate_windows(x, "fit")
    sampler = MVNSampler.from_latents(x)
    p = log10_p_hit_interval(sampler, w, 0.5)
    assert math.isfinite(p.value) and 0 < p.se < 5
    grid = hit_grid(sampler, [1.0], [0.5], w.mu, w.hw, 2000, np.random.default_rng(0))
    intervals = hit_intervals(grid, sampler, w)
    assert 0 < intervals.ghk_rel_se[0, 0] < 1
    assert intervals.log10_lo[0, 0] < grid.log10_p_hit[0, 0] < intervals.log10_hi[0, 0]


def test_hit_rate_intervals_cover_the_exact_probability():
    """The Wilson intervals of the uniform grid's Monte Carlo rates cover the exact hit
    probability of the same windows in 90-99% of 200 repetitions x 4 cells."""
    rng = np.random.default_rng(4)
    w = estimate_windows(rng.standard_normal((400, 4)), "fit")
    sampler = UniformSampler(1.0, 4)
    covered = []
    for _ in range(200):  # exact P from 0.016 to 0.26
        grid = hit_grid(sampler, [1.0, 2.0], [0.2, 0.3], w.mu, w.hw, 1000, rng)
        ci = hit_intervals(grid, sampler, w)
        p = 10.0**grid.log10_p_hit
        assert p.min() > 0.001 and p.max() < 0.999  # neither rate pinned at 0 or 1
        covered.append((ci.hit_lo <= p) & (p <= ci.hit_hi))
        assert np.all(np.isnan(ci.ghk_rel_se))  # exact probabilities have no own error
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_wilson_interval_is_scipys_wilson():
    """The vectorised closed form gives scipy's binomtest Wilson interval, ends included."""
    from scipy import stats

    for n in (1, 7, 400, 200_000):
        hits = np.unique(np.linspace(0, n, 9).round().astype(int))
        lo, hi = wilson_interval(hits, n)
        for count, low, high in zip(hits, lo, hi, strict=True):
            ci = stats.binomtest(int(count), n).proportion_ci(0.95, method="wilson")
            assert low == pytest.approx(ci.low, abs=1e-12)
            assert high == pytest.approx(ci.high, abs=1e-12)
        assert lo[0] == 0.0 and hi[-1] == 1.0  # exact ends: a rate of 1 lies inside


def test_shared_window_draws_give_each_cells_own_error():
    """hit_intervals draws the mvn window bootstrap once; every cell's error is what the
    cell alone gets from the same seed."""
    latents = np.random.default_rng(4).normal(size=(300, 6))
    windows = estimate_windows(latents, "fit")
    sampler = MVNSampler.from_latents(latents)
    grid = hit_grid(
        sampler, [0.5, 1.0], [1.5, 3.0], windows.mu, windows.hw, 500, np.random.default_rng(0)
    )
    shared = hit_intervals(grid, sampler, windows, seed=3)
    for j, scale in enumerate(grid.scales):
        for i, k in enumerate(grid.ks):
            alone = log10_p_hit_interval(
                sampler.with_scale(float(scale)), windows, float(k), seed=3
            )
            assert shared.log10_se[j, i] == pytest.approx(alone.se, rel=1e-12)
