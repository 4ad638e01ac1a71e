"""The benchmarks' one timer: the median of repeated calls (shared cores make the mean and
the minimum both misleading)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


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
