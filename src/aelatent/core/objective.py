r"""The objective of the search over ``b``: how well does uniform ``[-b, b]^N`` land on the faces?

Why not the box hit rate alone: it is won by ``b -> 0`` (every tiny vector lies inside
``[mu_i - k hw_i, mu_i + k hw_i]`` when the windows contain 0), yet such vectors are far
shorter than any real latent vector (docs/science.md, "The study": radius theory). So a
sampled vector counts only as far as it does both:

- **hit**: every component within ``[mu_i - k hw_i, mu_i + k hw_i]`` (the study's hit test);
- **radius**: its length ``r`` is where real radii are. Two ways to say "where", the
  objective ``kind``:

  - ``typical`` (the default): the weight ``w(r) = 2 min(F(r), 1 - F(r))``, with ``F`` the
    real radii's empirical distribution function (mid-ranks, linearly interpolated). A radius
    at the real median counts 1, one at the real p10 or p90 counts 0.2, one outside the real
    radii (or outside ``band``) 0. The weight is continuous, so the optimum is where the hit
    rate's fall and the radius weight's rise balance: a property of the data, not of a
    percentile anyone chose (docs/science.md, "The search objective").
  - ``band`` (the study's first version): ``w(r) = 1`` inside the real radii's band
    ``[r_p1, r_p99]``, else 0. Its optimum sits where the sampled radii enter the band and
    moves with the percentiles chosen; kept to reproduce earlier studies.

``objective(b)`` is the mean of ``hit_j * w(b |y_j|)`` over the sampled vectors, in [0, 1];
the multi-objective mode uses the two parts, ``hit_rate(b)`` and ``radius_agreement(b)``
(the mean radius weight), whose Pareto front shows the trade-off. Each value is a Monte
Carlo mean of bounded terms, so its standard error is their standard deviation over
``sqrt(n_samples)``; :meth:`UniformSearchObjective.best_in` reports the best b with the
range of b whose objective is not significantly below the best (a paired test on the same
draws).

Common random numbers
---------------------
One draw ``y ~ U[-1, 1]^N`` (``n_samples`` vectors, the same ones
:class:`~aelatent.core.samplers.UniformSampler` and :func:`~aelatent.core.hits.hit_grid`
draw for the same seed) is scaled by every ``b``: ``z = b y``. The hit condition is an
*interval of b* per vector, computed once: ``lo_i <= b y_i <= hi_i`` for all ``i`` is ``b``
in the intersection over ``i`` of ``[lo_i / y_i, hi_i / y_i]`` (ends swapped for
``y_i < 0``), i.e. ``[L_j, U_j]``; and the radius is ``b |y_j|``. So the objective for a
fixed seed is a deterministic function of ``b`` (no re-sampling noise between trials, which
is what a sequential optimiser needs), each evaluation costs O(n_samples) instead of
O(n_samples x N), and the whole curve over a dense grid of b is cheap: the exact maximiser
over a range (:meth:`UniformSearchObjective.best_in`) cross-checks what the optimiser found.

Why one module of this size: the two objectives, their exact curve and its maximiser all
read the same per-vector hit intervals and radii; apart, each would reach into the others'
arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from aelatent.core.hits import DEFAULT_CHUNK, hit_window
from aelatent.core.radius import radii
from aelatent.core.radius_theory import uniform_radius_moments
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import Z95

OBJECTIVES = ("typical", "band")
DEFAULT_OBJECTIVE = "typical"
BAND_PERCENTILES = (1.0, 99.0)
DENSE_POINTS = 1000  # the exact curve's grid over [b_min, b_max] for best_in
BISECTIONS = 12  # each end of the plateau to 2^-12 of a grid step
VALUES_BLOCK = 4_000_000  # b values x sampled vectors evaluated at once by `values`
LOCAL_SPAN = 1.3  # argmax(around=b): first the grid b / 1.3 .. 1.3 b ...
LOCAL_POINTS = 41  # ... of this many points (1.3% apart; the optimum's peak is wider), refined


@dataclass(frozen=True)
class RadiusBand:
    """The real radii's central band ``[lo, hi]`` (1st..99th percentile) and median."""

    lo: float
    hi: float
    median: float


@dataclass(frozen=True)
class RealSource:
    """Where the windows and the radius band came from: what the bootstrap of the best b
    (:mod:`~aelatent.core.best_b_interval`) resamples to carry their estimation error."""

    latents: np.ndarray  # [n, z_dim], the rows the windows were estimated from (radii too)
    other_radii: np.ndarray  # further real radii in the band and the typicality (held-out)
    estimate: str  # the windows' estimator
    percentiles: tuple[float, float]  # the radius band's


