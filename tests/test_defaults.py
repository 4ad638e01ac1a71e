"""One set of defaults: MLproject, each job's argparse and the documented table agree.

The table is the one of docs/entry-points.md (the documentation site's entry-point reference).

The argparse parser of a job is built inside its ``parse_args``; the test catches it at
``parse_args`` time (``ArgumentParser.parse_args`` patched to hand the parser back) and
reads every option's default, so no job needs a second copy of its defaults for the test.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

from aelatent import arguments

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ("train", "analyse", "evaluate", "search", "report", "main")
REFERENCE = ROOT / "docs" / "entry-points.md"  # the entry-point table


class _Caught(Exception):
    def __init__(self, parser: arguments.ArgumentParser) -> None:
        super().__init__("parser caught")
        self.parser = parser


def argparse_defaults(entry_point: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    def catch(self: arguments.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Caught(self)

    monkeypatch.setattr(arguments.ArgumentParser, "parse_args", catch)
    job = importlib.import_module(f"aelatent.jobs.{entry_point}")
    parse = getattr(job, "parse_args", None) or job.main  # report parses inside main
    with pytest.raises(_Caught) as caught:
        parse([])
    return {
        action.dest: str(action.default)
        for action in caught.value.parser._actions
        if action.dest != "help"
    }


def mlproject() -> dict:
    return yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]


def documented_defaults() -> dict[str, dict[str, str]]:
    """``| `search` | `k` (`2`), ...`` rows of the entry-point table of docs/entry-points.md."""
    table: dict[str, dict[str, str]] = {}
    for line in REFERENCE.read_text().splitlines():
        row = re.match(r"\| `(\w+)` \| (.*?) \| ", line)
        if row and row.group(1) in ENTRY_POINTS:
            table[row.group(1)] = dict(re.findall(r"`(\w+)` \(`([^`]*)`", row.group(2)))
    return table


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_mlproject_and_argparse_agree(entry_point, monkeypatch):
    declared = mlproject()[entry_point]
    parsed = argparse_defaults(entry_point, monkeypatch)
    params = {name: str(spec["default"]) for name, spec in declared["parameters"].items()}
    assert set(params) == set(parsed), entry_point
    differs = {
        name: (params[name], parsed[name]) for name in params if params[name] != parsed[name]
    }
    assert not differs, f"{entry_point}: MLproject vs argparse defaults {differs}"
    for name in params:  # every parameter reaches the script
        assert f"{{{name}}}" in declared["command"], (entry_point, name)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_documented_table_states_the_defaults(entry_point):
    params = {
        name: str(spec["default"]) for name, spec in mlproject()[entry_point]["parameters"].items()
    }
    stated = documented_defaults()[entry_point]
    differs = {
        name: (value, params.get(name))
        for name, value in stated.items()
        if params.get(name) != value
    }
    assert not differs, f"{entry_point}: {REFERENCE.name} vs MLproject defaults {differs}"
