"""A training killed mid-run continues from its last checkpoint in the same MLflow run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import mlflow
import numpy as np
import pytest
from conftest import BIN, ROOT, assert_user_error, find_runs, mlflow_run, tracking_env

pytestmark = pytest.mark.e2e

EPOCHS = 12  # margin: the test kills it at its third epoch (metrics are logged synchronously)


def _loss_steps(client: mlflow.MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "loss"))


def test_killed_training_resumes_in_the_same_run(tracking_uri, tmp_path):
    checkpoints = str(tmp_path / "checkpoints")
    command = [
        str(BIN / "mlflow"),
        "run",
        str(ROOT),
        "-e",
        "train",
        "--env-manager",
        "local",
        "-P",
        "case=I",
        "-P",
        f"epochs={EPOCHS}",
        "-P",
        "image_size=32",
        "-P",
        "seed=5",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=tracking_env(tracking_uri, AELATENT_CHECKPOINT_DIR=checkpoints),
    )
    client = mlflow.MlflowClient()
    run_id = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            runs = find_runs("tags.entry_point = 'train' and params.seed = '5'")
            if runs and len(_loss_steps(client, runs[0].info.run_id)) >= 3:
                run_id = runs[0].info.run_id
                break
            assert process.poll() is None, "training ended before it could be interrupted"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert run_id is not None, "training never reached its third epoch"
    assert mlflow.get_run(run_id).info.status == "RUNNING"
    done_before = len(_loss_steps(client, run_id))
    assert done_before < EPOCHS

    resumed = mlflow_run(
        "train", {"resume": run_id}, tracking_uri, AELATENT_CHECKPOINT_DIR=checkpoints
    )
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert f"resuming run {run_id}" in resumed.output
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_after_epoch"]) >= 2
    steps = _loss_steps(client, run_id)
    # The checkpoint is written before the epoch's metrics: a kill between the two can lose
    # one epoch's metrics, never log one twice.
    assert len(steps) == len(set(steps)) >= EPOCHS - 1 and steps[-1] == EPOCHS - 1
    latents = np.load(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="latents/latents.npy", dst_path=str(tmp_path)
        )
    )
    assert latents.shape == (400, 256)
    assert not (tmp_path / "checkpoints" / run_id).exists()

    again = mlflow_run("train", {"resume": run_id}, tracking_uri)
    assert_user_error(again, f"resume={run_id!r} already FINISHED")
