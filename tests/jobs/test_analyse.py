"""The analysis logged to MLflow: inside a train run, and the ``analyse`` entry point."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from aelatent.io.analysis_artifacts import ARTIFACT_PATHS
from aelatent.jobs.analyse import analyse_and_log, cli, main


def _latents() -> np.ndarray:
    rng = np.random.default_rng(31)
    latents = rng.standard_normal((600, 8)) * 0.3
    latents[:, 1] += 0.8
    latents[:, 4] *= 6.0
    return latents.astype(np.float32)


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for info in client.list_artifacts(run_id, path):
        found |= _artifact_paths(client, run_id, info.path) if info.is_dir else {info.path}
    return found


def _fake_train_run(tmp_path) -> str:
    folder = tmp_path / "latents"
    folder.mkdir()
    np.save(folder / "latents.npy", _latents())
    with mlflow.start_run(run_name="train case I") as run:
        mlflow.set_tags({"entry_point": "train", "case": "I", "dataset": "synthetic"})
        mlflow.log_artifacts(str(folder), artifact_path="latents")
    return run.info.run_id


def test_analyse_and_log_into_the_active_run(tracking_uri):
    with mlflow.start_run() as run:
        analysis = analyse_and_log(_latents())
    client = MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert set(ARTIFACT_PATHS) <= _artifact_paths(client, run.info.run_id)
    assert data.metrics["n_dominant"] == analysis.metrics()["n_dominant"] == 2
    assert data.metrics["n_mu_abs_ge_0.25"] == 1 and "radius_mean" in data.metrics
    for name in ("scale_median_hw", "n_sig_mu_abs_ge_0.25s", "n_sig_hw_ge_1.5s", "n_dominant_sig"):
        assert data.metrics[name] == analysis.metrics()[name], name
    assert data.params["analysis_mu_threshold"] == "0.25"
    assert data.params["analysis_estimate"] == "central"


def test_analyse_and_log_needs_a_run(tracking_uri):
    with pytest.raises(RuntimeError, match="active MLflow run"):
        analyse_and_log(_latents())


def test_entry_point_reanalyses_a_train_run_into_a_new_run(tracking_uri, tmp_path):
    train_id = _fake_train_run(tmp_path)
    run_id = main(["--train-run", train_id, "--mu-threshold", "1", "--hw-threshold", "2.5"])
    run = MlflowClient().get_run(run_id)
    assert run_id != train_id and run.info.status == "FINISHED"
    assert run.data.tags["entry_point"] == "analyse"
    assert run.data.tags["train_run"] == train_id
    assert run.data.tags["mlflow.runName"] == "analyse I"
    assert run.data.params["analysis_hw_threshold"] == "2.5"
    assert run.data.metrics["n_dominant"] == 1  # only the wide component 4 (hw ~ 4.2)
    assert run.data.metrics["n_mu_abs_ge_0.25"] == 1  # the study's level, whatever the rule
    assert "stats/components.csv" in _artifact_paths(MlflowClient(), run_id)


def test_entry_point_defaults_to_the_newest_train_run_of_a_case(tracking_uri, tmp_path):
    train_id = _fake_train_run(tmp_path)
    run_id = main(["--case", "I", "--estimate", "fit"])
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["train_run"] == train_id
    assert run.data.params["analysis_estimate"] == "fit"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mu-threshold", "-1"], "mu_threshold='-1'"),
        (["--hw-threshold", "abc"], "hw_threshold='abc'"),
        (["--n-bins", "1"], "n_bins=1"),
        (["--estimate", "mode"], "estimate='mode'"),
        (["--train-run", "0123456789abcdef"], "0123456789abcdef"),
    ],
)
def test_bad_parameters_are_one_line_user_errors(tracking_uri, tmp_path, capsys, args, fragment):
    train_id = _fake_train_run(tmp_path)
    argv = ["--train-run", train_id, *args] if "--train-run" not in args else args
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err
    assert len([line for line in err.splitlines() if ": error: " in line]) == 1


@pytest.mark.e2e
def test_analyse_entry_point_through_mlflow_run(tiny_train_run, tracking_uri):
    """`mlflow run . -e analyse` re-analyses a train run with other thresholds, no retraining."""
    from conftest import mlflow_run, newest_run

    result = mlflow_run(
        "analyse",
        {"train_run": tiny_train_run, "hw_threshold": "3", "estimate": "fit"},
        tracking_uri,
    )
    assert result.returncode == 0, result.output[-3000:]
    run = newest_run(f"tags.entry_point = 'analyse' and tags.train_run = '{tiny_train_run}'")
    assert run.info.status == "FINISHED"
    assert run.data.params["analysis_hw_threshold"] == "3.0"
    assert {"n_dominant", "radius_mean", "pca_n_90"} <= set(run.data.metrics)
    assert "stats/components.csv" in _artifact_paths(MlflowClient(), run.info.run_id)
