r"""Precision, recall, density and coverage in latent space: a region test that needs no box.

The hit test takes the real region to be an axis-aligned box. The k-nearest-neighbour tests
let the real vectors themselves say where the region is (docs/science.md, "Precision and
recall in latent space"):

- every real vector ``r`` gets a ball of radius ``rho_r``, the distance to its k-th nearest
  other real vector; the union of the balls is the estimated real *manifold*
  (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing generative
  models");
- **precision**: the fraction of generated vectors inside at least one real ball;
- **recall**: the fraction of real vectors inside at least one *generated* ball (the
  generated set's own k-NN radii);
- **density** (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative
  models"): ``1/(k M) sum_g #{r : |g - r| <= rho_r}``, how many real balls hold a generated
  vector on average, divided by k: about 1 when generated vectors are distributed like the
  real ones, above 1 where they crowd into dense real regions; not bounded by 1;
- **coverage** (Naeem et al.): the fraction of real vectors whose *own* ball holds at least
  one generated vector; robust to outliers in either set, unlike recall.

How it is computed
------------------
Every figure follows from one matrix, the squared distances ``|g - r|^2`` between the ``M``
generated and ``N`` real vectors, compared with the real radii (precision, density,
coverage) or the generated radii (recall). :func:`knn_scores` forms it in row blocks by the
Gram identity ``|g|^2 + |r|^2 - 2 g.r`` (one float64 GEMM per block, at most
``BLOCK_VALUES`` entries at a time, so memory stays bounded at any ``M``), and reduces each
block at once. The k-NN radii are exact, by scikit-learn's brute-force ``NearestNeighbors``
(also a blocked GEMM; trees do not help in 256 dimensions); the real set's are computed once
(:func:`real_manifold`) and reused for every sampler and every b or scale. A distance equal
to a radius counts as inside; the Gram identity's rounding (a few ulp of ``|g|^2 + |r|^2``)
is allowed for, so that a generated copy of a real vector is inside its ball as it should
be. :func:`knn_scores_cdist` is the straightforward reference (``scipy.spatial.distance.cdist``
on whole matrices), which the tests compare and the benchmark times.

Intervals (95%)
---------------
- **precision**: conditional on the real set (its balls fixed), the ``M`` generated vectors
  are independent draws, so the number inside is exactly binomial: the **Wilson** interval.
  It covers the sampling noise of the generated set, the question "given these real faces,
  how often does the generator land among them?"; the real set's own randomness (which
  balls there are) is not in it.
- **recall**: conditional on the generated set (its balls fixed), the ``N`` real vectors are
  independent draws of the real distribution, so the number of them inside a generated
  ball is again exactly binomial: **Wilson**. A bootstrap would be wrong here: resampling
  with replacement duplicates vectors, and a duplicate's k-NN radius shrinks, so the
  resampled statistic is not distributed like the original.
- **coverage**: its randomness comes from both sets: which generated vectors there are
  (one generated vector can be the only one in several real balls) and which real ones
  (a real vector's radius depends on its neighbours), so it is not binomial: the Wilson
  interval over the ``N`` real vectors was 1.4 to 3.8 times too narrow and covered 36-82%
  when both sets are random (benchmarks/bench_intervals.py). Its variance is estimated by
  split halves: ``COVERAGE_SPLITS`` times, both sets are cut at random into halves, and the
  coverage of real half 1 against generated half 1 is compared with that of half 2 against
  half 2 (each real vector's radius taken within its own half). The two are independent and
  alike, so ``E[(c1 - c2)^2] = 2 Var(coverage at N/2, M/2)``, and coverage, like a mean,
  has a variance ~ 1/size: ``Var(coverage) ~ mean (c1 - c2)^2 / 4``. The interval is
  Wilson's at the effective size ``c (1 - c) / Var`` (at most N), with the t quantile of
  ``COVERAGE_SPLITS / 2`` degrees of freedom for the estimated variance. The real halves
  and their radii are drawn once per real set (:func:`real_manifold`); per generated set
  the cross pass keeps only the pairs that can count in some split (a generated vector
  within the largest of a real vector's half radii), at most ``COVERAGE_NEIGHBOURS`` per
  real vector (the nearest), so memory stays bounded.
- **density**: the mean of the per-generated-vector counts ``#{r : |g - r| <= rho_r} / k``,
  which are independent given the real set: the normal (CLT) interval of a mean,
  ``mean +- 1.96 sd / sqrt(M)``, cut at 0. A bootstrap of those counts would estimate the
  same standard error (they are independent), at 1,000 times the cost.

Recall and coverage grow with the number of generated vectors ``M`` (more, smaller balls;
more chances to land in a real ball); precision and density do not, in expectation. Compare
recall and coverage only between sets of the same size.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import cdist

from aelatent.core.hit_uncertainty import wilson_interval
from aelatent.core.threads import blas_threads_for
from aelatent.core.windows import Z95

DEFAULT_K = 5
DEFAULT_MAX_VECTORS = 2000
BLOCK_VALUES = 4_000_000  # entries of one block of the distance matrix (32 MB in float64)
GRAM_TOLERANCE = 64 * np.finfo(np.float64).eps  # relative to |g|^2 + |r|^2
SCORES = ("precision", "recall", "density", "coverage")
WORKING_MEMORY_MB = 64  # sklearn's blocks of the k-NN distances
ONE_THREAD_PAIRS = 10_000_000  # below: one BLAS/OpenMP thread (see _threads)
COVERAGE_SPLITS = 32  # split halves for the coverage interval's variance
COVERAGE_T = float(stats.t.ppf(0.975, COVERAGE_SPLITS // 2))  # 2.12
COVERAGE_NEIGHBOURS = 32  # at most this many nearest generated vectors kept per real one
SPLIT_SEED = 8_128  # the halves' stream: default_rng([SPLIT_SEED, set size])


@dataclass(frozen=True)
class RealManifold:
    """The real vectors and their k-NN radii: computed once, reused for every sampler.

    ``halves`` [COVERAGE_SPLITS, N] (True: first half) and ``half_radii`` (each vector's
    k-NN radius within its own half) serve the coverage interval; None: Wilson's instead.
    """

    vectors: np.ndarray  # float64 [N, D]
    radii: np.ndarray  # float64 [N]: distance to the k-th nearest other real vector
    k: int
    halves: np.ndarray | None = None
    half_radii: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])


@dataclass(frozen=True)
class Score:
    """One figure with its 95% interval."""

    value: float
    lo: float
    hi: float


@dataclass(frozen=True)
class KnnScores:
    """Precision, recall, density and coverage of one generated set against the real set."""

    precision: Score
    recall: Score
    density: Score
    coverage: Score
    n_generated: int
    n_real: int
    k: int

    def as_dict(self) -> dict[str, Score]:
        return {name: getattr(self, name) for name in SCORES}


def check_k(k: int, n: int, what: str = "real") -> int:
    """``k`` a positive integer smaller than the set size ``n`` (a vector is not its own
    neighbour, so a set of n has at most n - 1); ValueError otherwise."""
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= n:
        raise ValueError(f"k={k} needs more than {k} {what} vectors, the {what} set has {n}")
    return int(k)


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty matrix [n, z_dim], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return x


def subsample(x: np.ndarray, max_vectors: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_vectors`` rows of ``x``, drawn without replacement (all when fewer)."""
    if max_vectors is None or x.shape[0] <= max_vectors:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=int(max_vectors), replace=False))]


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row to its k-th nearest *other* row (exact, brute force)."""
    x = _as_matrix(x, "vectors")
    k = check_k(k, x.shape[0], "")
    radii: np.ndarray = _neighbours(x, k)[0][:, -1].astype(np.float64)
    return radii


def _neighbours(x: np.ndarray, n_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices of every row's ``n_neighbours`` nearest other rows, nearest
    first (exact, brute force)."""
    from sklearn import config_context  # sklearn: ~0.5 s, only for the k-NN test
    from sklearn.neighbors import NearestNeighbors  # sklearn: only for the k-NN test

    # blocks of at most WORKING_MEMORY_MB of distances (sklearn's default is 1 GB)
    with config_context(working_memory=WORKING_MEMORY_MB), _threads(x.shape[0] ** 2):
        model = NearestNeighbors(n_neighbors=n_neighbours, algorithm="brute").fit(x)
        distances, indices = model.kneighbors()
    return distances, indices


