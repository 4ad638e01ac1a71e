"""The verdict at a glance: each setting's C2ST accuracy and ellipsoid rate beside the real row.

One horizontal bar per row (reference rows on top): the non-linear classifier's accuracy at
telling the row's vectors from real latents (0.5: indistinguishable), with its 95% interval,
and the fraction inside the real latents' ellipsoid. Rows the verdict rejects are red.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PANELS = (
    (("c2st_nonlinear", "c2st_linear"), "C2ST accuracy (0.5: indistinguishable)", 0.5),
    (("ellipsoid",), "inside the real ellipsoid", None),
)


def save_verdict_plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """``rows`` as :meth:`aelatent.core.verdict.VerdictRow.as_dict` gives them, best first."""
    panels = [p for p in PANELS if any(t in rows[0]["criteria"] for t in p[0])]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.5 * len(panels) + 2, 0.32 * len(rows) + 1.4), squeeze=False
    )
    y = list(range(len(rows)))[::-1]
    for ax, (tests, title, chance) in zip(axes[0], panels, strict=True):
        test = next(t for t in tests if t in rows[0]["criteria"])
        for yi, row in zip(y, rows, strict=True):
            c = row["criteria"][test]
            colour = "tab:red" if row["rejected_by"] else "tab:green"
            if row["axis"] == "":
                colour = "black"
            lo = c["lo"] if c["lo"] is not None else c["statistic"]
            hi = c["hi"] if c["hi"] is not None else c["statistic"]
            ax.errorbar(
                c["statistic"],
                yi,
                xerr=[[c["statistic"] - lo], [hi - c["statistic"]]],
                fmt="o",
                color=colour,
                capsize=3,
                ms=4,
            )
        if chance is not None:
            ax.axvline(chance, color="grey", lw=0.8, ls="--")
        ax.set_xlim(-0.02, 1.02) if test == "ellipsoid" else ax.set_xlim(0.3, 1.02)
        name = test.replace("_", " ")
        ax.set_title(f"{title}\n({name})", fontsize=9)
        ax.set_yticks(y)
        ax.set_yticklabels([r["label"] for r in rows], fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("verdict: black reference rows, red = told apart (Holm, 0.05)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
