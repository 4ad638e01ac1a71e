"""The box test's figures as evaluate runs logged them, read back for the "Hit rates" section.

Metric names (docs/architecture.md): ``hit_rate/<sampler>/b<b>/k<k>`` with ``_lo``/``_hi``,
``log10_p_hit/...`` with ``_lo``/``_hi``/``_se``, ``ghk_rel_se/...``, the held-out ceiling
``hit_rate/heldout/k<k>`` and method 1's ``grid_log10_points/b<b>`` and
``grid_log10_inside/b<b>/k<k>``. Runs come newest first; where they overlap the newest wins
each cell whole, so a rate never gets the interval of another run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from aelatent.reporting.collect import RunData
from aelatent.reporting.sections.formatting import finite, read_csv
from aelatent.schema import (
    CEILING_METRIC,
    GHK_REL_SE,
    GRID_INSIDE_METRIC,
    GRID_METRIC,
    GRID_POINTS_METRIC,
    HIT_FIGURES,
    WINDOWS_CSV,
)

GHK_REL_SE_LIMIT = 0.5  # above it a GHK estimate of P is too uncertain to read
TOO_UNCERTAIN = "†"
CEILING_ROW = "held-out real latents (ceiling)"
HIT_FIGURE_COLUMNS = (*HIT_FIGURES, GHK_REL_SE)

Cells = dict[tuple[str, str], dict[str, float]]  # {(b, k): {"hit_rate": .., ...}}


def evaluation_grid(runs: Iterable[RunData]) -> dict[str, Cells]:
    """``{sampler: {(b, k): {"hit_rate": .., "hit_rate_lo": .., "log10_p_hit": .., ..}}}``.

    Every metric of GRID_METRIC (older runs lack the intervals). Newer runs come first in
    the selection, so their cells win where runs overlap, each cell whole: a rate never
    gets the interval of another run.
    """
    grid: dict[str, Cells] = {}
    for run in reversed(list(runs)):
        cells: dict[str, Cells] = {}
        for name, value in run.metrics.items():
            match = GRID_METRIC.match(name)
            if match:
                cell = cells.setdefault(match["sampler"], {}).setdefault(
                    (match["b"], match["k"]), {}
                )
                cell[match["kind"]] = value
        for sampler, found in cells.items():
            grid.setdefault(sampler, {}).update(found)
    return grid


def ceiling_from_metrics(
    runs: Iterable[RunData],
) -> tuple[dict[str, dict[str, float]], float | None]:
    """``({k: {"hit_rate": .., "hit_rate_lo": .., "hit_rate_hi": .., "hits": ..}}, n_heldout)``.

    The held-out real latents in the same windows: what real faces reach. Empty for runs
    from before the ceiling; the newest run that has it wins, whole.
    """
    for run in runs:
        found: dict[str, dict[str, float]] = {}
        for name, value in run.metrics.items():
            match = CEILING_METRIC.match(name)
            if match:
                found.setdefault(match["k"], {})[match["kind"]] = value
        if found:
            return found, run.metrics.get("n_heldout")
    return {}, None


def grid_method(runs: Iterable[RunData]) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Method 1, the grid: ``({b: log10 points}, {(b, k): log10 points inside})``."""
    points: dict[str, float] = {}
    inside: dict[tuple[str, str], float] = {}
    for run in reversed(list(runs)):
        for name, value in run.metrics.items():
            if match := GRID_POINTS_METRIC.match(name):
                points[match["b"]] = value
            elif match := GRID_INSIDE_METRIC.match(name):
                inside[(match["b"], match["k"])] = value
    return points, inside


def too_uncertain(cell: dict[str, float]) -> bool:
    """The GHK estimate of P (mvn) has a relative standard error above GHK_REL_SE_LIMIT."""
    rel_se = cell.get("ghk_rel_se")
    return finite(rel_se) and rel_se > GHK_REL_SE_LIMIT


def flagged(value: float | str | None) -> str:
    """A figure marked too uncertain to read."""
    return f"{TOO_UNCERTAIN} {'–' if value is None else value}"


def interval_note(cells: Cells, key: str) -> str:
    """Says in a caption that the cells carry intervals, where any does."""
    return " [95% interval]" if any(finite(c.get(key)) for c in cells.values()) else ""


def windows_text(runs: Iterable[RunData]) -> str:
    """Which windows the hit figures of ``runs`` were counted against."""
    parts = []
    for run in runs:
        estimate = run.params.get("estimate")
        if estimate is None:
            parts.append(
                f"the train run's stats/components.csv (run {run.run_id[:8]}, from before "
                "the estimate parameter)"
            )
            continue
        text = f"estimate={estimate}"
        table = run.first(WINDOWS_CSV)
        if table is not None:
            chosen = Counter(r.get("estimator", "") for r in read_csv(table))
            if chosen and set(chosen) != {estimate}:
                text += (
                    " (per component: "
                    + ", ".join(f"{name} {count}" for name, count in sorted(chosen.items()))
                    + ")"
                )
        parts.append(f"{text}, estimated from the training latents (run {run.run_id[:8]})")
    return "; ".join(parts)
