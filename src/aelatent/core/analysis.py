"""The latent analysis in one call: everything the study (docs/science.md) asks of the real latents.

:func:`analyse_latents` is pure (no MLflow, TensorFlow or files) so that it runs on any
latents array, in tests, notebooks and the ``analyse`` entry point alike;
:mod:`aelatent.io.analysis_artifacts` writes the result, :mod:`aelatent.jobs.analyse`
logs it. At CelebA scale (202,599 x 256 float32) it takes ~1-2 s and ~0.2 GB beyond the input
(``benchmarks/bench_analysis.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aelatent.core.components import (
    ESTIMATES,
    ComponentStats,
    DominanceThresholds,
    component_stats,
)
from aelatent.core.correlations import (
    VARIANCE_FRACTIONS,
    CorrelatedPairs,
    PcaSpectrum,
    correlation_matrix,
    mean_and_covariance,
    pca_spectrum,
    top_pairs,
)
from aelatent.core.histograms import DEFAULT_N_BINS, ComponentHistograms, component_histograms
from aelatent.core.observations import (
    centre_observations,
    component_observations,
    metric_number,
    value_range_observations,
)
from aelatent.core.radius import RadiusStats, radii, radius_stats
from aelatent.core.significance import dominant_significant, scale_free_observations
from aelatent.core.windows import DEFAULT_ESTIMATOR, Windows, estimate_windows

STUDY_THRESHOLDS = DominanceThresholds()
DEFAULT_THRESHOLDS = DominanceThresholds(estimate=DEFAULT_ESTIMATOR)
PAIR_SAMPLES = 1000


@dataclass(frozen=True)
class LatentAnalysis:
    """Everything the analysis found; :meth:`metrics` flattens the headline numbers."""

    n_latents: int
    z_dim: int
    value_min: float
    value_max: float
    thresholds: DominanceThresholds
    histograms: ComponentHistograms
    components: ComponentStats
    radius: RadiusStats
    correlation: np.ndarray  # float64 [z_dim, z_dim]
    pairs: CorrelatedPairs
    pca: PcaSpectrum
    dominant_pair: tuple[int, int]  # the two components with the highest dominance score
    pair_sample: np.ndarray  # float64 [<= 1000, 2]: those two components of random latents
    windows: Windows  # centre and width per component with intervals (stats/windows.csv)

    @property
    def dominant_components(self) -> np.ndarray:
        """Indices of the dominant components, ascending."""
        return np.flatnonzero(self.components.dominant)

    @property
    def dominant_significant(self) -> np.ndarray:
        """Per component: dominant in the run's own units beyond the windows' errors."""
        return dominant_significant(self.windows)

    def metrics(self) -> dict[str, float]:
        """Metric name -> value (docs/architecture.md): ``n_hw_ge_1.5``, ``radius_mean``, ..."""
        # the study's counts, on the study's reading unless a column estimate was asked for
        estimate = self.thresholds.estimate
        values = component_observations(
            self.components, estimate if estimate in ESTIMATES else "histogram"
        )
        values.update(
            value_range_observations(self.value_min, self.value_max, self.histograms.half_range)
        )
        values.update(centre_observations(self.components.mean))
        # the same questions in the run's own units, beyond the windows' errors
        values.update(scale_free_observations(self.windows))
        values.update(self.radius.metrics())
        for fraction in VARIANCE_FRACTIONS:
            values[f"pca_n_{metric_number(100 * fraction)}"] = float(self.pca.n_for(fraction))
        values["corr_max_abs"] = float(np.abs(self.pairs.r[0])) if self.pairs.r.size else 0.0
        return values


def check_latents_array(latents: np.ndarray) -> np.ndarray:
    """A finite float matrix [n >= 2, z_dim >= 1]; ValueError otherwise."""
    latents = np.asarray(latents)
    if latents.ndim != 2 or latents.shape[0] < 2 or latents.shape[1] < 1:
        raise ValueError(f"latents must have shape [n >= 2, z_dim >= 1], got {latents.shape}")
    if not np.issubdtype(latents.dtype, np.floating):
        raise ValueError(f"latents must be floating point, got {latents.dtype}")
    low, high = latents.min(), latents.max()  # NaN propagates; no full-size temporary
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("latents contain NaN or infinite values")
    return latents


def analyse_latents(
    latents: np.ndarray,
    n_bins: int = DEFAULT_N_BINS,
    thresholds: DominanceThresholds = STUDY_THRESHOLDS,
    *,
    seed: int = 0,
    window_rows: np.ndarray | None = None,
) -> LatentAnalysis:
    """Histograms, per-component statistics, radii, correlations and PCA of ``latents``.

    ``latents`` is ``[n_images, z_dim]`` (float32 as the encoder gives it; not modified).
    ``seed`` fixes the subsamples (Q-Q statistic, the 1000-point pair scatter), so the
    result is a deterministic function of the input. ``window_rows`` (a boolean mask, e.g.
    the training partition) selects the vectors the windows are estimated from.
    """
    latents = check_latents_array(latents)
    n, z_dim = latents.shape
    histograms = component_histograms(latents, n_bins=n_bins)
    mean, covariance = mean_and_covariance(latents)
    windows = estimate_windows(
        latents if window_rows is None else latents[window_rows],
        thresholds.estimate,
        n_bins=n_bins,
        seed=seed,
    )
    stats = component_stats(
        latents,
        histograms,
        thresholds,
        mean=mean,
        variance=np.diag(covariance).copy(),
        seed=seed,
        windows=(windows.mu, windows.hw),
    )
    correlation = correlation_matrix(covariance)
    score = np.nan_to_num(stats.dominance_score, nan=-np.inf)
    ranked = np.argsort(-score, kind="stable")
    pair = (int(ranked[0]), int(ranked[1] if z_dim > 1 else ranked[0]))
    rows = np.random.default_rng(seed).choice(n, size=min(n, PAIR_SAMPLES), replace=False)
    return LatentAnalysis(
        n_latents=n,
        z_dim=z_dim,
        value_min=float(latents.min()),
        value_max=float(latents.max()),
        thresholds=thresholds,
        histograms=histograms,
        components=stats,
        radius=radius_stats(radii(latents)),
        correlation=correlation,
        pairs=top_pairs(correlation),
        pca=pca_spectrum(covariance),
        dominant_pair=pair,
        pair_sample=latents[np.sort(rows)][:, list(pair)].astype(np.float64),
        windows=windows,
    )
