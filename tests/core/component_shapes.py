"""Component shapes with a known central interval, shared by the tests of the windows and of
the significant counts (issue 26: intervals that hold on any component shape)."""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from aelatent.core.windows import CENTRAL_TAIL


class Mixture:
    """0.7 N(0, 1) + 0.3 N(2, 1): single-peaked, skewed."""

    def rvs(self, size: tuple[int, int], random_state: np.random.Generator) -> np.ndarray:
        x = random_state.standard_normal(size)
        return x + 2.0 * (random_state.random(size) < 0.3)

    def ppf(self, p: float) -> float:
        def f(x: float) -> float:
            return float(0.7 * stats.norm.cdf(x) + 0.3 * stats.norm.cdf(x, 2.0) - p)

        return float(optimize.brentq(f, -20.0, 20.0, xtol=1e-14))


SHAPES = {
    "gaussian": stats.norm(),
    "skewnorm4": stats.skewnorm(4.0),
    "t5": stats.t(5),
    "mixture": Mixture(),
}


def central_truth(shape: str) -> tuple[float, float]:
    """Midpoint and length of the shape's central interval (the estimand of `central`)."""
    dist = SHAPES[shape]
    lo, hi = float(dist.ppf(CENTRAL_TAIL)), float(dist.ppf(1 - CENTRAL_TAIL))
    return 0.5 * (lo + hi), hi - lo


def draw(shape: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(SHAPES[shape].rvs(size=(n, d), random_state=rng))
