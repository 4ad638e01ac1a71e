"""Figures of a sampler evaluation: hit-rate heat maps and curves, missing components, radii.

Matplotlib only (Agg); each function takes arrays, plain mappings or a
:class:`~aelatent.core.hits.HitGrid` and writes one PNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from aelatent.core.hits import HitGrid

if TYPE_CHECKING:
    from aelatent.core.hit_uncertainty import HeldoutCeiling, HitIntervals

RateInterval = tuple[float, float, float]
"""A hit rate with its 95% interval ``(rate, lo, hi)``; lo and hi NaN where unknown."""


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _log10_text(value: float) -> str:
    if value == -math.inf:
        return "P = 0"
    if value > -0.005:
        return "P ~ 1"
    return f"P = 1e{value:.1f}"


def save_hit_heatmap(grid: HitGrid, path: Path, scale_label: str = "b") -> Path:
    """Hit rate over scales x ks (colour), with the count and the exact probability per cell."""
    rate = grid.hit_rate
    fig, ax = plt.subplots(figsize=(1.3 * len(grid.ks) + 2.5, 0.62 * len(grid.scales) + 1.8))
    image = ax.imshow(rate, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", origin="lower")
    for j in range(len(grid.scales)):
        for i in range(len(grid.ks)):
            ax.text(
                i,
                j,
                f"{grid.hits[j, i]}\n{_log10_text(grid.log10_p_hit[j, i])}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if rate[j, i] > 0.6 else "white",
            )
    ax.set_xticks(range(len(grid.ks)), [f"{k:g}" for k in grid.ks])
    ax.set_yticks(range(len(grid.scales)), [f"{s:g}" for s in grid.scales])
    ax.set_xlabel("half-width multiple k")
    ax.set_ylabel(scale_label)
    ax.set_title(
        f"{grid.sampler}: hit rate of {grid.n:,} vectors\n(cell: hits, probability from theory)",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="hit rate")
    fig.tight_layout()
    return _save(fig, path)


def save_miss_counts(grid: HitGrid, path: Path, scale_label: str = "b") -> Path:
    """Distribution of the number of components outside their window, per k, one line per scale."""
    ks = grid.ks[grid.miss_k_index]
    n_cols = min(3, max(1, len(ks)))
    n_rows = max(1, math.ceil(len(ks) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows), squeeze=False)
    counts = np.arange(grid.z_dim + 1)
    colours = plt.cm.plasma(np.linspace(0.0, 0.85, len(grid.scales)))
    for m, k in enumerate(ks):
        ax = axes.flat[m]
        fractions = grid.miss_counts[:, m] / grid.n
        for j, s in enumerate(grid.scales):
            ax.plot(counts, fractions[j], color=colours[j], label=f"{s:g}")
        # scale to the misses: the spike at 0 (= the hit rate) is in the heat map
        top = float(fractions[:, 1:].max())
        if top > 0:
            ax.set_ylim(0, 1.15 * top)
        ax.set_title(f"k = {k:g}", fontsize=9)
        ax.set_xlabel("components outside the window")
        ax.set_ylabel("fraction of vectors")
        ax.set_xlim(0, grid.z_dim)
    for ax in list(axes.flat)[len(ks) :]:
        ax.set_visible(False)
    if len(ks):
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(
            handles, labels, title=scale_label, loc="center right", fontsize=8, title_fontsize=8
        )
    fig.suptitle(f"{grid.sampler}: missing components per vector", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return _save(fig, path)


def save_radius_overlay(
    real_radii: np.ndarray,
    grids: Sequence[HitGrid],
    path: Path,
    theory_means: Mapping[str, Sequence[float]] | None = None,
    scale_labels: Mapping[str, str] | None = None,
) -> Path:
    """Sample radii per scale over the real radius distribution, one panel per sampler.

    Logarithmic radius axis: uniform shells from b = 1 to 12 span a factor of 12 while each
    is only ~0.26 b wide; the real distribution is the grey area.
    """
    real = np.asarray(real_radii, dtype=np.float64)
    fig, axes = plt.subplots(len(grids), 1, figsize=(9, 2.9 * len(grids)), squeeze=False)
    for ax, grid in zip(axes[:, 0], grids, strict=True):
        low = min(float(real.min()), float(grid.radii.min()))
        high = max(float(real.max()), float(grid.radii.max()))
        low = max(low, 1e-3 * high)
        edges = np.geomspace(low * 0.95, high * 1.05, 240)
        ax.hist(real, bins=edges, density=True, color="0.6", alpha=0.7, label="real latents")
        colours = plt.cm.plasma(np.linspace(0.0, 0.85, len(grid.scales)))
        for j, s in enumerate(grid.scales):
            if not np.any((grid.radii[j] >= edges[0]) & (grid.radii[j] <= edges[-1])):
                continue  # all below the axis (b far under the real radii): a NaN density
            ax.hist(
                grid.radii[j],
                bins=edges,
                density=True,
                histtype="step",
                color=colours[j],
                label=f"{s:g}",
            )
            if theory_means and grid.sampler in theory_means:
                ax.axvline(theory_means[grid.sampler][j], color=colours[j], ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(
            FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
        )
        ax.set_xlabel("radius |z|")
        ax.set_ylabel("density")
        label = (scale_labels or {}).get(grid.sampler, "b")
        ax.set_title(f"{grid.sampler} (dotted: theory mean)", fontsize=9)
        ax.legend(title=label, fontsize=7, title_fontsize=8, ncol=2, loc="upper right")
    fig.suptitle("Radii of sampled vectors against the real latents", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def grid_rate_curves(
    grid: HitGrid, intervals: HitIntervals | None = None
) -> dict[float, dict[float, RateInterval]]:
    """``{k: {scale: (rate, lo, hi)}}`` of one sampler's grid, for :func:`save_hit_rate_curves`."""
    curves: dict[float, dict[float, RateInterval]] = {}
    for i, k in enumerate(grid.ks):
        curve = curves.setdefault(float(k), {})
        for j, s in enumerate(grid.scales):
            lo = math.nan if intervals is None else float(intervals.hit_lo[j, i])
            hi = math.nan if intervals is None else float(intervals.hit_hi[j, i])
            curve[float(s)] = (float(grid.hit_rate[j, i]), lo, hi)
    return curves


