"""The k-NN region test inside ``evaluate``: precision, recall, density and coverage.

Glue between :mod:`aelatent.core.precision_recall` and the evaluate run: which vectors are
compared, the metric names, the table. The real set is the train run's training latents (at
most ``knn_n``, drawn once, their k-NN radii computed once); each sampler and b or scale is
``knn_n`` generated vectors, the same base draws at every scale of a sampler (common random
numbers, as in the hit test); the ceiling is the held-out real latents (at most ``knn_n``).

Metric names follow the hit figures': ``precision/<sampler>/b<b>`` (the b or scale label
the hit metrics use), ``precision_lo/...``, ``precision_hi/...``, and the same for
``recall``, ``density`` and ``coverage``; ``precision/heldout`` etc. for the ceiling;
``knn_k``, ``knn_n_real``, ``knn_n_generated``, ``knn_n_heldout`` say what was compared.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from aelatent.core.precision_recall import (
    SCORES,
    KnnScores,
    RealManifold,
    check_k,
    knn_scores,
    real_manifold,
    subsample,
)
from aelatent.core.samplers import Sampler
from aelatent.errors import UserError
from aelatent.plots.evaluation import save_box_vs_knn
from aelatent.schema import BOX_VS_KNN_PNG, KNN_SCORES_CSV, knn_metric

DEFAULT_KNN_K = "5"
DEFAULT_KNN_N = "2000"
MAX_KNN_K = 1000
MAX_KNN_N = 100_000
KNN_N_WHY = (
    "the distances grow as knn_n^2: 20,000 real and generated vectors of 256 "
    "components take about 10 s per sampler and b on two cores"
)
KNN_COLUMNS = [
    "sampler",
    "b",
    "n_generated",
    "n_real",
    "k",
    *(f"{name}{end}" for name in SCORES for end in ("", "_lo", "_hi")),
]
HELDOUT = "heldout"
REAL_SEED_TAG = 77  # the real subsample's stream: default_rng([seed, 77])
HELDOUT_SEED_TAG = 78
GENERATED_SEED_TAG = 2000  # a sampler's stream: default_rng([seed, sampler index, 2000])


def check_knn_sizes(k: int, n: int, n_train: int) -> None:
    """UserError unless ``k`` fits the real set (``min(n, n_train)`` vectors; the generated
    sets have ``n``, no fewer); ``n = 0`` switches the test off."""
    size = min(n, n_train)
    if n > 0 and k >= size:
        raise UserError(
            f"knn_k={k} is too large: a k-NN radius needs more than k vectors, and the real "
            f"set (training latents, at most knn_n) has {size}; give knn_k < {size}"
        )


def build_manifold(train: np.ndarray, k: int, n: int, seed: int) -> RealManifold:
    return real_manifold(train, k, max_vectors=n, rng=np.random.default_rng([seed, REAL_SEED_TAG]))


def heldout_scores(
    manifold: RealManifold, heldout: np.ndarray, n: int, seed: int
) -> KnnScores | None:
    """The ceiling: held-out real latents (at most ``n``) as the generated set; None when
    there are too few of them for their own k-NN radii."""
    vectors = subsample(
        np.asarray(heldout, dtype=np.float64), n, np.random.default_rng([seed, HELDOUT_SEED_TAG])
    )
    try:
        check_k(manifold.k, vectors.shape[0], "held-out")
    except ValueError:
        return None
    return knn_scores(manifold, vectors)


def sampler_scores(
    manifold: RealManifold,
    sampler: Sampler,
    scales: Sequence[float],
    n: int,
    seed: int,
    sampler_index: int,
) -> dict[float, KnnScores]:
    """``{scale: scores}``: ``n`` vectors per scale, the same base draws at every scale."""
    out: dict[float, KnnScores] = {}
    for s in scales:
        rng = np.random.default_rng([seed, sampler_index, GENERATED_SEED_TAG])
        out[float(s)] = knn_scores(manifold, sampler.with_scale(float(s)).sample(n, rng))
    return out


def knn_metrics(sampler: str, scores: Mapping[float, KnnScores] | KnnScores) -> dict[str, float]:
    """Every figure with its interval: a mapping of scales, or one set (the held-out row)."""
    items = scores.items() if isinstance(scores, Mapping) else [(None, scores)]
    metrics: dict[str, float] = {}
    for b, one in items:
        for name, score in one.as_dict().items():
            metrics[knn_metric(name, sampler, b)] = score.value
            metrics[knn_metric(f"{name}_lo", sampler, b)] = score.lo
            metrics[knn_metric(f"{name}_hi", sampler, b)] = score.hi
    return metrics


def size_metrics(manifold: RealManifold, n: int, heldout: KnnScores | None) -> dict[str, float]:
    metrics = {
        "knn_k": float(manifold.k),
        "knn_n_real": float(manifold.n),
        "knn_n_generated": float(n),
    }
    if heldout is not None:
        metrics["knn_n_heldout"] = float(heldout.n_generated)
    return metrics


def curves(scores: Mapping[float, KnnScores]) -> dict[str, dict[float, tuple[float, float, float]]]:
    """``{figure: {scale: (value, lo, hi)}}``, for the box-versus-k-NN plot."""
    out: dict[str, dict[float, tuple[float, float, float]]] = {}
    for s, one in scores.items():
        for name, score in one.as_dict().items():
            out.setdefault(name, {})[s] = (score.value, score.lo, score.hi)
    return out


def ceiling_points(heldout: KnnScores | None) -> dict[str, tuple[float, float, float]]:
    if heldout is None:
        return {}
    return {name: (s.value, s.lo, s.hi) for name, s in heldout.as_dict().items()}


def write_knn_scores(
    path: Path, per_sampler: Mapping[str, Mapping[float, KnnScores]], heldout: KnnScores | None
) -> Path:
    """One row per (sampler, b or scale) and one for the held-out latents."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def row(sampler: str, b: str, one: KnnScores) -> list:
        values = [
            repr(float(getattr(s, f)))
            for s in one.as_dict().values()
            for f in ("value", "lo", "hi")
        ]
        return [sampler, b, one.n_generated, one.n_real, one.k, *values]

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(KNN_COLUMNS)
        for sampler, scores in per_sampler.items():
            for b, one in scores.items():
                writer.writerow(row(sampler, f"{b:g}", one))
        if heldout is not None:
            writer.writerow(row(HELDOUT, "", heldout))
    return path


