"""A full disk and a vanished store (issue 28, items 9 and 10): one line naming the path and
what is full or missing, exit 2, no traceback, no temporary file left, and the run FAILED
where the store still takes it (else the line says why it could not be closed).

The disks are real: a small tmpfs mounted in a user and mount namespace of the job's own
(``unshare --user --map-root-user --mount``, no root needed; as root where the kernel
forbids user namespaces, ``unshare --mount``), so every ENOSPC comes from the
kernel. The job runs as its command line does, in a subprocess; the SQLite file of the
vanished store is moved away by a hook in the job's process at a fixed instant (after its
first metric), as a user's ``mv`` would at a random one.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import ROOT, tracking_env
from mlflow.tracking import MlflowClient

from aelatent.io.analysis_artifacts import write_csv
from aelatent.io.experiment import EXPERIMENT_NAME, KIND, KIND_TAG

TIMEOUT_S = 180


# A mount namespace of the job's own where a tmpfs can be mounted: a user namespace where
# the kernel allows unprivileged ones (no root needed), else, for root (CI's containers often
# forbid user namespaces but run as root), a plain mount namespace.
NAMESPACES = (
    ["unshare", "--user", "--map-root-user", "--mount"],
    ["unshare", "--mount", "--propagation", "private"],
)


def _mount_namespace() -> list[str] | None:
    """The first command prefix of NAMESPACES in which a tmpfs mounts, or None."""
    probe = 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"'
    for prefix in NAMESPACES:
        try:
            done = subprocess.run([*prefix, "sh", "-c", probe], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


MOUNT_NAMESPACE = _mount_namespace()
# skipped only where this machine cannot mount a tmpfs at all: neither unprivileged user
# namespaces nor root with the right to mount (a container's root may lack CAP_SYS_ADMIN)
needs_tmpfs = pytest.mark.skipif(
    MOUNT_NAMESPACE is None,
    reason="a small tmpfs needs unprivileged user namespaces (unshare --user --mount) or "
    "root allowed to mount (unshare --mount), and this machine allows neither",
)
pytestmark = [pytest.mark.e2e, needs_tmpfs]


@dataclass(frozen=True)
class Ended:
    returncode: int
    stderr: str
    left: list[str]  # temporary files found on the full disk after the job

    def error_line(self) -> str:
        """Exit 2, no traceback, no temporary file left, exactly one ``error:`` line: it."""
        assert self.returncode == 2, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        assert self.left == [], f"left on the full disk: {self.left}"
        lines = [line for line in self.stderr.splitlines() if ": error: " in line]
        assert len(lines) == 1, self.stderr
        return lines[0]


def _on_full_tmpfs(
    folder: Path,
    size_kb: int,
    argv: list[str],
    uri: str,
    *,
    before: str = "",
    after: str = "",
    cwd: Path | None = None,
    **env: str,
) -> Ended:
    """Run the job's command line with ``folder`` a tmpfs of ``size_kb`` (``before``: shell
    lines once it is mounted; ``after``: once the job has ended, e.g. to copy a store out)."""
    folder.mkdir(parents=True, exist_ok=True)
    left = folder.parent / f"{folder.name}.left"
    script = textwrap.dedent(
        f"""\
        set -e
        mount -t tmpfs -o size={size_kb}k tmpfs {shlex.quote(str(folder))}
        {before}
        set +e
        "$@"
        rc=$?
        find {shlex.quote(str(folder))} -name 'tmp*' > {shlex.quote(str(left))}
        {after}
        exit $rc
        """
    )
    done = subprocess.run(
        [*(MOUNT_NAMESPACE or NAMESPACES[-1]), "sh", "-c", script, "sh", *argv],
        cwd=cwd or folder.parent,
        env=tracking_env(uri, **env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return Ended(done.returncode, done.stderr, left.read_text().split())


def _job(entry_point: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "mlproject" / f"{entry_point}.py"), *args]


def _only_run(uri: str, entry_point: str) -> mlflow.entities.Run:
    runs = MlflowClient(uri).search_runs(
        [e.experiment_id for e in MlflowClient(uri).search_experiments()],
        f"tags.entry_point = '{entry_point}'",
    )
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store's file with MLflow's tables and no experiment of ours, made once (its
    migrations take seconds) and copied for every store below."""
    database = tmp_path_factory.mktemp("blank") / "mlflow.db"
    MlflowClient(f"sqlite:///{database}").search_experiments()
    return database


