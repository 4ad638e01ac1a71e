"""Scaling out: search workers on a PostgreSQL study against an SQLite one, and metrics per
second through the tracking server; where it stops scaling, and why.

    .venv/bin/python benchmarks/bench_scaling.py [--quick]

Starts the stack of ``make server`` (``aelatent.ops.server_stack``: PostgreSQL, an ``mlflow
server`` with two workers on it) in a temporary folder, and measures

- **the Optuna storage alone**: 1, 2 and 4 processes asking and telling trials of one study
  with an objective that costs nothing (a random sampler), on an SQLite file and on
  PostgreSQL: what the storage itself takes;
- **the search entry point**: 1, 2 and 4 ``search`` workers (``python mlproject/search.py``,
  ``n_samples`` 2,000, every trial logged as an MLflow run through the server) on one study
  in an SQLite file and in PostgreSQL; trials per second over the time all workers ran at
  once (process start-up excluded);
- **metrics through the server**: 1, 2 and 4 processes logging one metric a request, and one
  process logging batches of 100 (``log_batch``).

For each, the CPU time PostgreSQL (the postmaster and every backend, the exited ones
included) and the tracking server (all its processes) spent, as cores busy over the phase,
and PostgreSQL's committed transactions: who is the bottleneck.

Writes ``benchmarks/results/scaling.json`` and ``.md`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
WORKERS = (1, 2, 4)


# --- who spends the CPU ------------------------------------------------------------------


def _cpu(process: psutil.Process) -> float:
    """CPU seconds of ``process``, its exited (reaped) children and its live descendants."""
    try:
        t = process.cpu_times()
        own = t.user + t.system + t.children_user + t.children_system
        return own + sum(_cpu(child) for child in process.children())
    except psutil.Error:
        return 0.0


class Usage:
    """Snapshots of the stack's CPU and PostgreSQL's commits; :meth:`since` the difference."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        pid = int((stack.data_dir / "postmaster.pid").read_text().split()[0])
        self.postmaster = psutil.Process(pid)

    def snapshot(self) -> dict[str, float]:
        return {
            "t": time.monotonic(),
            "pg": _cpu(self.postmaster),
            "server": _cpu(psutil.Process(self.stack.mlflow_pid)),
            "commits": self.commits(),
        }

    def settle(self, timeout: float = 90.0) -> None:
        """Wait until the tracking server is idle (its later workers finish starting after
        the first answers /health)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = _cpu(psutil.Process(self.stack.mlflow_pid))
            time.sleep(2.0)
            if _cpu(psutil.Process(self.stack.mlflow_pid)) - before < 0.1:
                return

    def connections(self) -> dict[str, int]:
        """Open connections per database now."""
        import psycopg

        with psycopg.connect(self.stack.database_url("postgres").replace("+psycopg", "")) as db:
            rows = db.execute(
                "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL "
                "GROUP BY datname"
            ).fetchall()
        return {str(name): int(count) for name, count in rows}

    def commits(self) -> float:
        import psycopg

        with psycopg.connect(self.stack.database_url("postgres").replace("+psycopg", "")) as db:
            row = db.execute("SELECT sum(xact_commit) FROM pg_stat_database").fetchone()
        return float(row[0] if row else 0)

    def since(self, before: dict[str, float]) -> dict[str, float]:
        after = {
            "t": time.monotonic(),
            "pg": _cpu(self.postmaster),
            "server": _cpu(psutil.Process(self.stack.mlflow_pid)),
        }
        time.sleep(11)  # an idle backend reports its counters within 10 s
        after["commits"] = self.commits()
        wall = after["t"] - before["t"]
        return {
            "phase_s": wall,
            "pg_cores": (after["pg"] - before["pg"]) / wall,
            "server_cores": (after["server"] - before["server"]) / wall,
            "pg_commits": after["commits"] - before["commits"],
        }


# --- the Optuna storage alone ------------------------------------------------------------


def _storage_worker(url: str, name: str, seconds: float, start: Any, counts: Any, i: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=name, storage=url, sampler=optuna.samplers.RandomSampler(seed=i)
    )
    start.wait()
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        trial = study.ask()
        study.tell(trial, trial.suggest_float("b", 0.05, 12, log=True))
        done += 1
    counts[i] = done


def storage_alone(url: str, n: int, seconds: float, usage: Usage) -> dict[str, float]:
    """Trials per second of ``n`` processes on one new study at ``url`` (nothing else done)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = f"storage-{n}-{time.time_ns()}"
    optuna.create_study(study_name=name, storage=url)
    ctx = mp.get_context("spawn")
    start, counts = ctx.Barrier(n + 1), ctx.Array("i", n)
    processes = [
        ctx.Process(target=_storage_worker, args=(url, name, seconds, start, counts, i))
        for i in range(n)
    ]
    for process in processes:
        process.start()
    start.wait()
    before = usage.snapshot()
    for process in processes:
        process.join()
    spent = usage.since(before)
    trials = sum(counts)
    return {
        "trials_per_s": trials / seconds,
        **spent,
        "pg_commits_per_trial": spent["pg_commits"] / max(trials, 1),
    }


