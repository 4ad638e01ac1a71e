"""No run outlives its process as RUNNING, no training mixed into another (issue 28).

- every job's run records its owner (host, pid, start time) and a heartbeat; a job that
  starts, or ``python -m aelatent.io.lifecycle close-dead-runs``, closes KILLED the runs
  whose owner is dead (this machine: the process is gone; another: its heartbeat is stale),
  and the nested runs (trials) of those;
- claiming a run to resume it is atomic: of claimants at the same instant exactly one wins;
- a SIGTERM that lands inside a store write (MLflow's or Optuna's) takes effect after it:
  the run KILLED once, one line, no traceback, no run left RUNNING.

Jobs run in real processes against the session's SQLite store; ``fork_jobs.py`` forks them
from one process that imported the job once, so that many of them stay cheap.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import mlflow
import numpy as np
import pytest
from conftest import cli_error, find_runs, log_synthetic_train_run, tracking_env
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.io.lifecycle import (
    CLAIM_PREFIX,
    HEARTBEAT_TAG,
    OWNER_PID_NAMESPACE_TAG,
    OWNER_STARTED_TAG,
    OWNER_TAG,
    STALE_S,
    claim_run,
    close_dead_runs,
)
from aelatent.io.tracking import entry_point_run
from aelatent.jobs import evaluate

FORK_JOBS = Path(__file__).with_name("fork_jobs.py")
CLAIM_RACE = Path(__file__).with_name("claim_race.py")
T = TypeVar("T")
WAIT_S = 300  # generous: the machine may be shared and slow


@pytest.fixture(autouse=True)
def _no_launcher_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


@pytest.fixture(scope="module")
def latents_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FINISHED train run of Gaussian latents and no model (what evaluate and search read)."""
    rng = np.random.default_rng(7)
    latents = (rng.normal(0, 0.3, 16) + 0.5 * rng.standard_normal((500, 16))).astype(np.float32)
    return log_synthetic_train_run(latents, 400, tmp_path_factory.mktemp("ownership_train"))


def _experiment() -> str:
    """A fresh experiment's name, so that a test sees only its own runs."""
    name = f"ownership-{uuid.uuid4().hex[:10]}"
    mlflow.create_experiment(name)
    return name


def _runs_of(experiment: str) -> list[mlflow.entities.Run]:
    found = mlflow.get_experiment_by_name(experiment)
    assert found is not None
    return mlflow.search_runs([found.experiment_id], output_format="list")