def _halves(n: int, splits: int) -> np.ndarray:
    """``[splits, n]`` random halves (True: the first, ``n // 2`` of them), fixed per n."""
    rng = np.random.default_rng([SPLIT_SEED, n])
    halves = np.zeros((splits, n), dtype=bool)
    for s in range(splits):
        halves[s, rng.permutation(n)[: n // 2]] = True
    return halves


def _half_radii(x: np.ndarray, k: int, halves: np.ndarray) -> np.ndarray:
    """``[splits, N]``: each vector's distance to its k-th nearest other vector of its own
    half, from its nearest ``4k + 32`` neighbours (exact where fewer of them share its half,
    which has probability < 1e-9)."""
    n = x.shape[0]
    distances, indices = _neighbours(x, min(n - 1, 4 * k + 32))
    out = np.empty(halves.shape)
    rows = np.arange(n)
    for s, half in enumerate(halves):
        same = half[indices] == half[:, None]
        count = np.cumsum(same, axis=1)
        enough = count[:, -1] >= k
        first = np.argmax(count >= k, axis=1)
        out[s] = distances[rows, first]
        for i in np.flatnonzero(~enough):
            others = np.flatnonzero(half == half[i])
            d = np.sort(np.linalg.norm(x[others[others != i]] - x[i], axis=1))
            out[s, i] = d[k - 1]
    return out


def real_manifold(
    real: np.ndarray,
    k: int = DEFAULT_K,
    *,
    max_vectors: int | None = DEFAULT_MAX_VECTORS,
    rng: np.random.Generator | None = None,
) -> RealManifold:
    """The real set (at most ``max_vectors`` rows, drawn by ``rng``) with its k-NN radii."""
    x = _as_matrix(real, "real latents")
    x = subsample(x, max_vectors, rng if rng is not None else np.random.default_rng(0))
    k = check_k(k, x.shape[0], "real")
    radii = knn_radii(x, k)
    if x.shape[0] // 2 <= k:  # a half too small for a k-NN radius: Wilson's interval
        return RealManifold(x, radii, k)
    halves = _halves(x.shape[0], COVERAGE_SPLITS)
    return RealManifold(x, radii, k, halves, _half_radii(x, k, halves))


def knn_scores(manifold: RealManifold, generated: np.ndarray) -> KnnScores:
    """Precision, recall, density and coverage of ``generated`` against ``manifold``."""
    g = _as_matrix(generated, "generated vectors")
    r = manifold.vectors
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"generated vectors have {g.shape[1]} components, the real {r.shape[1]}")
    k = manifold.k
    check_k(k, g.shape[0], "generated")
    g_radii = knn_radii(g, k)
    limit = None if manifold.half_radii is None else np.max(manifold.half_radii, axis=0) ** 2
    with _threads(g.shape[0] * r.shape[0]):
        counts, recalled, covered, pairs = _cross_pass(g, g_radii, r, manifold.radii, limit)
    variance = None if pairs is None else _coverage_variance(manifold, g.shape[0], pairs)
    return _scores(counts, recalled, covered, k, variance)


def _threads(pairs: int) -> AbstractContextManager[object]:
    """One thread for fewer than ONE_THREAD_PAIRS distances, the libraries' own above.

    On the shared two-core machine the default 2,000 x 2,000 x 256 scores took 0.21 s on one
    thread and 0.70 s on the libraries' threads, which spin for busy cores; at 20,000 x
    20,000 one evaluation took 12.4 s on one thread and 14.8 s on two, so there the threads
    are left to the libraries, for machines with idle cores
    (benchmarks/results/precision_recall.md)."""
    return blas_threads_for(pairs, ONE_THREAD_PAIRS)


def real_ball_counts(manifold: RealManifold, generated: np.ndarray) -> np.ndarray:
    """Per generated vector, the number of real balls that hold it: precision is the
    fraction of non-zero counts, density their mean over k. Needs no generated radii, so it
    is cheap for large generated sets (the exact precision of a generator, given the balls)."""
    g = _as_matrix(generated, "generated vectors")
    with _threads(g.shape[0] * manifold.n):
        return _cross_pass(g, np.zeros(g.shape[0]), manifold.vectors, manifold.radii)[0]


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # squared distance less slack, g, r


def _cross_pass(
    g: np.ndarray,
    g_radii: np.ndarray,
    r: np.ndarray,
    r_radii: np.ndarray,
    limit: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Pairs | None]:
    """Per generated vector the number of real balls holding it; per real vector whether a
    generated ball holds it (recall) and whether its own ball holds a generated vector; and,
    given ``limit`` (a squared distance per real vector), the (generated, real) pairs within
    it, at most ``COVERAGE_NEIGHBOURS`` per real vector (the nearest), else None."""
    g_sq = np.einsum("ij,ij->i", g, g)
    r_sq = np.einsum("ij,ij->i", r, r)
    r_rad_sq = r_radii**2
    g_rad_sq = g_radii**2
    counts = np.empty(g.shape[0], dtype=np.int64)
    recalled = np.zeros(r.shape[0], dtype=bool)
    covered = np.zeros(r.shape[0], dtype=bool)
    parts: list[Pairs] = []
    held = 0
    rows = max(1, BLOCK_VALUES // max(1, r.shape[0]))
    for start in range(0, g.shape[0], rows):
        stop = min(start + rows, g.shape[0])
        gb = g[start:stop]
        norms = g_sq[start:stop, None] + r_sq[None, :]
        dist_sq = norms - 2.0 * (gb @ r.T)
        slack = GRAM_TOLERANCE * norms
        in_real = dist_sq <= r_rad_sq[None, :] + slack  # g inside r's ball
        counts[start:stop] = np.count_nonzero(in_real, axis=1)
        covered |= in_real.any(axis=0)
        recalled |= (dist_sq <= g_rad_sq[start:stop, None] + slack).any(axis=0)
        if limit is not None:
            parts.append(_block_pairs(dist_sq - slack, limit, start))
            held += parts[-1][0].size
            if held > 2 * COVERAGE_NEIGHBOURS * r.shape[0]:  # bounded memory
                parts = [_nearest_pairs(_joined(parts))]
                held = parts[0][0].size
    pairs = None if limit is None else _nearest_pairs(_joined(parts))
    return counts, recalled, covered, pairs


def _block_pairs(reduced: np.ndarray, limit: np.ndarray, start: int) -> Pairs:
    """The pairs of one block within ``limit``, at most ``COVERAGE_NEIGHBOURS`` per real
    vector (its nearest: a partition where more are within, as for a collapsed generator)."""
    within = reduced <= limit[None, :]
    dense = np.count_nonzero(within, axis=0) > COVERAGE_NEIGHBOURS
    gi, ri = np.nonzero(within & ~dense[None, :])
    cols = np.flatnonzero(dense)
    if not cols.size:
        return reduced[gi, ri], gi + start, ri
    sub = np.where(within[:, cols], reduced[:, cols], np.inf)
    top = np.argpartition(sub, COVERAGE_NEIGHBOURS - 1, axis=0)[:COVERAGE_NEIGHBOURS]
    return (
        np.concatenate([reduced[gi, ri], np.take_along_axis(sub, top, axis=0).ravel()]),
        np.concatenate([gi, top.ravel()]) + start,
        np.concatenate([ri, np.broadcast_to(cols, top.shape).ravel()]),
    )


def _joined(parts: list[Pairs]) -> Pairs:
    return (
        np.concatenate([p[0] for p in parts]) if parts else np.zeros(0),
        np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64),
        np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64),
    )


