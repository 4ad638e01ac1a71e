"""Radius theory against exact values, quadrature and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aelatent.core.radius_theory import (
    gaussian_radius_moments,
    mvn_radius_moments,
    uniform_radius_moments,
)


def mc_radii(z: np.ndarray) -> tuple[float, float, float, float]:
    """Sample mean and std of |z| with their standard errors."""
    r = np.linalg.norm(z.astype(np.float64), axis=1)
    n = r.size
    std = r.std(ddof=1)
    kurt = np.mean((r - r.mean()) ** 4) / std**4
    return r.mean(), std, std / math.sqrt(n), std * math.sqrt((kurt - 1) / (4 * n))


def test_one_dimension_is_exact():
    # |U[-b, b]| is U[0, b]: mean b/2, std b/sqrt(12)
    exact = uniform_radius_moments(3.0, 1, "exact")
    assert exact.mean == pytest.approx(1.5, rel=1e-9)
    assert exact.std == pytest.approx(3 / math.sqrt(12), rel=1e-7)
    # |N(0, s^2)| is half-normal: mean s sqrt(2/pi)
    half = gaussian_radius_moments(np.zeros(1), np.array([2.0]), "exact")
    assert half.mean == pytest.approx(2 * math.sqrt(2 / math.pi), rel=1e-9)


@pytest.mark.parametrize("n", [16, 64, 256])
def test_closed_form_matches_the_quadrature(n: int):
    for b in (1.0, 12.0):
        delta, exact = uniform_radius_moments(b, n), uniform_radius_moments(b, n, "exact")
        # dropped terms: O(N^-3) in the mean, O(N^-2) in the std
        assert delta.mean == pytest.approx(exact.mean, rel=1 / n**3)
        assert delta.std == pytest.approx(exact.std, rel=1 / n**2)


def test_uniform_shell_against_monte_carlo_and_the_studys_figures():
    n_dim, b = 256, 2.0
    z = np.random.default_rng(0).uniform(-b, b, (40_000, n_dim)).astype(np.float32)
    mean, std, se_mean, se_std = mc_radii(z)
    theory = uniform_radius_moments(b, n_dim)
    assert abs(mean - theory.mean) < 4 * se_mean
    assert abs(std - theory.std) < 4 * se_std
    assert theory.std == pytest.approx(b / math.sqrt(15), rel=1e-3)
    assert abs(std - b / math.sqrt(12)) > 10 * se_std  # one component's spread is not R's
    # the study: N = 256, b = 1 -> 9.2, b = 12 -> 111
    assert round(uniform_radius_moments(1, 256).mean, 1) == 9.2
    assert round(uniform_radius_moments(12, 256).mean) == 111


def test_exact_mean_beats_the_studys_approximation_at_small_n():
    # at N = 2 the study's sqrt(1/(1 + 1/(4N))) form is 0.6 % high; the quadrature is exact
    n_dim = 2
    z = np.random.default_rng(1).uniform(-1, 1, (400_000, n_dim))
    mean, _, se_mean, _ = mc_radii(z)
    exact = uniform_radius_moments(1, n_dim, "exact").mean
    science = math.sqrt(n_dim / 3) * math.sqrt(1 / (1 + 1 / (4 * n_dim)))
    assert abs(mean - exact) < 4 * se_mean
    assert abs(mean - science) > 8 * se_mean


def test_independent_gaussian_against_monte_carlo():
    rng = np.random.default_rng(2)
    mu, sigma = rng.normal(0, 0.8, 256), rng.uniform(0.2, 2.0, 256)
    z = (mu + sigma * rng.standard_normal((20_000, 256))).astype(np.float32)
    mean, std, se_mean, se_std = mc_radii(z)
    for method in ("delta", "exact"):
        theory = gaussian_radius_moments(mu, sigma, method)
        assert abs(mean - theory.mean) < 4 * se_mean
        assert abs(std - theory.std) < 4 * se_std


def test_anisotropic_mvn_against_monte_carlo_and_rotation_invariance():
    rng = np.random.default_rng(3)
    d = 64
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = np.r_[np.full(3, 25.0), np.full(d - 3, 0.01)]  # three dominant axes
    cov = q @ np.diag(eig) @ q.T
    mean = q[:, 0] * 2.0
    z = rng.multivariate_normal(mean, cov, 40_000)
    m, s, se_m, se_s = mc_radii(z)
    exact = mvn_radius_moments(mean, cov, "exact")
    assert abs(m - exact.mean) < 4 * se_m
    assert abs(s - exact.std) < 4 * se_s
    same = gaussian_radius_moments(np.r_[2.0, np.zeros(d - 1)], np.sqrt(eig), "exact")
    assert exact.mean == pytest.approx(same.mean, rel=1e-8)
