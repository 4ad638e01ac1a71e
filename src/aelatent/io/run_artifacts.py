"""Reading a train run's artifacts back, with checks that catch corrupt or partial files.

Downloads go through MLflow's artifact API, so the same code reads a local store and a
remote tracking server.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

from aelatent.errors import UserError
from aelatent.schema import LATENT_INDEX_CSV, LATENTS_NPY

MODEL_NAME = "model"


def download(run_id: str, artifact_path: str, dst_path: str | Path | None = None) -> Path:
    """Download one artifact of a run; a clear error if the run does not have it."""
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=artifact_path,
            dst_path=None if dst_path is None else str(dst_path),
        )
    except (MlflowException, OSError):
        raise UserError(f"run {run_id!r} has no artifact {artifact_path!r}") from None
    return Path(local)


def check_latents(latents: np.ndarray, source: str) -> np.ndarray:
    """Latents must be a finite float matrix with at least two rows."""
    if latents.ndim != 2 or latents.shape[0] < 2 or latents.shape[1] < 1:
        raise UserError(
            f"{source}: expected latents of shape [n_images, z_dim], got {latents.shape}"
        )
    if not np.issubdtype(latents.dtype, np.floating):
        raise UserError(f"{source}: expected float latents, got {latents.dtype}")
    bad = ~np.isfinite(latents)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise UserError(
            f"{source}: {int(bad.sum())} NaN/Inf values in {len(rows)} rows (first row {rows[0]}); "
            "retrain or re-encode"
        )
    return latents


def load_latents(run_id: str) -> np.ndarray:
    """The train run's latents, checked (a truncated .npy or NaN/Inf give a clear error)."""
    path = download(run_id, LATENTS_NPY)
    try:
        latents = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{LATENTS_NPY} of run {run_id!r} is corrupt or truncated: {exc}") from None
    return check_latents(latents, f"{LATENTS_NPY} of run {run_id!r}")


def load_autoencoder(run_id: str):
    """The train run's autoencoder as a Keras model (layers ``encoder`` and ``decoder``)."""
    import mlflow.keras  # TensorFlow: only when a model is loaded

    try:
        return mlflow.keras.load_model(f"runs:/{run_id}/{MODEL_NAME}")
    except MlflowException:
        raise UserError(f"run {run_id!r} has no model {MODEL_NAME!r}") from None


def load_partitions(run_id: str, n_rows: int) -> np.ndarray | None:
    """The partition (train, val, test) of each latent row, from ``latents/index.csv``.

    None when the run has no index (runs logged without one); a UserError when it does not
    match the latents.
    """
    try:
        path = download(run_id, LATENT_INDEX_CSV)
    except UserError:
        return None
    with path.open(newline="") as handle:
        partitions = [row.get("partition", "") for row in csv.DictReader(handle)]
    if len(partitions) != n_rows:
        raise UserError(
            f"{LATENT_INDEX_CSV} of run {run_id!r} has {len(partitions)} rows, the latents {n_rows}"
        )
    return np.asarray(partitions)


def load_latent_split(run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(training latents, held-out latents) of a train run; UserError if either is empty.

    Windows are estimated from the training partition; every other partition (val, test)
    is held out, the real-data ceiling of the hit test.
    """
    latents = load_latents(run_id)
    partitions = load_partitions(run_id, latents.shape[0])
    if partitions is None:
        raise UserError(
            f"run {run_id!r} has no artifact {LATENT_INDEX_CSV!r}: the partitions of its "
            "latents (training rows for the windows, held-out rows for the ceiling)"
        )
    train = partitions == "train"
    if not train.any():
        raise UserError(
            f"run {run_id!r} has no latents of the train partition to estimate "
            f"windows from ({LATENT_INDEX_CSV})"
        )
    if train.all():
        raise UserError(
            f"run {run_id!r} has no held-out latents (partition val or test in "
            f"{LATENT_INDEX_CSV}): the real-data ceiling needs them; retrain with a "
            "validation split"
        )
    return latents[train], latents[~train]


MODEL_REQUIREMENTS = ("mlflow", "keras", "numpy", "tensorflow")  # what MLflow infers for it


def pinned_requirements(names: Sequence[str]) -> list[str]:
    """``name==version`` of each installed distribution: a logged model's pip requirements.

    Given explicitly, MLflow skips inferring them, which imports the model in a subprocess
    (about 9 s of every training on two cores)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins
