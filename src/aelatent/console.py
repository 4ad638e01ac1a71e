"""What a job prints: no native-library noise that looks like an error, and progress that is
one updating line on a terminal and a few plain lines in a log file.

- :func:`quiet_native_logs`, before TensorFlow is imported: a successful CPU run makes
  TensorFlow's C++ code print ERROR lines that are no error of the run (``failed call to
  cuInit`` on a machine without a GPU driver, grappler's ``remapper failed``, ``NodeDef
  mentions attribute ...``). ``TF_CPP_MIN_LOG_LEVEL=3`` turns its C++ log off below FATAL
  unless the user set the variable (``0`` shows everything). TensorFlow's real failures
  still raise Python exceptions, and this package's own messages are untouched.
  When stderr is no terminal, MLflow's artifact download bars are switched off too
  (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false`` unless set). TensorFlow 2.21 prints a few
  INFO lines while it is imported, before its log level is read (``oneDNN custom
  operations are on``, ``Could not find cuda drivers``): an import hook
  (:class:`QuietTensorFlowImport`) sends the native stderr of that one import to a file and
  writes back every line but those, so a real import error is still seen.
- :func:`progress_bar`: tqdm when stderr is a terminal; else :class:`LineProgress`, which
  writes a plain line at most every ``min_seconds`` (at 10% steps) and one at the end,
  instead of hundreds of carriage-return frames in a log.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

TF_LOG_LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "3"  # 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR (FATAL stays)
MLFLOW_BARS_VAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def quiet_native_logs() -> None:
    """``TF_CPP_MIN_LOG_LEVEL=3`` unless set (to anything but empty) by the user, and then
    TensorFlow's import-time INFO lines filtered (:class:`QuietTensorFlowImport`); when
    stderr is no terminal, no MLflow download bars (each one is frames, not a line)."""
    if not os.environ.get(TF_LOG_LEVEL_VAR):
        os.environ[TF_LOG_LEVEL_VAR] = QUIET_TF_LOG_LEVEL
    hooked = any(isinstance(f, QuietTensorFlowImport) for f in sys.meta_path)
    if os.environ[TF_LOG_LEVEL_VAR] != "0" and "tensorflow" not in sys.modules and not hooked:
        sys.meta_path.insert(0, QuietTensorFlowImport())
    if not interactive():
        os.environ.setdefault(MLFLOW_BARS_VAR, "false")


IMPORT_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "] oneDNN custom operations are on",
    "cudart_stub.cc",
    "Could not find cuda drivers",
    "Unable to register cu",  # cuFFT / cuDNN / cuBLAS factories of a CPU build
    "computation_placer.cc",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
)


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` (the first time, whoever asks) with the process's stderr (fd 2,
    where native code writes) in a temporary file; afterwards every line but the known
    import-time INFO lines (:data:`IMPORT_NOISE`) is written back to stderr."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders take it from here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            with native_stderr_filtered(IMPORT_NOISE):
                original(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


@contextmanager
def native_stderr_filtered(noise: tuple[str, ...]) -> Iterator[None]:
    """fd 2 into a temporary file for the block; then its lines, less those containing any
    of ``noise``, to the real stderr."""
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as caught:
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [
                line
                for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                if not any(n in line for n in noise)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


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
    """Keyword arguments for ``study.optimize``: a trial callback that feeds one bar for
    the whole run (:func:`progress_bar`: tqdm on a terminal, :class:`LineProgress` in a
    log), counting the trials that ran.

    Why not Optuna's own bar: a generator search calls ``study.optimize`` once per phase
    (its fitted defaults and TPE's trials, then the sibling queue), and Optuna's bar starts
    again at 0 for each call; and a queued copy another worker already ran fails at once
    (FAIL, unscored), which is not a trial of this worker's ``n_trials``."""
    from optuna.trial import TrialState  # here: the console module stays import-light

    with progress_bar(n_trials, desc, "trials") as bar:

        def ran(study: Any, trial: Any) -> None:
            if trial.state != TrialState.FAIL:
                bar.update(1)

        yield {"show_progress_bar": False, "callbacks": [ran]}
