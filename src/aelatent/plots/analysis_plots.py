"""Figures of the latent analysis, from plain arrays (so reports can redraw them from CSVs).

Built on :class:`matplotlib.figure.Figure` without pyplot: no global figure registry, no
backend switch, nothing left open; ``savefig`` renders with Agg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

MAX_DOMINANT_PANELS = 48
NORMAL_COLOUR = "#3b6ea5"
DOMINANT_COLOUR = "#c0392b"
DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _stairs(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outline of a histogram as a closed polygon's x and y (starting and ending at 0)."""
    x = np.concatenate([[edges[0]], np.repeat(edges[1:-1], 2), [edges[-1]]])
    y = np.repeat(counts, 2)
    return np.concatenate([[edges[0]], x, [edges[-1]]]), np.concatenate([[0.0], y, [0.0]])


def plot_component_grid(
    counts: np.ndarray, edges: np.ndarray, dominant: np.ndarray, path: Path
) -> Path:
    """All components' number distributions in one figure: a grid of small histograms.

    Drawn as one polygon collection in a single axes (256 sub-axes would take seconds).
    Each cell spans the shared value range; heights are scaled to the component's maximum.
    """
    z_dim, _ = counts.shape
    n_cols = math.ceil(math.sqrt(z_dim))
    n_rows = math.ceil(z_dim / n_cols)
    half = float(edges[-1])
    unit_x = (edges - edges[0]) / (edges[-1] - edges[0]) * 0.9 + 0.05
    polygons, zero_lines, colours = [], [], []
    for j in range(z_dim):
        row, col = divmod(j, n_cols)
        base = n_rows - 1 - row
        peak = counts[j].max()
        x, y = _stairs(counts[j] / peak if peak > 0 else counts[j] * 0.0, unit_x)
        polygons.append(np.column_stack([col + x, base + 0.08 + 0.72 * y]))
        zero = col + 0.05 + 0.9 * (0.0 - edges[0]) / (edges[-1] - edges[0])
        zero_lines.append([(zero, base + 0.08), (zero, base + 0.82)])
        colours.append(DOMINANT_COLOUR if dominant[j] else NORMAL_COLOUR)
    size = max(6.0, 0.9 * n_cols)
    fig = Figure(figsize=(size, size * n_rows / n_cols + 0.8))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98 - 0.8 / (size * n_rows / n_cols + 0.8)))
    ax.add_collection(LineCollection(zero_lines, colors="#bbbbbb", linewidths=0.5))
    ax.add_collection(
        PolyCollection(polygons, facecolors=colours, edgecolors=colours, linewidths=0.4, alpha=0.85)
    )
    for j in range(z_dim):
        row, col = divmod(j, n_cols)
        ax.text(
            col + 0.05,
            n_rows - 1 - row + 0.95,
            str(j),
            fontsize=6,
            va="top",
            color=DOMINANT_COLOUR if dominant[j] else "#333333",
        )
    ax.set_xlim(0, n_cols)
    ax.set_ylim(0, n_rows)
    ax.set_axis_off()
    fig.suptitle(
        f"Number distribution of each of the {z_dim} components over [-{half:g}, {half:g}] "
        f"(grey: 0; heights scaled per component; red: {int(np.sum(dominant))} dominant)",
        fontsize=11,
    )
    return _save(fig, path)


