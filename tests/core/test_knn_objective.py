"""The k-NN search objective: its standard error and its best-b interval, measured.

Truth is the same objective on many more replicate generated sets (independent seeds);
the intervals (the value's, and the bracket of the best b) are checked for coverage, with
the pass line at the binomial 0.1% quantile of the nominal 95% (a correct interval fails
one run in a thousand).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aelatent.core.knn_objective import (
    REFINE_POINTS,
    KnnSearchObjective,
    best_of_curve,
    harmonic_mean,
    merge_curves,
    refined_best,
)
from aelatent.core.precision_recall import real_manifold
from aelatent.core.samplers import MVNSampler, UniformSampler

D = 4
N = 150


def _objective(seed: int, replicates: int = 5, shift: float = 0.0) -> KnnSearchObjective:
    real = np.random.default_rng(123).uniform(-1, 1, (N, D)) + shift
    manifold = real_manifold(real, 5, max_vectors=None)
    return KnnSearchObjective(
        manifold, lambda b: UniformSampler(b, D), N, seed, replicates=replicates
    )


def _pass_line(trials: int) -> float:
    return float(stats.binom.ppf(0.001, trials, 0.95)) / trials


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(1.0, 0.25) == pytest.approx(0.4)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(0.0, 0.7) == 0.0


def test_value_interval_covers_the_many_replicate_mean():
    """value +- t SE (R = 5) against the mean over 200 other generated sets, at one b."""
    truth = _objective(seed=10_000, replicates=200)(1.3).objective
    t = stats.t.ppf(0.975, 4)
    seeds = range(40)
    covered = [
        abs((v := _objective(seed)(1.3)).objective - truth) <= t * v.objective_se for seed in seeds
    ]
    assert np.mean(covered) >= _pass_line(len(seeds))


def test_best_bracket_covers_the_true_optimum_and_refining_narrows_it():
    """The optimum of the 100-replicate curve (its best point on a fine grid) lies in the
    R = 5 bracket, of the first grid and of the refined one; refining narrows the bracket."""
    grid = np.geomspace(0.6, 2.0, 10)
    fine = np.geomspace(0.6, 2.0, 40)  # 3% apart: far finer than the brackets checked
    truth = fine[np.argmax(_objective(seed=10_000, replicates=100).curve(fine).objective)]
    seeds = range(30)
    coarse_in, refined_in, coarse_width, refined_width = [], [], [], []
    for seed in seeds:
        objective = _objective(seed)
        curve = objective.curve(grid)
        coarse = best_of_curve(curve)
        merged, refined = refined_best(objective, curve)
        assert coarse is not None and refined is not None
        assert np.all(np.diff(merged.b) > 0) and set(grid) <= set(merged.b)
        assert merged.b.size == grid.size + REFINE_POINTS
        assert refined.lo <= refined.b <= refined.hi
        assert refined.value.objective >= coarse.value.objective  # a superset of points
        coarse_in.append(coarse.contains(truth))
        refined_in.append(refined.contains(truth))
        coarse_width.append(coarse.hi - coarse.lo)
        refined_width.append(refined.hi - refined.lo)
    assert np.mean(coarse_in) >= _pass_line(len(seeds))
    assert np.mean(refined_in) >= _pass_line(len(seeds))
    assert np.median(refined_width) < np.median(coarse_width)


def test_merged_curve_keeps_every_replicate_value():
    objective = _objective(seed=1)
    a, b = objective.curve(np.array([0.5, 1.5])), objective.curve(np.array([1.0]))
    merged = merge_curves(a, b)
    assert merged.b.tolist() == [0.5, 1.0, 1.5]
    np.testing.assert_array_equal(merged.per_replicate[:, 1], b.per_replicate[:, 0])
    np.testing.assert_array_equal(merged.objective[[0, 2]], a.objective)


def test_the_same_distribution_wins_near_its_own_width():
    """Real uniform in [-1, 1]^D: the generator of the same width scores near the top."""
    best = _objective(seed=0).best_in(0.25, 4.0, n_points=24)
    assert best is not None
    assert best.lo <= 1.25 and best.hi >= 0.8
    assert best.value.parts()["precision"] > 0.8 and best.value.parts()["recall"] > 0.8


def test_a_fitted_generator_searches_to_its_own_width():
    """The scale axis: an mvn fitted to the real distribution's samples, scored against other
    samples of it, has its best scale near 1 (the fitted width) and 1 in its bracket."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.5, (800, 16))
    fitted = MVNSampler.from_latents(x[:400])
    manifold = real_manifold(x[400:], 5, max_vectors=None)
    best = KnnSearchObjective(manifold, fitted.with_scale, 400, 0).best_in(0.3, 3.0)
    assert best is not None
    assert best.lo <= 1.0 <= best.hi and 0.8 < best.b < 1.25
    assert best.value.parts()["precision"] > 0.7 and best.value.parts()["recall"] > 0.7


def test_nothing_lands_gives_no_best():
    """Real latents far off the origin: no uniform vector is inside a real ball."""
    assert _objective(seed=0, shift=50.0).best_in(0.1, 1.0, n_points=6) is None


def test_bad_construction():
    manifold = real_manifold(np.random.default_rng(0).normal(size=(50, D)), 5, max_vectors=None)
    with pytest.raises(ValueError, match="exceed"):
        KnnSearchObjective(manifold, lambda b: UniformSampler(b, D), 5, 0)
    with pytest.raises(ValueError, match="replicates"):
        KnnSearchObjective(manifold, lambda b: UniformSampler(b, D), 50, 0, replicates=1)
    with pytest.raises(ValueError, match="positive finite"):
        KnnSearchObjective(manifold, lambda b: UniformSampler(b, D), 50, 0)(float("nan"))


def test_as_good_is_the_paired_test_of_the_bracket():
    """A value with the best's own replicate values is as good; the bracket's ends (the first
    significantly worse grid points) and far-off widths are not."""
    objective = _objective(seed=2)
    best = objective.best_in(0.25, 4.0, n_points=24)
    assert best is not None
    assert best.as_good(best.value)
    assert best.as_good(objective(best.b))  # the same sets: the same replicate values
    np.testing.assert_array_equal(objective(best.b).per_replicate, best.value.per_replicate)
    assert not best.as_good(objective(0.3))
    assert best.hi < 4.0  # uniform [-1, 1]^4: far narrower than 4
    assert not best.as_good(objective(best.hi))  # an end inside the range is worse


def test_a_one_point_grid_needs_no_refinement():
    best = _objective(seed=0).best_in(1.0, 1.0, n_points=1)
    assert best is not None and best.lo == best.hi == best.b == 1.0
