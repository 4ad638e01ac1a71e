"""Samplers: draws, and window probabilities against closed forms and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from aelatent.core.samplers import (
    AffineSampler,
    GaussianSampler,
    MVNSampler,
    UniformSampler,
    grid_log10_point_count,
    log_normal_interval,
)


def within_binomial(hits: int, n: int, log10_p: float, n_sigma: float = 4.0) -> bool:
    p = 10.0**log10_p
    return abs(hits - n * p) <= n_sigma * math.sqrt(n * p * (1 - p)) + 1


def mc_hits(z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> int:
    return int(np.count_nonzero(np.all((z >= lo) & (z <= hi), axis=1)))


def test_uniform_draws_fill_the_box_and_sample_is_offset_plus_scaled_base():
    s = UniformSampler(2.5, 16)
    z = s.sample(20_000, np.random.default_rng(0))
    assert z.dtype == np.float32 and z.shape == (20_000, 16)
    assert z.min() >= -2.5 and z.max() <= 2.5
    assert abs(z.mean()) < 0.02 and z.std() == pytest.approx(2.5 / math.sqrt(3), rel=0.01)
    base = s.draw_base(20_000, np.random.default_rng(0))
    np.testing.assert_array_equal(z, base * np.float32(2.5))


@pytest.mark.parametrize(
    "sampler",
    [
        UniformSampler(1.5, 5),
        GaussianSampler(np.arange(5.0), np.linspace(0.5, 2.0, 5), 0.7),
        MVNSampler(np.arange(5.0), np.eye(5) + 0.3, 1.4),
    ],
    ids=lambda s: s.name,
)
def test_the_shared_base_draws_into_a_buffer_what_it_draws_fresh(sampler: AffineSampler):
    """``draw_base`` into a slice of the hit test's buffer and into a new array, and
    ``sample`` = offset + scale * base: the base class's one definition for every sampler."""
    fresh = sampler.draw_base(7, np.random.default_rng(3))
    buffer = np.zeros((10, sampler.z_dim), dtype=np.float32)
    into = sampler.draw_base(7, np.random.default_rng(3), out=buffer[:7])
    assert into.base is buffer and fresh.dtype == np.float32
    np.testing.assert_array_equal(fresh, buffer[:7])
    np.testing.assert_array_equal(buffer[7:], 0.0)
    z = sampler.sample(7, np.random.default_rng(3))
    np.testing.assert_array_equal(z, sampler.offset + np.float32(sampler.scale) * fresh)
    assert sampler.offset.dtype == np.float32 and sampler.offset.shape == (sampler.z_dim,)


def test_uniform_window_probability_is_the_product_of_overlaps_without_underflow():
    s = UniformSampler(1.0, 220)
    # 0.25 per component over 220 components: 1e-132, far below float64's tiny numbers
    lo, hi = np.full(220, -0.25), np.full(220, 0.25)
    assert s.window_log10_probability(lo, hi) == pytest.approx(220 * math.log10(0.25))
    # a window sticking out of the box counts only its overlap; a disjoint one gives -inf
    s2 = UniformSampler(2.0, 2)
    assert s2.window_log10_probability(
        np.array([1.0, -5.0]), np.array([3.0, 5.0])
    ) == pytest.approx(math.log10(1 / 4))
    assert s2.window_log10_probability(np.array([2.5, 0.0]), np.array([3.0, 1.0])) == -math.inf


