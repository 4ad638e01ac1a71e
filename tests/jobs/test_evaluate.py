"""The evaluate entry point end to end through `mlflow run`, and its bad-input messages.

Two train runs are evaluated: a synthetic one logged directly by the test (Gaussian latents
with known mu and widths, no model: fast, and the hit rates have a closed form), and the
session's tiny trained network (decoded image grids need its decoder).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import (
    assert_user_error,
    cli_error,
    find_runs,
    log_synthetic_train_run,
    mlflow_run,
    newest_run,
)
from scipy import stats

from aelatent.core.hits import hit_grid
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import histogram_centre_width
from aelatent.jobs.evaluate import cli

Z_DIM = 16
SAMPLERS = ("uniform", "gaussian", "mvn", "gmm")
N_LATENTS, N_TRAIN = 500, 400
TRUE_MU = np.random.default_rng(0).normal(0, 0.3, Z_DIM)
TRUE_SIGMA = np.random.default_rng(1).uniform(0.3, 0.8, Z_DIM)


def _synthetic_latents() -> np.ndarray:
    noise = np.random.default_rng(2).standard_normal((N_LATENTS, Z_DIM))
    return (TRUE_MU + TRUE_SIGMA * noise).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_train_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FINISHED run tagged as a train run: Gaussian latents (400 train, 100 val), no model."""
    return log_synthetic_train_run(
        _synthetic_latents(), N_TRAIN, tmp_path_factory.mktemp("synthetic_train")
    )


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
        "verdict": "c2st_linear,mmd,fd,ellipsoid",  # no model: no cycle
        "verdict_splits": "2",
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


