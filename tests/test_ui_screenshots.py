"""The pure parts of ``scripts/ui_screenshots.py``: the UI addresses it photographs and the
generator answer it renders (the screenshots themselves take minutes: `make screenshots`)."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.parse
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ui_screenshots.py"
BASE = "http://mlflow-ui.test:5000"


@pytest.fixture(scope="module")
def shots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ui_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def route_and_query(url: str) -> tuple[str, dict[str, str]]:
    """The UI's routes live after `#`; their query is what the React app reads."""
    fragment = urllib.parse.urlsplit(url).fragment
    route, _, query = fragment.partition("?")
    return route, dict(urllib.parse.parse_qsl(query))


def test_runs_table_filtered_by_case(shots):
    url = shots.runs_by_case_url(BASE, "7", "II")
    route, query = route_and_query(url)
    assert url.startswith(f"{BASE}/#/")
    assert route == "/experiments/7/runs"
    assert query["searchFilter"] == "tags.`case` = 'II'"  # as the README's search box example
    assert query["workflowType"] == "machine_learning"
    assert " " not in url and "`" not in url


def test_compare_view_of_two_runs(shots):
    route, query = route_and_query(shots.compare_url(BASE, ["a1", "b2"], "7"))
    assert route == "/compare-runs"
    assert json.loads(query["runs"]) == ["a1", "b2"]
    assert json.loads(query["experiments"]) == ["7"]


def test_artifact_page_of_a_table(shots):
    route, query = route_and_query(shots.artifact_url(BASE, "7", "r1", "tables/hit_rates.json"))
    assert route == "/experiments/7/runs/r1/artifacts/tables/hit_rates.json"
    assert query == {"workflowType": "machine_learning"}


def test_generator_answer_page_shows_images_and_a_short_shape(shots):
    rows = [
        {
            "index": i,
            "sampler": "mvn",
            "scale": 1.0,
            "seed": 0,
            "image": [[[0.123456], [0.2]], [[0.3], [0.4]]],
            "png": "iVBORw0KGgo" + "A" * 200,
        }
        for i in range(3)
    ]
    shape = shots.answer_shape(rows)
    assert '"index": 0, "sampler": "mvn", "scale": 1.0, "seed": 0' in shape
    assert "[[[0.1235], ...], ...]" in shape and "2 x 2 x 1 floats" in shape
    assert "211 base64 characters" in shape and "3 rows in all" in shape
    assert "A" * 30 not in shape  # cut short
    page = shots.answer_html(
        "http://127.0.0.1:5001/invocations", {"n": 3, "seed": 0}, {"predictions": rows}
    )
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 3
    assert "&quot;n&quot;: 3" in page  # the request, escaped into the page
