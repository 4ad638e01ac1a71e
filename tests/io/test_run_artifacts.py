"""Corrupt or partial artifacts give a clear error, never a silent pass."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from aelatent.errors import UserError
from aelatent.io.run_artifacts import check_latents, load_latents
from aelatent.schema import LATENTS_NPY


def _run_with_latents(tmp_path, write) -> str:
    folder = tmp_path / "latents"
    folder.mkdir()
    write(folder / "latents.npy")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="latents")
    return run.info.run_id


def test_good_latents_load(tracking_uri, tmp_path):
    latents = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    run_id = _run_with_latents(tmp_path, lambda p: np.save(p, latents))
    np.testing.assert_array_equal(load_latents(run_id), latents)


def test_nan_latents_are_named(tracking_uri, tmp_path):
    latents = np.zeros((10, 4), dtype=np.float32)
    latents[3, 1] = np.nan
    latents[7, 0] = np.inf
    run_id = _run_with_latents(tmp_path, lambda p: np.save(p, latents))
    with pytest.raises(UserError, match=r"2 NaN/Inf values in 2 rows \(first row 3\)"):
        load_latents(run_id)


def test_truncated_npy_is_detected(tracking_uri, tmp_path):
    def write_truncated(path):
        np.save(path, np.ones((100, 8), dtype=np.float32))
        path.write_bytes(path.read_bytes()[:-100])

    run_id = _run_with_latents(tmp_path, write_truncated)
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_latents(run_id)


def test_missing_latents_and_missing_run(tracking_uri):
    with mlflow.start_run() as run:
        pass
    with pytest.raises(UserError, match=f"has no artifact '{LATENTS_NPY}'"):
        load_latents(run.info.run_id)
    with pytest.raises(UserError, match="has no artifact"):
        load_latents("0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize(
    ("latents", "message"),
    [
        (np.zeros(5, dtype=np.float32), "shape"),
        (np.zeros((5, 3), dtype=np.int64), "float"),
        (np.zeros((1, 3), dtype=np.float32), "shape"),
    ],
)
def test_check_latents_shapes_and_types(latents, message):
    with pytest.raises(UserError, match=message):
        check_latents(latents, "test")
