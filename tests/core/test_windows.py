"""Window estimators against known truth, their intervals' coverage, and propagation.

Tolerances come from the statistical bound of each check: a mean over m independent
components is within 4 standard errors (sd / sqrt(m)) of its expectation; a coverage
measured over m >= 200 intervals must lie in [0.90, 0.99] (the issue's acceptance band);
for the default (`central`) on any shape, a one-sided binomial test at 0.001 must not find
the coverage below 92% or above 98% (issue 26's band).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from component_shapes import SHAPES, draw
from component_shapes import central_truth as _central_truth
from scipy import stats

from aelatent.core.components import peak_and_fwhm
from aelatent.core.histograms import component_histograms
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import (
    CENTRAL_MASS,
    CENTRAL_TAIL,
    DEFAULT_ESTIMATOR,
    FWHM_PER_SIGMA,
    MIN_VECTORS,
    WindowError,
    _kde_fit,
    _quantiles,
    central_centre_width,
    estimate_windows,
    mode_bandwidth,
    order_statistic_ranks,
    propagate_log10,
    term_bias,
)
from aelatent.errors import UserError

TRUE_HW = FWHM_PER_SIGMA  # standard normal components


def _gaussian(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("estimator", ["fit", "kde", "robust", "auto", "central"])
def test_unbiased_on_gaussian_components(estimator):
    """Mean error over 256 components within 4 standard errors of 0 (mu) and of the truth."""
    w = estimate_windows(_gaussian(2000, 256, 1), estimator)
    for error in (w.mu, w.hw / TRUE_HW - 1):
        assert abs(error.mean()) <= 4 * error.std(ddof=1) / math.sqrt(error.size)


def test_fit_reaches_the_statistical_floor():
    """Spread of the fit = sigma/sqrt(n) and 1/sqrt(2n) (within the sd's own 4-sigma error)."""
    n, d = 400, 512
    w = estimate_windows(_gaussian(n, d, 2), "fit")
    slack = 1 + 4 / math.sqrt(2 * d)
    assert w.mu.std() <= slack / math.sqrt(n)
    assert (w.hw / TRUE_HW).std() <= slack / math.sqrt(2 * n)


def test_histogram_is_the_study_reading():
    x = _gaussian(400, 32, 3)
    hist = component_histograms(x)
    mu, hw = peak_and_fwhm(hist.counts, hist.edges)
    w = estimate_windows(x, "histogram")
    np.testing.assert_array_equal(w.mu, mu)
    np.testing.assert_array_equal(w.hw, hw)
    assert np.all((w.mu_lo <= w.mu) & (w.mu <= w.mu_hi))


def test_kde_mode_of_a_skewed_shape():
    """Skew-normal(4), n = 20,000: the KDE mode estimates the mode of the density smoothed by
    its kernel (computed here from the true pdf at the bandwidth of the true sd and IQR):
    the mean over 64 components is within 4 standard errors of it. That smoothed mode lies
    between the true mode and the mean, far nearer the mode (docs/science.md, "Hit windows")."""
    dist = stats.skewnorm(4)
    n = 20_000
    step = 1e-4
    grid = np.arange(-3, 5, step)
    pdf = dist.pdf(grid)
    iqr = dist.ppf(0.75) - dist.ppf(0.25)
    h = float(mode_bandwidth(np.array([dist.std()]), np.array([iqr]), n)[0])
    kernel = stats.norm.pdf(np.arange(-6 * h, 6 * h + step, step), scale=h)
    smoothed_mode = grid[np.convolve(pdf, kernel, mode="same").argmax()]
    mode = grid[pdf.argmax()]
    assert mode < smoothed_mode < mode + 0.2 * (dist.mean() - mode)
    w = estimate_windows(dist.rvs(size=(n, 64), random_state=4), "kde")
    assert abs(w.mu.mean() - smoothed_mode) <= 4 * w.mu.std(ddof=1) / 8


def test_kde_density_matches_scipy():
    """The binned FFT density equals scipy's gaussian_kde with the same bandwidth."""
    x = _gaussian(500, 2, 5).astype(np.float64)
    fit = _kde_fit(x, _quantiles(x), x.std(axis=0, ddof=1))
    for c in range(2):
        kde = stats.gaussian_kde(x[:, c], bw_method=fit.h[c] / x[:, c].std(ddof=1))
        points = fit.grid_lo[c] + fit.step[c] * np.arange(0, 2048, 97)
        np.testing.assert_allclose(fit.density[c, ::97], kde(points), rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("estimator", "n"),
    [("fit", 400), ("robust", 400), ("auto", 400), ("auto", 20_000), ("kde", 20_000)],
)
def test_interval_coverage(estimator, n):
    """The 95% intervals of mu and hw cover the truth in 90-99% of 256 components x reps."""
    covered_mu, covered_hw = [], []
    for seed in range(2 if n > 1000 else 4):
        w = estimate_windows(_gaussian(n, 128, 10 + seed), estimator)
        covered_mu.append((w.mu_lo <= 0) & (w.mu_hi >= 0))
        covered_hw.append((w.hw_lo <= TRUE_HW) & (w.hw_hi >= TRUE_HW))
    for covered in (covered_mu, covered_hw):
        assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_log10_p_interval_covers_the_truth():
    """200 repetitions of n = 400 Gaussian latents: the propagated interval of the uniform
    generator's log10 P(hit) covers the value from the true windows in 90-99%."""
    d, n, b, k = 64, 400, 3.0, 1.0
    sampler = UniformSampler(b, d)
    truth = sampler.window_log10_probability(-k * TRUE_HW * np.ones(d), k * TRUE_HW * np.ones(d))
    rng = np.random.default_rng(6)
    covered = []
    for _ in range(200):
        w = estimate_windows(rng.standard_normal((n, d)), "auto")
        p = propagate_log10(w, k, sampler.component_log10_probabilities)
        covered.append(p.lo <= truth <= p.hi)
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)


