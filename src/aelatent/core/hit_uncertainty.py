"""How good each hit figure is: intervals for Monte Carlo rates and exact probabilities,
the held-out real latents as the ceiling, and the grid count of method 1.

- A Monte Carlo hit rate ``hits / n`` gets the Wilson 95% interval (scipy's, in closed form), which
  stays inside [0, 1] and is honest at 0 hits, where the Wald interval collapses to a point.
  It covers the sampling noise of the count, for the windows it was counted against.
- An exact ``log10 P(hit)`` is exact only given the windows; the windows are estimates, so
  its interval is propagated from their covariance: by the delta method for the separable
  samplers (uniform, gaussian), by a parametric bootstrap over the windows for ``mvn`` and
  ``gmm`` (whose GHK estimates are not separable), their own GHK error added in quadrature.
  For the separable samplers the interval also carries the plug-in value's bias: log10 P is
  a curved function of the widths (a sum of 256 logs), so the value at the estimated windows
  is biased low by about half the variance of each log width, summed (0.1 to 0.4 decades at
  n = 400); the interval is centred on the bias-corrected value
  (:func:`aelatent.core.windows.term_bias`), the reported value stays the plug-in one.
  For ``mvn`` and ``gmm`` the bias is the parametric bootstrap's, the mean over the window
  draws minus the value at the estimate (same GHK points), and the interval is Student t
  with the draws' and GHK replicates' degrees of freedom (Welch-Satterthwaite): with
  +- 1.96 x se and no correction it covered 84.5-91.5% (mean 87-90%) instead of 95% at
  n = 400, 64 components; now the lowest cell 93.5-94.5% on Gaussian and skewed latents
  (cells up to 97.5%), 89.5-90.5% on t5 (benchmarks/results/ghk_intervals.md).
- The ceiling: held-out real latents (vectors of faces the windows never saw) through the
  same test; no generator can be expected to hit more often than real faces do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aelatent.core.hits import HitGrid
from aelatent.core.samplers import GHK_REPLICATES, Sampler, grid_points_per_axis
from aelatent.core.windows import (
    Z95,
    PropagatedLog10,
    Windows,
    needed_multiple,
    propagate_log10,
    sample_windows,
)

MVN_WINDOW_DRAWS = 10
MVN_GHK_DRAWS = 512
# degrees of freedom of a GHK relative error: its independent replicates, less one
GHK_DF = GHK_REPLICATES - 1


def wilson_interval(hits: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95% interval of ``hits / n`` per element.

    The closed form of ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``
    (tests/core/test_hit_uncertainty.py compares them), vectorised: binomtest builds one
    object per element, 7 ms each, which made the k-NN search's objective slower than its
    distance matrices."""
    hits = np.asarray(hits, dtype=np.float64)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    p = hits / n
    z2 = Z95**2
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = Z95 * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    # at 0 and n hits an end is exactly 0 or 1 (the formula's rounding can miss it by an ulp)
    lo = np.where(hits <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(hits >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return lo, hi


WindowDraws = list[tuple[np.ndarray, np.ndarray]]


def windows_log10_error(
    sampler: Sampler, windows: Windows, k: float, *, seed: int = 0, draws: WindowDraws | None = None
) -> tuple[float, float, float]:
    """``(se, bias, degrees of freedom)`` of ``log10 P(hit)`` from the windows' own
    uncertainty alone. ``draws``: the bootstrap's window draws (``sample_windows(windows,
    MVN_WINDOW_DRAWS, default_rng(seed))``), passed in when many cells share them: drawing
    them costs an eigendecomposition of the windows' 2N x 2N covariance.

    Separable samplers: the delta method and the second-order bias (df infinite). ``mvn``,
    ``gmm``: the parametric bootstrap over ``draws``; the se is their spread, the bias their
    mean minus the value at the estimate (Efron's bootstrap bias), df the draws less one."""
    per_component = getattr(sampler, "component_log10_probabilities", None)
    if per_component is not None:
        out = propagate_log10(windows, k, per_component)
        return out.se, out.bias, math.inf
    cheaper = getattr(sampler, "with_ghk_draws", None)  # mvn, gmm: GHK estimates
    if cheaper is None:
        raise TypeError(f"no propagation for {type(sampler).__name__}")
    # a cheaper GHK per draw, all draws and the estimate in one batch: the same scrambled
    # points and variable order for every window (common random numbers), so the GHK noise
    # is mostly shared and cancels in the spread and in the bias instead of inflating them
    quick = cheaper(MVN_GHK_DRAWS)
    if draws is None:
        draws = sample_windows(windows, MVN_WINDOW_DRAWS, np.random.default_rng(seed))
    if len(draws) < 2:
        return math.nan, 0.0, math.nan
    centres = np.stack([windows.mu] + [m for m, _ in draws])
    widths = np.stack([windows.hw] + [w for _, w in draws])
    values = quick.window_log10_probabilities(centres - k * widths, centres + k * widths)
    at_estimate, values = float(values[0]), values[1:][np.isfinite(values[1:])]
    if values.size < 2:
        return math.nan, 0.0, math.nan
    bias = float(np.mean(values)) - at_estimate if math.isfinite(at_estimate) else 0.0
    return float(np.std(values, ddof=1)), bias, float(values.size - 1)


def log10_p_hit_interval(
    sampler: Sampler, windows: Windows, k: float, *, seed: int = 0, draws: WindowDraws | None = None
) -> PropagatedLog10:
    """``log10 P(hit)`` of ``sampler`` at multiple ``k``, its error (the windows', and for an
    estimated probability (GHK) its own, added in quadrature) and its bias (the interval is
    centred on ``value - bias``). ``se`` is the standard error; the GHK samplers' interval
    (:func:`hit_intervals`) is ``t_df`` of it, wider than ``PropagatedLog10``'s 1.96."""
    value = sampler.window_log10_probability(*windows.bounds(k))
    if not math.isfinite(value):
        return PropagatedLog10(value, math.nan)
    own = getattr(sampler, "last_relative_se", math.nan)
    windows_se, bias, df = windows_log10_error(sampler, windows, k, seed=seed, draws=draws)
    return PropagatedLog10(value, _combined_se(windows_se, own, df)[0], bias)


def _combined_se(
    windows_se: float, relative_se: float, windows_df: float = math.inf
) -> tuple[float, float]:
    """The windows' error and an estimate's own relative error (in log10 units), combined:
    ``(se, degrees of freedom)`` (Welch-Satterthwaite; infinite when both are exact).

    A bootstrap error (``windows_df`` finite) also carries the noise of the bootstrap's own
    bias estimate, its variance over the ``df + 1`` draws: ``se^2 (1 + 1 / (df + 1))``."""
    own_var = (np.nan_to_num(relative_se) / math.log(10.0)) ** 2
    windows_var = windows_se**2
    if math.isfinite(windows_df):
        windows_var *= 1.0 + 1.0 / (windows_df + 1.0)
    total = windows_var + own_var
    terms = (windows_var**2 / windows_df if math.isfinite(windows_df) else 0.0) + (
        own_var**2 / GHK_DF if own_var > 0 else 0.0
    )
    return math.sqrt(total), (total**2 / terms if terms > 0 else math.inf)


def _quantile(df: np.ndarray) -> np.ndarray:
    """The two-sided 95% quantile of Student t at ``df`` (1.96 where df is infinite; NaN where
    it is not positive or NaN: no interval, not a normal one)."""
    df = np.asarray(df, dtype=np.float64)
    finite = np.isfinite(df) & (df > 0)
    out: np.ndarray = np.where(finite, stats.t.ppf(0.975, np.where(finite, df, 1.0)), Z95)
    return np.where(np.isinf(df) & (df > 0) | finite, out, np.nan)


@dataclass(frozen=True)
class HitIntervals:
    """95% intervals beside a :class:`HitGrid`'s figures, all ``[n_b, n_k]``.

    ``log10_lo``..``log10_hi`` is centred on ``log10_p_hit - log10_bias`` (the bias of the
    plug-in value from the windows' error); None: no correction. Its half-width is
    ``t_df x log10_se`` with ``log10_df`` degrees of freedom (infinite: 1.96, the separable
    samplers; a few to a dozen for the GHK samplers' bootstrap and replicates).
    """

    hit_lo: np.ndarray
    hit_hi: np.ndarray
    log10_se: np.ndarray
    log10_lo: np.ndarray
    log10_hi: np.ndarray
    ghk_rel_se: np.ndarray  # relative standard error of the GHK estimate (mvn); NaN if exact
    log10_bias: np.ndarray | None = None
    log10_df: np.ndarray | None = None


def hit_intervals(
    grid: HitGrid, sampler: Sampler, windows: Windows, *, seed: int = 0
) -> HitIntervals:
    """Wilson intervals of the counts and propagated intervals of ``grid.log10_p_hit``."""
    hit_lo, hit_hi = wilson_interval(grid.hits, grid.n)
    se = np.full(grid.hits.shape, math.nan)
    bias = np.zeros(grid.hits.shape)
    df = np.full(grid.hits.shape, math.inf)
    ghk = np.full(grid.hits.shape, math.nan)
    draws = None  # the GHK samplers' window bootstrap: the same draws for every cell
    if getattr(sampler, "component_log10_probabilities", None) is None:
        draws = sample_windows(windows, MVN_WINDOW_DRAWS, np.random.default_rng(seed))
    for j, scale in enumerate(grid.scales):
        at_scale = sampler.with_scale(float(scale))
        for i, k in enumerate(grid.ks):
            if not math.isfinite(grid.log10_p_hit[j, i]):
                continue
            # the grid's own estimate and its GHK error (mvn, gmm): not estimated twice
            windows_se, bias[j, i], windows_df = windows_log10_error(
                at_scale, windows, float(k), seed=seed, draws=draws
            )
            se[j, i], df[j, i] = _combined_se(windows_se, grid.log10_p_rel_se[j, i], windows_df)
            ghk[j, i] = grid.log10_p_rel_se[j, i]
    centre = grid.log10_p_hit - bias
    half = _quantile(df) * se
    # a log10 probability is at most 0: the bias correction can move one of ~1 above it
    lo, hi = np.minimum(centre - half, 0.0), np.minimum(centre + half, 0.0)
    return HitIntervals(hit_lo, hit_hi, se, lo, hi, ghk, bias, df)


@dataclass(frozen=True)
class HeldoutCeiling:
    """Hit counts of held-out real latents against windows from the training latents."""

    ks: np.ndarray
    n: int
    hits: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def rate(self) -> np.ndarray:
        return self.hits / self.n


def heldout_ceiling(heldout: np.ndarray, windows: Windows, ks: np.ndarray) -> HeldoutCeiling:
    """The fraction of held-out vectors inside every window, per ``k``, Wilson intervals."""
    need = needed_multiple(heldout, windows)
    ks = np.asarray(ks, dtype=np.float64)
    hits = np.array([np.count_nonzero(need <= k) for k in ks], dtype=np.int64)
    lo, hi = wilson_interval(hits, len(need))
    return HeldoutCeiling(ks, len(need), hits, lo, hi)


def grid_log10_inside(windows: Windows, b: float, k: float, spacing: float) -> float:
    """Method 1, the grid over ``[-b, b]^d``: log10 of its points inside every window.

    The grid has points ``-b + j * spacing`` per axis (all of them:
    :func:`~aelatent.core.samplers.grid_log10_point_count`); a point is inside when every
    coordinate is in its window, so the inside count is the product of per-axis counts.
    """
    per_axis = grid_points_per_axis(b, spacing)
    lo, hi = windows.bounds(k)
    first = np.clip(np.ceil((lo + b) / spacing - 1e-9), 0, per_axis)
    last = np.clip(np.floor((hi + b) / spacing + 1e-9), -1, per_axis - 1)
    inside = np.maximum(last - first + 1, 0)
    with np.errstate(divide="ignore"):
        return float(np.sum(np.log10(inside)))