def plot_dominant(
    counts: np.ndarray,
    edges: np.ndarray,
    components: Sequence[int],
    mu: np.ndarray,
    hw: np.ndarray,
    mu_fit: np.ndarray,
    sigma: np.ndarray,
    path: Path,
    rule: str = "",
) -> Path:
    """The dominant components' histograms with their fitted Gaussians (at most 48 panels)."""
    shown = list(components)[:MAX_DOMINANT_PANELS]
    if not shown:
        fig = Figure(figsize=(6, 2))
        fig.text(
            0.5,
            0.5,
            f"no dominant components{f' ({rule})' if rule else ''}",
            ha="center",
            va="center",
        )
        return _save(fig, path)
    n_cols = min(6, len(shown))
    n_rows = math.ceil(len(shown) / n_cols)
    height = 2.2 * n_rows + 0.7
    fig = Figure(figsize=(2.8 * n_cols, height))
    # A fixed layout: constrained layout takes seconds for dozens of panels.
    fig.subplots_adjust(
        left=0.04, right=0.99, bottom=0.35 / height, top=1 - 0.75 / height, wspace=0.25, hspace=0.45
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    width = float(edges[1] - edges[0])
    for ax in axes.ravel()[len(shown) :]:
        ax.set_axis_off()
    for ax, j in zip(axes.ravel(), shown, strict=False):
        n = counts[j].sum()
        ax.stairs(counts[j], edges, fill=True, color=DOMINANT_COLOUR, alpha=0.35)
        spread = max(float(sigma[j]), float(hw[j]) / 2.355 if np.isfinite(hw[j]) else 0.0, width)
        lo = max(float(edges[0]), float(mu_fit[j]) - 5 * spread)
        hi = min(float(edges[-1]), float(mu_fit[j]) + 5 * spread)
        x = np.linspace(lo, hi, 300)
        if sigma[j] > 0:
            gauss = n * width * np.exp(-0.5 * ((x - mu_fit[j]) / sigma[j]) ** 2)
            ax.plot(x, gauss / (sigma[j] * math.sqrt(2 * math.pi)), color="black", lw=1)
        ax.axvline(mu[j], color=DOMINANT_COLOUR, lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_title(f"{j}: mu {mu[j]:.3g}, hw {hw[j]:.3g}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(3))  # few labels: 48 panels of text is slow
        ax.yaxis.set_major_locator(MaxNLocator(3))
    fig.suptitle(
        f"Dominant components{f' ({rule})' if rule else ''}: histogram, "
        "fitted Gaussian (black), peak mu (line)"
        + (
            f"; the {MAX_DOMINANT_PANELS} most dominant of {len(components)}"
            if len(components) > MAX_DOMINANT_PANELS
            else ""
        ),
        fontsize=10,
    )
    return _save(fig, path)


def plot_radius(
    counts: np.ndarray,
    edges: np.ndarray,
    mean: float,
    std: float,
    percentiles: dict[int, float],
    path: Path,
) -> Path:
    """Number distribution of the radii |z| with mean and outer percentiles marked."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.stairs(counts, edges, fill=True, color=NORMAL_COLOUR, alpha=0.6)
    ax.axvline(mean, color="black", lw=1.2, label=f"mean {mean:.4g} (std {std:.3g})")
    for q, ls in ((1, ":"), (99, ":"), (5, "--"), (95, "--")):
        if q in percentiles:
            ax.axvline(
                percentiles[q], color="black", lw=0.8, ls=ls, label=f"p{q} {percentiles[q]:.4g}"
            )
    ax.set_xlabel("radius |z|")
    ax.set_ylabel("number of latent vectors")
    ax.set_title(f"Radius distribution of the real latents (n = {int(counts.sum())})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pair(sample: np.ndarray, pair: tuple[int, int], r: float, path: Path) -> Path:
    """Scatter of two components for a random subset of latent vectors."""
    fig = Figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.subplots()
    ax.scatter(sample[:, 0], sample[:, 1], s=5, alpha=0.5, color=NORMAL_COLOUR, linewidths=0)
    ax.set_xlabel(f"component {pair[0]}")
    ax.set_ylabel(f"component {pair[1]}")
    ax.set_title(
        f"The two most dominant components\n{len(sample)} random latent vectors, r = {r:.3f}",
        fontsize=10,
    )
    return _save(fig, path)


def plot_correlation_matrix(corr: np.ndarray, path: Path) -> Path:
    """Heat map of the component correlation matrix on a fixed [-1, 1] colour scale."""
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.85, label="Pearson r")
    off = np.abs(corr - np.diag(np.diag(corr)))
    ax.set_title(f"Component correlation matrix (largest off-diagonal |r| = {off.max():.3f})")
    ax.set_xlabel("component")
    ax.set_ylabel("component")
    return _save(fig, path)


def plot_pca_spectrum(
    explained_ratio: np.ndarray, cumulative_ratio: np.ndarray, n_for: dict[float, int], path: Path
) -> Path:
    """Explained-variance fraction per principal component (log) and its running sum."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    index = np.arange(1, len(explained_ratio) + 1)
    positive = explained_ratio > 0
    ax.semilogy(index[positive], explained_ratio[positive], ".", color=NORMAL_COLOUR, ms=4)
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance", color=NORMAL_COLOUR)
    twin = ax.twinx()
    twin.plot(index, cumulative_ratio, color="black", lw=1)
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("cumulative fraction")
    for fraction, n in n_for.items():
        twin.axhline(fraction, color="grey", lw=0.6, ls=":")
        twin.axvline(n, color="grey", lw=0.6, ls="--")
        twin.annotate(
            f"{fraction:.0%}: {n}",
            (n, fraction),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_title("PCA spectrum of the real latents")
    return _save(fig, path)