def test_delta_method_agrees_with_the_bootstrap():
    """The propagated standard error against 200 bootstrap resamples of the vectors: equal
    within 4 x the bootstrap sd's own relative error 1/sqrt(2 * 200) = 5%. (Where a window
    edge meets the box edge the term has a kink and the delta method is not valid; there
    log10 P is ~0 and its interval is one-sided: docs/science.md.)"""
    d, n, k = 32, 400, 1.0
    rng = np.random.default_rng(7)
    # correlated components: the covariance across components must carry over
    x = rng.standard_normal((n, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)) / math.sqrt(d))
    sampler = UniformSampler(3.0, d)
    se = propagate_log10(estimate_windows(x, "fit"), k, sampler.component_log10_probabilities).se
    boot = [
        sampler.window_log10_probability(
            *estimate_windows(x[rng.integers(0, n, n)], "fit").bounds(k)
        )
        for _ in range(200)
    ]
    assert abs(np.std(boot, ddof=1) / se - 1) <= 4 / math.sqrt(400)


def test_bad_values_are_clear_errors():
    with pytest.raises(WindowError, match=f"at least {MIN_VECTORS}"):
        estimate_windows(_gaussian(MIN_VECTORS - 1, 4, 0))
    x = _gaussian(100, 4, 0)
    x[:, 2] = 1.5
    with pytest.raises(WindowError, match="component 2 is constant"):
        estimate_windows(x)
    with pytest.raises(UserError, match="estimate='mode' is unknown; expected one of auto"):
        estimate_windows(_gaussian(100, 4, 0), "mode")


# ---------------------------------------------------------------------------------------
# the default, `central`: an estimand defined for any shape, intervals that hold on any


def _coverage_band(covered: np.ndarray) -> None:
    """Issue 26's band for the default: not significantly (one-sided binomial test at 0.001)
    below 92% nor above 98%; m independent intervals."""
    count, m = int(np.sum(covered)), int(np.size(covered))
    assert stats.binomtest(count, m, 0.92, alternative="less").pvalue > 0.001, count / m
    assert stats.binomtest(count, m, 0.98, alternative="greater").pvalue > 0.001, count / m


def test_central_is_the_peak_and_fwhm_of_a_gaussian():
    """The central interval holding erf(sqrt(ln 2)) = 76.1% of a Gaussian is its FWHM window:
    its ends are the half-maximum points +-sqrt(2 ln 2) sigma."""
    assert DEFAULT_ESTIMATOR == "central"
    assert abs(CENTRAL_MASS - 0.760968) <= 1e-6
    assert stats.norm.ppf(1 - CENTRAL_TAIL) == pytest.approx(FWHM_PER_SIGMA / 2, rel=1e-12)
    assert _central_truth("gaussian") == pytest.approx((0.0, FWHM_PER_SIGMA), abs=1e-12)
    x = _gaussian(400, 8, 20)
    w = estimate_windows(x, "central")
    np.testing.assert_array_equal((w.mu, w.hw), central_centre_width(x))
    assert set(w.chosen) == {"central"} and w.simultaneous is not None


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("n", "repetitions"), [(400, 4), (20_000, 1)])
def test_central_intervals_cover_on_any_shape(shape, n, repetitions):
    """95% intervals of the centre and the width against the shape's own central interval,
    over repetitions x 256 independent components (~0.3 s per (shape, n))."""
    mid, length = _central_truth(shape)
    rng = np.random.default_rng([26, n, list(SHAPES).index(shape)])
    covered_mu, covered_hw = [], []
    for _ in range(repetitions):
        w = estimate_windows(draw(shape, n, 256, rng), "central")
        covered_mu.append((w.mu_lo <= mid) & (mid <= w.mu_hi))
        covered_hw.append((w.hw_lo <= length) & (length <= w.hw_hi))
    _coverage_band(np.concatenate(covered_mu))
    _coverage_band(np.concatenate(covered_hw))


