"""The README and the documentation site's edges (the site itself: `make check` builds it with
``mkdocs build --strict``, which fails on a broken link, anchor, include or a page left out of
the nav), and the two scripts that feed them: ``scripts/ui_url.py`` (the URL `make ui`
prints) and ``scripts/demo_figure.py`` (the README's picture)."""

from __future__ import annotations

import importlib.util
import re
import sys
import urllib.parse
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_read_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    text = README.read_text()
    for command in ("make demo", "make test", "make ui"):
        assert command in text, command


def test_the_readme_links_resolve_inside_the_repository():
    targets = [t for t in LINK.findall(README.read_text()) if "://" not in t]
    assert targets, "the README links into docs/"
    for target in targets:
        path = (ROOT / urllib.parse.unquote(target.split("#")[0])).resolve()
        assert path.is_relative_to(ROOT), f"{target} points outside the repository"
        assert path.exists(), f"README.md links to {target}, which does not exist"


def test_every_docs_page_is_in_the_site_nav():
    """The site's nav names every page, and no page twice (strict mode only warns on either
    when the page exists; this says which)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!relative", lambda loader, node: loader.construct_scalar(node))
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)

    def pages(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        assert isinstance(nav, list)
        return [p for item in nav for p in pages(item)]

    listed = pages(config["nav"])
    on_disk = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(listed) == on_disk


@pytest.fixture(scope="module")
def ui_url() -> ModuleType:
    return load_script("ui_url")


def test_make_ui_prints_the_runs_table_of_the_experiment(ui_url):
    url = ui_url.runs_table_url("127.0.0.1", 5000, "3")
    assert url == "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    fragment = urllib.parse.urlsplit(url).fragment
    route, _, query = fragment.partition("?")
    assert route == "/experiments/3"
    # MLflow 3's UI opens the GenAI overview unless the route's query asks for this view
    assert dict(urllib.parse.parse_qsl(query)) == {"workflowType": "machine_learning"}
    assert ui_url.runs_table_url("localhost", 5001, None) == (
        "http://localhost:5001/#/experiments?workflowType=machine_learning"
    )


def test_ui_url_creates_no_store(ui_url, tmp_path):
    store = tmp_path / "none.db"
    assert ui_url.experiment_id(f"sqlite:///{store}") is None
    assert not store.exists()


def test_the_readme_picture_cuts_each_decoded_row():
    """``scripts/demo_figure.py`` finds the image strips of ``decoded/overview.png`` (title and
    labels are no strips) and says how many tests told a row apart."""
    figure = load_script("demo_figure")
    page = np.full((300, 200), 255, dtype=np.uint8)
    page[5:12, 80:120] = 0  # a title: narrow
    page[30:80, 40:190] = 100  # a strip of images
    page[50:60, 5:30] = 0  # its label
    page[100:150, 40:190] = 120
    assert figure.image_bands(page) == [(30, 80, 40, 190), (100, 150, 40, 190)]
    tests = {key: {} for key in ("c2st_linear", "mmd", "cycle")}
    assert figure._verdict_text({"rejected_by": [], "criteria": tests, "verdict": "x"}) == (
        "x:\nnone of the 3 tests tells them apart"
    )
    two = {"rejected_by": ["cycle", "mmd"], "criteria": tests, "verdict": "differs"}
    assert figure._verdict_text(two) == "told apart by 2 of 3 tests:\ncycle, mmd"
