"""A quiet console: TensorFlow's C++ log off unless the user set it; progress as a few lines
in a log file instead of bar frames."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import optuna
import pytest

from aelatent import console
from aelatent.console import LineProgress, optuna_progress, progress_bar, quiet_native_logs


def test_the_tensorflow_log_level_defaults_to_quiet_and_a_user_value_is_kept(monkeypatch):
    for name in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        monkeypatch.setenv(name, "")  # recorded, so undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setattr(console, "interactive", lambda stream=None: False)
    quiet_native_logs()
    assert console.os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert console.os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_native_logs()
    assert console.os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_line_progress_writes_few_plain_lines(monkeypatch):
    out = io.StringIO()
    clock = iter(range(0, 10_000, 20))  # 20 s a call
    monkeypatch.setattr(console.time, "monotonic", lambda: next(clock))
    with LineProgress(100, "decoding", "img", min_seconds=30, stream=out) as bar:
        for _ in range(100):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert 3 <= len(lines) <= 10 and lines[-1].startswith("decoding: 100/100 img in ")
    assert all(line.startswith("decoding: ") and "%)" in line for line in lines[:-1])


def test_a_short_task_writes_one_line():
    out = io.StringIO()
    with LineProgress(400, "encoding", "img", stream=out) as bar:
        bar.update(400)
    text = out.getvalue()
    assert text.startswith("encoding: 400/400 img in ") and text.count("\n") == 1


def test_no_terminal_no_bar(monkeypatch, capsys):
    monkeypatch.setattr(console, "interactive", lambda stream=None: False)
    assert isinstance(progress_bar(10, "x"), LineProgress)
    with progress_bar(10, "x", enabled=False) as bar:
        bar.update(10)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    with optuna_progress(5, "aelatent search") as kwargs:
        assert kwargs["show_progress_bar"] is False
        study.optimize(lambda trial: trial.suggest_float("b", 0, 1), n_trials=5, **kwargs)
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()] and "5/5 trials in" in err


def test_one_trial_count_across_optimize_calls_without_failed_copies(monkeypatch, capsys):
    """Two ``study.optimize`` calls (a generator search's two phases) feed one count; a trial
    that fails at once (a queued copy another worker ran) is not counted."""
    monkeypatch.setattr(console, "interactive", lambda stream=None: False)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()

    def copy(trial: optuna.Trial) -> float:
        raise KeyError("a queued copy")

    with optuna_progress(5, "aelatent search") as kwargs:
        study.optimize(lambda trial: trial.suggest_float("b", 0, 1), n_trials=3, **kwargs)
        study.optimize(copy, n_trials=1, catch=(KeyError,), **kwargs)
        study.optimize(lambda trial: trial.suggest_float("b", 0, 1), n_trials=2, **kwargs)
    err = capsys.readouterr().err
    assert "5/5 trials in" in err and "6/5" not in err, err


@pytest.mark.e2e  # a subprocess that imports TensorFlow
def test_tensorflow_imports_without_its_info_lines_and_other_lines_survive():
    """A plain job process (no Makefile environment): TensorFlow's import-time INFO lines
    (oneDNN, CUDA stubs) are filtered out; anything else written to fd 2 meanwhile stays."""
    code = (
        "import os\n"
        "from aelatent.console import quiet_native_logs, native_stderr_filtered\n"
        "quiet_native_logs()\n"
        "import tensorflow\n"
        "with native_stderr_filtered(('noise',)):\n"
        "    os.write(2, b'noise line\\nreal problem\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "oneDNN custom operations" not in result.stderr and "I0000" not in result.stderr
    assert "real problem" in result.stderr and "noise line" not in result.stderr
