"""The k-NN search objective (``objective=knn``): how well its intervals cover, how fast.

    .venv/bin/python benchmarks/bench_knn_objective.py [--quick]

Real latents: N(0, 0.5^2) in ``D`` dimensions (``N_REAL`` of them), the uniform generator
over b. Truth is the same objective on ``TRUTH_REPLICATES`` generated sets:

- **value coverage**: at b = 0.8, how often ``value +- t(0.975, R-1) SE`` (R = 5 sets)
  contains the many-set mean, over ``REPEATS`` seeds;
- **best-b coverage**: how often the bracket of the best b (out to the nearest grid points
  significantly worse, paired over the sets) contains the optimum of the many-set curve
  (its best point on a 160-point grid), and its median relative width; for the first grid
  alone (16 points, steps of 15% like the search's 48 over its default range) and after the
  search's refinement (12 more points inside the first bracket);
- **timing**: one k-NN test at the search's default size (2,000 real and 2,000 generated
  vectors of 256 components) and the sweep's 240 of them, beside one box hit test of the
  same vectors (the ratio is what transfers between machines).

Writes ``benchmarks/results/knn_objective.json`` and ``.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from timing import median_seconds

from aelatent.core.hits import hit_grid
from aelatent.core.knn_objective import (
    DEFAULT_REPLICATES,
    GRID_POINTS,
    REFINE_POINTS,
    KnnSearchObjective,
    best_of_curve,
    refined_best,
)
from aelatent.core.precision_recall import real_manifold
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import estimate_windows

RESULTS = Path(__file__).parent / "results"


def objective(
    dim: int, n: int, seed: int, replicates: int = DEFAULT_REPLICATES
) -> KnnSearchObjective:
    real = np.random.default_rng(99).normal(0.0, 0.5, (n, dim))
    return KnnSearchObjective(
        real_manifold(real, 5, max_vectors=None),
        lambda b: UniformSampler(b, dim),
        n,
        seed,
        replicates=replicates,
    )


def coverage(dim: int, n: int, repeats: int, truth_replicates: int) -> dict[str, Any]:
    grid = np.geomspace(0.3, 2.5, 16)
    truth_objective = objective(dim, n, 10_000, truth_replicates)
    fine = np.geomspace(0.3, 2.5, 160)
    truth_best = float(fine[np.argmax(truth_objective.curve(fine).objective)])
    truth_at = truth_objective.curve(grid).objective
    at = int(np.argmin(abs(grid - 0.8)))
    t = float(stats.t.ppf(0.975, DEFAULT_REPLICATES - 1))
    value_in, coarse_in, coarse_widths, best_in, widths = [], [], [], [], []
    for seed in range(repeats):
        searched = objective(dim, n, seed)
        curve = searched.curve(grid)
        value_in.append(abs(curve.objective[at] - truth_at[at]) <= t * curve.objective_se[at])
        coarse = best_of_curve(curve)
        best = refined_best(searched, curve)[1]
        assert coarse is not None and best is not None
        coarse_in.append(coarse.contains(truth_best))
        coarse_widths.append((coarse.hi - coarse.lo) / coarse.b)
        best_in.append(best.contains(truth_best))
        widths.append((best.hi - best.lo) / best.b)
    return {
        "dim": dim,
        "n": n,
        "repeats": repeats,
        "truth_replicates": truth_replicates,
        "truth_best_b": truth_best,
        "value_coverage": float(np.mean(value_in)),
        "coarse_best_coverage": float(np.mean(coarse_in)),
        "coarse_median_relative_width": float(np.median(coarse_widths)),
        "best_coverage": float(np.mean(best_in)),
        "median_relative_width": float(np.median(widths)),
    }


def timing(repeats: int) -> dict[str, Any]:
    dim, n = 256, 2000
    knn = objective(dim, n, 0, replicates=2)
    real = knn.manifold.vectors
    windows = estimate_windows(real, "auto")

    def seconds(work) -> float:
        return median_seconds(work, repeats, warm_up=False)

    one_knn = seconds(lambda: knn.scores(0.8)) / knn.replicates
    one_box = seconds(
        lambda: hit_grid(
            UniformSampler(0.8, dim),
            [1.0],
            [2.0],
            windows.mu,
            windows.hw,
            n,
            np.random.default_rng(0),
        )
    )
    sweep = one_knn * (GRID_POINTS + REFINE_POINTS) * DEFAULT_REPLICATES
    return {
        "dim": dim,
        "n": n,
        "one_knn_test_s": one_knn,
        "one_box_test_s": one_box,
        "knn_over_box": one_knn / one_box,
        "sweep_s": sweep,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    quick = parser.parse_args().quick
    repeats = 20 if quick else 100
    results = {
        "machine": f"{platform.machine()}, {platform.processor() or '?'}",
        "coverage": [coverage(8, 400, repeats, 100), coverage(16, 2000, repeats // 4, 40)],
        "timing": timing(3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "knn_objective.json").write_text(json.dumps(results, indent=2))
    lines = [
        "# k-NN search objective",
        "",
        "| D | n | repeats | value coverage | best-b coverage, first grid | median width / b "
        "| best-b coverage, refined | median width / b |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in results["coverage"]:
        lines.append(
            f"| {c['dim']} | {c['n']} | {c['repeats']} | {c['value_coverage']:.2f} | "
            f"{c['coarse_best_coverage']:.2f} | {c['coarse_median_relative_width']:.3f} | "
            f"{c['best_coverage']:.2f} | {c['median_relative_width']:.3f} |"
        )
    t = results["timing"]
    lines += [
        "",
        f"One k-NN test ({t['n']} x {t['n']} x {t['dim']}): {t['one_knn_test_s']:.3f} s "
        f"({t['knn_over_box']:.0f}x one box hit test of the same vectors); a sweep of "
        f"{GRID_POINTS} + {REFINE_POINTS} b x {DEFAULT_REPLICATES} sets: {t['sweep_s']:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    (RESULTS / "knn_objective.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
