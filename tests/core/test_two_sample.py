"""Two-sample tests on synthetic latents where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg, stats
from sklearn.metrics import roc_auc_score

from aelatent.core.two_sample import (
    MMD_BANDWIDTH_FACTORS,
    TESTS,
    TwoSampleResult,
    auc_delong,
    c2st,
    detectable_accuracy,
    frechet_distance,
    frechet_test,
    min_vectors,
    mmd2_unbiased,
    mmd_test,
    run_test,
)
from aelatent.errors import UserError

Z_DIM = 16


def covariance_root(d: int, seed: int = 0) -> np.ndarray:
    """``R`` with ``R R'`` a covariance whose variance is 90% in d / 8 random directions,
    like an autoencoder's latents (a few directions carry most of the variance)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    k = max(1, d // 8)
    variances = np.r_[np.full(k, 0.9 * d / k), np.full(d - k, 0.1 * d / (d - k))]
    return basis * np.sqrt(variances)


ROOT = covariance_root(Z_DIM)


def gaussian(n: int, rng: np.random.Generator, root: np.ndarray = ROOT) -> np.ndarray:
    return rng.standard_normal((n, root.shape[0])) @ root.T


def skewed(n: int, rng: np.random.Generator, root: np.ndarray = ROOT) -> np.ndarray:
    """The same covariance, exponential (skewness 2) instead of normal coordinates."""
    return (rng.exponential(size=(n, root.shape[0])) - 1.0) @ root.T


def alpha_band(repetitions: int, alpha: float = 0.05) -> int:
    """The upper end of the two-sided 99% binomial band of the number of rejections of a
    test of level ``alpha`` over independent null repetitions."""
    return int(stats.binom.isf(0.005, repetitions, alpha))


# -----------------------------------------------------------------------------------------
# bad input: one line naming the value and what is allowed


@pytest.mark.parametrize("name", TESTS)
def test_bad_sets_are_one_line_errors(name):
    rng = np.random.default_rng(0)
    good = rng.standard_normal((50, 4))
    cases = [
        (good[:, 0], good, r"real vectors must be a matrix \[n, z_dim >= 1\], got shape \(50,\)"),
        (good, good[:, :0], r"generated vectors must be a matrix .*, got shape \(50, 0\)"),
        (good, good[:, :3], "generated vectors have 3 components, the real 4"),
        (np.where(np.eye(50, 4) > 0, np.nan, good), good, "real vectors contain NaN"),
        (good, np.full((50, 4), np.inf), "generated vectors contain NaN or infinite"),
    ]
    for real, generated, message in cases:
        with pytest.raises(UserError, match=message) as raised:
            run_test(name, real, generated)
        assert "\n" not in str(raised.value)
    few = min_vectors(name) - 1
    with pytest.raises(ValueError, match=f"needs at least {few + 1} generated vectors, got {few}"):
        run_test(name, good, good[:few])


def test_min_vectors_are_accepted():
    rng = np.random.default_rng(1)
    for name in TESTS:
        n = min_vectors(name)
        result = run_test(name, rng.standard_normal((n, 3)), rng.standard_normal((n, 3)))
        assert result.test == name and 0 < result.p_value <= 1


def test_bad_names_and_parameters():
    x = np.random.default_rng(2).standard_normal((40, 3))
    with pytest.raises(
        ValueError, match="'knn' is not one of c2st_linear, c2st_nonlinear, mmd, fd"
    ):
        run_test("knn", x, x)
    with pytest.raises(ValueError, match="'knn' is not one of"):
        min_vectors("knn")
    with pytest.raises(ValueError, match="classifier='forest' is not one of linear, nonlinear"):
        c2st(x, x, classifier="forest")
    with pytest.raises(ValueError, match="folds=1 must be an integer >= 2"):
        c2st(x, x, folds=1)
    with pytest.raises(ValueError, match="needs at least 24 real vectors, got 20"):
        c2st(x[:20], x, folds=12)  # two per fold and set
    with pytest.raises(ValueError, match="n_permutations=0 must be an integer >= 1"):
        mmd_test(x, x, n_permutations=0)
    with pytest.raises(ValueError, match=r"n_resamples=2.5 must be an integer >= 1"):
        frechet_test(x, x, n_resamples=2.5)
    with pytest.raises(ValueError, match="max_per_set=3 must be an integer >= 5"):
        mmd_test(x, x, max_per_set=3)
    for bad in ({"n_predictions": 0}, {"n_predictions": 10, "alpha": 1.0}, {"power": 0}):
        with pytest.raises(ValueError, match="must be"):
            detectable_accuracy(**{"n_predictions": 10, **bad})


