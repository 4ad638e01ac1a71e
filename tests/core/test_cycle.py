"""The cycle test: its formula, its false-positive rate and its interval's coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aelatent.core.cycle import CycleCheck, cycle_errors, cycle_test


def test_cycle_errors_are_relative_distances():
    z = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    back = np.array([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(cycle_errors(z, back), [0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="equal"):
        cycle_errors(z, back[:2])


def test_alike_errors_are_rejected_at_the_nominal_rate_at_most():
    """Both sets from one skewed (log-normal) law: over 400 pairs the rejections at 0.05
    are binomial(400, <= 0.05); they must stay under its 99.9% quantile (32)."""
    rng = np.random.default_rng(0)
    rejected = sum(
        cycle_test(rng.lognormal(0, 0.5, 40), rng.lognormal(0, 0.5, 120), seed=i).p_value < 0.05
        for i in range(400)
    )
    assert rejected <= stats.binom.ppf(0.999, 400, 0.05)


def test_the_median_ratio_interval_covers_the_truth():
    """Generated errors 1.5 times the reference's (log-normal, so the ratio of medians is
    exactly 1.5): the 95% percentile-bootstrap interval covers it in a binomial band over 200
    data sets (n = 60 and 200): at least the 0.1% quantile of binomial(200, 0.93); the
    bootstrap of a median at these sizes is known to be near, not at, nominal."""
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(200):
        result = cycle_test(rng.lognormal(0, 0.4, 60), 1.5 * rng.lognormal(0, 0.4, 200), seed=i)
        covered += result.lo <= 1.5 <= result.hi
    assert covered >= stats.binom.ppf(0.001, 200, 0.93), covered


def test_larger_errors_are_detected_and_the_check_runs_its_cycle():
    rng = np.random.default_rng(2)
    reference = np.abs(rng.normal(0.2, 0.05, 40))
    check = CycleCheck(lambda z: z * 0.5, reference, "heldout")  # error 0.5 for every z
    result = check.test(rng.standard_normal((100, 8)))
    assert result.statistic == pytest.approx(0.5 / np.median(reference))
    assert result.p_value < 1e-10 and result.extra["auc"] == 1.0
    with pytest.raises(ValueError, match="at least 5 errors"):
        cycle_test(reference[:3], reference)
