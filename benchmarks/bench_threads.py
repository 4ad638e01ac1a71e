"""One BLAS thread against the libraries' default for the small linear algebra of the study.

    .venv/bin/python benchmarks/bench_threads.py [--repeats 5]

GHK estimates of a 256-dimensional MVN window probability (2,048 draws, what evaluate's
mvn and gmm cells and their window bootstrap run hundreds of times) and one k-NN test of
2,000 x 2,000 x 256, each timed on the default OpenBLAS threads and inside
``aelatent.core.threads.one_blas_thread`` (``ghk_log_replicates.__wrapped__``, the estimate
without its one-thread decorator, is called for the default). The load average at the start
is recorded: the gap grows with load, because idle BLAS threads spin for cores other
processes hold.

Writes ``benchmarks/results/threads.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from timing import median_seconds

from aelatent.core import samplers
from aelatent.core.precision_recall import _cross_pass, real_manifold
from aelatent.core.threads import one_blas_thread

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    rng = np.random.default_rng(0)
    latents = rng.normal(0.3, 1.0, (400, 256))
    cov = np.cov(latents, rowvar=False)
    mu, sd = latents.mean(0), latents.std(0)
    lo, hi = -mu - 2 * sd, -mu + 2 * sd

    def ghk() -> None:
        # the undecorated estimate: the default threads, or the one set around it below
        samplers.ghk_log_replicates.__wrapped__(lo, hi, cov, n_draws=2048, n_replicates=8, seed=0)

    manifold = real_manifold(rng.normal(size=(2000, 256)), 5, max_vectors=None)
    generated = rng.normal(size=(2000, 256))

    def cross() -> None:
        _cross_pass(generated, manifold.radii, manifold.vectors, manifold.radii)

    results: dict[str, object] = {"load_average_1min": os.getloadavg()[0], "repeats": repeats}
    for name, work in (("ghk_256d_2048_draws", ghk), ("knn_cross_2000x2000x256", cross)):
        default = median_seconds(work, repeats)
        with one_blas_thread():
            one = median_seconds(work, repeats)
        results[name] = {
            "default_threads_s": default,
            "one_thread_s": one,
            "default_over_one": default / one,
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
