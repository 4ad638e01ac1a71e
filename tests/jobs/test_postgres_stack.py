"""The team setup for real: PostgreSQL behind an MLflow tracking server and Optuna.

One stack for the module, the one `make server` starts (``aelatent.ops.server_stack``: a
PostgreSQL server, an ``mlflow server`` on it with proxied artifacts and two workers, an
Optuna database), and one train run on it. Against it: the whole study through
``mlflow run`` with the report downloaded back through the server (this replaced the
former test against an ``mlflow server`` on SQLite); four search workers on one study and
two evaluations at once (every trial and every metric arrives exactly once); a worker killed
in the middle of a trial; the tracking server restarted under running searches; bad URLs,
a wrong password and a study of another question. Workers other than the whole study's are
started as ``python mlproject/<entry>.py`` (the command ``mlflow run`` runs), which halves
their start-up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import ROOT, TINY_TRAIN, cli_error, find_runs, mlflow_run, tracking_env
from mlflow.entities import Run
from mlflow.tracking._tracking_service import utils as tracking_utils
from optuna.trial import TrialState

from aelatent.errors import UserError
from aelatent.io import lifecycle
from aelatent.jobs import search
from aelatent.jobs.search import study as search_study
from aelatent.ops import server_stack

pytestmark = pytest.mark.e2e

SEARCH = {"n_samples": "2000", "seed": "1"}  # test_search's smallest
EVALUATE = {
    "sampler": "uniform,gaussian",
    "b": "1,2,4",
    "k": "1,2",
    "scale": "1",
    "n_samples": "3000",
    "n_decoded": "0",
    "knn_n": "0",
}  # test_concurrency's
HEARTBEAT_S = 2  # Optuna's heartbeat in the kill test: a silent trial is FAIL after 6 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_stack.StackState]:
    try:
        server_stack.pg_bindir()
        import psycopg  # noqa: F401
    except (server_stack.StackError, ImportError) as exc:
        pytest.fail(
            f"{exc}; `make test` installs PostgreSQL (`make postgres`) and the driver (`.[server]`)"
        )
    root = tmp_path_factory.mktemp("stack")
    state = server_stack.start(root, workers=2)
    # the URI set in this process, None where none is (then MLFLOW_TRACKING_URI or the default
    # decides): restoring get_tracking_uri()'s answer instead would pin the default for every
    # later test of the process when this module runs first (make test starts it first)
    saved_uri = tracking_utils._tracking_uri
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", state.tracking_uri)
        patch.setenv("PGPASSFILE", str(state.pgpass))  # the URLs hold no password
        patch.setenv("AELATENT_CHECKPOINT_DIR", str(root / "checkpoints"))
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        mlflow.set_tracking_uri(state.tracking_uri)
        try:
            yield state
        finally:
            mlflow.set_tracking_uri(saved_uri)  # type: ignore[arg-type]  # None: unset
            pid = state.mlflow_pid
            server_stack.stop(root)
            stopped = not server_stack._pg_running(state) and not (
                pid and server_stack._group_alive(pid)
            )
            server_stack.stop(root, wipe=True)
    assert stopped, "`stop` left a server of the stack running"


@pytest.fixture(scope="module")
def train_run(stack: server_stack.StackState) -> str:
    result = mlflow_run("train", TINY_TRAIN, stack.tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    run = find_runs("tags.entry_point = 'train'")[0]
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    return run.info.run_id


def worker(
    stack: server_stack.StackState, entry: str, params: dict[str, str], **env: str
) -> subprocess.Popen[str]:
    """``python mlproject/<entry>.py --key value ...`` against the stack, in the background."""
    command = [sys.executable, str(ROOT / "mlproject" / f"{entry}.py")]
    for key, value in params.items():
        command += [f"--{key.replace('_', '-')}", value]
    return subprocess.Popen(
        command,
        cwd=stack.root,
        env=tracking_env(stack.tracking_uri, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> str:
    output = process.communicate(timeout=timeout)[0]
    assert process.returncode == 0, output[-4000:]
    return output


def study(stack: server_stack.StackState, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=stack.storage_url)


def searches(name: str) -> list[Run]:
    return find_runs(f"tags.entry_point = 'search' and tags.study_name = '{name}'")


def children(parent_id: str) -> list[Run]:
    return find_runs(f"tags.mlflow.parentRunId = '{parent_id}'")


def assert_logged_once(runs: list[Run]) -> None:
    """Every metric of every run has exactly one value in the store (no retried duplicate)."""
    client = mlflow.MlflowClient()
    for run in runs:
        for key in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, key)
            assert len(history) == 1, (run.info.run_id, key, history)


def assert_trials_match_runs(trials: list[optuna.trial.FrozenTrial], runs: list[Run]) -> None:
    """One FINISHED MLflow run per complete trial, with the trial's b, and no other run."""
    by_id = {run.info.run_id: run for run in runs}
    assert len(by_id) == len(runs)
    assert sorted(by_id) == sorted(t.user_attrs["mlflow_run_id"] for t in trials)
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["b"] == pytest.approx(trial.params["b"])
        assert {"objective", "hit_rate", "radius_agreement"} <= set(run.data.metrics)


