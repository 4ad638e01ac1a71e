"""The one figure a report draws from metric histories: training curves of every case side
by side (the hit-rate curves come from :mod:`aelatent.plots.evaluation`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Series = list[tuple[int, float]]


def training_curves(curves: dict[str, dict[str, Series]], path: Path) -> Path:
    """One panel per case with ``loss`` and ``val_loss`` per epoch on a shared log scale."""
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.4), sharey=True, squeeze=False)
    for ax, (label, series) in zip(axes[0], curves.items(), strict=False):
        for key, points in sorted(series.items()):
            if points:
                steps, values = zip(*sorted(points), strict=True)
                ax.plot(
                    [s + 1 for s in steps],
                    values,
                    label=key,
                    marker="." if len(steps) < 30 else None,
                )
        ax.set_title(f"case {label}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if any(v > 0 for points in series.values() for _, v in points):
            ax.set_yscale("log")
        ax.legend()
    axes[0][0].set_ylabel("mean squared error per image")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
