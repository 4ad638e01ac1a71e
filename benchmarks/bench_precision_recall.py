"""Benchmark of the k-NN region test: blocked GEMM + scikit-learn neighbours against cdist.

    .venv/bin/python benchmarks/bench_precision_recall.py [--n 2000] [--big 20000] [--repeats 3]

Measures, on synthetic latents of 256 components (the real set Gaussian with CelebA-like
widths, the generated set a slightly wider Gaussian, so every figure is inside (0, 1)):

- ``fast_s``: :func:`real_manifold` (the real k-NN radii) plus :func:`knn_scores` (the
  generated radii by scikit-learn's exact brute-force ``NearestNeighbors``, and one blocked
  float64 GEMM of generated against real vectors for all four figures), best of
  ``repeats``; ``fast_threads_s`` the same on the libraries' own threads (the module picks
  one thread below 10 million pairs);
- ``per_evaluation_s``: :func:`knn_scores` alone, the real radii reused, as evaluate runs it
  once per sampler and b or scale;
- ``cdist_s``: :func:`knn_scores_cdist`, the straightforward ``scipy.spatial.distance.cdist``
  version on whole matrices, best of ``repeats``;
- ``max_abs_difference``: between the two implementations' four figures (exactness);
- ``default_grid_s``: one real manifold and 23 evaluations (8 b of uniform, 5 scales of
  each of gaussian, mvn and gmm), as the default evaluate run;
- ``big``: ``--big`` real and generated vectors (20,000: the issue's scale), one evaluation
  and the projected default grid, with tracemalloc's peak (the blocks bound the memory;
  cdist would need 3 whole 20,000 x 20,000 float64 matrices, 9.6 GB, and is not run).

Writes ``benchmarks/results/precision_recall.json`` and ``.md`` and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import aelatent.core.precision_recall as pr

Z_DIM = 256
K = 5
DEFAULT_GRID_EVALUATIONS = 8 + 3 * 5
RESULTS = Path(__file__).resolve().parent / "results"


def latents(n: int, seed: int, widen: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = np.random.default_rng(0).uniform(0.2, 0.6, Z_DIM)  # CelebA-like component widths
    return (widen * sigma * rng.standard_normal((n, Z_DIM))).astype(np.float32)


def best_of(repeats: int, call) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def fast(real: np.ndarray, generated: np.ndarray) -> pr.KnnScores:
    return pr.knn_scores(pr.real_manifold(real, K, max_vectors=None), generated)


def fast_threads(real: np.ndarray, generated: np.ndarray) -> pr.KnnScores:
    old = pr.ONE_THREAD_PAIRS
    pr.ONE_THREAD_PAIRS = 0  # never limit: the libraries' own threads
    try:
        return fast(real, generated)
    finally:
        pr.ONE_THREAD_PAIRS = old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--big", type=int, default=20000, help="0: skip")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    real, generated = latents(args.n, 1), latents(args.n, 2, widen=1.1)

    fast_s, scores = best_of(args.repeats, lambda: fast(real, generated))
    fast_threads_s, _ = best_of(args.repeats, lambda: fast_threads(real, generated))
    manifold = pr.real_manifold(real, K, max_vectors=None)
    per_eval_s, _ = best_of(args.repeats, lambda: pr.knn_scores(manifold, generated))
    cdist_s, reference = best_of(args.repeats, lambda: pr.knn_scores_cdist(real, generated, K))
    ours = [s.value for s in scores.as_dict().values()]
    difference = float(np.max(np.abs(np.array(ours) - np.array(reference))))
    manifold_s, _ = best_of(1, lambda: pr.real_manifold(real, K, max_vectors=None))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at start",
        "n_real": args.n,
        "n_generated": args.n,
        "z_dim": Z_DIM,
        "k": K,
        "fast_s": fast_s,
        "fast_threads_s": fast_threads_s,
        "per_evaluation_s": per_eval_s,
        "real_manifold_s": manifold_s,
        "cdist_s": cdist_s,
        "speedup": cdist_s / fast_s,
        "speedup_per_evaluation": cdist_s / per_eval_s,
        "max_abs_difference": difference,
        "figures": dict(zip(pr.SCORES, ours, strict=True)),
        "default_grid_s": manifold_s + DEFAULT_GRID_EVALUATIONS * per_eval_s,
    }
    if args.big:
        big_real, big_generated = latents(args.big, 3), latents(args.big, 4, widen=1.1)
        tracemalloc.start()
        started = time.perf_counter()
        big_manifold = pr.real_manifold(big_real, K, max_vectors=None)
        manifold_big_s = time.perf_counter() - started
        started = time.perf_counter()
        pr.knn_scores(big_manifold, big_generated)
        evaluation_big_s = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        with threadpool_limits(1):
            started = time.perf_counter()
            pr.knn_scores(big_manifold, big_generated)
            one_thread_big_s = time.perf_counter() - started
        result["big"] = {
            "n": args.big,
            "real_manifold_s": manifold_big_s,
            "per_evaluation_s": evaluation_big_s,
            "per_evaluation_one_thread_s": one_thread_big_s,
            "default_grid_s": manifold_big_s + DEFAULT_GRID_EVALUATIONS * evaluation_big_s,
            "tracemalloc_peak_mb": peak / 2**20,
            "inputs_mb": (big_real.nbytes + big_generated.nbytes) * 2 / 2**20,  # float64 copies
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision_recall.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "precision_recall.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


def markdown(r: dict) -> str:
    n = r["n_real"]
    lines = [
        "# k-NN precision, recall, density and coverage: blocked GEMM against cdist",
        "",
        f"`benchmarks/bench_precision_recall.py`; {r['machine']}. {n:,} real and {n:,} "
        f"generated vectors of {r['z_dim']} components, k = {r['k']}.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| real radii + scores (sklearn neighbours, blocked GEMM), best | {r['fast_s']:.3f} s | |",
        f"| the same on the libraries' own threads | {r['fast_threads_s']:.3f} s | |",
        f"| one evaluation, real radii reused | {r['per_evaluation_s']:.3f} s | |",
        f"| scipy cdist, whole matrices, best | {r['cdist_s']:.3f} s | |",
        f"| speed-up (everything / per evaluation) | {r['speedup']:.1f}x / "
        f"{r['speedup_per_evaluation']:.1f}x | >= 5x |",
        f"| largest difference of the four figures | {r['max_abs_difference']:.1e} | 0 |",
        f"| default grid (1 real set, 23 evaluations) | {r['default_grid_s']:.1f} s | |",
    ]
    if "big" in r:
        b = r["big"]
        lines += [
            f"| {b['n']:,} x {b['n']:,}: real radii | {b['real_manifold_s']:.1f} s | |",
            f"| {b['n']:,} x {b['n']:,}: one evaluation (threads / one thread) | "
            f"{b['per_evaluation_s']:.1f} / {b['per_evaluation_one_thread_s']:.1f} s | |",
            f"| {b['n']:,} x {b['n']:,}: default grid, projected | {b['default_grid_s']:.0f} s "
            "| <= 30 s (issue 14) |",
            f"| {b['n']:,} x {b['n']:,}: tracemalloc peak (inputs as float64: "
            f"{b['inputs_mb']:.0f} MB) | {b['tracemalloc_peak_mb']:.0f} MB | bounded |",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
