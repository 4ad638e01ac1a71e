"""What a job prints: no native-library noise that looks like an error, and progress that is
one updating line on a terminal and a few plain lines in a log file.

- :func:`quiet_native_logs`, before TensorFlow is imported: a successful CPU run makes
  TensorFlow's C++ code print ERROR lines that are no error of the run (``failed call to
  cuInit`` on a machine without a GPU driver, grappler's ``remapper failed``, ``NodeDef
  mentions attribute ...``). ``TF_CPP_MIN_LOG_LEVEL=3`` turns its C++ log off below FATAL
  unless the user set the variable (``0`` shows everything). TensorFlow's real failures
  still raise Python exceptions, and this package's own messages are untouched.
  When stderr is no terminal, MLflow's artifact download bars are switched off too
  (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false`` unless set).
- :func:`progress_bar`: tqdm when stderr is a terminal; else :class:`LineProgress`, which
  writes a plain line at most every ``min_seconds`` (at 10% steps) and one at the end,
  instead of hundreds of carriage-return frames in a log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

TF_LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "3"  # 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (FATAL stays)
MLFLOW_BARS_VAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def quiet_native_logs() -> None:
    """``TF_CPP_MIN_LOG_LEVEL=3`` unless set (to anything but empty) by the user; and, when
    stderr is no terminal, no MLflow download bars (each one is frames, not a line)."""
    if not os.environ.get(TF_LOG_LEVEL_VAR):
        os.environ[TF_LOG_LEVEL_VAR] = QUIET_TF_LOG_LEVEL
    if not interactive():
        os.environ.setdefault(MLFLOW_BARS_VAR, "false")


def interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr, where progress goes) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


class LineProgress:
    """Progress for logs: a line at a 10% step at most every ``min_seconds``, and a last line.

    Has the part of tqdm's interface this package uses (``update``, ``close``, context manager).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        *,
        min_seconds: float = 30.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total = max(int(total), 0)
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.min_seconds = min_seconds
        self.stream = stream
        self._started = self._last = time.monotonic()
        self._step = 0  # the last 10% step written
        self._closed = False

    def _write(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.stream or sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total or self.n >= self.total:
            return  # the last line comes from close()
        step = 10 * self.n // self.total
        now = time.monotonic()
        if step > self._step and now - self._last >= self.min_seconds:
            self._step, self._last = step, now
            self._write(
                f"{self.n:,}/{self.total:,} {self.unit} ({100 * self.n // self.total}%), "
                f"{now - self._started:.0f} s"
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._write(
            f"{self.n:,}/{self.total:,} {self.unit} in {time.monotonic() - self._started:.1f} s"
        )

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(
    total: int, desc: str, unit: str = "it", *, enabled: bool = True, **tqdm_kwargs: Any
) -> Any:
    """tqdm on a terminal, :class:`LineProgress` in a log, nothing when not ``enabled``."""
    if not enabled:
        return _NoProgress()
    if interactive():
        from tqdm.auto import tqdm  # ~50 ms; only a terminal shows a bar

        return tqdm(total=total, desc=desc, unit=unit, **tqdm_kwargs)
    return LineProgress(total, desc, unit)


@contextmanager
def optuna_progress(n_trials: int, desc: str) -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``study.optimize``: Optuna's bar on a terminal, else a
    :class:`LineProgress` fed by a trial callback."""
    if interactive():
        yield {"show_progress_bar": True}
        return
    with LineProgress(n_trials, desc, "trials") as lines:
        yield {"show_progress_bar": False, "callbacks": [lambda study, trial: lines.update()]}
