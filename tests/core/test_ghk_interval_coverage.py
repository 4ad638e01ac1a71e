"""The 95% interval of a GHK sampler's log10 P(hit) covers an exact truth (mvn).

The windows are estimated from Gaussian latents whose population windows are known, the
sampler is a fixed equicorrelated normal whose box probability is an exact 1-D integral;
over independent data sets (each its own GHK seed and window bootstrap) the count of
intervals that cover is binomial, so its pass mark is a binomial bound, not a tuned number
(the full measurement: benchmarks/bench_ghk_intervals.py).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from aelatent.core.hit_uncertainty import hit_intervals
from aelatent.core.hits import hit_grid
from aelatent.core.samplers import LN10, MVNSampler, log_normal_interval
from aelatent.core.windows import CENTRAL_TAIL, estimate_windows

D, N, DATA_SETS = 16, 200, 200
RHO = 0.5
SD = 0.5  # the sampler's marginal sd
HW = 1.2  # the population windows' width (central 76.1% interval of the latents)
CENTRES = np.linspace(-0.5, 0.5, D)
SCALE, KS = 1.0, (0.5, 1.0)  # log10 P -2.12 and -0.20
# a cell fails only if its coverage count is below the one-sided 99.9% binomial bound of a
# 95% interval: a correct interval fails either cell with probability <= 0.2%
LEAST = int(stats.binom.ppf(0.001, DATA_SETS, 0.95))


def exact_log10(k: float) -> float:
    """log10 P of the box ``CENTRES +- k HW`` under ``N(0, SD^2 ((1 - RHO) I + RHO 11^T))``:
    given the common factor the components are independent (trapezoid over the factor)."""
    t = np.linspace(-30, 30, 6001)
    load, sd = SD * math.sqrt(RHO), SD * math.sqrt(1 - RHO)
    shift = t[:, None] * load
    lo, hi = CENTRES - k * HW, CENTRES + k * HW
    inner = log_normal_interval((lo - shift) / sd, (hi - shift) / sd).sum(axis=1)
    return float(logsumexp(inner + stats.norm.logpdf(t), b=t[1] - t[0])) / LN10


def covered_counts(narrows: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """``[len(narrows), len(KS)]``: per half-width factor and k, how many of the data sets'
    intervals (their half-widths times the factor) cover."""
    cov = SD**2 * ((1 - RHO) * np.eye(D) + RHO * np.ones((D, D)))
    truth = np.array([exact_log10(k) for k in KS])
    width = stats.norm.ppf(1 - CENTRAL_TAIL) - stats.norm.ppf(CENTRAL_TAIL)
    factors = np.asarray(narrows, dtype=np.float64)[:, None]
    counts = np.zeros((len(narrows), len(KS)), dtype=np.int64)
    for rep in range(DATA_SETS):
        rng = np.random.default_rng([41, rep])
        windows = estimate_windows(CENTRES + rng.standard_normal((N, D)) * (HW / width))
        sampler = MVNSampler(np.zeros(D), cov, ghk_seed=rep)
        grid = hit_grid(sampler, [SCALE], KS, windows.mu, windows.hw, 1, rng)
        out = hit_intervals(grid, sampler, windows, seed=rep)
        assert np.all(out.log10_hi < 0)  # not cut at 0: (lo + hi) / 2 is the centre
        centre = 0.5 * (out.log10_lo + out.log10_hi)[0]
        half = 0.5 * (out.log10_hi - out.log10_lo)[0] * factors
        counts += np.abs(truth - centre) <= half
    return counts


def test_the_mvn_interval_covers_an_exact_log10_p_hit():
    assert exact_log10(KS[0]) < -2  # a small probability, not only a typical one
    counts, narrowed = covered_counts((1.0, 0.6))
    assert np.all(counts >= LEAST), (counts, LEAST, DATA_SETS)
    assert np.any(narrowed < LEAST), narrowed  # the band catches an interval 40% too narrow
