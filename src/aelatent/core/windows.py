"""Hit windows: each component's centre ``mu`` and full width at half maximum ``hw``,
estimated from the raw latent values, with standard errors and 95% intervals.

Every figure of the hit test rests on the windows ``[mu_i - k*hw_i, mu_i + k*hw_i]``; a
window error is raised to the 256th power in a hit probability, so the estimator matters
(docs/science.md, "Hit windows"). The estimators, each a plain function of the values:

- ``histogram``: the study's reading of the ~100-bin histogram (peak of the top, FWHM
  between the outermost half-maximum crossings). Kept to reproduce the study; biased at
  small n (FWHM ~0.90 of the truth at n = 400) and by the bin width at large n.
- ``fit``: the Gaussian maximum-likelihood fit: ``mu`` = the mean, ``hw`` = 2 sqrt(2 ln 2)
  times the standard deviation, unbiased (``s / c4(n)``). Estimates the mode and FWHM *of
  a Gaussian*; at the statistical floor (sigma/sqrt(n), 1/sqrt(2n)) when that holds.
- ``kde``: mode and FWHM of a Gaussian kernel density estimate (bandwidth ``h`` from
  Silverman's scale at the mode's rate n^(-1/7)), the FWHM corrected for the kernel's
  widening, ``sqrt(FWHM_kde^2 - (2.355 h)^2)`` (exact for a Gaussian, first order
  otherwise). Estimates the mode and FWHM of any smooth single-peaked shape; noisier than
  ``fit`` on Gaussians, and its mode keeps a smoothing bias on skewed shapes.
- ``robust``: the median and the interquartile range scaled to a Gaussian FWHM.
- ``auto`` (the default): per component, ``fit`` unless the ``kde`` estimate differs from it
  by more than ``AUTO_Z`` standard errors of the difference (in ``mu`` or ``hw``); then
  ``kde``. A Hausman-style pretest: Gaussian components keep the floor of the fit, shapes
  where the fit is measurably wrong get the nonparametric reading, and "measurably"
  tightens with n by itself.

Uncertainty: for ``fit``, ``kde``, ``robust`` and ``auto`` the covariance of all ``2 z_dim``
estimates comes from their influence functions (the delta method; Var = Var(IF) / n),
evaluated on at most ``COVARIANCE_ROWS`` random vectors, so that correlations between
components carry into every propagated probability. For ``histogram`` it is a per-component
bootstrap of the bin counts (multinomial; correlations between components ignored).

Why one module of this size: every window estimator with its standard errors and the
parametric bootstrap share the covariance of (mu, hw), and are compared side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft, special, stats

from aelatent.core.components import (
    FWHM_PER_SIGMA as FWHM_PER_SIGMA,  # re-exported: jobs and io read it from here
)
from aelatent.core.components import (
    IQR_PER_SIGMA,
    column_quantiles,
    mean_and_variance,
    peak_and_fwhm,
)
from aelatent.core.components import (
    WINDOW_ESTIMATORS as WINDOW_ESTIMATORS,  # re-exported: the names the jobs accept
)
from aelatent.core.components import (
    check_estimate as check_estimate,  # re-exported: the jobs check a name with it
)
from aelatent.core.histograms import component_histograms
from aelatent.errors import UserError

Z95 = float(stats.norm.ppf(0.975))
DEFAULT_ESTIMATOR = "auto"
MIN_VECTORS = 20
# The pretest's threshold: 2 tests on each of 256 components need z ~ 4.1 for a 5%
# family-wise level under normality; the KDE mode's differences have heavier tails at small n
# (measured on Gaussians at n = 400: 3.7% of components switched at z = 3, 0.8% at z = 4,
# 0.2% at z = 5), so 5.
AUTO_Z = 5.0
COVARIANCE_ROWS = 20_000
KDE_GRID = 2048
KDE_TAIL_QUANTILE = 0.001  # the grid spans these quantiles, widened by 4 bandwidths
QUANTILES = (KDE_TAIL_QUANTILE, 0.25, 0.5, 0.75, 1 - KDE_TAIL_QUANTILE)
HISTOGRAM_BOOTSTRAP = 200
COMPONENT_BLOCK = 32


class WindowError(UserError):
    """The windows cannot be estimated from these values (too few, a constant component)."""


@dataclass(frozen=True)
class Windows:
    """Centre and width per component, their standard errors, and the joint covariance.

    ``covariance`` is ``[2 z_dim, 2 z_dim]`` over ``(mu_0..mu_{d-1}, hw_0..hw_{d-1})``;
    ``chosen`` names the estimator that produced each component (differs only for ``auto``).
    """

    estimator: str
    n: int
    mu: np.ndarray
    hw: np.ndarray
    mu_se: np.ndarray
    hw_se: np.ndarray
    mu_lo: np.ndarray
    mu_hi: np.ndarray
    hw_lo: np.ndarray
    hw_hi: np.ndarray
    chosen: np.ndarray
    covariance: np.ndarray

    @property
    def z_dim(self) -> int:
        return int(self.mu.size)

    def columns(self) -> dict[str, np.ndarray]:
        """The table of ``stats/windows.csv``, one row per component."""
        return {
            "component": np.arange(self.z_dim),
            "estimator": self.chosen,
            "mu": self.mu,
            "mu_lo": self.mu_lo,
            "mu_hi": self.mu_hi,
            "mu_se": self.mu_se,
            "hw": self.hw,
            "hw_lo": self.hw_lo,
            "hw_hi": self.hw_hi,
            "hw_se": self.hw_se,
        }

    def bounds(self, k: float) -> tuple[np.ndarray, np.ndarray]:
        return self.mu - k * self.hw, self.mu + k * self.hw


# ---------------------------------------------------------------------------------------
# point estimators: plain functions of the values, (mu, hw) per column


def histogram_centre_width(latents: np.ndarray, n_bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The study's reading: histogram peak and FWHM on ``n_bins`` shared bins."""
    hist = component_histograms(latents, n_bins=n_bins)
    return peak_and_fwhm(hist.counts, hist.edges)