# -----------------------------------------------------------------------------------------
# the pieces against references


def test_as_metrics_flattens_every_figure():
    result = TwoSampleResult("mmd", 0.1, math.nan, math.nan, 0.01, 30, 40, {"bandwidth": 2.0})
    assert result.as_metrics("two_sample_") == {
        "two_sample_mmd": 0.1,
        "two_sample_mmd_lo": math.nan,
        "two_sample_mmd_hi": math.nan,
        "two_sample_mmd_p_value": 0.01,
        "two_sample_mmd_n_real": 30.0,
        "two_sample_mmd_n_generated": 40.0,
        "two_sample_mmd_bandwidth": 2.0,
    }  # the nan is math.nan itself, which dict comparison takes as equal


def test_detectable_accuracy_is_the_exact_binomial_answer():
    """The critical count found by brute force; at the returned accuracy the test rejects
    with probability 0.8 (exactly, and in a Monte Carlo of 20,000 binomial draws: the
    rejection rate's sd is 0.0028, allowed 4 of it)."""
    for n in (20, 80, 800, 4000):
        critical = next(c for c in range(n + 1) if stats.binom.sf(c - 1, n, 0.5) <= 0.05)
        accuracy = detectable_accuracy(n)
        assert stats.binom.sf(critical - 1, n, accuracy) == pytest.approx(0.8, abs=1e-8)
        draws = np.random.default_rng(n).binomial(n, accuracy, 20_000)
        assert abs(np.mean(draws >= critical) - 0.8) < 4 * math.sqrt(0.8 * 0.2 / 20_000)
    assert detectable_accuracy(800) < detectable_accuracy(80) < detectable_accuracy(20)
    assert math.isnan(detectable_accuracy(4))  # 4 of 4 correct: p = 1/16 > 0.05


def test_auc_and_its_delong_error():
    """The AUC equals scikit-learn's; DeLong's standard error matches the spread of the AUC
    over 400 independent repetitions (the sample sd's relative error is 1/sqrt(2 * 400) =
    3.5%; allowed 4 of it)."""
    rng = np.random.default_rng(3)
    aucs, errors = [], []
    for _ in range(400):
        positive, negative = rng.normal(0.5, 1, 60), rng.normal(0, 1, 80)
        positive[:5] = negative[:5]  # ties count half
        auc, se = auc_delong(positive, negative)
        labels = np.r_[np.ones(60), np.zeros(80)]
        assert auc == pytest.approx(roc_auc_score(labels, np.r_[positive, negative]), abs=1e-12)
        aucs.append(auc)
        errors.append(se)
    assert np.mean(errors) == pytest.approx(np.std(aucs, ddof=1), rel=4 / math.sqrt(800))


