r"""Mean and spread of the length ``R = |z|`` of generated latent vectors, from theory.

Why: the study's second finding is that the uniform sampler's radii concentrate in a thin
shell whose radius grows like ``b sqrt(N/3)``, so only a narrow band of ``b`` matches the
real radii. These formulas say where that shell is without sampling.

Derivation (delta method on ``S = R^2``)
----------------------------------------
``S = sum_i z_i^2`` is a sum of N independent terms, so its cumulants are sums:
``m = E[S]``, ``k2 = Var S``, ``k3``, ``k4``. Expanding ``sqrt(S) = sqrt(m) (1 + d)^(1/2)``
with ``d = (S - m)/m`` to fourth order and taking expectations,

    E[R] = sqrt(m) * (1 - k2/(8 m^2) + k3/(16 m^3) - 5 (3 k2^2 + k4)/(128 m^4)) + ...

Each term is one power of 1/N smaller than the one before, the ones dropped are
O(N^-3) relative. The spread needs no further expansion: ``Var R = E[S] - E[R]^2 = m - E[R]^2``.

Uniform, ``z_i ~ U[-b, b]``: with ``u = z_i^2``, ``E[u^j] = b^(2j)/(2j + 1)``, so
``E u = b^2/3``, ``Var u = b^4 (1/5 - 1/9) = 4 b^4/45``, third cumulant ``16 b^6/945``,
fourth cumulant ``-32 b^8/4725``. Then ``k2/m^2 = 4/(5N)`` and

    <R>   = b sqrt(N/3) (1 - 1/(10 N) - 13/(280 N^2) + O(N^-3))
    Var R = b^2 (1/15 + 29/(1050 N) + O(N^-2)),   std R -> b/sqrt(15) ~ 0.258 b

The spread does not grow with N: the relative width ``1/sqrt(5N)`` is 2.8 % at N = 256.
(the study's ``<R> ~ b sqrt(N/3) sqrt(1/(1 + 1/(4N)))`` is ``1 - 1/(8N)``: what one gets
from ``E[R]^2 = E[R^2] - Var R`` with ``Var R = b^2/12``, the variance of one component; the
true ``Var R`` is ``b^2/15``. The two means differ by 1e-4 relative at N = 256, well below
what the study could see; the std differs by 12 %, which a test resolves.)

Independent Gaussian, ``z_i ~ N(mu_i, sigma_i^2)`` (non-central chi-square):
``k_r = sum_i 2^(r-1) (r-1)! (sigma_i^(2r) + r mu_i^2 sigma_i^(2r-2))``, i.e.
``m = sum (mu^2 + sigma^2)``, ``k2 = sum (2 sigma^4 + 4 mu^2 sigma^2)``, etc., into the same
expansion. A multivariate normal ``N(m, C)`` is the independent case in the eigenbasis of
``C`` (``R`` is rotation invariant): sigma_i^2 = eigenvalues, mu = eigenvectors^T m.

Exact check: ``sqrt(s) = 1/(2 sqrt(pi)) int_0^inf (1 - exp(-t s)) t^(-3/2) dt``, so
``E[R] = 1/(2 sqrt(pi)) int_0^inf (1 - M(t)) t^(-3/2) dt`` with the Laplace transform
``M(t) = E[exp(-t S)]``, a product over components with closed-form factors
(uniform: ``sqrt(pi) erf(b sqrt t) / (2 b sqrt t)``; Gaussian:
``(1 + 2 t sigma^2)^(-1/2) exp(-t mu^2 / (1 + 2 t sigma^2))``). One 1-D quadrature gives
``E[R]`` to ~1e-10, valid at any N and for strongly anisotropic widths where the delta
method (which assumes many comparable terms) is poor: ``method="exact"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.integrate import quad
from scipy.special import erf

Method = Literal["delta", "exact"]


@dataclass(frozen=True)
class RadiusMoments:
    """Mean and standard deviation of the radius ``|z|``."""

    mean: float
    std: float


def _delta_moments(m: float, k2: float, k3: float, k4: float) -> RadiusMoments:
    mean = math.sqrt(m) * (
        1 - k2 / (8 * m**2) + k3 / (16 * m**3) - 5 * (3 * k2**2 + k4) / (128 * m**4)
    )
    return RadiusMoments(mean, math.sqrt(max(m - mean**2, 0.0)))


def _exact_moments(m: float, log_laplace: Callable[[float], float]) -> RadiusMoments:
    """E[R] by quadrature of the Laplace transform (see the module docstring)."""

    def integrand(u: float) -> float:  # t = e^u / m; the mass sits near u = 0
        return -math.expm1(log_laplace(math.exp(u) / m)) * math.exp(-u / 2)

    total = 0.0
    for lo, hi in ((-80.0, -5.0), (-5.0, 5.0), (5.0, 80.0)):
        part, _ = quad(integrand, lo, hi, limit=200, epsabs=0.0, epsrel=1e-10)
        total += part
    mean = math.sqrt(m) * total / (2 * math.sqrt(math.pi))
    return RadiusMoments(mean, math.sqrt(max(m - mean**2, 0.0)))


def uniform_radius_moments(b: float, z_dim: int, method: Method = "delta") -> RadiusMoments:
    """Mean and std of ``|z|`` for ``z`` uniform in ``[-b, b]^z_dim``."""
    if not b > 0 or z_dim < 1:
        raise ValueError(f"need b > 0 and z_dim >= 1, got b={b}, z_dim={z_dim}")
    n = float(z_dim)
    if method == "delta":
        return _delta_moments(
            n * b**2 / 3, n * 4 * b**4 / 45, n * 16 * b**6 / 945, -n * 32 * b**8 / 4725
        )

    def log_laplace(t: float) -> float:
        x = b * math.sqrt(t)
        if x < 1e-4:  # sqrt(pi) erf(x) / (2x) = 1 - x^2/3 + x^4/10 - ...
            return n * math.log1p(-(x * x) / 3 + x**4 / 10)
        return n * math.log(math.sqrt(math.pi) * erf(x) / (2 * x))

    return _exact_moments(n * b**2 / 3, log_laplace)


def gaussian_radius_moments(
    mu: np.ndarray, sigma: np.ndarray, method: Method = "delta"
) -> RadiusMoments:
    """Mean and std of ``|z|`` for independent ``z_i ~ N(mu_i, sigma_i^2)``."""
    mu = np.asarray(mu, dtype=np.float64).ravel()
    var = np.asarray(sigma, dtype=np.float64).ravel() ** 2
    if mu.shape != var.shape or mu.size == 0:
        raise ValueError(f"mu and sigma must be equal-length vectors, got {mu.shape}, {var.shape}")
    mu2 = mu**2
    m = float(np.sum(mu2 + var))
    if method == "delta":
        k2 = float(np.sum(2 * var**2 + 4 * mu2 * var))
        k3 = float(np.sum(8 * var**3 + 24 * mu2 * var**2))
        k4 = float(np.sum(48 * var**4 + 192 * mu2 * var**3))
        return _delta_moments(m, k2, k3, k4)

    def log_laplace(t: float) -> float:
        q = 1 + 2 * t * var
        return float(np.sum(-0.5 * np.log1p(2 * t * var) - t * mu2 / q))

    return _exact_moments(m, log_laplace)


def mvn_radius_moments(
    mean: np.ndarray, cov: np.ndarray, method: Method = "delta"
) -> RadiusMoments:
    """Mean and std of ``|z|`` for ``z ~ N(mean, cov)``: independent in cov's eigenbasis."""
    cov = np.asarray(cov, dtype=np.float64)
    eigval, eigvec = np.linalg.eigh(0.5 * (cov + cov.T))
    eigval = np.clip(eigval, 0.0, None)
    keep = eigval > 0
    mu_rot = eigvec.T @ np.asarray(mean, dtype=np.float64).ravel()
    # zero-variance directions contribute a constant mu^2: fold them into one tiny-variance term
    sigma = np.sqrt(eigval[keep])
    mu_keep = mu_rot[keep]
    rest = float(np.sum(mu_rot[~keep] ** 2))
    if rest > 0:
        mu_keep = np.append(mu_keep, math.sqrt(rest))
        sigma = np.append(sigma, 1e-12 * math.sqrt(rest))
    return gaussian_radius_moments(mu_keep, sigma, method)
