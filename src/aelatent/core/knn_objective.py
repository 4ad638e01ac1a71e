r"""The search objective of the k-NN region test: the harmonic mean of precision and recall.

The box objectives (:mod:`aelatent.core.objective`) ask whether generated vectors fall in
the per-component windows. This one asks the region test of
:mod:`aelatent.core.precision_recall`, which follows the real latents' shape: at a value
``x`` of the sampler's axis (``b`` of the uniform generator, the width factor of gaussian,
mvn and gmm), ``n`` generated vectors are scored against the real k-NN manifold and

    F(x) = 2 P(x) R(x) / (P(x) + R(x))   (0 when both are 0)

with ``P`` the precision (generated vectors inside a real ball) and ``R`` the recall (real
vectors inside a generated ball). Precision alone is maximised by a generator collapsed on
the densest real points, recall alone by one spread over everything; their harmonic mean
is high only when the generator lands among the real vectors *and* covers them.

Uncertainty
-----------
``F`` is not a mean of independent per-vector terms (recall depends on the generated set's
own k-NN radii), and a bootstrap of the generated set is wrong for k-NN statistics (a
duplicated vector's radius shrinks). So the objective is the mean of ``F`` over
``replicates`` independent generated sets, each drawn once and reused at every ``x``
(common random numbers: the curve is smooth in ``x`` and differences between two ``x`` are
sharp). Its standard error is the replicates' standard deviation over ``sqrt(R)``; an ``x``
is *as good as the best* when the paired difference ``F(best) - F(x)``, averaged over the
replicates, is within ``t_{0.975, R-1}`` of its standard error. Both describe the
generator's randomness for the given real set; the real set's own sampling is not in them
(as for precision and recall themselves). Recall grows with ``n``: compare objectives only
at the same ``n`` and ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from aelatent.core.objective import Bracket
from aelatent.core.precision_recall import RealManifold, knn_scores
from aelatent.core.samplers import Sampler

KNN_OBJECTIVE = "knn"
DEFAULT_REPLICATES = 5
GRID_POINTS = 48  # the sweep's log grid over the search range (one k-NN test a point and set)
REFINE_POINTS = 12  # the second, finer grid inside the first grid's bracket of the optimum
GENERATED_STREAM = 3000  # replicate r's draws: default_rng([seed, r, 3000])


@dataclass(frozen=True)
class KnnObjectiveValue:
    """``F`` at one value of the axis, its standard error and its two parts (replicate means,
    by name: precision and recall for k-NN); ``per_replicate``: ``F`` of each replicate set,
    for paired comparisons."""

    b: float
    objective: float
    part_values: dict[str, float]
    objective_se: float = math.nan
    per_replicate: np.ndarray = field(default_factory=lambda: np.empty(0))

    def parts(self) -> dict[str, float]:
        return dict(self.part_values)


@dataclass(frozen=True)
class KnnObjectiveCurve:
    """``F``, its standard error and its parts over a grid; ``per_replicate``: F[r, i]."""

    b: np.ndarray
    objective: np.ndarray
    objective_se: np.ndarray
    part_values: dict[str, np.ndarray]
    per_replicate: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return dict(self.part_values)


@dataclass(frozen=True)
class KnnBest(Bracket):
    """The best grid value of the replicate-mean ``F`` and the bracket of the optimum: from
    the nearest grid point significantly worse below it to the one above (or the grid's end).
    Every grid point strictly between the ends is as good within error; the ends are the
    first worse ones (or the range's ends), so the optimum of a unimodal ``F`` lies inside,
    not necessarily on a grid point."""

    value: KnnObjectiveValue

    def as_good(self, other: KnnObjectiveValue) -> bool:
        """Whether ``other`` (on the same replicate sets) is not significantly worse than the
        best: the paired test that draws the bracket."""
        best, values = self.value.per_replicate[:, None], other.per_replicate[:, None]
        return bool(_not_worse(best, values)[0])


def harmonic_mean(precision: np.ndarray | float, recall: np.ndarray | float) -> np.ndarray:
    """``2 P R / (P + R)``, 0 where both are 0."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    total = p + r
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * p * r / np.where(total > 0, total, 1.0), 0.0)


class ReplicateObjective:
    """An objective measured on ``replicates`` independent sets at every axis value ``x``:
    its mean is ``F(x)``, the replicates' spread its error, and two values of ``x`` are
    compared pair by pair on the same replicates (common random numbers). A subclass gives
    ``part_names`` and ``replicate_parts(x) -> [R, P]``, and how the parts make ``F``
    (``combine``); the sweep, its refinement and the bracket of the optimum are shared."""

    kind: str = ""
    part_names: tuple[str, ...] = ()
    replicates: int = DEFAULT_REPLICATES

    def replicate_parts(self, x: float) -> np.ndarray:
        raise NotImplementedError

    def combine(self, parts: np.ndarray) -> np.ndarray:
        """``F`` from the parts (last axis)."""
        raise NotImplementedError

    def curve(self, grid: np.ndarray) -> KnnObjectiveCurve:
        grid = np.asarray(grid, dtype=np.float64).ravel()
        for x in grid:
            if not (x > 0 and math.isfinite(x)):
                raise ValueError(f"the axis value must be a positive finite number, got {x}")
        parts = np.stack([self.replicate_parts(float(x)) for x in grid], axis=1)  # [R, G, P]
        f = self.combine(parts)
        se = f.std(axis=0, ddof=1) / math.sqrt(self.replicates)
        means = {name: parts[..., i].mean(axis=0) for i, name in enumerate(self.part_names)}
        return KnnObjectiveCurve(grid, f.mean(axis=0), se, means, f)

    def __call__(self, x: float) -> KnnObjectiveValue:
        return _value_at(self.curve(np.array([float(x)])), 0)

    def best_in(self, b_min: float, b_max: float, n_points: int = GRID_POINTS) -> KnnBest | None:
        """The best point of a log grid over ``[b_min, b_max]``, refined (:func:`refined_best`),
        and the bracket of the optimum; None when ``F`` is 0 everywhere."""
        return refined_best(self, self.curve(np.geomspace(b_min, b_max, n_points)))[1]


class KnnSearchObjective(ReplicateObjective):
    """``F(x)`` of one sampler family against the real manifold, on fixed replicate draws.

    ``sampler_at(x)`` gives the sampler at axis value ``x`` (``UniformSampler(x, D)``, or a
    fitted sampler's ``with_scale(x)``); every replicate's random stream restarts at every
    ``x``, so each replicate is the same set of base draws, moved and stretched.
    """

    kind = KNN_OBJECTIVE
    part_names = ("precision", "recall")

    def __init__(
        self,
        manifold: RealManifold,
        sampler_at: Callable[[float], Sampler],
        n_samples: int,
        seed: int,
        *,
        replicates: int = DEFAULT_REPLICATES,
    ) -> None:
        if n_samples <= manifold.k:
            raise ValueError(f"n_samples must exceed the k-NN k={manifold.k}, got {n_samples}")
        if replicates < 2:
            raise ValueError(f"replicates must be >= 2 for a standard error, got {replicates}")
        self.manifold = manifold
        self.sampler_at = sampler_at
        self.n_samples, self.seed, self.replicates = int(n_samples), int(seed), int(replicates)

    @property
    def k(self) -> int:
        return self.manifold.k

    def combine(self, parts: np.ndarray) -> np.ndarray:
        return harmonic_mean(parts[..., 0], parts[..., 1])

    def replicate_parts(self, x: float) -> np.ndarray:
        return self.scores(x)

    def scores(self, x: float) -> np.ndarray:
        """``[R, 2]``: precision and recall of every replicate at ``x``."""
        if not (x > 0 and math.isfinite(x)):
            raise ValueError(f"the axis value must be a positive finite number, got {x}")
        sampler = self.sampler_at(float(x))
        out = np.empty((self.replicates, 2))
        for r in range(self.replicates):
            rng = np.random.default_rng([self.seed, r, GENERATED_STREAM])
            scored = knn_scores(self.manifold, sampler.sample(self.n_samples, rng))
            out[r] = scored.precision.value, scored.recall.value
        return out


def best_of_curve(curve: KnnObjectiveCurve) -> KnnBest | None:
    """The best grid point and its bracket (see :class:`KnnBest`): a point is significantly
    worse when the paired difference to the best, averaged over the replicates, exceeds
    ``t_{0.975, R-1}`` of its standard error. Works on any computed curve."""
    if not np.any(curve.objective > 0):
        return None
    best = int(np.argmax(curve.objective))
    as_good = _not_worse(curve.per_replicate[:, best : best + 1], curve.per_replicate)
    lo = hi = best
    while lo > 0 and as_good[lo - 1]:
        lo -= 1
    while hi < curve.b.size - 1 and as_good[hi + 1]:
        hi += 1
    lo, hi = max(lo - 1, 0), min(hi + 1, curve.b.size - 1)  # out to the first worse points
    return KnnBest(_value_at(curve, best), float(curve.b[lo]), float(curve.b[hi]))


def _not_worse(best: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``[G]``: the paired difference ``best - others`` (``[R, 1]`` and ``[R, G]``), averaged
    over the replicates, is within ``t_{0.975, R-1}`` of its standard error."""
    replicates = others.shape[0]
    diff = best - others
    se = diff.std(axis=0, ddof=1) / math.sqrt(replicates)
    return np.asarray(diff.mean(axis=0) <= float(stats.t.ppf(0.975, replicates - 1)) * se)


def refined_best(
    objective: ReplicateObjective, curve: KnnObjectiveCurve, n_points: int = REFINE_POINTS
) -> tuple[KnnObjectiveCurve, KnnBest | None]:
    """A second grid of ``n_points`` inside the first one's bracket, merged into ``curve``.

    The first grid's step (12-15% of the axis value at 48 points over the default range) is
    often wider than the Monte Carlo error, so its bracket is two grid steps whatever the
    error; evaluating the same replicate draws between its ends resolves the optimum to the
    error, at ``n_points`` more k-NN tests per replicate. Returns the merged curve and its
    best; ``curve`` unchanged and None when ``F`` is 0 everywhere.
    """
    coarse = best_of_curve(curve)
    if coarse is None or n_points < 1:
        return curve, coarse
    fine = np.geomspace(coarse.lo, coarse.hi, n_points + 2)[1:-1]
    fine = fine[~np.isin(fine, curve.b)]
    if fine.size == 0:  # a one-point grid: nothing between the ends
        return curve, coarse
    merged = merge_curves(curve, objective.curve(fine))
    return merged, best_of_curve(merged)


def merge_curves(a: KnnObjectiveCurve, b: KnnObjectiveCurve) -> KnnObjectiveCurve:
    """Two curves of the same objective (same replicates) as one, ordered by the axis."""
    order = np.argsort(np.concatenate([a.b, b.b]), kind="stable")

    def join(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y], axis=-1)[..., order]

    return KnnObjectiveCurve(
        join(a.b, b.b),
        join(a.objective, b.objective),
        join(a.objective_se, b.objective_se),
        {name: join(a.part_values[name], b.part_values[name]) for name in a.part_values},
        join(a.per_replicate, b.per_replicate),
    )


def _value_at(curve: KnnObjectiveCurve, i: int) -> KnnObjectiveValue:
    return KnnObjectiveValue(
        float(curve.b[i]),
        float(curve.objective[i]),
        {name: float(values[i]) for name, values in curve.part_values.items()},
        float(curve.objective_se[i]),
        curve.per_replicate[:, i].copy(),
    )
