"""The copying ratio's 95% interval covers the true ratio of median distances, fit set fixed.

A reduced ``benchmarks/bench_copying_ratio.py``: per case 2 fixed fit sets, each with its
true ratio (100,000 vectors of each law) and ``REPS`` independent draws of (test,
generated) scored by :func:`aelatent.core.generator_space.copying_test`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_copying_ratio import fit_set_cell

FIT_SETS = 2
REPS = 150
TRUTH_SIZE = 100_000
CASES = [  # (truth, generator, D, n): one Gaussian, two not
    ("gaussian", "same", 8, 40),
    ("lognormal", "wider", 64, 40),
    ("t3", "copier", 8, 200),
]


@pytest.mark.parametrize(("truth", "generator", "z_dim", "n"), CASES)
def test_the_copying_interval_covers_the_true_ratio(truth, generator, z_dim, n):
    """At least the 0.1% quantile of binomial(300, 0.95) (272) of the intervals hold their fit
    set's truth (283, 287 and 286 of 300 when written); the same floor catches an interval
    clearly too narrow, the code's shrunk to half its width about the estimate on the log
    scale (203, 218 and 207)."""
    with threadpool_limits(1):
        sets = [
            fit_set_cell((truth, generator, z_dim, n, i, REPS, TRUTH_SIZE, ()))
            for i in range(FIT_SETS)
        ]
    floor = stats.binom.ppf(0.001, FIT_SETS * REPS, 0.95)

    def covered(shrink: float) -> int:
        hits = 0
        for s in sets:
            lo, hi = np.log(np.asarray(s["code"])).T
            mid = np.log(np.asarray(s["estimates"]))
            lo, hi = mid + shrink * (lo - mid), mid + shrink * (hi - mid)
            t = np.log(s["truth_ratio"])
            hits += int(np.sum((lo <= t) & (t <= hi)))
        return hits

    assert covered(1.0) >= floor
    assert covered(0.5) < floor
