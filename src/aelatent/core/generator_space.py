"""The generator search's candidates and their out-of-sample score.

A *candidate* is a sampler family with its settings. The families are the samplers of
:mod:`aelatent.core.sampler_registry`, and each entry declares the settings the search
varies (``SamplerSpec.settings``) beside its width axis: uniform (``b``), independent
Gaussians (``scale``), the multivariate normal (``shrinkage`` of the covariance toward its
diagonal, ``scale``), the Gaussian mixture (``components``, ``covariance`` type, the
principal ``subspace`` kept, ``scale``), the flow (``hidden_units``, ``bijectors``,
``subspace``, ``epochs``, ``scale``). :func:`fit_candidate` builds it from training latents
through the registry, so a new sampler is a new family without an edit here.

**The held-out log-likelihood** of a candidate with a density (every family but uniform)
is the mean log density of the test half under the candidate fitted on the fit half, in
the fit half's top ``r = min(D, n_fit // 4)`` principal directions
(:func:`principal_directions`): the same directions for every family, so they compare, and
few enough that every family's density is proper there (in all D directions a covariance
of 180 vectors in 256 dimensions is singular and every Gaussian family's log-likelihood is
minus infinity). It is computed twice: at the candidate's width (logged) and of the fit
itself, at scale 1 (``fit_log_likelihood``), which the winner's rule compares among the
candidates the score ties (``aelatent.jobs.generator_search.selection.best_trial``); it is
not folded into the score.

**The score** of a candidate on one cross-fitting split (:func:`aelatent.core.verdict.
make_splits`: fitted on a random half A of the training latents, tested against the other
half B) is

    s = min(1, 2 (1 - max(acc, acc_shape))) * min(1, copying ratio)

- ``acc``: the cross-validated accuracy of the quadratic classifier two-sample test
  (:func:`aelatent.core.two_sample.c2st`) of the candidate's vectors against B: 1 minus it,
  doubled, is 1 when the classifier is at chance and 0 when it tells them apart every time;
- ``acc_shape`` (:func:`shape_c2st`): the same question asked by a k-NN classifier in the
  fit half's top SHAPE_DIRECTIONS principal directions, whitened. Why: the quadratic
  classifier sees means and spreads, so a generator with the right first two moments (the
  multivariate normal) is at chance against a mixture of well-separated clusters, and the
  search chose mvn over the true 3-component mixture (benchmarks/bench_generator_search.py,
  score v1); a k-NN classifier sees that the normal fills the gaps between the clusters;
- the *copying ratio* (:func:`copying_test`): the median distance of generated vectors to
  their nearest vector of A over the median distance of B's vectors to their nearest vector
  of A. A generator that copies its training vectors (a mixture with one narrow component per
  training vector) is much nearer to A than new real latents are (ratio << 1) and scores
  low, although a two-sample test against B cannot tell copies of real latents from real
  latents. A ratio above 1 (a generator farther out than real data) is not penalised here:
  the classifier sees it.

The candidate's score is the mean of ``s`` over the splits, with Nadeau & Bengio's
corrected standard error (:func:`score_se`: the splits share their data, so their spread
alone understates how the mean moves between data sets); a candidate is *as good as the
best* (on these splits: the comparison shares the data, and its noise is the splits') when
the paired difference of the
splits' scores is within ``t_{0.975, R-1}`` of its standard error, or, given the noise
pooled over candidates (:func:`pooled_noise`), within ``t_{0.975, df}`` of
``sqrt(2 s^2 / R)``. Why pool: every candidate is scored on the same R splits, a randomised
block design (candidates the treatments, splits the blocks), and its residual mean square
estimates the noise of one split's score with ``(T - 1)(R - 1)`` degrees of freedom where a
pair's own differences have ``R - 1``: with 3 splits ``t_{0.975, 2} = 4.30`` on a
standard error from 3 numbers, and a candidate 0.10 below the top (0.03, 0.19 and 0.09 on
its splits) counted as tied with it (benchmarks/README.md, seed 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import mannwhitneyu

from aelatent.core.correlations import mean_and_covariance
from aelatent.core.sampler_registry import (
    REGISTRY,
    SAMPLERS,
    Setting,
    build_sampler,
    log_likelihood,
    spec_of,
)
from aelatent.core.samplers import Sampler
from aelatent.core.two_sample import TwoSampleResult, c2st
from aelatent.core.verdict import Split
from aelatent.core.windows import estimate_windows

FAMILIES: tuple[str, ...] = SAMPLERS  # every sampler of the registry is a family
SPLITS = 3  # the cross-fitted splits every candidate is scored on (make_splits' halvings)


@dataclass(frozen=True)
class Candidate:
    """A family and its settings (``scale`` is uniform's ``b`` for the uniform family)."""

    family: str
    settings: tuple[tuple[str, Setting], ...]

    @classmethod
    def of(cls, family: str, settings: Mapping[str, Setting]) -> Candidate:
        if family not in REGISTRY:
            raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
        return cls(family, tuple(sorted(settings.items())))

    @property
    def params(self) -> dict[str, Setting]:
        return dict(self.settings)

    @property
    def scale(self) -> float:
        return float(self.params[spec_of(self.family).axis])

    @property
    def shape(self) -> tuple[tuple[str, Setting], ...]:
        """The settings a fit depends on (everything but the width): fits are reused."""
        axis = spec_of(self.family).axis
        return tuple((k, v) for k, v in self.settings if k != axis)

    @property
    def label(self) -> str:
        text = " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.settings
        )
        return f"{self.family} {text}".strip()


