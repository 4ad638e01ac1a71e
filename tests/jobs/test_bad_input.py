"""A new user's mistakes, across every entry point: one clear line, exit 2, no traceback.

Each case runs the entry point's command-line function in-process (the same code
`mlflow run` calls); test_train.py and the other job tests check the same path through
`mlflow run` itself.
"""

from __future__ import annotations

import importlib

import mlflow
import numpy as np
import pytest

MISSING_RUN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def wrong_kind_run(tracking_uri: str) -> str:
    """A finished run that is not a train run (a report run)."""
    with mlflow.start_run(run_name="not a train run") as run:
        mlflow.set_tag("entry_point", "report")
    return run.info.run_id


@pytest.fixture(scope="module")
def train_run_without_latents(tracking_uri: str) -> str:
    with mlflow.start_run(run_name="empty train run") as run:
        mlflow.set_tags({"entry_point": "train", "case": "EMPTY"})
    return run.info.run_id


@pytest.fixture(scope="module")
def train_run_with_mismatched_stats(tracking_uri: str, tmp_path_factory) -> str:
    """20 latent vectors beside an index of 5 rows: a partial or foreign file."""
    folder = tmp_path_factory.mktemp("mismatch")
    (folder / "latents").mkdir()
    (folder / "stats").mkdir()
    np.save(folder / "latents/latents.npy", np.ones((20, 8), dtype=np.float32))
    rows = ["row,image_id,partition"] + [f"{i},{i},train" for i in range(5)]
    (folder / "latents/index.csv").write_text("\n".join(rows) + "\n")
    with mlflow.start_run(run_name="train run with mismatched stats") as run:
        mlflow.set_tags({"entry_point": "train", "case": "MISMATCH"})
        mlflow.log_artifacts(str(folder))
    return run.info.run_id


@pytest.fixture(scope="module")
def window_problem_runs(tracking_uri: str, tmp_path_factory) -> dict[str, str]:
    """Train runs whose windows cannot be estimated, or that have no held-out latents."""
    rng = np.random.default_rng(0)
    constant = rng.standard_normal((35, 4)).astype(np.float32)
    constant[:, 2] = 0.5
    cases = {  # name: (latents, number of training rows)
        "noheldout": (rng.standard_normal((30, 4)).astype(np.float32), 30),
        "constant": (constant, 30),
        "few": (rng.standard_normal((15, 4)).astype(np.float32), 10),
    }
    ids = {}
    for name, (latents, n_train) in cases.items():
        folder = tmp_path_factory.mktemp(name) / "latents"
        folder.mkdir()
        np.save(folder / "latents.npy", latents)
        rows = ["row,image_id,partition"] + [
            f"{i},{i},{'train' if i < n_train else 'val'}" for i in range(len(latents))
        ]
        (folder / "index.csv").write_text("\n".join(rows) + "\n")
        with mlflow.start_run(run_name=f"train run {name}") as run:
            mlflow.set_tags({"entry_point": "train", "case": name.upper()})
            mlflow.log_artifacts(str(folder), "latents")
        ids[name] = run.info.run_id
    return ids


