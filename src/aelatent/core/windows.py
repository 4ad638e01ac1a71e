"""Hit windows: each component's centre ``mu`` and width ``hw`` (for a Gaussian: its peak and
full width at half maximum), estimated from the raw latent values, with standard errors and
95% intervals.

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
- ``auto``: per component, ``fit`` unless the ``kde`` estimate differs from it by more than
  ``AUTO_Z`` standard errors of the difference (in ``mu`` or ``hw``); then ``kde``. A
  Hausman-style pretest; its intervals hold on Gaussian components, not on other shapes
  (skew, heavy tails, mixtures: the KDE's smoothing bias and the pretest's switching).
- ``central`` (the default): the central interval that holds the mass a Gaussian holds
  within its FWHM, ``CENTRAL_MASS`` = erf(sqrt(ln 2)) = 76.1%, with 11.95% of the values
  below it and as many above: ``mu`` its midpoint, ``hw`` its length. Two quantiles, so the
  estimand is defined for any continuous shape and is root-n estimable; for a Gaussian it is
  exactly the peak and the FWHM. Quantiles by Hazen's rule (position ``n p - 1/2``: the
  least biased of numpy's rules for these tails, |bias| of hw <= 0.04 of its sd at n = 400
  on four shapes where the linear rule is 0.07-0.13 sd short; a bias adds up over 256
  components in a hit probability, docs/science.md).
  Its standard errors use each quantile's sparsity ``1/f(Q(p))`` read off the order
  statistics that bound the quantile's own 95% interval (Siddiqui's estimator with the
  span of that interval), and the quantiles' correlation ``p/(1 - p)``, which is the same
  for every shape. Its ``simultaneous`` bounds are exact and distribution-free: order
  statistics whose binomial ranks put each quantile outside with probability
  ``<= alpha / (4 z_dim)``, so every component's mu and hw lie inside at once with
  probability ``>= 1 - alpha`` whatever the shape (the significant counts use them).

Uncertainty: for ``fit``, ``kde``, ``robust``, ``auto`` and ``central`` the covariance of all
``2 z_dim`` estimates comes from their influence functions (the delta method; Var =
Var(IF) / n), evaluated on at most ``COVARIANCE_ROWS`` random vectors, so that correlations
between components carry into every propagated probability (``central``: the correlations
from the influence functions, the standard errors from the order statistics). For
``histogram`` it is a per-component bootstrap of the bin counts (multinomial; correlations
between components ignored).

Propagation into a log10 hit probability (:func:`propagate_log10`): the delta method for the
standard error and, since ``log10 P`` is a curved function of the widths (a log, cut at the
box's edges), a second-order bias correction: per component, the expectation of its term
over the normal approximation of its (mu, hw) estimate (Gauss-Hermite), minus the term at the
estimate. The interval is centred on the corrected value.

Why one module of this size: every window estimator with its standard errors and the
parametric bootstrap share the covariance of (mu, hw), and are compared side by side.
"""

from __future__ import annotations

import dataclasses
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
DEFAULT_ESTIMATOR = "central"
CENTRAL_MASS = math.erf(math.sqrt(math.log(2.0)))  # 0.76097: a Gaussian's mass within its FWHM
CENTRAL_TAIL = 0.5 * (1.0 - CENTRAL_MASS)  # 0.11952 of the values below the window
CENTRAL_RHO = CENTRAL_TAIL / (1.0 - CENTRAL_TAIL)  # correlation of the two sample quantiles
FAMILY_ALPHA = 0.05  # the simultaneous bounds: every component inside with >= 95%
GAUSS_HERMITE_NODES = 5  # per axis of a component's (mu, hw): 25 evaluations of the terms
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
class SimultaneousBounds:
    """Bounds that hold for every component at once: with probability ``>= 1 - alpha``
    every true ``mu`` lies in ``[mu_lo, mu_hi]``, and (separately) with probability
    ``>= 1 - alpha`` every true ``hw`` in ``[hw_lo, hw_hi]``. Infinite where ``n`` is too
    small for an order statistic at that level."""

    alpha: float
    mu_lo: np.ndarray
    mu_hi: np.ndarray
    hw_lo: np.ndarray
    hw_hi: np.ndarray


