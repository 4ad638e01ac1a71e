"""One BLAS thread for small linear algebra, decided per call and cheap to enter.

NumPy's OpenBLAS starts a thread per core and spins them for every call; for matrices of a
few hundred rows the threads cost more than they give, and on a shared or busy machine
(the tests, several workers) they spin against each other: a GHK estimate in 256
dimensions took 3 to 5 times longer on the default two threads than on one, under load
(``benchmarks/bench_threads.py``). Big products keep the libraries' own threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _controller() -> Any:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries, found once: finding them
    reads /proc and every library (24 ms), more than a small problem takes."""
    from threadpoolctl import ThreadpoolController  # not in a served generator's env

    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager[object]:
    """Every BLAS/OpenMP library limited to one thread inside the ``with`` block."""
    return _controller().limit(limits=1)  # type: ignore[no-any-return]


def on_one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` always run inside :func:`one_blas_thread` (``__wrapped__``: without)."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_blas_thread():
            return function(*args, **kwargs)

    return limited


def blas_threads_for(work: int, threshold: int) -> AbstractContextManager[object]:
    """One thread below ``threshold`` units of ``work``, the libraries' default above."""
    return one_blas_thread() if work < threshold else nullcontext()