@pytest.mark.e2e
def test_synthetic_evaluation_logs_the_contract(
    synthetic_evaluation, synthetic_train_run, tmp_path
):
    run = synthetic_evaluation
    assert run.info.status == "FINISHED"
    assert run.data.tags["entry_point"] == "evaluate"
    assert run.data.tags["case"] == "synthetic"
    assert run.data.params["train_run_id"] == synthetic_train_run
    assert run.data.params["samplers"] == "uniform,gaussian,mvn,gmm"
    metrics = run.data.metrics
    axes = {
        "uniform": ("0.5", "1", "2"),
        "gaussian": ("1", "2"),
        "mvn": ("1", "2"),
        "gmm": ("1", "2"),
    }
    for sampler, scales in axes.items():
        for b in scales:
            for k in ("0.5", "1", "2", "4"):
                for kind in (
                    "hit_rate",
                    "hits",
                    "log10_p_hit",
                    "hit_rate_lo",
                    "hit_rate_hi",
                    "log10_p_hit_lo",
                    "log10_p_hit_hi",
                ):
                    assert f"{kind}/{sampler}/b{b}/k{k}" in metrics
                key = f"{sampler}/b{b}/k{k}"
                assert (
                    metrics[f"hit_rate_lo/{key}"]
                    <= metrics[f"hit_rate/{key}"]
                    <= metrics[f"hit_rate_hi/{key}"]
                )
                if math.isfinite(metrics[f"log10_p_hit/{key}"]):
                    # centred on the bias-corrected value, not the plug-in one; at most 0
                    assert metrics[f"log10_p_hit_lo/{key}"] <= metrics[f"log10_p_hit_hi/{key}"]
                    assert metrics[f"log10_p_hit_hi/{key}"] <= 0.0
                if sampler in ("mvn", "gmm"):
                    assert metrics[f"ghk_rel_se/{key}"] >= 0
                rate, hits = (
                    metrics[f"hit_rate/{sampler}/b{b}/k{k}"],
                    metrics[f"hits/{sampler}/b{b}/k{k}"],
                )
                assert hits == pytest.approx(rate * 20000)
            for kind in ("radius_mean", "radius_std", "radius_mean_theory", "radius_std_theory"):
                assert metrics[f"{kind}/{sampler}/b{b}"] > 0
    assert "hit_rate/uniform/b1.5/k2" not in metrics  # only the grid that was asked for
    assert run.data.params["estimate"] == "central"
    for k in ("0.5", "1", "2", "4"):
        assert 0 <= metrics[f"hit_rate/heldout/k{k}"] <= 1
        for b in axes["uniform"]:
            assert metrics[f"grid_log10_inside/b{b}/k{k}"] <= metrics[f"grid_log10_points/b{b}"]
    assert metrics["n_heldout"] == N_LATENTS - N_TRAIN
    # the verdict: reference rows and every setting, each test with its p-value
    for where in ("real", "heldout", *(f"{s}/b{b}" for s, bs in axes.items() for b in bs)):
        for stat, test in (("c2st_linear_acc", "c2st_linear"), ("mmd2", "mmd"), ("fd", "fd")):
            assert f"{stat}/{where}" in metrics and 0 <= metrics[f"{test}_p/{where}"] <= 1
        assert 0 <= metrics[f"ellipsoid_rate/{where}"] <= 1
    # the real row differs by chance in 5% of seeds (its rate: tests/core/test_verdict.py);
    # a uniform box of b = 2 on N(mu, 0.3..0.8) latents is told apart every time
    assert metrics["verdict_differs/real"] in (0.0, 1.0)
    assert metrics["verdict_differs/uniform/b2"] == 1.0
    assert run.data.tags["mlflow.note.content"].startswith("**Verdict**")
    table = json.loads(
        _download(run.info.run_id, "tables/verdict.json", tmp_path / "v").read_text()
    )
    assert table["tests"] == ["c2st_linear", "mmd", "fd", "ellipsoid"]
    assert [r["name"] for r in table["rows"][:2]] == ["real", "heldout"]
    assert len(table["rows"]) == 2 + 3 + 2 + 2 + 2

    for path in (
        "hits/hit_rates.csv",
        "stats/windows.csv",
        "radius/radii.png",
        "verdict/verdict.png",
        *(f"hits/heatmap_{s}.png" for s in SAMPLERS),
        *(f"hits/rate_curves_{s}.png" for s in SAMPLERS),
        *(f"misses/miss_counts_{s}.csv" for s in SAMPLERS),
        *(f"misses/miss_counts_{s}.png" for s in SAMPLERS),
    ):
        assert _download(run.info.run_id, path, tmp_path).stat().st_size > 0, path
    with open(_download(run.info.run_id, "hits/hit_rates.csv", tmp_path / "csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == (3 + 2 + 2 + 2) * 4 + 4  # and the held-out ceiling per k
    for row in rows:
        key = f"{row['sampler']}/b{row['b']}/k{row['k']}".replace("/b/", "/")
        assert float(row["hits"]) == metrics[f"hits/{key}"]
        assert float(row["hit_rate_lo"]) == metrics[f"hit_rate_lo/{key}"]
        assert row["windows"] == "central"
        expected = {"mvn": "ghk_estimate", "gmm": "ghk_estimate", "heldout": "real"}.get(
            row["sampler"], "exact"
        )
        assert row["p_method"] == expected


@pytest.mark.e2e
def test_heldout_ceiling_agrees_with_the_exact_probability(synthetic_evaluation, tmp_path):
    """Held-out and training vectors share one distribution: the held-out rate is within
    4 binomial standard errors of the exact P(a true vector lies in the estimated windows)."""
    path = _download(synthetic_evaluation.info.run_id, "stats/windows.csv", tmp_path)
    with open(path) as handle:
        table = list(csv.DictReader(handle))
    mu = np.array([float(r["mu"]) for r in table])
    hw = np.array([float(r["hw"]) for r in table])
    assert np.all(np.abs(mu - TRUE_MU) < 5 * np.array([float(r["mu_se"]) for r in table]))
    n = N_LATENTS - N_TRAIN
    for k in (0.5, 1, 2, 4):
        p = np.prod(
            stats.norm.cdf((mu + k * hw - TRUE_MU) / TRUE_SIGMA)
            - stats.norm.cdf((mu - k * hw - TRUE_MU) / TRUE_SIGMA)
        )
        rate = synthetic_evaluation.data.metrics[f"hit_rate/heldout/k{k:g}"]
        assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1 / n, (k, rate, p)


@pytest.mark.e2e
def test_histogram_estimate_reproduces_the_study(synthetic_train_run, tracking_uri):
    """estimate=histogram: the study's windows (histogram reading of the training latents)
    and the same hit counts and exact probabilities as the hit test computed directly."""
    params = {
        "train_run": synthetic_train_run,
        "sampler": "uniform",
        "b": "1,2",
        "k": "1,2",
        "n_samples": "5000",
        "seed": "3",
        "n_decoded": "0",
        "estimate": "histogram",
    }
    result = mlflow_run("evaluate", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    run = newest_run(f"tags.train_run = '{synthetic_train_run}' and params.estimate = 'histogram'")
    train = _synthetic_latents()[:N_TRAIN]
    mu, hw = histogram_centre_width(train)
    grid = hit_grid(
        UniformSampler(1.0, Z_DIM), [1, 2], [1, 2], mu, hw, 5000, np.random.default_rng([3, 0])
    )
    for j, b in enumerate((1, 2)):
        for i, k in enumerate((1, 2)):
            key = f"uniform/b{b}/k{k}"
            assert run.data.metrics[f"hits/{key}"] == grid.hits[j, i]
            assert run.data.metrics[f"log10_p_hit/{key}"] == pytest.approx(grid.log10_p_hit[j, i])


@pytest.mark.e2e
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
        ghk = "/mvn/" in key or "/gmm/" in key  # an estimate with its own few % error
        slack = 4 * math.sqrt(n * p * (1 - p)) + 1 + (0.03 * n * p if ghk else 0)
        assert abs(hits - n * p) <= slack, (key, hits, n * p)
        checked += 1
    assert checked == (3 + 2 + 2 + 2) * 4
    for key, value in metrics.items():
        if key.startswith("radius_mean/"):
            theory = metrics[key.replace("radius_mean/", "radius_mean_theory/")]
            spread = metrics[key.replace("radius_mean/", "radius_std_theory/")]
            assert abs(value - theory) < 5 * spread / math.sqrt(n), key


def test_tiny_network_evaluation_decodes_samples(tiny_train_run, tracking_uri, tmp_path):
    registered = mlflow.get_run(tiny_train_run).data.tags["registered_model"]
    params = {
        "train_run": registered,  # models:/aelatent-case-I/<version>: the tiny train run
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
    # uniform: 2 b x 2 k; gaussian, mvn and gmm: 1 scale x 2 k; the held-out ceiling: 2 k
    assert len(rates) == 2 * 2 + 3 * 1 * 2 + 2
    n_heldout = metrics["n_heldout"]
    assert n_heldout > 0
    for k in (1, 3):
        assert metrics[f"hits/heldout/k{k}"] == round(rates[f"heldout/k{k}"] * n_heldout)
        rates.pop(f"heldout/k{k}")
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
        "gmm_b1.png",
    }
    assert {f"decoded/{name}" for name in expected} <= decoded
    # in MLflow's own terms: the train run's dataset, the grid as a table, what it found
    client = mlflow.MlflowClient()
    (trained,) = client.get_run(tiny_train_run).inputs.dataset_inputs
    (evaluated,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert (evaluated.dataset.name, evaluated.dataset.digest) == ("orl", trained.dataset.digest)
    assert {t.key: t.value for t in evaluated.tags}["mlflow.data.context"] == "evaluation"
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert tables == {"tables/hit_rates.json", "tables/windows.json", "tables/verdict.json"}
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**Verdict**")  # the verdict leads, the box figures follow
    # the decoder's cycle, against the held-out faces: uniform vectors come back far worse
    assert metrics["cycle_p/uniform/b3"] < 0.01 and metrics["cycle_ratio/uniform/b3"] > 1
    assert "cycle_ratio/real" in metrics and "cycle_ratio/heldout" not in metrics
    *_, first, second, link = note.split("\n\n")
    assert first.startswith("**Best generator at k = 3**") and "hit rate" in first
    assert second.startswith("**Held-out ceiling**") and "at k = 3" in second
    assert f"/runs/{tiny_train_run})" in link


@pytest.mark.e2e
def test_bad_b_through_mlflow_run(synthetic_train_run, tracking_uri):
    result = mlflow_run("evaluate", {"train_run": synthetic_train_run, "b": "1,0"}, tracking_uri)
    assert_user_error(result, "b=", "> 0")


@pytest.mark.e2e
def test_unknown_train_run_through_mlflow_run(tracking_uri):
    result = mlflow_run("evaluate", {"train_run": "0123456789abcdef"}, tracking_uri)
    assert_user_error(result, "0123456789abcdef", "does not exist")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--k", "2,-1"], ("k=", "> 0")),
        (["--b", "x"], ("b=", "not a number")),
        (["--scale", "0"], ("scale=", "> 0")),
        (["--sampler", "gmx"], ("gmx", "uniform, gaussian, mvn, gmm")),
        (["--knn-k", "0"], ("knn_k=0", ">= 1")),
        (["--knn-k", "2.5"], ("knn_k='2.5'", "not an integer")),
        (["--knn-k", "400"], ("knn_k=400", "too large", "400")),
        (["--knn-n", "-1"], ("knn_n=-1",)),
        (["--n-samples", "0"], ("n_samples",)),
        (["--estimate", "mode"], ("estimate='mode'", "auto, fit, kde, robust, histogram")),
        (["--verdict", "mmd,knn"], ("verdict='mmd,knn'", "unknown test 'knn'", "c2st_linear")),
        (["--verdict-splits", "0"], ("verdict_splits=0", ">= 1")),
        (["--verdict", "cycle", "--n-decoded", "0"], ("no model", "cycle test", "-P verdict")),
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


@pytest.mark.e2e
def test_gmm_sampler_logs_the_mixture_and_the_knn_test(synthetic_train_run, tracking_uri, tmp_path):
    """`mlflow run . -e evaluate -P sampler=gmm`: the mixture BIC chose, its hit figures,
    and precision / recall / density / coverage with intervals beside the held-out ceiling."""
    params = {
        "train_run": synthetic_train_run,
        "sampler": "gmm",
        "k": "1,2",
        "scale": "0.5,1,2",
        "n_samples": "2000",
        "seed": "5",
        "n_decoded": "0",
        "knn_n": "300",
    }
    result = mlflow_run("evaluate", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    run = newest_run(f"tags.train_run = '{synthetic_train_run}' and params.sampler = 'gmm'")
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert run.data.params["samplers"] == "gmm"
    assert run.data.params["gmm_covariance_type"] in ("full", "diag")
    assert 1 <= metrics["gmm/n_components"] <= 8
    assert 0 < metrics["gmm/variance_kept"] <= 1
    assert metrics["knn_k"] == 5
    assert metrics["knn_n_real"] == 300 and metrics["knn_n_generated"] == 300
    assert metrics["knn_n_heldout"] == N_LATENTS - N_TRAIN
    for where in ("gmm/b0.5", "gmm/b1", "gmm/b2", "heldout"):
        for kind in ("precision", "recall", "density", "coverage"):
            value = metrics[f"{kind}/{where}"]
            assert metrics[f"{kind}_lo/{where}"] <= value <= metrics[f"{kind}_hi/{where}"]
        for k in ("1", "2"):
            if where != "heldout":
                assert f"hit_rate/{where}/k{k}" in metrics
    # a mixture fitted to Gaussian latents is as precise as held-out latents at scale 1
    # (Wilson halfwidths of 300 and 100 vectors), less precise wider, recalls less narrower
    assert metrics["precision/gmm/b1"] >= metrics["precision_lo/heldout"] - 0.1
    assert metrics["precision/gmm/b2"] < metrics["precision/gmm/b1"]
    assert metrics["recall/gmm/b0.5"] < metrics["recall/gmm/b1"]
    for path in (
        "hits/box_vs_knn_gmm.png",
        "hits/knn_scores.csv",
        "gmm/bic.csv",
        "hits/heatmap_gmm.png",
    ):
        assert _download(run.info.run_id, path, tmp_path).stat().st_size > 0, path
    with open(_download(run.info.run_id, "hits/knn_scores.csv", tmp_path / "k")) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sampler"] for r in rows] == ["gmm", "gmm", "gmm", "heldout"]
    assert float(rows[1]["recall"]) == metrics["recall/gmm/b1"]


def test_gmm_on_too_few_latents_is_a_clear_error(tracking_uri, tmp_path, capsys):
    latents = np.random.default_rng(3).standard_normal((40, 4)).astype(np.float32)
    run_id = log_synthetic_train_run(latents, 12, tmp_path / "few")
    line = cli_error(cli, ["--train-run", run_id, "--sampler", "gmm", "--n-decoded", "0"], capsys)
    assert "sampler=gmm needs at least 20 training latents" in line and "has 12" in line
    line = cli_error(cli, ["--train-run", run_id, "--sampler", "mvn", "--n-decoded", "0"], capsys)
    assert "the verdict (" in line and "has 12" in line and "-P verdict=none" in line