def _new_store(blank_store: Path, folder: Path) -> str:
    """A SQLite store in ``folder`` with the ``aelatent`` experiment (artifacts beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blank_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).create_experiment(
        EXPERIMENT_NAME, artifact_location=str(folder / "mlruns"), tags={KIND_TAG: KIND}
    )
    return uri


@pytest.fixture(scope="module")
def store(blank_store: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty store of this module's own (a report over it takes a few seconds)."""
    return _new_store(blank_store, tmp_path_factory.mktemp("exhaustion") / "store")


def test_full_checkpoint_folder(store, tmp_path):
    folder = tmp_path / "checkpoints"  # the 2 MB model does not fit into 1 MB
    ended = _on_full_tmpfs(
        folder,
        1024,
        _job("train", "--case", "I", "--epochs", "1", "--image-size", "32"),
        store,
        AELATENT_CHECKPOINT_DIR=str(folder),
    )
    line = ended.error_line()
    run = _only_run(store, "train")
    assert f"no space left on device writing to {folder / run.info.run_id} " in line, line
    assert run.info.status == "FAILED" and f"run {run.info.run_id} is FAILED" in line
    reason = line.split(": error: ")[1].split(" (")[0]
    assert run.data.tags["error"].startswith(reason)


def test_full_report_output(store, tmp_path):
    output = tmp_path / "small" / "report"  # the report's files need more than 16 KB
    ended = _on_full_tmpfs(output.parent, 16, _job("report", "--output", str(output)), store)
    line = ended.error_line()
    assert f"no space left on device writing to {output}{os.sep}" in line, line
    assert "0 B free now" in line
    run = _only_run(store, "report")
    assert run.info.status == "FAILED" and f"run {run.info.run_id} is FAILED" in line
    assert run.data.tags["error"].startswith(f"no space left on device writing to {output}")


def test_full_artifact_folder(store, tmp_path):
    artifacts = tmp_path / "artifacts"  # this experiment's artifact root, 16 KB
    MlflowClient(store).create_experiment("small artifacts", artifact_location=str(artifacts))
    output = tmp_path / "report"
    ended = _on_full_tmpfs(
        artifacts,
        16,
        _job("report", "--output", str(output)),
        store,
        MLFLOW_EXPERIMENT_NAME="small artifacts",
    )
    line = ended.error_line()
    run = _only_run_in(store, "small artifacts")
    assert f"no space left on device writing to {artifacts / run.info.run_id}" in line, line
    assert run.info.status == "FAILED" and f"run {run.info.run_id} is FAILED" in line
    assert (output / "report.html").is_file(), "the report itself was written"


def _only_run_in(uri: str, experiment: str) -> mlflow.entities.Run:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    (run,) = client.search_runs([found.experiment_id])
    return run


