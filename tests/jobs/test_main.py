"""`mlflow run . -e main` end to end on a tiny configuration: the whole study as one tree."""

from __future__ import annotations

import re
import time

import mlflow
import pytest
from conftest import assert_user_error, mlflow_run

from aelatent.jobs import search
from aelatent.jobs.main import for_train_run, parse_args, run_search

pytestmark = pytest.mark.e2e

TINY_MAIN = {
    "epochs": "1",
    "image_size": "32",
    "seed": "5",
    "n_samples": "2000",
    "n_trials": "2",
}
PARENT_TAG = "mlflow.parentRunId"


def _children(parent_id: str, experiment_id: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'",
        output_format="list",
    )


def _assert_search_tree(search: mlflow.entities.Run, parent_id: str, n_trials: int) -> None:
    """main -> search -> trials: the search run under the main run, its trials under it."""
    assert search.info.status == "FINISHED"
    assert search.data.tags[PARENT_TAG] == parent_id
    assert search.data.tags["entry_point"] == "search"
    assert search.data.params["n_trials"] == str(n_trials)
    trials = _children(search.info.run_id, search.info.experiment_id)
    assert len(trials) == n_trials
    for trial in trials:
        assert trial.info.status == "FINISHED"
        assert trial.data.tags[PARENT_TAG] == search.info.run_id
        assert trial.data.tags["mlflow.runName"] == f"trial {trial.data.tags['trial']}"
        assert "objective" in trial.data.metrics


def test_search_runs_in_process_as_a_nested_run(
    tiny_train_run, tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    argv = [
        "--train-run",
        tiny_train_run,
        "--n-trials",
        "2",
        "--n-samples",
        "500",
        "--storage",
        f"sqlite:///{tmp_path / 'nested.db'}",
    ]
    with mlflow.start_run(run_name="main study (test)") as parent:
        search_id = run_search(search.parse_args(argv))
        assert mlflow.active_run().info.run_id == parent.info.run_id  # the parent is active again
    _assert_search_tree(mlflow.get_run(search_id), parent.info.run_id, n_trials=2)
    assert [r.info.run_id for r in _children(parent.info.run_id, parent.info.experiment_id)] == [
        search_id
    ]


def test_main_builds_every_request_once_and_points_them_at_train_runs():
    """main's parameters become the jobs' own requests (validated by the jobs' parsers);
    evaluate and search are pointed at a train run without re-parsing anything."""
    request = parse_args(
        [
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--seed",
            "7",
            "--n-samples",
            "3000",
            "--n-trials",
            "4",
        ]
    )
    assert set(request.train) == {"I", "II"}
    assert all(
        t.seed == 7 and t.case.training.epochs == 2 and t.case.image_size == 32
        for t in request.train.values()
    )
    assert request.evaluate.n_samples == 3000 and request.evaluate.train_run is None
    assert request.search.n_trials == 4 and request.search.n_samples == 20_000
    pointed = for_train_run(request.evaluate, "abc123")
    assert pointed.train_run == "abc123" and pointed.raw["train_run"] == "abc123"
    assert for_train_run(request.search, "abc123").train_run == "abc123"
    assert request.evaluate.train_run is None  # the template is left as it was


def test_main_runs_the_whole_study(tracking_uri, tmp_path):
    out = tmp_path / "report"
    started = time.perf_counter()
    result = mlflow_run("main", {**TINY_MAIN, "output": str(out)}, tracking_uri, timeout=900)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.output[-6000:]
    print(f"tiny main took {seconds:.0f} s")

    assert f"report: {out / 'report.html'}" in result.stdout
    assert "mlflow ui --backend-store-uri" in result.stdout
    parent_id = re.search(r"parent run (\w+)", result.stdout).group(1)
    parent = mlflow.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["entry_point"] == "main"
    assert parent.data.tags["dataset"] == "orl"
    assert parent.data.metrics["seconds/total"] > 0

    children = _children(parent_id, parent.info.experiment_id)
    by_kind: dict[str, list] = {}
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags
        by_kind.setdefault(child.data.tags["entry_point"], []).append(child)
    assert sorted(by_kind) == ["evaluate", "report", "search", "train"]
    trains = {r.data.tags["case"]: r for r in by_kind["train"]}
    assert sorted(trains) == ["I", "II"]
    for case, run in trains.items():
        assert run.data.tags["mlflow.runName"] == f"train case {case}"
        assert run.data.tags["dataset"] == "orl"
        assert (
            run.data.params["training.epochs"] == "1" and run.data.params["data.image_size"] == "32"
        )
    for kind in ("evaluate", "search"):
        runs = by_kind[kind]
        assert sorted(r.data.tags["case"] for r in runs) == ["I", "II"], kind
        for run in runs:
            case = run.data.tags["case"]
            assert run.data.tags["train_run"] == trains[case].info.run_id
            assert run.data.tags["mlflow.runName"].startswith(f"{kind} case {case}")
    evaluate_metrics = by_kind["evaluate"][0].data.metrics
    assert {"uniform", "gaussian", "mvn"} <= {
        name.split("/")[1] for name in evaluate_metrics if name.startswith("hit_rate/")
    }
    for run in by_kind["search"]:
        # the tiny networks' latents sit off the origin: a best b, or the reason there is none
        assert ("best_b_lo" in run.data.metrics) != ("no_best_b" in run.data.tags)
        # main's n_samples is evaluate's; the search keeps its own per-trial default
        assert run.data.params["n_samples"] == "20000"
        _assert_search_tree(run, parent_id, n_trials=2)

    html = (out / "report.html").read_text()
    assert "Not run" not in html
    for case in ("I", "II"):
        assert f"hit_rate_{case}_uniform.csv" in html and f"search_{case}.csv" in html


def test_bad_parameter_fails_before_training(tracking_uri):
    started = time.perf_counter()
    result = mlflow_run("main", {"n_trials": "0"}, tracking_uri)
    assert_user_error(result, "n_trials")
    assert time.perf_counter() - started < 60