def test_mmd_equals_the_direct_formula():
    """Every bandwidth's unbiased MMD^2 from the split matrix equals the O(n^2) formula
    written out with cdist; the bandwidth is the median distance to the Gram identity's
    rounding (a few ulp of |x|^2 + |y|^2 in a squared distance: 1e-11 relative here)."""
    rng = np.random.default_rng(4)
    x, y = gaussian(70, rng), 1.1 * gaussian(50, rng)
    result = mmd_test(x, y, n_permutations=20)
    bandwidth = result.extra["bandwidth"]
    pooled = np.vstack([x, y])
    distances = np.sqrt(((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1))
    assert bandwidth == pytest.approx(np.median(distances[np.triu_indices(120, 1)]), rel=1e-9)
    assert result.statistic == pytest.approx(mmd2_unbiased(x, y, bandwidth), abs=1e-12)
    for factor in MMD_BANDWIDTH_FACTORS:
        if factor != 1.0:
            expected = mmd2_unbiased(x, y, factor * bandwidth)
            assert result.extra[f"mmd2_x{factor:g}"] == pytest.approx(expected, abs=1e-12)
    assert math.isnan(result.lo) and math.isnan(result.hi)


def test_frechet_distance_equals_the_sqrtm_formula():
    """Against ``|m1 - m2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))`` (scipy.linalg.sqrtm, as FID
    implementations compute it) for a positive definite S1, to 1e-9 relative. For a singular
    S1 = A A' (rank 5 of 12) against the exact ``tr sqrt = ||A' L2||_*`` (L2 L2' = S2): a
    square root turns the rounding of each zero eigenvalue (~eps |S|) into sqrt(eps |S|), so
    either formula is good to about d sqrt(eps |S|) there. With n < d (data), against the
    nuclear norm of the centred data product, ``||A B'||_*``."""
    rng = np.random.default_rng(5)
    d = 12
    s2 = np.cov(rng.standard_normal((40, d)), rowvar=False)
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    traces = np.trace(s2) + np.sum((m1 - m2) ** 2)
    a = rng.standard_normal((d, d))
    s1 = a @ a.T
    reference = traces + np.trace(s1) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-9)
    a = rng.standard_normal((d, 5))
    s1 = a @ a.T
    nuclear = np.linalg.svd(a.T @ np.linalg.cholesky(s2), compute_uv=False).sum()
    reference = traces + np.trace(s1) - 2 * nuclear
    rounding = d * math.sqrt(np.finfo(float).eps * max(np.trace(s1), np.trace(s2)))
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, abs=rounding)
    x, y = rng.standard_normal((9, 30)), 2 + rng.standard_normal((7, 30))
    a, b = ((v - v.mean(0)) / math.sqrt(v.shape[0] - 1) for v in (x, y))
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    expected = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.sum(a * a) + np.sum(b * b) - 2 * nuclear
    rounding = 30 * math.sqrt(np.finfo(float).eps * (np.sum(a * a) + np.sum(b * b)))
    assert frechet_test(x, y, n_resamples=5).statistic == pytest.approx(expected, abs=rounding)


def test_permutation_p_values_against_every_split():
    """5 against 5 vectors have 252 splits: the exact permutation p-value is the share of
    splits whose statistic reaches the observed one (computed here split by split with the
    reference formulas). 2,000 random permutations estimate it with sd <= 0.011; allowed 4
    of it plus the 1 / 2001 of the observed split's own count."""
    from itertools import combinations

    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((5, 3)), 0.8 + rng.standard_normal((5, 3))
    pooled = np.vstack([x, y])
    splits = [np.isin(np.arange(10), first) for first in combinations(range(10), 5)]
    mmd = mmd_test(x, y, n_permutations=2000)
    fd = frechet_test(x, y, n_resamples=2000)

    def fd_of(a: np.ndarray, b: np.ndarray) -> float:
        return frechet_distance(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))

    for result, statistic in (
        (mmd, lambda a, b: mmd2_unbiased(a, b, mmd.extra["bandwidth"])),
        (fd, fd_of),
    ):
        observed = statistic(x, y)
        values = np.array([statistic(pooled[s], pooled[~s]) for s in splits])
        exact = np.mean(values >= observed - 1e-12)
        p_value = result.extra["p_value_x1"] if result.test == "mmd" else result.p_value
        allowed = 4 * math.sqrt(exact * (1 - exact) / 2000) + 1 / 2001
        assert abs(p_value - exact) <= allowed, (result.test, p_value, exact)
        assert 0.02 < exact < 0.5  # a p-value that tells a wrong count from a right one


