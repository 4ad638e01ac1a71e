"""Benchmark of the hit test: the fast grid against the straightforward loop, and memory.

    .venv/bin/python benchmarks/bench_hits.py [--n-samples 200000] [--big 10000000]

Measures, on a synthetic CelebA-like region (256 components, most narrow around 0, a few
dominant ones; the study's observations) and the default grid (b in 1..12, k in 1..12):

- ``fast_s``: :func:`hit_grid` with everything the evaluate job uses (hits, exact
  probabilities, radii, miss-count histograms for every k), best of 3;
- ``fast_hits_only_s``: the same without miss counts;
- ``loop_s``: :func:`hit_grid_loop` drawing fresh samples and comparing per (b, k), once;
- ``big``: n_samples = 10,000,000 in a child process: wall time and peak memory (the
  child's peak resident set, ``VmHWM``: interpreter and libraries included; and
  tracemalloc's peak of the allocations made by the run itself). Not ``ru_maxrss``: Linux
  carries it over ``exec`` from the parent, whose loop baseline peaks at ~450 MB.

Writes ``benchmarks/results/hits.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aelatent.core.hits import hit_grid, hit_grid_loop
from aelatent.core.samplers import UniformSampler

B = [1, 1.5, 2, 3, 4, 6, 8, 12]
K = [1, 1.5, 2, 3, 6, 12]
Z_DIM = 256
RESULTS = Path(__file__).resolve().parent / "results" / "hits.json"


def celeba_like_region(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """mu mostly near 0, a few |mu| >= 1; hw mostly ~0.6, 40 >= 1, 20 >= 1.5, 5 >= 3."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 0.08, Z_DIM)
    hw = rng.uniform(0.45, 0.95, Z_DIM)
    idx = rng.permutation(Z_DIM)
    mu[idx[:25]] = rng.choice([-1, 1], 25) * rng.uniform(0.25, 2.25, 25)
    hw[idx[:40]] = rng.uniform(1.0, 1.5, 40)
    hw[idx[:20]] = rng.uniform(1.5, 2.5, 20)
    hw[idx[:5]] = rng.uniform(3.0, 4.2, 5)
    return mu, hw


def run_grid(n_samples: int, miss: bool, seed: int = 1) -> tuple[float, np.ndarray]:
    mu, hw = celeba_like_region()
    t0 = time.perf_counter()
    grid = hit_grid(
        UniformSampler(1.0, Z_DIM),
        B,
        K,
        mu,
        hw,
        n_samples,
        np.random.default_rng(seed),
        miss_ks=None if miss else (),
    )
    return time.perf_counter() - t0, grid.hits


def peak_rss_kib() -> int:
    """This process's peak resident set (``VmHWM``), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_big(n_samples: int) -> None:
    """Run in a child process: one big grid, print wall time and peak memory as JSON."""
    import tracemalloc

    tracemalloc.start()
    seconds, hits = run_grid(n_samples, miss=True)
    _, traced_peak = tracemalloc.get_traced_memory()
    maxrss_kib = peak_rss_kib()
    print(
        json.dumps(
            {
                "n_samples": n_samples,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(maxrss_kib / 1024, 1),
                "traced_peak_mb": round(traced_peak / 2**20, 1),
                "hits_b1": hits[0].tolist(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--big", type=int, default=10_000_000, help="0 to skip")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_big(args.child)
        return

    n = args.n_samples
    run_grid(20_000, miss=True)  # warm-up: imports, page faults
    fast = min(run_grid(n, miss=True)[0] for _ in range(3))
    fast_hits_only, hits = min((run_grid(n, miss=False) for _ in range(3)), key=lambda r: r[0])
    mu, hw = celeba_like_region()
    t0 = time.perf_counter()
    loop_hits = hit_grid_loop(UniformSampler(1.0, Z_DIM), B, K, mu, hw, n, np.random.default_rng(2))
    loop = time.perf_counter() - t0

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "grid": {"b": B, "k": K, "z_dim": Z_DIM, "n_samples": n},
        "fast_s": round(fast, 3),
        "fast_hits_only_s": round(fast_hits_only, 3),
        "loop_s": round(loop, 2),
        "speedup": round(loop / fast, 1),
        "speedup_hits_only": round(loop / fast_hits_only, 1),
        "hits_fast": hits.tolist(),
        "hits_loop_fresh_draws": loop_hits.tolist(),
    }
    if args.big:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(args.big)],
            check=True,
            capture_output=True,
            text=True,
        )
        result["big"] = json.loads(out.stdout.strip().splitlines()[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