# --------------------------------------------------------------------- the whole study


def test_the_whole_study_through_the_stack(stack, train_run, tmp_path):
    url = stack.tracking_uri
    evaluate = {
        "train_run": train_run,
        "sampler": "uniform",
        "b": "1,2",
        "k": "1,2",
        "n_samples": "2000",
        "n_decoded": "4",
    }
    search_params = {
        "train_run": train_run,
        "n_trials": "3",
        "storage": stack.storage_url,
        "study_name": "whole",
        **SEARCH,
    }
    with ThreadPoolExecutor(2) as pool:  # independent of each other: at once
        evaluating = pool.submit(mlflow_run, "evaluate", evaluate, url)
        searched = mlflow_run("search", search_params, url)
        evaluated = evaluating.result()
    assert evaluated.returncode == 0, evaluated.output[-3000:]
    assert searched.returncode == 0, searched.output[-3000:]
    assert stack.password not in searched.output  # the storage URL is shown without it
    reported = mlflow_run("report", {"output": str(tmp_path / "out")}, url)
    assert reported.returncode == 0, reported.output[-3000:]

    (parent,) = searches("whole")
    assert parent.info.status == "FINISHED"
    assert stack.password not in str(parent.data.params) + str(parent.data.tags)
    trials = study(stack, "whole").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert_trials_match_runs(trials, children(parent.info.run_id))

    report_run = find_runs("tags.entry_point = 'report'")[0]
    html = mlflow.artifacts.download_artifacts(
        run_id=report_run.info.run_id,
        artifact_path="report/report.html",
        dst_path=str(tmp_path / "downloaded"),
    )
    text = Path(html).read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert train_run[:8] in text and parent.info.run_id[:8] in text and "Search for b" in text
    # the server, not the client, wrote the files (proxied artifacts)
    assert list(stack.artifacts.rglob("report.html"))
    assert list(stack.artifacts.rglob("trials.csv"))


# ------------------------------------------------------------------ many workers at once


def test_four_search_workers_and_two_evaluations_at_once(stack, train_run):
    n = 5
    server_stack.create_databases(stack, ("fresh",))  # the four race to create its tables too
    storage = stack.database_url("fresh")
    params = {
        "train_run": train_run,
        "n_trials": str(n),
        "storage": storage,
        "study_name": "four",
        **SEARCH,
    }
    processes = [worker(stack, "search", params) for _ in range(4)]
    processes += [
        worker(stack, "evaluate", {**EVALUATE, "train_run": train_run, "seed": str(seed)})
        for seed in (11, 12)
    ]
    for process in processes:
        finish(process)

    trials = optuna.load_study(study_name="four", storage=storage).trials
    assert sorted(t.number for t in trials) == list(range(4 * n))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({round(t.params["b"], 12) for t in trials}) == 4 * n  # nobody repeated anyone
    parents = searches("four")
    assert len(parents) == 4 and all(p.info.status == "FINISHED" for p in parents)
    kids = [kid for parent in parents for kid in children(parent.info.run_id)]
    assert_trials_match_runs(trials, kids)
    for parent in parents:
        own = [t for t in trials if t.user_attrs["mlflow_parent_run_id"] == parent.info.run_id]
        assert len(own) == n and parent.data.metrics["n_trials_run"] == n
    assert max(p.data.metrics["n_trials_study"] for p in parents) == 4 * n

    evaluations = find_runs(
        f"tags.entry_point = 'evaluate' and tags.train_run = '{train_run}' "
        "and params.n_samples = '3000'"
    )
    assert sorted(r.data.params["seed"] for r in evaluations) == ["11", "12"]
    assert all(r.info.status == "FINISHED" for r in evaluations)
    first, second = evaluations
    assert set(first.data.metrics) == set(second.data.metrics)
    hit_keys = {k for k in first.data.metrics if k.startswith(("hit_rate/", "hits/"))}
    assert len(hit_keys) == 2 * (3 * 2 + 1 * 2 + 2)  # as in test_concurrency
    assert_logged_once([*parents, *kids, *evaluations])
    running = [r for r in (*parents, *kids, *evaluations) if r.info.status == "RUNNING"]
    assert not running


