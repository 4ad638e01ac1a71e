"""The k-NN search objective: its standard error and its best-b interval, measured.

Truth is the same objective on many more replicate generated sets (independent seeds);
the intervals are checked for coverage, with the pass line at the binomial 0.1% quantile
of the nominal 95% (a correct interval fails one run in a thousand).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aelatent.core.knn_objective import (
    KnnSearchObjective,
    best_of_curve,
    harmonic_mean,
)
from aelatent.core.precision_recall import real_manifold
from aelatent.core.samplers import UniformSampler

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


def test_best_interval_covers_the_true_optimum():
    """The best grid point of the 100-replicate curve lies in the R = 5 interval."""
    grid = np.geomspace(0.6, 2.0, 10)
    truth = grid[np.argmax(_objective(seed=10_000, replicates=100).curve(grid).objective)]
    seeds = range(30)
    inside = []
    for seed in seeds:
        best = best_of_curve(_objective(seed).curve(grid))
        assert best is not None
        inside.append(best.contains(truth))
    assert np.mean(inside) >= _pass_line(len(seeds))


def test_the_same_distribution_wins_near_its_own_width():
    """Real uniform in [-1, 1]^D: the generator of the same width scores near the top."""
    best = _objective(seed=0).best_in(0.25, 4.0, n_points=24)
    assert best is not None
    assert best.lo <= 1.25 and best.hi >= 0.8
    assert best.value.precision > 0.8 and best.value.recall > 0.8


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
