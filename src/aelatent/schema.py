"""The names a writer and a reader of the same artifact or metric share, written once.

A job writes ``hits/hit_rates.csv`` and logs ``hit_rate/uniform/b2/k1``; the report reads them
back, perhaps from a run a year old. Both sides take the path, the columns and the metric
name from here, so they cannot drift apart. The paths are relative to a run's artifact
root; the full table is in docs/artifacts.md.
"""

from __future__ import annotations

import re

# -- artifact paths ------------------------------------------------------------------------
# train
LATENTS_NPY = "latents/latents.npy"
LATENT_INDEX_CSV = "latents/index.csv"
# analyse (and train)
COUNTS_NPY = "histograms/counts.npy"
EDGES_NPY = "histograms/edges.npy"
COMPONENTS_PNG = "histograms/components.png"
DOMINANT_PNG = "histograms/dominant.png"
COMPONENTS_CSV = "stats/components.csv"
WINDOWS_CSV = "stats/windows.csv"
DOMINANT_MD = "stats/dominant.md"
RADIUS_CSV = "stats/radius.csv"
RADIUS_PNG = "stats/radius.png"
PAIR_PNG = "correlations/dominant_pair.png"
MATRIX_PNG = "correlations/matrix.png"
TOP_PAIRS_CSV = "correlations/top_pairs.csv"
SPECTRUM_PNG = "pca/spectrum.png"
SPECTRUM_CSV = "pca/spectrum.csv"
# evaluate
HIT_RATES_CSV = "hits/hit_rates.csv"
KNN_SCORES_CSV = "hits/knn_scores.csv"
BOX_VS_KNN_PNG = "hits/box_vs_knn_{sampler}.png"
VERDICT_JSON = "tables/verdict.json"
VERDICT_PNG = "verdict/verdict.png"
DECODED_DIR = "decoded"
# MLflow tables (mlflow.log_table), shown in the UI's artifact view
HIT_RATES_TABLE = "tables/hit_rates.json"
WINDOWS_TABLE = "tables/windows.json"
TRIALS_TABLE = "tables/trials.json"
# search
OBJECTIVE_CURVE_PNG = "search/objective_curve.png"
BEST_PER_FAMILY_CSV = "search/best_per_family.csv"
DECODED_GENERATORS_PNG = "search/decoded_generators.png"
PARAM_IMPORTANCES_PNG = "search/param_importances.png"
PARETO_FRONT_CSV = "search/pareto_front.csv"  # space=generators, mode=multi
PARETO_FRONT_PNG = "search/pareto_front.png"


def decoded_png(sampler: str, value: float) -> str:
    """``decoded/<sampler>_b<value>.png``: a sampler's decoded vectors at one b or scale."""
    return f"{DECODED_DIR}/{sampler}_b{value:g}.png"


# -- CSV columns ---------------------------------------------------------------------------
# the figures of one (sampler, b, k) cell of the box test, in hits/hit_rates.csv and in the
# report's table of them
HIT_FIGURES = (
    "hits",
    "hit_rate",
    "hit_rate_lo",
    "hit_rate_hi",
    "log10_p_hit",
    "log10_p_hit_lo",
    "log10_p_hit_hi",
    "log10_p_hit_se",
)
GHK_REL_SE = "ghk_rel_se"  # only where P(hit) is a GHK estimate
HIT_RATE_COLUMNS = (
    "sampler",
    "b",
    "k",
    *HIT_FIGURES[:1],
    "n",
    *HIT_FIGURES[1:],
    "p_method",
    "windows",
)

# -- metric names --------------------------------------------------------------------------
HELDOUT = "heldout"  # the held-out real latents' row, where a sampler's name would be


def grid_metric(kind: str, sampler: str, b: float, k: float | None = None) -> str:
    """``hit_rate/uniform/b1.5/k2`` (a figure of one cell), ``radius_mean/uniform/b1.5``."""
    key = f"{kind}/{sampler}/b{b:g}"
    return key if k is None else f"{key}/k{k:g}"


def ceiling_metric(kind: str, k: float) -> str:
    """``hit_rate/heldout/k2``: what the held-out real latents reach at ``k``."""
    return f"{kind}/{HELDOUT}/k{k:g}"


GRID_METRIC = re.compile(
    r"^(?P<kind>hit_rate(?:_lo|_hi)?|hits|log10_p_hit(?:_lo|_hi|_se)?|ghk_rel_se)"
    r"/(?P<sampler>[^/]+)/b(?P<b>[^/]+)/k(?P<k>[^/]+)$"
)
CEILING_METRIC = re.compile(rf"^(?P<kind>hit_rate(?:_lo|_hi)?|hits)/{HELDOUT}/k(?P<k>[^/]+)$")
GRID_POINTS_METRIC = re.compile(r"^grid_log10_points/b(?P<b>[^/]+)$")
GRID_INSIDE_METRIC = re.compile(r"^grid_log10_inside/b(?P<b>[^/]+)/k(?P<k>[^/]+)$")


def knn_metric(kind: str, sampler: str, b: float | None = None) -> str:
    """``precision/gmm/b1.5`` (the b or scale label of the hit metrics), ``precision/heldout``."""
    return f"{kind}/{sampler}" if b is None else f"{kind}/{sampler}/b{b:g}"


KNN_METRIC = re.compile(
    r"^(?P<kind>precision|recall|density|coverage)(?P<end>_lo|_hi)?"
    r"/(?P<sampler>[^/]+)(?:/b(?P<b>[^/]+))?$"
)


def grid_points_metric(b: float) -> str:
    """Method 1: ``grid_log10_points/b<b>``, log10 of the grid's points over [-b, b]^d."""
    return f"grid_log10_points/b{b:g}"


def grid_inside_metric(b: float, k: float) -> str:
    """Method 1: ``grid_log10_inside/b<b>/k<k>``, log10 of the grid's points in the windows."""
    return f"grid_log10_inside/b{b:g}/k{k:g}"