def ceiling_rates(ceiling: HeldoutCeiling) -> dict[float, RateInterval]:
    """``{k: (rate, lo, hi)}`` of the held-out real latents, for :func:`save_hit_rate_curves`."""
    return {
        float(k): (float(r), float(lo), float(hi))
        for k, r, lo, hi in zip(ceiling.ks, ceiling.rate, ceiling.lo, ceiling.hi, strict=True)
    }


def save_hit_rate_curves(
    grid_rates: Mapping[float, Mapping[float, RateInterval]],
    ceiling: Mapping[float, RateInterval] | None,
    path: Path,
    scale_label: str = "b",
    title: str = "hit rate",
) -> Path:
    """Hit rate against the scale, one line per k with its 95% interval as error bars.

    ``grid_rates`` is ``{k: {scale: (rate, lo, hi)}}``; ``ceiling`` ``{k: (rate, lo, hi)}``,
    the held-out real latents, drawn dashed (its interval shaded) in the colour of its k.
    Unknown intervals (NaN) draw no bar. The rate axis turns symmetric-logarithmic where
    the positive rates span more than two decades, so that 1e-5 and 0.9 both show.
    """
    ks = sorted(set(grid_rates) | set(ceiling or {}))
    colours = dict(zip(ks, plt.cm.viridis(np.linspace(0.0, 0.85, max(1, len(ks)))), strict=False))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    positive: list[float] = []
    for k in ks:
        points = grid_rates.get(k) or {}
        _error_line(ax, points, colours[k], "o", f"k = {k:g}")
        positive += [v for rate, _, hi in points.values() for v in (rate, hi) if v > 0]
        if ceiling and k in ceiling:
            rate_c, lo_c, hi_c = ceiling[k]
            ax.axhline(rate_c, color=colours[k], ls="--", lw=1.0)
            if math.isfinite(lo_c) and math.isfinite(hi_c):
                ax.axhspan(lo_c, hi_c, color=colours[k], alpha=0.12, lw=0)
            positive += [v for v in (rate_c, hi_c) if v > 0]
    if ceiling:
        ax.plot([], [], color="0.3", ls="--", lw=1.0, label="held-out real latents (ceiling)")
    low = min(positive, default=1.0)
    if low < 1e-2 * max(positive, default=1.0):
        ax.set_yscale("symlog", linthresh=10.0 ** math.floor(math.log10(low)))
    ax.set_ylim(0.0, 1.05)
    _scale_axis(ax, sorted({s for curve in grid_rates.values() for s in curve}), scale_label)
    ax.set_ylabel("hit rate (95% interval)")
    ax.set_title(title, fontsize=10)
    if ks:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, path)


KNN_STYLES = {
    "precision": ("tab:red", "o"),
    "recall": ("tab:blue", "s"),
    "coverage": ("tab:green", "^"),
    "density": ("0.35", "D"),
}
"""Colour and marker of each k-NN figure in :func:`save_box_vs_knn`."""


