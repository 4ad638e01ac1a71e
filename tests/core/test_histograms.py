"""Per-component histograms against an independent count (np.histogram, column by column)."""

from __future__ import annotations

import numpy as np
import pytest

from aelatent.core.histograms import (
    component_histograms,
    count_per_component,
    symmetric_range,
)

RNG_SEED = 20240601


def _latents(n: int = 3001, z_dim: int = 37) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    scales = rng.uniform(0.2, 3.0, z_dim)
    shifts = rng.uniform(-2.0, 2.0, z_dim)
    return (rng.standard_normal((n, z_dim)) * scales + shifts).astype(np.float32)


def test_counts_equal_np_histogram_per_component():
    latents = _latents()  # 3001 x 37: several row blocks, the last one partial
    hist = component_histograms(latents)
    assert hist.counts.dtype == np.int64 and hist.counts.shape == (37, 100)
    assert hist.edges.dtype == np.float64 and hist.edges.shape == (101,)
    for j in range(latents.shape[1]):
        expected, _ = np.histogram(latents[:, j], bins=hist.edges)
        np.testing.assert_array_equal(hist.counts[j], expected)
    np.testing.assert_array_equal(hist.counts.sum(axis=1), latents.shape[0])


@pytest.mark.parametrize(("half_range", "n_bins"), [(3.0, 100), (12.0, 100), (2.5, 33), (0.5, 7)])
def test_values_on_and_next_to_edges_land_where_np_histogram_puts_them(half_range, n_bins):
    edges = np.linspace(-half_range, half_range, n_bins + 1)
    values = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    values = np.clip(values, -half_range, half_range)
    latents = np.stack([values, values[::-1], np.roll(values, 5)], axis=1)
    hist = component_histograms(latents, n_bins=n_bins)
    assert hist.half_range == half_range
    for j in range(3):
        expected, _ = np.histogram(latents[:, j], bins=hist.edges)
        np.testing.assert_array_equal(hist.counts[j], expected)


def test_range_is_the_smallest_half_step_covering_all_values():
    assert symmetric_range(-11.3, 4.0) == 11.5
    assert symmetric_range(-3.0, 12.0) == 12.0
    assert symmetric_range(0.0, 0.0) == 0.5
    assert symmetric_range(-0.1, 0.2, step=0.25) == 0.25
    latents = np.array([[-1.0, 0.2], [12.0, -0.3]], dtype=np.float32)
    hist = component_histograms(latents)
    assert hist.half_range == 12.0
    assert hist.counts[0, -1] == 1  # the value on the outer edge is counted, in the last bin
    np.testing.assert_array_equal(hist.counts.sum(axis=1), [2, 2])


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        symmetric_range(-np.inf, 1.0)


def test_per_component_edges_and_values_outside_are_not_counted():
    rng = np.random.default_rng(RNG_SEED)
    latents = rng.uniform(-3.0, 6.0, size=(5000, 3))
    lo = np.array([-1.0, 0.0, 2.0])
    edges = lo[:, None] + np.linspace(0.0, 3.0, 11)[None, :]
    counts = count_per_component(latents, edges)
    for j in range(3):
        expected, _ = np.histogram(latents[:, j], bins=edges[j])
        np.testing.assert_array_equal(counts[j], expected)
    assert counts.sum() < latents.size  # some values were outside


def test_inexact_counting_differs_at_most_by_edge_values():
    latents = _latents(2000, 5)
    hist = component_histograms(latents)
    rough = count_per_component(latents, hist.edges, exact=False)
    np.testing.assert_array_equal(rough.sum(axis=1), hist.counts.sum(axis=1))
    assert np.abs(rough - hist.counts).sum() <= 2  # random floats almost never sit on an edge
