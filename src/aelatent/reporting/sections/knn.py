"""Part of section 7, "Hit rates": the k-NN region test (precision, recall, density and
coverage), which needs no box, beside each sampler's box test.

Reads the metrics ``precision/<sampler>/b<b>`` (with ``_lo``/``_hi``), ``recall/...``,
``density/...``, ``coverage/...`` and ``.../heldout`` of the evaluate runs
(:mod:`aelatent.jobs.evaluate.knn`) into one table per sampler, beside the box test's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from aelatent.reporting.collect import RunData
from aelatent.reporting.document import Block, Note, Paragraph, Table
from aelatent.reporting.sections.formatting import with_interval
from aelatent.schema import KNN_METRIC

KNN_FIGURES = ("precision", "recall", "density", "coverage")
HELDOUT = "heldout"
HELDOUT_ROW = "held-out real latents (ceiling)"
KNN_INTRO = (
    "Beside each sampler's box test, the k-NN test, which needs no box: every training latent "
    "gets a ball reaching to its k-th nearest neighbour; precision is the fraction of "
    "generated vectors inside some real ball, recall the fraction of real vectors inside "
    "some generated ball, coverage the fraction of real balls holding a generated vector, "
    "density the mean number of real balls around a generated vector over k (about 1 for a "
    "generator like the data). Recall and coverage grow with the number of generated "
    "vectors, so their held-out row is a ceiling only where the held-out set is as large. "
    "The figure puts both tests over b or scale side by side, the sampler's decoded vectors "
    "below it: which test agrees with what the images show?"
)
BOX_VS_KNN_CAPTION = (
    "the two region tests over b or scale: left the box hit rate per k, right k-NN precision, "
    "recall, coverage (and density, grey) with 95% intervals; dashed: held-out real latents"
)


def knn_cells(runs: Iterable[RunData], sampler: str) -> dict[str, dict[str, float]]:
    """``{b: {"precision": .., "precision_lo": .., ...}}`` of one sampler; the newest run
    that has a cell wins it whole (runs come newest first)."""
    cells: dict[str, dict[str, float]] = {}
    for run in reversed(list(runs)):
        found: dict[str, dict[str, float]] = {}
        for name, value in run.metrics.items():
            match = KNN_METRIC.match(name)
            if match and match["sampler"] == sampler and match["b"] is not None:
                found.setdefault(match["b"], {})[match["kind"] + (match["end"] or "")] = value
        cells.update(found)
    return cells


def knn_heldout(runs: Iterable[RunData]) -> tuple[dict[str, float], float | None]:
    """The held-out latents' figures of the newest run that has them, and their number."""
    for run in runs:
        found = {}
        for name, value in run.metrics.items():
            match = KNN_METRIC.match(name)
            if match and match["sampler"] == HELDOUT and match["b"] is None:
                found[match["kind"] + (match["end"] or "")] = value
        if found:
            return found, run.metrics.get("knn_n_heldout")
    return {}, None


def _with_interval(values: dict[str, float], kind: str) -> float | str | None:
    value, lo, hi = (values.get(kind + end) for end in ("", "_lo", "_hi"))
    return with_interval(value, lo, hi, digits=3)


def knn_blocks(slug: str, sampler: str, runs: list[RunData]) -> list[Block]:
    """The k-NN table of one sampler (one row per b or scale, the ceiling last), or a note."""
    cells = knn_cells(runs, sampler)
    if not cells:
        return [
            Note(
                f"Not logged: no k-NN figures (precision/{sampler}/...) in the evaluate "
                "runs, which predate them or ran with knn_n=0; rerun evaluate to get them."
            )
        ]

    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return math.inf

    rows: list[list] = [
        [number(b), *[_with_interval(cells[b], kind) for kind in KNN_FIGURES]]
        for b in sorted(cells, key=number)
    ]
    heldout, n_heldout = knn_heldout(runs)
    caption = f"k-NN region test of sampler {sampler} [95% interval]"
    if heldout:
        rows.append([HELDOUT_ROW, *[_with_interval(heldout, kind) for kind in KNN_FIGURES]])
        held = "" if n_heldout is None else f"{n_heldout:.0f} "
        caption += f"; last row: {held}held-out real latents, the ceiling"
    sizes = next((r.metrics for r in runs if "knn_k" in r.metrics), {})
    blocks: list[Block] = []
    if sizes:
        blocks.append(
            Paragraph(
                f"k-NN test: k = {sizes['knn_k']:.0f}, "
                f"{sizes.get('knn_n_generated', math.nan):.0f} generated against "
                f"{sizes.get('knn_n_real', math.nan):.0f} real vectors."
            )
        )
    return [*blocks, Table(f"knn_{slug}", ["b", *KNN_FIGURES], rows, caption=caption)]