def _report_into_a_small_store(
    blank_store: Path, tmp_path: Path, room_kb: int
) -> tuple[str, list[mlflow.entities.Run], Path, str]:
    """A report whose store and artifacts share one tmpfs with ``room_kb`` beyond the store's
    file: its error line, the store's runs afterwards, the folder and the URI."""
    folder = tmp_path / "store"
    uri = _new_store(blank_store, folder)
    template = tmp_path / "template.db"
    os.replace(folder / "mlflow.db", template)
    size_kb = -(-template.stat().st_size // 4096) * 4 + room_kb
    copy_back = tmp_path / "after.db"
    ended = _on_full_tmpfs(
        folder,
        size_kb,
        _job("report", "--output", str(tmp_path / "report")),
        uri,
        before=f"cp {template} {folder / 'mlflow.db'}",
        after=f"cp {folder / 'mlflow.db'} {copy_back}",
        cwd=folder,
    )
    after = MlflowClient(f"sqlite:///{copy_back}")
    runs = after.search_runs([e.experiment_id for e in after.search_experiments()])
    return ended.error_line(), runs, folder, uri


def test_full_sqlite_store_before_the_run(blank_store, tmp_path):
    line, runs, folder, uri = _report_into_a_small_store(blank_store, tmp_path, 0)
    assert runs == []
    assert f"the tracking store's SQLite file {folder / 'mlflow.db'} cannot grow" in line, line
    assert "database or disk is full" in line and f"MLFLOW_TRACKING_URI={uri}" in line
    assert "; run " not in line


def test_full_sqlite_store_during_the_run(blank_store, tmp_path):
    """32 KB take the run, not its artifacts (the report's HTML alone is 17 KB): whichever of
    the two writes finds the disk full first, the line names it and says where the run is."""
    line, runs, folder, uri = _report_into_a_small_store(blank_store, tmp_path, 32)
    (run,) = runs
    assert f"{folder}{os.sep}" in line and ("no space left" in line or "disk is full" in line)
    assert f"MLFLOW_TRACKING_URI={uri}" in line
    if run.info.status == "RUNNING":  # the store took nothing more
        assert f"could not mark run {run.info.run_id} FAILED (" in line, line
        assert "disk is full" in line.split(f"{run.info.run_id} FAILED")[1]
    else:  # an update in place fitted
        assert run.info.status == "FAILED" and f"run {run.info.run_id} is FAILED" in line


MOVE_AFTER_FIRST_METRIC = """
import os, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
database, moved = sys.argv[1], sys.argv[2]
def after_execute(conn, cursor, statement, *rest):
    if statement.lstrip().upper().startswith("INSERT INTO METRICS") and os.path.exists(database):
        os.rename(database, moved)  # as `mv` by the user, while the job goes on
event.listen(Engine, "after_cursor_execute", after_execute)
from aelatent.jobs.evaluate import cli
cli(sys.argv[3:])
"""


def _synthetic_train_run(uri: str, out: Path) -> str:
    """A FINISHED train run of Gaussian latents (240 train, 60 val) and no model."""
    rng = np.random.default_rng(4)
    (out / "latents").mkdir(parents=True)
    np.save(out / "latents" / "latents.npy", rng.standard_normal((300, 8)).astype(np.float32))
    write_csv(
        out / "latents" / "index.csv",
        {
            "row": np.arange(300),
            "image_id": np.arange(300),
            "partition": np.array(["train"] * 240 + ["val"] * 60),
        },
    )
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None
    run = client.create_run(
        experiment.experiment_id,
        tags={"entry_point": "train", "case": "synthetic", "dataset": "synthetic"},
    )
    client.log_artifacts(run.info.run_id, str(out))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_store_moved_away_during_evaluate(blank_store, tmp_path):
    folder = tmp_path / "store"
    uri = _new_store(blank_store, folder)
    train_run = _synthetic_train_run(uri, tmp_path / "train")
    database, moved = folder / "mlflow.db", tmp_path / "moved.db"
    argv = ["--train-run", train_run, "--sampler", "uniform", "--b", "1", "--k", "1,2"]
    argv += ["--n-decoded", "0"]
    done = subprocess.run(
        [sys.executable, "-c", MOVE_AFTER_FIRST_METRIC, str(database), str(moved), *argv],
        cwd=folder,
        env=tracking_env(uri),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    line = Ended(done.returncode, done.stderr, []).error_line()
    assert f"the tracking store's SQLite file {database} is missing" in line, line
    assert f"MLFLOW_TRACKING_URI={uri}" in line
    evaluation = _only_run(f"sqlite:///{moved}", "evaluate")
    assert evaluation.info.status == "RUNNING"  # in the moved file, for the next job there
    assert f"could not mark run {evaluation.info.run_id} FAILED (the same reason)" in line
    assert not database.exists(), "closing the run must not make an empty store in its place"