def test_two_generator_workers_on_one_study_share_its_sibling_phase(stack):
    """Two worker processes on one PostgreSQL study, opened as the job's workers open it,
    12 trials each (benchmarks/bench_generator_workers.py, reduced: 600 latents of 32
    dimensions from the known 3-component mixture; uniform, mvn and gmm): the study's
    fitted defaults (mvn and gmm at scale 1) and the sibling phase run once for both, as one
    worker's of 24 would: 24 trials scored, no settings twice (a copy two workers queued at
    once fails unscored and does not count), the 2 defaults and at least one sibling among
    the queued trials. Not asserted: all 6 siblings. The benchmark's 15 two-worker runs had
    8 queued trials each, but one CI run had 7: a sibling slot went to a TPE trial (a race
    at the phase boundary, not yet found), so "the same 6 siblings as one worker" is what
    the workers do almost always, not a guarantee.

    Whether their winner is one worker's is the benchmark's question, not asserted here:
    it held in 15 of 15 two-worker studies over seeds 0-4 (11 of 15 before the fitted
    defaults started every study: the misses came after a TPE phase that differs from one
    worker's, two trials running at a time), so a test of it on one seed would test one
    path of TPE's, not the sharing."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_generator_workers import compare

    server_stack.create_databases(stack, ("generator_workers",))
    url = stack.database_url("generator_workers")
    row = compare(url, "two-generator-workers", 2, 24, overlap=True, baseline=False)
    (two,) = row["two"]
    assert two["scored"] == 24 and two["duplicates"] == 0, row
    assert two["queued"] >= 2 + 1, row  # the defaults and the sibling phase


# -------------------------------------------------------------- a worker killed mid-trial


def _running_trial(parent_id: str) -> Run | None:
    """The MLflow run of a trial the worker of ``parent_id`` is evaluating, if any."""
    running = find_runs(
        f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'"
    )
    return next((r for r in running if r.data.tags.get("trial", "").isdigit()), None)


def test_a_worker_killed_mid_trial(stack, train_run):
    base = {"train_run": train_run, "storage": stack.storage_url, "study_name": "killed", **SEARCH}
    env = {"AELATENT_OPTUNA_HEARTBEAT_S": str(HEARTBEAT_S)}
    doomed = worker(stack, "search", {**base, "n_trials": "200"}, **env)
    other = worker(stack, "search", {**base, "n_trials": "8"}, **env)
    deadline = time.monotonic() + 300
    dead_run = None
    while dead_run is None:  # stop the doomed worker while it evaluates a trial, then kill it
        assert doomed.poll() is None and time.monotonic() < deadline
        parents = find_runs("tags.study_name = 'killed' and params.n_trials = '200'")
        if parents and _running_trial(parents[0].info.run_id) is not None:
            doomed.send_signal(signal.SIGSTOP)
            dead_run = _running_trial(parents[0].info.run_id)
            if dead_run is None:
                doomed.send_signal(signal.SIGCONT)
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.communicate(timeout=60)
    dead_parent = parents[0].info.run_id
    dead_number = int(dead_run.data.tags["trial"])
    finish(other)
    # a worker that starts its next trial after the grace period finds the dead one stale
    time.sleep(max(0.0, killed_at + 3 * HEARTBEAT_S + 1 - time.monotonic()))
    late = worker(stack, "search", {**base, "n_trials": "2"}, **env)
    finish(late)

    trials = study(stack, "killed").trials
    dead = trials[dead_number]
    assert dead.state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == dead_number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params["b"] == dead.params["b"]
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.FAIL}
    assert sum(t.state == TrialState.FAIL for t in trials) == 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    by_doomed = [t for t in complete if t.user_attrs["mlflow_parent_run_id"] == dead_parent]
    assert len(complete) == len(by_doomed) + 8 + 2  # the others ran all of theirs
    # the dead trial's run and the dead worker's run are closed with the reason: KILLED by
    # the next job to start (its process is gone, issue 28), or FAILED by a worker that
    # finds the trial stale
    for run_id in (dead_run.info.run_id, dead_parent):
        closed = mlflow.get_run(run_id)
        assert closed.info.status in ("FAILED", "KILLED"), run_id
        error = closed.data.tags["error"]
        assert f"stopped during trial {dead_number}" in error or (
            f"its process {doomed.pid} on this machine" in error
        ), error
    survivors = [p for p in searches("killed") if p.info.run_id != dead_parent]
    assert len(survivors) == 2 and all(p.info.status == "FINISHED" for p in survivors)
    assert max(p.data.metrics["n_trials_study"] for p in survivors) == len(complete)
    kids = [k for p in searches("killed") for k in children(p.info.run_id)]
    assert_trials_match_runs(complete, [k for k in kids if k.info.run_id != dead_run.info.run_id])


# ------------------------------------------------------- the tracking server restarted


def test_tracking_server_restarted_during_a_search(stack, train_run):
    n = 14  # both stop at >= 2 finished trials: at least 10 more each to log after the restart
    base = {"train_run": train_run, "storage": stack.storage_url, "n_trials": str(n), **SEARCH}
    patient = worker(stack, "search", {**base, "study_name": "restart"})  # MLflow's retries
    impatient = worker(
        stack, "search", {**base, "study_name": "no-retries"}, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"
    )
    deadline = time.monotonic() + 300
    while True:  # both in the middle of their trials
        done = {
            name: [
                k
                for p in searches(name)
                for k in children(p.info.run_id)
                if k.info.status == "FINISHED"
            ]
            for name in ("restart", "no-retries")
        }
        if all(len(runs) >= 2 for runs in done.values()):
            break
        assert patient.poll() is None and impatient.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.3)
    server_stack.stop_tracking(stack)
    assert all(len(runs) < n - 2 for runs in done.values())  # both have more to log
    output = impatient.communicate(timeout=120)[0]
    server_stack.start_tracking(stack)
    finish(patient)

    # without retries: one line naming the tracking URI, exit 2
    assert impatient.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    (line,) = [line for line in output.splitlines() if ": error: " in line]
    assert f"MLFLOW_TRACKING_URI={stack.tracking_uri}" in line and "server is running" in line
    # with MLflow's retries: the search went on as if nothing happened
    (parent,) = searches("restart")
    assert parent.info.status == "FINISHED"
    trials = study(stack, "restart").trials
    assert len(trials) == n and all(t.state == TrialState.COMPLETE for t in trials)
    kids = children(parent.info.run_id)
    assert_trials_match_runs(trials, kids)
    assert_logged_once([parent, *kids])
    # nothing logged before the restart is lost, by either worker
    for before in done.values():
        for run in before:
            after = mlflow.get_run(run.info.run_id)
            assert after.info.status == "FINISHED" and after.data.metrics == run.data.metrics
    stopped = study(stack, "no-retries").trials
    complete = [t for t in stopped if t.state == TrialState.COMPLETE]
    assert len(complete) >= len(done["no-retries"])
    assert {t.state for t in stopped} <= {TrialState.COMPLETE, TrialState.FAIL}
    for trial in complete:  # every result has its run; the interrupted trial is FAIL
        assert mlflow.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FINISHED"


# ----------------------------------------------------------------------------- bad input


def test_bad_urls_and_another_question_are_one_line(stack, train_run, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    argv = ["--train-run", train_run, "--n-trials", "1", "--n-samples", "2000", "--seed", "1"]
    good = stack.storage_url
    closed_port = server_stack.free_port()
    for storage, fragments in (
        (
            stack.database_url("optuna", password="wrong"),
            ["password authentication failed", "check that the database server is running"],
        ),
        (
            good.replace(f":{stack.pg_port}/", f":{closed_port}/"),
            [f"port {closed_port} failed", "check that the database server is running"],
        ),
        (good.rsplit("/", 1)[0] + "/nosuchdb", ['database "nosuchdb" does not exist']),
        (stack.backend_store_uri, ["another application's database"]),  # MLflow's own
    ):
        line = cli_error(search.cli, [*argv, "--storage", storage], capsys)
        assert line.startswith("aelatent search: error: storage='postgresql+psycopg://"), line
        assert stack.password not in line and "wrong" not in line
        for fragment in fragments:
            assert fragment in line, line

    # a study made for k=2, mode single: another question is refused, nothing is mixed in
    search.cli([*argv, "--storage", good, "--study-name", "question"])
    before = [(t.number, t.state, t.params) for t in study(stack, "question").trials]
    for extra, fragment in (
        (["--k", "3"], "k=2 (now 3)"),
        (["--mode", "multi"], "mode=multi needs 2"),
        (["--n-samples", "3000"], "n_samples=2000 (now 3000)"),
    ):
        line = cli_error(
            search.cli, [*argv, "--storage", good, "--study-name", "question", *extra], capsys
        )
        assert "study_name='question'" in line and fragment in line, line
    assert [(t.number, t.state, t.params) for t in study(stack, "question").trials] == before
    # a worker of another question that joined a new study in the same instant as its
    # creator (both past the check before opening it) is refused once it has joined
    definition = dict(study(stack, "question").user_attrs)
    storage = search_study.open_storage(good)
    raced = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "raced")
    for key, value in {**definition, "k": 3.0}.items():
        storage.set_study_user_attr(raced, key, value)
    with pytest.raises(UserError, match=r"study_name='raced' was made for k=3 \(now 2\)"):
        search_study.open_study(storage, "raced", definition, optuna.samplers.RandomSampler())
    assert not storage.get_all_trials(raced)

    # the tracking server unreachable: one line naming it (MLflow's retries off to be quick)
    dead = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    mlflow.set_tracking_uri(dead)
    try:
        line = cli_error(search.cli, [*argv, "--storage", good], capsys)
    finally:
        mlflow.set_tracking_uri(stack.tracking_uri)
    assert f"MLFLOW_TRACKING_URI={dead}" in line and "server is running" in line


# ------------------------------------------- claims to resume one run, through the server


def test_claimants_of_one_run_through_the_server_exactly_one_resumes(stack):
    """Issue 28, item 1, against PostgreSQL behind `mlflow server` (two workers): the claim
    is a parameter, which the database's primary key lets only one claimant write."""
    client = mlflow.MlflowClient()
    run_id = client.create_run(
        "0", tags={"entry_point": "train", lifecycle.OWNER_TAG: "gone.example:1"}
    ).info.run_id
    for key, value in {
        "case_arg": "I",
        "data": "orl",
        "training.epochs": "2",
        "data.image_size": "32",
        "seed": "0",
    }.items():
        client.log_param(run_id, key, value)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("claim_race.py")), run_id, "4"],
        cwd=stack.root,
        env=tracking_env(stack.tracking_uri),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers.count("won") == 1, answers
    assert all(
        a.startswith(f"lost resume={run_id!r} is still training") for a in answers if a != "won"
    )
    client.set_terminated(run_id, "KILLED")


def test_the_stack_says_what_to_export(stack):
    assert server_stack.status(stack.root).count(": running") == 2
    assert (Path(stack.root) / "env").read_text() == server_stack.export_lines(stack)
    assert os.stat(Path(stack.root) / server_stack.STATE_FILE).st_mode & 0o077 == 0


def test_a_database_tracking_uri_is_shown_without_its_password():
    line = lifecycle._store_message("postgresql+psycopg://u:secret@db:5432/mlflow", OSError("x"))
    assert "secret" not in line and "MLFLOW_TRACKING_URI=postgresql+psycopg://u:***@db" in line
    assert "database server is running" in line and "password" in line
