"""The search objective: where its optimum sits, how stable, how well covered, how fast.

    .venv/bin/python benchmarks/bench_search_objective.py [--quick]

Synthetic latents with planted structure (256 components N(0, 1), 4 shifted to N(+-1, 1), 6
widened to N(0, 2.5^2)), windows from ``estimate_windows(..., "auto")`` on n real vectors,
the real radii of the same vectors. For n in 400 and 20,000 and k in 1, 1.5, 2:

- **band stability**: the best b of each objective (``typical``, ``band``) with the radius
  band at the 1-99 and at the 5-95 percentiles, and whether each lies inside the other's
  interval (``best_b_lo``..``best_b_hi``);
- **coverage**: over ``REPEATS`` seeds of ``n_samples`` = 2,000 uniform vectors, how often
  the interval of b contains the optimum of a 200,000-vector draw, and its median relative
  width;
- **timing**: ``UniformSearchObjective`` construction and ``best_in`` over [0.05, 12] at
  n_samples = 20,000 and 200,000 (median of 3), beside the time of one box hit test of the
  same vectors (the ratio is what transfers between machines).

Writes ``benchmarks/results/search_objective.json`` and ``.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from aelatent.core.hits import hit_grid
from aelatent.core.objective import UniformSearchObjective, radius_band
from aelatent.core.radius import radii
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import estimate_windows

N = 256
B_RANGE = (0.05, 12.0)
BANDS = ((1.0, 99.0), (5.0, 95.0))
RESULTS = Path(__file__).resolve().parent / "results"


def planted_latents(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0.0, 1.0, (n, N))
    x[:, :4] += np.array([1.0, -1.0, 1.0, -1.0])
    x[:, 4:10] *= 2.5
    return x.astype(np.float32)


def stability(n: int, k: float) -> list[dict[str, Any]]:
    x = planted_latents(n, seed=21)
    windows, r = estimate_windows(x, "auto"), radii(x)
    rows = []
    for kind in ("typical", "band"):
        found = {}
        for band in BANDS:
            objective = UniformSearchObjective(
                windows.mu, windows.hw, k, radius_band(r, band), 20_000, 1, kind=kind, real_radii=r
            )
            found[band] = objective.best_in(*B_RANGE)
        wide, narrow = found[BANDS[0]], found[BANDS[1]]
        rows.append(
            {
                "n": n,
                "k": k,
                "objective": kind,
                "best_b_1_99": None if wide is None else [wide.b, wide.lo, wide.hi],
                "best_b_5_95": None if narrow is None else [narrow.b, narrow.lo, narrow.hi],
                "stable": bool(
                    wide and narrow and wide.contains(narrow.b) and narrow.contains(wide.b)
                ),
            }
        )
    return rows


def coverage(k: float, repeats: int) -> dict[str, Any]:
    x = np.random.default_rng(0).normal(0.0, 1.0, (2000, N)).astype(np.float32)
    r = radii(x)
    args = (np.zeros(N), np.full(N, 2.355), k, radius_band(r))
    truth = UniformSearchObjective(*args, 200_000, 99, kind="typical", real_radii=r)
    b_true = truth.best_in(1.0, 3.0, n_points=400).b
    covered, widths = 0, []
    for seed in range(repeats):
        best = UniformSearchObjective(*args, 2000, seed, kind="typical", real_radii=r).best_in(
            1.0, 3.0, n_points=400
        )
        covered += best.contains(b_true)
        widths.append(best.hi / best.lo - 1)
    return {
        "k": k,
        "b_true": b_true,
        "repeats": repeats,
        "coverage": covered / repeats,
        "median_relative_width": float(np.median(widths)),
    }


def timing(n_samples: int) -> dict[str, Any]:
    x = planted_latents(400, seed=3)
    windows, r = estimate_windows(x, "auto"), radii(x)
    build, best, box = [], [], []
    for _ in range(3):
        start = time.perf_counter()
        objective = UniformSearchObjective(
            windows.mu, windows.hw, 2.0, radius_band(r), n_samples, 1, kind="typical", real_radii=r
        )
        build.append(time.perf_counter() - start)
        start = time.perf_counter()
        objective.best_in(*B_RANGE)
        best.append(time.perf_counter() - start)
        start = time.perf_counter()
        hit_grid(
            UniformSampler(1.0, N),
            [1.8],
            [2.0],
            windows.mu,
            windows.hw,
            n_samples,
            np.random.default_rng(1),
        )
        box.append(time.perf_counter() - start)
    values = {
        "build_s": statistics.median(build),
        "best_in_s": statistics.median(best),
        "one_box_test_s": statistics.median(box),
    }
    values["best_in_per_box_test"] = values["best_in_s"] / values["one_box_test_s"]
    return {"n_samples": n_samples, **values}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Search objective",
        "",
        f"{result['machine']}",
        "",
        "## Best b under two radius bands (interval in brackets)",
        "",
        "| n | k | objective | band 1-99 | band 5-95 | each inside the other's interval |",
        "|---|---|---|---|---|---|",
    ]

    def show(v: list[float] | None) -> str:
        return "none (0 everywhere)" if v is None else f"{v[0]:.4g} [{v[1]:.4g}, {v[2]:.4g}]"

    for row in result["stability"]:
        lines.append(
            f"| {row['n']} | {row['k']:g} | {row['objective']} | "
            f"{show(row['best_b_1_99'])} | {show(row['best_b_5_95'])} | "
            f"{'yes' if row['stable'] else 'no'} |"
        )
    lines += [
        "",
        "## Coverage of the interval of b (typical objective, 2,000 vectors)",
        "",
        "| k | true optimum | seeds | coverage | median width (relative) |",
        "|---|---|---|---|---|",
    ]
    for row in result["coverage"]:
        lines.append(
            f"| {row['k']:g} | {row['b_true']:.5g} | {row['repeats']} | "
            f"{row['coverage']:.2f} | {row['median_relative_width']:.4f} |"
        )
    lines += [
        "",
        "## Timing (median of 3)",
        "",
        "| n_samples | build (s) | best_in (s) | one box test (s) | best_in / box test |",
        "|---|---|---|---|---|",
    ]
    for row in result["timing"]:
        lines.append(
            f"| {row['n_samples']} | {row['build_s']:.2f} | {row['best_in_s']:.2f} | "
            f"{row['one_box_test_s']:.2f} | {row['best_in_per_box_test']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer seeds, no files written")
    args = parser.parse_args()
    repeats = 20 if args.quick else 100
    result = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"numpy {np.__version__}",
        "stability": [
            row for n in (400, 20_000) for k in (1.0, 1.5, 2.0) for row in stability(n, k)
        ],
        "coverage": [coverage(k, repeats) for k in (2.0, 0.72)],
        "timing": [timing(n) for n in (20_000, 200_000)],
    }
    text = markdown(result)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "search_objective.json").write_text(json.dumps(result, indent=1))
        (RESULTS / "search_objective.md").write_text(text)


if __name__ == "__main__":
    main()
