"""The search entry point: parent and child runs, resume, two workers at once, bad input.

`mlflow run . -e search` imports no TensorFlow, so each run costs a few seconds; the trials
are cheap (n_samples is small), so the tests are dominated by process start-up. Two train
runs: synthetic Gaussian latents around the origin (uniform vectors score, there is a best
b) and the session's tiny network, whose latents sit off the origin (no uniform b scores).
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from conftest import (
    assert_user_error,
    cli_error,
    find_runs,
    log_synthetic_train_run,
    mlflow_run,
)

from aelatent.core.knn_objective import GRID_POINTS as KNN_GRID_POINTS
from aelatent.core.knn_objective import REFINE_POINTS
from aelatent.jobs.search import NO_BEST_B_TAG, cli
from aelatent.jobs.search.request import parse_args
from aelatent.jobs.search.study import (
    TrialSeededSampler,
    default_storage_url,
    default_study_name,
)

SMALL = {"n_samples": "2000", "seed": "1"}


@pytest.fixture(scope="module")
def gaussian_train_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Latents N(0, 0.5^2) in 16 dimensions, 400 train and 100 validation rows, no model."""
    latents = np.random.default_rng(5).normal(0.0, 0.5, (500, 16)).astype(np.float32)
    return log_synthetic_train_run(latents, 400, tmp_path_factory.mktemp("gaussian_train"))


def newest_search(train_run: str) -> mlflow.entities.Run:
    return find_runs(f"tags.entry_point = 'search' and tags.train_run = '{train_run}'")[0]