def test_a_constant_component_adds_its_squared_offset():
    """A dead latent unit (one component constant in each set, n > d): the covariance is
    singular, Cholesky fails and the eigendecomposition takes over; the FD is that of the
    other components plus the squared difference of the constants."""
    rng = np.random.default_rng(14)
    x, y = gaussian(300, rng), 1.1 * gaussian(300, rng)
    dead_x = np.hstack([x, np.full((300, 1), 0.5)])
    dead_y = np.hstack([y, np.full((300, 1), 0.2)])
    live = frechet_test(x, y, n_resamples=5).statistic
    dead = frechet_test(dead_x, dead_y, n_resamples=5).statistic
    assert dead == pytest.approx(live + 0.3**2, rel=1e-9)


# -----------------------------------------------------------------------------------------
# known answers


def test_frechet_distance_of_large_sets_is_the_closed_form():
    """Two Gaussians with known moments, 20,000 vectors each in 8 dimensions: the estimate
    is the closed form within 4 standard deviations of the estimator (the bootstrap's) plus
    its bias, of order (d^2 / 2)(1/n1 + 1/n2) times the mean variance: 0.0032 tr(S) / 8."""
    rng = np.random.default_rng(6)
    root = covariance_root(8, seed=1)
    shift = np.full(8, 0.1)
    x, y = gaussian(20_000, rng, root), shift + 1.1 * gaussian(20_000, rng, root)
    cov = root @ root.T
    truth = frechet_distance(np.zeros(8), cov, shift, 1.21 * cov)
    assert truth == pytest.approx(0.08 + (1 + 1.21 - 2 * 1.1) * np.trace(cov))
    result = frechet_test(x, y, n_resamples=50, max_per_set=20_000)
    sd = result.extra["bootstrap_sd"]
    allowed = 4 * sd + 0.0032 * np.trace(cov) / 8
    assert abs(result.statistic - truth) <= allowed, (result, truth)


def test_frechet_interval_and_bias_against_monte_carlo():
    """200 pairs of 200 vectors in 8 dimensions, a known FD (0.41; the estimate's bias there
    is 0.7 of its sd):

    - the interval, FD +- 1.96 bootstrap sd, covers the FD expected at n = 200 (the mean of
      the 200 estimates, itself within 0.07 sd of it) in about 95% of the pairs or more:
      a one-sided binomial test at 0.001 on the misses, Binomial(200, <= 0.05) if valid;
    - the bootstrap's bias, averaged, is the Monte Carlo bias (mean estimate minus the
      truth) within 4 standard errors of the difference of the two means."""
    rng = np.random.default_rng(7)
    root = covariance_root(8, seed=2)
    shift = np.r_[0.3, np.zeros(7)]
    cov = root @ root.T
    truth = frechet_distance(np.zeros(8), cov, shift, 1.44 * cov)
    results = [
        frechet_test(gaussian(200, rng, root), shift + 1.2 * gaussian(200, rng, root), seed=s)
        for s in range(200)
    ]
    estimates = np.array([r.statistic for r in results])
    expected = estimates.mean()
    misses = sum(not r.lo <= expected <= r.hi for r in results)
    print(f"FD {truth:.3f}, expected at n = 200 {expected:.3f}: missed {misses} of 200 times")
    assert stats.binomtest(misses, 200, 0.05, alternative="greater").pvalue > 0.001, misses
    biases = np.array([r.extra["bootstrap_bias"] for r in results])
    se = math.sqrt((estimates.var(ddof=1) + biases.var(ddof=1)) / 200)
    assert abs(biases.mean() - (expected - truth)) <= 4 * se, (biases.mean(), expected - truth)


def test_mmd_is_unbiased_under_the_null():
    """Unbiased MMD^2 of two draws of one distribution averages 0: over 100 pairs the mean is
    within 4 standard errors, the standard error from the permutation sd of each test (the
    statistic's sd under H0) over sqrt(100)."""
    rng = np.random.default_rng(8)
    values, sds = [], []
    for seed in range(100):
        result = mmd_test(gaussian(60, rng), gaussian(60, rng), n_permutations=50, seed=seed)
        values.append(result.statistic)
        sds.append(result.extra["null_sd"])
    sd = float(np.mean(sds))
    assert abs(np.mean(values)) <= 4 * sd / math.sqrt(100), (np.mean(values), sd)
    # and the permutation sd is the statistic's sd under H0: the sd of 100 values is good to
    # about 1/sqrt(2 * 99) = 7% (more for a skewed statistic), allowed 4 of it
    assert np.std(values, ddof=1) == pytest.approx(sd, rel=4 / math.sqrt(198))


