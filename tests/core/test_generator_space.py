"""The generator search's candidates and score: every family fits, a copier scores low."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aelatent.core.generator_space import (
    Candidate,
    as_good_as,
    copying_test,
    fit_candidate,
    principal_directions,
    score_interval,
    split_score,
)
from aelatent.core.samplers import UniformSampler
from aelatent.core.verdict import make_splits

D = 12


def _latents(n: int, seed: int = 0) -> np.ndarray:
    basis = np.linalg.qr(np.random.default_rng(4).standard_normal((D, D)))[0]
    scales = np.r_[np.full(2, 3.0), np.full(D - 2, 0.3)]
    return (np.random.default_rng(seed).standard_normal((n, D)) * scales) @ basis.T


class Copier:
    """A mixture with one narrow component per training vector: it replays its fit set."""

    name = "copier"

    def __init__(self, fit: np.ndarray, scale: float = 1.0) -> None:
        self.fit, self.scale = fit, scale

    def with_scale(self, scale: float) -> Copier:
        return Copier(self.fit, scale)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = self.fit[rng.integers(0, len(self.fit), n)]
        return (rows + 0.01 * self.scale * rng.standard_normal(rows.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def splits():
    return make_splits(_latents(400), 3, seed=0)


def test_a_copier_scores_worse_than_the_fitted_mvn_though_a_c2st_cannot_tell(splits):
    """Copies of the fit half are real latents: a classifier against the test half is at
    chance for them, so only the copying ratio (their nearest-fit distance against new real
    latents') exposes them. Out of sample the mvn scores higher on every split."""
    mvn = Candidate.of("mvn", {"shrinkage": 0.0, "scale": 1.0})
    for split in splits:
        copier = split_score(Copier(split.fit), split, 1.0, seed=0)  # type: ignore[arg-type]
        fitted = split_score(fit_candidate(mvn, split.fit, seed=0, estimate="auto"), split, 1.0, 0)
        assert copier.accuracy < 0.65 and copier.copying_ratio < 0.1
        assert fitted.copying_ratio > 0.7
        assert fitted.score > copier.score


def test_the_fits_log_likelihood_does_not_depend_on_the_width(splits):
    """The winner's likelihood step compares fits (scale 1), so a trial's width does not
    count twice: at scale 0.5 the held-out log-likelihood drops, the fit's stays the one of
    scale 1."""
    split = splits[0]
    directions = principal_directions(split.fit)
    mvn = fit_candidate(
        Candidate.of("mvn", {"shrinkage": 0.0, "scale": 1.0}), split.fit, seed=0, estimate="auto"
    )
    at_1 = split_score(mvn, split, 1.0, 0, directions)
    narrow = split_score(mvn, split, 0.5, 0, directions)
    assert narrow.log_likelihood < at_1.log_likelihood
    assert narrow.fit_log_likelihood == pytest.approx(at_1.log_likelihood, rel=1e-12)
    assert at_1.fit_log_likelihood == pytest.approx(at_1.log_likelihood, rel=1e-12)


def test_the_copying_test_is_calibrated_on_new_real_vectors():
    """Generated = fresh draws of the real law: the ratio's interval holds 1 and the one-sided
    p-value is not small (a single fixed draw: the test's rate is checked by its binomial
    band in benchmarks/bench_verdict.py)."""
    fit, test, new = _latents(200, 1), _latents(200, 2), _latents(200, 3)
    result = copying_test(fit, test, new)
    assert result.lo <= 1.0 <= result.hi and result.p_value > 0.01


@pytest.mark.parametrize(
    ("family", "settings"),
    [
        ("uniform", {"b": 2.0}),
        ("gaussian", {"scale": 1.0}),
        ("mvn", {"shrinkage": 0.5, "scale": 0.8}),
        ("gmm", {"components": 2, "covariance": "full", "subspace": 4, "scale": 1.0}),
    ],
)
def test_each_family_fits_and_draws(family, settings):
    candidate = Candidate.of(family, settings)
    sampler = fit_candidate(candidate, _latents(200), seed=0, estimate="auto")
    z = sampler.with_scale(candidate.scale).sample(50, np.random.default_rng(0))
    assert z.shape == (50, D) and np.all(np.isfinite(z))
    assert candidate.label.startswith(family)
    if family == "gmm":
        assert sampler.mixture.n_components == 2 and sampler.mixture.subspace_dim == 4
    if family == "uniform":
        assert isinstance(sampler, UniformSampler) and candidate.scale == 2.0


def test_shrinkage_moves_the_covariance_to_its_diagonal():
    x = _latents(300)
    full = fit_candidate(
        Candidate.of("mvn", {"shrinkage": 0.0, "scale": 1}), x, seed=0, estimate="auto"
    )
    diag = fit_candidate(
        Candidate.of("mvn", {"shrinkage": 1.0, "scale": 1}), x, seed=0, estimate="auto"
    )
    off = ~np.eye(D, dtype=bool)
    assert np.abs(full.cov[off]).max() > 0.1 and np.all(diag.cov[off] == 0)
    np.testing.assert_allclose(np.diag(full.cov), np.diag(diag.cov))


def test_the_score_interval_covers_the_mean_with_three_splits():
    """Student's t with 2 degrees of freedom: over 2,000 triples of N(0.8, 0.05) scores the
    interval holds 0.8 in a binomial band around 95% (at least the 0.1% quantile of
    binomial(2,000, 0.95), 1,884); the 1.96 se it replaced covered about 79%."""
    rng = np.random.default_rng(6)
    covered = sum(
        lo <= 0.8 <= hi
        for lo, hi in (score_interval(rng.normal(0.8, 0.05, 3)) for _ in range(2000))
    )
    assert covered >= stats.binom.ppf(0.001, 2000, 0.95), covered


def test_as_good_as_is_a_paired_test_and_unknown_families_are_refused():
    assert as_good_as([0.9, 0.8, 0.85], [0.88, 0.79, 0.86])
    assert not as_good_as([0.9, 0.8, 0.85], [0.5, 0.45, 0.52])
    with pytest.raises(ValueError, match="unknown family 'vae'"):
        Candidate.of("vae", {"scale": 1.0})
