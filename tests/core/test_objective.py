"""The search objective against closed forms on synthetic latents, within binomial error.

With mu = 0 and hw = h for every component, a vector b*y (y uniform in [-1, 1]^N) hits at k
iff max |y_i| <= k h / b, so the hit rate is min(1, k h / b)^N exactly; its radius b |y|
has the mean and std of radius theory. In one dimension everything is an interval length.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from aelatent.core.hits import hit_grid
from aelatent.core.objective import (
    RadiusBand,
    UniformSearchObjective,
    radius_band,
    radius_typicality,
    theory_b,
)
from aelatent.core.radius import radii
from aelatent.core.radius_theory import uniform_radius_moments
from aelatent.core.samplers import UniformSampler

N = 256
Z98 = norm.ppf(0.99)  # the central 98 % of a normal: mean +- 2.326 std


def tolerance(p: float, n: int, extra: float = 0.0) -> float:
    """4.5 binomial standard errors (plus a model error where a closed form is approximate)."""
    return 4.5 * math.sqrt(max(p * (1 - p), 1.0 / n) / n) + extra


def uniform_band(b0: float, z_dim: int = N) -> RadiusBand:
    """The central 98 % of the radii of U[-b0, b0]^z_dim, from radius theory."""
    m = uniform_radius_moments(1.0, z_dim, method="exact")
    return RadiusBand(b0 * (m.mean - Z98 * m.std), b0 * (m.mean + Z98 * m.std), b0 * m.mean)


def test_one_dimension_matches_the_interval_lengths():
    h, k, lo, hi, n = 0.5, 2.0, 0.2, 2.5, 40_000
    objective = UniformSearchObjective([0.0], [h], k, RadiusBand(lo, hi, 1.0), n, seed=1)
    for b in (0.1, 0.5, 0.95, 1.5, 3.0):
        # |y| is uniform on [0, 1]; hit: |y| <= k h / b; radius: lo / b <= |y| <= hi / b
        start = min(1.0, lo / b)
        hit = min(1.0, k * h / b)
        agreement = max(0.0, min(1.0, hi / b) - start)
        both = max(0.0, min(1.0, hi / b, k * h / b) - start)
        value = objective(b)
        assert value.hit_rate == pytest.approx(hit, abs=tolerance(hit, n)), b
        assert value.radius_agreement == pytest.approx(agreement, abs=tolerance(agreement, n)), b
        assert value.objective == pytest.approx(both, abs=tolerance(both, n)), b
    assert objective(3.0).objective < objective(3.0).radius_agreement  # the hit test binds


def test_hit_rate_in_256_dimensions_is_the_exact_product():
    k, n = 2.0, 20_000
    objective = UniformSearchObjective(np.zeros(N), np.ones(N), k, uniform_band(1.5), n, seed=2)
    for b in (0.3, 1.9, 2.0, 2.002, 2.005, 2.02, 2.05):
        exact = min(1.0, k / b) ** N
        assert objective(b).hit_rate == pytest.approx(exact, abs=tolerance(exact, n)), b
        assert objective.log10_p_hit(b) == pytest.approx(N * math.log10(min(1.0, k / b)), abs=1e-9)


def test_hit_rate_off_the_origin_equals_the_hit_grid_and_the_exact_probability():
    d, k, n, seed = 16, 2.0, 20_000, 7
    rng = np.random.default_rng(3)
    mu, hw = rng.normal(0, 0.3, d), rng.uniform(0.2, 0.5, d)
    mu[0] = 1.5 * hw[0] * k + 0.1  # a window that excludes 0: tiny b cannot hit at all
    objective = UniformSearchObjective(mu, hw, k, uniform_band(1.0, d), n, seed=seed)
    scales = [0.05, 0.8, 1.2, 1.6, 2.4]
    grid = hit_grid(UniformSampler(1.0, d), scales, [k], mu, hw, n, np.random.default_rng(seed))
    for j, b in enumerate(scales):
        rate = objective(b).hit_rate
        assert abs(rate * n - grid.hits[j, 0]) <= 1, b  # the same draws (float32 edge cases)
        exact = 10 ** objective.log10_p_hit(b)
        assert rate == pytest.approx(exact, abs=tolerance(exact, n)), b
    assert objective(0.05).hit_rate == 0.0


def test_radius_agreement_in_256_dimensions_follows_radius_theory():
    n = 20_000
    band = uniform_band(1.5)
    objective = UniformSearchObjective(np.zeros(N), np.ones(N), 2.0, band, n, seed=4)
    m = uniform_radius_moments(1.0, N, method="exact")
    for b in (1.0, 1.45, 1.48, 1.5, 1.52, 1.55, 1.9):
        # |y| is nearly normal at N = 256 (skewness ~0.03): allow 0.006 for that
        expected = norm.cdf((band.hi / b - m.mean) / m.std) - norm.cdf(
            (band.lo / b - m.mean) / m.std
        )
        value = objective(b)
        assert value.radius_agreement == pytest.approx(
            expected, abs=tolerance(expected, n, 0.006)
        ), b
        assert value.objective == value.radius_agreement  # b <= k h: every vector hits


def test_best_band_on_synthetic_latents_is_where_theory_puts_it():
    b0 = 1.5
    real = (b0 * (2 * np.random.default_rng(99).random((4000, N)) - 1)).astype(np.float32)
    band = radius_band(radii(real))
    assert band.lo < band.median < band.hi
    assert theory_b(band.median, N) == pytest.approx(b0, rel=0.003)

    objective = UniformSearchObjective(np.zeros(N), np.ones(N), 2.0, band, 20_000, seed=5)
    best = objective.best_in(0.05, 12.0)
    assert 1.48 <= best.b <= 1.52
    assert best.value.objective == pytest.approx(0.98, abs=0.01)  # the band holds 98 % of radii
    grid = np.geomspace(0.05, 12.0, 3000)
    values, _, _ = objective.curves(grid)
    assert best.value.objective >= values.max()
    # the band where at least half the vectors count, from radius theory: b |y| in the band
    m = uniform_radius_moments(1.0, N, method="exact")
    inside = grid[values >= 0.5]
    assert band.lo / (m.mean + 0.7 * m.std) < inside.min() < inside.max()
    assert inside.max() < band.hi / (m.mean - 0.7 * m.std)
    assert np.all(values[(grid < band.lo / (m.mean + 6 * m.std))] == 0)
    assert np.all(values[(grid > band.hi / (m.mean - 6 * m.std))] == 0)


def test_the_objective_cannot_be_won_by_collapsing_b():
    band = uniform_band(1.5)
    objective = UniformSearchObjective(np.zeros(N), np.ones(N), 2.0, band, 20_000, seed=6)
    tiny = objective(0.05)
    assert tiny.hit_rate == 1.0  # the trap: every tiny vector is inside the box
    assert tiny.objective == 0.0 and tiny.radius_agreement == 0.0
    values, hit, _ = objective.curves(np.geomspace(1e-4, 1.2, 500))
    assert np.all(hit == 1.0) and np.all(values == 0.0)


def test_the_hit_edge_caps_b_and_factorises():
    # real radii centred at b0 = 2.05, but only b <= k h = 2 keeps every vector in the box.
    # For b > 2: P(hit and radius) = (2/b)^N * P(|y'| in [lo/2, hi/2]) = (2/b)^N * objective(2)
    n = 20_000
    objective = UniformSearchObjective(np.zeros(N), np.ones(N), 2.0, uniform_band(2.05), n, 8)
    at_edge = objective(2.0).objective
    m = uniform_radius_moments(1.0, N, method="exact")
    band = objective.band
    expected = norm.cdf((band.hi / 2 - m.mean) / m.std) - norm.cdf((band.lo / 2 - m.mean) / m.std)
    assert at_edge == pytest.approx(expected, abs=tolerance(expected, n, 0.006))
    for b in (2.01, 2.03):
        expected = (2.0 / b) ** N * at_edge
        assert objective(b).objective == pytest.approx(expected, abs=tolerance(expected, n, 0.005))
    best = objective.best_in(0.05, 12.0)
    assert 1.98 <= best.b <= 2.0 + 1e-6  # max |y_i| < 1 by a float32 step
    assert objective(2.05).radius_agreement > 0.9 > 0.01 > objective(2.05).objective


def test_common_random_numbers_make_the_objective_deterministic_in_b():
    mu, hw, band = np.zeros(64), np.full(64, 0.8), uniform_band(1.0, 64)
    a = UniformSearchObjective(mu, hw, 2.0, band, 5000, seed=9)
    b = UniformSearchObjective(mu, hw, 2.0, band, 5000, seed=9, chunk_size=333)
    grid = np.geomspace(0.5, 3.0, 400)
    for left, right in zip(a.curves(grid), b.curves(grid), strict=True):
        np.testing.assert_array_equal(left, right)
    scalar = [a(x).objective for x in grid[::40]]
    np.testing.assert_array_equal(scalar, a.curves(grid[::40])[0])
    # without common random numbers two nearby b would differ by ~1/sqrt(n); here they agree
    values = a.curves(np.linspace(0.99, 1.01, 201))[0]
    assert np.max(np.abs(np.diff(values))) <= 0.01
    other = UniformSearchObjective(mu, hw, 2.0, band, 5000, seed=10)
    assert other(1.0).objective != a(1.0).objective
    assert other(1.0).objective == pytest.approx(a(1.0).objective, abs=tolerance(0.5, 5000) * 1.5)


def test_radius_band_and_bad_arguments():
    band = radius_band(np.arange(1, 102, dtype=float))
    assert (band.lo, band.median, band.hi) == (2.0, 51.0, 100.0)
    with pytest.raises(ValueError):
        radius_band(np.array([1.0]))
    good = RadiusBand(1.0, 2.0, 1.5)
    for kwargs in (
        {"mu": [0.0, 0.0], "hw": [1.0]},
        {"mu": [0.0], "hw": [0.0]},
        {"mu": [0.0], "hw": [1.0], "k": 0.0},
        {"mu": [0.0], "hw": [1.0], "band": RadiusBand(0.0, 1.0, 0.5)},
        {"mu": [0.0], "hw": [1.0], "n_samples": 0},
    ):
        args = {"k": 2.0, "band": good, "n_samples": 10, "seed": 0, **kwargs}
        with pytest.raises(ValueError):
            UniformSearchObjective(**args)
    objective = UniformSearchObjective([0.0], [1.0], 2.0, good, 10, 0)
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError):
            objective(bad)
    with pytest.raises(ValueError):
        objective.best_in(2.0, 1.0)
    with pytest.raises(ValueError):
        theory_b(0.0, 4)


# --- the typical objective: radius weight 2 min(F, 1 - F) of the real radii -------------------


def test_typicality_weight_is_one_at_the_median_and_zero_outside():
    real = np.arange(1.0, 102.0)  # F(51) = 0.5 exactly with mid-ranks
    weight = radius_typicality(np.array([0.5, 1.0, 26.0, 51.0, 76.0, 101.0, 102.0]), real)
    np.testing.assert_allclose(weight, [0.0, 1 / 101, 51 / 101, 1.0, 51 / 101, 1 / 101, 0.0])


def test_matched_radii_score_one_half_within_the_dkw_bound():
    # real latents U[-b0, b0]^N, so at b = b0 the sampled and real radii share one law: the
    # weight 2 min(U, 1 - U) of a uniform U has mean 1/2 and std 1/sqrt(12). k is large, so
    # every vector hits. Tolerance: 4.5 MC standard errors plus 2 sup|F_hat - F|, which
    # exceeds 0.03 with chance <= 2 exp(-2 n 0.03^2) = 0.0015 at n = 4000 (DKW).
    b0, n_real, n = 1.5, 4000, 20_000
    real = b0 * (2 * np.random.default_rng(11).random((n_real, N)) - 1)
    r = radii(real.astype(np.float32))
    objective = UniformSearchObjective(
        np.zeros(N),
        np.ones(N),
        10.0,
        radius_band(r, (0, 100)),
        n,
        seed=12,
        kind="typical",
        real_radii=r,
    )
    value = objective(b0)
    assert value.hit_rate == 1.0 and value.objective == value.radius_agreement
    assert value.objective == pytest.approx(0.5, abs=4.5 / math.sqrt(12 * n) + 2 * 0.03)
    assert value.objective_se == pytest.approx(1 / math.sqrt(12 * n), rel=0.1)


def gaussian_latents(n: int, seed: int) -> np.ndarray:
    """N(0, 1) in 256 dims with planted structure: 4 components off-centre, 6 wide."""
    x = np.random.default_rng(seed).normal(0.0, 1.0, (n, N))
    x[:, :4] += np.array([1.0, -1.0, 1.0, -1.0])
    x[:, 4:10] *= 2.5
    return x.astype(np.float32)


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_best_b_does_not_move_with_the_radius_band(k):
    """The typical objective's best b under a 5-95 band lies inside the 1-99 interval and
    back; the band objective's best b moves with the band (its optimum is the band's edge)."""
    from aelatent.core.windows import estimate_windows

    x = gaussian_latents(400, seed=21)
    windows, r = estimate_windows(x, "auto"), radii(x)
    best = {}
    for kind in ("typical", "band"):
        for percentiles in ((1.0, 99.0), (5.0, 95.0)):
            band = radius_band(r, percentiles)
            objective = UniformSearchObjective(
                windows.mu, windows.hw, k, band, 20_000, seed=1, kind=kind, real_radii=r
            )
            best[kind, percentiles] = objective.best_in(0.05, 12.0)
    wide, narrow = best["typical", (1.0, 99.0)], best["typical", (5.0, 95.0)]
    assert wide.contains(narrow.b) and narrow.contains(wide.b)
    assert wide.lo < wide.b < wide.hi
    if k == 1.0:  # the hit test binds near the radii: the band's edge decides the old optimum
        old_wide, old_narrow = best["band", (1.0, 99.0)], best["band", (5.0, 95.0)]
        assert not old_wide.contains(old_narrow.b) and not old_narrow.contains(old_wide.b)


def test_the_interval_of_best_b_covers_the_true_optimum():
    """Coverage over 100 seeds of the interval of b not significantly worse than the best,
    against the optimum of a 200,000-vector draw (its own interval is 20x narrower). The
    paired test at 1.96 SE should cover >= 95%; fail below the 0.1% binomial quantile."""
    x = np.random.default_rng(0).normal(0.0, 1.0, (2000, N)).astype(np.float32)
    r = radii(x)
    args = (np.zeros(N), np.full(N, 2.355), 2.0, radius_band(r))
    truth = UniformSearchObjective(*args, 200_000, 99, kind="typical", real_radii=r)
    b_true = truth.best_in(1.0, 3.0, n_points=400).b
    repeats, covered, widths = 100, 0, []
    for seed in range(repeats):
        found = UniformSearchObjective(*args, 2000, seed, kind="typical", real_radii=r)
        best = found.best_in(1.0, 3.0, n_points=400)
        covered += best.contains(b_true)
        widths.append(best.hi / best.lo - 1)
    assert covered >= binom.ppf(0.001, repeats, 0.95)
    assert np.median(widths) < 0.05  # informative: a few percent of b, not the whole range


def test_no_best_b_when_the_objective_is_zero_everywhere():
    mu = np.full(N, 5.0)  # every window far off the origin: no uniform vector ever hits
    r = np.linspace(10.0, 20.0, 100)
    objective = UniformSearchObjective(
        mu, np.ones(N), 1.0, radius_band(r), 2000, seed=3, kind="typical", real_radii=r
    )
    assert objective.best_in(0.05, 12.0) is None
    assert objective.n_windows_excluding_zero == N
