"""The generator score's 95% interval covers the expected score over independent data sets.

A reduced ``benchmarks/bench_generator_score_coverage.py``: mvn at scale 1 scored on 3
cross-fitted halvings of each of ``DATASETS`` independent data sets of a known truth (a
correlated Gaussian and a multivariate t with 3 df, 8 dimensions, n = 100); the truth of a
data set is the mean 3-split score of the others (leave-one-out).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from aelatent.core.generator_space import score_interval

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_generator_score_coverage import dataset_scores

DATASETS = 80
N = 100
Z_DIM = 8


@pytest.fixture(scope="module")
def scores() -> dict[str, np.ndarray]:
    """Each truth's split scores ``[DATASETS, 3]`` (~0.2 s a data set, on one BLAS thread).
    In this process, not a pool: the suite runs its files in parallel already, and a
    forked pool in a worker that has imported TensorFlow may hang."""
    with threadpool_limits(1):
        return {
            truth: np.asarray(
                [dataset_scores(truth, N, "mvn", seed, Z_DIM) for seed in range(DATASETS)]
            )
            for truth in ("gaussian", "t3")
        }


def _covered(per_split: np.ndarray, interval: Callable[[np.ndarray], tuple[float, float]]) -> int:
    means = per_split.mean(axis=1)
    truths = (means.sum() - means) / (len(means) - 1)
    return sum(lo <= t <= hi for (lo, hi), t in zip(map(interval, per_split), truths, strict=True))


@pytest.mark.parametrize("truth", ["gaussian", "t3"])
def test_the_score_interval_covers_the_expected_score(scores, truth):
    """At least the 0.1% quantile of binomial(80, 0.95) (69) of the data sets' intervals
    hold the expected score (77 and 78 of 80); the same band catches an interval clearly
    too narrow, 1.96 standard errors s / sqrt(3) (66 and 67). The naive t on s / sqrt(3)
    (74 and 76) passes here: it under-covers only with heavy tails at n >= 360, which takes
    the benchmark's hundreds of data sets to see (and test_generator_space's model of
    correlated halvings)."""
    floor = stats.binom.ppf(0.001, DATASETS, 0.95)
    assert _covered(scores[truth], score_interval) >= floor

    def too_narrow(x: np.ndarray) -> tuple[float, float]:
        half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
        return x.mean() - half, x.mean() + half

    assert _covered(scores[truth], too_narrow) < floor
