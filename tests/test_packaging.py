"""conda.yaml must ask for exactly what pyproject.toml asks for."""

import tomllib

import yaml
from conftest import ROOT


def test_conda_env_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    conda_requirements = {r.replace(" ", "") for r in pip_section if not r.startswith("-e")}
    assert conda_requirements == {r.replace(" ", "") for r in project["dependencies"]}
    python = next(
        d for d in conda["dependencies"] if isinstance(d, str) and d.startswith("python=")
    )
    assert python == "python=3.11"


def test_mlproject_entry_points_have_scripts():
    mlproject = yaml.safe_load((ROOT / "MLproject").read_text())
    for name, entry in mlproject["entry_points"].items():
        script = entry["command"].split()[1]
        assert (ROOT / script).is_file(), name
