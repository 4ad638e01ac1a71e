"""The interval of the best b against the optimum of the true windows (issue 26).

Real latents of 64 independent Gaussian components (every true window equal), windows and
radii estimated from n = 400 of them, k putting the common window edge 2% below the b the
radii alone prefer: the true optimum sits on the hit cliff, where the plug-in optimum is
biased low by ~10 of its own standard deviations and the Monte Carlo plateau alone never
covers. 64 components instead of the benchmark's 256 keep it fast; the benchmark
(benchmarks/bench_best_b.py) measures 256 and three shapes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from aelatent.core.best_b_interval import best_b_interval
from aelatent.core.objective import RealSource, UniformSearchObjective, radius_band
from aelatent.core.radius import radii
from aelatent.core.windows import CENTRAL_TAIL, estimate_windows

D = 64
N_REAL = 400
B_RANGE = (0.05, 12.0)
HW = 2.0 * float(norm.isf(CENTRAL_TAIL))  # a standard normal's central interval (= its FWHM)


def truth(k: float, true_radii: np.ndarray) -> float:
    objective = UniformSearchObjective(
        np.zeros(D), np.full(D, HW), k, radius_band(true_radii), 100_000, 99,
        kind="typical", real_radii=true_radii,
    )  # fmt: skip
    best = objective.best_in(1.0, 3.0, n_points=200)  # b is near 1.7 in any dimension
    assert best is not None
    return best.b


def search(x: np.ndarray, k: float, seed: int, n_samples: int = 1000) -> UniformSearchObjective:
    windows, r = estimate_windows(x), radii(x)
    return UniformSearchObjective(
        windows.mu, windows.hw, k, radius_band(r), n_samples, seed, kind="typical",
        real_radii=r, source=RealSource(x, np.empty(0), "central", (1.0, 99.0)),
    )  # fmt: skip


def test_the_interval_covers_the_true_optimum_on_the_hit_cliff():
    """40 seeds; the target is >= 93% (issue 26), the construction aims at 95%: fail below
    the 1% quantile of Binomial(40, 0.95) (34 of 40). The plateau alone must fail there."""
    true_radii = radii(np.random.default_rng(7).standard_normal((100_000, D)))
    k = 0.98 * truth(6.0, true_radii) / HW
    b_true = truth(k, true_radii)
    repeats, covered, plateau = 40, 0, 0
    for seed in range(repeats):
        x = np.random.default_rng([seed, 26]).standard_normal((N_REAL, D)).astype(np.float32)
        objective = search(x, k, seed)
        best = objective.best_in(*B_RANGE)
        assert best is not None
        found = best_b_interval(objective, best, *B_RANGE)
        covered += found.contains(b_true)
        plateau += best.contains(b_true)
        assert found.lo <= found.mc_lo <= found.b <= found.mc_hi <= found.hi
    assert covered >= binom.ppf(0.01, repeats, 0.95)
    assert plateau <= binom.ppf(0.99, repeats, 0.5)  # the old interval: the reason for this


def test_argmax_agrees_with_the_exact_sweep():
    x = np.random.default_rng(3).standard_normal((N_REAL, D)).astype(np.float32)
    for k in (0.7, 2.0):
        objective = search(x, k, seed=1)
        best = objective.best_in(*B_RANGE)
        assert best is not None
        for around in (None, best.b, 1.2 * best.b):
            b = objective.argmax(*B_RANGE, around=around)
            assert b is not None and best.lo <= b <= best.hi, (k, around)


def test_subsampled_replicates_and_the_metrics():
    """n > max_rows: replicates draw m rows and the spread is scaled to n; the metrics name
    the interval, the plateau and the bootstrap's parts."""
    x = np.random.default_rng(4).standard_normal((2000, D)).astype(np.float32)
    objective = search(x, 2.0, seed=2)
    best = objective.best_in(*B_RANGE)
    assert best is not None
    found = best_b_interval(objective, best, *B_RANGE, replicates=10, max_rows=500)
    assert found.rows == 500 and found.n_failed == 0 and found.replicates.size == 10
    assert found.lo <= best.lo <= best.hi <= found.hi
    assert math.isfinite(found.spread) and found.spread > 0
    metrics = found.metrics("b")
    assert metrics["best_b_lo"] == found.lo and metrics["best_b_mc_hi"] == best.hi
    assert metrics["best_b_boot_rows"] == 500


def test_needs_real_latents():
    x = np.random.default_rng(5).standard_normal((N_REAL, D)).astype(np.float32)
    windows, r = estimate_windows(x), radii(x)
    objective = UniformSearchObjective(
        windows.mu, windows.hw, 2.0, radius_band(r), 500, 1, kind="typical", real_radii=r
    )
    best = objective.best_in(*B_RANGE)
    assert best is not None
    with pytest.raises(ValueError, match="source"):
        best_b_interval(objective, best, *B_RANGE)
