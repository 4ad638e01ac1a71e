"""The decoder's own judgement: does ``E(D(z))`` come back to ``z``?

A latent the encoder produced from a face decodes to a face that encodes back close to
itself; a vector off the data's region decodes to something the encoder never saw (a grey
blob), whose code lies elsewhere. The *cycle error* is ``||E(D(z)) - z|| / ||z||``.

Its reference is the held-out images' latents: real faces the network was not trained on.
Training latents are a stricter reference than any generator can meet: the autoencoder was
fitted to exactly those images, so they sit near fixed points of the cycle (on the built-in
faces after 100 epochs the median error is 0.09 for training latents, 0.21 for held-out
ones, 0.30 for mvn vectors and 1.0 to 1.5 for uniform ones). The statistic is the ratio of
the medians (generated / reference: 1 when alike) with a bootstrap interval; the p-value is
the one-sided Mann-Whitney test of "generated errors are larger".

The core stays free of TensorFlow: the cycle itself is a function the job passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, mannwhitneyu

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


@dataclass(frozen=True)
class CycleCheck:
    """The cycle (the job's decoder then encoder) and the errors of the reference set."""

    cycle: Cycle
    reference: np.ndarray  # cycle errors of the reference latents
    reference_name: str  # "heldout" (the default) or "training"

    def test(self, z: np.ndarray) -> TwoSampleResult:
        """The cycle test of vectors ``z`` against the reference."""
        return cycle_test(self.reference, cycle_errors(z, self.cycle(z)))


def cycle_test(
    reference_errors: np.ndarray, generated_errors: np.ndarray, *, seed: int = 0
) -> TwoSampleResult:
    """Are the generated vectors' cycle errors larger than the reference's? (one-sided)."""
    ref = np.asarray(reference_errors, dtype=np.float64).ravel()
    gen = np.asarray(generated_errors, dtype=np.float64).ravel()
    if ref.size < MIN_ERRORS or gen.size < MIN_ERRORS:
        raise ValueError(
            f"the cycle test needs at least {MIN_ERRORS} errors per set, got {ref.size} "
            f"(reference) and {gen.size}"
        )
    result = mannwhitneyu(gen, ref, alternative="greater")
    ratio = float(np.median(gen) / np.median(ref))
    interval = bootstrap(
        (gen, ref),
        _median_ratio,
        n_resamples=999,
        confidence_level=0.95,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return TwoSampleResult(
        test="cycle",
        statistic=ratio,
        lo=float(interval.low),
        hi=float(interval.high),
        p_value=float(result.pvalue),
        n_real=int(ref.size),
        n_generated=int(gen.size),
        extra={
            "median_error_reference": float(np.median(ref)),
            "median_error_generated": float(np.median(gen)),
            "auc": float(result.statistic) / (gen.size * ref.size),
        },
    )


MIN_ERRORS = 5


def _median_ratio(gen: np.ndarray, ref: np.ndarray, axis: int = -1) -> np.ndarray:
    out: np.ndarray = np.median(gen, axis=axis) / np.median(ref, axis=axis)
    return out
