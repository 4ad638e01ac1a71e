r"""Two-sample tests: is a generator's set of latent vectors drawn like the real one?

The hit and k-NN tests ask where generated vectors land; these ask whether the two sets could
come from one distribution (H0), and how far apart they are. Four tests, each a statistic
with its 95% interval and a one-sided p-value ("generated differs"):

C2ST: ``c2st_linear``, ``c2st_nonlinear``
-----------------------------------------
Classifier two-sample tests (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample
tests"). Both sets are subsampled to the same size n, so chance accuracy is exactly 0.5.
Each set is split into ``folds`` equal parts (seeded); fold j holds part j of both, and every
fold but the first is predicted by a scikit-learn classifier fitted on the folds before it
(forward chaining). Statistic: the accuracy of those ``2n (folds - 1) / folds`` predictions;
p-value: the exact one-sided binomial test against 0.5 (``scipy.stats.binomtest``), interval:
its Wilson interval; ``extra``: the AUC of the predicted probabilities with DeLong's
interval, and the accuracy the test detects with 80% power (:func:`detectable_accuracy`).

Why not pooled cross-validation (every vector predicted once, by the model fitted on the
other folds): the predictions of two folds are then correlated, each fold's model having
been fitted on the other's vectors, and the accuracy varies more than a binomial count.
Real against real at d = 256 (``benchmarks/bench_two_sample.py``, 500 pairs each), the
linear classifier's pooled accuracy had 1.35 (n = 40) and 1.64 (n = 400) times the
binomial variance and its binomial test rejected 7.8% and 8.8% at 0.05, above the 99% band
of a valid test (2.6-7.6%); forward chaining on the same pairs: 0.95 and 1.06, 2.8% and
5.6%. Given the folds before it, a fold's count of correct predictions is a sum of
independent Bernoulli variables averaging 1/2, no more spread than a binomial count
(Hoeffding 1956). The quadratic classifier's pooled accuracy did not inflate (0.94, 0.98),
but nothing guarantees that. Cross-validated accuracy sits slightly below 0.5 under H0, as
is known; that did not make the pooled test conservative. The price of forward chaining:
models fitted on a fifth to four fifths of the vectors, not four fifths, and four fifths of
them predicted (a mean shift of 0.5 sd along one minor axis at n = 400 in a trial: 19% of
rejections against 45% for the pooled test, whose own size was inflated).

- *linear*: logistic regression on vectors whitened by the training folds (StandardScaler,
  then PCA with ``whiten=True``): sees a difference of means, every direction on the same
  footing however little variance the real set has there.
- *nonlinear*: the same logistic regression on the whitened coordinates and their squares,
  a quadratic discriminant in the principal axes of the training vectors. It sees
  differences of mean and of spread along each axis, which is where a difference of
  correlations shows: vectors with the real marginals but independent components spread
  evenly over axes the real set leaves nearly empty. It does not see a difference of shape
  at equal second moments (skew, tails; the MMD does). Gradient-boosted trees on the same
  coordinates saw less in ten times the time (a trial at n = 400: accuracy 0.97 against
  1.00 for missing correlations, 0.63 against 0.84 for a 20% too wide Gaussian; 2 s against
  0.15 s).
- At most ``n_train // 2`` principal components are kept, ``n_train`` the vectors a model is
  fitted on: the fit stays determined when n < d (40 vectors a set: the first model sees 16,
  8 components of 256).

MMD: ``mmd``
------------
The unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012) with the
Gaussian kernel ``exp(-|x - y|^2 / (2 s^2))``, ``s`` the median distance between the pooled
vectors (the median heuristic); also at ``s / 2`` and ``2 s``, aggregated into one test:
each bandwidth's MMD^2 standardised by the mean and standard deviation of its values over
the observed and permuted splits, the maximum over bandwidths the test statistic, its
p-value ``(1 + #{permuted >= observed}) / (1 + n_permutations)`` from the same permutations
(exact under H0: the standardisation is a symmetric function of all splits). The statistic
reported is MMD^2 at ``s``; ``extra``: the bandwidth ``s``, MMD^2 at the other bandwidths,
each bandwidth's own p-value (not corrected for the three), and ``null_sd``, the permutation
standard deviation of MMD^2 at ``s``: its noise under H0. No interval (lo = hi = nan): the
estimate is a degenerate U-statistic at H0, where normal intervals fail; the p-value and
``null_sd`` say how good it is. One product ``K A`` of the kernel matrix with the [n, 1 +
n_permutations] split indicators gives every split's MMD^2 (:func:`_mmd2_splits`).

FD: ``fd``
----------
The Fréchet distance between the two sets' Gaussian fits,
``|m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2`` (FID's formula, on latents
instead of Inception features). The trace of the root is ``sum sqrt(eig(F' S2 F))`` for any
factor ``S1 = F F'``: for n1 <= d vectors (S1 singular) the centred vectors themselves,
``F = X' / sqrt(n1 - 1)``, so the eigenproblem is n1 x n1; else the Cholesky factor (half
the time of an eigendecomposition), or where that fails (a constant component) the
eigendecomposition's ``F = V sqrt(w)``, rounding's negative eigenvalues set to 0.
``scipy.linalg.sqrtm`` of ``S1 S2`` gives the same to 1e-9 (tests, benchmark).
p-value: permutations of the pooled vectors. The estimate is biased upward, far beyond its
own noise when n is not much larger than d (d = 256, a 20% too wide Gaussian: true FD 10.2,
expected estimate 36.7 at n = 400 and 20.6 at n = 1,000, sd 1.2 and 0.7), so FDs compare
only between sets of equal sizes; the permutation p-value allows for the bias. Interval:
``FD +- 1.96 sd``, ``sd`` that of ``n_resamples`` bootstrap draws (``scipy.stats.bootstrap``,
two independent samples), cut at 0: the noise of the figure, covering the FD expected at
these sizes (96% in the tests; the bootstrap sd exceeded the true one by 15% to 135% in
trials at d = 8 and 256, so it is conservative). Not the population FD: the
bias-corrected ``FD - b +- 1.96 sd`` (``b`` the draws' mean minus FD, in ``extra`` as
``bootstrap_bias``) covered it in 94-97% of trials at d = 8 and 16, 92% at d = 256 and
n = 1,000, but 42% at n = 400, where the bootstrap finds 86% of the bias (and at H0 it
would put a true 0 outside); the percentile and basic intervals did worse.

Large sets
----------
Each test draws at most ``max_per_set`` vectors of each set (a seeded subsample without
replacement; all when fewer), 1,000 by default for every test: the whole panel at 2,000 x
256 against 2,000 x 256 took 1.8-2.2 s on the shared two-core development machine, about 2
to 2.5 times the k-NN precision/recall of the same vectors (``benchmarks/README.md``,
"bench_two_sample.py"), and 2.0 s at CelebA's 200,000 x 256 float32 (the sets are
checked in their own dtype, only the subsamples become float64). The C2STs fit 4 models on
200 to 800 vectors a set (0.1-0.4 s); the MMD's kernel matrices are (n1 + n2)^2 (0.2-0.3 s);
the FD makes 100 bootstrap and 100 permutation evaluations, each an O(n d^2) covariance and
O(d^3) factorisations (1.2-1.5 s). Power at the cap: at n = 2,000 (1,000 used) every test
rejected every alternative of the benchmark in all 50 repetitions (missing correlations,
a uniform box of the real mean radius, a 20% too wide Gaussian), except the linear C2ST
against the wider Gaussian, which it cannot see at any n: the cap cost nothing there.
What each test detects at n = 40 and 400 is in the benchmark's tables.

Everything runs on one BLAS/OpenMP thread (:mod:`aelatent.core.threads`): many small
products, which took 5 to 10 times longer on threads spinning for the shared cores.

Why one module of this size: the four tests share their input checks, the caps, the result
type and the calibration argument above; the verdict calls them through one ``run_test``,
and their false-positive rates were measured together (benchmarks/bench_two_sample.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from aelatent.core.observations import metric_number
from aelatent.core.precision_recall import subsample
from aelatent.core.threads import on_one_blas_thread
from aelatent.errors import UserError

TESTS: tuple[str, ...] = ("c2st_linear", "c2st_nonlinear", "mmd", "fd")
CLASSIFIERS = ("linear", "nonlinear")
MIN_VECTORS = {"c2st_linear": 10, "c2st_nonlinear": 10, "mmd": 5, "fd": 5}
C2ST_MAX_PER_SET = 1000
MMD_MAX_PER_SET = 1000
FD_MAX_PER_SET = 1000
MMD_PERMUTATIONS = 200
FD_RESAMPLES = 100
MMD_BANDWIDTH_FACTORS = (0.5, 1.0, 2.0)  # times the median distance; 1.0 is the statistic
CONFIDENCE = 0.95
FD_BOOTSTRAP_BATCH = 10  # resamples a batch: bounds the bootstrap's index arrays


@dataclass(frozen=True)
class TwoSampleResult:
    """One test's answer: statistic, its 95% interval (nan where there is none), p-value."""

    test: str  # one of TESTS
    statistic: float  # c2st: accuracy; mmd: unbiased MMD^2 at the median bandwidth; fd: FD
    lo: float
    hi: float
    p_value: float  # H0: both sets drawn from one distribution; one-sided, "generated differs"
    n_real: int  # vectors used, after the cap
    n_generated: int
    extra: dict[str, float] = field(default_factory=dict)

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{name: value}`` for logging: ``<prefix><test>``, ``..._lo``, ``..._hi``,
        ``..._p_value``, ``..._n_real``, ``..._n_generated`` and ``..._<key>`` of ``extra``."""
        name = f"{prefix}{self.test}"
        metrics = {
            name: self.statistic,
            f"{name}_lo": self.lo,
            f"{name}_hi": self.hi,
            f"{name}_p_value": self.p_value,
            f"{name}_n_real": float(self.n_real),
            f"{name}_n_generated": float(self.n_generated),
        }
        metrics.update({f"{name}_{key}": value for key, value in self.extra.items()})
        return metrics


def min_vectors(name: str) -> int:
    """The fewest vectors per set test ``name`` accepts (C2ST: two per fold and set at the
    default 5 folds; MMD and FD: enough for a covariance and a few hundred distinct splits)."""
    return MIN_VECTORS[check_test(name)]


def check_test(name: str) -> str:
    """``name`` if it is one of TESTS; a UserError that lists them otherwise."""
    if name not in TESTS:
        raise UserError(f"two-sample test {name!r} is not one of {', '.join(TESTS)}")
    return name


def run_test(
    name: str, real: np.ndarray, generated: np.ndarray, *, seed: int = 0
) -> TwoSampleResult:
    """Test ``name`` (one of TESTS) with its defaults."""
    name = check_test(name)
    if name == "mmd":
        return mmd_test(real, generated, seed=seed)
    if name == "fd":
        return frechet_test(real, generated, seed=seed)
    return c2st(real, generated, classifier=name.removeprefix("c2st_"), seed=seed)


# ---------------------------------------------------------------------------------------
# input checks


def _positive_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise UserError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as an array, checked, in its own dtype: a float64 copy of 200,000 x 256 float32
    latents would cost 0.25 s and 400 MB per test; only the subsample is converted."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        x = x.astype(np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise UserError(f"{name} vectors must be a matrix [n, z_dim >= 1], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{name} vectors contain NaN or infinite values: only finite values")
    return x


def _sets(
    real: np.ndarray, generated: np.ndarray, test: str, minimum: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as matrices of one width with at least ``minimum`` rows each."""
    x, y = _matrix(real, "real"), _matrix(generated, "generated")
    if x.shape[1] != y.shape[1]:
        raise UserError(
            f"generated vectors have {y.shape[1]} components, the real {x.shape[1]}: "
            "both sets need the same width"
        )
    for values, name in ((x, "real"), (y, "generated")):
        if values.shape[0] < minimum:
            raise UserError(
                f"{test} needs at least {minimum} {name} vectors, got {values.shape[0]}"
            )
    return x, y


