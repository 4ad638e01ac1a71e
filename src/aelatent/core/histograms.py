"""Number distributions per latent component: N one-dimensional histograms on shared bins.

The study counts, for every component, how many latent vectors fall in each of ~100 equal
intervals of one symmetric value range that covers all values (CelebA: [-12, 12]). Shared
edges make the components comparable at a glance and let the counts be stored as one
``int64 [z_dim, n_bins]`` array.

Counting is one ``np.bincount`` per block of rows over all components at once (component j's
bins are offset by ``j * n_bins``), so CelebA-scale latents (202,599 x 256) take a fraction of
a second with bounded extra memory. Bin membership follows ``np.histogram`` exactly: bin i is
``[edges[i], edges[i + 1])``, the last bin also holds its right edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_N_BINS = 100
RANGE_STEP = 0.5
# Values per block of rows: the float64/intp temporaries (512 KiB each) stay in cache.
BLOCK_VALUES = 1 << 16
# In bin units; the rounding error of (x - lo) * scale is ~1e-13 for any sane range.
EDGE_TOLERANCE = 1e-7


@dataclass(frozen=True)
class ComponentHistograms:
    """Counts per component on shared, equal bins over ``[-half_range, half_range]``."""

    counts: np.ndarray  # int64 [z_dim, n_bins]
    edges: np.ndarray  # float64 [n_bins + 1]

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[1])

    @property
    def half_range(self) -> float:
        return float(self.edges[-1])

    @property
    def width(self) -> float:
        return float(self.edges[1] - self.edges[0])

    @property
    def centres(self) -> np.ndarray:
        centres: np.ndarray = 0.5 * (self.edges[:-1] + self.edges[1:])
        return centres


def row_blocks(latents: np.ndarray, block_values: int = BLOCK_VALUES) -> Iterator[np.ndarray]:
    """Consecutive blocks of rows holding about ``block_values`` values each (views, no copy)."""
    rows = max(1, block_values // max(1, latents.shape[1]))
    for start in range(0, latents.shape[0], rows):
        yield latents[start : start + rows]


def symmetric_range(value_min: float, value_max: float, step: float = RANGE_STEP) -> float:
    """Smallest multiple of ``step`` (> 0) with ``[-r, r]`` covering ``[value_min, value_max]``."""
    largest = max(abs(float(value_min)), abs(float(value_max)))
    if not math.isfinite(largest):
        raise ValueError(f"latent values must be finite, got range [{value_min}, {value_max}]")
    return max(step, math.ceil(largest / step) * step)


def count_per_component(latents: np.ndarray, edges: np.ndarray, exact: bool = True) -> np.ndarray:
    """``int64 [z_dim, n_bins]`` counts of each column of ``latents`` in equal bins.

    ``edges`` is either one shared ``[n_bins + 1]`` array or one row of equal-width edges per
    component, ``[z_dim, n_bins + 1]``. Values outside a component's edges are not counted
    (as in ``np.histogram``). ``exact=False`` skips the check of values within rounding of
    an edge (such a value may land in the neighbouring bin), enough for fit statistics.
    """
    z_dim = latents.shape[1]
    edges = np.asarray(edges, dtype=np.float64)
    n_bins = edges.shape[-1] - 1
    if n_bins < 1:
        raise ValueError("need at least two edges")
    lo = edges[..., 0]
    hi = edges[..., -1]
    scale = n_bins / (hi - lo)
    # Component j's bins start at j * (n_bins + 1); the extra bin per component collects
    # values outside the range and is dropped at the end.
    offset = np.arange(z_dim, dtype=np.intp) * (n_bins + 1)
    total = np.zeros(z_dim * (n_bins + 1), dtype=np.int64)
    for block in row_blocks(latents):
        x = block.astype(np.float64)
        position = (x - lo) * scale
        near_edge = (np.abs(position - np.rint(position)) < EDGE_TOLERANCE) if exact else None
        np.clip(position, 0, n_bins - 1, out=position)
        index = position.astype(np.intp)
        if near_edge is not None:  # exact
            _snap_to_edges(x, index, edges, np.flatnonzero(near_edge))
        if (x.min(axis=0) < lo).any() or (x.max(axis=0) > hi).any():
            index[(x < lo) | (x > hi)] = n_bins
        index += offset
        total += np.bincount(index.ravel(), minlength=total.size)
    return total.reshape(z_dim, n_bins + 1)[:, :n_bins].copy()


def _snap_to_edges(
    x: np.ndarray, index: np.ndarray, edges: np.ndarray, candidates: np.ndarray
) -> None:
    """Put values that sit within rounding of an edge into the bin ``np.histogram`` uses.

    ``(x - lo) * scale`` can be one bin off only next to an edge, so only those few values
    (``candidates``, flat positions in ``x``) are compared against the true edges.
    """
    if candidates.size == 0:
        return
    n_bins = edges.shape[-1] - 1
    value = x.ravel()[candidates]
    bins = index.ravel()[candidates]
    row_edges = edges[candidates % x.shape[1]] if edges.ndim == 2 else edges[None, :]
    rows = np.arange(len(candidates)) if edges.ndim == 2 else np.zeros(len(candidates), np.intp)
    bins -= value < row_edges[rows, bins]
    bins += (value >= row_edges[rows, bins + 1]) & (bins != n_bins - 1)
    np.clip(bins, 0, n_bins - 1, out=bins)
    index.ravel()[candidates] = bins


def component_histograms(
    latents: np.ndarray,
    n_bins: int = DEFAULT_N_BINS,
    half_range: float | None = None,
    step: float = RANGE_STEP,
) -> ComponentHistograms:
    """Histograms of every component on ``n_bins`` equal bins over ``[-r, r]``.

    ``r`` defaults to the smallest multiple of ``step`` covering all values, so every value
    is counted and the range reads as a round number (the study's [-12, 12]).
    """
    if latents.ndim != 2:
        raise ValueError(f"latents must be [n, z_dim], got shape {latents.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if half_range is None:
        half_range = symmetric_range(latents.min(), latents.max(), step)
    edges = np.linspace(-half_range, half_range, n_bins + 1)
    return ComponentHistograms(count_per_component(latents, edges), edges)
