"""Per-epoch checkpoints, so an interrupted training continues where it stopped.

The whole autoencoder (weights and optimizer state, Keras' ``.keras`` format) and the
number of finished epochs are written after every epoch to a local folder keyed by the
MLflow run id (atomically: a kill mid-write leaves the previous checkpoint intact). Every
``upload_every_s`` seconds the folder is also logged to the run's ``checkpoint/``
artifacts, so a resume on another machine (against a tracking server) works too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import mlflow
import mlflow.keras

CHECKPOINT_ARTIFACT = "checkpoint"
MODEL_FILE = "autoencoder.keras"
STATE_FILE = "state.json"


def checkpoint_root() -> Path:
    return Path(os.environ.get("AELATENT_CHECKPOINT_DIR", "checkpoints")).expanduser()


def checkpoint_dir(run_id: str) -> Path:
    return checkpoint_root() / run_id


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model and the finished-epoch count after every epoch."""

    def __init__(self, run_id: str, upload_every_s: float = 300.0) -> None:
        super().__init__()
        self.directory = checkpoint_dir(run_id)
        self.upload_every_s = upload_every_s
        self._last_upload = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".keras", delete=False) as tmp:
            partial = Path(tmp.name)
        self.model.save(partial)
        os.replace(partial, self.directory / MODEL_FILE)
        state = self.directory / f"{STATE_FILE}.partial"
        state.write_text(json.dumps({"epochs_done": epoch + 1}))
        os.replace(state, self.directory / STATE_FILE)
        if time.monotonic() - self._last_upload >= self.upload_every_s:
            mlflow.log_artifacts(str(self.directory), artifact_path=CHECKPOINT_ARTIFACT)
            self._last_upload = time.monotonic()


def load_checkpoint(run_id: str) -> tuple[keras.Model, int] | None:
    """(model, epochs done) from the local folder, else from the run's artifacts; or None."""
    directory = checkpoint_dir(run_id)
    if not (directory / STATE_FILE).is_file():
        try:
            directory = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=CHECKPOINT_ARTIFACT
                )
            )
        except Exception:
            return None
        if not (directory / STATE_FILE).is_file():
            return None
    epochs_done = int(json.loads((directory / STATE_FILE).read_text())["epochs_done"])
    return keras.models.load_model(directory / MODEL_FILE), epochs_done


def remove_checkpoint(run_id: str) -> None:
    """A finished run keeps its final model in MLflow; the local checkpoint is no longer needed."""
    shutil.rmtree(checkpoint_dir(run_id), ignore_errors=True)


class SynchronousMlflowCallback(mlflow.keras.MlflowCallback):  # type: ignore[misc]
    """MLflow's Keras callback (optimizer params, model summary), its epoch metrics logged
    synchronously. MLflow queues them (``synchronous=False``): a killed training lost every
    epoch still in the queue, and a fast one could finish before any reached the store.
    Synchronously, a kill loses at most the epoch in flight (its checkpoint is written first,
    by :class:`EpochCheckpoint`), so a resumed run's history is whole."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs:
            mlflow.log_metrics({name: float(value) for name, value in logs.items()}, step=epoch)
