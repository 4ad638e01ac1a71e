"""Any install finds the case files: the project's experiments/ first, then the package data.

The slow test builds the wheel (from a copy of the sources, so the checkout gets no build/),
installs it into a fresh virtual environment (dependencies reused from this one, the package
itself only from the wheel) and, from a folder outside the source tree, parses case I and II
and runs the report entry point.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from aelatent import config
from aelatent.config import PACKAGE_CASES_DIR, load_case
from aelatent.errors import UserError


@pytest.mark.parametrize("case", ["I", "II"])
def test_the_packaged_case_files_are_the_project_ones(case):
    name = f"case_{case}.yaml"
    assert (PACKAGE_CASES_DIR / name).read_text() == (ROOT / "experiments" / name).read_text()


def test_an_edited_copy_in_the_project_folder_wins(tmp_path, monkeypatch):
    (tmp_path / "experiments").mkdir()
    text = (PACKAGE_CASES_DIR / "case_I.yaml").read_text().replace("epochs: 100", "epochs: 7")
    (tmp_path / "experiments" / "case_I.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    edited = load_case("I")
    assert edited.training.epochs == 7
    assert edited.source == str(tmp_path / "experiments" / "case_I.yaml")
    assert load_case("II").source == str(PACKAGE_CASES_DIR / "case_II.yaml")


def test_a_missing_case_file_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "PACKAGE_CASES_DIR", tmp_path / "site-packages" / "cases")
    with pytest.raises(UserError) as error:
        load_case("II")
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "experiments" / "case_II.yaml") in message
    assert str(tmp_path / "site-packages" / "cases" / "case_II.yaml") in message


def _run(command: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=240, **kwargs
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


CHECK = """
import json, sys
import mlflow
import aelatent
from aelatent.jobs import report
from aelatent.jobs.train import parse_args

cases = {case: str(parse_args(["--case", case]).case.source) for case in ("I", "II")}
report.cli(["--output", sys.argv[1]])  # an entry point end to end (no training needed)
run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
experiment = mlflow.MlflowClient().get_experiment(run.info.experiment_id)
print(json.dumps({"package": aelatent.__file__, "cases": cases, "experiment": experiment.name,
                  "kind": experiment.tags.get("mlflow.experimentKind")}))
"""


@pytest.mark.e2e  # builds a wheel and a venv in subprocesses
def test_a_built_wheel_runs_outside_the_source_tree(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            wheels,
            source,
        ]
    )
    (wheel,) = wheels.glob("aelatent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")
        )
    assert {"aelatent/cases/case_I.yaml", "aelatent/cases/case_II.yaml"} <= names
    assert "mlflow.default_experiment_provider" in entry_points

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            wheel,
        ]
    )
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    # the dependencies from this environment; not its aelatent (an editable install's path
    # hook is a .pth file there, which a path added this way does not run)
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "check.py").write_text(CHECK)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{elsewhere / 'mlflow.db'}",
    }
    done = _run([python, "check.py", elsewhere / "report"], cwd=elsewhere, env=env)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(site), found
    for case in ("I", "II"):
        assert found["cases"][case] == str(site / "aelatent" / "cases" / f"case_{case}.yaml")
    assert found["experiment"] == "aelatent"
    assert found["kind"] == "custom_model_development"
    assert (elsewhere / "report" / "report.html").is_file()
