"""Observations in the run's own units, counted only where the windows' errors allow it.

The study's counts (``n_mu_abs_ge_0.25``, ``n_hw_ge_1.5``; :mod:`aelatent.core.observations`)
compare point estimates with CelebA's absolute levels. On latents of another scale they
count everything or nothing, and at small n the noise of a point estimate crosses a level by
chance. Here the levels are multiples of the run's own scale ``s = median(hw)`` (the typical
component's FWHM; the median is not moved by the few wide components the counts look for),
and a component counts as *significant* only when its interval, simultaneous over all N
components, lies wholly past the level: with probability >= 1 - alpha not a single component
is counted falsely. The simultaneous intervals are the estimator's own distribution-free
bounds where it has them (``central``, the default: exact order-statistic bounds, so the
guarantee holds for any continuous shape of the components), else the estimate +- the
Bonferroni z times its standard error (a normal approximation, which holds as far as the
estimator's normality and its standard error do). docs/science.md, "Observations in the
run's own units".
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from scipy import stats

from aelatent.core.observations import HW_LEVELS, MU_ABS_LEVELS, metric_number
from aelatent.core.windows import FAMILY_ALPHA, Windows
from aelatent.errors import UserError

ALPHA = FAMILY_ALPHA  # family-wise chance of any falsely counted component, per count
SCALE_MU_LEVELS = (0.25, 1.0)  # |mu| >= a * s
# hw >= 1 * s holds for half the components by the definition of the median: start at 1.5
SCALE_HW_LEVELS = (1.5, 2.0, 3.0)
DOMINANT_SCALE_MU = 0.25  # the dominance rule in the run's units: off-centre by 0.25 s ...
DOMINANT_SCALE_HW = 1.5  # ... or wider than 1.5 s


def check_level(value: float, name: str = "threshold") -> float:
    """``value`` as a float if it is a finite number > 0; a UserError otherwise."""
    if isinstance(value, bool) or not (
        isinstance(value, Real) and math.isfinite(value) and value > 0
    ):
        raise UserError(f"{name}={value!r} must be a finite number > 0")
    return float(value)


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float if 0 < alpha < 1; a UserError otherwise."""
    if isinstance(alpha, bool) or not (isinstance(alpha, Real) and 0 < alpha < 1):
        raise UserError(f"alpha={alpha!r} must be a number in (0, 1)")
    return float(alpha)


def simultaneous_z(n_components: int, alpha: float = ALPHA) -> float:
    """Bonferroni's two-sided z for ``n_components`` intervals that all hold with 1 - alpha.

    ``norm.ppf(1 - alpha / (2 N))``: 3.73 for N = 256 at alpha = 0.05. Infinite for N = 0
    (nothing to count, nothing significant).
    """
    alpha = check_alpha(alpha)
    if n_components <= 0:
        return math.inf
    return float(stats.norm.ppf(1 - alpha / (2 * n_components)))


def run_scale(windows: Windows) -> float:
    """The run's unit of width: the median hw over the components (NaN without any)."""
    hw = np.asarray(windows.hw, dtype=np.float64)
    hw = hw[np.isfinite(hw)]
    return float(np.median(hw)) if hw.size else math.nan


Bounds = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # mu_lo, mu_hi, hw_lo, hw_hi


def normal_bounds(windows: Windows, z: float) -> Bounds:
    """``mu +- z mu_se`` and ``hw +- z hw_se`` (a NaN error gives NaN ends)."""
    mu_margin = z * np.asarray(windows.mu_se, dtype=np.float64)
    hw_margin = z * np.asarray(windows.hw_se, dtype=np.float64)
    return (
        windows.mu - mu_margin,
        windows.mu + mu_margin,
        windows.hw - hw_margin,
        windows.hw + hw_margin,
    )


def simultaneous_bounds(windows: Windows, alpha: float = ALPHA) -> Bounds:
    """Intervals that hold for every component at once with probability >= 1 - alpha (for
    mu, and for hw): the estimator's exact bounds where it has them at this ``alpha``, else
    the normal ones at Bonferroni's z (:func:`simultaneous_z`)."""
    alpha = check_alpha(alpha)
    exact = windows.simultaneous
    if exact is not None and exact.alpha == alpha:
        return exact.mu_lo, exact.mu_hi, exact.hw_lo, exact.hw_hi
    return normal_bounds(windows, simultaneous_z(windows.z_dim, alpha))


def _bounds(windows: Windows, z: float | None) -> Bounds:
    return simultaneous_bounds(windows) if z is None else normal_bounds(windows, z)


