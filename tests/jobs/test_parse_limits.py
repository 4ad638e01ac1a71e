"""Issue 18: values that used to fail late (or silently) are refused when parsed.

Every check runs the entry point's command-line function in-process (one line, exit 2, no
traceback); one goes through `mlflow run` to see the run marked FAILED with the reason. The
divergence test trains a tiny network for one epoch; the b range test runs a small search.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from conftest import (
    assert_user_error,
    cli_error,
    find_runs,
    log_synthetic_train_run,
    mlflow_run,
    newest_run,
)

from aelatent import limits
from aelatent.config import EXPERIMENTS_DIR, load_case
from aelatent.core.objective import RadiusBand, UniformSearchObjective
from aelatent.jobs import evaluate, search
from aelatent.jobs.search import explain_zero
from aelatent.jobs.search.request import SearchRequest
from aelatent.schema import grid_metric

GIB = 2**30


def case_yaml(folder: Path, name: str, **changes: object) -> str:
    """Case I's YAML with ``section.key`` (dotted) values replaced, written to ``folder``."""
    raw = yaml.safe_load((EXPERIMENTS_DIR / "case_I.yaml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        section = raw
        for part in path:
            section = section[part]
        section[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture(autouse=True)
def _no_mlflow_run_id(monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


@pytest.fixture(scope="module")
def synthetic_train_run(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Latents N(0, 0.5^2) in 16 dimensions (400 train, 100 validation rows), no model."""
    latents = np.random.default_rng(7).normal(0.0, 0.5, (500, 16)).astype(np.float32)
    return log_synthetic_train_run(latents, 400, tmp_path_factory.mktemp("limits_train"))


# (entry point, argv, fragments of the one error line); items 6, 7, 9, 10 and 13 of issue 18
PARSE_CASES = [
    # 6: values whose metric names collide
    ("evaluate", ["--b", "2,2.000001"], ["b='2,2.000001'", "2 and 2.000001", "print as 2"]),
    ("evaluate", ["--k", "1.5,1.5000001"], ["k='1.5,1.5000001'", "1.5 and 1.5000001"]),
    ("evaluate", ["--scale", "0.5,1,0.50000001"], ["scale=", "0.5 and 0.50000001"]),
    # 7: an exponent with '+' in the metric name
    ("evaluate", ["--b", "1,1e6"], ["b='1,1e6'", "1e6 is out of range", "at most 100000", "'+'"]),
    ("evaluate", ["--k", "2000000"], ["k='2000000'", "at most 100000"]),
    ("evaluate", ["--scale", "1e7"], ["scale='1e7'", "at most 100000"]),
    ("search", ["--k", "1e6"], ["k='1e6'", "at most 100000"]),
    ("search", ["--b-max", "1e6"], ["b_max='1e6'", "at most 100000"]),
    # 13: b_max far beyond the bound (used to overflow in the plots after the trials)
    ("search", ["--b-max", "1e308"], ["b_max='1e308'", "at most 100000"]),
    # 16: b_min so small that a grid over the range steps over the matching band
    ("search", ["--b-min", "1e-300"], ["b_min=1e-300", "at least 1e-06"]),
    # 9: 32-bit seeds
    ("train", ["--seed", "4294967296"], ["seed=4294967296", ">= 0 and <= 4294967295", "32-bit"]),
    ("evaluate", ["--seed", "4294967296"], ["seed=4294967296", ">= 0 and <= 4294967295"]),
    ("search", ["--seed", "4294967296"], ["seed=4294967296", ">= 0 and <= 4294967295"]),
    ("main", ["--seed", "4294967296"], ["seed=4294967296", ">= 0 and <= 4294967295"]),
    # 10: sizes with documented upper bounds
    ("train", ["--image-size", "8192"], ["image_size=8192", ">= 1 and <= 1024"]),
    ("evaluate", ["--n-decoded", "10000000"], ["n_decoded=10000000", ">= 0 and <= 64"]),
    ("evaluate", ["--n-samples", "1000000001"], ["n_samples=1000000001", "1000000000"]),
    ("search", ["--n-samples", "10000000000"], ["n_samples=10000000000", ">= 100 and <= 10000000"]),
    # main's n_samples is evaluate's (the search keeps its own): evaluate's bound applies
    ("main", ["--n-samples", "1000000001"], ["n_samples=1000000001", "1000000000"]),
    # issue 28, item 13: tiny values overflowed (grid_spacing, a traceback) or gave NaN metrics
    ("evaluate", ["--grid-spacing", "1e-320"], ["grid_spacing='1e-320'", "from 1e-06 to 100000"]),
    ("evaluate", ["--grid-spacing", "0"], ["grid_spacing='0'", "from 1e-06 to 100000"]),
    ("evaluate", ["--grid-spacing", "1e6"], ["grid_spacing='1e6'", "from 1e-06 to 100000"]),
    ("evaluate", ["--grid-spacing", "0.5,1"], ["grid_spacing='0.5,1'", "expected one number"]),
    ("evaluate", ["--b", "1,1e-300"], ["b='1,1e-300'", "1e-300 is out of range", "at least 1e-06"]),
    ("evaluate", ["--scale", "1e-300"], ["scale='1e-300'", "at least 1e-06", "at most 100000"]),
    ("evaluate", ["--k", "2,1e-20"], ["k='2,1e-20'", "1e-20 is out of range", "at least 1e-06"]),
    ("search", ["--k", "1e-20"], ["k='1e-20' is out of range", "k >= 1e-06"]),
    (
        "evaluate",
        ["--log-generator", "uniform:1e-300"],
        ["log_generator='uniform:1e-300'", "1e-06"],
    ),
]


@pytest.mark.parametrize(
    ("entry_point", "argv", "fragments"),
    PARSE_CASES,
    ids=[f"{c[0]}:{' '.join(c[1])}" for c in PARSE_CASES],
)
def test_out_of_range_values_are_refused_when_parsed(
    entry_point, argv, fragments, tracking_uri, capsys, monkeypatch
):
    # the check comes before any work: no train run is looked up, no image read
    for module in ("aelatent.io.train_run", "aelatent.jobs.search.job"):
        monkeypatch.setattr(f"{module}.resolve_train_run", _no_work)
    monkeypatch.setattr("aelatent.jobs.train.load_training_images", _no_work)
    cli = importlib.import_module(f"aelatent.jobs.{entry_point}").cli
    line = cli_error(cli, argv, capsys)
    assert line.startswith(f"aelatent {entry_point}: error: ")
    for fragment in fragments:
        assert fragment in line, line


def _no_work(*args, **kwargs):
    raise AssertionError("the check must come before any work")


def test_values_at_the_bounds_are_accepted():
    request = evaluate.parse_args(
        [
            "--b",
            "0.5,100000",
            "--k",
            "100000",
            "--scale",
            "99999.4",
            "--seed",
            str(2**32 - 1),
            "--n-decoded",
            "64",
            "--n-samples",
            "1000000000",
        ]
    )
    assert request.b == (0.5, 1e5) and request.k == (1e5,) and request.seed == 2**32 - 1
    assert all(
        "+" not in grid_metric("hit_rate", "uniform", b, k) for b in request.b for k in request.k
    )
    small = evaluate.parse_args(
        ["--b", "1e-6", "--k", "1e-6", "--scale", "1e-6", "--grid-spacing", "1e-6"]
    )
    assert (small.b, small.k, small.scale, small.grid_spacing) == ((1e-6,), (1e-6,), (1e-6,), 1e-6)
    assert evaluate.parse_args(["--grid-spacing", "100000"]).grid_spacing == 1e5
    assert evaluate.parse_args(["--b", "2,2,2.0"]).b == (2.0,)  # equal values are no clash
    assert evaluate.parse_args(["--b", "2,2.00001"]).b == (2.0, 2.00001)  # 6 digits apart
    found = search.parse_args(
        [
            "--b-min",
            "1e-6",
            "--b-max",
            "1e5",
            "--k",
            "1e5",
            "--n-samples",
            "10000000",
            "--seed",
            str(2**32 - 1),
        ]
    )
    assert (found.b_min, found.b_max, found.n_samples) == (1e-6, 1e5, 10_000_000)


def test_evaluate_at_its_lower_bounds_gives_finite_metrics_and_no_warning(synthetic_train_run):
    """Issue 28, item 13: b, k, scale and grid_spacing at 1e-6 run to the end with finite
    metrics and no RuntimeWarning (the radius plot drew a NaN density for radii below its axis).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        run_id = evaluate.main(
            [
                "--train-run",
                synthetic_train_run,
                "--sampler",
                "uniform,gaussian",
                "--b",
                "1e-6,2",
                "--k",
                "1e-6,2",
                "--scale",
                "1e-6",
                "--grid-spacing",
                "1e-6",
                "--n-samples",
                "2000",
                "--n-decoded",
                "0",
                "--knn-n",
                "0",
                "--verdict",
                "none",
            ]
        )
    run = mlflow.get_run(run_id)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED"
    assert np.isfinite(metrics["grid_log10_points/b1e-06"])
    assert np.isfinite(metrics["radius_mean_theory/uniform/b1e-06"])  # NaN at b=1e-300
    # only P(hit) = 0 exactly (the 1e-6 box misses the 1e-6 windows) has no interval: NaN by
    # design, as for any b whose box misses a window
    assert metrics["log10_p_hit/uniform/b1e-06/k1e-06"] < -1e300
    nan = {name for name, value in metrics.items() if not np.isfinite(value)}
    assert nan == {f"log10_p_hit_{end}/uniform/b1e-06/k1e-06" for end in ("lo", "hi", "se")}


def test_yaml_out_of_range_is_refused_when_read(tmp_path, capsys):
    from aelatent.jobs.train import cli

    path = case_yaml(tmp_path, "wide", **{"model.z_dim": 2_000_000_000})
    line = cli_error(cli, ["--case", path], capsys)
    assert "model.z_dim=2000000000" in line and path in line and "at most 4096" in line, line
    path = case_yaml(tmp_path, "huge", **{"data.image_size": 8192})
    line = cli_error(cli, ["--case", path], capsys)
    assert "data.image_size=8192" in line and "at most 1024" in line, line


def test_decoder_that_does_not_mirror_the_encoder_is_refused_when_read(tmp_path, capsys):
    """Issue 18, item 11: padding valid and decoder strides 1 make 11x11 images of 64x64."""
    from aelatent.jobs.train import cli

    path = case_yaml(
        tmp_path,
        "unmirrored",
        **{
            "model.encoder.padding": ["valid"] * 4,
            "model.decoder.padding": ["valid"] * 4,
            "model.decoder.strides": [1] * 4,
        },
    )
    line = cli_error(cli, ["--case", path], capsys)
    assert f"case file {path!r}" in line and "11x11" in line and "64x64" in line, line
    # mirrored but valid: 64 -> 31 -> 15 -> 7 -> 3 -> 7 -> 15 -> 31 -> 63
    path = case_yaml(
        tmp_path,
        "valid",
        **{"model.encoder.padding": ["valid"] * 4, "model.decoder.padding": ["valid"] * 4},
    )
    line = cli_error(cli, ["--case", path], capsys)
    assert "63x63" in line and "64x64" in line, line
    # fits at its own 64 (64 -> 30 -> 13 -> 5 -> 1 -> 4 -> 16 -> 32 -> 64), but an image_size
    # override is checked too: at 16 the third 5x5 valid kernel meets a 1x1 feature map
    path = case_yaml(
        tmp_path,
        "valid5",
        **{
            "model.encoder.padding": ["valid"] * 4,
            "model.encoder.kernels": [5] * 4,
            "model.decoder.strides": [4, 4, 2, 2],
        },
    )
    assert load_case(path).image_size == 64
    line = cli_error(cli, ["--case", path, "--image-size", "16"], capsys)
    assert "layer 2 (kernel 5, padding valid) gets a 1x1 feature map" in line, line
    assert path in line, line


def test_training_that_cannot_fit_in_memory_is_refused(tmp_path, capsys, monkeypatch):
    from aelatent.jobs.train import cli

    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 4 * GIB)
    line = cli_error(cli, ["--image-size", "1024"], capsys)
    assert "image_size=1024" in line and "needs at least" in line, line
    assert "this machine has 4 GiB" in line and "lower image_size" in line, line
    main_cli = importlib.import_module("aelatent.jobs.main").cli
    cli_error(main_cli, ["--image-size", "1024"], capsys)  # main checks before training
    # the reference networks at the study's size fit in a quarter of that
    case = load_case("I")
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: GIB)
    from aelatent.jobs.train import check_training_memory

    check_training_memory(case)


def test_search_and_evaluate_memory_are_checked_before_sampling(
    synthetic_train_run, capsys, monkeypatch
):
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 100 * 2**20)
    line = cli_error(search.cli, ["--n-samples", "10000000"], capsys)
    assert "n_samples=10000000" in line and "this machine has 0.0977 GiB" in line, line
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: 2**20)
    monkeypatch.setattr("aelatent.jobs.evaluate.job.hit_grid", _no_work)
    line = cli_error(evaluate.cli, ["--train-run", synthetic_train_run, "--n-decoded", "0"], capsys)
    assert "z_dim=16" in line and "fewer values of b, scale or k" in line, line


@pytest.mark.e2e
def test_collision_fails_the_mlflow_run(tracking_uri):
    """Through `mlflow run`: one line, exit 2, the run FAILED with the reason in `error`."""
    result = mlflow_run("evaluate", {"b": "2,2.000001"}, tracking_uri)
    line = assert_user_error(result, "b='2,2.000001'", "2 and 2.000001")
    failed = newest_run("attributes.status = 'FAILED' and tags.entry_point = 'evaluate'")
    assert "2 and 2.000001" in failed.data.tags["error"]
    assert line.endswith(failed.data.tags["error"])


@pytest.mark.e2e
def test_divergence_stops_and_fails_the_run(tracking_uri, tmp_path, capsys):
    """Issue 18, item 12: learning_rate 1e30 (a string to PyYAML) gives a NaN loss at once."""
    from aelatent.io.checkpoints import checkpoint_root
    from aelatent.jobs.train import cli

    assert yaml.safe_load("learning_rate: 1e30")["learning_rate"] == "1e30"
    path = case_yaml(
        tmp_path,
        "diverge",
        **{
            "training.learning_rate": "1e30",
            "training.epochs": 3,
            "data.image_size": 16,
            "model.z_dim": 8,
            "model.encoder.filters": [4, 4, 4, 4],
            "model.decoder.filters": [4, 4, 4, "n_ch"],
        },
    )
    line = cli_error(cli, ["--case", path], capsys)
    assert "training diverged at epoch 1; lower learning_rate" in line and path in line, line
    run = newest_run(
        "attributes.status = 'FAILED' and tags.entry_point = 'train' "
        "and tags.error LIKE 'training diverged%'"
    )
    assert run.data.tags["error"].startswith("training diverged at epoch 1")
    assert run.data.params["training.learning_rate"] == "1e+30"
    assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) == 1
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert not [m for m in models if m.source_run_id == run.info.run_id]
    assert not (checkpoint_root() / run.info.run_id).exists()