def test_log_normal_interval_matches_cdf_differences_and_stays_finite_in_the_tails():
    a = np.array([-1.0, -3.0, 0.5, -0.1, 2.0])
    b = np.array([1.0, -2.0, 2.5, 0.1, 2.0001])
    expected = np.log(stats.norm.cdf(b) - stats.norm.cdf(a))
    np.testing.assert_allclose(log_normal_interval(a, b), expected, rtol=1e-9)
    # deep tails: P(40 < x) ~ 3.7e-350 is not a float64, its log is
    assert log_normal_interval(40.0, np.inf) == pytest.approx(stats.norm.logsf(40.0), rel=1e-12)
    assert log_normal_interval(-np.inf, -40.0) == pytest.approx(stats.norm.logcdf(-40.0), rel=1e-12)
    # mirror symmetry and empty windows
    assert log_normal_interval(3.0, 4.0) == pytest.approx(
        log_normal_interval(-4.0, -3.0), rel=1e-14
    )
    assert log_normal_interval(1.0, 1.0) == -np.inf


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_gaussian_window_probability_agrees_with_monte_carlo(scale: float):
    rng = np.random.default_rng(1)
    d = 6
    mu, sigma = rng.normal(0, 1, d), rng.uniform(0.5, 2.0, d)
    s = GaussianSampler(mu, sigma, scale)
    lo, hi = mu - 1.8 * sigma, mu + 1.5 * sigma
    n = 100_000
    z = s.sample(n, np.random.default_rng(2))
    exact = s.window_log10_probability(lo, hi)
    closed = np.sum(
        np.log10(stats.norm.cdf(hi, mu, scale * sigma) - stats.norm.cdf(lo, mu, scale * sigma))
    )
    assert exact == pytest.approx(closed, rel=1e-9)
    assert within_binomial(mc_hits(z, lo, hi), n, exact)


def test_uniform_window_probability_agrees_with_monte_carlo():
    d, b, n = 5, 1.5, 100_000
    lo, hi = np.linspace(-1.4, -0.2, d), np.linspace(0.8, 2.0, d)
    s = UniformSampler(b, d)
    assert within_binomial(
        mc_hits(s.sample(n, np.random.default_rng(3)), lo, hi),
        n,
        s.window_log10_probability(lo, hi),
    )


def equicorrelated_log_probability(rho: float, lo: float, hi: float, d: int) -> float:
    """ln P(lo <= x_i <= hi for all i), x ~ N(0, (1-rho) I + rho 11^T): a 1-D integral.

    x_i = sqrt(rho) w + sqrt(1 - rho) e_i: given w the components are independent.
    """
    c, s = math.sqrt(rho), math.sqrt(1 - rho)

    def f(w: float) -> float:
        log_inner = d * log_normal_interval((lo - c * w) / s, (hi - c * w) / s)
        return math.exp(float(log_inner) + stats.norm.logpdf(w))

    value, _ = integrate.quad(f, -12, 12, limit=200, epsabs=0)
    return math.log(value)


def test_mvn_ghk_matches_an_exact_equicorrelated_probability_far_below_monte_carlo_reach():
    d, rho = 48, 0.4
    cov = (1 - rho) * np.eye(d) + rho * np.ones((d, d))
    s = MVNSampler(np.zeros(d), cov, ghk_draws=4000, ghk_seed=5)
    lo, hi = np.full(d, -0.6), np.full(d, 0.9)
    exact = equicorrelated_log_probability(rho, -0.6, 0.9, d) / math.log(10)
    est = s.window_log10_probability(lo, hi)
    assert exact < -8  # out of reach of plain sampling
    assert abs(est - exact) < max(0.05, 4 * s.last_relative_se / math.log(10))
    # the independence product is a different number here: correlation matters
    assert s.independent_log10_probability(lo, hi) < exact - 2


def test_mvn_ghk_is_the_exact_product_for_a_diagonal_covariance_and_matches_monte_carlo():
    rng = np.random.default_rng(7)
    d = 5
    mean, sd = rng.normal(0, 1, d), rng.uniform(0.5, 1.5, d)
    s = MVNSampler(mean, np.diag(sd**2), scale=1.5)
    lo, hi = mean - 1.2 * sd, mean + 2.0 * sd
    assert s.window_log10_probability(lo, hi) == pytest.approx(
        GaussianSampler(mean, sd, 1.5).window_log10_probability(lo, hi), rel=1e-9
    )
    # correlated, moderate probability: GHK and Monte Carlo agree
    a = rng.normal(size=(d, d))
    cov = a @ a.T / d + np.diag(sd**2)
    s = MVNSampler(mean, cov, ghk_draws=4000)
    lo, hi = mean - 1.0 * np.sqrt(np.diag(cov)), mean + 1.5 * np.sqrt(np.diag(cov))
    n = 100_000
    z = s.sample(n, np.random.default_rng(8))
    np.testing.assert_allclose(np.cov(z, rowvar=False), cov, atol=0.05 * np.abs(cov).max())
    assert within_binomial(mc_hits(z, lo, hi), n, s.window_log10_probability(lo, hi), 5.0)


