"""Nothing lost, nothing left hanging (issue 18): how runs end when a job does not end well.

One clear line on stderr, a non-zero exit, the MLflow run FAILED or KILLED with the reason in
its ``error`` tag, and nothing the user had is lost: a folder of the user's given as a report
`output`, a run still training given to `resume`, samplers that finished before a Ctrl-C or a
SIGTERM, a deleted run, a quote in `case`, an unusable tracking store, a bug's message.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import (
    BIN,
    ROOT,
    cli_error,
    find_runs,
    log_synthetic_train_run,
    newest_run,
    tracking_env,
)
from mlflow.tracking import MlflowClient

from aelatent.errors import UserError
from aelatent.io.lifecycle import (
    HEARTBEAT_TAG,
    OWNER_TAG,
    STALE_S,
    heartbeat,
    live_owner,
)
from aelatent.io.tracking import entry_point_run, newest_finished_run, run_entry_point
from aelatent.jobs import analyse, evaluate, main, report, search, train

Z_DIM = 16


def _latents(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mu, sigma = rng.normal(0, 0.3, Z_DIM), rng.uniform(0.3, 0.8, Z_DIM)
    return (mu + sigma * rng.standard_normal((500, Z_DIM))).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_train_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FINISHED train run of Gaussian latents (400 train, 100 val) and no model."""
    return log_synthetic_train_run(_latents(), 400, tmp_path_factory.mktemp("lifecycle_train"))


@pytest.fixture(autouse=True)
def _no_launcher_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


# ------------------------------------------------------------------ 1, 14: report output


def _user_folder(root: Path) -> Path:
    folder = root / "mine"
    (folder / "images").mkdir(parents=True)
    (folder / "tables").mkdir()
    (folder / "images" / "holiday.png").write_bytes(b"\x89PNG not really")
    (folder / "tables" / "budget.csv").write_text("a,b\n1,2\n")
    return folder


def test_report_refuses_a_folder_of_the_users_and_touches_nothing(tracking_uri, tmp_path, capsys):
    folder = _user_folder(tmp_path)
    before = len(find_runs("tags.entry_point = 'report'"))
    line = cli_error(report.cli, ["--output", str(folder)], capsys)
    assert str(folder) in line and "not an earlier report" in line and "new or empty" in line
    assert (folder / "images" / "holiday.png").read_bytes() == b"\x89PNG not really"
    assert (folder / "tables" / "budget.csv").read_text() == "a,b\n1,2\n"
    assert len(find_runs("tags.entry_point = 'report'")) == before  # refused before any run


