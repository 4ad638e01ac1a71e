"""The experiment the entry points log into: `aelatent` (marked as model training) unless the
user chose one, under `mlflow run` (the default-experiment provider) and without it."""

from __future__ import annotations

import sys

import mlflow
import pytest
from conftest import ROOT, cli_error
from mlflow.tracking import MlflowClient

from aelatent.errors import UserError
from aelatent.io.experiment import (
    EXPERIMENT_NAME,
    KIND,
    KIND_TAG,
    ProjectExperimentProvider,
    choose_experiment,
    ensure_experiment,
    launched_project,
    mark_experiment,
)
from aelatent.io.tracking import entry_point_run, run_entry_point


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["/venv/bin/mlflow", "run", str(ROOT), "-e", "train"], True),
        (["/venv/bin/mlflow", "run", "-e", "train", "-P", "case=I", str(ROOT)], True),
        (["/venv/lib/python3.11/site-packages/mlflow/__main__.py", "run", str(ROOT)], True),
        (["/venv/bin/mlflow", "run", f"file://{ROOT}"], True),
        (["/venv/bin/mlflow", "run", "https://github.com/someone/else"], False),
        (["/venv/bin/mlflow", "run", str(ROOT / "src")], False),  # no MLproject there
        (["/venv/bin/mlflow", "ui", str(ROOT)], False),
        (["python", "mlproject/train.py", "run", str(ROOT)], False),
        (["pytest"], False),
    ],
)
def test_only_mlflow_run_of_this_project_is_recognised(argv, found):
    assert (launched_project(argv) is not None) is found


def test_the_experiment_is_created_marked_and_reused(tracking_uri):
    first = ensure_experiment(EXPERIMENT_NAME)
    assert ensure_experiment(EXPERIMENT_NAME) == first
    assert MlflowClient().get_experiment(first).tags[KIND_TAG] == KIND


def test_an_experiment_without_a_kind_is_marked_one_with_a_kind_kept(tracking_uri):
    client = MlflowClient()
    bare = client.create_experiment("made elsewhere, no kind")
    mark_experiment(bare)
    assert client.get_experiment(bare).tags[KIND_TAG] == KIND
    genai = client.create_experiment("a genai one", tags={KIND_TAG: "genai_development"})
    mark_experiment(genai)
    assert client.get_experiment(genai).tags[KIND_TAG] == "genai_development"


def test_mlflow_run_lands_in_aelatent_unless_the_user_says_otherwise(tracking_uri, monkeypatch):
    """What `mlflow run` asks before creating its run: its provider answers `aelatent` for
    this project; `--experiment-name`, `--experiment-id` and MLFLOW_EXPERIMENT_NAME win."""
    from mlflow.projects import _resolve_experiment_id

    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    # an earlier test's mlflow.set_experiment in this process is not what `mlflow run` sees
    monkeypatch.setattr("mlflow.tracking.fluent._active_experiment_id", None)
    monkeypatch.setattr(sys, "argv", [str(ROOT / ".venv/bin/mlflow"), "run", str(ROOT)])
    assert ProjectExperimentProvider().in_context()
    aelatent = ensure_experiment()
    assert _resolve_experiment_id() == aelatent
    mine = _resolve_experiment_id(experiment_name="my study")
    assert mine != aelatent
    assert MlflowClient().get_experiment(mine).name == "my study"
    assert _resolve_experiment_id(experiment_id="0") == "0"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from the environment")
    assert MlflowClient().get_experiment(_resolve_experiment_id()).name == "from the environment"
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert not ProjectExperimentProvider().in_context()


def test_a_job_without_mlflow_run_lands_in_aelatent(tracking_uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    with entry_point_run("report", "experiment probe") as run:
        pass
    assert run.info.experiment_id == ensure_experiment()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "chosen by the user")
    with entry_point_run("report", "experiment probe") as run:
        pass
    chosen = MlflowClient().get_experiment(run.info.experiment_id)
    assert chosen.name == "chosen by the user" and chosen.tags[KIND_TAG] == KIND
    mlflow.set_experiment(experiment_id=ensure_experiment())  # as the jobs leave it


def test_a_deleted_aelatent_experiment_is_one_clear_line(tracking_uri):
    client = MlflowClient()
    name = "aelatent-deleted-probe"
    client.delete_experiment(client.create_experiment(name))
    with pytest.raises(UserError, match="deleted: restore it"):
        ensure_experiment(name)


def test_an_unusable_experiment_variable_is_one_clear_line(tracking_uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "987654321")
    with pytest.raises(UserError, match="MLFLOW_EXPERIMENT_ID='987654321'"):
        choose_experiment()
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    mlflow.set_experiment(experiment_id=ensure_experiment())


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"MLFLOW_EXPERIMENT_ID": "3"},
        {"MLFLOW_EXPERIMENT_NAME": "x", "MLFLOW_ALLOW_FILE_STORE": "true"},
    ],
    ids=["no variable", "an experiment id", "a name, file store allowed"],
)
def test_a_tracking_uri_naming_a_yaml_file_is_named_not_a_variable(
    variables, tmp_path, monkeypatch, capsys
):
    """Issue 28, item 14: the message named `MLFLOW_EXPERIMENT_ID=None`, never set."""
    case = tmp_path / "case.yaml"
    case.write_text("name: I\nz_dim: 16\n")
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(case))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    def job(argv):
        with entry_point_run("demo", "demo"):
            raise AssertionError("no run can start in a YAML file")

    line = cli_error(lambda argv: run_entry_point("demo", job, argv), [], capsys)
    assert f"MLFLOW_TRACKING_URI={case} cannot be used ({case} is a file, neither" in line, line
    assert "MLFLOW_EXPERIMENT" not in line
    assert case.read_text() == "name: I\nz_dim: 16\n"
