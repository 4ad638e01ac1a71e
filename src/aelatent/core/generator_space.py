"""The generator search's candidates and their out-of-sample score.

A *candidate* is a sampler family with its settings: uniform (``b``), independent Gaussians
(``scale``), the multivariate normal (``shrinkage`` of the covariance toward its diagonal,
``scale``), the Gaussian mixture (``components``, ``covariance`` type, the principal
``subspace`` kept, ``scale``). :func:`fit_candidate` builds it from training latents.

**The score** of a candidate on one cross-fitting split (:func:`aelatent.core.verdict.
make_splits`: fitted on a random half A of the training latents, tested against the other
half B) is

    s = min(1, 2 (1 - acc)) * min(1, copying ratio)

- ``acc``: the cross-validated accuracy of the quadratic classifier two-sample test
  (:func:`aelatent.core.two_sample.c2st`) of the candidate's vectors against B: 1 minus it,
  doubled, is 1 when the classifier is at chance and 0 when it tells them apart every time;
- the *copying ratio* (:func:`copying_test`): the median distance of generated vectors to
  their nearest vector of A over the median distance of B's vectors to their nearest vector
  of A. A generator that copies its training vectors (a mixture with one narrow component per
  training vector) is much nearer to A than new real latents are (ratio << 1) and scores
  low, although a two-sample test against B cannot tell copies of real latents from real
  latents. A ratio above 1 (a generator farther out than real data) is not penalised here:
  the classifier sees it.

The candidate's score is the mean of ``s`` over the splits, with the splits' spread as its
standard error; a candidate is *as good as the best* when the paired difference of the
splits' scores is within ``t_{0.975, R-1}`` of its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import mannwhitneyu

from aelatent.core.correlations import mean_and_covariance
from aelatent.core.mixture import GMMSampler, fit_latent_mixture
from aelatent.core.samplers import GaussianSampler, MVNSampler, Sampler, UniformSampler
from aelatent.core.two_sample import TwoSampleResult, c2st
from aelatent.core.verdict import Split
from aelatent.core.windows import FWHM_PER_SIGMA, estimate_windows

FAMILIES: tuple[str, ...] = ("uniform", "gaussian", "mvn", "gmm")
COVARIANCE_TYPES = ("full", "diag")
Setting = float | int | str


@dataclass(frozen=True)
class Candidate:
    """A family and its settings (``scale`` is uniform's ``b`` for the uniform family)."""

    family: str
    settings: tuple[tuple[str, Setting], ...]

    @classmethod
    def of(cls, family: str, settings: Mapping[str, Setting]) -> Candidate:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
        return cls(family, tuple(sorted(settings.items())))

    @property
    def params(self) -> dict[str, Setting]:
        return dict(self.settings)

    @property
    def scale(self) -> float:
        return float(self.params["b" if self.family == "uniform" else "scale"])

    @property
    def shape(self) -> tuple[tuple[str, Setting], ...]:
        """The settings a fit depends on (everything but the width): fits are reused."""
        return tuple((k, v) for k, v in self.settings if k not in ("b", "scale"))

    @property
    def label(self) -> str:
        text = " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.settings
        )
        return f"{self.family} {text}".strip()


def fit_candidate(
    candidate: Candidate, latents: np.ndarray, *, seed: int, estimate: str
) -> Sampler:
    """The candidate's sampler at scale 1, fitted on ``latents`` (``estimate``: the window
    estimator of the gaussian family; ``seed``: the mixture's fit)."""
    p = candidate.params
    x = np.asarray(latents, dtype=np.float64)
    if candidate.family == "uniform":
        return UniformSampler(1.0, x.shape[1])
    if candidate.family == "gaussian":
        windows = estimate_windows(x, estimate, seed=seed)
        return GaussianSampler(windows.mu, windows.hw / FWHM_PER_SIGMA)
    if candidate.family == "mvn":
        mean, cov = mean_and_covariance(x)
        shrink = float(p.get("shrinkage", 0.0))
        return MVNSampler(mean, (1 - shrink) * cov + shrink * np.diag(np.diag(cov)))
    mixture = fit_latent_mixture(
        x,
        n_components=int(p["components"]),
        covariance_types=(str(p["covariance"]),),
        max_dim=int(p["subspace"]),
        variance_fraction=1.0,
        seed=seed,
    )
    return GMMSampler(mixture, ghk_seed=seed)


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
    """One split's score and its two factors."""

    score: float
    accuracy: float
    copying_ratio: float


def split_score(sampler: Sampler, split: Split, scale: float, seed: int) -> SplitScore:
    """The score of ``sampler`` (fitted on ``split.fit``) at ``scale`` against ``split.test``."""
    rng = np.random.default_rng([seed, split.seed, 5000])
    z = sampler.with_scale(scale).sample(split.test.shape[0], rng).astype(np.float64)
    accuracy = c2st(split.test, z, classifier="nonlinear", seed=split.seed).statistic
    ratio = copying_test(split.fit, split.test, z).statistic
    fidelity = min(1.0, 2.0 * (1.0 - accuracy))
    return SplitScore(fidelity * min(1.0, ratio), accuracy, ratio)


def score_interval(per_split: Sequence[float]) -> tuple[float, float]:
    """95% interval of a candidate's mean score from its splits' scores: Student's t with
    R - 1 degrees of freedom (with 3 splits 4.30 standard errors, not 1.96), cut to [0, 1]."""
    x = np.asarray(per_split, dtype=np.float64)
    if x.size < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.975, x.size - 1)) * x.std(ddof=1) / math.sqrt(x.size)
    return max(0.0, float(x.mean()) - half), min(1.0, float(x.mean()) + half)


def as_good_as(best: Sequence[float], other: Sequence[float]) -> bool:
    """``other``'s split scores are not significantly below ``best``'s (paired t, 95%)."""
    diff = np.asarray(best, dtype=np.float64) - np.asarray(other, dtype=np.float64)
    if diff.size < 2:
        return bool(diff.mean() <= 0)
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    return bool(diff.mean() <= float(stats.t.ppf(0.975, diff.size - 1)) * se)