@dataclass(frozen=True)
class Windows:
    """Centre and width per component, their standard errors, and the joint covariance.

    ``covariance`` is ``[2 z_dim, 2 z_dim]`` over ``(mu_0..mu_{d-1}, hw_0..hw_{d-1})``;
    ``chosen`` names the estimator that produced each component (differs only for ``auto``);
    ``simultaneous``: distribution-free bounds for all components at once, where the
    estimator has them (``central``), else None.
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
    simultaneous: SimultaneousBounds | None = None

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


def central_centre_width(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint and length of the central ``CENTRAL_MASS`` interval (Hazen's quantiles)."""
    n = latents.shape[0]
    lo, hi = _order_statistics(
        latents, np.array([hazen_position(n, CENTRAL_TAIL), hazen_position(n, 1 - CENTRAL_TAIL)])
    )
    return 0.5 * (lo + hi), hi - lo


def robust_centre_width(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median and ``2.355 * IQR / 1.349`` (a Gaussian's FWHM from its quartiles)."""
    q25, median, q75 = column_quantiles(latents, (0.25, 0.5, 0.75))
    return median, FWHM_PER_SIGMA * (q75 - q25) / IQR_PER_SIGMA


def _quantiles(latents: np.ndarray) -> np.ndarray:
    """[5, z_dim]: the KDE grid's tail quantiles, the quartiles and the median."""
    return column_quantiles(latents, QUANTILES)


def hazen_position(n: int, p: float) -> float:
    """The 0-based position of the ``p`` quantile by Hazen's rule, ``n p - 1/2``, in range."""
    return float(min(max(n * p - 0.5, 0.0), n - 1.0))


def _order_statistics(latents: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``[len(positions), z_dim]``: per column, the sorted values at these 0-based positions
    (fractional ones interpolated linearly between neighbours)."""
    n = latents.shape[0]
    fractions = tuple(float(p) / (n - 1) for p in positions)
    return column_quantiles(latents, fractions)


def order_statistic_ranks(n: int, p: float, level: float) -> tuple[int | None, int | None]:
    """0-based ranks ``(l, u)`` of the order statistics that bound the ``p`` quantile Q:
    ``P(X_(l) > Q) <= level`` and ``P(X_(u) < Q) <= level`` for every continuous
    distribution (the count of values below Q is binomial(n, p)); None where none does."""
    j = np.arange(n + 1)
    below = np.flatnonzero(stats.binom.cdf(j, n, p) <= level)  # X_(j+1) > Q iff Bin <= j
    above = np.flatnonzero(stats.binom.sf(j, n, p) <= level)  # X_(j+1) < Q iff Bin > j
    lower = int(below[-1]) if below.size else None
    upper = int(above[0]) if above.size and above[0] < n else None
    return lower, upper


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


def _central_windows(x: np.ndarray, sample: np.ndarray, alpha: float = FAMILY_ALPHA) -> Windows:
    """The ``central`` estimator: quantiles, their order-statistic errors, and exact bounds.

    ``sample``: the rows the influence functions (the correlations) are evaluated on.
    """
    n, d = x.shape
    a, b = CENTRAL_TAIL, 1.0 - CENTRAL_TAIL
    # the span of a quantile's own 95% interval, in probability: Siddiqui's sparsity estimate
    # 1/f(Q(p)) = (Q(p + h) - Q(p - h)) / 2h at the bandwidth the order statistics give it
    h = Z95 * math.sqrt(a * (1 - a) / n)
    p_lo, p_hi = max(a - h, 0.5 / n), a + h
    positions = [hazen_position(n, p) for p in (a, b, p_lo, p_hi, 1 - p_hi, 1 - p_lo)]
    # exact simultaneous bounds: each of the four order statistics outside with <= level
    level = alpha / (4 * d)
    l_a, u_a = order_statistic_ranks(n, a, level)
    l_b, u_b = order_statistic_ranks(n, b, level)
    exact = [r for r in (l_a, u_a, l_b, u_b) if r is not None]
    values = _order_statistics(x, np.array(positions + exact, dtype=np.float64))
    q_a, q_b, a_lo, a_hi, b_lo, b_hi = values[:6]
    by_rank = dict(zip(exact, values[6:], strict=True))
    sparsity_a = (a_hi - a_lo) / (p_hi - p_lo)
    sparsity_b = (b_hi - b_lo) / (p_hi - p_lo)
    sd_a = sparsity_a * math.sqrt(a * (1 - a) / n)
    sd_b = sparsity_b * math.sqrt(b * (1 - b) / n)
    mu, hw = 0.5 * (q_a + q_b), q_b - q_a
    mu_se = 0.5 * np.sqrt(sd_a**2 + sd_b**2 + 2 * CENTRAL_RHO * sd_a * sd_b)
    hw_se = np.sqrt(np.maximum(sd_a**2 + sd_b**2 - 2 * CENTRAL_RHO * sd_a * sd_b, 0.0))

    # the correlations, within and between components, from the quantiles' influence
    if_a = (a - (sample <= q_a)) * sparsity_a
    if_b = (b - (sample <= q_b)) * sparsity_b
    joint = np.concatenate([0.5 * (if_a + if_b), if_b - if_a], axis=1)
    joint -= joint.mean(axis=0)
    covariance = (joint.T @ joint) / (joint.shape[0] - 1) / n
    se = np.concatenate([mu_se, hw_se])
    if_se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(if_se > 0, se / if_se, 0.0)
    covariance *= np.outer(scale, scale)
    idx = np.arange(2 * d)
    covariance[idx, idx] = se**2

    def at(rank: int | None, missing: float) -> np.ndarray:
        return np.full(d, missing) if rank is None else by_rank[rank]

    lo_a, hi_a, lo_b, hi_b = at(l_a, -np.inf), at(u_a, np.inf), at(l_b, -np.inf), at(u_b, np.inf)
    simultaneous = SimultaneousBounds(
        alpha, 0.5 * (lo_a + lo_b), 0.5 * (hi_a + hi_b), np.maximum(lo_b - hi_a, 0.0), hi_b - lo_a
    )
    windows = _windows("central", n, mu, hw, covariance, np.full(d, "central"))
    return dataclasses.replace(windows, simultaneous=simultaneous)


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
    if estimator == "central":
        return _central_windows(x, sample)
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
    """A log10 probability, its standard error from the windows, the bias of the plug-in
    value (expected value minus truth, to second order), and the 95% interval around the
    bias-corrected value ``value - bias``."""

    value: float
    se: float
    bias: float = 0.0

    @property
    def corrected(self) -> float:
        return self.value - self.bias

    @property
    def lo(self) -> float:
        """Cut at 0: the bias correction can move a probability of ~1 above it."""
        return min(self.corrected - Z95 * self.se, 0.0) if math.isfinite(self.se) else math.nan

    @property
    def hi(self) -> float:
        return min(self.corrected + Z95 * self.se, 0.0) if math.isfinite(self.se) else math.nan


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
    se = float(math.sqrt(max(g @ windows.covariance @ g, 0.0)))
    return PropagatedLog10(value, se, float(np.sum(term_bias(windows, k, per_component))))


def term_bias(
    windows: Windows, k: float, per_component: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per component, the second-order bias of its log10 term at the estimated window.

    ``E[t(mu^, hw^)] - t(mu, hw)`` is, to second order, the expectation of ``t`` over the
    normal approximation of the estimate (its 2 x 2 covariance) minus ``t`` at its centre;
    both are taken at the estimate: a product Gauss-Hermite rule of
    ``GAUSS_HERMITE_NODES`` points per axis, which also averages over a kink where the
    window's edge meets the box's. 0 where a node's term is not finite (a window that
    may miss the box: no second-order expansion holds there).
    """
    d = windows.z_dim
    mu, hw, c = windows.mu, windows.hw, windows.covariance
    idx = np.arange(d)
    var_mu = np.clip(c[idx, idx], 0.0, None)
    var_hw = np.clip(c[idx + d, idx + d], 0.0, None)
    l11 = np.sqrt(var_mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        l21 = np.where(l11 > 0, c[idx, idx + d] / l11, 0.0)
    l22 = np.sqrt(np.clip(var_hw - l21**2, 0.0, None))
    nodes, weights = np.polynomial.hermite_e.hermegauss(GAUSS_HERMITE_NODES)
    weights = weights / math.sqrt(2 * math.pi)
    centre = per_component(mu - k * hw, mu + k * hw)
    expected = np.zeros(d)
    for u1, w1 in zip(nodes, weights, strict=True):
        m = mu + l11 * u1
        for u2, w2 in zip(nodes, weights, strict=True):
            w = np.maximum(hw + l21 * u1 + l22 * u2, 1e-12 * hw)
            expected += w1 * w2 * per_component(m - k * w, m + k * w)
    with np.errstate(invalid="ignore"):
        bias = expected - centre
    return np.where(np.isfinite(bias), bias, 0.0)


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
