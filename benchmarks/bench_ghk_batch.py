"""The window bootstrap's GHK estimates one window at a time against one batched pass.

    .venv/bin/python benchmarks/bench_ghk_batch.py [--repeats 5]

evaluate's error of ``log10 P(hit)`` for mvn and gmm (``windows_log10_error``) re-estimates the
probability on ``MVN_WINDOW_DRAWS`` bootstrap draws of the windows with ``MVN_GHK_DRAWS``
GHK paths each, for every (scale, k) cell. The GHK recursion runs over the 256 variables in
Python, so one small estimate is mostly per-variable overhead; the batch
(``window_log10_probabilities``) runs the draws' windows through one recursion. Measured on
ORL-shaped latents (360 x 256, a few dominant directions plus noise, as a trained encoder
gives): the mvn sampler and a 3-component gmm, one cell's bootstrap each, and the spread of
the two answers (they differ by GHK noise only: the batch orders the variables by the
draws' mean window).

Writes ``benchmarks/results/ghk_batch.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from timing import median_seconds

from aelatent.core.hit_uncertainty import MVN_GHK_DRAWS, MVN_WINDOW_DRAWS, sample_windows
from aelatent.core.mixture import GMMSampler
from aelatent.core.samplers import MVNSampler
from aelatent.core.windows import estimate_windows

RESULTS = Path(__file__).parent / "results"


def latents(n: int = 400, dim: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((8, dim))
    clusters = rng.choice(3, size=n)
    centres = 1.5 * rng.standard_normal((3, 8))
    x = (centres[clusters] + rng.standard_normal((n, 8))) @ directions / 3
    return (x + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def measure(name: str, sampler, lo: np.ndarray, hi: np.ndarray, repeats: int) -> dict:
    quick = sampler.with_ghk_draws(MVN_GHK_DRAWS)
    one_at_a_time = lambda: np.array(  # noqa: E731
        [quick.window_log10_probability(a, b) for a, b in zip(lo, hi, strict=True)]
    )
    batched = lambda: quick.window_log10_probabilities(lo, hi)  # noqa: E731
    loop_s, batch_s = median_seconds(one_at_a_time, repeats), median_seconds(batched, repeats)
    single, batch = one_at_a_time(), batched()
    return {
        "sampler": name,
        "windows": int(lo.shape[0]),
        "one_at_a_time_s": loop_s,
        "batched_s": batch_s,
        "speedup": loop_s / batch_s,
        "log10_p_mean": float(np.mean(single)),
        "spread_one_at_a_time": float(np.std(single, ddof=1)),
        "spread_batched": float(np.std(batch, ddof=1)),
        "max_abs_difference": float(np.max(np.abs(single - batch))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    x = latents()
    train = x[:360]
    windows = estimate_windows(train, "auto")
    draws = sample_windows(windows, MVN_WINDOW_DRAWS, np.random.default_rng(0))
    k = 1.5
    centres = np.stack([m for m, _ in draws])
    widths = np.stack([w for _, w in draws])
    lo, hi = centres - k * widths, centres + k * widths
    results = {
        "load_average_at_start": os.getloadavg()[0],
        "z_dim": int(x.shape[1]),
        "ghk_draws": MVN_GHK_DRAWS,
        "k": k,
        "cells": [
            measure("mvn", MVNSampler.from_latents(train), lo, hi, repeats),
            measure("gmm", GMMSampler.from_latents(train, seed=0), lo, hi, repeats),
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ghk_batch.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
