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
- **coverage**: Wilson over the ``N`` real vectors. Only approximately binomial: a real
  vector's radius depends on its neighbours, so the indicators are weakly dependent.
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


@dataclass(frozen=True)
class RealManifold:
    """The real vectors and their k-NN radii: computed once, reused for every sampler."""

    vectors: np.ndarray  # float64 [N, D]
    radii: np.ndarray  # float64 [N]: distance to the k-th nearest other real vector
    k: int

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
    from sklearn import config_context  # sklearn: ~0.5 s, only for the k-NN test
    from sklearn.neighbors import NearestNeighbors  # sklearn: only for the k-NN test

    x = _as_matrix(x, "vectors")
    k = check_k(k, x.shape[0], "")
    # blocks of at most WORKING_MEMORY_MB of distances (sklearn's default is 1 GB)
    with config_context(working_memory=WORKING_MEMORY_MB), _threads(x.shape[0] ** 2):
        distances, _ = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors()
    radii: np.ndarray = distances[:, -1].astype(np.float64)
    return radii


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
    check_k(k, x.shape[0], "real")
    return RealManifold(x, knn_radii(x, k), int(k))


def knn_scores(manifold: RealManifold, generated: np.ndarray) -> KnnScores:
    """Precision, recall, density and coverage of ``generated`` against ``manifold``."""
    g = _as_matrix(generated, "generated vectors")
    r = manifold.vectors
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"generated vectors have {g.shape[1]} components, the real {r.shape[1]}")
    k = manifold.k
    check_k(k, g.shape[0], "generated")
    g_radii = knn_radii(g, k)
    with _threads(g.shape[0] * r.shape[0]):
        counts, recalled, covered = _cross_pass(g, g_radii, r, manifold.radii)
    return _scores(counts, recalled, covered, k)


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


def _cross_pass(
    g: np.ndarray, g_radii: np.ndarray, r: np.ndarray, r_radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per generated vector the number of real balls holding it; per real vector whether a
    generated ball holds it (recall) and whether its own ball holds a generated vector."""
    g_sq = np.einsum("ij,ij->i", g, g)
    r_sq = np.einsum("ij,ij->i", r, r)
    r_rad_sq = r_radii**2
    g_rad_sq = g_radii**2
    counts = np.empty(g.shape[0], dtype=np.int64)
    recalled = np.zeros(r.shape[0], dtype=bool)
    covered = np.zeros(r.shape[0], dtype=bool)
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
    return counts, recalled, covered


def _scores(counts: np.ndarray, recalled: np.ndarray, covered: np.ndarray, k: int) -> KnnScores:
    m, n = counts.size, recalled.size
    precision = _wilson(int(np.count_nonzero(counts)), m)
    recall = _wilson(int(np.count_nonzero(recalled)), n)
    coverage = _wilson(int(np.count_nonzero(covered)), n)
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