def summary(sampler: str, scores: Mapping[float, KnnScores]) -> str:
    lines = [f"{sampler}: k-NN precision / recall / density / coverage per b or scale"]
    for b, one in scores.items():
        lines.append(f"{b:>8g}  " + "  ".join(f"{s.value:8.3f}" for s in one.as_dict().values()))
    return "\n".join(lines)


class RegionTest:
    """The k-NN test of one evaluate run: the real manifold and the held-out ceiling once,
    then each sampler's scores and files as it finishes (the CSV rewritten each time)."""

    def __init__(self, train: np.ndarray, heldout: np.ndarray, k: int, n: int, seed: int) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.manifold = build_manifold(train, k, n, seed)
        self.heldout = heldout_scores(self.manifold, heldout, n, seed)
        self.scores: dict[str, dict[float, KnnScores]] = {}

    def start_metrics(self) -> dict[str, float]:
        """The sizes, and the held-out latents' figures (the ceiling) when there are enough."""
        metrics = size_metrics(self.manifold, self.n, self.heldout)
        if self.heldout is not None:
            metrics.update(knn_metrics(HELDOUT, self.heldout))
        return metrics

    def score(
        self, name: str, sampler: Sampler, scales: Sequence[float], sampler_index: int
    ) -> dict[str, float]:
        self.scores[name] = sampler_scores(
            self.manifold, sampler, scales, self.n, self.seed, sampler_index
        )
        return knn_metrics(name, self.scores[name])

    def files(
        self,
        out: Path,
        name: str,
        rates: Mapping[float, Mapping[float, tuple]],
        ceiling: Mapping[float, tuple] | None,
        scale_label: str,
    ) -> list[Path]:
        """``hits/box_vs_knn_<name>.png`` and the table of every sampler so far."""
        return [
            save_box_vs_knn(
                rates,
                ceiling,
                curves(self.scores[name]),
                ceiling_points(self.heldout),
                out / BOX_VS_KNN_PNG.format(sampler=name),
                scale_label,
                title=f"{name}: box test and k-NN test (k = {self.manifold.k}, "
                f"{self.n:,} generated against {self.manifold.n:,} real vectors)",
            ),
            write_knn_scores(out / KNN_SCORES_CSV, self.scores, self.heldout),
        ]

    def summary(self, name: str) -> str:
        return summary(name, self.scores[name])

    def heldout_summary(self) -> str:
        if self.heldout is None:
            return f"k-NN test: fewer than {self.manifold.k + 1} held-out latents, no ceiling"
        values = ", ".join(
            f"{n} {s.value:.3f} [{s.lo:.3f}, {s.hi:.3f}]" for n, s in self.heldout.as_dict().items()
        )
        return (
            f"held-out real latents ({self.heldout.n_generated}) against the k-NN balls of "
            f"{self.manifold.n} training latents (k = {self.manifold.k}): {values}"
        )
