"""Where the report entry point writes by default: a new folder per report, and
``reports/latest`` pointing at the newest. Fast: no run is made."""

from __future__ import annotations

from aelatent.jobs.report import default_output, point_latest


def test_default_output_is_unique_and_latest_follows(tmp_path):
    first = default_output(tmp_path)
    first.mkdir()
    second = default_output(tmp_path)
    assert second != first and second.parent == tmp_path
    second.mkdir()
    point_latest(first)
    point_latest(second)
    assert (tmp_path / "latest").resolve() == second.resolve()
