"""The interval of the search's best b: coverage of the optimum of the true windows, and cost.

    nice -n 10 .venv/bin/python benchmarks/bench_best_b.py [--quick] [--seeds 100]

Issue 26: ``best_b_lo``..``best_b_hi`` (:func:`aelatent.core.best_b_interval.best_b_interval`)
should cover the optimum of the true windows and radii, not only that of the estimated ones.
Real latents: 256 independent components of one shape (Gaussian, Student t with 5 df,
skew-normal with shape 4), so every true window is equal; the windows (``central``, the
default) and the radius band and typicality are estimated from n = 400 vectors. Two values of
k per shape:

- ``smooth``: k = 2 (the default); the hit test does not bind, the radius weight decides;
- ``cliff``: k puts the common window edge 2% below the b the radii alone prefer, so the true
  optimum sits where b reaches the edge and the hit rate falls off a cliff (the case where
  the Monte Carlo plateau alone covered 7 of 100).

The truth: the same objective on the true windows (the shape's central interval), the true
radius distribution (100,000 vectors) and 200,000 uniform vectors. Per seed: a new data set,
the search's sweep (``best_in``) on ``n_samples`` uniform vectors and the interval with the
default 50 bootstrap replicates; and Gaussian data sets of n = 4,000 whose replicates draw
400 rows (the m-out-of-n path a CelebA-size run takes, n/m = 10). Reported beside it: the
Monte Carlo plateau alone, the bias-corrected bootstrap alone and the bootstrap's percentile
interval (neither with the widened windows nor the median radius). Timing: the interval at
n = 400 and at 200,000 x 256 (m = 20,000 rows a replicate), n_samples = 20,000.

Writes ``benchmarks/results/best_b.json`` and ``.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from aelatent.core.best_b_interval import DEFAULT_REPLICATES, MAX_ROWS, best_b_interval
from aelatent.core.objective import RealSource, UniformSearchObjective, radius_band
from aelatent.core.radius import radii
from aelatent.core.windows import CENTRAL_TAIL, Z95, estimate_windows

N = 256
N_REAL = 400
B_RANGE = (0.05, 12.0)  # the search's default range of b
SUBSAMPLED = 4000  # n of the subsampled check: replicates of N_REAL rows, as 20,000 of 200,000
TRUE_RADII = 100_000
TRUE_SAMPLES = 200_000
CLIFF_BELOW = 0.98  # the cliff case's common edge, relative to the radii's own optimum
TARGET = 0.93
RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = {"gaussian": stats.norm(), "t5": stats.t(5), "skewnorm4": stats.skewnorm(4.0)}


def draw(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(SHAPES[shape].rvs(size=(n, N), random_state=rng), dtype=np.float32)


def central_truth(shape: str) -> tuple[float, float]:
    """The shape's central interval: the estimand of ``central`` (midpoint, length)."""
    lo, hi = (float(SHAPES[shape].ppf(p)) for p in (CENTRAL_TAIL, 1 - CENTRAL_TAIL))
    return 0.5 * (lo + hi), hi - lo


def true_optimum(shape: str, k: float, true_radii: np.ndarray) -> float:
    mu, hw = central_truth(shape)
    truth = UniformSearchObjective(
        np.full(N, mu),
        np.full(N, hw),
        k,
        radius_band(true_radii),
        TRUE_SAMPLES,
        99,
        kind="typical",
        real_radii=true_radii,
    )
    best = truth.best_in(*B_RANGE)
    assert best is not None
    return best.b