@dataclass(frozen=True)
class ObjectiveValue:
    """The objective at one ``b``, its Monte Carlo standard error and its two parts."""

    b: float
    objective: float
    hit_rate: float
    radius_agreement: float
    objective_se: float = math.nan

    def parts(self) -> dict[str, float]:
        """The two parts by name (the trial metrics and the Pareto axes of mode=multi)."""
        return {"hit_rate": self.hit_rate, "radius_agreement": self.radius_agreement}


@dataclass(frozen=True)
class Bracket:
    """A best value found at some b, and the range ``lo``..``hi`` of b holding the optimum."""

    value: Any  # an objective value with its ``b`` (ObjectiveValue, KnnObjectiveValue)
    lo: float
    hi: float

    @property
    def b(self) -> float:
        return float(self.value.b)

    def contains(self, b: float) -> bool:
        return self.lo <= b <= self.hi


@dataclass(frozen=True)
class BestB(Bracket):
    """The exact maximiser of the sampled objective and the range of b as good within error.

    ``lo``..``hi`` spans every b of the dense grid whose objective is not significantly
    below the best: ``f(best) - f(b) <= 1.96 SE`` of that difference on the same draws.
    """

    value: ObjectiveValue


@dataclass(frozen=True)
class ObjectiveCurve:
    """The objective, its standard error and its parts over a grid of ``b``."""

    b: np.ndarray
    objective: np.ndarray
    objective_se: np.ndarray
    hit_rate: np.ndarray
    radius_agreement: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {"hit_rate": self.hit_rate, "radius_agreement": self.radius_agreement}


def check_objective(name: str) -> str:
    """``name`` if it is one of OBJECTIVES, else a ValueError that lists them."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective={name!r} is unknown; expected one of {', '.join(OBJECTIVES)}")
    return name


def radius_band(
    radii: np.ndarray, percentiles: tuple[float, float] = BAND_PERCENTILES
) -> RadiusBand:
    """Central band of the real radii: by default the 1st..99th percentile (98 % of them)."""
    radii = _check_radii(radii)
    lo_pct, hi_pct = percentiles
    if not 0 <= lo_pct < hi_pct <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
    lo, median, hi = np.percentile(radii, [lo_pct, 50.0, hi_pct])
    return RadiusBand(float(lo), float(hi), float(median))


def _check_radii(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("need at least two finite, non-negative radii")
    return values


def radius_typicality(r: np.ndarray, sorted_radii: np.ndarray) -> np.ndarray:
    """``2 min(F(r), 1 - F(r))``: 1 at the real median, 0 outside the real radii.

    ``F`` puts the i-th smallest of the n real radii at ``(i - 1/2) / n`` and interpolates
    linearly; below the smallest and above the largest it is 0 and 1.
    """
    n = sorted_radii.size
    cdf = np.interp(r, sorted_radii, (np.arange(1, n + 1) - 0.5) / n, left=0.0, right=1.0)
    typicality: np.ndarray = 2.0 * np.minimum(cdf, 1.0 - cdf)
    return typicality


def theory_b(median_radius: float, z_dim: int) -> float:
    """The ``b`` whose mean uniform radius equals the real median radius (radius theory).

    ``|b y| = b |y|``, so the mean radius of ``U[-b, b]^N`` is exactly ``b`` times that of
    ``U[-1, 1]^N``; the equation ``<R>(b) = median`` is linear and solved without iteration.
    """
    if not median_radius > 0:
        raise ValueError(f"median radius must be > 0, got {median_radius}")
    return float(median_radius) / uniform_radius_moments(1.0, z_dim, method="exact").mean


def _hit_intervals(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``y``: the range ``[L, U]`` of ``b > 0`` with ``lo <= b y <= hi`` throughout.

    Empty ranges come out with ``L > U``. A component ``y_i == 0`` imposes nothing when the
    window contains 0 and makes the range empty otherwise.
    """
    if np.all(lo < 0) and np.all(hi > 0):
        # every window contains 0: the range starts at 0 and ends where the first component
        # leaves, 1 / max_i max(y_i / hi_i, y_i / lo_i); in y's float32 (relative error
        # ~1e-7, far below the Monte Carlo error), 2.5x faster: the bootstrap's hot path
        left = y * (1.0 / hi).astype(y.dtype)
        right = y * (1.0 / lo).astype(y.dtype)
        reach = np.maximum(left, right, out=left).max(axis=1).astype(np.float64)
        with np.errstate(divide="ignore"):
            return np.zeros(y.shape[0]), 1.0 / reach
    y = y.astype(np.float64)
    positive = y > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        at_lo = lo / y
        at_hi = hi / y
    lower = np.where(positive, at_lo, at_hi)
    upper = np.where(positive, at_hi, at_lo)
    zero = y == 0
    if zero.any():
        contains_zero = np.broadcast_to((lo <= 0) & (hi >= 0), y.shape)[zero]
        lower[zero] = np.where(contains_zero, -np.inf, np.inf)
        upper[zero] = np.where(contains_zero, np.inf, -np.inf)
    return np.maximum(lower.max(axis=1), 0.0), upper.min(axis=1)