class ForkJobs:
    """``fork_jobs.py`` in the background: one job at a time, each in a forked process."""

    def __init__(self, modules: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(FORK_JOBS), *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.child: int | None = None
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line, "fork_jobs.py ended"
        return line

    def start(self, module: str, argv: list[str], log: Path, term_at_write: int = 0) -> int:
        assert self.process.stdin is not None
        request = {"module": module, "argv": argv, "log": str(log)}
        if term_at_write:
            request["term_at_write"] = term_at_write
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        self.child = int(self._line().split()[1])
        return self.child

    def wait(self) -> int:
        return int(self._line().split()[2])

    def close(self) -> None:
        """End fork_jobs.py, killing a child a failed test left running or stopped (SIGSTOP),
        which would hold the store's lock for every later test."""
        if self.child is not None and _alive(self.child):
            os.kill(self.child, signal.SIGKILL)
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture
def fork_jobs(tracking_uri: str, tmp_path: Path) -> Iterator[ForkJobs]:
    experiment = _experiment()
    jobs = ForkJobs(
        ["aelatent.jobs.search", "aelatent.jobs.evaluate"],
        # one BLAS thread: nothing but the forking thread runs when the children are forked
        tracking_env(
            tracking_uri,
            MLFLOW_EXPERIMENT_NAME=experiment,
            OPENBLAS_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
        ),
        tmp_path,
    )
    jobs.experiment = experiment  # type: ignore[attr-defined]
    try:
        yield jobs
    finally:
        jobs.close()


def _search_argv(train_run: str, seed: int, tmp_path: Path) -> list[str]:
    return [
        "--train-run",
        train_run,
        "--n-samples",
        "2000",
        "--n-trials",
        "300",
        "--seed",
        str(seed),
        "--storage",
        f"sqlite:///{tmp_path / f'optuna_{seed}.db'}",
    ]


def _wait_for(what: str, probe: Callable[[], T | None], process_pid: int | None = None) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        if process_pid is not None:
            assert _alive(process_pid), f"the job ended before {what}"
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {WAIT_S} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _search_with_a_trial(experiment: str, seed: int) -> tuple[str, str] | None:
    """(search run, a RUNNING trial run of it), once the search of ``seed`` has one."""
    for run in _runs_of(experiment):
        if run.data.params.get("seed") == str(seed) and "mlflow.parentRunId" not in run.data.tags:
            trials = find_runs(
                f"tags.mlflow.parentRunId = '{run.info.run_id}' and attributes.status = 'RUNNING'"
            )
            if trials:
                return run.info.run_id, trials[0].info.run_id
    return None


def _stopped_in_a_trial(experiment: str, seed: int, pid: int) -> tuple[str, str] | None:
    """Stop the search (SIGSTOP) while a trial's run is RUNNING; the two runs' ids."""
    if _search_with_a_trial(experiment, seed) is None:
        return None
    os.kill(pid, signal.SIGSTOP)
    try:
        found = _search_with_a_trial(experiment, seed)
    except MlflowException:  # stopped inside a commit: the store is locked until it goes on
        found = None
    if found is None:  # that trial ended meanwhile (or the store was locked): the next one
        os.kill(pid, signal.SIGCONT)
    return found


# ----------------------------------------------------------- 5: a signal inside a store write


# Where the SIGTERM lands: right after the n-th SQL write of the job (creating its run, its
# tags and parameters, Optuna's study, trials' runs, metrics, Optuna's trial values, ...).
WRITES = (3, 6, 10, 15, 22, 30, 41, 55)
RANDOM_INSTANTS = 7  # and as `kill` does it: at a random instant of a running search


@pytest.mark.e2e
def test_sigterm_inside_store_writes_of_a_search_ends_it_killed_once(
    latents_run, fork_jobs, tmp_path
):
    close_dead_runs(out=io.StringIO())  # the jobs' own sweeps then write nothing
    experiment = fork_jobs.experiment  # type: ignore[attr-defined]
    logs: list[Path] = []
    rounds = [(w, 0.0) for w in WRITES] + [
        (0, random.uniform(0, 1.5)) for _ in range(RANDOM_INSTANTS)
    ]
    for seed, (write, delay) in enumerate(rounds, start=1):
        log = tmp_path / f"search_{seed}.log"
        logs.append(log)
        pid = fork_jobs.start(
            "aelatent.jobs.search", _search_argv(latents_run, seed, tmp_path), log, write
        )
        if not write:
            _wait_for("a trial", lambda seed=seed: _search_with_a_trial(experiment, seed), pid)
            time.sleep(delay)
            os.kill(pid, signal.SIGTERM)
        assert fork_jobs.wait() == 128 + signal.SIGTERM, log.read_text()[-3000:]
    for log in logs:
        text = log.read_text()
        for wrong in ("Traceback", "database is locked", "could not mark"):
            assert wrong not in text, text[-3000:]
        errors = [line for line in text.splitlines() if ": error: " in line]
        assert len(errors) == 1, text[-3000:]
        assert errors[0].startswith("aelatent search: error: terminated by SIGTERM"), errors
        assert errors[0].endswith(("is KILLED, what it logged is kept", "SIGTERM")), errors
    runs = _runs_of(experiment)
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    searches = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    with_run = [log for log in logs if "is KILLED, what it logged is kept" in log.read_text()]
    assert len(searches) == len(with_run) >= len(rounds) - 2  # before its run: nothing to close
    for run in searches:
        assert run.info.status == "KILLED", run.info.run_id
        assert run.data.tags["error"] == "terminated by SIGTERM"


# ------------------------------------------------------------ 6: SIGKILL, then who closes


def _evaluate_argv(train_run: str) -> list[str]:
    """Uniform finishes at once, gaussian takes seconds over its scales."""
    return [
        "--train-run",
        train_run,
        "--b",
        "1",
        "--k",
        "1,2",
        "--scale",
        "0.5,1,1.5,2,2.5,3,4,5",
        "--n-samples",
        "400000",
        "--n-decoded",
        "0",
        "--seed",
        "41",
    ]


def _owned_run(experiment: str, entry_point: str) -> str | None:
    for run in _runs_of(experiment):
        if run.data.tags.get("entry_point") == entry_point and OWNER_TAG in run.data.tags:
            return run.info.run_id
    return None


@pytest.mark.e2e
def test_sigkilled_jobs_are_closed_by_the_command_and_by_the_next_job(
    latents_run, fork_jobs, tmp_path, tracking_uri, capsys
):
    experiment = fork_jobs.experiment  # type: ignore[attr-defined]
    host = socket.gethostname()

    pid = fork_jobs.start("aelatent.jobs.evaluate", _evaluate_argv(latents_run), tmp_path / "e")
    evaluation = _wait_for("evaluate's run", lambda: _owned_run(experiment, "evaluate"), pid)
    os.kill(pid, signal.SIGKILL)
    assert fork_jobs.wait() == 128 + signal.SIGKILL
    assert mlflow.get_run(evaluation).data.tags[OWNER_TAG] == f"{host}:{pid}"
    assert mlflow.get_run(evaluation).info.status == "RUNNING"

    command = [sys.executable, "-m", "aelatent.io.lifecycle", "close-dead-runs"]
    dry = subprocess.run(
        [*command, "--dry-run"],
        env=tracking_env(tracking_uri),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"run {evaluation} " in dry.stdout and "would mark it KILLED" in dry.stdout
    assert mlflow.get_run(evaluation).info.status == "RUNNING"
    done = subprocess.run(
        command, env=tracking_env(tracking_uri), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0, done.stderr
    assert f"run {evaluation} " in done.stdout and "marked it KILLED" in done.stdout
    closed = mlflow.get_run(evaluation)
    assert closed.info.status == "KILLED"
    assert closed.data.tags["error"] == (
        f"left RUNNING: its process {pid} on this machine ({host}) is gone"
    )

    pid = fork_jobs.start(
        "aelatent.jobs.search", _search_argv(latents_run, 1, tmp_path), tmp_path / "s"
    )
    search_run, trial = _wait_for("a trial", lambda: _stopped_in_a_trial(experiment, 1, pid), pid)
    os.kill(pid, signal.SIGKILL)
    assert fork_jobs.wait() == 128 + signal.SIGKILL
    assert {mlflow.get_run(r).info.status for r in (search_run, trial)} == {"RUNNING"}

    line = cli_error(evaluate.cli, ["--n-samples", "0"], capsys)  # the next job, even a wrong one
    assert "n_samples" in line
    search_closed, trial_closed = mlflow.get_run(search_run), mlflow.get_run(trial)
    assert search_closed.info.status == trial_closed.info.status == "KILLED"
    by = f"(closed by aelatent evaluate, process {os.getpid()})"
    assert search_closed.data.tags["error"] == (
        f"left RUNNING: its process {pid} on this machine ({host}) is gone {by}"
    )
    assert trial_closed.data.tags["error"].startswith(
        f"left RUNNING: its parent run {search_run} was left RUNNING: its process {pid}"
    )
    assert not [r for r in _runs_of(experiment) if r.info.status == "RUNNING"]


def _running(tags: dict[str, str]) -> str:
    return MlflowClient().create_run("0", tags=tags).info.run_id


def test_owners_on_another_machine_are_judged_by_their_heartbeat(tracking_uri):
    now = time.time()
    elsewhere = {OWNER_TAG: "elsewhere.example:4242"}
    stale = _running({**elsewhere, HEARTBEAT_TAG: f"{now - STALE_S - 30:.0f}"})
    fresh = _running({**elsewhere, HEARTBEAT_TAG: f"{now - 20:.0f}"})
    unknown = _running({})  # no owner recorded (another tool's run): nothing tells
    mine = _running({OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}", HEARTBEAT_TAG: "0"})
    under_stale = _running({"mlflow.parentRunId": stale})
    under_fresh = _running({"mlflow.parentRunId": fresh})
    finished = _running({})
    MlflowClient().set_terminated(finished, "FINISHED")
    under_finished = _running({"mlflow.parentRunId": finished})

    out = io.StringIO()
    closed = {d.run.info.run_id for d in close_dead_runs(out=out)}
    assert {stale, under_stale, under_finished} <= closed
    assert not {fresh, unknown, mine, under_fresh} & closed
    for run_id in (stale, under_stale, under_finished):
        run = mlflow.get_run(run_id)
        assert run.info.status == "KILLED" and f"run {run_id} " in out.getvalue()
    assert (
        mlflow.get_run(stale)
        .data.tags["error"]
        .startswith("left RUNNING: no heartbeat from its process 4242 on elsewhere.example for ")
    )
    assert (
        f"its parent run {stale} was left RUNNING" in mlflow.get_run(under_stale).data.tags["error"]
    )
    assert mlflow.get_run(under_finished).data.tags["error"] == (
        f"left RUNNING: its parent run {finished} ended (FINISHED) before it"
    )
    for run_id in (fresh, unknown, mine, under_fresh):
        assert mlflow.get_run(run_id).info.status == "RUNNING"
        MlflowClient().set_terminated(run_id, "FINISHED")


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="Linux pid namespaces")
def test_a_process_in_another_pid_namespace_is_judged_by_its_heartbeat(tracking_uri):
    """Containers may share the host name (host networking) but not their pids."""
    me = f"{socket.gethostname()}:999999"  # no such process here
    other = {OWNER_TAG: me, OWNER_PID_NAMESPACE_TAG: "1"}
    fresh = _running({**other, HEARTBEAT_TAG: f"{time.time() - 20:.0f}"})
    stale = _running({**other, HEARTBEAT_TAG: f"{time.time() - STALE_S - 30:.0f}"})
    here = _running({OWNER_TAG: me, HEARTBEAT_TAG: f"{time.time():.0f}"})  # this namespace
    closed = {d.run.info.run_id for d in close_dead_runs(out=io.StringIO())}
    assert {stale, here} <= closed and fresh not in closed
    assert "no heartbeat from its process 999999" in mlflow.get_run(stale).data.tags["error"]
    assert "its process 999999 on this machine" in mlflow.get_run(here).data.tags["error"]
    MlflowClient().set_terminated(fresh, "FINISHED")


def test_every_top_level_run_records_its_owner_and_a_nested_one_its_parent(tracking_uri):
    with (
        entry_point_run("demo", "demo owner") as run,
        entry_point_run("demo", "demo nested", nested=True) as nested,
    ):
        tags = mlflow.get_run(run.info.run_id).data.tags
        nested_tags = mlflow.get_run(nested.info.run_id).data.tags
    assert tags[OWNER_TAG] == f"{socket.gethostname()}:{os.getpid()}"
    assert abs(float(tags[HEARTBEAT_TAG]) - time.time()) < 3600
    assert float(tags[OWNER_STARTED_TAG]) > 0
    assert OWNER_TAG not in nested_tags  # judged by its parent's owner
    assert nested_tags["mlflow.parentRunId"] == run.info.run_id


# ------------------------------------------------------------------ 1: claiming a resume


def test_a_claim_is_a_parameter_and_a_second_claim_of_the_same_process_is_its_own(tracking_uri):
    run_id = _running(
        {"entry_point": "train", OWNER_TAG: "elsewhere.example:1", HEARTBEAT_TAG: "0"}
    )
    assert claim_run(run_id) is None
    params = mlflow.get_run(run_id).data.params
    assert list(params) == [f"{CLAIM_PREFIX}1"]
    assert params[f"{CLAIM_PREFIX}1"].startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert claim_run(run_id) is None  # the same process again: still its claim
    assert list(mlflow.get_run(run_id).data.params) == [f"{CLAIM_PREFIX}1"]
    MlflowClient().set_terminated(run_id, "KILLED")


@pytest.mark.e2e  # processes
def test_of_claimants_at_the_same_instant_exactly_one_resumes(tracking_uri, tmp_path):
    params = {
        "case_arg": "I",
        "data": "orl",
        "training.epochs": "2",
        "data.image_size": "32",
        "seed": "0",
    }
    run_id = _running(
        {"entry_point": "train", OWNER_TAG: "elsewhere.example:1", HEARTBEAT_TAG: "0"}
    )
    client = MlflowClient()
    for key, value in params.items():
        client.log_param(run_id, key, value)
    n = 4
    for round_ in (1, 2):  # the second after the first round's claimants have all ended
        done = subprocess.run(
            [sys.executable, str(CLAIM_RACE), run_id, str(n)],
            env=tracking_env(tracking_uri),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        answers = json.loads(done.stdout.strip().splitlines()[-1])
        assert answers.count("won") == 1, answers
        lost = [a for a in answers if a != "won"]
        assert len(lost) == n - 1 and all(
            a.startswith(f"lost resume={run_id!r} is still training (process ") for a in lost
        ), answers
        claims = [k for k in mlflow.get_run(run_id).data.params if k.startswith(CLAIM_PREFIX)]
        assert sorted(claims) == [f"{CLAIM_PREFIX}{i}" for i in range(1, round_ + 1)]
    client.set_terminated(run_id, "KILLED")
