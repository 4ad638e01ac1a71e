"""The analysis as files: every path of docs/architecture.md, exact round trips."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from aelatent.core.analysis import analyse_latents
from aelatent.core.components import DominanceThresholds
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import (
    ARTIFACT_PATHS,
    PLOT_PATHS,
    read_components_csv,
    write_analysis,
)
from aelatent.schema import (
    COMPONENTS_CSV,
    COUNTS_NPY,
    DOMINANT_MD,
    DOMINANT_PNG,
    EDGES_NPY,
    RADIUS_CSV,
    SPECTRUM_CSV,
    TOP_PAIRS_CSV,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _latents(n: int = 3000, z_dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(23)
    latents = rng.standard_normal((n, z_dim)) * 0.4
    latents[:, 2] += 1.3
    latents[:, 5] *= 4.0
    latents[:, 9] = 0.7 * latents[:, 5] + 0.5 * latents[:, 9]
    return latents.astype(np.float32)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    analysis = analyse_latents(_latents())
    out = tmp_path_factory.mktemp("analysis")
    write_analysis(analysis, out)
    return analysis, out


def test_every_artifact_is_written(written):
    _, out = written
    assert {
        "histograms/counts.npy",
        "histograms/edges.npy",
        "histograms/components.png",
        "histograms/dominant.png",
        "stats/components.csv",
        "stats/windows.csv",
        "stats/dominant.md",
        "stats/radius.csv",
        "stats/radius.png",
        "correlations/dominant_pair.png",
        "correlations/matrix.png",
        "correlations/top_pairs.csv",
        "pca/spectrum.png",
        "pca/spectrum.csv",
    } == set(ARTIFACT_PATHS)
    for relative in ARTIFACT_PATHS:
        assert (out / relative).stat().st_size > 0, relative
    for relative in PLOT_PATHS:
        assert (out / relative).read_bytes()[:8] == PNG_SIGNATURE, relative


def test_arrays_round_trip(written):
    analysis, out = written
    counts = np.load(out / COUNTS_NPY)
    edges = np.load(out / EDGES_NPY)
    assert counts.dtype == np.int64 and counts.shape == (16, 100)
    assert edges.dtype == np.float64 and edges.shape == (101,)
    np.testing.assert_array_equal(counts, analysis.histograms.counts)
    np.testing.assert_array_equal(edges, analysis.histograms.edges)


def test_components_csv_round_trips_exactly(written):
    analysis, out = written
    with (out / COMPONENTS_CSV).open() as handle:
        header = next(csv.reader(handle))
    assert header[:8] == ["component", "mu", "hw", "sigma", "mean", "std", "fit_r2", "dominant"]
    table = read_components_csv(out / COMPONENTS_CSV)
    for name, column in analysis.components.columns().items():
        np.testing.assert_array_equal(table[name], column, err_msg=name)
    assert table["component"].dtype == np.int64 and table["dominant"].dtype == bool
    np.testing.assert_array_equal(table["dominant_significant"], analysis.dominant_significant)
    assert table["dominant_significant"].dtype == bool
    assert table["mu"].dtype == np.float64


def test_tables(written):
    analysis, out = written
    with (out / RADIUS_CSV).open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 100 and sum(int(r["count"]) for r in rows) == 3000
    with (out / TOP_PAIRS_CSV).open() as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == 20
    assert (int(pairs[0]["i"]), int(pairs[0]["j"])) == (5, 9)
    with (out / SPECTRUM_CSV).open() as handle:
        spectrum = list(csv.DictReader(handle))
    assert len(spectrum) == 16
    assert float(spectrum[-1]["cumulative_ratio"]) == pytest.approx(1.0)
    text = (out / DOMINANT_MD).read_text()
    dominant = analysis.dominant_components
    assert f"{len(dominant)} of 16 components are dominant" in text
    assert "component: mu, hw" in text
    assert text.count("\n| ") == len(dominant) + 1  # header and one row per component
    listed = re.search(r"(?:^|· )2: (-?[\d.]+), ([\d.]+)", text, flags=re.MULTILINE)
    assert listed, text  # the study's style; component 2 sits at mu ~ 1.3, hw ~ 0.94
    assert float(listed.group(1)) == pytest.approx(1.3, abs=0.1)
    assert float(listed.group(2)) == pytest.approx(0.94, abs=0.1)


def test_no_dominant_components_still_writes_every_file(tmp_path):
    rng = np.random.default_rng(29)
    latents = (rng.standard_normal((500, 4)) * 0.1).astype(np.float32)
    analysis = analyse_latents(latents, thresholds=DominanceThresholds(mu_abs=5.0, hw=5.0))
    write_analysis(analysis, tmp_path)
    assert (tmp_path / DOMINANT_PNG).read_bytes()[:8] == PNG_SIGNATURE
    assert "None." in (tmp_path / DOMINANT_MD).read_text()


def test_data_only(tmp_path):
    write_analysis(analyse_latents(_latents(300, 10)), tmp_path, plots=False)
    assert (tmp_path / COMPONENTS_CSV).exists() and not (tmp_path / DOMINANT_PNG).exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("component,mu\n0,1.0\n", "need columns"),
        ("", "need columns"),
        ("component,mu,hw\n0,1.0,2.0\n1,1.0\n", "truncated"),
        ("component,mu,hw\n0,abc,2.0\n", "'mu'"),
    ],
)
def test_bad_components_csv_is_a_user_error(tmp_path, content, match):
    path = tmp_path / "components.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=match):
        read_components_csv(path)


def test_missing_components_csv_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        read_components_csv(tmp_path / "nope.csv")