def test_report_into_an_earlier_report_removes_only_what_that_report_wrote(
    synthetic_train_run, tracking_uri, tmp_path, capsys
):
    out = tmp_path / "report"
    report.cli(["--run-ids", synthetic_train_run, "--output", str(out)])
    marker = out / ".aelatent-report"
    assert marker.is_file() and "report.html" in marker.read_text()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"report.html", "report.md"} <= written and any(w.startswith("tables/") for w in written)
    stale = out / "tables" / "stale_from_an_old_report.csv"  # listed as the report's own
    stale.write_text("x\n")
    marker.write_text(
        marker.read_text().replace(
            '"files": [', '"files": [\n  "tables/stale_from_an_old_report.csv",'
        )
    )
    mine = out / "tables" / "my_notes.csv"  # put there by the user: not in the marker
    mine.write_text("keep me\n")
    (out / "notes.txt").write_text("mine too\n")

    report.cli(["--run-ids", synthetic_train_run, "--output", str(out)])
    assert "report:" in capsys.readouterr().out
    assert not stale.exists()
    assert mine.read_text() == "keep me\n" and (out / "notes.txt").read_text() == "mine too\n"
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("job", [report, main], ids=["report", "main"])
def test_output_that_is_a_file_fails_before_any_work(job, tracking_uri, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("my results\n")
    before = _all_runs()
    started = time.perf_counter()
    line = cli_error(job.cli, ["--output", str(a_file)], capsys)
    assert str(a_file) in line and "is a file, not a folder" in line
    assert time.perf_counter() - started < 30  # main: no training before the check
    assert a_file.read_text() == "my results\n"
    assert _all_runs() == before
    below = cli_error(job.cli, ["--output", str(a_file / "report")], capsys)
    assert "cannot be created" in below and str(a_file) in below


# ----------------------------------------------------------------- 2: resume of a live run


def _running_train_run(owner: str, heartbeat_at: float) -> str:
    client = MlflowClient()
    run = client.create_run(
        "0",
        tags={
            "entry_point": "train",
            "case": "LIVE",
            OWNER_TAG: owner,
            HEARTBEAT_TAG: f"{heartbeat_at:.0f}",
        },
    )
    return run.info.run_id


def test_resume_of_a_run_still_training_is_refused(tracking_uri, capsys):
    host = socket.gethostname()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_id = _running_train_run(f"{host}:{sleeper.pid}", time.time())
        line = cli_error(train.cli, ["--resume", run_id], capsys)
        assert f"resume={run_id!r} is still training" in line
        assert f"process {sleeper.pid} on this machine" in line
    finally:
        sleeper.kill()
        sleeper.wait()
    run = mlflow.get_run(run_id)
    assert run.info.status == "RUNNING"  # the live run is not touched
    assert "error" not in run.data.tags
    # the owner is gone (killed): the run is interrupted, resume may take it over
    assert live_owner(run) is None


def test_live_owner_on_another_machine_is_judged_by_its_heartbeat(tracking_uri, capsys):
    now = time.time()
    fresh = _running_train_run("elsewhere.example:4242", now - 20)
    line = cli_error(train.cli, ["--resume", fresh], capsys)
    assert "process 4242 on elsewhere.example" in line and "resume after" in line
    stale = mlflow.get_run(_running_train_run("elsewhere.example:4242", now - STALE_S - 5))
    assert live_owner(stale) is None
    client = MlflowClient()
    client.set_terminated(fresh, "KILLED")
    assert live_owner(mlflow.get_run(fresh)) is None  # an ended run has no owner
    me = mlflow.get_run(_running_train_run(f"{socket.gethostname()}:{os.getpid()}", now))
    assert live_owner(me) is None  # this very process (a reused pid) is not the owner


def test_heartbeat_tags_the_owner_and_renews(tracking_uri):
    run_id = MlflowClient().create_run("0").info.run_id
    with heartbeat(run_id, every_s=0.05):
        first = mlflow.get_run(run_id).data.tags
        assert first[OWNER_TAG] == f"{socket.gethostname()}:{os.getpid()}"
        time.sleep(1.2)
    later = mlflow.get_run(run_id).data.tags[HEARTBEAT_TAG]
    assert float(later) >= float(first[HEARTBEAT_TAG]) + 1


def test_a_train_run_records_its_owner(tiny_train_run):
    tags = mlflow.get_run(tiny_train_run).data.tags
    assert tags[OWNER_TAG].rpartition(":")[2].isdigit() and float(tags[HEARTBEAT_TAG]) > 0


# ------------------------------------------------------------- 3, 4: SIGTERM and Ctrl-C


def _start_evaluate(
    train_run: str, seed: str, tracking_uri: str, through_mlflow_run: bool
) -> subprocess.Popen:
    """Uniform finishes in a moment; gaussian and mvn take seconds over 8 scales each."""
    params = {
        "train-run": train_run,
        "b": "1",
        "k": "1,2",
        "scale": "0.5,1,1.5,2,2.5,3,4,5",
        "n-samples": "400000",
        "n-decoded": "0",
        "seed": seed,
    }
    if through_mlflow_run:
        command = [
            str(BIN / "mlflow"),
            "run",
            str(ROOT),
            "-e",
            "evaluate",
            "--env-manager",
            "local",
        ]
        for key, value in params.items():
            command += ["-P", f"{key.replace('-', '_')}={value}"]
    else:
        command = [sys.executable, str(ROOT / "mlproject" / "evaluate.py")]
        for key, value in params.items():
            command += [f"--{key}", value]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=tracking_env(tracking_uri),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_uniform(process: subprocess.Popen, seed: str) -> str:
    """The evaluate run's id once its uniform sampler is logged (the others still run)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        runs = find_runs(f"tags.entry_point = 'evaluate' and params.seed = '{seed}'")
        if runs and "seconds/uniform" in mlflow.get_run(runs[0].info.run_id).data.metrics:
            return runs[0].info.run_id
        time.sleep(0.1)
    raise AssertionError("the uniform sampler never finished")


def _settled(run_id: str, wait_s: float = 30) -> mlflow.entities.Run:
    """The run once KILLED: under `mlflow run` the launcher first overwrites it with FAILED
    (an MLflow bug) and a helper the job left behind restores KILLED when the launcher exits."""
    deadline = time.monotonic() + wait_s
    run = mlflow.get_run(run_id)
    while run.info.status != "KILLED" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = mlflow.get_run(run_id)
    return run


def _assert_stopped(run_id: str, reason: str, returncode: int, stderr: str) -> None:
    assert returncode != 0
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("aelatent evaluate:")]
    assert len(lines) == 1 and reason in lines[0] and "KILLED" in lines[0], stderr
    run = _settled(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == reason
    metrics = run.data.metrics
    assert "seconds/mvn" not in metrics, "the evaluation finished before the signal"
    assert metrics["hit_rate/uniform/b1/k2"] >= 0 and "radius_mean_theory/uniform/b1" in metrics
    artifacts = {
        a.path
        for folder in ("hits", "misses", "radius", "stats")
        for a in MlflowClient().list_artifacts(run_id, folder)
    }
    assert {
        "hits/hit_rates.csv",
        "hits/heatmap_uniform.png",
        "hits/rate_curves_uniform.png",
        "misses/miss_counts_uniform.csv",
        "stats/windows.csv",
    } <= artifacts
    rows = mlflow.artifacts.load_text(f"runs:/{run_id}/hits/hit_rates.csv").splitlines()
    assert {row.split(",")[0] for row in rows[1:]} >= {"uniform", "heldout"}


@pytest.mark.e2e
def test_sigterm_during_evaluate_ends_the_run_killed(synthetic_train_run, tracking_uri):
    process = _start_evaluate(synthetic_train_run, "31", tracking_uri, through_mlflow_run=False)
    try:
        run_id = _wait_for_uniform(process, "31")
        process.send_signal(signal.SIGTERM)  # as `timeout -s TERM` does
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM
    _assert_stopped(run_id, "terminated by SIGTERM", process.returncode, stderr)


@pytest.mark.e2e
def test_ctrl_c_during_mlflow_run_evaluate_ends_killed_and_keeps_finished_samplers(
    synthetic_train_run, tracking_uri
):
    process = _start_evaluate(synthetic_train_run, "32", tracking_uri, through_mlflow_run=True)
    try:
        run_id = _wait_for_uniform(process, "32")
        os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole process group
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # `mlflow run` also sends its child SIGTERM on Ctrl-C: the first signal's reason stays
    _assert_stopped(run_id, "interrupted by Ctrl-C (SIGINT)", process.returncode, stderr)


@pytest.mark.e2e
def test_kill_of_the_mlflow_run_launcher_ends_the_job_killed(synthetic_train_run, tracking_uri):
    """Issue 28, item 7: `kill <pid of mlflow run>` (SIGTERM to the launcher alone) used to
    leave the job running on its own, to end FINISHED."""
    process = _start_evaluate(synthetic_train_run, "33", tracking_uri, through_mlflow_run=True)
    try:
        run_id = _wait_for_uniform(process, "33")
        job = int(mlflow.get_run(run_id).data.tags[OWNER_TAG].rpartition(":")[2])
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)  # the pipes close when the job has ended
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    deadline = time.monotonic() + 120
    while _process_exists(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _process_exists(job), "the job runs on without its launcher"
    reason = f"terminated: its `mlflow run` launcher (pid {process.pid}) ended while it ran"
    _assert_stopped(run_id, reason, process.returncode, stderr)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_signal_in_process_ends_the_run_killed(tracking_uri, capsys):
    def job(argv):
        with entry_point_run("demo", "demo signalled"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        run_entry_point("demo", job, [])
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before  # the job's handler is gone again
    # (a line before it may say which runs of dead processes the job closed first)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    run = newest_run("tags.`mlflow.runName` = 'demo signalled'")
    assert (
        err == f"aelatent demo: error: terminated by SIGTERM; run {run.info.run_id} is "
        "KILLED, what it logged is kept"
    )
    assert run.info.status == "KILLED" and run.data.tags["error"] == "terminated by SIGTERM"


def test_ctrl_c_before_the_job_run_starts_kills_the_launcher_run(tracking_uri, monkeypatch, capsys):
    launcher = MlflowClient().create_run("0").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)

    def job(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run_entry_point("evaluate", job, [])
    assert exit_info.value.code == 130
    assert "interrupted by Ctrl-C (SIGINT)" in capsys.readouterr().err
    run = mlflow.get_run(launcher)
    assert (
        run.info.status == "KILLED" and run.data.tags["error"] == "interrupted by Ctrl-C (SIGINT)"
    )


# ------------------------------------------------------------- common thread: a bug's reason


def test_a_bug_fails_the_run_with_its_message_and_keeps_its_traceback(tracking_uri, monkeypatch):
    def job(argv):
        with entry_point_run("demo", "demo bug"):
            raise RuntimeError("division by zero in the objective\nsecond line")

    with pytest.raises(RuntimeError, match="division by zero"):
        run_entry_point("demo", job, [])
    run = newest_run("tags.`mlflow.runName` = 'demo bug'")
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: division by zero in the objective"

    launcher = MlflowClient().create_run("0").info.run_id  # `mlflow run`'s, before any work
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)

    def early_bug(argv):
        raise KeyError("latents")

    with pytest.raises(KeyError):
        run_entry_point("demo", early_bug, [])
    run = mlflow.get_run(launcher)
    assert run.info.status == "FAILED" and run.data.tags["error"] == "KeyError: 'latents'"


# ------------------------------------------------------------------------ 5: a deleted run


def test_a_deleted_train_run_is_refused(tracking_uri, tmp_path, capsys):
    run_id = log_synthetic_train_run(_latents(5), 400, tmp_path)
    MlflowClient().delete_run(run_id)
    for cli in (evaluate.cli, search.cli, analyse.cli):
        line = cli_error(cli, ["--train-run", run_id], capsys)
        assert run_id in line and "is deleted" in line and "mlflow runs restore" in line
    line = cli_error(report.cli, ["--run-ids", run_id], capsys)
    assert run_id in line and "is deleted" in line
    line = cli_error(train.cli, ["--resume", run_id], capsys)
    assert run_id in line and "is deleted" in line


# ------------------------------------------------------------------ 8: a quote in `case`


@pytest.mark.parametrize("job", [evaluate, search, analyse], ids=["evaluate", "search", "analyse"])
@pytest.mark.parametrize("case", ["I'", "I' or tags.entry_point = 'train", "a b"])
def test_case_must_be_a_plain_name(job, case, tracking_uri, capsys):
    line = cli_error(job.cli, ["--case", case], capsys)
    assert f"case={case!r}" in line and "letters, digits" in line


def test_newest_finished_run_refuses_a_quote(tracking_uri):
    with pytest.raises(UserError, match="letters, digits"):
        newest_finished_run("train", "I'")


# --------------------------------------------------------- 15: an unusable tracking store


@pytest.mark.e2e  # an entry script in a subprocess
@pytest.mark.parametrize("kind", ["sqlite under a file", "server down"])
def test_unusable_tracking_store_is_one_line(kind, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    uri = {
        "sqlite under a file": f"sqlite:///{a_file}/mlflow.db",
        "server down": "http://127.0.0.1:1",
    }[kind]
    env = tracking_env(uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    done = subprocess.run(
        [sys.executable, str(ROOT / "mlproject" / "evaluate.py"), "--n-decoded", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, done.stderr
    assert f"MLFLOW_TRACKING_URI={uri}" in lines[0]
    assert ("server is running" if kind == "server down" else "folder you can write") in lines[0]


def _all_runs() -> int:
    return len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