def test_mvn_from_latents_survives_a_singular_sample_covariance():
    rng = np.random.default_rng(9)
    latents = rng.normal(size=(10, 32))  # 10 points in 32 dimensions: rank 9
    s = MVNSampler.from_latents(latents)
    assert np.all(np.isfinite(s.cholesky))
    assert s.sample(100, rng).shape == (100, 32)


def test_grid_point_count_is_astronomical():
    assert grid_log10_point_count(1.0, 0.5, 256) == pytest.approx(256 * math.log10(5))
    assert grid_log10_point_count(12.0, 1.0, 256) == pytest.approx(256 * math.log10(25))
    assert grid_log10_point_count(1.0, 3.0, 4) == 0.0  # one point per axis


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scales_are_rejected(bad: float):
    with pytest.raises(ValueError):
        UniformSampler(bad, 4)
    with pytest.raises(ValueError):
        GaussianSampler(np.zeros(2), np.ones(2), bad)


def test_mvn_ghk_on_a_nearly_singular_covariance_agrees_with_monte_carlo():
    """Few dominant directions plus tiny noise (what a briefly trained encoder gives)."""
    rng = np.random.default_rng(12)
    d, n = 64, 100_000
    a = rng.normal(size=(d, 6))
    cov = a @ a.T / 6 + 1e-6 * np.eye(d)  # condition number ~ 1e6
    mean = rng.normal(0, 0.2, d)
    sd = np.sqrt(np.diag(cov))
    s = MVNSampler(mean, cov)
    z = s.sample(n, np.random.default_rng(13))
    for k in (0.8, 1.2):
        lo, hi = mean - k * sd, mean + k * sd
        log10_p = s.window_log10_probability(lo, hi)
        p = 10.0**log10_p
        assert 0.01 < p < 0.9
        sigma = math.hypot(math.sqrt(p * (1 - p) / n), p * s.last_relative_se)
        assert abs(mc_hits(z, lo, hi) / n - p) < 4 * sigma, (k, mc_hits(z, lo, hi) / n, p)


def test_a_batch_of_windows_is_one_ghk_pass_with_the_same_answers():
    """window_log10_probabilities: a batch of one is the single estimate; a diagonal
    covariance gives the exact product for every window; correlated, each batched estimate
    agrees with its own single-window estimate within 4 combined GHK standard errors (the
    batch orders the variables by its mean window, so the two differ by GHK noise only)."""
    rng = np.random.default_rng(21)
    d, batch = 40, 6
    mean, sd = rng.normal(0, 1, d), rng.uniform(0.5, 1.5, d)
    centres = mean + 0.2 * rng.standard_normal((batch, d))
    widths = sd * rng.uniform(0.8, 1.6, (batch, d))
    lo, hi = centres - widths, centres + widths
    diagonal = MVNSampler(mean, np.diag(sd**2), scale=1.3)
    exact = [
        GaussianSampler(mean, sd, 1.3).window_log10_probability(*w)
        for w in zip(lo, hi, strict=True)
    ]
    np.testing.assert_allclose(diagonal.window_log10_probabilities(lo, hi), exact, rtol=1e-9)

    a = rng.normal(size=(d, d))
    s = MVNSampler(mean, a @ a.T / d + np.diag(sd**2), ghk_draws=4096, ghk_seed=3)
    assert s.window_log10_probabilities(lo[:1], hi[:1])[0] == s.window_log10_probability(
        lo[0], hi[0]
    )
    batched = s.window_log10_probabilities(lo, hi)
    for j in range(batch):
        single = s.window_log10_probability(lo[j], hi[j])
        rel_se = s.last_relative_se
        assert -40 < single < -1
        assert abs(batched[j] - single) < 4 * math.sqrt(2) * rel_se / math.log(10), j
    empty = hi.copy()
    empty[2, 5] = lo[2, 5] - 1.0  # one empty window in the batch: -inf there only
    values = s.window_log10_probabilities(lo, empty)
    assert values[2] == -math.inf and np.all(np.isfinite(np.delete(values, 2)))


def test_a_batch_of_empty_windows_is_minus_infinity_without_work():
    s = MVNSampler(np.zeros(3), np.eye(3) + 0.5)
    lo = np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    hi = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 1.0]])  # each row has lo > hi somewhere
    assert np.all(s.window_log10_probabilities(lo, hi) == -math.inf)
