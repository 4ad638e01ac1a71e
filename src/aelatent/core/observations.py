"""The study's observations as numbers, named as MLflow metrics.

The study (docs/science.md) lists eight observations for CelebA (most components
Gaussian-like, >= 90% with mu near 0, values in [-12, 12], <= 25 with |mu| >= 0.25, ...).
Here each becomes a metric, so that runs (case I against case II, ORL against CelebA)
compare side by side. The count thresholds are the study's and fixed, since they are part
of the metric names
(``n_mu_abs_ge_0.25``, ``n_hw_ge_1.5``; numbers printed with ``f"{x:g}"``).
"""

from __future__ import annotations

import numpy as np

from aelatent.core.components import ComponentStats

MU_ABS_LEVELS = (0.25, 1.0)
HW_LEVELS = (1.0, 1.5, 3.0)
MU_NEAR_ZERO = 0.25
CENTRE_FRACTION = 0.9


def metric_number(x: float) -> str:
    """How a number appears in a metric name: ``1.5 -> '1.5'``, ``1.0 -> '1'``."""
    return f"{x:g}"


def component_observations(
    stats: ComponentStats, estimate: str = "histogram", mu_near_zero: float = MU_NEAR_ZERO
) -> dict[str, float]:
    """Observations 1, 2 and 4-8 and the number of dominant components.

    ``frac_gaussian_like``, ``frac_mu_near_0`` (|mu| < ``mu_near_zero``),
    ``n_mu_abs_ge_<a>``, ``n_hw_ge_<h>``, ``n_dominant``; mu and hw of ``estimate``.
    """
    mu, hw = stats.centre_and_width(estimate)
    values = {
        "frac_gaussian_like": float(np.mean(stats.gaussian_like)),
        "frac_mu_near_0": float(np.mean(np.abs(mu) < mu_near_zero)),
    }
    for level in MU_ABS_LEVELS:
        values[f"n_mu_abs_ge_{metric_number(level)}"] = float(np.sum(np.abs(mu) >= level))
    for level in HW_LEVELS:
        values[f"n_hw_ge_{metric_number(level)}"] = float(np.sum(hw >= level))
    values["n_dominant"] = float(np.sum(stats.dominant))
    return values


def value_range_observations(
    value_min: float, value_max: float, half_range: float
) -> dict[str, float]:
    """Observation 3: ``value_min``, ``value_max``, symmetric ``value_range`` r of [-r, r]."""
    return {
        "value_min": float(value_min),
        "value_max": float(value_max),
        "value_range": float(half_range),
    }


def axes_for_fraction(vector: np.ndarray, fraction: float = CENTRE_FRACTION) -> int:
    """Fewest axes whose squared coordinates make up ``fraction`` of ``|vector|^2``."""
    squares = np.sort(np.asarray(vector, dtype=np.float64) ** 2)[::-1]
    total = squares.sum()
    if total <= 0:
        return 0
    return int(np.argmax(np.cumsum(squares) >= fraction * total * (1 - 1e-12))) + 1


def centre_observations(mean: np.ndarray) -> dict[str, float]:
    """The picture's "centre off the origin but close to a sub-space spanned by a few axes".

    ``centre_norm`` = |mean vector|; ``n_axes_centre_90`` = how many axes carry 90% of its
    square.
    """
    return {
        "centre_norm": float(np.linalg.norm(mean)),
        "n_axes_centre_90": float(axes_for_fraction(mean, CENTRE_FRACTION)),
    }
