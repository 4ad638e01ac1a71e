"""Per-epoch checkpoints, so an interrupted training continues where it stopped.

The whole autoencoder (weights and optimizer state, Keras' ``.keras`` format) and the
number of finished epochs are written after every epoch to a local folder keyed by the
MLflow run id (atomically: a kill mid-write leaves the previous checkpoint intact), under
``$AELATENT_CHECKPOINT_DIR`` (default ``checkpoints`` in the current folder). The folder's
absolute path is recorded in the run's ``aelatent.checkpoint_dir`` tag, so a resume from
any folder finds it. Every ``upload_every_s`` seconds the folder is also logged to the run's
``checkpoint/`` artifacts, so a resume on another machine (against a tracking server) works
too. :func:`find_checkpoint` looks in all three places; a resume that finds nothing after
epochs were logged is refused rather than started again from epoch 1.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import mlflow.keras
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

CHECKPOINT_ARTIFACT = "checkpoint"
CHECKPOINT_TAG = "aelatent.checkpoint_dir"
MODEL_FILE = "autoencoder.keras"
STATE_FILE = "state.json"


def checkpoint_root() -> Path:
    """``$AELATENT_CHECKPOINT_DIR`` (default ``checkpoints``), as an absolute path."""
    return Path(os.environ.get("AELATENT_CHECKPOINT_DIR", "checkpoints")).expanduser().absolute()


def checkpoint_dir(run_id: str) -> Path:
    return checkpoint_root() / run_id


@dataclass(frozen=True)
class CheckpointSearch:
    """Where a run's checkpoint is: ``local`` (a folder holding one), or ``in_artifacts``;
    ``looked_in``: every place searched, for the message when it is nowhere."""

    local: Path | None
    in_artifacts: bool
    looked_in: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.local is not None or self.in_artifacts


def find_checkpoint(run: Run) -> CheckpointSearch:
    """The run's checkpoint: the folder recorded in its ``aelatent.checkpoint_dir`` tag, the
    folder under the current ``$AELATENT_CHECKPOINT_DIR``, then its ``checkpoint/`` artifacts."""
    run_id = run.info.run_id
    folders: list[Path] = []
    recorded = run.data.tags.get(CHECKPOINT_TAG)
    if recorded:
        folders.append(Path(recorded))
    if checkpoint_dir(run_id) not in folders:
        folders.append(checkpoint_dir(run_id))
    local = next((folder for folder in folders if (folder / STATE_FILE).is_file()), None)
    in_artifacts = False
    if local is None:
        try:
            listed = MlflowClient().list_artifacts(run_id, CHECKPOINT_ARTIFACT)
        except Exception:  # no artifacts, or a store that cannot list them: not there
            listed = []
        in_artifacts = any(a.path.endswith(f"/{STATE_FILE}") for a in listed)
    looked_in = (*map(str, folders), f"runs:/{run_id}/{CHECKPOINT_ARTIFACT}")
    return CheckpointSearch(local, in_artifacts, looked_in)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model and the finished-epoch count after every epoch (in ``directory``,
    default :func:`checkpoint_dir`)."""

    def __init__(
        self, run_id: str, upload_every_s: float = 300.0, directory: Path | None = None
    ) -> None:
        super().__init__()
        self.directory = directory or checkpoint_dir(run_id)
        self.upload_every_s = upload_every_s
        self._last_upload = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.directory, suffix=".keras", delete=False) as tmp:
            partial = Path(tmp.name)
        state = self.directory / f"{STATE_FILE}.partial"
        try:
            self.model.save(partial)
            os.replace(partial, self.directory / MODEL_FILE)
            state.write_text(json.dumps({"epochs_done": epoch + 1}))
            os.replace(state, self.directory / STATE_FILE)
        except OSError as exc:  # a full disk: Keras' error names no file; this one does
            if exc.errno is None or exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.directory)) from exc
        finally:  # a failed or interrupted write leaves no half checkpoint behind
            partial.unlink(missing_ok=True)
            state.unlink(missing_ok=True)
        if time.monotonic() - self._last_upload >= self.upload_every_s:
            mlflow.log_artifacts(str(self.directory), artifact_path=CHECKPOINT_ARTIFACT)
            self._last_upload = time.monotonic()


def load_checkpoint(run_id: str, directory: Path | None = None) -> tuple[keras.Model, int] | None:
    """(model, epochs done) from the local folder (``directory``, default
    :func:`checkpoint_dir`), else from the run's artifacts; or None."""
    directory = directory or checkpoint_dir(run_id)
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


def remove_checkpoint(run_id: str, directory: Path | None = None) -> None:
    """A finished run keeps its final model in MLflow; the local checkpoint is no longer needed."""
    shutil.rmtree(directory or checkpoint_dir(run_id), ignore_errors=True)


class SynchronousMlflowCallback(mlflow.keras.MlflowCallback):  # type: ignore[misc]
    """MLflow's Keras callback (optimizer params, model summary), its epoch metrics logged
    synchronously. MLflow queues them (``synchronous=False``): a killed training lost every
    epoch still in the queue, and a fast one could finish before any reached the store.
    Synchronously, a kill loses at most the epoch in flight (its checkpoint is written first,
    by :class:`EpochCheckpoint`), so a resumed run's history is whole."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs:
            mlflow.log_metrics({name: float(value) for name, value in logs.items()}, step=epoch)
