"""Two evaluate runs at once against the same store: nothing lost, nothing mixed up."""

from __future__ import annotations

import subprocess

import pytest
from conftest import BIN, ROOT, find_runs, mlflow_run, tracking_env

pytestmark = pytest.mark.e2e

PARAMS = {
    "sampler": "uniform,gaussian",
    "b": "1,2,4",
    "k": "1,2",
    "scale": "1",
    "n_samples": "3000",
    "n_decoded": "0",
    "verdict": "none",  # what is shared here is the store, not the verdict's work
}


def _command(train_run: str, seed: int) -> list[str]:
    command = [str(BIN / "mlflow"), "run", str(ROOT), "-e", "evaluate", "--env-manager", "local"]
    for key, value in {**PARAMS, "train_run": train_run, "seed": str(seed)}.items():
        command += ["-P", f"{key}={value}"]
    return command


def _evaluate_runs(train_run: str, seed: int) -> list:
    return find_runs(
        f"tags.entry_point = 'evaluate' and tags.train_run = '{train_run}' "
        f"and params.seed = '{seed}' and params.n_samples = '3000'",
        newest_first=False,
    )


def test_two_evaluations_at_once(tiny_train_run, tracking_uri):
    env = tracking_env(tracking_uri)
    processes = [
        subprocess.Popen(
            _command(tiny_train_run, seed),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (11, 12)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]

    # The same evaluation alone, afterwards: its metrics must equal the concurrent ones.
    alone = mlflow_run(
        "evaluate", {**PARAMS, "train_run": tiny_train_run, "seed": "11"}, tracking_uri
    )
    assert alone.returncode == 0, alone.output[-3000:]

    first, repeat = _evaluate_runs(tiny_train_run, 11)
    (second,) = _evaluate_runs(tiny_train_run, 12)
    for run in (first, second, repeat):
        assert run.info.status == "FINISHED"
    hit_keys = {k for k in first.data.metrics if k.startswith(("hit_rate/", "hits/"))}
    # {hit_rate, hits} x (uniform: 3 b x 2 k; gaussian: 1 scale x 2 k; held-out ceiling: 2 k)
    assert len(hit_keys) == 2 * (3 * 2 + 1 * 2 + 2)
    assert set(second.data.metrics) == set(first.data.metrics) == set(repeat.data.metrics)
    for key in hit_keys:
        assert first.data.metrics[key] == repeat.data.metrics[key], key
    radius_keys = [k for k in first.data.metrics if k.startswith("radius_mean/uniform/")]
    assert radius_keys
    for key in radius_keys:  # another seed, other draws: the runs did not share results
        assert first.data.metrics[key] == repeat.data.metrics[key]
        assert first.data.metrics[key] != second.data.metrics[key]
