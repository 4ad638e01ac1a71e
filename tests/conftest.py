"""Shared fixtures: a temporary MLflow store and a tiny train run made through `mlflow run`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.entities import Run

from aelatent.io.analysis_artifacts import write_csv
from aelatent.io.experiment import ensure_experiment

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY_TRAIN = {"case": "I", "epochs": "2", "image_size": "32", "seed": "3"}

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# `make test-fast` (-m "not e2e") runs every test that is fast. A test is e2e when it goes
# through `mlflow run` (mark it), trains a network (mark it) or uses a fixture that does
# (SLOW_FIXTURES: marked here). `mlflow_run` refuses to run in a test not marked e2e.
SLOW_FIXTURES = frozenset({"tiny_train_run"})
_in_e2e_test = False


# The files that take longest (seconds of a serial run), started first: `make test` hands
# whole files to its two processes in collection order (--no-loadscope-reorder), and one of
# these last would run alone at the end (test_main, 2-3 minutes).
LONGEST_FILES = (
    "jobs/test_postgres_stack.py",
    "jobs/test_search.py",
    "jobs/test_main.py",
    "jobs/test_run_ownership.py",
    "jobs/test_resume.py",
    "jobs/test_run_lifecycle.py",
    "jobs/test_evaluate.py",
    "jobs/test_report.py",
    "jobs/test_train.py",
    "jobs/test_resource_exhaustion.py",
)


def _start_rank(item: pytest.Item) -> int:
    path = item.path.as_posix()
    ranks = [rank for rank, name in enumerate(LONGEST_FILES) if path.endswith(f"tests/{name}")]
    return ranks[0] if ranks else len(LONGEST_FILES)


@pytest.hookimpl(tryfirst=True)  # before the `-m` selection reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=_start_rank)  # stable: a file's tests keep their order


@pytest.hookimpl(tryfirst=True)  # before the fixtures: a session fixture may call mlflow_run
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _in_e2e_test
    _in_e2e_test = item.get_closest_marker("e2e") is not None


@dataclass(frozen=True)
class MlflowRunResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def tracking_env(tracking_uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {  # `extra` may override any of these (TF_CPP_MIN_LOG_LEVEL="": as unset)
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": tracking_uri,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **extra,
        }
    )
    return env


def mlflow_run(
    entry_point: str, params: dict[str, str], tracking_uri: str, timeout: float = 600, **env: str
) -> MlflowRunResult:
    """``mlflow run . -e ENTRY --env-manager local -P k=v ...`` as a user would type it."""
    assert _in_e2e_test, "a test that goes through `mlflow run` is e2e: @pytest.mark.e2e"
    command = [str(BIN / "mlflow"), "run", str(ROOT), "-e", entry_point, "--env-manager", "local"]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=tracking_env(tracking_uri, **env),
        cwd=ROOT,
    )
    return MlflowRunResult(done.returncode, done.stdout, done.stderr)


def assert_user_error(result: MlflowRunResult, *fragments: str) -> str:
    """Non-zero exit, one `error:` line naming the value, and no traceback."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def find_runs(filter_string: str, *, newest_first: bool = True) -> list[Run]:
    """Runs of every experiment that match an MLflow search filter, newest first."""
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=filter_string,
        order_by=[f"attributes.start_time {'DESC' if newest_first else 'ASC'}"],
        output_format="list",
    )


def newest_run(filter_string: str) -> Run:
    runs = find_runs(filter_string)
    assert runs, f"no run matches {filter_string!r}"
    return runs[0]


def cli_error(cli, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run an entry point's command line in-process: exit 2, one error line, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if ": error: " in line]
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite MLflow store for the session (artifacts beside it)."""
    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.setdefault("AELATENT_CHECKPOINT_DIR", str(store / "checkpoints"))
    cwd = os.getcwd()
    os.chdir(store)  # the default artifact root ./mlruns lands in the temporary folder
    mlflow.MlflowClient(uri).search_experiments()  # creates the store and Default experiment here
    ensure_experiment()  # and `aelatent`, before an `mlflow run` in the project folder does
    yield uri
    os.chdir(cwd)
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session")
def tiny_train_run(tracking_uri: str) -> str:
    """The id of a FINISHED train run of case I on the built-in faces (2 epochs, 32x32)."""
    result = mlflow_run("train", TINY_TRAIN, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    return newest_run("tags.entry_point = 'train'").info.run_id


def log_synthetic_train_run(latents: np.ndarray, n_train: int, out: Path) -> str:
    """A FINISHED run tagged as a train run holding ``latents`` (the first ``n_train`` rows the
    training partition, the rest validation) and no model: what evaluate and search read."""
    (out / "latents").mkdir(parents=True)
    np.save(out / "latents" / "latents.npy", latents)
    n = latents.shape[0]
    write_csv(
        out / "latents" / "index.csv",
        {
            "row": np.arange(n),
            "image_id": np.arange(n),
            "partition": np.array(["train"] * n_train + ["val"] * (n - n_train)),
        },
    )
    with mlflow.start_run(run_name="synthetic train") as run:
        mlflow.set_tags({"entry_point": "train", "case": "synthetic", "dataset": "synthetic"})
        mlflow.log_artifacts(str(out))
    return run.info.run_id
