"""A training killed mid-run continues from its last checkpoint in the same MLflow run: from
any folder (the checkpoint's place is recorded in the run), one resume at a time (two at
once: exactly one trains), and never again from epoch 1 when the checkpoint is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import BIN, ROOT, assert_user_error, find_runs, mlflow_run, tracking_env

from aelatent.io.checkpoints import CHECKPOINT_TAG, STATE_FILE

pytestmark = pytest.mark.e2e

EPOCHS = 12  # margin: the test kills it at its third epoch (metrics are logged synchronously)


def _loss_steps(client: mlflow.MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "loss"))


def _mlflow_run_resume(run_id: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [str(BIN / "mlflow"), "run", str(ROOT), "-e", "train", "--env-manager", "local"]
    return subprocess.Popen(
        [*command, "-P", f"resume={run_id}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_training_resumes_in_the_same_run_from_anywhere_once(tracking_uri, tmp_path):
    started_in, elsewhere = tmp_path / "started_in", tmp_path / "elsewhere"
    started_in.mkdir()
    elsewhere.mkdir()
    env = tracking_env(tracking_uri, AELATENT_CHECKPOINT_DIR="ckpt")  # relative: to the cwd
    command = [sys.executable, str(ROOT / "mlproject" / "train.py"), "--case", "I"]
    command += ["--epochs", str(EPOCHS), "--image-size", "32", "--seed", "5"]
    process = subprocess.Popen(
        command,
        cwd=started_in,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    client = mlflow.MlflowClient()
    run_id = None
    deadline = time.monotonic() + 600
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
    run = mlflow.get_run(run_id)
    assert run.info.status == "RUNNING"
    recorded = Path(run.data.tags[CHECKPOINT_TAG])
    assert recorded == started_in / "ckpt" / run_id and (recorded / STATE_FILE).is_file()
    done_before = _loss_steps(client, run_id)
    assert len(done_before) < EPOCHS

    # The checkpoint gone (moved away): the resume refuses, in one line naming where it
    # looked, instead of training the run again from epoch 1 (issue 28, item 2).
    hidden = tmp_path / "hidden"
    recorded.rename(hidden)
    refused = subprocess.run(
        [sys.executable, str(ROOT / "mlproject" / "train.py"), "--resume", run_id],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if ": error: " in line]
    assert f"resume={run_id!r}: its checkpoint is not found" in line, line
    for place in (recorded, elsewhere / "ckpt" / run_id, f"runs:/{run_id}/checkpoint"):
        assert str(place) in line, line
    assert "from epoch 1" in line
    assert _loss_steps(client, run_id) == done_before  # nothing trained
    assert not (elsewhere / "ckpt").exists()
    hidden.rename(recorded)

    # Two resumes at once, from another folder with another AELATENT_CHECKPOINT_DIR: the
    # recorded checkpoint is found, and exactly one of them trains (issue 28, items 1, 2).
    other_env = tracking_env(tracking_uri, AELATENT_CHECKPOINT_DIR=str(elsewhere / "ckpt"))
    resumes = [_mlflow_run_resume(run_id, other_env, elsewhere) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in resumes]
    codes = [p.returncode for p in resumes]
    assert sorted(code == 0 for code in codes) == [False, True], [o[1][-2000:] for o in outputs]
    (won,) = [out + err for (out, err), code in zip(outputs, codes, strict=True) if code == 0]
    (lost,) = [err for (_, err), code in zip(outputs, codes, strict=True) if code != 0]
    assert f"resuming run {run_id}" in won
    assert "Traceback" not in lost
    (line,) = [line for line in lost.splitlines() if ": error: " in line]
    assert f"resume={run_id!r} is still training (process " in line, line

    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["resumed_after_epoch"]) >= 2
    assert "error" not in run.data.tags  # why it stopped is kept as resumed_error
    assert run.data.tags["resumed_error"].startswith("left RUNNING: its process ")
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
    assert not recorded.exists()
    assert not (elsewhere / "ckpt").exists()
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert len([m for m in models if m.source_run_id == run_id]) == 1  # one model, not two

    again = mlflow_run("train", {"resume": run_id}, tracking_uri)
    assert_user_error(again, f"resume={run_id!r} already FINISHED")
