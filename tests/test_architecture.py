"""The layers of docs/architecture.md, checked on the source: imports only run downwards,
no module imports itself back through others, the numeric core needs neither MLflow nor
TensorFlow. Imports inside functions count too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aelatent"
# a module may import from its own package or from packages of a lower rank only
RANK = {
    "": 0,  # the package root: its __init__ imports nothing (a generator copies its folder)
    "errors": 0,
    "schema": 0,
    "console": 0,
    "limits": 1,
    "arguments": 1,
    "core": 1,
    "data": 1,
    "accelerator": 1,
    "config": 2,
    "model": 3,
    "generators": 3,
    "plots": 3,
    "io": 4,
    "ops": 4,
    "serving": 5,
    "reporting": 6,
    "jobs": 7,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("aelatent", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    """Every module name an import statement in ``path`` names, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            named = {f"{node.module}.{alias.name}" for alias in node.names}
            names.update(named)
            if not named <= set(modules()):  # `from package import submodule` needs only it
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()
    }


def package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_package_has_a_rank():
    assert {package(m) for m in modules()} == set(RANK)
    assert not graph()["aelatent"]


def test_imports_only_run_downwards():
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if package(target) != package(source) and RANK[package(target)] >= RANK[package(source)]
    ]
    assert not upward, upward


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, cycles


@pytest.mark.parametrize("layer", ["core", "plots"])
def test_the_numeric_core_and_the_plots_need_no_mlflow_or_tensorflow(layer):
    heavy = ("mlflow", "tensorflow", "keras")
    offending = {
        name: sorted(m for m in imports(path) if m.split(".")[0] in heavy)
        for name, path in modules().items()
        if package(name) == layer
    }
    assert not {k: v for k, v in offending.items() if v}


def test_no_private_name_is_imported_from_another_module():
    """A leading underscore means "this module's own": another module importing it couples
    to a detail its owner may change (ruff's SLF001 catches ``module._name``, not this)."""
    private = [
        f"{name}: from {node.module} import {alias.name}"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aelatent")
        for alias in node.names
        if alias.name.startswith("_") and node.module != name
    ]
    assert not private, private


def test_a_module_over_500_lines_says_why_at_its_top():
    """Small modules named after their concept; a longer one states its reason in its
    docstring ("Why one module ..."), so the next engineer knows it was a choice."""
    long_without_reason = [
        f"{name} ({lines} lines)"
        for name, path in modules().items()
        if (lines := len(path.read_text().splitlines())) > 500
        and "why one module" not in (ast.get_docstring(ast.parse(path.read_text())) or "").lower()
    ]
    assert not long_without_reason, long_without_reason


def test_the_architecture_doc_names_every_module():
    """docs/architecture.md is the map: every module appears in it by name (in backticks,
    alone or as part of a dotted or slashed path), so a new module cannot go unmapped."""
    doc = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    quoted = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", doc, flags=re.DOTALL))
    unnamed = [
        name
        for name in modules()
        if not name.endswith("__init__")
        and name.count(".") > 1
        and not any(re.search(rf"(^|[^\w]){name.rsplit('.', 1)[1]}([^\w]|$)", q) for q in quoted)
    ]
    assert not unnamed, unnamed