def children(parent: mlflow.entities.Run) -> list[mlflow.entities.Run]:
    return find_runs(f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def load_study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def check_parent_and_children(
    parent: mlflow.entities.Run, n_trials: int, *, scores: bool = True
) -> None:
    """The parent's summary and its trials; ``scores``: whether some b has objective > 0."""
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mlflow.runName"].startswith("search case ")
    metrics = parent.data.metrics
    best = ("best_b", "best_value", "best_value_se", "best_value_sweep", "best_b_lo", "best_b_hi")
    for key in ("b_theory", "n_trials_study", *(best if scores else ())):
        assert key in metrics, key
    if scores:
        assert metrics["best_b_lo"] <= metrics["best_b_sweep"] <= metrics["best_b_hi"]
        assert metrics["best_value_sweep"] >= metrics["best_value"] - 1e-12  # exact >= Optuna
        assert metrics["best_b_gap"] == pytest.approx(metrics["best_b"] - metrics["best_b_sweep"])
        assert metrics["best_b_in_interval"] == float(  # Optuna against the draw's plateau
            metrics["best_b_mc_lo"] <= metrics["best_b"] <= metrics["best_b_mc_hi"]
        )
        # and against the interval with the latents' error, which holds the plateau: inside
        # the plateau is inside it, outside it is outside the plateau too
        assert metrics["best_b_in_ci"] in (0.0, 1.0)
        assert metrics["best_b_in_ci"] >= metrics["best_b_in_interval"]
        if not metrics["best_b_in_ci"]:
            assert not metrics["best_b_lo"] <= metrics["best_b"] <= metrics["best_b_hi"]
        assert metrics["best_b_lo"] <= metrics["best_b_mc_lo"] <= metrics["best_b_mc_hi"]
        assert metrics["best_b_mc_hi"] <= metrics["best_b_hi"]
    else:  # no best b to name, and the run says why
        assert not {key for key in metrics if key.startswith("best_")}, metrics
        assert "objective is 0 for every b" in parent.data.tags[NO_BEST_B_TAG]
    kids = children(parent)
    assert len(kids) == n_trials
    assert all(k.info.status == "FINISHED" for k in kids)
    assert all("b" in k.data.params and "objective" in k.data.metrics for k in kids)
    assert all({"hit_rate", "radius_agreement"} <= set(k.data.metrics) for k in kids)
    for kid in kids:
        assert float(kid.data.params["b"]) == pytest.approx(kid.data.metrics["b"])
        assert kid.data.metrics["objective"] <= min(
            kid.data.metrics["hit_rate"], kid.data.metrics["radius_agreement"]
        )
    # radius theory's b is trial 0 of every study here: the best is at least as good
    if scores:
        assert metrics["best_value"] >= metrics["objective_at_b_theory"] - 1e-12


@pytest.mark.e2e
def test_search_end_to_end_then_resume(gaussian_train_run, tracking_uri, tmp_path):
    params = {"train_run": gaussian_train_run, "n_trials": "4", **SMALL}
    first = mlflow_run("search", params, tracking_uri)
    assert first.returncode == 0, first.output[-4000:]
    assert "best b = " in first.output and "exact optimum" in first.output
    assert "\r" not in first.output and "aelatent search: 3/3 trials in" in first.output
    parent = newest_search(gaussian_train_run)
    check_parent_and_children(parent, 4)
    assert parent.data.tags["case"] == "synthetic"
    assert parent.data.params["objective"] == "typical"
    metrics = parent.data.metrics
    kids = children(parent)
    best_kid = max(kids, key=lambda k: (k.data.metrics["objective"], -int(k.data.tags["trial"])))
    assert metrics["best_value"] == pytest.approx(best_kid.data.metrics["objective"])
    assert metrics["best_b"] == pytest.approx(float(best_kid.data.params["b"]))
    assert 0.05 <= metrics["best_b"] <= 12 and 0 <= metrics["best_value"] <= 1
    assert sorted(int(k.data.tags["trial"]) for k in kids) == [0, 1, 2, 3]

    # the default storage is an SQLite file beside the MLflow store
    storage = default_storage_url(tracking_uri)
    assert storage == f"sqlite:///{Path(tracking_uri[len('sqlite:///') :]).parent / 'optuna.db'}"
    name = default_study_name(gaussian_train_run, 2.0, "single")
    assert name.endswith("-k2-typical")
    assert parent.data.tags["study_name"] == name
    # trial 0 is radius theory's b, enqueued when the study was new
    study = load_study(storage, name)
    assert study.trials[0].params["b"] == pytest.approx(metrics["b_theory"])
    assert study.trials[0].user_attrs["mlflow_run_id"] in {k.info.run_id for k in kids}

    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    for image in ("optimization_history.png", "slice_b.png", "objective_curve.png"):
        assert (local / image).stat().st_size > 1000, image
    with (local / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    tables = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "tables")}
    assert tables == {"tables/trials.json", "tables/windows.json"}
    with (local / "objective_curve.csv").open() as handle:
        curve = list(csv.DictReader(handle))
    assert max(float(r["objective"]) for r in curve) <= metrics["best_value_sweep"] + 1e-12
    assert all(float(r["objective_se"]) >= 0 for r in curve)

    # the same command again continues the study: 4 more trials, numbered 4..7
    second = mlflow_run("search", params, tracking_uri)
    assert second.returncode == 0, second.output[-4000:]
    resumed = newest_search(gaussian_train_run)
    assert resumed.info.run_id != parent.info.run_id
    assert resumed.data.tags["resumed"] == "true"
    check_parent_and_children(resumed, 4)
    assert sorted(int(k.data.tags["trial"]) for k in children(resumed)) == [4, 5, 6, 7]
    study = load_study(storage, name)
    assert [t.number for t in study.trials] == list(range(8))
    assert resumed.data.metrics["n_trials_study"] == 8
    assert resumed.data.metrics["best_value"] >= metrics["best_value"]


