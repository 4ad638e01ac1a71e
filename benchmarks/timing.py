"""The benchmarks' one timer: the median of repeated calls (shared cores make the mean and
the minimum both misleading); and the record of where a benchmark ran (:func:`run_record`)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy


def median_seconds(work: Callable[[], Any], repeats: int, *, warm_up: bool = True) -> float:
    """Median wall time of ``work()`` over ``repeats`` calls, after one untimed call (caches,
    imports, BLAS start-up) unless ``warm_up`` is False."""
    if warm_up:
        work()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def run_record(command: str, started: float, load_before: float) -> dict[str, Any]:
    """Where and how a benchmark ran, the head of its results JSON: the command, the machine,
    the load average at the start and now (shared cores: read the figures against it), the
    versions, and the seconds since ``started`` (``time.perf_counter()``)."""
    return {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "run_s": round(time.perf_counter() - started, 1),
    }


RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, result: dict[str, Any], text: str) -> None:
    """``results/<stem>.json`` (every figure) and ``results/<stem>.md`` (``text``, the
    table a reader opens), then the table printed."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(text + "\n")
    print(text)
