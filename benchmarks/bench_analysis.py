"""Benchmark of the latent analysis at CelebA scale: 202,599 x 256 float32 latents.

    .venv/bin/python benchmarks/bench_analysis.py [--n 202599] [--repeats 3]

On synthetic CelebA-like latents (about the study's observations, docs/science.md: most
components narrow around 0, 25 with |mu| >= 0.25, 40 with hw >= 1, 20 with hw >= 1.5, 5
with hw >= 3; plus a
weak 8-factor low-rank part that correlates components):

- ``analyse_s``: :func:`analyse_latents` wall time, best and median of ``--repeats``
  (the 2 cores are shared with other work: the best is the machine's figure), and its
  phases (histograms, covariance, per-component statistics, radii; best of 2);
- ``memory``: in a child process, the peak resident set during ``analyse_latents`` beyond
  the resident set before it (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``), the process's whole peak (interpreter, libraries and the
  207 MB input included), and tracemalloc's peak of the allocations the call itself makes;
- ``write_s``: :func:`write_analysis` with the six figures, and without them.

Targets (issue 3): analyse_latents <= 5 s and <= 1.5 GB peak. Writes
``benchmarks/results/analysis.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from aelatent.core.analysis import analyse_latents
from aelatent.core.components import component_stats
from aelatent.core.correlations import mean_and_covariance
from aelatent.core.histograms import component_histograms
from aelatent.core.radius import radii, radius_stats
from aelatent.io.analysis_artifacts import write_analysis

CELEBA_IMAGES = 202_599
Z_DIM = 256
RESULTS = Path(__file__).resolve().parent / "results" / "analysis.json"
TARGET_S = 5.0
TARGET_BYTES = 1.5e9
MB = 1e6


def celeba_like_latents(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n, 256]: per-component Gaussians with the study's mu/hw counts + 8 factors."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 0.05, Z_DIM)
    hw = rng.uniform(0.45, 0.95, Z_DIM)
    idx = rng.permutation(Z_DIM)
    mu[idx[:25]] = rng.choice([-1, 1], 25) * rng.uniform(0.25, 2.25, 25)
    hw[idx[:40]] = rng.uniform(1.0, 1.5, 40)
    hw[idx[:20]] = rng.uniform(1.5, 2.5, 20)
    hw[idx[:5]] = rng.uniform(3.0, 4.2, 5)
    sigma = (hw / 2.3548).astype(np.float32)
    latents = rng.standard_normal((n, Z_DIM), dtype=np.float32)
    loadings = (rng.standard_normal((8, Z_DIM)) * 0.03).astype(np.float32)
    for start in range(0, n, 16_384):
        block = latents[start : start + 16_384]
        block *= sigma
        block += mu.astype(np.float32)
        block += rng.standard_normal((len(block), 8), dtype=np.float32) @ loadings
    return latents


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def child_memory(n: int) -> dict[str, Any]:
    """Runs in a fresh process: resident-set and tracemalloc peaks of one analyse_latents."""
    latents = celeba_like_latents(n)
    analyse_latents(latents[:1000])  # import-time and first-call allocations out of the way
    before = _status_bytes("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    started = time.perf_counter()
    analyse_latents(latents)
    seconds = time.perf_counter() - started
    peak = _status_bytes("VmHWM")
    tracemalloc.start()
    analyse_latents(latents)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "input_mb": round(latents.nbytes / MB, 1),
        "rss_before_mb": round(before / MB, 1),
        "peak_rss_mb": round(peak / MB, 1),
        "peak_rss_above_before_mb": round((peak - before) / MB, 1) if reset else None,
        "hwm_reset": reset,
        "tracemalloc_peak_mb": round(traced_peak / MB, 1),
        "analyse_s_in_child": round(seconds, 3),
    }


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def phases(latents: np.ndarray, repeats: int = 2) -> dict[str, float]:
    """Best wall time of the analysis' main parts, in the order analyse_latents runs them."""
    hist = component_histograms(latents)
    mean, cov = mean_and_covariance(latents)
    variance = np.diag(cov).copy()
    parts = {
        "histograms_s": lambda: component_histograms(latents),
        "covariance_s": lambda: mean_and_covariance(latents),
        "component_stats_s": lambda: component_stats(latents, hist, mean=mean, variance=variance),
        "radius_s": lambda: radius_stats(radii(latents)),
    }
    return {name: round(min(timed(part, repeats)), 3) for name, part in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=CELEBA_IMAGES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_memory(args.n)))
        return

    load_before = os.getloadavg()
    latents = celeba_like_latents(args.n)
    analyse_latents(latents[:1000])  # warm-up: imports, BLAS threads
    times = timed(lambda: analyse_latents(latents), args.repeats)
    analysis = analyse_latents(latents)
    phase_times = phases(latents)
    with tempfile.TemporaryDirectory() as tmp:
        write_all = timed(lambda: write_analysis(analysis, Path(tmp)), 2)
        write_data = timed(lambda: write_analysis(analysis, Path(tmp), plots=False), 2)
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--n", str(args.n)],
        capture_output=True,
        text=True,
        check=True,
    )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    peak = memory["peak_rss_above_before_mb"] or memory["peak_rss_mb"]
    result = {
        "command": f".venv/bin/python benchmarks/bench_analysis.py --n {args.n} "
        f"--repeats {args.repeats}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "latents": {"n": args.n, "z_dim": Z_DIM, "dtype": "float32"},
        "analyse_s": {
            "best": round(min(times), 3),
            "median": round(statistics.median(times), 3),
            "all": [round(t, 3) for t in times],
            "phases": phase_times,
        },
        "memory": memory,
        "write_s": {"with_plots": round(min(write_all), 3), "data_only": round(min(write_data), 3)},
        "metrics": {k: round(v, 4) for k, v in analysis.metrics().items()},
        "targets": {
            "analyse_s_max": TARGET_S,
            "peak_mb_max": TARGET_BYTES / MB,
            "time_met": min(times) <= TARGET_S,
            "memory_met": peak * MB <= TARGET_BYTES,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
