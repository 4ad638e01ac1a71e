"""Radii of the real latents: how far from the origin the encoder puts the images.

The study's second half: a generator must match not only the per-component box but also
the length |z| of real latent vectors. This module describes the real radii; the theory of
the uniform generator's radii lives in :mod:`aelatent.core.radius_theory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aelatent.core.histograms import row_blocks

PERCENTILES = (1, 5, 50, 95, 99)
DEFAULT_N_BINS = 100


@dataclass(frozen=True)
class RadiusStats:
    """Number distribution and summary of the Euclidean lengths of the latent vectors."""

    counts: np.ndarray  # int64 [n_bins]
    edges: np.ndarray  # float64 [n_bins + 1]
    mean: float
    std: float  # ddof=1
    minimum: float
    maximum: float
    percentiles: dict[int, float]  # {1: p1, 5: p5, 50: p50, 95: p95, 99: p99}

    def metrics(self) -> dict[str, float]:
        """``radius_mean``, ``radius_std``, ``radius_min``, ``radius_max``, ``radius_p<q>``."""
        values = {
            "radius_mean": self.mean,
            "radius_std": self.std,
            "radius_min": self.minimum,
            "radius_max": self.maximum,
        }
        values.update({f"radius_p{q}": value for q, value in self.percentiles.items()})
        return values


def radii(latents: np.ndarray) -> np.ndarray:
    """float64 ``[n]`` Euclidean length of every latent vector (float64 sums, blockwise)."""
    out = np.empty(latents.shape[0])
    start = 0
    for block in row_blocks(latents):
        out[start : start + len(block)] = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        start += len(block)
    return np.sqrt(out, out=out)


def radius_stats(lengths: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> RadiusStats:
    """Histogram over [min, max] and summary of precomputed radii (see :func:`radii`)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.size == 0:
        raise ValueError("no radii")
    low, high = float(lengths.min()), float(lengths.max())
    if high <= low:  # all equal: one visible bin around the value
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(lengths, bins=n_bins, range=(low, high))
    values = np.percentile(lengths, PERCENTILES)
    return RadiusStats(
        counts=counts.astype(np.int64),
        edges=edges.astype(np.float64),
        mean=float(lengths.mean()),
        std=float(lengths.std(ddof=1)) if lengths.size > 1 else 0.0,
        minimum=float(lengths.min()),
        maximum=float(lengths.max()),
        percentiles={q: float(v) for q, v in zip(PERCENTILES, values, strict=True)},
    )
