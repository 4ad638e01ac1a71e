"""The Gaussian-mixture sampler: BIC recovers a planted mixture, its GHK sum matches Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aelatent.core.correlations import mean_and_covariance
from aelatent.core.hits import hit_grid, hit_grid_loop
from aelatent.core.mixture import GMMSampler, MixtureError, fit_latent_mixture, principal_axes

Z_DIM = 64
WEIGHTS = np.array([0.5, 0.3, 0.2])
CENTRES = np.array([[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 6.0]])
WIDTHS = np.array([1.0, 0.7, 1.2])  # per component, isotropic in the plane
NOISE = 0.3  # isotropic noise in all 64 dimensions


def planted(n: int, seed: int) -> np.ndarray:
    """A 3-component mixture in a 3-D subspace of 64 dimensions, plus a little noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).standard_normal((Z_DIM, Z_DIM)))[0][:, :3]
    labels = rng.choice(3, size=n, p=WEIGHTS)
    sub = CENTRES[labels] + WIDTHS[labels, None] * rng.standard_normal((n, 3))
    return (sub @ basis.T + NOISE * rng.standard_normal((n, Z_DIM))).astype(np.float32)


@pytest.fixture(scope="module")
def sampler() -> GMMSampler:
    return GMMSampler.from_latents(planted(2000, 0), seed=0)


def test_bic_recovers_the_planted_three_components(sampler):
    mixture = sampler.mixture
    assert mixture.n_components == 3
    best = min(mixture.bic.values())
    assert mixture.bic[(3, mixture.covariance_type)] == best
    # every other component count is worse for the chosen covariance type
    assert all(v > best for (k, kind), v in mixture.bic.items() if k != 3)
    np.testing.assert_allclose(np.sort(mixture.weights), np.sort(WEIGHTS), atol=0.04)
    assert 1 <= mixture.subspace_dim <= 32
    assert mixture.summary_metrics()["gmm/n_components"] == 3


def test_exact_probability_matches_monte_carlo(sampler):
    """log10 P(hit), the weighted GHK sum, against Monte Carlo hit rates, wherever Monte
    Carlo can see it (at least 20 expected hits): within 4 combined standard errors
    (binomial and GHK)."""
    x = planted(2000, 1)
    mu = x.mean(axis=0)
    hw = 2.355 * x.std(axis=0)
    n = 40_000
    grid = hit_grid(sampler, [0.5, 1.0, 2.0], [0.5, 1.0, 2.0], mu, hw, n, np.random.default_rng(5))
    checked = 0
    for j in range(3):
        for i in range(3):
            p = 10.0 ** grid.log10_p_hit[j, i]
            if p * n < 20 or p > 1 - 20 / n:
                continue
            se = math.sqrt(p * (1 - p) / n + (p * grid.log10_p_rel_se[j, i]) ** 2)
            assert abs(grid.hit_rate[j, i] - p) <= 4 * se, (j, i, grid.hit_rate[j, i], p)
            checked += 1
    assert checked >= 4


def test_the_fast_grid_sees_the_samplers_own_draws(sampler):
    """hit_grid (chunked, labels per vector) and hit_grid_loop (sample() per b and k) count
    the same vectors."""
    x = planted(500, 2)
    mu, hw = x.mean(axis=0), 2.355 * x.std(axis=0)
    fast = hit_grid(
        sampler, [0.5, 1.5], [0.5, 1.0], mu, hw, 3000, np.random.default_rng(7), chunk_size=700
    )
    loop = hit_grid_loop(sampler, [0.5, 1.5], [0.5, 1.0], mu, hw, 3000, 7)
    np.testing.assert_array_equal(fast.hits, loop)


def test_scale_widens_each_component_around_its_own_mean(sampler):
    z = sampler.with_scale(0.01).sample(3000, np.random.default_rng(3))
    nearest = np.min(
        np.linalg.norm(z[:, None, :] - sampler.component_offsets[None], axis=2), axis=1
    )
    assert np.all(nearest < 0.01 * 4 * math.sqrt(Z_DIM) * 1.5)


