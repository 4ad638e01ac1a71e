"""The C2ST search objective: cross-fitted, peaks near the fitted width, ~0 for uniform."""

from __future__ import annotations

import numpy as np
import pytest

from aelatent.core.sampler_registry import build_sampler
from aelatent.core.verdict import make_splits
from aelatent.core.verdict_objective import TwoSampleSearchObjective

D = 12


def _latents(n: int) -> np.ndarray:
    basis = np.linalg.qr(np.random.default_rng(4).standard_normal((D, D)))[0]
    scales = np.r_[np.full(2, 3.0), np.full(D - 2, 0.3)]
    return (np.random.default_rng(5).standard_normal((n, D)) * scales) @ basis.T


def _fit(name: str):
    def fit(x: np.ndarray, seed: int):
        return build_sampler(name, x.mean(0), 2.3548 * x.std(0), x, seed=seed)

    return fit


@pytest.fixture(scope="module")
def splits():
    return make_splits(_latents(400), 3, seed=0)


def test_mvn_peaks_near_its_fitted_width_and_uniform_stays_near_zero(splits):
    """The quadratic C2ST of cross-fitted mvn vectors (a linear one is blind to a width: two
    centred Gaussians have no separating hyperplane): at scale 1 the classifier is near chance
    (F near 1), at scale 3 it tells them apart (F near 0); the best of a sweep over 0.3..3
    lies in 0.6..1.6 and its bracket holds it. Uniform vectors, blind to the tilt, are told
    apart at every b (F < 0.3)."""
    mvn = TwoSampleSearchObjective("c2st", splits, _fit("mvn"), seed=1)
    assert mvn(1.0).objective > 0.6 > mvn(3.0).objective
    best = mvn.best_in(0.3, 3.0, n_points=10)
    assert best is not None and 0.6 < best.b < 1.6 and best.lo <= best.b <= best.hi
    assert set(best.value.parts()) == {"accuracy", "auc"}
    uniform = TwoSampleSearchObjective("c2st", splits, _fit("uniform"), seed=1)
    curve = uniform.curve(np.array([0.5, 1.0, 2.0, 4.0]))
    assert np.all(curve.objective < 0.3), curve.objective


def test_common_random_numbers_and_bad_arguments(splits):
    mvn = TwoSampleSearchObjective("c2st_linear", splits, _fit("mvn"), seed=1)
    np.testing.assert_array_equal(mvn.replicate_parts(1.2), mvn.replicate_parts(1.2))
    with pytest.raises(ValueError, match="unknown objective 'knn'"):
        TwoSampleSearchObjective("knn", splits, _fit("mvn"), seed=1)
    with pytest.raises(ValueError, match="at least 2 splits"):
        TwoSampleSearchObjective("c2st", splits[:1], _fit("mvn"), seed=1)
    with pytest.raises(ValueError, match="positive finite"):
        mvn.curve(np.array([0.0]))
