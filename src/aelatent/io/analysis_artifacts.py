"""The latent analysis as files: the artifact layout of docs/architecture.md (paths relative
to a run's artifact root), and reading ``stats/components.csv`` back for the sampler evaluation.

Numbers in CSV files are written at full precision (shortest repr that round-trips), so
that mu and hw read back are exactly the analysed values; booleans as 1/0.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import SupportsFloat

import numpy as np

from aelatent.core.analysis import LatentAnalysis
from aelatent.core.correlations import VARIANCE_FRACTIONS
from aelatent.errors import UserError
from aelatent.plots import analysis_plots
from aelatent.schema import (
    COMPONENTS_CSV,
    COMPONENTS_PNG,
    COUNTS_NPY,
    DOMINANT_MD,
    DOMINANT_PNG,
    EDGES_NPY,
    MATRIX_PNG,
    PAIR_PNG,
    RADIUS_CSV,
    RADIUS_PNG,
    SPECTRUM_CSV,
    SPECTRUM_PNG,
    TOP_PAIRS_CSV,
    WINDOWS_CSV,
)

DATA_PATHS = (
    COUNTS_NPY,
    EDGES_NPY,
    COMPONENTS_CSV,
    WINDOWS_CSV,
    DOMINANT_MD,
    RADIUS_CSV,
    TOP_PAIRS_CSV,
    SPECTRUM_CSV,
)
PLOT_PATHS = (COMPONENTS_PNG, DOMINANT_PNG, RADIUS_PNG, PAIR_PNG, MATRIX_PNG, SPECTRUM_PNG)
ARTIFACT_PATHS = DATA_PATHS + PLOT_PATHS

INT_COLUMNS = frozenset({"component"})
BOOL_COLUMNS = frozenset({"dominant", "gaussian_like", "dominant_significant"})


def _cell(value: SupportsFloat | str) -> str:
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, str | np.str_):
        return str(value)
    return repr(float(value))


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """One column per array (all of equal length), header first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow([_cell(value) for value in row])
    return path


def read_components_csv(path: str | Path) -> dict[str, np.ndarray]:
    """``stats/components.csv`` as name -> array: component int64, flags bool, others float64."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not rows or not {"component", "mu", "hw"} <= set(rows[0]):
        raise UserError(f"{path}: not a components table (need columns component, mu, hw)")
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        raise UserError(f"{path}: rows of unequal length; the file is truncated or corrupt")
    table: dict[str, np.ndarray] = {}
    for k, name in enumerate(header):
        cells = [row[k] for row in body]
        try:
            if name in INT_COLUMNS:
                table[name] = np.array([int(c) for c in cells], dtype=np.int64)
            elif name in BOOL_COLUMNS:
                table[name] = np.array([c.strip().lower() in ("1", "true") for c in cells])
            else:
                table[name] = np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            raise UserError(f"{path}: column {name!r} holds a non-number") from None
    return table


def _number(x: float) -> str:
    """Short, readable number for tables: 3 decimals at most, printed with :g."""
    return f"{round(float(x), 3):g}"


def dominant_table(analysis: LatentAnalysis) -> str:
    """Markdown: the rule, the study's one-line style ``15: -0.25, 1.5 · ...``, a full table."""
    stats = analysis.components
    rule = analysis.thresholds
    dominant = analysis.dominant_components
    half = analysis.histograms.half_range
    lines = [
        "# Dominant components",
        "",
        f"Rule: |mu| >= {rule.mu_abs:g} or hw >= {rule.hw:g}, with mu and hw of the "
        f"`{rule.estimate}` windows (stats/windows.csv; {analysis.histograms.n_bins} bins over "
        f"[-{half:g}, {half:g}] for `histogram`). {len(dominant)} of {analysis.z_dim} "
        f"components are dominant (n = {analysis.n_latents} latent vectors).",
        "",
    ]
    if len(dominant) == 0:
        return "\n".join([*lines, "None.", ""])
    mu, hw = analysis.windows.mu, analysis.windows.hw  # what the thresholds judged
    lines += [
        "component: mu, hw",
        "",
        " · ".join(f"{j}: {_number(mu[j])}, {_number(hw[j])}" for j in dominant),
        "",
    ]
    head = (
        "component",
        "mu",
        "hw",
        "mu_fit",
        "hw_fit",
        "sigma",
        "median",
        "hw_robust",
        "fit_r2",
        "qq_r",
        "gaussian_like",
    )
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j in dominant:
        cells = [str(j)] + [_number(getattr(stats, name)[j]) for name in head[1:-1]]
        cells.append("yes" if stats.gaussian_like[j] else "no")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def components_columns(analysis: LatentAnalysis) -> dict[str, np.ndarray]:
    """The table of ``stats/components.csv``: the statistics, then ``dominant_significant``."""
    return {**analysis.components.columns(), "dominant_significant": analysis.dominant_significant}