def fit_candidate(
    candidate: Candidate, latents: np.ndarray, *, seed: int, estimate: str
) -> Sampler:
    """The candidate's sampler at scale 1, fitted on ``latents`` by its registry entry with
    the candidate's settings (``estimate``: the window estimator of a family built from the
    hit windows, gaussian; ``seed``: a random fit's, the mixture's and the flow's)."""
    x = np.asarray(latents, dtype=np.float64)
    if spec_of(candidate.family).needs_windows:
        windows = estimate_windows(x, estimate, seed=seed)
        mu, hw = windows.mu, windows.hw
    else:  # not read: the entry builds from the latents alone
        mu, hw = np.zeros(x.shape[1]), np.ones(x.shape[1])
    return build_sampler(candidate.family, mu, hw, x, seed=seed, settings=dict(candidate.shape))


def principal_directions(fit: np.ndarray) -> np.ndarray:
    """``[D, r]``: the top ``r = min(D, n // 4)`` eigenvectors of the covariance of ``fit``
    ``[n, D]``, where every family's held-out log-likelihood is scored (module docstring)."""
    x = np.asarray(fit, dtype=np.float64)
    _, cov = mean_and_covariance(x)
    eigenvalues, basis = np.linalg.eigh(0.5 * (cov + cov.T))
    r = max(1, min(x.shape[1], x.shape[0] // 4))
    top: np.ndarray = basis[:, np.argsort(eigenvalues)[::-1][:r]]
    return top


def copying_test(fit: np.ndarray, test: np.ndarray, generated: np.ndarray) -> TwoSampleResult:
    """Are generated vectors nearer to the fit set than new real vectors are? (module doc)

    Statistic: median nearest-neighbour distance of ``generated`` to ``fit`` over that of
    ``test`` to ``fit``; p-value: one-sided Mann-Whitney test of "generated distances are
    smaller"; interval: 95% percentile bootstrap of the ratio."""
    gen = _nearest_distances(fit, generated)
    real = _nearest_distances(fit, test)
    ratio = float(np.median(gen) / np.median(real))
    interval = stats.bootstrap(
        (gen, real),
        lambda a, b, axis=-1: np.median(a, axis=axis) / np.median(b, axis=axis),
        n_resamples=499,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    ).confidence_interval
    p_value = float(mannwhitneyu(gen, real, alternative="less").pvalue)
    return TwoSampleResult(
        "copying", ratio, float(interval.low), float(interval.high), p_value, real.size, gen.size
    )


def _nearest_distances(reference: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``z`` to its nearest row of ``reference``."""
    ref = np.asarray(reference, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    squared = (z * z).sum(1)[:, None] - 2 * z @ ref.T + (ref * ref).sum(1)[None, :]
    out: np.ndarray = np.sqrt(np.clip(squared.min(axis=1), 0.0, None))
    return out


@dataclass(frozen=True)
class SplitScore:
    """One split's score, its factors, and the held-out log-likelihood at the candidate's
    width and of its fit (scale 1) (NaN: none)."""

    score: float
    accuracy: float
    copying_ratio: float
    log_likelihood: float = math.nan
    shape_accuracy: float = math.nan
    fit_log_likelihood: float = math.nan


SHAPE_DIRECTIONS = 8
SHAPE_NEIGHBOURS = 15


def shape_c2st(fit: np.ndarray, test: np.ndarray, generated: np.ndarray, seed: int) -> float:
    """5-fold cross-validated accuracy of a k-NN classifier (k = 15) telling ``generated``
    from ``test`` (as many of each) in the top SHAPE_DIRECTIONS principal directions of
    ``fit``, each divided by its standard deviation there (module docstring: why)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(fit, dtype=np.float64)
    mean, cov = mean_and_covariance(x)
    eigenvalues, basis = np.linalg.eigh(0.5 * (cov + cov.T))
    top = np.argsort(eigenvalues)[::-1][: min(SHAPE_DIRECTIONS, x.shape[1])]
    project = basis[:, top] / np.sqrt(np.maximum(eigenvalues[top], 1e-300))
    n = min(len(test), len(generated))
    data = np.vstack([(test[:n] - mean) @ project, (generated[:n] - mean) @ project])
    labels = np.repeat([0, 1], n)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    neighbours = KNeighborsClassifier(min(SHAPE_NEIGHBOURS, max(1, (8 * n) // 5 - 1)))
    return float(np.mean(cross_val_score(neighbours, data, labels, cv=folds)))


def split_score(
    sampler: Sampler,
    split: Split,
    scale: float,
    seed: int,
    directions: np.ndarray | None = None,
) -> SplitScore:
    """The score of ``sampler`` (fitted on ``split.fit``, at scale 1) at ``scale`` against
    ``split.test``; with ``directions`` (:func:`principal_directions` of ``split.fit``) also
    the test half's mean log-likelihood there, at ``scale`` and at scale 1 (the fit's own)."""
    at_scale = sampler.with_scale(scale)
    rng = np.random.default_rng([seed, split.seed, 5000])
    z = at_scale.sample(split.test.shape[0], rng).astype(np.float64)
    accuracy = c2st(split.test, z, classifier="nonlinear", seed=split.seed).statistic
    shape = shape_c2st(split.fit, split.test, z, split.seed)
    ratio = copying_test(split.fit, split.test, z).statistic
    fidelity = min(1.0, 2.0 * (1.0 - max(accuracy, shape)))
    loglik = fit_loglik = math.nan
    if directions is not None:
        loglik = log_likelihood(at_scale, split.test, directions)
        fit_loglik = log_likelihood(sampler.with_scale(1.0), split.test, directions)
    return SplitScore(fidelity * min(1.0, ratio), accuracy, ratio, loglik, shape, fit_loglik)


def score_se(per_split: Sequence[float], *, test_to_fit: float = 1.0) -> float:
    """The standard error of a candidate's mean score over its R splits as an estimate of
    its expected score on data sets like the user's: Nadeau & Bengio's (2003) corrected
    resampled ``s sqrt(1/R + n_test/n_fit)`` (``test_to_fit``: 1 for
    :func:`~aelatent.core.verdict.make_splits`' halves: with 3 splits twice the naive
    ``s / sqrt(R)``; why: :func:`score_interval`). NaN with fewer than two splits or a split
    score that is not finite."""
    x = np.asarray(per_split, dtype=np.float64)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return math.nan
    return float(x.std(ddof=1) * math.sqrt(1.0 / x.size + test_to_fit))


def score_interval(per_split: Sequence[float], *, test_to_fit: float = 1.0) -> tuple[float, float]:
    """95% interval of a candidate's expected score on data sets like the user's, from its R
    splits' scores: the mean +- ``t_{0.975, R-1}`` :func:`score_se` (Nadeau & Bengio's
    corrected resampled t), cut to [0, 1].

    Why: the splits are halvings of one data set, so their scores are correlated and their
    spread misses how the mean moves from one data set to the next. Over independent data
    sets of known truths (Gaussian, log-normal, multivariate t3, 3-component mixture; D = 16,
    n = 100 to 5,000; mvn and gmm at scale 1: benchmarks/bench_generator_score_coverage.py)
    the naive t covered 87% [80%, 92%] (99% band) on the t3 at n = 2,000 (91% at 360, 86% at
    5,000), where two splits' scores correlate 0.4 to 0.5; the corrected one held in all 21
    rows (95% to 100%), conservative where they correlate less (most rows: 96% to 100%)."""
    x = np.asarray(per_split, dtype=np.float64)
    if x.size < 2 or not np.all(np.isfinite(x)):
        return math.nan, math.nan  # not (0, 1): max/min would drop a NaN
    half = float(stats.t.ppf(0.975, x.size - 1)) * score_se(per_split, test_to_fit=test_to_fit)
    return max(0.0, float(x.mean()) - half), min(1.0, float(x.mean()) + half)


@dataclass(frozen=True)
class SplitNoise:
    """The noise of one split's score, pooled over candidates (:func:`pooled_noise`): its
    ``variance`` and the estimate's degrees of freedom ``df``."""

    variance: float
    df: int


def pooled_noise(per_split: Sequence[Sequence[float]]) -> SplitNoise | None:
    """The residual mean square of the additive two-way model (candidate + split) over the
    rows of ``per_split`` ``[T, R]`` (T candidates scored on the same R splits) with its
    ``(T - 1)(R - 1)`` degrees of freedom (module docstring); None when there are none. The
    split's own effect (an easy or hard test half, shared by every candidate) is removed, as
    a paired difference removes it."""
    x = np.asarray(per_split, dtype=np.float64)
    if x.ndim != 2:
        return None
    df = (x.shape[0] - 1) * (x.shape[1] - 1)
    if df < 1:
        return None
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    variance = float((residual**2).sum() / df)
    # none left (scores at their cap of 1, or exactly additive): no estimate, not certainty
    return SplitNoise(variance, df) if variance > 0 else None


def difference_interval(
    a: Sequence[float], b: Sequence[float], noise: SplitNoise | None = None
) -> tuple[float, float, float]:
    """``a``'s mean split score minus ``b``'s on the splits both have, with its 95% interval:
    by the pooled noise of one split when given (variance ``2 s^2 / k``, ``noise.df``
    degrees of freedom, as :func:`as_good_as`), else by the paired t of the differences."""
    k = min(len(a), len(b))
    diff = np.asarray(a[:k], dtype=np.float64) - np.asarray(b[:k], dtype=np.float64)
    if noise is not None:
        half = float(stats.t.ppf(0.975, noise.df)) * math.sqrt(2.0 * noise.variance / k)
    elif k >= 2:
        half = float(stats.t.ppf(0.975, k - 1)) * float(diff.std(ddof=1)) / math.sqrt(k)
    else:
        half = math.nan
    mean = float(diff.mean())
    return mean, mean - half, mean + half


def difference_verdict(lo: float | None, hi: float | None) -> str:
    """What a difference's 95% interval (:func:`difference_interval`) says: ``better``
    (above 0), ``worse`` (below), ``not significantly different``, or ``not compared``
    where there is no interval (one split)."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "not compared (too few splits)"
    return "better" if lo > 0 else "worse" if hi < 0 else "not significantly different"


def as_good_as(
    best: Sequence[float], other: Sequence[float], noise: SplitNoise | None = None
) -> bool:
    """``other``'s split scores are not significantly below ``best``'s (one-sided 97.5%),
    on the splits both have: by the paired t of their differences, or with ``noise``, by
    the pooled estimate of one split's noise (the difference of two means of k splits has
    variance ``2 s^2 / k``; module docstring)."""
    k = min(len(best), len(other))
    diff = np.asarray(best[:k], dtype=np.float64) - np.asarray(other[:k], dtype=np.float64)
    if noise is not None:
        half = float(stats.t.ppf(0.975, noise.df)) * math.sqrt(2.0 * noise.variance / k)
        return bool(diff.mean() <= half)
    if diff.size < 2:
        return bool(diff.mean() <= 0)
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    return bool(diff.mean() <= float(stats.t.ppf(0.975, diff.size - 1)) * se)
