"""The train entry point end to end through `mlflow run`, and its bad-input messages."""

from __future__ import annotations

import csv
import importlib.metadata
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import TINY_TRAIN, assert_user_error, mlflow_run, newest_run

from aelatent.io.run_artifacts import load_autoencoder
from aelatent.io.tracking import resolve_train_run
from aelatent.jobs.train import cli

EXPECTED_ARTIFACTS = [
    "latents/latents.npy",
    "latents/index.csv",
    "histograms/counts.npy",
    "histograms/edges.npy",
    "histograms/components.png",
    "stats/components.csv",
    "reconstructions.png",
]


def _download(run_id: str, path: str, tmp_path) -> str:
    return mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=path, dst_path=str(tmp_path)
    )


def test_train_run_is_complete(tiny_train_run, tmp_path):
    run = mlflow.get_run(tiny_train_run)
    assert run.info.status == "FINISHED"
    assert run.data.tags["case"] == "I" and run.data.tags["dataset"] == "orl"
    assert run.data.tags["mlflow.runName"] == "train case I"
    params = run.data.params
    assert params["training.epochs"] == "2" and params["data.image_size"] == "32"
    assert params["model.encoder.filters"] == "32,64,128,256"
    assert params["training.learning_rate"] == "0.0005"
    client = mlflow.MlflowClient()
    for metric in ("loss", "val_loss"):
        history = client.get_metric_history(tiny_train_run, metric)
        assert [m.step for m in history] == [0, 1], metric

    local = {path: _download(tiny_train_run, path, tmp_path / path) for path in EXPECTED_ARTIFACTS}
    latents = np.load(local["latents/latents.npy"])
    assert latents.shape == (400, 256) and latents.dtype == np.float32
    assert np.isfinite(latents).all() and latents.std() > 0
    with open(local["latents/index.csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 400 and {r["partition"] for r in rows} == {"train", "val"}
    counts = np.load(local["histograms/counts.npy"])
    edges = np.load(local["histograms/edges.npy"])
    assert counts.shape == (256, len(edges) - 1) and counts.dtype == np.int64
    assert 80 <= counts.shape[1] <= 120
    assert (counts.sum(axis=1) == 400).all()
    assert np.isclose(edges[0], -edges[-1]) and edges[-1] >= np.abs(latents).max()
    with open(local["stats/components.csv"]) as handle:
        components = list(csv.DictReader(handle))
    assert len(components) == 256 and {"mu", "hw"} <= set(components[0])

    # in MLflow's own terms: its experiment, its dataset, a registered version, tables
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "aelatent"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (dataset,) = client.get_run(tiny_train_run).inputs.dataset_inputs
    assert dataset.dataset.name == "orl" and len(dataset.dataset.digest) == 16
    tags = {t.key: t.value for t in dataset.tags}
    assert tags["mlflow.data.context"] == "training"
    assert (tags["n_train"], tags["n_val"], tags["image_size"]) == ("360", "40", "32")
    registered = run.data.tags["registered_model"]
    name, version = registered.removeprefix("models:/").split("/")
    assert name == "aelatent-case-I"
    assert client.get_model_version(name, version).run_id == tiny_train_run
    assert resolve_train_run(registered).info.run_id == tiny_train_run
    assert [a.path for a in client.list_artifacts(tiny_train_run, "tables")] == [
        "tables/windows.json"
    ]

    # the model's pip requirements are given (MLflow's inference imports it in a subprocess)
    requirements = Path(_download(tiny_train_run, "model/requirements.txt", tmp_path / "req"))
    pins = dict(line.split("==") for line in requirements.read_text().split())
    assert sorted(pins) == ["keras", "mlflow", "numpy", "tensorflow"]
    assert pins["tensorflow"] == importlib.metadata.version("tensorflow")

    autoencoder = load_autoencoder(tiny_train_run)
    images = np.random.default_rng(0).random((3, 32, 32, 1), dtype=np.float32)
    z = autoencoder.get_layer("encoder")(images).numpy()
    assert z.shape == (3, 256)
    assert autoencoder.get_layer("decoder")(z).numpy().shape == images.shape


ERROR_LIKE = re.compile(r"^E\d{4} |\bERROR\b|Error\b|Traceback|\bfailed\b", re.MULTILINE)


def test_same_seed_same_latents(tiny_train_run, tracking_uri, tmp_path):
    # TF_CPP_MIN_LOG_LEVEL as a new user has it (unset): the console stays quiet too
    again = mlflow_run("train", TINY_TRAIN, tracking_uri, TF_CPP_MIN_LOG_LEVEL="")
    assert again.returncode == 0, again.output[-3000:]
    assert not ERROR_LIKE.findall(again.output), again.output[-3000:]
    assert "\r" not in again.output  # no progress-bar frames in a log
    assert "encoding: 400/400 img in" in again.output
    newest = newest_run("tags.entry_point = 'train'").info.run_id
    assert newest != tiny_train_run
    first = np.load(_download(tiny_train_run, "latents/latents.npy", tmp_path / "a"))
    second = np.load(_download(newest, "latents/latents.npy", tmp_path / "b"))
    np.testing.assert_array_equal(first, second)


@pytest.mark.e2e
def test_bad_input_fails_the_mlflow_run(tracking_uri):
    result = mlflow_run("train", {"case": "III"}, tracking_uri)
    assert_user_error(result, "unknown case 'III'", "I, II")
    failed = newest_run("attributes.status = 'FAILED'")
    assert "unknown case" in failed.data.tags["error"]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--case", "IV"], ["unknown case 'IV'"]),
        (["--case", "nowhere/case.yaml"], ["'nowhere/case.yaml' does not exist"]),
        (["--image-size", "50"], ["image_size=50", "multiple of 16"]),
        (["--epochs", "0"], ["epochs=0", ">= 1"]),
        (["--epochs", "many"], ["epochs='many'", "integer"]),
        (["--data", "/no/such/folder"], ["data='/no/such/folder' does not exist"]),
    ],
)
def test_bad_input_is_one_line(argv, fragments, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aelatent train: error: ")
    for fragment in fragments:
        assert fragment in err


@pytest.mark.e2e
def test_defaults_of_mlflow_run_are_accepted(tracking_uri):
    """`auto` epochs and image size, as `mlflow run` passes them, resolve from the YAML."""
    result = mlflow_run("train", {"case": "II", "epochs": "1", "seed": "9"}, tracking_uri)
    assert result.returncode == 0, result.output[-3000:]
    run = newest_run("params.seed = '9'")
    assert run.info.status == "FINISHED"
    assert run.data.params["image_size"] == "auto"  # as given to `mlflow run`
    assert run.data.params["data.image_size"] == "64"  # as resolved from case_II.yaml
    assert run.data.params["model.encoder.kernels"] == "5,5,3,3"