def _capped(
    real: np.ndarray, generated: np.ndarray, test: str, max_per_set: int, minimum: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """The checked sets, each cut to ``max_per_set`` rows by a seeded subsample, float64."""
    cap = _positive_int(max_per_set, "max_per_set", minimum)
    x, y = _sets(real, generated, test, minimum)
    rng = np.random.default_rng(seed)
    x = np.asarray(subsample(x, cap, rng), dtype=np.float64)
    return x, np.asarray(subsample(y, cap, rng), dtype=np.float64), rng


# ---------------------------------------------------------------------------------------
# classifier two-sample tests


@on_one_blas_thread
def c2st(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    classifier: str = "linear",
    folds: int = 5,
    seed: int = 0,
    max_per_set: int = C2ST_MAX_PER_SET,
) -> TwoSampleResult:
    """Accuracy of a classifier telling generated from real vectors it was not fitted on.

    Both sets are cut to the same size n (the smaller set's, at most ``max_per_set``) by a
    seeded subsample, so chance accuracy is exactly 0.5; each set is split into ``folds``
    equal parts (seeded), fold j holding part j of both; fold j >= 2 is predicted by a
    ``classifier`` ("linear" or "nonlinear", module docstring) fitted on folds 1..j-1
    (forward chaining). p-value: exact one-sided binomial test of the predictions against
    0.5: given the folds before it, a fold's count of correct predictions is no more spread
    than a binomial one (module docstring)."""
    if classifier not in CLASSIFIERS:
        raise UserError(f"classifier={classifier!r} is not one of {', '.join(CLASSIFIERS)}")
    test = f"c2st_{classifier}"
    folds = _positive_int(folds, "folds", 2)
    minimum = max(MIN_VECTORS[test], 2 * folds)
    x, y, rng = _capped(real, generated, test, max_per_set, minimum, seed)
    n = min(x.shape[0], y.shape[0])
    x, y = subsample(x, n, rng), subsample(y, n, rng)
    data = np.vstack([x, y])
    labels = np.repeat([0, 1], n)
    parts = [
        np.concatenate([r, n + g])
        for r, g in zip(
            np.array_split(rng.permutation(n), folds),
            np.array_split(rng.permutation(n), folds),
            strict=True,
        )
    ]
    scores = np.full(2 * n, np.nan)
    for j in range(1, folds):
        train, predict = np.concatenate(parts[:j]), parts[j]
        model = _classifier(classifier, min(data.shape[1], train.size // 2), seed)
        model.fit(data[train], labels[train])
        scores[predict] = model.predict_proba(data[predict])[:, 1]
    predicted = np.concatenate(parts[1:])
    scores, labels = scores[predicted], labels[predicted]
    correct = int(np.count_nonzero((scores > 0.5) == labels))
    m = predicted.size
    p_value = stats.binomtest(correct, m, 0.5, alternative="greater").pvalue
    ci = stats.binomtest(correct, m).proportion_ci(CONFIDENCE, method="wilson")
    auc, auc_se = auc_delong(scores[labels == 1], scores[labels == 0])
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    return TwoSampleResult(
        test,
        correct / m,
        float(ci.low),
        float(ci.high),
        float(p_value),
        n,
        n,
        {
            "auc": auc,
            "auc_lo": max(0.0, auc - z * auc_se),
            "auc_hi": min(1.0, auc + z * auc_se),
            "n_predictions": float(m),
            "detectable_accuracy": detectable_accuracy(m),
        },
    )


def _classifier(kind: str, components: int, seed: int) -> Any:
    """The scikit-learn pipeline: whitening fitted on the training fold, then a logistic
    regression on the whitened coordinates (linear) or on them and their squares."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    whiten = PCA(n_components=components, whiten=True, random_state=seed)
    steps: list[Any] = [StandardScaler(), whiten]
    if kind == "nonlinear":
        steps.append(FunctionTransformer(_with_squares))
    steps.append(LogisticRegression(max_iter=1000))
    return make_pipeline(*steps)


def _with_squares(z: np.ndarray) -> np.ndarray:
    return np.hstack([z, z * z])


def auc_delong(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """AUC ``P(score_pos > score_neg)`` (ties half) and DeLong's standard error.

    From mid-ranks: each positive's share of negatives below it and each negative's share of
    positives above it; the AUC is their mean, its variance the sum of their variances over
    their counts (DeLong, DeLong & Clarke-Pearson 1988)."""
    m, n = positive.size, negative.size
    ranks = stats.rankdata(np.concatenate([positive, negative]))
    below = (ranks[:m] - stats.rankdata(positive)) / n  # per positive: negatives below it
    above = 1.0 - (ranks[m:] - stats.rankdata(negative)) / m  # per negative: positives above
    auc = float(below.mean())
    variance = below.var(ddof=1) / m + above.var(ddof=1) / n if min(m, n) > 1 else math.nan
    return auc, float(math.sqrt(variance))


def detectable_accuracy(n_predictions: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The C2ST accuracy that the one-sided exact binomial test of ``n_predictions`` balanced
    predictions rejects at level ``alpha`` with probability ``power``.

    The test rejects from c correct predictions on, c the smallest count with
    ``P(X >= c | 0.5) <= alpha``; the answer is the accuracy a with ``P(X >= c | a) = power``.
    nan when no count is significant (too few predictions for ``alpha``)."""
    n = _positive_int(n_predictions, "n_predictions")
    for value, name in ((alpha, "alpha"), (power, "power")):
        if isinstance(value, bool) or not 0 < value < 1:
            raise UserError(f"{name}={value!r} must be a number in (0, 1)")
    critical = int(stats.binom.isf(alpha, n, 0.5)) + 1  # P(X > c - 1) <= alpha
    while critical <= n and stats.binom.sf(critical - 1, n, 0.5) > alpha:
        critical += 1  # isf's rounding, if any, either way
    while critical > 1 and stats.binom.sf(critical - 2, n, 0.5) <= alpha:
        critical -= 1
    if critical > n:
        return math.nan
    if stats.binom.sf(critical - 1, n, 0.5) >= power:
        return 0.5
    return float(
        optimize.brentq(lambda a: stats.binom.sf(critical - 1, n, a) - power, 0.5, 1.0, xtol=1e-10)
    )


# ---------------------------------------------------------------------------------------
# maximum mean discrepancy


@on_one_blas_thread
def mmd_test(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    n_permutations: int = MMD_PERMUTATIONS,
    seed: int = 0,
    max_per_set: int = MMD_MAX_PER_SET,
) -> TwoSampleResult:
    """Unbiased MMD^2 (Gaussian kernel, median-heuristic bandwidth) with a permutation
    p-value aggregated over the bandwidths ``MMD_BANDWIDTH_FACTORS`` (module docstring)."""
    n_permutations = _positive_int(n_permutations, "n_permutations")
    x, y, rng = _capped(real, generated, "mmd", max_per_set, MIN_VECTORS["mmd"], seed)
    n1, n2 = x.shape[0], y.shape[0]
    pooled = np.vstack([x, y])
    squared = _squared_distances(pooled)
    median = math.sqrt(float(np.median(squared[np.triu_indices(n1 + n2, 1)])))
    splits = _permuted_splits(n1, n2, n_permutations, rng)  # column 0: the observed split
    values = np.array(
        [_mmd2_splits(squared, median * factor, splits, n1) for factor in MMD_BANDWIDTH_FACTORS]
    )  # [bandwidths, 1 + permutations]
    standardised = (values - values.mean(axis=1, keepdims=True)) / _safe_sd(values)
    aggregate = standardised.max(axis=0)
    main = MMD_BANDWIDTH_FACTORS.index(1.0)
    extra: dict[str, float] = {"bandwidth": median, "null_sd": float(values[main, 1:].std())}
    for factor, row in zip(MMD_BANDWIDTH_FACTORS, values, strict=True):
        if factor != 1.0:
            extra[f"mmd2_x{metric_number(factor)}"] = float(row[0])
        extra[f"p_value_x{metric_number(factor)}"] = _permutation_p(row)
    return TwoSampleResult(
        "mmd",
        float(values[main, 0]),
        math.nan,
        math.nan,
        _permutation_p(aggregate),
        n1,
        n2,
        extra,
    )


def _squared_distances(z: np.ndarray) -> np.ndarray:
    """All pairwise squared distances (Gram identity on vectors centred at their mean, so
    the cancellation is small; the diagonal exactly 0, rounding below 0 cut)."""
    z = z - z.mean(axis=0)
    norms = np.einsum("ij,ij->i", z, z)
    squared: np.ndarray = norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, 0.0)
    return squared


def _permuted_splits(n1: int, n2: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """[n1 + n2, 1 + count] float64 indicators of the first group: the observed split
    (the first n1 vectors), then ``count`` uniformly random splits."""
    total = n1 + n2
    splits = np.zeros((total, 1 + count))
    splits[:n1, 0] = 1.0
    first = np.argsort(rng.random((count, total)), axis=1)[:, :n1]
    splits[first.T, np.arange(1, 1 + count)[None, :]] = 1.0
    return splits


def _mmd2_splits(squared: np.ndarray, bandwidth: float, splits: np.ndarray, n1: int) -> np.ndarray:
    """Unbiased MMD^2 of every split (a column of ``splits``) at one bandwidth.

    With ``a`` a split's indicator, ``K`` the kernel matrix (unit diagonal), ``r = K 1`` and
    ``q = a'K a``: the within-first sum is ``q - n1``, the within-second
    ``1'K 1 - 2 a'r + q - n2``, the cross sum ``a'r - q``; one product ``K A`` serves all
    splits."""
    total = squared.shape[0]
    n2 = total - n1
    # bandwidth 0: all vectors equal, every split's MMD^2 is 0
    kernel = np.exp(squared * (-0.5 / bandwidth**2)) if bandwidth > 0 else np.ones_like(squared)
    row_sums = kernel.sum(axis=1)
    q = np.einsum("ij,ij->j", splits, kernel @ splits)
    a_r = splits.T @ row_sums
    within_first = q - n1
    within_second = row_sums.sum() - 2.0 * a_r + q - n2
    cross = a_r - q
    mmd2: np.ndarray = (
        within_first / (n1 * (n1 - 1)) + within_second / (n2 * (n2 - 1)) - 2.0 * cross / (n1 * n2)
    )
    return mmd2


def _safe_sd(values: np.ndarray) -> np.ndarray:
    """Per row the standard deviation, 1 where it is 0 (every split alike)."""
    sd = values.std(axis=1, keepdims=True)
    return np.where(sd > 0, sd, 1.0)


def _permutation_p(values: np.ndarray) -> float:
    """``(1 + #{permuted >= observed}) / (1 + #permuted)``, the observed value first."""
    return float((1 + np.count_nonzero(values[1:] >= values[0])) / values.size)


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """The unbiased MMD^2 of two sets at one Gaussian bandwidth, written out directly
    (``scipy.spatial.distance.cdist``): the reference the tests and the benchmark compare
    the split-matrix computation with."""
    from scipy.spatial.distance import cdist

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-cdist(a, b, "sqeuclidean") / (2.0 * bandwidth**2))

    n1, n2 = x.shape[0], y.shape[0]
    kxx, kyy = kernel(x, x), kernel(y, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n1 * (n1 - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n2 * (n2 - 1))
    return float(within_x + within_y - 2.0 * kernel(x, y).mean())


# ---------------------------------------------------------------------------------------
# Fréchet distance


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    """``|m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2``, at least 0.

    The root's trace is ``sum sqrt(eig(F' S2 F))`` for a factor ``S1 = F F'`` (module
    docstring); eigenvalues below 0 from rounding count as 0."""
    return _frechet(mean1, cov1, mean2, cov2, _cholesky_or_eigen(cov1))


def _frechet(
    m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray, factor: np.ndarray
) -> float:
    inner = factor.T @ s2 @ factor
    root_trace = float(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum())
    difference = m1 - m2
    value = float(difference @ difference) + float(np.trace(s1) + np.trace(s2)) - 2 * root_trace
    return max(0.0, value)


def _cholesky_or_eigen(cov: np.ndarray) -> np.ndarray:
    """A factor ``F F' = cov``: Cholesky's, the eigendecomposition's when that fails."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return _eigen_factor(cov)


def _eigen_factor(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    factor: np.ndarray = v * np.sqrt(np.clip(w, 0.0, None))
    return factor


def _factor(cov: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """A factor of the covariance of the ``centred`` vectors: for n <= d, which cannot give
    a positive definite one, the vectors themselves (``X' / sqrt(n - 1)``, d x n: the
    eigenproblem is then n x n); else Cholesky's where it works."""
    n, d = centred.shape
    if n <= d:
        factor: np.ndarray = centred.T / math.sqrt(n - 1)
        return factor
    return _cholesky_or_eigen(cov)


def _frechet_of_sets(x: np.ndarray, y: np.ndarray) -> float:
    m1, m2 = x.mean(axis=0), y.mean(axis=0)
    x, y = x - m1, y - m2
    s1 = x.T @ x / (x.shape[0] - 1)
    s2 = y.T @ y / (y.shape[0] - 1)
    return _frechet(m1, s1, m2, s2, _factor(s1, x))


@on_one_blas_thread
def frechet_test(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    n_resamples: int = FD_RESAMPLES,
    seed: int = 0,
    max_per_set: int = FD_MAX_PER_SET,
) -> TwoSampleResult:
    """Fréchet distance of the two sets' Gaussian fits, +- 1.96 times the sd of
    ``n_resamples`` bootstrap draws; p-value of ``n_resamples`` permutations."""
    n_resamples = _positive_int(n_resamples, "n_resamples")
    x, y, rng = _capped(real, generated, "fd", max_per_set, MIN_VECTORS["fd"], seed)
    n1, n2 = x.shape[0], y.shape[0]
    shift = np.vstack([x, y]).mean(axis=0)  # conditioning of the moments; FD is unchanged
    x, y = x - shift, y - shift
    observed = _frechet_of_sets(x, y)

    def resampled(i: np.ndarray, j: np.ndarray, axis: int = -1) -> np.ndarray:
        rows_i, rows_j = np.atleast_2d(i), np.atleast_2d(j)
        values = np.array(
            [_frechet_of_sets(x[a], y[b]) for a, b in zip(rows_i, rows_j, strict=True)]
        )
        return values if np.ndim(i) > 1 else values[0]

    draws = stats.bootstrap(
        (np.arange(n1), np.arange(n2)),
        resampled,
        n_resamples=n_resamples,
        batch=FD_BOOTSTRAP_BATCH,
        vectorized=True,
        paired=False,
        method="percentile",  # unused: the interval is built from the draws below
        rng=rng,
    ).bootstrap_distribution
    sd = float(draws.std(ddof=1))
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    permuted = _frechet_permutations(np.vstack([x, y]), n1, n_resamples, rng)
    return TwoSampleResult(
        "fd",
        observed,
        max(0.0, observed - z * sd),
        observed + z * sd,
        _permutation_p(np.concatenate([[observed], permuted])),
        n1,
        n2,
        {"bootstrap_bias": float(draws.mean()) - observed, "bootstrap_sd": sd},
    )


def _frechet_permutations(
    pooled: np.ndarray, n1: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """FD of ``count`` random splits of ``pooled`` into n1 and the rest: one product per
    split, the second group's moments from the pooled sums minus the first's."""
    total = pooled.shape[0]
    n2 = total - n1
    gram = pooled.T @ pooled
    sums = pooled.sum(axis=0)
    values = np.empty(count)
    for k in range(count):
        first = pooled[rng.permutation(total)[:n1]]
        m1 = first.mean(axis=0)
        m2 = (sums - n1 * m1) / n2
        first -= m1
        s1 = first.T @ first / (n1 - 1)
        s2 = (gram - (n1 - 1) * s1 - n1 * np.outer(m1, m1) - n2 * np.outer(m2, m2)) / (n2 - 1)
        values[k] = _frechet(m1, s1, m2, s2, _factor(s1, first))
    return values
