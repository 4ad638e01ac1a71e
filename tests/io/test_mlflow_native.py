"""Datasets, the model registry, tables and descriptions in MLflow's own terms."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
from conftest import cli_error
from mlflow.tracking import MlflowClient

from aelatent.data.images import ImageSet
from aelatent.errors import UserError
from aelatent.io.mlflow_native import (
    CONTEXT_TAG,
    NOTE_TAG,
    REGISTERED_MODEL_TAG,
    dataset_digest,
    evaluation_note,
    log_csv_table,
    log_image_set,
    log_train_dataset,
    register_trained_model,
    registered_model_name,
    set_description,
    train_run_line,
    train_run_of_model,
)
from aelatent.io.tracking import resolve_train_run


def _image_set(seed: int = 0, n: int = 10) -> ImageSet:
    images = np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    partitions = np.array(["train"] * (n - 3) + ["val"] * 3)
    return ImageSet("tiny", images, tuple(f"img{i}.png" for i in range(n)), partitions)


def test_the_digest_follows_pixels_ids_and_partitions():
    base = _image_set()
    assert dataset_digest(base) == dataset_digest(_image_set()) and len(dataset_digest(base)) == 16
    pixels = base.images.copy()
    pixels[4, 3, 3, 0] ^= 1
    changed = [
        ImageSet("tiny", pixels, base.ids, base.partitions),
        ImageSet("tiny", base.images, base.ids[::-1], base.partitions),
        ImageSet("tiny", base.images, base.ids, base.partitions[::-1]),
    ]
    assert len({dataset_digest(base), *map(dataset_digest, changed)}) == 4


def test_train_and_evaluation_runs_show_the_same_dataset(tracking_uri, tmp_path):
    image_set = _image_set()
    with mlflow.start_run(run_name="train case T") as train:
        mlflow.set_tag("dataset", "tiny")
        log_image_set(image_set, str(tmp_path))
    with mlflow.start_run() as evaluation:
        assert log_train_dataset(train.info.run_id) == 1
        set_description("first line", train_run_line(train.info.run_id))
    client = MlflowClient()
    (trained,) = client.get_run(train.info.run_id).inputs.dataset_inputs
    (evaluated,) = client.get_run(evaluation.info.run_id).inputs.dataset_inputs
    assert trained.dataset.name == "tiny" == evaluated.dataset.name
    assert trained.dataset.digest == dataset_digest(image_set) == evaluated.dataset.digest
    assert json.loads(trained.dataset.source)["uri"] == str(tmp_path)
    assert json.loads(trained.dataset.profile)["features_shape"] == [10, 8, 8, 1]
    tags = {t.key: t.value for t in trained.tags}
    assert tags[CONTEXT_TAG] == "training"
    assert (tags["n_train"], tags["n_val"], tags["n_test"]) == ("7", "3", "0")
    tags = {t.key: t.value for t in evaluated.tags}
    assert tags[CONTEXT_TAG] == "evaluation" and tags["train_run"] == train.info.run_id
    note = client.get_run(evaluation.info.run_id).data.tags[NOTE_TAG]
    link = f"[train case T](#/experiments/{train.info.experiment_id}/runs/{train.info.run_id})"
    assert note.startswith("first line\n\nTrain run: " + link) and "dataset `tiny`" in note


def test_a_csv_goes_in_as_a_table(tracking_uri, tmp_path):
    path = tmp_path / "windows.csv"
    path.write_text("component,mu,hw\n0,0.5,1.25\n1,-0.25,2\n")
    with mlflow.start_run() as run:
        log_csv_table(path, "tables/windows.json")
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="tables/windows.json", dst_path=str(tmp_path / "d")
    )
    with open(local) as handle:
        table = json.load(handle)
    assert table["columns"] == ["component", "mu", "hw"]
    assert table["data"] == [[0, 0.5, 1.25], [1, -0.25, 2.0]]
    logged = json.loads(mlflow.get_run(run.info.run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "tables/windows.json", "type": "table"}]


def _grid(sampler, scales, rates, n=1000):
    rates = np.asarray(rates, dtype=float)
    return (
        SimpleNamespace(
            sampler=sampler,
            scales=np.asarray(scales, float),
            ks=np.array([1.0, 2.0]),
            hit_rate=rates,
            n=n,
        ),
        SimpleNamespace(hit_lo=rates * 0.9, hit_hi=np.minimum(rates * 1.1, 1)),
    )


def test_the_evaluation_note_names_the_best_generator_and_the_ceiling():
    uniform = _grid("uniform", [1, 3], [[0.1, 0.2], [0.0, 0.05]])
    mvn = _grid("mvn", [0.5, 1], [[0.3, 0.4], [0.2, 0.6]])
    ceiling = SimpleNamespace(
        ks=np.array([1.0, 2.0]),
        rate=np.array([0.5, 0.9]),
        lo=np.array([0.3, 0.7]),
        hi=np.array([0.7, 0.97]),
        n=40,
    )
    note = evaluation_note([uniform[0], mvn[0]], [uniform[1], mvn[1]], ceiling)
    first, second = note.split("\n\n")
    assert "k = 2" in first and "**mvn, scale = 1**" in first
    assert "hit rate 0.6 [0.54, 0.66]" in first
    assert "uniform b = 1: 0.2" in first
    assert second.startswith("**Held-out ceiling**: 0.9 [0.7, 0.97]") and "40 held-out" in second
    nothing = _grid("uniform", [1], [[0.0, 0.0]])
    assert "No generator hit" in evaluation_note([nothing[0]], [nothing[1]], ceiling)


class _Identity(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[float]) -> list[float]:
        return model_input


@pytest.fixture(scope="module")
def registered(tracking_uri) -> SimpleNamespace:
    """A finished train run with a registered version of a model of its own (unique case)."""
    case = f"unit{uuid.uuid4().hex[:6]}"
    with mlflow.start_run(run_name=f"train case {case}") as run:
        mlflow.set_tags({"entry_point": "train", "case": case})
        info = mlflow.pyfunc.log_model(name="model", python_model=_Identity())
        uri = register_trained_model(info.model_uri, case, "tiny")
    name = registered_model_name(case)
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    return SimpleNamespace(run_id=run.info.run_id, name=name, uri=uri)


def test_a_train_run_registers_a_version(registered):
    assert registered.uri == f"models:/{registered.name}/1"
    assert mlflow.get_run(registered.run_id).data.tags[REGISTERED_MODEL_TAG] == registered.uri
    version = MlflowClient().get_model_version(registered.name, "1")
    assert version.run_id == registered.run_id and version.tags["dataset"] == "tiny"


@pytest.mark.parametrize("suffix", ["/1", "/latest", "@champion"])
def test_a_registered_model_uri_names_its_train_run(registered, suffix):
    uri = f"models:/{registered.name}{suffix}"
    assert train_run_of_model(uri) == registered.run_id
    assert resolve_train_run(uri).info.run_id == registered.run_id


@pytest.mark.parametrize(
    ("suffix", "fragment"),
    [
        ("/7", "has no version '7' (its versions: 1)"),
        ("/one", "has no version 'one'"),
        ("@staging", "has no alias 'staging' (its aliases: champion)"),
        ("", "models:/<name>/<version>"),
    ],
)
def test_a_wrong_version_or_alias_is_one_clear_line(registered, suffix, fragment):
    with pytest.raises(UserError) as error:
        train_run_of_model(f"models:/{registered.name}{suffix}")
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_registered_model_names_those_that_exist(registered, capsys, monkeypatch):
    from aelatent.jobs.analyse import cli

    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    line = cli_error(cli, ["--train-run", "models:/no-such-model/1"], capsys)
    assert "no registered model 'no-such-model'" in line and registered.name in line
