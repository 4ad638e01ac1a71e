"""The decoder's own judgement: does ``E(D(z))`` come back to ``z``?

A latent the encoder produced from a face decodes to a face that encodes back close to
itself; a vector off the data's region decodes to something the encoder never saw (a grey
blob), whose code lies elsewhere. The *cycle error* ``||E(D(z)) - z|| / ||z||`` of generated
vectors is compared with that of real latents (which also pass through ``D`` then ``E``)
by a one-sided Mann-Whitney test: the statistic is ``P(error of a generated vector >
error of a real one)`` (0.5 when the two are alike, 1 when every generated error is larger),
with a 95% interval from its DeLong/Hanley-McNeil standard error.

The core stays free of TensorFlow: the cycle itself is a function the job passes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.stats import mannwhitneyu, norm

from aelatent.core.two_sample import TwoSampleResult

Cycle = Callable[[np.ndarray], np.ndarray]
"""``z [n, d] -> E(D(z)) [n, d]``: the train run's decoder, then its encoder."""


def cycle_errors(z: np.ndarray, cycled: np.ndarray) -> np.ndarray:
    """``||cycled - z|| / ||z||`` per row (0 for a zero vector that comes back as zero)."""
    z = np.asarray(z, dtype=np.float64)
    cycled = np.asarray(cycled, dtype=np.float64)
    if z.shape != cycled.shape or z.ndim != 2:
        raise ValueError(
            f"z and its cycle must be equal [n, d] arrays, got {z.shape}, {cycled.shape}"
        )
    norm_z = np.linalg.norm(z, axis=1)
    diff = np.linalg.norm(cycled - z, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(norm_z > 0, diff / norm_z, np.where(diff > 0, np.inf, 0.0))
    return out


def cycle_test(real_errors: np.ndarray, generated_errors: np.ndarray) -> TwoSampleResult:
    """Are generated vectors' cycle errors larger than real latents'? (one-sided)."""
    real = np.asarray(real_errors, dtype=np.float64).ravel()
    gen = np.asarray(generated_errors, dtype=np.float64).ravel()
    if real.size < 2 or gen.size < 2:
        raise ValueError(
            f"the cycle test needs at least 2 errors per set, got {real.size} and {gen.size}"
        )
    result = mannwhitneyu(gen, real, alternative="greater")
    auc = float(result.statistic) / (gen.size * real.size)
    se = _hanley_mcneil_se(auc, gen.size, real.size)
    z = float(norm.ppf(0.975))
    return TwoSampleResult(
        test="cycle",
        statistic=auc,
        lo=max(0.0, auc - z * se),
        hi=min(1.0, auc + z * se),
        p_value=float(result.pvalue),
        n_real=int(real.size),
        n_generated=int(gen.size),
        extra={
            "median_error_real": float(np.median(real)),
            "median_error_generated": float(np.median(gen)),
        },
    )


def _hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982), floored at the one of AUC = 0.5 +- 1/n
    so that an AUC of exactly 0 or 1 does not claim zero uncertainty."""
    a = min(max(auc, 1.0 / (n_pos + n_neg)), 1.0 - 1.0 / (n_pos + n_neg))
    q1 = a / (2 - a)
    q2 = 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))