def _nearest_pairs(pairs: Pairs) -> Pairs:
    """At most ``COVERAGE_NEIGHBOURS`` pairs per real vector, its nearest."""
    d, gi, ri = pairs
    order = np.lexsort((d, ri))
    d, gi, ri = d[order], gi[order], ri[order]
    starts = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]]) if ri.size else np.zeros(0, np.int64)
    rank = np.arange(ri.size) - np.repeat(starts, np.diff(np.r_[starts, ri.size]))
    keep = rank < COVERAGE_NEIGHBOURS
    return d[keep], gi[keep], ri[keep]


def _coverage_variance(manifold: RealManifold, m: int, pairs: Pairs) -> float:
    """The split-half estimate of the coverage's variance (module docstring)."""
    assert manifold.halves is not None and manifold.half_radii is not None
    d, gi, ri = pairs
    g_halves = _halves(m, manifold.halves.shape[0])
    differences = []
    for r_half, g_half, radii in zip(manifold.halves, g_halves, manifold.half_radii, strict=True):
        # a real vector of half 1 (2) is covered by a generated one of half 1 (2) within
        # its radius in its half; a real vector with more than COVERAGE_NEIGHBOURS nearer
        # generated ones, none in its half (probability 2^-32), is counted uncovered
        inside = (g_half[gi] == r_half[ri]) & (d <= radii[ri] ** 2)
        covered = np.zeros(r_half.size, dtype=bool)
        covered[ri[inside]] = True
        differences.append(covered[r_half].mean() - covered[~r_half].mean())
    return float(np.mean(np.square(differences)) / 4)