def coverage(
    shape: str,
    regime: str,
    seeds: int,
    n_samples: int,
    n_real: int = N_REAL,
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    start = time.perf_counter()
    true_radii = radii(draw(shape, TRUE_RADII, np.random.default_rng(7)))
    mu, hw = central_truth(shape)
    if regime == "smooth":
        k = 2.0
    else:  # the lower edge mu - k hw at -0.98 b_radii: b reaches it first
        b_radii = true_optimum(shape, 6.0, true_radii)
        k = (CLIFF_BELOW * b_radii + mu) / hw
    b_true = true_optimum(shape, k, true_radii)
    rows: list[dict[str, Any]] = []
    for seed in range(seeds):
        x = draw(shape, n_real, np.random.default_rng([seed, n_real]))
        windows, r = estimate_windows(x), radii(x)
        source = RealSource(x, np.empty(0), "central", (1.0, 99.0))
        objective = UniformSearchObjective(
            windows.mu,
            windows.hw,
            k,
            radius_band(r),
            n_samples,
            seed,
            kind="typical",
            real_radii=r,
            source=source,
        )
        best = objective.best_in(*B_RANGE)
        assert best is not None
        found = best_b_interval(objective, best, *B_RANGE, max_rows=max_rows)
        logs, centre = np.log(found.replicates), math.log(found.b)
        lam = n_real / found.rows  # as best_b_interval rescales the subsampled replicates
        corrected = centre - found.shift / lam
        half = Z95 * found.spread * math.sqrt(1 + 1 / (lam * found.replicates.size))
        rows.append(
            {
                "b": found.b,
                "lo": found.lo,
                "hi": found.hi,
                "mc": [found.mc_lo, found.mc_hi],
                "boot": [math.exp(corrected - half), math.exp(corrected + half)],
                "percentile": [float(np.exp(np.percentile(logs, q))) for q in (2.5, 97.5)],
                "widest": found.widest,
                "by_median": list(found.by_median),
            }
        )

    def covered(lo_hi: list[list[float]]) -> int:
        return int(sum(bool(lo <= b_true <= hi) for lo, hi in lo_hi))

    hits = covered([[row["lo"], row["hi"]] for row in rows])
    return {
        "shape": shape,
        "regime": regime,
        "n": n_real,
        "rows_per_replicate": min(n_real, max_rows),
        "k": k,
        "b_true": b_true,
        "seeds": seeds,
        "n_samples": n_samples,
        "covered": hits,
        "coverage": hits / seeds,
        "p_below_target": float(stats.binom.cdf(hits, seeds, TARGET)),
        "coverage_mc_plateau": covered([row["mc"] for row in rows]) / seeds,
        "coverage_bootstrap_alone": covered([row["boot"] for row in rows]) / seeds,
        "coverage_percentile": covered([row["percentile"] for row in rows]) / seeds,
        "median_error": float(np.median([row["b"] / b_true - 1 for row in rows])),
        "median_lo": float(np.median([row["lo"] / b_true - 1 for row in rows])),
        "median_hi": float(np.median([row["hi"] / b_true - 1 for row in rows])),
        "seconds": time.perf_counter() - start,
    }


def timing(n: int, repeats: int) -> dict[str, Any]:
    x = draw("gaussian", n, np.random.default_rng(3))
    windows, r = estimate_windows(x), radii(x)
    objective = UniformSearchObjective(
        windows.mu,
        windows.hw,
        2.0,
        radius_band(r),
        20_000,
        1,
        kind="typical",
        real_radii=r,
        source=RealSource(x, np.empty(0), "central", (1.0, 99.0)),
    )
    start = time.perf_counter()
    best = objective.best_in(*B_RANGE)
    sweep = time.perf_counter() - start
    assert best is not None
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        best_b_interval(objective, best, *B_RANGE)
        seconds.append(time.perf_counter() - start)
    return {
        "n": n,
        "rows_per_replicate": min(n, 20_000),
        "replicates": DEFAULT_REPLICATES,
        "best_in_s": sweep,
        "interval_s": statistics.median(seconds),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Interval of the best b",
        "",
        f"{result['machine']}; load average {result['load']:.2f} at the start; "
        f"{result['minutes']:.1f} min",
        "",
        f"Coverage of the true optimum, windows and radii from n = {N_REAL}, z_dim = {N}, "
        f"n_samples = {result['n_samples']}, {DEFAULT_REPLICATES} replicates (target >= "
        f"{TARGET:.0%}; p: binomial chance of so few covered at {TARGET:.0%}):",
        "",
        "| shape | regime | n (m) | k | true b | covered | p | MC plateau alone | bootstrap alone "
        "| percentile | median b_hat - b* | median lo, hi - b* |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["coverage"]:
        lines.append(
            f"| {row['shape']} | {row['regime']} | {row['n']:,} ({row['rows_per_replicate']:,}) | "
            f"{row['k']:.4g} | {row['b_true']:.4g} | "
            f"{row['covered']}/{row['seeds']} ({row['coverage']:.0%}) | "
            f"{row['p_below_target']:.2f} | {row['coverage_mc_plateau']:.0%} | "
            f"{row['coverage_bootstrap_alone']:.0%} | {row['coverage_percentile']:.0%} | "
            f"{row['median_error']:+.2%} | {row['median_lo']:+.2%}, {row['median_hi']:+.2%} |"
        )
    lines += [
        "",
        f"Cost (n_samples = 20,000, median of the repeats; load average "
        f"{result.get('timing_load', result['load']):.2f}):",
        "",
        "| n x 256 | rows a replicate | replicates | best_in (s) | interval (s) |",
        "|---|---|---|---|---|",
    ]
    for row in result["timing"]:
        lines.append(
            f"| {row['n']:,} | {row['rows_per_replicate']:,} | {row['replicates']} | "
            f"{row['best_in_s']:.2f} | {row['interval_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 seeds, no files written")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument(
        "--n-samples", type=int, default=5000, help="uniform vectors per sweep and replicate"
    )
    parser.add_argument("--no-timing", action="store_true", help="coverage only")
    parser.add_argument(
        "--timing-only", action="store_true", help="rerun the timing into the written results"
    )
    args = parser.parse_args()
    if args.timing_only:
        result = json.loads((RESULTS / "best_b.json").read_text())
        result["timing"] = [timing(400, 3), timing(200_000, 1)]
        result["timing_load"] = os.getloadavg()[0]
        write(result)
        return
    seeds = 10 if args.quick else args.seeds
    begin, load = time.perf_counter(), os.getloadavg()[0]
    rows = []
    for shape in SHAPES:
        for regime in ("smooth", "cliff"):
            rows.append(coverage(shape, regime, seeds, args.n_samples))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for regime in ("smooth", "cliff"):  # the subsampled replicates (m-out-of-n), lambda = 10
        rows.append(coverage("gaussian", regime, seeds, args.n_samples, SUBSAMPLED, N_REAL))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    timings = [] if args.no_timing else [timing(400, 3), timing(200_000, 1)]
    result = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), "
        f"numpy {np.__version__}",
        "load": load,
        "minutes": (time.perf_counter() - begin) / 60,
        "n_samples": args.n_samples,
        "coverage": rows,
        "timing": timings,
    }
    if args.quick:
        print(markdown(result))
    else:
        write(result)


def write(result: dict[str, Any]) -> None:
    text = markdown(result)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "best_b.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "best_b.md").write_text(text)


if __name__ == "__main__":
    main()