def test_radius_theory_matches_the_samples(sampler):
    for scale in (0.5, 2.0):
        at = sampler.with_scale(scale)
        r = np.linalg.norm(at.sample(20_000, np.random.default_rng(4)).astype(np.float64), axis=1)
        theory = at.radius_moments()
        assert abs(r.mean() - theory.mean) <= 4 * r.std() / math.sqrt(r.size)
        assert theory.std == pytest.approx(r.std(), rel=0.05)


def test_one_component_is_the_multivariate_normal():
    """With a single component the mixture's covariance is the sample covariance (ML in the
    subspace, the sample eigenvalues outside): the mvn sampler's, up to n / (n - 1)."""
    x = np.random.default_rng(6).standard_normal((400, 12)) @ np.diag(np.linspace(0.5, 3, 12))
    mixture = fit_latent_mixture(
        x, max_components=1, covariance_types=("full",), variance_fraction=0.6
    )
    assert 1 <= mixture.subspace_dim < 12
    mean, cov = mean_and_covariance(x)
    np.testing.assert_allclose(mixture.means[0], mean, atol=1e-10)
    n = x.shape[0]
    top = mixture.basis[:, : mixture.subspace_dim]
    np.testing.assert_allclose(
        mixture.covariance(0),
        cov - (1 / n) * top @ top.T @ cov @ top @ top.T,
        atol=1e-4 * np.abs(cov).max(),
    )


def test_isotropic_residual_is_the_mean_dropped_eigenvalue():
    x = np.random.default_rng(8).standard_normal((400, 10)) @ np.diag(np.linspace(0.5, 3, 10))
    mixture = fit_latent_mixture(x, max_components=1, variance_fraction=0.5, residual="isotropic")
    rest = mixture.eigenvalues[mixture.subspace_dim :]
    np.testing.assert_allclose(mixture.residual_variances, rest.mean())


def test_too_few_or_broken_latents_are_refused():
    with pytest.raises(MixtureError, match="at least 20 training latents"):
        fit_latent_mixture(np.zeros((12, 4)))
    bad = np.random.default_rng(0).standard_normal((50, 4))
    bad[3, 2] = np.nan
    with pytest.raises(MixtureError, match="NaN"):
        fit_latent_mixture(bad)


def test_a_batch_of_windows_matches_one_window_at_a_time(sampler):
    """The mixture's batched GHK: each window within 4 combined standard errors of its own
    estimate (the batch shares one variable order per component, so only GHK noise differs)."""
    x = planted(500, 2)
    mu, hw = x.mean(axis=0), 2.355 * x.std(axis=0)
    ks = np.array([0.8, 1.0, 1.5])
    lo, hi = mu - ks[:, None] * hw, mu + ks[:, None] * hw
    batched = sampler.window_log10_probabilities(lo, hi)
    for j, k in enumerate(ks):
        single = sampler.window_log10_probability(lo[j], hi[j])
        tolerance = 4 * math.sqrt(2) * sampler.last_relative_se / math.log(10)
        assert math.isfinite(single) and abs(batched[j] - single) < tolerance, (k, batched, single)


def test_an_empty_window_in_a_batch_is_minus_infinity_there_only(sampler):
    x = planted(500, 3)
    mu, hw = x.mean(axis=0), 2.355 * x.std(axis=0)
    lo, hi = np.stack([mu - hw, mu - hw]), np.stack([mu + hw, mu + hw])
    hi[1, 7] = lo[1, 7] - 0.1
    values = sampler.window_log10_probabilities(lo, hi)
    assert math.isfinite(values[0]) and values[1] == -math.inf


def test_principal_axes_are_the_covariance_s_eigenvectors_largest_first():
    """The frame the mixture and the flow share: descending eigenvalues, orthonormal columns
    that rebuild the sample covariance, the mean of the latents."""
    x = np.random.default_rng(2).standard_normal((300, 5)) * [3.0, 0.5, 2.0, 1.0, 0.1]
    axes = principal_axes(x)
    mean, cov = mean_and_covariance(x)
    np.testing.assert_allclose(axes.mean, mean)
    assert np.all(np.diff(axes.eigenvalues) <= 0) and np.all(axes.eigenvalues >= 0)
    np.testing.assert_allclose(axes.basis.T @ axes.basis, np.eye(5), atol=1e-12)
    np.testing.assert_allclose((axes.basis * axes.eigenvalues) @ axes.basis.T, cov, atol=1e-10)