def gaussian_centre_width(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian fit: the mean and 2.355 x the unbiased standard deviation ``s / c4(n)``."""
    mean, variance = mean_and_variance(latents)
    return mean, FWHM_PER_SIGMA * np.sqrt(variance) / c4(latents.shape[0])


def kde_centre_width(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mode and kernel-corrected FWHM of a Gaussian KDE (bandwidth: :func:`mode_bandwidth`)."""
    _, variance = mean_and_variance(latents)
    fit = _kde_fit(latents, _quantiles(latents), np.sqrt(variance))
    return fit.mode, fit.hw


def robust_centre_width(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median and ``2.355 * IQR / 1.349`` (a Gaussian's FWHM from its quartiles)."""
    q25, median, q75 = column_quantiles(latents, (0.25, 0.5, 0.75))
    return median, FWHM_PER_SIGMA * (q75 - q25) / IQR_PER_SIGMA


def _quantiles(latents: np.ndarray) -> np.ndarray:
    """[5, z_dim]: the KDE grid's tail quantiles, the quartiles and the median."""
    return column_quantiles(latents, QUANTILES)


def c4(n: int) -> float:
    """E[s] / sigma for n Gaussian values (s with ddof=1)."""
    return math.exp(
        0.5 * math.log(2.0 / (n - 1)) + special.gammaln(n / 2) - special.gammaln((n - 1) / 2)
    )


def mode_bandwidth(sd: np.ndarray, iqr: np.ndarray, n: int) -> np.ndarray:
    """Silverman's scale with the mode's rate: ``0.9 min(sd, IQR/1.349) n^(-1/7)``.

    A mode and a width are read off the density's shape near its peak, which needs a
    smoother estimate than the density itself: n^(-1/7) is the rate that balances the
    mode's smoothing bias and noise (Parzen 1962; Romano 1988). With Silverman's n^(-1/5)
    the KDE mode at n = 400 is bumpy, its spread 0.21 sigma and the delta-method error
    too small (74% coverage); at n^(-1/7) the spread is 0.15 sigma and the coverage 88-93%.
    """
    spread = np.minimum(sd, iqr / IQR_PER_SIGMA)
    spread = np.where(spread > 0, spread, sd)
    bandwidth: np.ndarray = 0.9 * spread * n ** (-1.0 / 7.0)
    return bandwidth


# ---------------------------------------------------------------------------------------
# the kernel density estimate on a grid (binned, FFT), with what the influence needs


@dataclass(frozen=True)
class _KdeFit:
    h: np.ndarray  # bandwidth per column
    grid_lo: np.ndarray
    step: np.ndarray
    density: np.ndarray  # [d, KDE_GRID]
    mode: np.ndarray
    peak: np.ndarray  # density at the mode
    curvature: np.ndarray  # f''(mode)
    left: np.ndarray  # outermost half-maximum crossings
    right: np.ndarray
    slope_left: np.ndarray  # f' there
    slope_right: np.ndarray
    hw_kde: np.ndarray  # right - left
    hw: np.ndarray  # corrected for the kernel

    def density_at(self, x: np.ndarray) -> np.ndarray:
        """The KDE at ``x[c]`` for every column ``c`` (linear interpolation on the grid)."""
        pos = np.clip((x - self.grid_lo) / self.step, 0, KDE_GRID - 1.000001)
        i = np.floor(pos).astype(np.intp)
        frac = pos - i
        rows = np.arange(self.density.shape[0])
        density: np.ndarray = (1 - frac) * self.density[rows, i] + frac * self.density[rows, i + 1]
        return density


def _kde_fit(latents: np.ndarray, quantiles: np.ndarray, sd: np.ndarray) -> _KdeFit:
    """The KDE of every column; ``quantiles`` from :func:`_quantiles`, ``sd`` per column."""
    x = latents
    n, d = x.shape
    q_lo, q25, _, q75, q_hi = quantiles
    h = mode_bandwidth(sd, q75 - q25, n)
    grid_lo = q_lo - 4 * h
    step = (q_hi + 4 * h - grid_lo) / (KDE_GRID - 1)
    counts = np.zeros((d, KDE_GRID))
    for c0 in range(0, d, COMPONENT_BLOCK):
        c1 = min(d, c0 + COMPONENT_BLOCK)
        counts[c0:c1] = _linear_binning(x[:, c0:c1], grid_lo[c0:c1], step[c0:c1])
    # Gaussian kernel on the grid offsets, wrapped for a circular convolution of length L
    length = 2 * KDE_GRID
    offsets = np.arange(length, dtype=np.float64)
    offsets[offsets >= KDE_GRID] -= length
    u = offsets[None, :] * (step / h)[:, None]
    kernel = np.exp(-0.5 * u * u) / (math.sqrt(2 * math.pi) * h[:, None])
    density = (
        fft.irfft(fft.rfft(counts, n=length, axis=1) * fft.rfft(kernel, axis=1), n=length, axis=1)[
            :, :KDE_GRID
        ]
        / n
    )
    density = np.clip(density, 0.0, None)

    rows = np.arange(d)
    top = np.clip(density.argmax(axis=1), 1, KDE_GRID - 2)
    f_m1, f_0, f_p1 = density[rows, top - 1], density[rows, top], density[rows, top + 1]
    second = f_m1 - 2 * f_0 + f_p1
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(second < 0, 0.5 * (f_m1 - f_p1) / second, 0.0)
    mode = grid_lo + (top + offset) * step
    peak = f_0 - 0.25 * (f_m1 - f_p1) * offset
    curvature = np.minimum(second, -1e-300) / step**2

    half = 0.5 * peak
    above = density >= half[:, None]
    first = np.maximum(above.argmax(axis=1), 1)
    last = np.minimum(KDE_GRID - 1 - above[:, ::-1].argmax(axis=1), KDE_GRID - 2)
    f_a, f_b = density[rows, first - 1], density[rows, first]
    left = grid_lo + (first - 1 + (half - f_a) / np.maximum(f_b - f_a, 1e-300)) * step
    slope_left = np.maximum(f_b - f_a, 1e-300) / step
    g_a, g_b = density[rows, last], density[rows, last + 1]
    right = grid_lo + (last + (g_a - half) / np.maximum(g_a - g_b, 1e-300)) * step
    slope_right = -np.maximum(g_a - g_b, 1e-300) / step
    hw_kde = right - left
    kernel_hw = FWHM_PER_SIGMA * h
    hw = np.sqrt(np.maximum(hw_kde**2 - kernel_hw**2, (0.1 * hw_kde) ** 2))
    return _KdeFit(
        h,
        grid_lo,
        step,
        density,
        mode,
        peak,
        curvature,
        left,
        right,
        slope_left,
        slope_right,
        hw_kde,
        hw,
    )


def _linear_binning(x: np.ndarray, lo: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Counts on the grid, each value split between its two neighbouring grid points."""
    d = x.shape[1]
    pos = (x - lo) / step
    inside = (pos >= 0) & (pos <= KDE_GRID - 1)
    pos = np.clip(pos, 0, KDE_GRID - 1.000001)
    i = np.floor(pos).astype(np.intp)
    frac = (pos - i) * inside
    w0 = (1 - (pos - i)) * inside
    flat = i + (np.arange(d) * KDE_GRID)[None, :]
    size = d * KDE_GRID
    counts = np.bincount(flat.ravel(), weights=w0.ravel(), minlength=size)
    counts += np.bincount((flat + 1).ravel(), weights=frac.ravel(), minlength=size + 1)[:size]
    return counts.reshape(d, KDE_GRID)


def _gauss(u: np.ndarray, h: np.ndarray) -> np.ndarray:
    g: np.ndarray = np.exp(-0.5 * (u / h) ** 2) / (math.sqrt(2 * math.pi) * h)
    return g


# ---------------------------------------------------------------------------------------
# influence functions: how one value moves each estimate (rows x components)


def _fit_influence(
    x: np.ndarray, mean: np.ndarray, hw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    sigma = hw / FWHM_PER_SIGMA
    dev = x - mean
    return dev, FWHM_PER_SIGMA * (dev * dev - sigma * sigma) / (2 * sigma)


def _kde_influence(x: np.ndarray, kde: _KdeFit) -> tuple[np.ndarray, np.ndarray]:
    h = kde.h
    k_mode = _gauss(kde.mode - x, h)
    if_mode = (kde.mode - x) / h**2 * k_mode / kde.curvature
    if_left = (0.5 * k_mode - _gauss(kde.left - x, h)) / kde.slope_left
    if_right = (0.5 * k_mode - _gauss(kde.right - x, h)) / kde.slope_right
    return if_mode, (kde.hw_kde / kde.hw) * (if_right - if_left)


def _robust_influence(
    x: np.ndarray, quartiles: np.ndarray, kde: _KdeFit
) -> tuple[np.ndarray, np.ndarray]:
    q25, median, q75 = quartiles
    f25, f50, f75 = (np.maximum(kde.density_at(q), 1e-300) for q in (q25, median, q75))
    if_median = (0.5 - (x <= median)) / f50
    if_iqr = (0.75 - (x <= q75)) / f75 - (0.25 - (x <= q25)) / f25
    return if_median, FWHM_PER_SIGMA / IQR_PER_SIGMA * if_iqr


# ---------------------------------------------------------------------------------------
# the entry point of the module


def check_values(latents: np.ndarray) -> np.ndarray:
    """At least ``MIN_VECTORS`` finite rows and no constant column; WindowError otherwise."""
    x = np.asarray(latents)
    if x.ndim != 2 or x.shape[0] < MIN_VECTORS or x.shape[1] < 1:
        raise WindowError(
            f"{x.shape[0] if x.ndim == 2 else x.size} latent vectors are too few to estimate "
            f"windows; at least {MIN_VECTORS} are needed"
        )
    if not np.all(np.isfinite(x)):
        raise WindowError("latents contain NaN or infinite values")
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if constant.size:
        raise WindowError(
            f"component {int(constant[0])} is constant ({constant.size} such components): "
            "its width is zero and no window can be estimated"
        )
    return x


def estimate_windows(
    latents: np.ndarray, estimator: str = DEFAULT_ESTIMATOR, *, n_bins: int = 100, seed: int = 0
) -> Windows:
    """Windows of ``latents`` [n, z_dim] by ``estimator`` (one of ``WINDOW_ESTIMATORS``)."""
    check_estimate(estimator)
    x = check_values(latents)
    n, d = x.shape
    rng = np.random.default_rng(seed)
    if estimator == "histogram":
        return _histogram_windows(x, n_bins, rng)

    rows = np.sort(rng.choice(n, COVARIANCE_ROWS, replace=False)) if n > COVARIANCE_ROWS else None
    sample = np.asarray(x if rows is None else x[rows], dtype=np.float64)
    mean, variance = mean_and_variance(x)
    hw_fit = FWHM_PER_SIGMA * np.sqrt(variance) / c4(n)
    fit_if = _fit_influence(sample, mean, hw_fit)
    if estimator == "fit":
        return _from_influence(estimator, n, mean, hw_fit, fit_if, np.full(d, "fit"))

    quantiles = _quantiles(x)
    kde = _kde_fit(x, quantiles, np.sqrt(variance))
    if estimator == "robust":
        mu, hw = quantiles[2], FWHM_PER_SIGMA * (quantiles[3] - quantiles[1]) / IQR_PER_SIGMA
        influence = _robust_influence(sample, quantiles[1:4], kde)
        return _from_influence(estimator, n, mu, hw, influence, np.full(d, estimator))
    kde_if = _kde_influence(sample, kde)
    if estimator == "kde":
        return _from_influence(estimator, n, kde.mode, kde.hw, kde_if, np.full(d, "kde"))
    # auto: the fit unless the KDE is significantly different from it
    se_mu_diff = np.std(kde_if[0] - fit_if[0], axis=0) / math.sqrt(n)
    se_hw_diff = np.std(kde_if[1] - fit_if[1], axis=0) / math.sqrt(n)
    use_kde = (np.abs(kde.mode - mean) > AUTO_Z * se_mu_diff) | (
        np.abs(kde.hw - hw_fit) > AUTO_Z * se_hw_diff
    )
    mu = np.where(use_kde, kde.mode, mean)
    hw = np.where(use_kde, kde.hw, hw_fit)
    influence = (np.where(use_kde, kde_if[0], fit_if[0]), np.where(use_kde, kde_if[1], fit_if[1]))
    return _from_influence(estimator, n, mu, hw, influence, np.where(use_kde, "kde", "fit"))


def _from_influence(
    estimator: str,
    n: int,
    mu: np.ndarray,
    hw: np.ndarray,
    influence: tuple[np.ndarray, np.ndarray],
    chosen: np.ndarray,
) -> Windows:
    joint = np.concatenate(influence, axis=1)
    joint -= joint.mean(axis=0)
    covariance = (joint.T @ joint) / (joint.shape[0] - 1) / n
    return _windows(estimator, n, mu, hw, covariance, chosen)


def _windows(
    estimator: str,
    n: int,
    mu: np.ndarray,
    hw: np.ndarray,
    covariance: np.ndarray,
    chosen: np.ndarray,
    intervals: tuple[np.ndarray, ...] | None = None,
) -> Windows:
    d = mu.size
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    mu_se, hw_se = se[:d], se[d:]
    if intervals is None:
        intervals = (mu - Z95 * mu_se, mu + Z95 * mu_se, hw - Z95 * hw_se, hw + Z95 * hw_se)
    mu_lo, mu_hi, hw_lo, hw_hi = intervals
    return Windows(
        estimator,
        int(n),
        mu,
        hw,
        mu_se,
        hw_se,
        mu_lo,
        mu_hi,
        np.maximum(hw_lo, 0.0),
        hw_hi,
        np.asarray(chosen),
        covariance,
    )


def _histogram_windows(x: np.ndarray, n_bins: int, rng: np.random.Generator) -> Windows:
    """Histogram reading; per-component multinomial bootstrap of its own bin counts."""
    n, d = x.shape
    hist = component_histograms(x, n_bins=n_bins)
    mu, hw = peak_and_fwhm(hist.counts, hist.edges)
    p = hist.counts / hist.counts.sum(axis=1, keepdims=True)
    boot = rng.multinomial(n, p, size=(HISTOGRAM_BOOTSTRAP, d))  # [B, d, n_bins]
    b_mu, b_hw = peak_and_fwhm(boot.reshape(-1, n_bins), hist.edges)
    b_mu, b_hw = b_mu.reshape(HISTOGRAM_BOOTSTRAP, d), b_hw.reshape(HISTOGRAM_BOOTSTRAP, d)
    covariance = np.zeros((2 * d, 2 * d))
    idx = np.arange(d)
    covariance[idx, idx] = b_mu.var(axis=0, ddof=1)
    covariance[idx + d, idx + d] = b_hw.var(axis=0, ddof=1)
    cross = ((b_mu - b_mu.mean(0)) * (b_hw - b_hw.mean(0))).sum(0) / (HISTOGRAM_BOOTSTRAP - 1)
    covariance[idx, idx + d] = covariance[idx + d, idx] = cross
    lo, hi = np.quantile(b_mu, [0.025, 0.975], axis=0), np.quantile(b_hw, [0.025, 0.975], axis=0)
    return _windows(
        "histogram", n, mu, hw, covariance, np.full(d, "histogram"), (lo[0], lo[1], hi[0], hi[1])
    )


# ---------------------------------------------------------------------------------------
# propagation into a hit probability


@dataclass(frozen=True)
class PropagatedLog10:
    """A log10 probability, its standard error from the windows, and the 95% interval."""

    value: float
    se: float

    @property
    def lo(self) -> float:
        return self.value - Z95 * self.se if math.isfinite(self.se) else math.nan

    @property
    def hi(self) -> float:
        return self.value + Z95 * self.se if math.isfinite(self.se) else math.nan


def propagate_log10(
    windows: Windows, k: float, per_component: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> PropagatedLog10:
    """Delta method for ``sum_i per_component(lo, hi)[i]``, a separable log10 probability.

    ``per_component(lo, hi)`` gives one log10 term per component for windows ``[lo, hi]``.
    The gradient is a central difference per component (all components at once, as the
    terms are separable); the variance ``g^T C g`` uses the windows' joint covariance.
    """
    mu, hw = windows.mu, windows.hw
    terms = per_component(mu - k * hw, mu + k * hw)
    value = float(np.sum(terms))
    if not math.isfinite(value):
        return PropagatedLog10(value, math.nan)
    step = 1e-4 * hw

    def term(m: np.ndarray, w: np.ndarray) -> np.ndarray:
        return per_component(m - k * w, m + k * w)

    g_mu = (term(mu + step, hw) - term(mu - step, hw)) / (2 * step)
    g_hw = (term(mu, hw + step) - term(mu, hw - step)) / (2 * step)
    g = np.nan_to_num(np.concatenate([g_mu, g_hw]), nan=0.0, posinf=0.0, neginf=0.0)
    return PropagatedLog10(value, float(math.sqrt(max(g @ windows.covariance @ g, 0.0))))


def sample_windows(
    windows: Windows, n_draws: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Draws of (mu, hw) from the normal approximation of the estimate (parametric bootstrap)."""
    d = windows.z_dim
    values, vectors = np.linalg.eigh(windows.covariance)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    centre = np.concatenate([windows.mu, windows.hw])
    draws = centre + rng.standard_normal((n_draws, 2 * d)) @ root.T
    return [(row[:d], np.maximum(row[d:], 1e-12 * windows.hw)) for row in draws]


def needed_multiple(latents: np.ndarray, windows: Windows) -> np.ndarray:
    """Per vector, the smallest k for which it lies in every window: ``max |z - mu| / hw``."""
    k: np.ndarray = np.max(
        np.abs(np.asarray(latents, dtype=np.float64) - windows.mu) / windows.hw, axis=1
    )
    return k
