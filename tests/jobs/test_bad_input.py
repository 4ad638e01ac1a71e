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
    """Latents of 8 components beside a components table of 5: a partial or foreign file."""
    folder = tmp_path_factory.mktemp("mismatch")
    (folder / "latents").mkdir()
    (folder / "stats").mkdir()
    np.save(folder / "latents/latents.npy", np.ones((20, 8), dtype=np.float32))
    rows = ["component,mu,hw,sigma"] + [f"{i},0.1,1.0,0.5" for i in range(5)]
    (folder / "stats/components.csv").write_text("\n".join(rows) + "\n")
    with mlflow.start_run(run_name="train run with mismatched stats") as run:
        mlflow.set_tags({"entry_point": "train", "case": "MISMATCH"})
        mlflow.log_artifacts(str(folder))
    return run.info.run_id


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
    ("evaluate", ["--train-run", "{mismatch}", "--n-decoded", "0"], ["{mismatch}", "8"]),
    ("search", ["--train-run", "{mismatch}"], ["{mismatch}", "8"]),
    ("search", ["--b-min", "3", "--b-max", "2"], ["b_min", "b_max"]),
    ("search", ["--b-min", "0"], ["b_min"]),
    ("search", ["--n-trials", "0"], ["n_trials"]),
    ("search", ["--mode", "pareto"], ["'pareto'"]),
    ("search", ["--k", "-1"], ["k='-1'", "> 0"]),
    ("search", ["--train-run", "{wrong_kind}"], ["{wrong_kind}"]),
    ("search", ["--storage", "postgresql://nobody@127.0.0.1:1/none"], ["storage"]),
    ("analyse", ["--train-run", MISSING_RUN], [MISSING_RUN]),
    ("analyse", ["--n-bins", "1"], ["n_bins"]),
    ("report", ["--run-ids", MISSING_RUN], [MISSING_RUN]),
    ("report", ["--experiment", "no such experiment"], ["'no such experiment'"]),
    ("main", ["--epochs", "0"], ["epochs=0"]),
    ("main", ["--n-trials", "0"], ["n_trials"]),
]


@pytest.mark.parametrize(("entry_point", "argv", "fragments"), CASES,
                         ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_mistake_gives_one_clear_line(entry_point, argv, fragments, wrong_kind_run,
                                      train_run_without_latents,
                                      train_run_with_mismatched_stats, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    ids = {"wrong_kind": wrong_kind_run, "no_latents": train_run_without_latents,
           "mismatch": train_run_with_mismatched_stats}
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
