r"""The objective of the search over ``b``: how well does uniform ``[-b, b]^N`` land on the faces?

Why not the box hit rate alone: it is won by ``b -> 0`` (every tiny vector lies inside
``[mu_i - k hw_i, mu_i + k hw_i]`` when the windows contain 0), yet such vectors are far
shorter than any real latent vector (SCIENCE.md, "Radii"). So a sampled vector counts only
when it does both:

- **hit**: every component within ``[mu_i - k hw_i, mu_i + k hw_i]`` (the study's hit test);
- **radius**: its length within the central 98 % of the real radii, ``[r_1%, r_99%]``.

``objective(b)`` is the fraction of sampled vectors that do both; the multi-objective mode
uses the two parts, ``hit_rate(b)`` and ``radius_agreement(b)`` (the fraction of sampled
radii inside the real band), whose Pareto front shows the trade-off. ``objective`` is at most
either part, and tends to 0 as ``b -> 0`` because every radius tends to 0.

Common random numbers, evaluated exactly
----------------------------------------
One draw ``y ~ U[-1, 1]^N`` (``n_samples`` vectors, the same ones
:class:`~aelatent.core.samplers.UniformSampler` and :func:`~aelatent.core.hits.hit_grid`
draw for the same seed) is scaled by every ``b``: ``z = b y``. Then each condition is an
*interval of b* per vector, computed once:

- hit: ``lo_i <= b y_i <= hi_i`` for all ``i`` is ``b`` in the intersection over ``i`` of
  ``[lo_i / y_i, hi_i / y_i]`` (ends swapped for ``y_i < 0``), i.e. ``[L_j, U_j]``;
- radius: ``r_lo <= b |y_j| <= r_hi`` is ``b`` in ``[r_lo / |y_j|, r_hi / |y_j|]``.

So the objective for a fixed seed is a deterministic step function of ``b`` with steps of
``1/n_samples`` (smooth to the eye, no re-sampling noise between trials, which is what a
sequential optimiser needs), each evaluation costs O(n_samples) instead of
O(n_samples x N), memory is O(n_samples), and the exact maximiser over a range is a sweep
over the interval ends (:meth:`UniformSearchObjective.best_in`): a check on what the
optimiser found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aelatent.core.hits import DEFAULT_CHUNK, hit_window
from aelatent.core.radius import radii
from aelatent.core.radius_theory import uniform_radius_moments
from aelatent.core.samplers import UniformSampler

BAND_PERCENTILES = (1.0, 99.0)


@dataclass(frozen=True)
class RadiusBand:
    """The real radii's central band ``[lo, hi]`` (1st..99th percentile) and median."""

    lo: float
    hi: float
    median: float


@dataclass(frozen=True)
class ObjectiveValue:
    """The objective at one ``b`` and its two parts (fractions of ``n_samples`` vectors)."""

    b: float
    objective: float
    hit_rate: float
    radius_agreement: float


def radius_band(
    radii: np.ndarray, percentiles: tuple[float, float] = BAND_PERCENTILES
) -> RadiusBand:
    """Central band of the real radii: by default the 1st..99th percentile (98 % of them)."""
    radii = np.asarray(radii, dtype=np.float64).ravel()
    if radii.size < 2 or not np.all(np.isfinite(radii)) or np.any(radii < 0):
        raise ValueError("need at least two finite, non-negative radii")
    lo_pct, hi_pct = percentiles
    if not 0 <= lo_pct < hi_pct <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
    lo, median, hi = np.percentile(radii, [lo_pct, 50.0, hi_pct])
    return RadiusBand(float(lo), float(hi), float(median))


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
    half-width multiple of the hit test; ``band``: the real radii's central band.
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
        chunk_size: int = DEFAULT_CHUNK,
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
        self.mu, self.hw, self.k, self.band = mu, hw, float(k), band
        self.n_samples, self.seed = int(n_samples), int(seed)

        self.lo, self.hi = lo, hi = hit_window(mu, hw, k)
        base = UniformSampler(1.0, mu.size)
        rng = np.random.default_rng(seed)
        hit_lo = np.empty(self.n_samples)
        hit_hi = np.empty(self.n_samples)
        norm = np.empty(self.n_samples)
        chunk = max(1, min(int(chunk_size), self.n_samples))
        buffer = np.empty((chunk, mu.size), dtype=np.float32)
        for start in range(0, self.n_samples, chunk):
            m = min(chunk, self.n_samples - start)
            y = base.draw_base(m, rng, out=buffer[:m])
            hit_lo[start : start + m], hit_hi[start : start + m] = _hit_intervals(y, lo, hi)
            norm[start : start + m] = radii(y)
        with np.errstate(divide="ignore"):
            radius_lo = band.lo / norm
            radius_hi = band.hi / norm
        self._hit = _IntervalCount(hit_lo, hit_hi)
        self._radius = _IntervalCount(radius_lo, radius_hi)
        self._both = _IntervalCount(np.maximum(hit_lo, radius_lo), np.minimum(hit_hi, radius_hi))

    @property
    def z_dim(self) -> int:
        return int(self.mu.size)

    def curves(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(objective, hit_rate, radius_agreement)`` at every ``b`` (vectorised)."""
        b = np.asarray(b, dtype=np.float64)
        n = self.n_samples
        return self._both(b) / n, self._hit(b) / n, self._radius(b) / n

    def __call__(self, b: float) -> ObjectiveValue:
        if not (b > 0 and math.isfinite(b)):
            raise ValueError(f"b must be a positive finite number, got {b}")
        objective, hit_rate, agreement = (float(c[0]) for c in self.curves(np.array([b])))
        return ObjectiveValue(float(b), objective, hit_rate, agreement)

    def best_in(self, b_min: float, b_max: float) -> ObjectiveValue:
        """The exact maximiser of the sampled objective over ``[b_min, b_max]``.

        The count only rises at an interval start, so the maximum is at ``b_min`` or at a
        start inside the range; the centre of that maximal plateau is returned.
        """
        if not 0 < b_min < b_max:
            raise ValueError(f"need 0 < b_min < b_max, got {b_min}, {b_max}")
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
