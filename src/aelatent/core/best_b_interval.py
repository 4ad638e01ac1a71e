r"""The interval of the search's best b that carries the real latents' own error (issue 26).

Why: :meth:`~aelatent.core.objective.UniformSearchObjective.best_in` gives the best b with the
plateau of b as good within the Monte Carlo error of one uniform draw. The windows and the
radius band it scores against are estimates from n real vectors, and their error moves the
optimum more than the draw does: at n = 400 by 0.2% of b where the optimum is smooth (the
radius weight decides it), and by -6% at a hit cliff, 10 times its own spread (every window
equal, the optimum where b reaches the common window edge: each noisy edge costs hits where
the true edge costs none, so the plug-in optimum sits below the true one).

The interval is the union of four ranges, each carrying one source of error where it is
the one that decides:

1. **The Monte Carlo plateau** of ``best_in``: the draw's error (alone it holds where the
   windows and radii are exact).
2. **A bootstrap over the real latents**, in log b. Each of ``B`` replicates draws m of the
   n rows with replacement (m = n, or ``MAX_ROWS`` when n is larger: the windows of 200,000
   rows cost seconds each), re-estimates the windows by the run's estimator (point estimates
   only) and the radius band and typicality from the rows' radii and a proportional
   resample of the other real radii, draws a fresh uniform sample of ``n_samples`` and takes
   the argmax; so a replicate carries the draw's error and the real latents' at once. The
   range is ``log b_hat - shift / lambda +- 1.96 sd / sqrt(lambda)`` (lambda = n/m; the
   shift, the replicates' mean minus the estimate, removes a second-order bias; a resample
   of m rows has lambda times the noise of n rows). ``scipy.stats.bootstrap`` does not fit:
   the statistic is an argmax over a fresh draw per replicate, and the construction needs
   the replicates' windows too (3.).
3. **The windows' bias at a hit cliff.** Where the optimum is where b reaches the window
   edges (every window equal: the hit rate falls off a cliff there), a noisy edge costs hits
   the true edge does not (the hit probability is concave in an edge at b), so the plug-in
   optimum is biased low: -6% at n = 400, 10 times its spread, and the bootstrap sees less
   than half of it (its "truth", the estimated windows, is already spread). The upper end
   is therefore at least the optimum with every window edge moved out to its simultaneous
   bound (the replicates' spread of each edge, Bonferroni over the 2 z_dim edges): wider
   windows only add hits, at larger b than they had, so the optimum moves up, and the true
   windows lie inside.
4. **The real median radius.** Where the windows do not bind, the optimum follows the real
   median radius (the typicality weight peaks there; scaling every real radius by c scales
   the optimum by c exactly), and the bootstrap's spread of a median-like statistic is
   unreliable at n = 400 (89-90% coverage alone). The range is b_hat times the exact
   order-statistic 95% interval of the median radius over the median.

Coverage measured by ``benchmarks/bench_best_b.py`` (docs/science.md, "The search
objective"): against the optimum of the true windows and radii, windows from n = 400.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aelatent.core.objective import BestB, RealSource, UniformSearchObjective, radius_band
from aelatent.core.radius import radii
from aelatent.core.windows import (
    Z95,
    central_centre_width,
    estimate_windows,
    gaussian_centre_width,
    histogram_centre_width,
    kde_centre_width,
    order_statistic_ranks,
    robust_centre_width,
)

DEFAULT_REPLICATES = 50  # B: the mean shift to 1/7 of the spread, the spread to 10%
MAX_ROWS = 20_000  # m: rows a replicate draws at most (the windows' cost grows with it)
UPPER_ALPHA = 0.025  # the widened windows: every true edge inside them with >= 97.5%
MIN_VALID = 0.5  # fewer valid replicates than this share: the whole range is the interval

CENTRE_WIDTH: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "central": central_centre_width,
    "fit": gaussian_centre_width,
    "kde": kde_centre_width,
    "robust": robust_centre_width,
    "histogram": histogram_centre_width,
}


@dataclass(frozen=True)
class BestBInterval:
    """The best b, its interval carrying the windows', the radii's and the draw's error, and
    the parts it is made of (the Monte Carlo plateau, the bootstrap's shift and spread)."""

    b: float
    lo: float
    hi: float
    mc_lo: float  # the Monte Carlo plateau of best_in alone
    mc_hi: float
    shift: float  # mean of the replicates' log b minus log b_hat (the bootstrap bias)
    spread: float  # sd of log b at n rows (the replicates' sd / sqrt(n / m))
    widest: float  # the best b with every window edge at its simultaneous bound
    by_median: tuple[float, float]  # b_hat scaled by the median (band: p1) radius's interval
    replicates: np.ndarray  # the replicates' best b (the valid ones)
    n_failed: int  # replicates with no b scoring (or a degenerate resample)
    rows: int  # m, rows a replicate drew

    def contains(self, b: float) -> bool:
        return self.lo <= b <= self.hi

    def metrics(self, axis: str = "b") -> dict[str, float]:
        """``best_<axis>_lo``/``_hi`` (this interval), the plateau as ``..._mc_lo``/``_mc_hi``,
        the shift and spread in log b and the replicate counts."""
        return {
            f"best_{axis}_lo": self.lo,
            f"best_{axis}_hi": self.hi,
            f"best_{axis}_mc_lo": self.mc_lo,
            f"best_{axis}_mc_hi": self.mc_hi,
            f"best_{axis}_boot_shift": self.shift,
            f"best_{axis}_boot_sd": self.spread,
            f"best_{axis}_widest_windows": self.widest,
            f"best_{axis}_boot_replicates": float(self.replicates.size),
            f"best_{axis}_boot_failed": float(self.n_failed),
            f"best_{axis}_boot_rows": float(self.rows),
        }


def centre_width(x: np.ndarray, estimate: str) -> tuple[np.ndarray, np.ndarray]:
    """The windows' point estimates by ``estimate``, without their errors (``auto``: the whole
    estimator, as its choice per component needs the errors)."""
    if estimate in CENTRE_WIDTH:
        mu, hw = CENTRE_WIDTH[estimate](x)
        return np.asarray(mu, dtype=np.float64), np.asarray(hw, dtype=np.float64)
    windows = estimate_windows(x, estimate)
    return windows.mu, windows.hw


def best_b_interval(
    objective: UniformSearchObjective,
    best: BestB,
    b_min: float,
    b_max: float,
    *,
    source: RealSource | None = None,
    replicates: int = DEFAULT_REPLICATES,
    max_rows: int = MAX_ROWS,
    seed: int | None = None,
) -> BestBInterval:
    """The interval of the best b of ``objective`` over ``[b_min, b_max]`` (``best`` is its
    :meth:`best_in`), by a bootstrap of ``source`` (default: the objective's own)."""
    source = source if source is not None else objective.source
    if source is None:
        raise ValueError("the objective has no real latents to resample (source=None)")
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2, got {replicates}")
    x = np.asarray(source.latents)
    n = x.shape[0]
    m = min(n, int(max_rows))
    lam = n / m
    own = radii(x)
    other = np.asarray(source.other_radii, dtype=np.float64).ravel()
    m_other = min(other.size, round(other.size / lam))
    rng = np.random.default_rng([objective.seed if seed is None else seed, 26])
    found: list[float] = []
    edges: list[np.ndarray] = []
    for _ in range(replicates):
        rows = np.sort(rng.integers(0, n, m))
        draw_seed = int(rng.integers(2**63))
        mu, hw = centre_width(x[rows], source.estimate)
        real = own[rows]
        if m_other:
            real = np.concatenate([real, other[rng.integers(0, other.size, m_other)]])
        band = radius_band(real, source.percentiles)
        if not (np.all(hw > 0) and np.all(np.isfinite(hw)) and band.lo > 0):
            continue  # a resample with a constant column or a zero radius band
        edges.append(np.concatenate([mu - objective.k * hw, mu + objective.k * hw]))
        replicate = UniformSearchObjective(
            mu,
            hw,
            objective.k,
            band,
            objective.n_samples,
            draw_seed,
            kind=objective.kind,
            real_radii=real,
        )
        b = replicate.argmax(b_min, b_max, around=best.b)
        if b is not None:
            found.append(b)
    values = np.array(found)
    failed = replicates - values.size
    if values.size < max(2, MIN_VALID * replicates):
        nan = math.nan
        return BestBInterval(
            best.b, b_min, b_max, best.lo, best.hi, nan, nan, nan, (nan, nan), values, failed, m
        )
    logs, centre = np.log(values), math.log(best.b)
    shift = float(logs.mean() - centre)
    sd = float(logs.std(ddof=1))
    spread = sd / math.sqrt(lam)
    corrected = centre - shift / lam  # second-order bias, b(v) = b0 + beta v
    half = Z95 * math.sqrt(spread**2 + (sd / lam) ** 2 / values.size)
    wide = _widest_best(objective, best, np.array(edges), lam, b_min, b_max)
    # the radius the optimum follows: the median (typical), the band's lower end (band)
    p = 0.5 if objective.kind == "typical" else source.percentiles[0] / 100
    by_median = _radius_quantile_range(best.b, np.concatenate([own, other]), p)
    lo = float(min(math.exp(corrected - half), best.lo, best.b, by_median[0]))
    hi = float(max(math.exp(corrected + half), best.hi, best.b, by_median[1], wide))
    return BestBInterval(
        best.b,
        max(lo, b_min),
        min(hi, b_max),
        best.lo,
        best.hi,
        shift,
        spread,
        wide,
        by_median,
        values,
        failed,
        m,
    )


def _radius_quantile_range(b: float, real_radii: np.ndarray, p: float) -> tuple[float, float]:
    """``b`` scaled by the exact 95% order-statistic interval of the real radii's ``p``
    quantile over the quantile: where the windows do not bind, scaling every real radius by c
    scales the optimum by c exactly, and the optimum follows the median radius (``typical``:
    the weight peaks there) or the band's lower end (``band``). The bootstrap's spread of
    such a quantile-like b is lumpy (its variance has a relative error of order n^(-1/4)):
    it alone covered 89-90% at n = 400 (benchmarks/results/best_b.md)."""
    values = np.sort(real_radii)
    lower, upper = order_statistic_ranks(values.size, p, 0.025)
    quantile = float(np.quantile(values, p))
    if quantile <= 0:
        return b, b
    return (
        b * float(values[lower]) / quantile if lower is not None else 0.0,
        b * float(values[upper]) / quantile if upper is not None else math.inf,
    )


def _widest_best(
    objective: UniformSearchObjective,
    best: BestB,
    edges: np.ndarray,
    lam: float,
    b_min: float,
    b_max: float,
) -> float:
    """The best b when every window is widened to the simultaneous bound of its edges, on the
    estimate's own draw and radii.

    Each of the 2 z_dim edges moves out by ``z`` of its standard error (the replicates'
    spread scaled to n rows), ``z`` Bonferroni's for ``UPPER_ALPHA`` over them: with that
    chance at most some true edge lies outside. Widening a window only adds hits, and at
    larger b than it had (a vector leaves a window at b = edge / |y_i|), so the optimum
    moves up; the true windows lie inside, so their optimum lies below this.
    """
    d = objective.z_dim
    se = edges.std(axis=0, ddof=1) / math.sqrt(lam)
    z = float(stats.norm.isf(UPPER_ALPHA / (2 * d)))
    lo = objective.lo - z * se[:d]
    hi = objective.hi + z * se[d:]
    k = objective.k
    widened = UniformSearchObjective(
        0.5 * (lo + hi),
        (hi - lo) / (2 * k),
        k,
        objective.band,
        objective.n_samples,
        objective.seed,
        kind=objective.kind,
        real_radii=getattr(objective, "sorted_radii", None),
    )
    b = widened.argmax(b_min, b_max, around=best.b)
    return best.b if b is None else b
