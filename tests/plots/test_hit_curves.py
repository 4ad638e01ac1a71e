"""The hit-rate curves evaluate can log, from the same objects evaluate has at hand."""

from __future__ import annotations

import math

import numpy as np

from aelatent.core.hit_uncertainty import heldout_ceiling, hit_intervals
from aelatent.core.hits import hit_grid
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import estimate_windows
from aelatent.plots.evaluation import ceiling_rates, grid_rate_curves, save_hit_rate_curves


def test_curves_from_a_grid_its_intervals_and_the_ceiling(tmp_path):
    rng = np.random.default_rng(0)
    latents = rng.normal(0.0, 0.5, size=(600, 4)).astype(np.float32)
    windows = estimate_windows(latents[:400], "fit")
    sampler = UniformSampler(1.0, 4)
    grid = hit_grid(sampler, [0.5, 1.0, 2.0], [1.0, 2.0], windows.mu, windows.hw, 4000, rng)
    intervals = hit_intervals(grid, sampler, windows)
    ceiling = heldout_ceiling(latents[400:], windows, np.asarray(grid.ks))

    curves = grid_rate_curves(grid, intervals)
    assert sorted(curves) == [1.0, 2.0] and sorted(curves[2.0]) == [0.5, 1.0, 2.0]
    rate, lo, hi = curves[1.0][1.0]
    assert rate == grid.hit_rate[1, 0] and lo <= rate <= hi
    limits = ceiling_rates(ceiling)
    assert limits[2.0][0] == ceiling.rate[1] and limits[2.0][1] <= limits[2.0][0]
    assert all(math.isnan(p[1]) for p in grid_rate_curves(grid)[1.0].values())

    path = save_hit_rate_curves(
        curves,
        limits,
        tmp_path / "hits" / "rate_curves_uniform.png",
        "b (box half-width)",
        title="uniform",
    )
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    bare = save_hit_rate_curves(
        {1.0: {1.0: (0.0, math.nan, math.nan)}}, None, tmp_path / "bare.png"
    )
    assert bare.is_file()
