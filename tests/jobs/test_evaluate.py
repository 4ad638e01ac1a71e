"""The evaluate entry point end to end through `mlflow run`, and its bad-input messages.

Two train runs are evaluated: a synthetic one logged directly by the test (Gaussian latents
with known mu and widths, no model: fast, and the hit rates have a closed form), and the
session's tiny trained network (decoded image grids need its decoder).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import assert_user_error, find_runs, mlflow_run, newest_run

from aelatent.io.analysis_artifacts import write_csv
from aelatent.jobs.evaluate import cli

pytestmark = pytest.mark.e2e

Z_DIM = 16
SAMPLERS = ("uniform", "gaussian", "mvn")


@pytest.fixture(scope="module")
def synthetic_train_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FINISHED run tagged as a train run, with latents and stats/components.csv only."""
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 0.3, Z_DIM)
    sigma = rng.uniform(0.3, 0.8, Z_DIM)
    latents = (mu + sigma * rng.standard_normal((500, Z_DIM))).astype(np.float32)
    out = tmp_path_factory.mktemp("synthetic_train")
    (out / "latents").mkdir()
    np.save(out / "latents" / "latents.npy", latents)
    write_csv(
        out / "stats" / "components.csv",
        {"component": np.arange(Z_DIM), "mu": mu, "hw": 2.3548 * sigma, "sigma": sigma},
    )
    with mlflow.start_run(run_name="synthetic train") as run:
        mlflow.set_tags({"entry_point": "train", "case": "synthetic", "dataset": "synthetic"})
        mlflow.log_artifacts(str(out))
    return run.info.run_id


@pytest.fixture(scope="module")
def synthetic_evaluation(synthetic_train_run: str, tracking_uri: str) -> mlflow.entities.Run:
    params = {
        "train_run": synthetic_train_run,
        "b": "0.5,1,2",
        "k": "0.5,1,2,4",
        "scale": "1,2",
        "n_samples": "20000",
        "seed": "4",
        "n_decoded": "0",
    }
    result = mlflow_run("evaluate", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    runs = find_runs(f"tags.train_run = '{synthetic_train_run}'")
    assert len(runs) == 1
    return runs[0]


def _download(run_id: str, path: str, dst: Path) -> Path:
    return Path(
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst))
    )