def test_order_statistic_ranks_are_the_binomial_bounds():
    """P(X_(l) > Q(p)) = P(Bin(n, p) <= l) <= level < P(Bin <= l + 1), and the mirror for u;
    checked against 20,000 samples of n = 60 uniforms (any continuous shape maps to them):
    the rate within 4 binomial standard errors of the exact probability."""
    n, p, level = 60, CENTRAL_TAIL, 0.05
    lower, upper = order_statistic_ranks(n, p, level)
    assert lower is not None and upper is not None
    assert stats.binom.cdf(lower, n, p) <= level < stats.binom.cdf(lower + 1, n, p)
    assert stats.binom.sf(upper, n, p) <= level < stats.binom.sf(upper - 1, n, p)
    u = np.sort(np.random.default_rng(21).random((20_000, n)), axis=1)
    for rate, exact in (
        (np.mean(u[:, lower] > p), stats.binom.cdf(lower, n, p)),
        (np.mean(u[:, upper] < p), stats.binom.sf(upper, n, p)),
    ):
        assert abs(rate - exact) <= 4 * math.sqrt(exact * (1 - exact) / 20_000), (rate, exact)
    # too few values for the level: P(Bin(20, 0.12) = 0) = 0.08 > 1e-6, no lower bound
    assert order_statistic_ranks(20, p, 1e-6)[0] is None


def test_term_bias_is_the_expectation_over_the_estimate():
    """The Gauss-Hermite bias of log10 P(hit) against Monte Carlo over the normal
    approximation of one window (200,000 draws; tolerance 4 Monte Carlo standard errors),
    where the window lies inside the box (the smooth regime) and the terms are log widths."""
    sampler = UniformSampler(3.0, 1)
    mu, hw, k = np.array([0.1]), np.array([1.2]), 1.0
    covariance = np.array([[0.06**2, 0.3 * 0.06 * 0.1], [0.3 * 0.06 * 0.1, 0.1**2]])
    w = estimate_windows(_gaussian(400, 1, 22), "fit")
    w = dataclasses.replace(w, mu=mu, hw=hw, covariance=covariance)
    bias = term_bias(w, k, sampler.component_log10_probabilities)
    draws = np.random.default_rng(23).multivariate_normal([0.1, 1.2], covariance, 200_000)
    terms = np.log10(2 * k * draws[:, 1] / 6.0) - np.log10(2 * k * 1.2 / 6.0)
    assert abs(bias[0] - terms.mean()) <= 4 * terms.std() / math.sqrt(terms.size)
    assert bias[0] < 0  # a log is concave: the plug-in value is low


@pytest.mark.parametrize("shape", ["gaussian", "t5"])
def test_log10_p_interval_carries_the_bias(shape):
    """100 data sets of n = 400, 256 components of the shape (central width 1.2, centres
    over [-0.8, 0.8]): the interval of the uniform generator's log10 P(hit) at (b, k) =
    (3, 1) covers the value from the true windows in >= 93% (issue 26; fails when a
    one-sided binomial test at 0.001 finds it below). Without the bias correction it covered
    88-94% (benchmarks/results/intervals.md)."""
    d, n, b, k, width = 256, 400, 3.0, 1.0, 1.2
    centres = np.linspace(-0.8, 0.8, d)
    sampler = UniformSampler(b, d)
    truth = sampler.window_log10_probability(centres - k * width, centres + k * width)
    mid, length = _central_truth(shape)
    rng = np.random.default_rng([27, list(SHAPES).index(shape)])
    covered = 0
    for _ in range(100):
        x = (draw(shape, n, d, rng) - mid) * (width / length) + centres
        p = propagate_log10(estimate_windows(x), k, sampler.component_log10_probabilities)
        covered += p.lo <= truth <= p.hi
    assert stats.binomtest(covered, 100, 0.93, alternative="less").pvalue > 0.001, covered