# --- the search entry point --------------------------------------------------------------


def synthetic_train_run(folder: Path) -> str:
    """A train run holding Gaussian latents (as tests/jobs/test_search.py's), no model."""
    import mlflow

    from aelatent.io.analysis_artifacts import write_csv

    latents = np.random.default_rng(5).normal(0.0, 0.5, (500, 16)).astype(np.float32)
    (folder / "latents").mkdir(parents=True)
    np.save(folder / "latents" / "latents.npy", latents)
    write_csv(
        folder / "latents" / "index.csv",
        {
            "row": np.arange(500),
            "image_id": np.arange(500),
            "partition": np.array(["train"] * 400 + ["val"] * 100),
        },
    )
    with mlflow.start_run(run_name="synthetic train (bench_scaling)") as run:
        mlflow.set_tags({"entry_point": "train", "case": "synthetic", "dataset": "synthetic"})
        mlflow.log_artifacts(str(folder))
    return run.info.run_id


def _overlap_rate(trials: list[Any]) -> tuple[float, int, float]:
    """Trials per second while every worker ran: from the last worker's first trial to the
    first worker's last one. Returns (rate, trials counted, seconds)."""
    by_worker: dict[str, list[Any]] = {}
    for t in trials:
        if t.datetime_complete is not None:
            by_worker.setdefault(t.user_attrs.get("mlflow_parent_run_id", "?"), []).append(t)
    begin = max(min(t.datetime_start for t in own) for own in by_worker.values())
    end = min(max(t.datetime_complete for t in own) for own in by_worker.values())
    inside = [
        t
        for t in trials
        if t.datetime_complete is not None
        and begin <= t.datetime_start
        and t.datetime_complete <= end
    ]
    seconds = (end - begin).total_seconds()
    return (len(inside) / seconds if seconds > 0 else float("nan")), len(inside), seconds