def test_synthetic_evaluation_logs_the_contract(
    synthetic_evaluation, synthetic_train_run, tmp_path
):
    run = synthetic_evaluation
    assert run.info.status == "FINISHED"
    assert run.data.tags["entry_point"] == "evaluate"
    assert run.data.tags["case"] == "synthetic"
    assert run.data.params["train_run_id"] == synthetic_train_run
    assert run.data.params["samplers"] == "uniform,gaussian,mvn"
    metrics = run.data.metrics
    axes = {"uniform": ("0.5", "1", "2"), "gaussian": ("1", "2"), "mvn": ("1", "2")}
    for sampler, scales in axes.items():
        for b in scales:
            for k in ("0.5", "1", "2", "4"):
                for kind in ("hit_rate", "hits", "log10_p_hit"):
                    assert f"{kind}/{sampler}/b{b}/k{k}" in metrics
                rate, hits = (
                    metrics[f"hit_rate/{sampler}/b{b}/k{k}"],
                    metrics[f"hits/{sampler}/b{b}/k{k}"],
                )
                assert hits == pytest.approx(rate * 20000)
            for kind in ("radius_mean", "radius_std", "radius_mean_theory", "radius_std_theory"):
                assert metrics[f"{kind}/{sampler}/b{b}"] > 0
    assert "hit_rate/uniform/b1.5/k2" not in metrics  # only the grid that was asked for

    for path in (
        "hits/hit_rates.csv",
        "radius/radii.png",
        *(f"hits/heatmap_{s}.png" for s in SAMPLERS),
        *(f"misses/miss_counts_{s}.csv" for s in SAMPLERS),
        *(f"misses/miss_counts_{s}.png" for s in SAMPLERS),
    ):
        assert _download(run.info.run_id, path, tmp_path).stat().st_size > 0, path
    with open(_download(run.info.run_id, "hits/hit_rates.csv", tmp_path / "csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == (3 + 2 + 2) * 4
    for row in rows:
        key = f"{row['sampler']}/b{row['b']}/k{row['k']}"
        assert float(row["hits"]) == metrics[f"hits/{key}"]
        assert row["p_method"] == ("ghk_estimate" if row["sampler"] == "mvn" else "exact")


def test_synthetic_rates_agree_with_theory(synthetic_evaluation):
    """Monte Carlo rate within 4 binomial sigma of the probability; radii near theory."""
    metrics = synthetic_evaluation.data.metrics
    n = 20000
    checked = 0
    for key, log10_p in metrics.items():
        if not key.startswith("log10_p_hit/"):
            continue
        p = 10.0**log10_p
        hits = metrics[key.replace("log10_p_hit/", "hits/")]
        slack = 4 * math.sqrt(n * p * (1 - p)) + 1 + (0.03 * n * p if "/mvn/" in key else 0)
        assert abs(hits - n * p) <= slack, (key, hits, n * p)
        checked += 1
    assert checked == (3 + 2 + 2) * 4
    for key, value in metrics.items():
        if key.startswith("radius_mean/"):
            theory = metrics[key.replace("radius_mean/", "radius_mean_theory/")]
            spread = metrics[key.replace("radius_mean/", "radius_std_theory/")]
            assert abs(value - theory) < 5 * spread / math.sqrt(n), key


def test_tiny_network_evaluation_decodes_samples(tiny_train_run, tracking_uri, tmp_path):
    params = {
        "train_run": tiny_train_run,
        "b": "1,3",
        "k": "1,3",
        "scale": "1",
        "n_samples": "3000",
        "n_decoded": "4",
    }
    result = mlflow_run("evaluate", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    run = newest_run(f"tags.train_run = '{tiny_train_run}' and tags.entry_point = 'evaluate'")
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    rates = {
        k.removeprefix("hit_rate/"): v for k, v in metrics.items() if k.startswith("hit_rate/")
    }
    # uniform: 2 b x 2 k; gaussian and mvn: 1 scale x 2 k
    assert len(rates) == 2 * 2 + 2 * 1 * 2
    for key, rate in rates.items():
        assert 0 <= rate <= 1, key
        assert metrics[f"hits/{key}"] == round(rate * 3000), key
    decoded = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "decoded")}
    expected = {
        "reconstructions.png",
        "overview.png",
        "uniform_b1.png",
        "uniform_b3.png",
        "gaussian_b1.png",
        "mvn_b1.png",
    }
    assert {f"decoded/{name}" for name in expected} <= decoded


def test_bad_b_through_mlflow_run(synthetic_train_run, tracking_uri):
    result = mlflow_run("evaluate", {"train_run": synthetic_train_run, "b": "1,0"}, tracking_uri)
    assert_user_error(result, "b=", "> 0")


def test_unknown_train_run_through_mlflow_run(tracking_uri):
    result = mlflow_run("evaluate", {"train_run": "0123456789abcdef"}, tracking_uri)
    assert_user_error(result, "0123456789abcdef", "does not exist")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--k", "2,-1"], ("k=", "> 0")),
        (["--b", "x"], ("b=", "not a number")),
        (["--scale", "0"], ("scale=", "> 0")),
        (["--sampler", "gmm"], ("gmm", "uniform, gaussian, mvn")),
        (["--n-samples", "0"], ("n_samples",)),
    ],
)
def test_bad_parameters_fail_before_any_work(argv, fragments, synthetic_train_run, capsys):
    before = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    with pytest.raises(SystemExit) as exit_info:
        cli(["--train-run", synthetic_train_run, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(f in errors[0] for f in fragments), err
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == before


def test_train_run_without_latents_is_a_clear_error(tracking_uri, capsys):
    with mlflow.start_run(run_name="empty train") as run:
        mlflow.set_tag("entry_point", "train")
    with pytest.raises(SystemExit) as exit_info:
        cli(["--train-run", run.info.run_id, "--n-decoded", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "latents/latents.npy" in errors[0] and run.info.run_id in errors[0]