def save_box_vs_knn(
    grid_rates: Mapping[float, Mapping[float, RateInterval]],
    ceiling: Mapping[float, RateInterval] | None,
    knn: Mapping[str, Mapping[float, RateInterval]],
    knn_ceiling: Mapping[str, RateInterval] | None,
    path: Path,
    scale_label: str = "b",
    title: str = "box test against k-NN test",
) -> Path:
    """The two region tests over one sampler's b or scale, side by side, shared x axis.

    Left: the box hit rate per k (``{k: {scale: (rate, lo, hi)}}``), the held-out ceiling
    dashed. Right: k-NN precision, recall and coverage (``{name: {scale: (v, lo, hi)}}``,
    95% intervals as error bars), the held-out latents' values dashed in the same colours;
    density (not bounded by 1) on its own logarithmic axis, grey.
    """
    fig, (box, region) = plt.subplots(1, 2, figsize=(11.5, 4.2), sharex=True)
    _box_panel(box, grid_rates, ceiling)
    density_axis = _knn_panel(region, knn, knn_ceiling)
    scales = sorted({s for curve in (*grid_rates.values(), *knn.values()) for s in curve})
    for ax in (box, region):
        _scale_axis(ax, scales, scale_label)
    box.legend(fontsize=7, loc="best")
    handles, labels = region.get_legend_handles_labels()
    if density_axis is not None:
        more = density_axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        region.legend(handles, labels, fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _box_panel(
    box: plt.Axes,
    grid_rates: Mapping[float, Mapping[float, RateInterval]],
    ceiling: Mapping[float, RateInterval] | None,
) -> None:
    """The box hit rate per k, the held-out ceiling dashed in the same colour."""
    ks = sorted(grid_rates)
    colours = dict(zip(ks, plt.cm.viridis(np.linspace(0.0, 0.85, max(1, len(ks)))), strict=False))
    for k in ks:
        _error_line(box, grid_rates[k], colours[k], "o", f"k = {k:g}")
        if ceiling and k in ceiling:
            box.axhline(ceiling[k][0], color=colours[k], ls="--", lw=1.0)
    if ceiling:
        box.plot([], [], color="0.3", ls="--", lw=1.0, label="held-out real latents")
    box.set_ylim(-0.02, 1.05)
    box.set_ylabel("box hit rate (95% interval)")
    box.set_title("box: every component inside its window", fontsize=9)


def _knn_panel(
    region: plt.Axes,
    knn: Mapping[str, Mapping[float, RateInterval]],
    knn_ceiling: Mapping[str, RateInterval] | None,
) -> plt.Axes | None:
    """Precision, recall and coverage; density on a twin axis (returned, None without it)."""
    density_axis = None
    for name, (colour, marker) in KNN_STYLES.items():
        points = knn.get(name)
        if not points:
            continue
        ax = region
        if name == "density":
            density_axis = density_axis or region.twinx()
            ax = density_axis
        _error_line(ax, points, colour, marker, name, dashed=name == "density")
        if knn_ceiling and name in knn_ceiling and math.isfinite(knn_ceiling[name][0]):
            ax.axhline(knn_ceiling[name][0], color=colour, ls="--", lw=1.0)
    region.set_ylim(-0.02, 1.05)
    region.set_ylabel("precision, recall, coverage (95% interval)")
    region.set_title("k-NN balls of the real latents (dashed: held-out latents)", fontsize=9)
    if density_axis is not None:
        _density_scale(density_axis, knn["density"], knn_ceiling)
    return density_axis


def _density_scale(
    axis: plt.Axes,
    points: Mapping[float, RateInterval],
    knn_ceiling: Mapping[str, RateInterval] | None,
) -> None:
    """Density is not bounded by 1: symlog where it spans more than two decades."""
    values = [v for v, _, _ in points.values() if v > 0]
    values += [knn_ceiling["density"][0]] if knn_ceiling and "density" in knn_ceiling else []
    if values and max(values) / max(min(values), 1e-12) > 100:
        axis.set_yscale("symlog", linthresh=max(min(values), 1e-3))
    if values:
        axis.set_ylim(0.0, 2.0 * max(values))
    axis.set_ylabel("density (grey, not bounded by 1)", color="0.35")


def _scale_axis(ax: plt.Axes, scales: list[float], label: str) -> None:
    """The shared x axis: logarithmic with the evaluated values as ticks when all are > 0."""
    if scales and all(s > 0 for s in scales):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xticks(scales)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)


def _error_line(
    ax: plt.Axes,
    points: Mapping[float, RateInterval],
    colour,
    marker: str,
    label: str,
    *,
    dashed: bool = False,
) -> None:
    """One curve over the scales with its 95% interval as error bars (none where NaN)."""
    ordered = sorted(points.items())
    if not ordered:
        return
    scales = np.array([s for s, _ in ordered], dtype=np.float64)
    value, lo, hi = np.array([p for _, p in ordered], dtype=np.float64).reshape(-1, 3).T
    below = np.nan_to_num(np.clip(value - lo, 0.0, None))
    above = np.nan_to_num(np.clip(hi - value, 0.0, None))
    ax.errorbar(
        scales,
        value,
        yerr=[below, above],
        color=colour,
        marker=marker,
        markersize=3.5,
        capsize=3,
        lw=1.2,
        ls=":" if dashed else "-",
        label=label,
    )