def _off_centre(bounds: Bounds, threshold: float) -> np.ndarray:
    mu_lo, mu_hi, _, _ = bounds
    with np.errstate(invalid="ignore"):
        off: np.ndarray = (mu_lo > threshold) | (mu_hi < -threshold)
    return off


def _wide(bounds: Bounds, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        wide: np.ndarray = bounds[2] > threshold
    return wide


def significantly_off_centre(
    windows: Windows, threshold: float, z: float | None = None
) -> np.ndarray:
    """Per component: its interval lies wholly beyond +-``threshold`` (``lo > threshold`` or
    ``hi < -threshold``). The interval: ``mu +- z mu_se`` for a given ``z``; without one
    the simultaneous bounds at ``ALPHA`` (:func:`simultaneous_bounds`). A NaN end counts as
    not significant.
    """
    return _off_centre(_bounds(windows, z), check_level(threshold))


def significantly_wide(windows: Windows, threshold: float, z: float | None = None) -> np.ndarray:
    """Per component: the lower end of its hw interval lies above ``threshold`` (``hw - z
    hw_se`` for a given ``z``, else the simultaneous bound; a NaN end: not significant)."""
    return _wide(_bounds(windows, z), check_level(threshold))


def _in_scale(multiple: float, scale: float) -> float | None:
    """``multiple * scale``, or None where the scale is unknown (no components)."""
    multiple = check_level(multiple, "multiple")
    return multiple * scale if math.isfinite(scale) and scale > 0 else None


def dominant_significant(windows: Windows, alpha: float = ALPHA) -> np.ndarray:
    """Per component: significantly off-centre by 0.25 s or significantly wider than 1.5 s.

    The study's dominance rule (|mu| >= 0.25 or hw >= 1.5) in the run's own units
    (``s = median hw``), counted only beyond the simultaneous intervals.
    """
    bounds = simultaneous_bounds(windows, alpha)
    scale = run_scale(windows)
    mu_level = _in_scale(DOMINANT_SCALE_MU, scale)
    hw_level = _in_scale(DOMINANT_SCALE_HW, scale)
    if mu_level is None or hw_level is None:
        return np.zeros(windows.z_dim, dtype=bool)
    dominant: np.ndarray = _off_centre(bounds, mu_level) | _wide(bounds, hw_level)
    return dominant


def _count(mask: np.ndarray) -> float:
    return float(np.count_nonzero(mask))


def scale_free_observations(windows: Windows, alpha: float = ALPHA) -> dict[str, float]:
    """Counts in the run's own units and counts that the windows' errors support.

    ``scale_median_hw`` (s); ``n_mu_abs_ge_<a>s``, ``n_hw_ge_<h>s`` (point estimates against
    a s, h s); ``n_sig_mu_abs_ge_<a>s``, ``n_sig_hw_ge_<h>s`` (simultaneous intervals wholly
    past them); ``n_sig_mu_abs_ge_<a>``, ``n_sig_hw_ge_<h>`` (the same, at the study's
    absolute levels); ``n_dominant_sig`` (:func:`dominant_significant`).
    """
    bounds = simultaneous_bounds(windows, alpha)
    scale = run_scale(windows)
    mu, hw = windows.mu, windows.hw
    values = {"scale_median_hw": scale}
    point: dict[str, float] = {}
    significant: dict[str, float] = {}
    for a in SCALE_MU_LEVELS:
        level = _in_scale(a, scale)
        name = f"mu_abs_ge_{metric_number(a)}s"
        point[f"n_{name}"] = 0.0 if level is None else _count(np.abs(mu) >= level)
        significant[f"n_sig_{name}"] = 0.0 if level is None else _count(_off_centre(bounds, level))
    for h in SCALE_HW_LEVELS:
        level = _in_scale(h, scale)
        name = f"hw_ge_{metric_number(h)}s"
        point[f"n_{name}"] = 0.0 if level is None else _count(hw >= level)
        significant[f"n_sig_{name}"] = 0.0 if level is None else _count(_wide(bounds, level))
    for a in MU_ABS_LEVELS:
        name = f"n_sig_mu_abs_ge_{metric_number(a)}"
        significant[name] = _count(_off_centre(bounds, check_level(a)))
    for h in HW_LEVELS:
        significant[f"n_sig_hw_ge_{metric_number(h)}"] = _count(_wide(bounds, check_level(h)))
    values.update(point)
    values.update(significant)
    values["n_dominant_sig"] = _count(dominant_significant(windows, alpha))
    return values
