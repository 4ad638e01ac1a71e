"""Per-component statistics recover known distributions; formulas checked by Monte Carlo.

Tolerances are a few standard errors of the estimator (stated next to each check) plus,
for histogram readings, the bin resolution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aelatent.core.components import (
    FWHM_PER_SIGMA,
    IQR_PER_SIGMA,
    QQ_MAX_SAMPLES,
    DominanceThresholds,
    column_quantiles,
    component_stats,
    peak_and_fwhm,
    qq_correlation,
    transposed_copy,
)
from aelatent.core.histograms import component_histograms
from aelatent.errors import UserError

SEED = 7


def _expected_counts(cdf, edges: np.ndarray, n: float = 1e6) -> np.ndarray:
    """Noise-free histogram: n times the probability of each bin."""
    return (n * np.diff(cdf(edges)))[None, :]


def test_constants():
    assert math.isclose(FWHM_PER_SIGMA, 2 * math.sqrt(2 * math.log(2)), rel_tol=1e-15)
    assert math.isclose(FWHM_PER_SIGMA, 2.354820045, rel_tol=1e-9)
    assert math.isclose(IQR_PER_SIGMA, stats.norm.ppf(0.75) - stats.norm.ppf(0.25), rel_tol=1e-12)


@pytest.mark.parametrize(("mu", "sigma"), [(0.45, 1.0), (-1.05, 0.5), (2.03, 2.5)])  # off-centre
def test_noise_free_gaussian_histogram_gives_peak_and_fwhm(mu, sigma):
    edges = np.linspace(-12, 12, 101)  # bin width 0.24
    counts = _expected_counts(stats.norm(mu, sigma).cdf, edges)
    peak, hw = peak_and_fwhm(counts, edges)
    assert peak[0] == pytest.approx(mu, abs=0.01)  # between bin centres, not on one
    # binning widens a Gaussian to sqrt(sigma^2 + w^2 / 12); linear interpolation adds ~1%
    assert hw[0] == pytest.approx(FWHM_PER_SIGMA * sigma, rel=0.02)


def test_noise_free_uniform_and_laplace_fwhm():
    edges = np.linspace(-4, 4, 401)  # bin width 0.02
    _, hw_uniform = peak_and_fwhm(_expected_counts(stats.uniform(-1, 2).cdf, edges), edges)
    assert hw_uniform[0] == pytest.approx(2.0, abs=0.02)  # FWHM of U[-1, 1] is 2
    _, hw_laplace = peak_and_fwhm(_expected_counts(stats.laplace(0, 0.5).cdf, edges), edges)
    assert hw_laplace[0] == pytest.approx(2 * 0.5 * math.log(2), rel=0.03)  # 2 b ln 2


def test_edge_cases_of_the_histogram_reading():
    edges = np.linspace(-1, 1, 11)  # width 0.2
    one_bin = np.zeros((1, 10))
    one_bin[0, 4] = 7
    peak, hw = peak_and_fwhm(one_bin, edges)
    assert peak[0] == pytest.approx(-0.1)
    assert hw[0] == pytest.approx(0.2)  # resolution-limited: one bin wide
    at_edge = np.zeros((1, 10))
    at_edge[0, -1] = 5
    at_edge[0, -2] = 4
    _, hw = peak_and_fwhm(at_edge, edges)
    # left: half maximum 2.5 between centres 0.5 (count 0) and 0.7 (count 4); right: the edge
    assert hw[0] == pytest.approx(1.0 - (0.5 + 2.5 / 4 * 0.2))


def test_gaussian_components_are_recovered_from_samples():
    rng = np.random.default_rng(SEED)
    n = 40_000
    mus = np.array([0.0, 0.6, -1.5, 2.2, -0.3, 0.1])
    sigmas = np.array([0.5, 1.0, 0.7, 1.5, 2.0, 0.8])
    latents = (rng.standard_normal((n, 6)) * sigmas + mus).astype(np.float32)
    hist = component_histograms(latents)
    s = component_stats(latents, hist)
    se_mean = sigmas / math.sqrt(n)
    assert np.all(np.abs(s.mean - mus) < 4 * se_mean)
    np.testing.assert_array_equal(s.mu_fit, s.mean)
    se_sigma = sigmas / math.sqrt(2 * n)
    assert np.all(np.abs(s.sigma - sigmas) < 4 * se_sigma)
    np.testing.assert_allclose(s.std, s.sigma * math.sqrt(n / (n - 1)))
    np.testing.assert_allclose(s.hw_fit, FWHM_PER_SIGMA * s.sigma)
    # median: SE 1.2533 sigma/sqrt(n); IQR-based sigma: SE ~1.166 sigma/sqrt(n)
    assert np.all(np.abs(s.median - mus) < 4 * 1.2533 * se_mean)
    assert np.all(np.abs(s.sigma_robust - sigmas) < 4 * 1.166 * se_mean)
    # histogram reading: bin width 0.5-ish here (range +-9.5 over 100 bins = 0.19)
    width = hist.width
    assert np.all(np.abs(s.mu - mus) < 0.05 * sigmas + width / 4)
    assert np.all(np.abs(s.hw / (FWHM_PER_SIGMA * sigmas) - 1) < 0.06)
    assert np.all(s.fit_r2 > 0.99)
    assert np.all(s.qq_r > 0.995)
    assert np.all(s.gaussian_like)


def test_robust_width_ignores_outliers_where_the_fit_does_not():
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((20_000, 1))
    latents[:200] = 30.0  # 1% far outliers
    s = component_stats(latents, component_histograms(latents))
    assert s.sigma_robust[0] == pytest.approx(1.0, rel=0.05)
    assert s.sigma[0] > 2.5
    assert not s.gaussian_like[0]


def test_column_quantiles_equal_np_quantile():
    rng = np.random.default_rng(SEED)
    qs = (0.25, 0.5, 0.75)
    for n in (2, 3, 4, 5, 101, 1000):
        latents = rng.standard_normal((n, 6)).astype(np.float32)
        latents[:, 0] = np.round(latents[:, 0])  # ties
        np.testing.assert_allclose(
            column_quantiles(latents, qs),
            np.quantile(latents.astype(np.float64), qs, axis=0),
            rtol=0,
            atol=1e-6,
        )
    latents = rng.standard_normal((999, 3))
    more = (0.01, 0.1, 0.5, 0.9, 0.99)
    np.testing.assert_allclose(column_quantiles(latents, more), np.quantile(latents, more, axis=0))


def test_transposed_copy():
    latents = np.arange(3 * 70_001, dtype=np.float32).reshape(70_001, 3)
    out = transposed_copy(latents)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, latents.T)


def test_gaussian_like_rule_by_monte_carlo():
    """The stated rule: Gaussian n=400 passes (>= 98%), non-Gaussian shapes fail."""
    rng = np.random.default_rng(SEED)
    n, m = 400, 300

    def passing(latents: np.ndarray) -> float:
        return float(np.mean(component_stats(latents, component_histograms(latents)).gaussian_like))

    assert passing(rng.normal(1.0, 0.3, (n, m))) >= 0.98
    assert passing(rng.uniform(-1, 1, (n, 100))) <= 0.05
    assert passing(rng.exponential(size=(n, 100))) == 0.0
    two_peaks = rng.standard_normal((n, 100)) + 1.5 * rng.choice([-1.0, 1.0], (n, 100))
    assert passing(two_peaks) <= 0.2


def test_qq_correlation_is_scale_free_and_bounded():
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((5000, 4))
    r = qq_correlation(latents)
    np.testing.assert_allclose(qq_correlation(3.0 * latents - 7.0), r, rtol=1e-12)
    np.testing.assert_array_equal(qq_correlation(latents), r)  # fixed seed
    # n > 1000: the statistic of a fixed-seed 1000-row subsample (null distribution of m = 1000)
    rows = np.sort(np.random.default_rng(0).choice(5000, QQ_MAX_SAMPLES, replace=False))
    np.testing.assert_array_equal(qq_correlation(latents[rows]), r)
    assert np.all((r > 0.99) & (r <= 1.0))
    assert np.isnan(qq_correlation(latents[:2])).all()


def test_qq_correlation_matches_scipy_probplot_on_small_samples():
    rng = np.random.default_rng(SEED)
    x = rng.gamma(3.0, size=(300, 1))
    ours = qq_correlation(x)[0]
    # scipy's probplot uses Filliben's positions, ours Blom's: agree to ~1e-3
    (_, _), (_, _, r) = stats.probplot(x[:, 0], dist="norm")
    assert ours == pytest.approx(r, abs=2e-3)


def test_fit_r2_separates_shape_from_noise():
    rng = np.random.default_rng(SEED)
    gauss = component_stats(g := rng.standard_normal((400, 200)), component_histograms(g))
    assert np.mean(gauss.fit_r2 >= 0.9) >= 0.98  # adaptive bins: meaningful at n = 400
    flat = component_stats(u := rng.uniform(-1, 1, (400, 100)), component_histograms(u))
    assert np.median(flat.fit_r2) < 0.85


def test_dominance_rule_and_its_parameters():
    rng = np.random.default_rng(SEED)
    n = 20_000
    mus = np.array([0.0, 0.5, -1.2, 0.0, 0.1])
    sigmas = np.array([0.3, 0.3, 0.3, 0.9, 0.4])  # hw = 0.71, 0.71, 0.71, 2.12, 0.94
    latents = (rng.standard_normal((n, 5)) * sigmas + mus).astype(np.float32)
    hist = component_histograms(latents)
    s = component_stats(latents, hist)
    np.testing.assert_array_equal(s.dominant, [False, True, True, True, False])
    np.testing.assert_array_equal(s.dominant, (np.abs(s.mu) >= 0.25) | (s.hw >= 1.5))
    assert np.argmax(s.dominance_score) == 2  # |mu| / 0.25 = 4.8 is the largest
    strict = component_stats(latents, hist, DominanceThresholds(mu_abs=1.0, hw=2.0))
    np.testing.assert_array_equal(strict.dominant, [False, False, True, True, False])
    by_fit = component_stats(latents, hist, DominanceThresholds(estimate="fit"))
    np.testing.assert_array_equal(
        by_fit.dominant, (np.abs(by_fit.mu_fit) >= 0.25) | (by_fit.hw_fit >= 1.5)
    )
    mu, hw = by_fit.centre_and_width("robust")
    np.testing.assert_array_equal(mu, by_fit.median)
    np.testing.assert_array_equal(hw, by_fit.hw_robust)


@pytest.mark.parametrize(
    "bad", [{"mu_abs": 0.0}, {"hw": -1.0}, {"hw": math.nan}, {"estimate": "mean"}]
)
def test_bad_thresholds_are_user_errors(bad):
    with pytest.raises(UserError):
        DominanceThresholds(**bad)


def test_constant_component_does_not_break_the_statistics():
    rng = np.random.default_rng(SEED)
    latents = rng.standard_normal((500, 3))
    latents[:, 1] = 0.25
    s = component_stats(latents, component_histograms(latents))
    assert s.sigma[1] == 0 and s.hw_fit[1] == 0 and s.sigma_robust[1] == 0
    assert np.isnan(s.fit_r2[1]) and not s.gaussian_like[1]
    assert s.hw[1] == pytest.approx(component_histograms(latents).width)
    assert np.isfinite(s.mu[1])
    assert s.gaussian_like[0] and s.gaussian_like[2]


def test_columns_start_with_the_design_contract():
    latents = np.random.default_rng(SEED).standard_normal((100, 2))
    columns = component_stats(latents, component_histograms(latents)).columns()
    assert list(columns)[:8] == [
        "component",
        "mu",
        "hw",
        "sigma",
        "mean",
        "std",
        "fit_r2",
        "dominant",
    ]
    assert {
        "mu_fit",
        "hw_fit",
        "median",
        "sigma_robust",
        "hw_robust",
        "qq_r",
        "gaussian_like",
    } <= set(columns)
    assert all(len(v) == 2 for v in columns.values())


def test_thresholds_are_inclusive():
    rule = DominanceThresholds()
    mu = np.array([0.25, -0.25, 0.2499, 0.0, 0.0])
    hw = np.array([0.0, 0.0, 1.4999, 1.5, 0.1])
    np.testing.assert_array_equal(rule.is_dominant(mu, hw), [True, True, False, True, False])
    np.testing.assert_allclose(rule.score(mu, hw), [1.0, 1.0, 1.4999 / 1.5, 1.0, 0.1 / 1.5])
