"""The report entry point end to end: `mlflow run . -e report` on runs made in the test.

The HTML is opened in headless Chromium (Debian's `chromium`, installed by `make test`
through `make browser`), which must load every embedded image.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from conftest import assert_user_error, mlflow_run

pytestmark = pytest.mark.e2e

SECTIONS = (
    "runs",
    "configuration",
    "distributions",
    "observations",
    "dominant",
    "radius",
    "hits",
    "search",
    "decoded",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PROBE = (
    '<script>window.addEventListener("load", () => document.body.setAttribute("data-widths", '
    "JSON.stringify(Array.from(document.images, i => i.complete ? i.naturalWidth : -1))));"
    "</script></body>"
)


@pytest.fixture(scope="module")
def measured(tiny_train_run, tracking_uri, tmp_path_factory) -> None:
    """An evaluate (uniform only, small) and a search run (2 trials) of the tiny train run."""
    result = mlflow_run(
        "evaluate",
        {
            "train_run": tiny_train_run,
            "sampler": "uniform",
            "b": "1,2",
            "k": "1,2",
            "n_samples": "2000",
            "n_decoded": "4",
            "seed": "0",
        },
        tracking_uri,
    )
    assert result.returncode == 0, result.output[-4000:]
    storage = tmp_path_factory.mktemp("optuna") / "optuna.db"
    result = mlflow_run(
        "search",
        {
            "train_run": tiny_train_run,
            "n_trials": "2",
            "n_samples": "2000",
            "storage": f"sqlite:///{storage}",
            "seed": "0",
        },
        tracking_uri,
    )
    assert result.returncode == 0, result.output[-4000:]


@dataclass(frozen=True)
class Report:
    out: Path
    run_id: str


@pytest.fixture(scope="module")
def made(tiny_train_run, measured, tracking_uri, tmp_path_factory) -> Report:
    out = tmp_path_factory.mktemp("report") / "out"
    result = mlflow_run(
        "report", {"run_ids": tiny_train_run, "output": str(out)}, tracking_uri, timeout=300
    )
    assert result.returncode == 0, result.output[-4000:]
    assert f"report: {out / 'report.html'}" in result.stdout
    run_id = re.search(r"report run (\w+)", result.stdout)
    assert run_id, result.stdout
    return Report(out, run_id.group(1))


@pytest.fixture(scope="module")
def report(made) -> Path:
    return made.out


def test_report_has_every_section(report, tiny_train_run):
    html = (report / "report.html").read_text()
    markdown = (report / "report.md").read_text()
    for key in SECTIONS:
        assert f'<section id="{key}">' in html, key
        assert f'<a id="{key}"></a>' in markdown, key
    assert tiny_train_run in html
    assert not re.search(r'(src|href)="(https?:|//|file:)', html)
    for link in re.findall(r"\]\(((?:images|tables)/[^)]+)\)", markdown):
        assert (report / link).is_file(), link
    tables = {p.name for p in (report / "tables").iterdir()}
    assert {"runs.csv", "configuration.csv", "observations.csv", "training_curves.csv"} <= tables
    observations = (report / "tables" / "observations.csv").read_text()
    assert "n_hw_ge_3" not in observations  # labelled, not raw metric names
    assert "components with hw >= 3" in observations

    assert {"hit_rate_I_uniform.csv", "radius_I.csv", "search_I.csv"} <= tables
    assert {"hit_figures_I_uniform.csv", "grid_method_I.csv"} <= tables
    rates = list(csv.reader((report / "tables" / "hit_rate_I_uniform.csv").open()))
    assert rates[-1][0] == "held-out real latents (ceiling)", rates
    # two evaluate runs with different grids: cells of (b, k) that neither ran stay empty
    filled = [cell for row in rates[1:] for cell in row[1:] if cell]
    assert len(filled) >= len(rates[1]) - 1  # at least a row's worth
    assert all(re.fullmatch(r"\S+ \[\S+, \S+\]", cell) for cell in filled), rates
    assert "Windows: estimate=central" in html and "hit_rates_I_uniform.png" in markdown
    assert ("Best b = " in html or "No best b: " in html) and "decoded/" in html
    assert "Not run" not in html, re.findall(r'class="note">([^<]*)', html)


def test_report_run_is_logged(made, tmp_path):
    report = made.out
    run = mlflow.get_run(made.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == "report"
    assert run.data.tags["entry_point"] == "report"
    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="report", dst_path=str(tmp_path)
        )
    )
    assert (local / "report.html").read_bytes() == (report / "report.html").read_bytes()
    assert (local / "report.md").is_file()
    assert (local / "tables" / "observations.csv").is_file()
    assert any((local / "images").iterdir())


def test_html_renders_in_chromium_with_every_image(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: run `make browser` (Debian's chromium package; "
            "`make test` does it) and try again"
        )
    probe = tmp_path / "probe.html"
    html = (report / "report.html").read_text()
    probe.write_text(html.replace("</body>", PROBE))
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'data-widths="([^"]*)"', done.stdout)
    assert match, f"chromium did not render the page: {done.stderr[-2000:]}"
    widths = json.loads(match.group(1))
    assert len(widths) == html.count("<img "), widths
    assert widths and all(w > 0 for w in widths), widths

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1200,3000",
            (report / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_default_selection_and_bad_input(tiny_train_run, tracking_uri, tmp_path):
    result = mlflow_run("report", {"output": str(tmp_path / "default")}, tracking_uri)
    assert result.returncode == 0, result.output[-4000:]
    html = (tmp_path / "default" / "report.html").read_text()
    assert "the newest finished train run of each case in all experiments" in html

    # one mistake through `mlflow run` (exit 2, one line); the others in process
    # (tests/jobs/test_bad_input.py: an unknown experiment among them)
    missing = mlflow_run("report", {"run_ids": "0123456789abcdef"}, tracking_uri)
    assert_user_error(missing, "0123456789abcdef", "does not exist")