def _objective_off_the_origin(n_samples: int = 2000) -> UniformSearchObjective:
    """No uniform vector hits (every window excludes 0); radii match for b near 0.09..0.11."""
    z_dim = 16
    real = np.random.default_rng(3).normal(0.25, 0.01, 500)
    band = RadiusBand(
        float(np.percentile(real, 1)), float(np.percentile(real, 99)), float(np.median(real))
    )
    return UniformSearchObjective(
        np.full(z_dim, 5.0),
        np.full(z_dim, 0.1),
        2.0,
        band,
        n_samples,
        seed=0,
        kind="typical",
        real_radii=real,
    )


def _request(b_min: float, b_max: float) -> SearchRequest:
    return SearchRequest(
        train_run=None,
        case=None,
        k=2.0,
        n_trials=1,
        n_samples=2000,
        b_min=b_min,
        b_max=b_max,
        mode="single",
        storage=None,
        study_name=None,
        seed=0,
    )


def test_explain_zero_finds_the_narrow_radius_band_in_any_range():
    """Issue 18, item 16: the band comes from the radii, not from a grid that skips it."""
    objective = _objective_off_the_origin()
    lo = objective.band.lo / objective.norm.max()
    hi = objective.band.hi / objective.norm.min()
    expected = f"the radii alone match for b in [{lo:.3g}, {hi:.3g}]"
    for b_min, b_max in ((0.05, 12.0), (1e-300, 12.0), (1e-6, 1e5), (1e-300, 1e300)):
        message = explain_zero(objective, _request(b_min, b_max))
        assert expected in message, message
        assert "hit rate is at most 0," in message and "16 of 16 hit windows" in message
    clipped = explain_zero(objective, _request(0.1, 12.0))
    assert f"match for b in [0.1, {hi:.3g}]" in clipped, clipped
    assert "no b in the range matches" in explain_zero(objective, _request(1.0, 12.0))
    # the largest hit rate in the range is exact, not a grid's: windows around 0 hit at b_min
    near = UniformSearchObjective(np.zeros(4), np.ones(4), 1.0, objective.band, 500, seed=1)
    assert "hit rate is at most 1," in explain_zero(near, _request(1e-6, 1e5))


def test_search_over_the_widest_range_logs_its_artifacts(synthetic_train_run):
    """Issue 18, item 13: b_min..b_max at both bounds runs to the end, plots included."""
    search.cli(
        [
            "--train-run",
            synthetic_train_run,
            "--n-trials",
            "2",
            "--n-samples",
            "500",
            "--b-min",
            "1e-6",
            "--b-max",
            "1e5",
            "--study-name",
            "limits-widest",
        ]
    )
    parent = find_runs(
        f"tags.entry_point = 'search' and tags.train_run = '{synthetic_train_run}'"
        " and tags.study_name = 'limits-widest'"
    )[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["b_max"] == "100000" and parent.data.params["b_min"] == "1e-06"
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "search")}
    assert {"search/objective_curve.png", "search/slice_b.png", "search/trials.csv"} <= names
