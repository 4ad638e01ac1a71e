"""What an evaluation reports, as plain values: the metric names and values of a hit grid,
the held-out ceiling and method 1 (the grid), the hit-rate and miss-count CSVs, and the
one-line summaries printed as each sampler finishes."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aelatent.core.hit_uncertainty import (
    HeldoutCeiling,
    HitIntervals,
    grid_log10_inside,
)
from aelatent.core.hits import HitGrid
from aelatent.core.radius_theory import (
    RadiusMoments,
)
from aelatent.core.sampler_registry import spec_of
from aelatent.core.samplers import (
    grid_log10_point_count,
)
from aelatent.core.windows import (
    Windows,
)
from aelatent.schema import (
    HIT_RATE_COLUMNS,
    ceiling_metric,
    grid_inside_metric,
    grid_metric,
    grid_points_metric,
)


def grid_metrics(
    grid: HitGrid, theory: Sequence[RadiusMoments], intervals: HitIntervals
) -> dict[str, float]:
    """Every figure of one sampler's grid, each with its interval beside it."""
    metrics: dict[str, float] = {}
    for j, b in enumerate(grid.scales):
        for i, k in enumerate(grid.ks):
            values = {
                "hit_rate": grid.hit_rate[j, i],
                "hit_rate_lo": intervals.hit_lo[j, i],
                "hit_rate_hi": intervals.hit_hi[j, i],
                "hits": grid.hits[j, i],
                "log10_p_hit": grid.log10_p_hit[j, i],
                "log10_p_hit_lo": intervals.log10_lo[j, i],
                "log10_p_hit_hi": intervals.log10_hi[j, i],
                "log10_p_hit_se": intervals.log10_se[j, i],
            }
            if spec_of(grid.sampler).probability == "ghk_estimate":
                values["ghk_rel_se"] = intervals.ghk_rel_se[j, i]
            for kind, value in values.items():
                metrics[grid_metric(kind, grid.sampler, b, k)] = float(value)
        metrics[grid_metric("radius_mean", grid.sampler, b)] = float(grid.radius_mean[j])
        metrics[grid_metric("radius_std", grid.sampler, b)] = float(grid.radius_std[j])
        metrics[grid_metric("radius_mean_theory", grid.sampler, b)] = theory[j].mean
        metrics[grid_metric("radius_std_theory", grid.sampler, b)] = theory[j].std
    return metrics


def ceiling_metrics(ceiling: HeldoutCeiling) -> dict[str, float]:
    """``hit_rate/heldout/k<k>`` with its interval: what real faces reach."""
    metrics: dict[str, float] = {}
    for i, k in enumerate(ceiling.ks):
        metrics[ceiling_metric("hit_rate", k)] = float(ceiling.rate[i])
        metrics[ceiling_metric("hit_rate_lo", k)] = float(ceiling.lo[i])
        metrics[ceiling_metric("hit_rate_hi", k)] = float(ceiling.hi[i])
        metrics[ceiling_metric("hits", k)] = float(ceiling.hits[i])
    metrics["n_heldout"] = float(ceiling.n)
    return metrics


def grid_method_metrics(
    windows: Windows, bs: Sequence[float], ks: Sequence[float], spacing: float
) -> dict[str, float]:
    """Method 1: log10 of the grid's points over [-b, b]^d and of those inside the windows."""
    metrics: dict[str, float] = {}
    for b in bs:
        metrics[grid_points_metric(b)] = grid_log10_point_count(b, spacing, windows.z_dim)
        for k in ks:
            metrics[grid_inside_metric(b, k)] = grid_log10_inside(windows, b, k, spacing)
    return metrics


def write_hit_rates(
    path: Path,
    grids: Sequence[HitGrid],
    intervals: Sequence[HitIntervals],
    ceiling: HeldoutCeiling,
    estimator: str,
) -> Path:
    """One row per (sampler, b, k) with intervals, and the held-out ceiling per k."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HIT_RATE_COLUMNS)
        for grid, ci in zip(grids, intervals, strict=True):
            method = spec_of(grid.sampler).probability
            for j, b in enumerate(grid.scales):
                for i, k in enumerate(grid.ks):
                    numbers = (
                        grid.hit_rate,
                        ci.hit_lo,
                        ci.hit_hi,
                        grid.log10_p_hit,
                        ci.log10_lo,
                        ci.log10_hi,
                        ci.log10_se,
                    )
                    writer.writerow(
                        [
                            grid.sampler,
                            f"{b:g}",
                            f"{k:g}",
                            int(grid.hits[j, i]),
                            grid.n,
                            *(repr(float(a[j, i])) for a in numbers),
                            method,
                            estimator,
                        ]
                    )
        for i, k in enumerate(ceiling.ks):
            writer.writerow(
                [
                    "heldout",
                    "",
                    f"{k:g}",
                    int(ceiling.hits[i]),
                    ceiling.n,
                    repr(float(ceiling.rate[i])),
                    repr(float(ceiling.lo[i])),
                    repr(float(ceiling.hi[i])),
                    "",
                    "",
                    "",
                    "",
                    "real",
                    estimator,
                ]
            )
    return path


def write_miss_counts(path: Path, grid: HitGrid) -> Path:
    """Long format: how many vectors miss exactly ``n_missing`` components, per (b, k)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sampler", "b", "k", "n_missing", "n_vectors"])
        for j, b in enumerate(grid.scales):
            for m, i in enumerate(grid.miss_k_index):
                counts = grid.miss_counts[j, m]
                for n_missing in np.flatnonzero(counts):
                    writer.writerow(
                        [
                            grid.sampler,
                            f"{b:g}",
                            f"{grid.ks[i]:g}",
                            int(n_missing),
                            int(counts[n_missing]),
                        ]
                    )
    return path


def ceiling_summary(ceiling: HeldoutCeiling, estimator: str) -> str:
    rates = ", ".join(
        f"k={k:g}: {r:.3f} [{lo:.3f}, {hi:.3f}]"
        for k, r, lo, hi in zip(ceiling.ks, ceiling.rate, ceiling.lo, ceiling.hi, strict=True)
    )
    return f"held-out real latents ({ceiling.n}) inside the {estimator} windows: {rates}"


def grid_summary(grid: HitGrid) -> str:
    lines = [
        f"{grid.sampler}: hits of {grid.n} vectors (rows b/scale, columns k)",
        "        " + "".join(f"{k:>10g}" for k in grid.ks),
    ]
    for j, b in enumerate(grid.scales):
        lines.append(f"{b:>8g}" + "".join(f"{h:>10d}" for h in grid.hits[j]))
    return "\n".join(lines)