def test_two_workers_at_once_share_one_study(tiny_train_run, tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    n = 30  # long enough that the two workers overlap despite uneven start-up
    params = {
        "train_run": tiny_train_run,
        "n_trials": str(n),
        "storage": storage,
        "study_name": "two-workers",
        **SMALL,
    }
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: mlflow_run("search", params, tracking_uri), range(2)))
    for result in results:
        assert result.returncode == 0, result.output[-4000:]
    assert "database is locked" not in results[0].output + results[1].output

    trials = load_study(storage, "two-workers").trials
    assert len(trials) == 2 * n, [
        (t.number, t._trial_id, t.state.name, t.params, t.user_attrs.get("mlflow_parent_run_id"))
        for t in trials
    ]
    assert sorted(t.number for t in trials) == list(range(2 * n))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    workers: dict[str, list] = {}
    for t in trials:
        workers.setdefault(t.user_attrs["mlflow_parent_run_id"], []).append(t)
    assert sorted(len(v) for v in workers.values()) == [n, n]
    # the two workers ran at the same time, and proposed different b values
    spans = [
        (min(t.datetime_start for t in v), max(t.datetime_complete for t in v))
        for v in workers.values()
    ]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    assert len({round(t.params["b"], 12) for t in trials}) == 2 * n
    for parent_id, own in workers.items():
        parent = mlflow.get_run(parent_id)
        check_parent_and_children(parent, n, scores=False)
        assert {k.data.tags["trial"] for k in children(parent)} == {str(t.number) for t in own}


def test_multi_objective_logs_the_pareto_front(tiny_train_run, tracking_uri, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'multi.db'}"
    cli(
        [
            "--train-run",
            tiny_train_run,
            "--mode",
            "multi",
            "--n-trials",
            "5",
            "--storage",
            storage,
            "--n-samples",
            "1000",
        ]
    )
    parent = newest_search(tiny_train_run)
    check_parent_and_children(parent, 5, scores=False)
    assert parent.data.tags["mode"] == "multi"
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    assert (local / "pareto_front.png").stat().st_size > 1000
    with (local / "pareto_front.csv").open() as handle:
        front = list(csv.DictReader(handle))
    study = load_study(storage, default_study_name(tiny_train_run, 2.0, "multi", "typical"))
    assert len(study.directions) == 2
    assert {int(r["number"]) for r in front} == {t.number for t in study.best_trials}


def test_knn_objective_searches_precision_and_recall(
    gaussian_train_run, tracking_uri, tmp_path, monkeypatch
):
    """objective=knn in process: F = harmonic mean of k-NN precision and recall per trial,
    the grid sweep's best with its interval, the box's log10 P(hit) beside it."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'knn.db'}"
    cli(
        [
            "--train-run",
            gaussian_train_run,
            "--objective",
            "knn",
            "--knn-n",
            "150",
            "--knn-k",
            "4",
            "--n-trials",
            "3",
            "--storage",
            storage,
            "--n-samples",
            "500",
        ]
    )
    parent = newest_search(gaussian_train_run)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["objective"] == "knn"
    assert (parent.data.params["knn_k"], parent.data.params["knn_n"]) == ("4", "150")
    metrics = parent.data.metrics
    assert metrics["best_b_lo"] <= metrics["best_b_sweep"] <= metrics["best_b_hi"]
    # N(0, 0.25) per component: the uniform of the same variance has b = 0.5 sqrt(3) = 0.87
    assert 0.3 < metrics["best_b_sweep"] < 2.5
    for name in ("best_b", "best_precision", "best_recall", "best_value_se"):
        assert name in metrics, name
    f = (
        2
        * metrics["best_precision"]
        * metrics["best_recall"]
        / (metrics["best_precision"] + metrics["best_recall"])
    )
    assert metrics["best_value"] <= f + 1e-12  # a mean of F over sets is at most F of means
    kids = children(parent)
    assert len(kids) == 3
    for kid in kids:
        assert {"objective", "objective_se", "precision", "recall", "log10_p_hit"} <= set(
            kid.data.metrics
        )
        assert (
            kid.data.metrics["objective"]
            <= max(kid.data.metrics["precision"], kid.data.metrics["recall"]) + 1e-12
        )
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    with (local / "objective_curve.csv").open() as handle:
        curve = list(csv.DictReader(handle))
    # the 48-point grid and the finer one inside its bracket of the optimum
    assert len(curve) == KNN_GRID_POINTS + REFINE_POINTS
    assert {"precision", "recall", "objective_se"} <= set(curve[0])
    assert max(float(r["objective"]) for r in curve) == pytest.approx(metrics["best_value_sweep"])
    with (local / "trials.csv").open() as handle:
        assert {"precision", "recall"} <= set(next(csv.DictReader(handle)))
    name = default_study_name(gaussian_train_run, 2.0, "single", "knn")
    assert name.endswith("-k2-knn") and parent.data.tags["study_name"] == name
    assert load_study(storage, name).user_attrs["knn_n"] == 150


def test_c2st_objective_searches_the_scale_out_of_sample(
    gaussian_train_run, tracking_uri, tmp_path, monkeypatch, capsys
):
    """objective=c2st in process: each trial is the quadratic C2ST of mvn vectors, fitted on
    a random half of the latents, against the other half; the sweep's best with its bracket
    leads the console line, Optuna's best trial beside it."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'c2st.db'}"
    base = ["--train-run", gaussian_train_run, "--objective", "c2st", "--sampler", "mvn"]
    cli([*base, "--n-trials", "3", "--storage", storage, "--b-min", "0.4", "--b-max", "3"])
    parent = newest_search(gaussian_train_run)
    assert parent.info.status == "FINISHED" and parent.data.params["objective"] == "c2st"
    metrics = parent.data.metrics
    assert metrics["best_scale_lo"] <= metrics["best_scale_sweep"] <= metrics["best_scale_hi"]
    # N(0, 0.25 I): the fitted mvn is the truth, up to its estimation error
    assert 0.6 < metrics["best_scale_sweep"] < 1.6
    assert {"best_accuracy", "best_auc", "objective_at_scale_1"} <= set(metrics)
    for kid in children(parent):
        assert {"objective", "objective_se", "accuracy", "auc"} <= set(kid.data.metrics)
        assert kid.data.metrics["objective"] <= 1.0
    err = capsys.readouterr().err
    best = f"best mvn scale = {metrics['best_scale_sweep']:.4g} [{metrics['best_scale_lo']:.4g}"
    assert best in err and "Optuna's best trial" in err
    study = load_study(
        storage, default_study_name(gaussian_train_run, 2.0, "single", "c2st", sampler="mvn")
    )
    assert study.user_attrs["splits"] == 3 and "C2ST" in study.user_attrs["objective"]