def search_workers(
    stack: Any, storage: str, train_run: str, n: int, n_trials: int, cwd: Path, usage: Usage
) -> dict[str, Any]:
    import optuna

    name = f"scaling-{n}-{time.time_ns()}"
    command = [
        sys.executable,
        str(ROOT / "mlproject" / "search.py"),
        "--train-run",
        train_run,
        "--n-trials",
        str(n_trials),
        "--n-samples",
        "2000",
        "--storage",
        storage,
        "--study-name",
        name,
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": stack.tracking_uri}
    before = usage.snapshot()
    processes = [
        subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    peak = {"optuna": 0, "mlflow": 0}
    while any(process.poll() is None for process in processes):
        now = usage.connections()  # the monitor's own connection is to "postgres"
        peak = {db: max(peak[db], now.get(db, 0)) for db in peak}
        time.sleep(0.5)
    for process in processes:
        _, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(err[-3000:])
    spent = usage.since(before)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    rate, counted, seconds = _overlap_rate(trials)
    return {
        "workers": n,
        "trials": len(trials),
        "trials_per_s": rate,
        "counted": counted,
        "window_s": seconds,
        "peak_connections": peak,
        **spent,
    }


# --- metrics through the server ----------------------------------------------------------


def _metric_worker(
    uri: str, experiment_id: str, count: int, batch: int, start: Any, times: Any, i: int
) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id, run_name=f"metrics {i}").info.run_id
    start.wait()
    began = time.monotonic()
    now = int(time.time() * 1000)
    for step in range(0, count, batch):
        if batch == 1:
            client.log_metric(run_id, "m", float(step), timestamp=now, step=step)
        else:
            metrics = [Metric("m", float(s), now, s) for s in range(step, min(step + batch, count))]
            client.log_batch(run_id, metrics=metrics)
    times[i] = time.monotonic() - began
    client.set_terminated(run_id)


def metrics_through_server(
    stack: Any, experiment_id: str, n: int, count: int, batch: int, usage: Usage
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start, times = ctx.Barrier(n + 1), ctx.Array("d", n)
    processes = [
        ctx.Process(
            target=_metric_worker,
            args=(stack.tracking_uri, experiment_id, count, batch, start, times, i),
        )
        for i in range(n)
    ]
    for process in processes:
        process.start()
    start.wait()
    before = usage.snapshot()
    for process in processes:
        process.join()
    spent = usage.since(before)
    return {
        "processes": n,
        "batch": batch,
        "metrics_per_s": n * count / max(times),
        **spent,
        "pg_commits_per_request": spent["pg_commits"] / (n * count / batch),
    }


# --- report ------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Scaling out",
        "",
        result["machine"],
        "",
        "Cores: CPU seconds of PostgreSQL (postmaster and backends) and of the tracking server",
        "(all its processes) per second of the phase; 2 = both cores of this machine.",
        "",
        "## The Optuna storage alone (objective free, random sampler)",
        "",
        "| workers | storage | trials/s | PostgreSQL cores | commits per trial |",
        "|---|---|---|---|---|",
    ]
    for row in result["storage_alone"]:
        for kind in ("sqlite", "postgresql"):
            r = row[kind]
            commits = f"{r['pg_commits_per_trial']:.1f}" if kind == "postgresql" else "-"
            pg = f"{r['pg_cores']:.2f}" if kind == "postgresql" else "-"
            lines.append(
                f"| {row['workers']} | {kind} | {r['trials_per_s']:.1f} | {pg} | {commits} |"
            )
    lines += [
        "",
        "## The search entry point (trials/s while all workers ran; MLflow through the server)",
        "",
        "| workers | study | trials/s | PostgreSQL cores | tracking server cores | "
        "peak connections optuna / mlflow |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("sqlite", "postgresql"):
        for r in result["search"][kind]:
            lines.append(
                f"| {r['workers']} | {kind} | {r['trials_per_s']:.2f} | "
                f"{r['pg_cores']:.2f} | {r['server_cores']:.2f} | "
                f"{r['peak_connections']['optuna']} / {r['peak_connections']['mlflow']} |"
            )
    lines += [
        "",
        "## Metrics through the tracking server (2 server workers, PostgreSQL)",
        "",
        "| client processes | metrics per request | metrics/s | PostgreSQL cores | "
        "tracking server cores | commits per request |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["metrics"]:
        lines.append(
            f"| {r['processes']} | {r['batch']} | {r['metrics_per_s']:.0f} | "
            f"{r['pg_cores']:.2f} | {r['server_cores']:.2f} | "
            f"{r['pg_commits_per_request']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter, no files written")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mlflow

    from aelatent.ops import server_stack

    seconds, n_trials, count = (3.0, 15, 200) if args.quick else (10.0, 40, 600)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        folder = Path(tmp)
        stack = server_stack.start(folder / "stack", workers=2)
        try:
            mlflow.set_tracking_uri(stack.tracking_uri)
            os.environ["MLFLOW_TRACKING_URI"] = stack.tracking_uri
            os.environ["PGPASSFILE"] = str(stack.pgpass)  # the URLs hold no password
            usage = Usage(stack)
            usage.settle()
            storages = {
                "sqlite": f"sqlite:///{folder / 'optuna.db'}",
                "postgresql": stack.storage_url,
            }
            storage_rows = [
                {
                    "workers": n,
                    **{k: storage_alone(url, n, seconds, usage) for k, url in storages.items()},
                }
                for n in WORKERS
            ]
            train_run = synthetic_train_run(folder / "train")
            search_rows = {
                k: [
                    search_workers(stack, url, train_run, n, n_trials, folder, usage)
                    for n in WORKERS
                ]
                for k, url in storages.items()
            }
            experiment = mlflow.set_experiment("bench-scaling-metrics").experiment_id
            metric_rows = [
                metrics_through_server(stack, experiment, n, count // n, 1, usage) for n in WORKERS
            ]
            metric_rows.append(metrics_through_server(stack, experiment, 1, count * 20, 100, usage))
        finally:
            server_stack.stop(folder / "stack", wipe=True)
    result = {
        "machine": f"{platform.node()} ({platform.machine()}), {os.cpu_count()} cores shared "
        f"with other work: load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; {datetime.now():%Y-%m-%d}",
        "storage_alone": storage_rows,
        "search": search_rows,
        "metrics": metric_rows,
    }
    text = markdown(result)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "scaling.json").write_text(json.dumps(result, indent=1, default=str))
        (RESULTS / "scaling.md").write_text(text)


if __name__ == "__main__":
    main()