class _IntervalCount:
    """How many of the closed intervals ``[a_j, b_j]`` contain ``x``, for many ``x`` at once."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        keep = start <= end
        self.start = np.sort(start[keep])
        self.end = np.sort(end[keep])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # started at or before x, minus those that ended strictly before x
        started = np.searchsorted(self.start, x, side="right")
        ended = np.searchsorted(self.end, x, side="left")
        return started - ended


class UniformSearchObjective:
    """``objective(b)`` and its parts for the uniform generator, on one fixed draw.

    ``mu``, ``hw``: the real latents' centre and half-width per component; ``k``: the
    half-width multiple of the hit test; ``band``: the real radii's central band;
    ``kind``: ``typical`` (needs ``real_radii``) or ``band`` (see the module docstring);
    ``source``: the real latents behind ``mu``, ``hw`` and the radii, when the interval of
    the best b is to carry their error (:func:`~aelatent.core.best_b_interval.best_b_interval`).
    """

    def __init__(
        self,
        mu: np.ndarray,
        hw: np.ndarray,
        k: float,
        band: RadiusBand,
        n_samples: int,
        seed: int,
        *,
        kind: str = "band",
        real_radii: np.ndarray | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        source: RealSource | None = None,
    ) -> None:
        mu = np.asarray(mu, dtype=np.float64).ravel()
        hw = np.asarray(hw, dtype=np.float64).ravel()
        if mu.shape != hw.shape or mu.size == 0:
            raise ValueError(f"mu and hw must be equal-length vectors, got {mu.shape}, {hw.shape}")
        if not (np.all(hw > 0) and np.all(np.isfinite(hw)) and np.all(np.isfinite(mu))):
            raise ValueError("mu must be finite and every hw positive and finite")
        if not (k > 0 and math.isfinite(k)):
            raise ValueError(f"k must be a positive finite number, got {k}")
        if not 0 < band.lo <= band.hi:
            raise ValueError(f"radius band must satisfy 0 < lo <= hi, got {band}")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.kind = check_objective(kind)
        if kind == "typical":
            if real_radii is None:
                raise ValueError("the typical objective needs the real radii")
            self.sorted_radii = np.sort(_check_radii(real_radii))
        self.mu, self.hw, self.k, self.band = mu, hw, float(k), band
        self.n_samples, self.seed = int(n_samples), int(seed)
        self.source = source

        self.lo, self.hi = lo, hi = hit_window(mu, hw, k)
        base = UniformSampler(1.0, mu.size)
        rng = np.random.default_rng(seed)
        self.hit_lo = np.empty(self.n_samples)
        self.hit_hi = np.empty(self.n_samples)
        self.norm = np.empty(self.n_samples)
        chunk = max(1, min(int(chunk_size), self.n_samples))
        buffer = np.empty((chunk, mu.size), dtype=np.float32)
        for start in range(0, self.n_samples, chunk):
            m = min(chunk, self.n_samples - start)
            y = base.draw_base(m, rng, out=buffer[:m])
            rows = slice(start, start + m)
            self.hit_lo[rows], self.hit_hi[rows] = _hit_intervals(y, lo, hi)
            self.norm[rows] = radii(y)
        with np.errstate(divide="ignore"):
            radius_lo = band.lo / self.norm
            radius_hi = band.hi / self.norm
        # the band objective's terms are 0/1: exact counts by sorted interval ends
        self._hit = _IntervalCount(self.hit_lo, self.hit_hi)
        self._both = _IntervalCount(
            np.maximum(self.hit_lo, radius_lo), np.minimum(self.hit_hi, radius_hi)
        )

    @property
    def z_dim(self) -> int:
        return int(self.mu.size)

    def radius_weight(self, r: np.ndarray) -> np.ndarray:
        """How much a sampled radius ``r`` counts: 1 inside the band (``band``), or its
        typicality among the real radii, cut to 0 outside the band (``typical``)."""
        inside = (r >= self.band.lo) & (r <= self.band.hi)
        if self.kind == "band":
            return inside.astype(np.float64)
        return np.where(inside, radius_typicality(r, self.sorted_radii), 0.0)

    def terms(self, b: float) -> tuple[np.ndarray, np.ndarray]:
        """Per sampled vector at ``b``: its objective term ``hit * w`` and its radius weight."""
        hit = (self.hit_lo <= b) & (b <= self.hit_hi)
        weight = self.radius_weight(b * self.norm)
        return np.where(hit, weight, 0.0), weight

    def __call__(self, b: float) -> ObjectiveValue:
        if not (b > 0 and math.isfinite(b)):
            raise ValueError(f"b must be a positive finite number, got {b}")
        curve = self.curve(np.array([float(b)]))
        return ObjectiveValue(
            float(b),
            float(curve.objective[0]),
            float(curve.hit_rate[0]),
            float(curve.radius_agreement[0]),
            float(curve.objective_se[0]),
        )

    def curve(self, b: np.ndarray) -> ObjectiveCurve:
        """The objective with its standard error and its parts at every ``b``."""
        b = np.asarray(b, dtype=np.float64).ravel()
        n = self.n_samples
        value, se, agreement = (np.empty(b.size) for _ in range(3))
        for i, x in enumerate(b):
            term, weight = self.terms(x)
            value[i] = term.mean()
            se[i] = term.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
            agreement[i] = weight.mean()
        return ObjectiveCurve(b, value, se, self._hit(b) / n, agreement)

    def curves(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(objective, hit_rate, radius_agreement)`` at every ``b`` (vectorised)."""
        curve = self.curve(b)
        return curve.objective, curve.hit_rate, curve.radius_agreement

    def best_in(self, b_min: float, b_max: float, n_points: int = DENSE_POINTS) -> BestB | None:
        """The exact maximiser of the sampled objective over ``[b_min, b_max]``, with the
        range of b as good within Monte Carlo error; ``None`` when it is 0 everywhere.

        ``band``: the count only rises at an interval start, so the maximum is at ``b_min``
        or at a start inside the range (the centre of that maximal plateau is returned).
        ``typical``: the best of a dense log grid, refined by a bounded scalar search
        between its neighbours.
        """
        if not (0 < b_min < b_max and math.isfinite(b_max)):
            raise ValueError(f"need 0 < b_min < b_max < inf, got {b_min}, {b_max}")
        grid = np.geomspace(b_min, b_max, n_points)
        values = self.curve(grid).objective
        best = self._band_best(b_min, b_max) if self.kind == "band" else self._refine(grid, values)
        if best.objective <= 0:
            return None
        lo, hi = self._plateau(best, grid, values)
        return BestB(best, lo, hi)

    def values(self, b: np.ndarray) -> np.ndarray:
        """The objective at every ``b``, without standard errors or parts: blocks of b at once
        (the bootstrap of :mod:`~aelatent.core.best_b_interval` maximises it many times)."""
        b = np.asarray(b, dtype=np.float64).ravel()
        if self.kind == "band":
            return np.asarray(self._both(b) / self.n_samples, dtype=np.float64)
        out = np.empty(b.size)
        block = max(1, VALUES_BLOCK // self.n_samples)
        for start in range(0, b.size, block):
            x = b[start : start + block, None]
            hit = (self.hit_lo <= x) & (x <= self.hit_hi)
            weight = self.radius_weight(x * self.norm)
            out[start : start + block] = np.where(hit, weight, 0.0).mean(axis=1)
        return out

    def argmax(self, b_min: float, b_max: float, around: float | None = None) -> float | None:
        """The maximiser of the sampled objective over ``[b_min, b_max]``, without the plateau
        of :meth:`best_in`; None when the objective is 0 everywhere.

        ``around``: look first on a grid within a factor ``LOCAL_SPAN`` of it (a bootstrap
        replicate's optimum sits near the full data's), over the whole range when the best
        point is that grid's inner end. ``band``: exact, as in :meth:`best_in`.
        """
        if not (0 < b_min < b_max and math.isfinite(b_max)):
            raise ValueError(f"need 0 < b_min < b_max < inf, got {b_min}, {b_max}")
        if self.kind == "band":
            best = self._band_best(b_min, b_max)
            return best.b if best.objective > 0 else None
        if around is not None:
            lo, hi = max(b_min, around / LOCAL_SPAN), min(b_max, around * LOCAL_SPAN)
            grid = np.geomspace(lo, hi, LOCAL_POINTS)
            values = self.values(grid)
            i = int(np.argmax(values))
            inner_end = (i == 0 and lo > b_min) or (i == grid.size - 1 and hi < b_max)
            if values[i] > 0 and not inner_end:
                return self._refine_values(grid, values, i)
        grid = np.geomspace(b_min, b_max, DENSE_POINTS)
        values = self.values(grid)
        i = int(np.argmax(values))
        return self._refine_values(grid, values, i) if values[i] > 0 else None

    def _refine_values(self, grid: np.ndarray, values: np.ndarray, i: int) -> float:
        left, right = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        found = optimize.minimize_scalar(
            lambda x: -float(self.values(np.array([x]))[0]),
            bounds=(left, right),
            method="bounded",
            options={"xatol": 1e-6 * grid[i]},
        )
        return float(found.x) if -found.fun > values[i] else float(grid[i])

    def _band_best(self, b_min: float, b_max: float) -> ObjectiveValue:
        starts = self._both.start
        candidates = np.concatenate([[b_min], starts[(starts > b_min) & (starts <= b_max)]])
        counts = self._both(candidates)
        best = candidates[int(np.argmax(counts))]
        # the plateau ends at the next start or at the first end at or after `best`
        after = [b_max]
        next_start = np.searchsorted(starts, best, side="right")
        if next_start < starts.size:
            after.append(starts[next_start])
        first_end = np.searchsorted(self._both.end, best, side="left")
        if first_end < self._both.end.size:
            after.append(self._both.end[first_end])
        return self(0.5 * (best + min(after)))

    def _refine(self, grid: np.ndarray, values: np.ndarray) -> ObjectiveValue:
        i = int(np.argmax(values))
        best = self(float(grid[i]))
        if values[i] <= 0:
            return best
        left, right = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        found = optimize.minimize_scalar(
            lambda x: -self(float(x)).objective,
            bounds=(left, right),
            method="bounded",
            options={"xatol": 1e-6 * grid[i]},
        )
        refined = self(float(found.x))
        return refined if refined.objective > best.objective else best

    def _plateau(
        self, best: ObjectiveValue, grid: np.ndarray, values: np.ndarray
    ) -> tuple[float, float]:
        """Smallest and largest b not significantly worse than ``best``: the dense grid's,
        each end then bisected against its first rejected neighbour."""
        best_terms, _ = self.terms(best.b)

        def as_good(x: float, value: float | None = None) -> bool:
            if value is not None and best.objective - value > Z95 / math.sqrt(self.n_samples):
                return False  # terms lie in [0, 1]: the difference's SE is <= 1 / sqrt(n)
            term = self.terms(x)[0]
            gap = best.objective - (term.mean() if value is None else value)
            if gap <= 0:
                return True
            se = (best_terms - term).std(ddof=1) / math.sqrt(self.n_samples)
            return bool(gap <= Z95 * se)

        good = np.array([as_good(x, v) for x, v in zip(grid, values, strict=True)])
        kept = np.append(grid[good], best.b)
        ends = []
        for kept_end, beyond in (
            (kept.min(), grid[grid < kept.min()][-1:]),
            (kept.max(), grid[grid > kept.max()][:1]),
        ):
            inner = float(kept_end)
            if beyond.size:  # bisect towards the first rejected grid point
                outer = float(beyond[0])
                for _ in range(BISECTIONS):
                    middle = math.sqrt(inner * outer)
                    if as_good(middle):
                        inner = middle
                    else:
                        outer = middle
            ends.append(inner)
        return ends[0], ends[1]

    @property
    def n_windows_excluding_zero(self) -> int:
        """Components whose hit window excludes 0 (``|mu_i| > k hw_i``).

        Each such component is hit with chance at most ``k hw_i / b`` (never when
        ``b < |mu_i| - k hw_i``), so many of them make every symmetric uniform ``b`` fail:
        the reason the objective is 0 everywhere when the real region sits off the origin.
        """
        return int(np.count_nonzero((self.lo > 0) | (self.hi < 0)))

    def log10_p_hit(self, b: float) -> float:
        """The exact log10 hit probability at ``b`` (product over components; no sampling)."""
        return UniformSampler(b, self.z_dim).window_log10_probability(self.lo, self.hi)