# (entry point, argv, fragments the single error line must contain)
CASES = [
    ("train", ["--case", "III"], ["'III'", "I, II"]),
    ("train", ["--case", "configs/missing.yaml"], ["'configs/missing.yaml'"]),
    ("train", ["--case", "notes.txt"], ["'notes.txt'"]),
    ("train", ["--epochs", "0"], ["epochs=0"]),
    ("train", ["--epochs", "-3"], ["epochs=-3"]),
    ("train", ["--epochs", "ten"], ["'ten'"]),
    ("train", ["--image-size", "65"], ["image_size=65", "16"]),
    ("train", ["--image-size", "8"], ["image_size=8"]),
    ("train", ["--seed", "1.5"], ["'1.5'"]),
    ("train", ["--data", "/nowhere/img_align_celeba"], ["'/nowhere/img_align_celeba'"]),
    ("train", ["--resume", MISSING_RUN], [MISSING_RUN, "does not exist"]),
    ("train", ["--resume", "{wrong_kind}"], ["{wrong_kind}", "not a train run"]),
    ("train", ["--bogus", "1"], ["--bogus"]),
    ("evaluate", ["--b", "0"], ["b='0'", "> 0"]),
    ("evaluate", ["--b", "1,-2"], ["-2"]),
    ("evaluate", ["--b", "one"], ["'one'"]),
    ("evaluate", ["--k", "0"], ["k='0'", "> 0"]),
    ("evaluate", ["--sampler", "sobol"], ["'sobol'", "uniform"]),
    ("evaluate", ["--n-samples", "0"], ["n_samples"]),
    ("evaluate", ["--train-run", MISSING_RUN], [MISSING_RUN]),
    ("evaluate", ["--train-run", "{wrong_kind}"], ["{wrong_kind}"]),
    ("evaluate", ["--train-run", "{no_latents}"], ["{no_latents}", "latents"]),
    ("evaluate", ["--train-run", "{mismatch}", "--n-decoded", "0"], ["{mismatch}", "5 rows"]),
    ("evaluate", ["--estimate", "mode"], ["estimate='mode'", "auto, fit, kde"]),
    ("evaluate", ["--train-run", "{noheldout}", "--n-decoded", "0"], ["{noheldout}", "held-out"]),
    ("evaluate", ["--train-run", "{constant}", "--n-decoded", "0"], ["component 2", "constant"]),
    (
        "evaluate",
        ["--train-run", "{few}", "--n-decoded", "0", "--sampler", "uniform", "--verdict", "none"],
        ["10 latent vectors", "20"],
    ),
    (
        "evaluate",
        ["--train-run", "{few}", "--n-decoded", "0", "--sampler", "gmm"],
        ["sampler=gmm needs at least 20 training latents", "has 10"],
    ),
    (
        "search",
        ["--train-run", "{few}", "--sampler", "gmm", "--objective", "knn", "--knn-n", "5"],
        ["sampler=gmm needs at least 20 training latents", "has 10"],
    ),
    (
        "search",
        ["--train-run", "{few}", "--space", "generators"],
        ["space=generators needs at least", "has 10"],
    ),
    ("search", ["--train-run", "{constant}"], ["component 2", "constant"]),
    ("search", ["--train-run", "{mismatch}"], ["{mismatch}", "5 rows"]),
    ("search", ["--estimate", "peak"], ["estimate='peak'", "auto, fit, kde"]),
    ("analyse", ["--estimate", "peak"], ["estimate='peak'", "auto, fit, kde"]),
    ("search", ["--b-min", "3", "--b-max", "2"], ["b_min", "b_max"]),
    ("search", ["--b-min", "0"], ["b_min"]),
    ("search", ["--n-trials", "0"], ["n_trials"]),
    ("search", ["--mode", "pareto"], ["'pareto'"]),
    ("search", ["--k", "-1"], ["k='-1'", "> 0"]),
    ("search", ["--train-run", "{wrong_kind}"], ["{wrong_kind}"]),
    ("search", ["--storage", "postgresql://nobody@127.0.0.1:1/none"], ["storage"]),
    ("analyse", ["--train-run", MISSING_RUN], [MISSING_RUN]),
    (
        "evaluate",
        ["--train-run", "models:/aelatent-no-such-model/1"],
        ["no registered model 'aelatent-no-such-model'"],
    ),
    ("search", ["--train-run", "models:/aelatent-case-I"], ["models:/<name>/<version>"]),
    ("analyse", ["--n-bins", "1"], ["n_bins"]),
    ("report", ["--run-ids", MISSING_RUN], [MISSING_RUN]),
    ("report", ["--experiment", "no such experiment"], ["'no such experiment'"]),
    ("main", ["--epochs", "0"], ["epochs=0"]),
    ("main", ["--n-trials", "0"], ["n_trials"]),
]


@pytest.mark.parametrize(
    ("entry_point", "argv", "fragments"), CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES]
)
def test_mistake_gives_one_clear_line(
    entry_point,
    argv,
    fragments,
    wrong_kind_run,
    train_run_without_latents,
    train_run_with_mismatched_stats,
    window_problem_runs,
    capsys,
    monkeypatch,
):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    ids = {
        "wrong_kind": wrong_kind_run,
        "no_latents": train_run_without_latents,
        "mismatch": train_run_with_mismatched_stats,
        **window_problem_runs,
    }
    argv = [a.format(**ids) for a in argv]
    cli = importlib.import_module(f"aelatent.jobs.{entry_point}").cli
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    # MLflow's download progress bar may share stderr; the error itself is one line.
    lines = [line for line in captured.err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"aelatent {entry_point}: error: ")
    for fragment in fragments:
        assert fragment.format(**ids) in lines[0], lines[0]


def test_at_least_25_mistakes_are_covered():
    assert len(CASES) >= 25
    assert {c[0] for c in CASES} == {"train", "evaluate", "search", "analyse", "report", "main"}