def write_analysis(analysis: LatentAnalysis, out_dir: Path, plots: bool = True) -> None:
    """Write every analysis artifact under ``out_dir`` (``plots=False``: data files only)."""
    out_dir = Path(out_dir)
    for relative in ARTIFACT_PATHS:
        (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    hist = analysis.histograms
    np.save(out_dir / COUNTS_NPY, hist.counts.astype(np.int64))
    np.save(out_dir / EDGES_NPY, hist.edges.astype(np.float64))
    write_csv(out_dir / COMPONENTS_CSV, components_columns(analysis))
    write_csv(out_dir / WINDOWS_CSV, analysis.windows.columns())
    (out_dir / DOMINANT_MD).write_text(dominant_table(analysis))
    radius = analysis.radius
    write_csv(
        out_dir / RADIUS_CSV,
        {"bin_lo": radius.edges[:-1], "bin_hi": radius.edges[1:], "count": radius.counts},
    )
    pairs = analysis.pairs
    write_csv(
        out_dir / TOP_PAIRS_CSV,
        {"rank": np.arange(1, len(pairs.r) + 1), "i": pairs.i, "j": pairs.j, "r": pairs.r},
    )
    pca = analysis.pca
    write_csv(
        out_dir / SPECTRUM_CSV,
        {
            "pc": np.arange(1, len(pca.eigenvalues) + 1),
            "eigenvalue": pca.eigenvalues,
            "explained_ratio": pca.explained_ratio,
            "cumulative_ratio": pca.cumulative_ratio,
        },
    )
    if plots:
        write_plots(analysis, out_dir)


def write_plots(analysis: LatentAnalysis, out_dir: Path) -> None:
    """The six figures of the analysis."""
    hist = analysis.histograms
    stats = analysis.components
    rule = analysis.thresholds
    analysis_plots.plot_component_grid(
        hist.counts, hist.edges, stats.dominant, out_dir / COMPONENTS_PNG
    )
    mu, hw = analysis.windows.mu, analysis.windows.hw
    dominant = analysis.dominant_components
    most_dominant_first = dominant[np.argsort(-stats.dominance_score[dominant], kind="stable")]
    analysis_plots.plot_dominant(
        hist.counts,
        hist.edges,
        most_dominant_first.tolist(),
        mu,
        hw,
        stats.mu_fit,
        stats.sigma,
        out_dir / DOMINANT_PNG,
        rule=f"|mu| >= {rule.mu_abs:g} or hw >= {rule.hw:g}, {rule.estimate}",
    )
    radius = analysis.radius
    analysis_plots.plot_radius(
        radius.counts,
        radius.edges,
        radius.mean,
        radius.std,
        radius.percentiles,
        out_dir / RADIUS_PNG,
    )
    i, j = analysis.dominant_pair
    analysis_plots.plot_pair(
        analysis.pair_sample, (i, j), float(analysis.correlation[i, j]), out_dir / PAIR_PNG
    )
    analysis_plots.plot_correlation_matrix(analysis.correlation, out_dir / MATRIX_PNG)
    pca = analysis.pca
    analysis_plots.plot_pca_spectrum(
        pca.explained_ratio,
        pca.cumulative_ratio,
        {fraction: pca.n_for(fraction) for fraction in VARIANCE_FRACTIONS},
        out_dir / SPECTRUM_PNG,
    )