def test_generator_search_over_families_names_the_best_and_its_peers(
    gaussian_train_run, tracking_uri, tmp_path, monkeypatch, capsys
):
    """space=generators in process: a conditional study over families and settings, every
    trial a nested run with its family and score, pruned trials marked, the parent naming the
    best generator with the table of candidates as good as it and the best of each family.
    The latents are N(0, 0.25 I): a wide uniform box is told apart, mvn is not."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'generators.db'}"
    argv = ["--train-run", gaussian_train_run, "--space", "generators"]
    cli([*argv, "--families", "uniform,mvn", "--n-trials", "8", "--storage", storage])
    parent = newest_search(gaussian_train_run)
    assert parent.info.status == "FINISHED" and parent.data.params["space"] == "generators"
    assert parent.data.params["families"] == "uniform,mvn"
    metrics = parent.data.metrics
    assert 0 <= metrics["best_score"] <= 1 and metrics["n_as_good"] >= 1
    assert metrics["n_trials_complete"] + metrics["n_trials_pruned"] == 8
    # the winner against evaluate's mvn at scale 1, scored on the same splits
    assert 0 <= metrics["reference_score"] <= 1
    assert (
        metrics["winner_minus_reference_lo"]
        <= metrics["winner_minus_reference"]
        <= metrics["winner_minus_reference_hi"]
    )
    assert metrics["winner_minus_reference"] == pytest.approx(
        metrics["best_score"] - metrics["reference_score"]
    )
    assert parent.data.tags["best_generator"].startswith("mvn")
    for kid in children(parent):
        assert kid.data.params["family"] in ("uniform", "mvn")
        assert "score" in kid.data.metrics or kid.data.tags.get("pruned") == "true"
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    with (local / "best_per_family.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["family"] == "mvn" and float(rows[0]["score_lo"]) <= float(rows[0]["score"])
    err = capsys.readouterr().err
    assert "Best generator: mvn" in err and "no model, so no generator is logged" in err
    assert "Against mvn scale=1 shrinkage=0 (evaluate's): score" in err
    assert "Trial 0 finished" not in err  # Optuna's per-trial log lines stay quiet
    study = load_study(storage, parent.data.tags["study_name"])
    assert study.user_attrs["families"] == "uniform,mvn"


@pytest.mark.e2e
def test_generator_search_in_multi_mode_logs_the_pareto_front_and_serves_its_winner(
    tiny_train_run, tracking_uri, tmp_path
):
    """space=generators, mode=multi through `mlflow run` on the tiny network's latents: a
    two-objective study (fidelity, copying ratio) of its own name, no trial pruned (Optuna
    prunes one objective only), every trial on every split; the parent FINISHED with the
    front as a CSV (exactly Optuna's best_trials, each row's two values the trial's), its
    plot, its size as a metric and its trial numbers as a tag, and the winner one of the
    front's, logged and registered as the servable generator."""
    storage = f"sqlite:///{tmp_path / 'front.db'}"
    params = {
        "train_run": tiny_train_run,
        "space": "generators",
        "mode": "multi",
        "families": "uniform,mvn",
        "n_trials": "4",
        "storage": storage,
    }
    result = mlflow_run("search", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    parent = newest_search(tiny_train_run)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["mode"] == "multi" and parent.data.tags["mode"] == "multi"
    metrics, tags = parent.data.metrics, parent.data.tags
    assert metrics["n_trials_complete"] == 4 and metrics["n_trials_pruned"] == 0
    study = load_study(storage, tags["study_name"])
    assert tags["study_name"].endswith("-multi") and len(study.directions) == 2
    assert study.user_attrs["mode"] == "multi"
    front = {t.number: t for t in study.best_trials}
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    with (local / "pareto_front.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["trial"]) for r in rows} == set(front)
    assert metrics["n_pareto_front"] == len(front) >= 1
    assert tags["pareto_front"] == ",".join(r["trial"] for r in rows)
    for row in rows:
        values = front[int(row["trial"])].values
        assert [float(row["fidelity"]), float(row["copying_ratio"])] == pytest.approx(values)
    fidelities = [float(r["fidelity"]) for r in rows]
    ratios = [float(r["copying_ratio"]) for r in rows]
    assert fidelities == sorted(fidelities, reverse=True)  # along the front: a trade
    assert ratios == sorted(ratios)
    (winner,) = [r for r in rows if r["winner"] == "1"]
    assert int(winner["trial"]) == metrics["best_trial"]
    assert tags["best_generator"] == winner["candidate"]
    assert metrics["best_fidelity"] == pytest.approx(float(winner["fidelity"]))
    assert tags["winner_rule"].startswith("on the Pareto front")
    assert (local / "pareto_front.png").stat().st_size > 1000
    with (local / "generators.csv").open() as handle:
        on_front = {int(r["trial"]) for r in csv.DictReader(handle) if r["on_pareto_front"] == "1"}
    assert on_front == set(front)
    for kid in children(parent):
        assert kid.data.metrics["splits"] == 3 and "pruned" not in kid.data.tags
        assert {"fidelity", "copying_ratio", "score"} <= set(kid.data.metrics)
    model_uri = tags["registered_generator"]
    assert model_uri == "models:/aelatent-generator-case-I@best"
    version = mlflow.MlflowClient().get_model_version_by_alias("aelatent-generator-case-I", "best")
    assert version.run_id == parent.info.run_id
    assert version.tags["candidate"] == winner["candidate"]


@pytest.mark.parametrize("family", ["uniform", "mvn"])
def test_the_two_objectives_of_mode_multi_multiply_to_the_score(family):
    """mode=multi's objectives are the score's two factors, split by split: fidelity (the
    job's copy of the score's C2ST factor) times the copying ratio cut at 1 is the score,
    at widths with a ratio below 1 and above it (mvn at 0.9: fidelity 0.82, ratio 0.93)."""
    from aelatent.core.generator_space import Candidate, fit_candidate, split_score
    from aelatent.core.verdict import make_splits
    from aelatent.jobs.generator_search.study import fidelity

    latents = np.random.default_rng(3).normal(0.0, 0.5, (300, 8))
    split = make_splits(latents, 3, 0)[0]
    axis = "b" if family == "uniform" else "scale"
    for width in (0.3, 0.9, 1.2, 2.5):
        candidate = Candidate.of(
            family, {axis: width, **({"shrinkage": 0.1} if family == "mvn" else {})}
        )
        sampler = fit_candidate(candidate, split.fit, seed=0, estimate="auto")
        got = split_score(sampler, split, candidate.scale, 0)
        assert got.score == pytest.approx(fidelity(got) * min(1.0, got.copying_ratio), abs=1e-12)


def test_a_generator_study_of_one_objective_is_not_continued_in_multi_mode(
    gaussian_train_run, tracking_uri, tmp_path, capsys, monkeypatch
):
    """mode=multi under the name of a single-mode generator study: one line naming the
    study and the objectives, exit 2, the launcher's run (`mlflow run`'s, made here) FAILED
    with the reason, the study untouched."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'one.db'}"
    base = ["--train-run", gaussian_train_run, "--space", "generators", "--storage", storage]
    base += ["--families", "uniform,mvn", "--study-name", "one", "--n-trials", "2"]
    cli(base)
    before = [(t.number, t.state, t.params) for t in load_study(storage, "one").trials]
    launcher = mlflow.MlflowClient().create_run("0").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launcher)
    err = cli_error(cli, [*base, "--mode", "multi"], capsys)
    assert "study_name='one' exists with 1 objective(s); mode=multi needs 2" in err, err
    assert [(t.number, t.state, t.params) for t in load_study(storage, "one").trials] == before
    failed = mlflow.get_run(launcher)
    assert failed.info.status == "FAILED" and "mode=multi needs 2" in failed.data.tags["error"]


def test_knn_searches_the_scale_of_a_fitted_mixture(tiny_train_run, tracking_uri, tmp_path):
    """sampler=gmm through `mlflow run`: the axis is the mixture's width factor, named
    `scale` in Optuna, in the trials and in the parent's metrics; trial 0 is the fitted
    width; the winner is logged as the gmm generator."""
    storage = f"sqlite:///{tmp_path / 'gmm.db'}"
    params = {
        "train_run": tiny_train_run,
        "sampler": "gmm",
        "objective": "knn",
        "knn_n": "150",
        "n_trials": "3",
        "storage": storage,
        "b_min": "0.2",
        "b_max": "5",
    }
    result = mlflow_run("search", params, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    assert "best gmm scale = " in result.output and "fitted width scale = 1" in result.output
    parent = newest_search(tiny_train_run)
    assert parent.data.params["sampler"] == "gmm"
    metrics = parent.data.metrics
    assert metrics["best_scale_lo"] <= metrics["best_scale_sweep"] <= metrics["best_scale_hi"]
    assert {"best_scale", "best_scale_in_interval", "objective_at_scale_1"} <= set(metrics)
    assert not {"best_b", "b_theory", "best_log10_p_hit"} & set(metrics)
    assert metrics["best_value"] > 0
    kids = children(parent)
    assert len(kids) == 3
    for kid in kids:
        assert float(kid.data.params["scale"]) == pytest.approx(kid.data.metrics["scale"])
        assert {"precision", "recall", "objective"} <= set(kid.data.metrics)
        assert "log10_p_hit" not in kid.data.metrics and "b" not in kid.data.params
    name = default_study_name(tiny_train_run, 2.0, "single", "knn", sampler="gmm")
    assert name.startswith("gmm-scale-") and parent.data.tags["study_name"] == name
    first = load_study(storage, name).trials[0]
    assert first.params == {"scale": 1.0} and first.user_attrs["source"] == "fitted width"
    assert parent.data.tags["generator"].startswith(f"gmm scale={metrics['best_scale']:g}")
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    assert (local / "slice_scale.png").stat().st_size > 1000
    with (local / "trials.csv").open() as handle:
        assert "scale" in next(csv.DictReader(handle))


def test_a_scale_search_in_multi_mode_names_its_axis_everywhere(
    gaussian_train_run, tracking_uri, tmp_path, monkeypatch, capsys
):
    """sampler=mvn in process, mode=multi, over a range that stops below the fitted width:
    the Pareto front is over scale, the interval reaches b_max and says so; the study can
    be continued with another k (the box's k does not enter a scale search) but not asked
    for another sampler under the same name."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'mvn.db'}"
    base = ["--train-run", gaussian_train_run, "--storage", storage, "--sampler", "mvn"]
    base += ["--objective", "knn", "--knn-n", "150", "--b-min", "0.2", "--b-max", "0.5"]
    cli([*base, "--mode", "multi", "--n-trials", "3", "--study-name", "mvn-multi"])
    parent = newest_search(gaussian_train_run)
    assert parent.data.tags["mlflow.runName"].startswith("search mvn case ")
    assert parent.data.params["knn_sweep"] == "48+12"
    assert parent.data.metrics["best_scale_hi"] == pytest.approx(0.5)
    assert "reaches b_max=0.5" in parent.data.tags["best_at_range_end"]
    # the fitted width, outside the range, is still logged as the reference: here it beats
    # every scale searched, as the range-end tag warns
    metrics = parent.data.metrics
    assert metrics["objective_at_scale_1"] > metrics["best_value_sweep"]
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="search", dst_path=str(tmp_path)
        )
    )
    with (local / "pareto_front.csv").open() as handle:
        front = list(csv.DictReader(handle))
    assert front and list(front[0])[:4] == ["number", "scale", "precision", "recall"]
    assert all(0.2 <= float(row["scale"]) <= 0.5 for row in front)

    cli([*base, "--n-trials", "1", "--study-name", "mvn-single", "--k", "3"])
    cli([*base, "--n-trials", "1", "--study-name", "mvn-single", "--k", "1"])  # k unused
    assert len(load_study(storage, "mvn-single").trials) == 2
    other = [a if a != "mvn" else "gaussian" for a in base]
    err = cli_error(cli, [*other, "--n-trials", "1", "--study-name", "mvn-single"], capsys)
    assert "study_name='mvn-single' was made for" in err and "mvn: harmonic mean" in err


def test_the_range_defaults_follow_the_axis():
    assert (parse_args([]).b_min, parse_args([]).b_max) == (0.05, 12.0)
    scale = parse_args(["--sampler", "gmm", "--objective", "knn"])
    assert (scale.axis, scale.b_min, scale.b_max) == ("scale", 0.25, 4.0)
    assert parse_args(["--sampler", "mvn", "--objective", "knn", "--b-max", "2"]).b_max == 2.0


def test_same_seed_same_trials_and_workers_do_not_repeat_each_other():
    def proposals(seed: int, first_number: int = 0) -> list[float]:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(seed))
        distribution = optuna.distributions.FloatDistribution(0.05, 12, log=True)
        for _ in range(first_number):  # trials another worker already made
            study.add_trial(
                optuna.trial.create_trial(
                    params={"b": 6.0}, distributions={"b": distribution}, value=0.0
                )
            )
        study.optimize(lambda t: -abs(t.suggest_float("b", 0.05, 12, log=True) - 1.5), n_trials=14)
        return [t.params["b"] for t in study.trials[first_number:]]

    first = proposals(0)
    assert proposals(0) == first  # reproducible, through the random and the TPE phase
    assert proposals(1)[:3] != first[:3]
    # a worker joining a study proposes from its trials' own numbers, not trial 0's draws
    assert proposals(0, first_number=3)[:3] != first[:3]


def test_bad_input_fails_the_mlflow_run(tiny_train_run, tracking_uri):
    result = mlflow_run(
        "search", {"train_run": tiny_train_run, "b_min": "3", "b_max": "1"}, tracking_uri
    )
    assert_user_error(result, "b_min=3", "b_max=1")
    failed = find_runs("attributes.status = 'FAILED' and tags.entry_point = 'search'")[0]
    assert "b_min=3" in failed.data.tags["error"]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--b-min", "2", "--b-max", "2"], ["b_min=2 must be smaller than b_max=2"]),
        (["--b-min", "0"], ["b_min=0", "> 0"]),
        (["--b-min", "-1"], ["b_min=-1", "> 0"]),
        (["--n-trials", "0"], ["n_trials=0", ">= 1"]),
        (["--n-trials", "many"], ["n_trials='many'", "integer"]),
        (["--k", "0"], ["k='0'", "> 0"]),
        (["--mode", "pareto"], ["mode='pareto'", "single, multi"]),
        (["--n-samples", "5"], ["n_samples=5", ">= 100"]),
        (["--storage", "optuna.db"], ["storage='optuna.db' is not a storage URL"]),
        (["--objective", "best"], ["objective='best'", "typical, band, knn"]),
        (["--knn-k", "0"], ["knn_k=0", ">= 1"]),
        (["--knn-k", "two"], ["knn_k='two'", "integer"]),
        (["--knn-n", "0"], ["knn_n=0", ">= 1"]),
        (["--knn-n", "10000000"], ["knn_n=10000000", "100000"]),
        (["--sampler", "vae"], ["sampler='vae'", "uniform, gaussian, mvn, gmm"]),
        (["--sampler", "gmm"], ["sampler=gmm needs objective=knn", "objective=typical"]),
        (["--objective", "c2st", "--mode", "multi"], ["mode=multi", "objective=c2st has one"]),
        (["--space", "flows"], ["space='flows'", "axis, generators"]),
        (["--space", "generators", "--families", "gmm,vae"], ["unknown family 'vae'"]),
        (["--space", "generators", "--families", ","], ["families=','", "is empty"]),
        (["--radius-band", "5"], ["radius_band='5'", "0 <= lo < hi <= 100"]),
        (["--radius-band", "99,1"], ["radius_band='99,1'", "0 <= lo < hi <= 100"]),
        (["--radius-band", "0,101"], ["radius_band='0,101'", "0 <= lo < hi <= 100"]),
        (["--radius-band", "1,nan"], ["radius_band"]),
        (["--train-run", "0123abc"], ["run '0123abc' does not exist"]),
    ],
)
def test_bad_input_is_one_line(argv, fragments, tracking_uri, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    err = cli_error(cli, argv, capsys)
    assert err.startswith("aelatent search: error: ")
    for fragment in fragments:
        assert fragment in err


def test_unreachable_or_foreign_storage_is_one_line(
    tiny_train_run, tracking_uri, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    cases = [
        (f"sqlite:///{tmp_path}/no/such/folder/optuna.db", "unable to open database file"),
        ("postgresql://user:secret@127.0.0.1:1/optuna", "user:***@127.0.0.1"),
        ("nosuchdialect://host/db", "cannot be opened"),
        (tracking_uri, "another application's database"),  # the MLflow store itself
    ]
    for storage, fragment in cases:
        err = cli_error(cli, ["--train-run", tiny_train_run, "--storage", storage], capsys)
        assert err.startswith("aelatent search: error: storage=") and fragment in err, err
        assert "secret" not in err


def test_a_conflicting_study_is_reported_and_kept(
    tiny_train_run, tracking_uri, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    storage = f"sqlite:///{tmp_path / 'kept.db'}"
    base = ["--train-run", tiny_train_run, "--storage", storage, "--study-name", "kept"]
    cli([*base, "--n-trials", "2", "--n-samples", "500"])
    before = [(t.number, t.params["b"]) for t in load_study(storage, "kept").trials]
    for extra, fragment in (
        (["--n-samples", "600"], "n_samples=500 (now 600)"),
        (["--n-samples", "500", "--k", "3"], "k=2 (now 3)"),
        (["--n-samples", "500", "--mode", "multi"], "mode=multi needs 2"),
        (["--n-samples", "500", "--objective", "band"], "objective='uniform: box hit at k x"),
        (["--n-samples", "500", "--radius-band", "5,95"], "radius_band='1,99' (now '5,95')"),
    ):
        err = cli_error(cli, [*base, "--n-trials", "2", *extra], capsys)
        assert "study_name='kept'" in err and fragment in err, err
    assert [(t.number, t.params["b"]) for t in load_study(storage, "kept").trials] == before