def test_well_separated_sets_are_told_apart():
    """Sets 6 sd apart along the main direction (the best classifier's accuracy is
    Phi(3) = 0.9987): every test rejects at its smallest p-value, both C2STs are at least
    95% accurate over their 480 predictions (a binomial count of 480 at 0.9987 falls below
    456 with probability < 1e-20; what the classifiers lose to their fit at 60 to 240 vectors
    a set remains: the quadratic one scored 0.91 at 100 vectors a set)."""
    rng = np.random.default_rng(9)
    x, y = gaussian(300, rng), gaussian(300, rng) + 6 * ROOT[:, 0]
    for classifier in ("linear", "nonlinear"):
        result = c2st(x, y, classifier=classifier)
        assert result.statistic >= 0.95 and result.extra["auc"] >= 0.98, result
        assert result.p_value < 1e-30 and result.lo > 0.9
    assert mmd_test(x, y, n_permutations=99).p_value == pytest.approx(0.01)
    assert frechet_test(x, y, n_resamples=99).p_value == pytest.approx(0.01)


def test_the_nonlinear_c2st_sees_missing_correlations():
    """Generated vectors with the real marginals but independent components (the real ones'
    variance is 90% in 4 of 32 directions): the quadratic classifier tells them apart at
    n = 400, where the pooled principal axes have 5 to 8 times the variance on one side
    (its accuracy over the 640 predictions far beyond the 0.55 it detects with 80% power).
    The linear one has equal means to go by and is not asked to (benchmark: it gains a few
    points from the unequal spreads along its direction)."""
    rng = np.random.default_rng(10)
    root = covariance_root(32, seed=3)
    marginal_sd = np.sqrt(np.sum(root**2, axis=1))
    x, y = gaussian(400, rng, root), marginal_sd * rng.standard_normal((400, 32))
    result = c2st(x, y, classifier="nonlinear")
    assert result.p_value < 1e-6 and result.statistic > 0.7, result


# -----------------------------------------------------------------------------------------
# calibration under H0 and the caps


def test_false_positive_rate_under_the_null():
    """200 real-against-real splits (100 Gaussian with correlations, 100 skewed) at n = 40:
    each test rejects at 0.05 no more often than the upper end of the binomial 99% band
    around 5% (a conservative test may reject less). The C2STs' binomial test is valid by
    construction (forward chaining), MMD and FD by permutation."""
    rng = np.random.default_rng(11)
    rejections = dict.fromkeys(TESTS, 0)
    for seed in range(200):
        draw = gaussian if seed % 2 else skewed
        x, y = draw(40, rng), draw(40, rng)
        results = [
            c2st(x, y, classifier="linear", seed=seed),
            c2st(x, y, classifier="nonlinear", seed=seed),
            mmd_test(x, y, n_permutations=100, seed=seed),
            frechet_test(x, y, n_resamples=100, seed=seed),
        ]
        for result in results:
            rejections[result.test] += result.p_value <= 0.05
    print("rejections of 200 at 0.05:", rejections, "band upper end", alpha_band(200))
    for name, count in rejections.items():
        assert count <= alpha_band(200), (name, count)


def test_caps_subsample_reproducibly():
    rng = np.random.default_rng(12)
    x, y = gaussian(300, rng), gaussian(120, rng)
    result = mmd_test(x, y, n_permutations=10, max_per_set=100, seed=5)
    assert (result.n_real, result.n_generated) == (100, 100)
    assert mmd_test(x, y, n_permutations=10, max_per_set=100, seed=5) == result
    assert c2st(x, y, max_per_set=200).n_real == 120  # equal sizes: the smaller set's
    fd = frechet_test(x, y, n_resamples=10, max_per_set=1000)
    assert (fd.n_real, fd.n_generated) == (300, 120)
    assert 1 / 11 <= fd.p_value <= 1