def _scores(
    counts: np.ndarray,
    recalled: np.ndarray,
    covered: np.ndarray,
    k: int,
    coverage_variance: float | None = None,
) -> KnnScores:
    m, n = counts.size, recalled.size
    precision = _wilson(int(np.count_nonzero(counts)), m)
    recall = _wilson(int(np.count_nonzero(recalled)), n)
    coverage = _coverage_score(int(np.count_nonzero(covered)), n, coverage_variance)
    per_vector = counts / k
    density = float(per_vector.mean())
    se = float(per_vector.std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan
    return KnnScores(
        precision,
        recall,
        Score(density, max(0.0, density - Z95 * se), density + Z95 * se),
        coverage,
        m,
        n,
        k,
    )


def _wilson(count: int, n: int) -> Score:
    lo, hi = wilson_interval(np.array([count]), n)
    return Score(count / n, float(lo[0]), float(hi[0]))


def _coverage_score(count: int, n: int, variance: float | None) -> Score:
    """Wilson's interval at the effective size ``c (1 - c) / variance`` (at most ``n``) and
    the t quantile ``COVERAGE_T``; plain Wilson without a variance or at c = 0 or 1."""
    c = count / n
    if variance is None or not 0 < c < 1:
        return _wilson(count, n)
    size = min(float(n), c * (1 - c) / variance) if variance > 0 else float(n)
    z2 = COVERAGE_T**2
    denominator = 1.0 + z2 / size
    centre = (c + z2 / (2 * size)) / denominator
    half = COVERAGE_T * math.sqrt(c * (1 - c) / size + z2 / (4 * size * size)) / denominator
    return Score(c, max(0.0, centre - half), min(1.0, centre + half))


def knn_scores_cdist(
    real: np.ndarray, generated: np.ndarray, k: int = DEFAULT_K
) -> tuple[float, float, float, float]:
    """The straightforward reference: ``(precision, recall, density, coverage)`` from whole
    distance matrices by ``scipy.spatial.distance.cdist``, radii by sorting."""
    real = _as_matrix(real, "real latents")
    generated = _as_matrix(generated, "generated vectors")

    def radii(x: np.ndarray) -> np.ndarray:
        own = cdist(x, x)
        np.fill_diagonal(own, np.inf)
        return np.sort(own, axis=1)[:, k - 1]

    r_radii, g_radii = radii(real), radii(generated)
    cross = cdist(generated, real)  # [M, N]
    inside_real = cross <= r_radii[None, :]
    precision = float(np.mean(inside_real.any(axis=1)))
    recall = float(np.mean((cross <= g_radii[:, None]).any(axis=0)))
    density = float(inside_real.sum() / (k * generated.shape[0]))
    coverage = float(np.mean(cross.min(axis=0) <= r_radii))
    return precision, recall, density, coverage
