"""Grids of images: originals above reconstructions, decoded samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

GAP = 2  # pixels of white between images in a row


def image_strip(images: np.ndarray, n_cols: int, gap: int = GAP) -> np.ndarray:
    """``n_cols`` images ``[n, h, w, c]`` side by side as one ``[h, n_cols w + gaps, c]`` array
    in [0, 1], white between them and where a row has fewer than ``n_cols`` images."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    strip = np.ones((h, n_cols * (w + gap) - gap, c), dtype=np.float32)
    for i in range(min(n, n_cols)):
        strip[:, i * (w + gap) : i * (w + gap) + w] = images[i]
    return strip


def save_image_rows(rows: list[np.ndarray], labels: list[str], path: Path, title: str = "") -> Path:
    """One row per array of images ``[n, h, w, c]`` in [0, 1], labelled on the left.

    Each row is one image (a strip of its images) on one axes: a subplot per image cost
    matplotlib ~17 ms each, most of evaluate's decoded-grid time."""
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(1.2 * n_cols + 0.8, 1.25 * len(rows) + (0.4 if title else 0)),
        squeeze=False,
    )
    for ax, images, label in zip(axes[:, 0], rows, labels, strict=True):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        strip = image_strip(images, n_cols)
        if strip.shape[-1] == 1:
            ax.imshow(strip[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(strip)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    # Leave the title a band of its own (0.4 inch) above the image rows.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()) if title else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_reconstructions(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    path: Path,
    per_row: int = 8,
    labels: tuple[str, ...] = (),
) -> Path:
    """Originals above their reconstructions, ``per_row`` pairs per band (band ``labels``)."""
    rows, row_labels = [], []
    for band, start in enumerate(range(0, len(originals), per_row)):
        prefix = f"{labels[band]}\n" if band < len(labels) else ""
        rows += [originals[start : start + per_row], reconstructions[start : start + per_row]]
        row_labels += [f"{prefix}original", f"{prefix}reconstruction"]
    return save_image_rows(rows, row_labels, path)
