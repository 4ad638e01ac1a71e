"""Reading the box test's metrics back: the newest run wins each (b, k) cell, whole."""

from __future__ import annotations

from aelatent.reporting.collect import RunData
from aelatent.reporting.sections.hit_metrics import evaluation_grid


def test_grid_cells_are_replaced_whole():
    newer = RunData("a", "a", "evaluate", "FINISHED", metrics={"hit_rate/uniform/b1/k2": 0.7})
    older = RunData(
        "b",
        "b",
        "evaluate",
        "FINISHED",
        metrics={"hit_rate/uniform/b1/k2": 0.1, "hit_rate_lo/uniform/b1/k2": 0.05},
    )
    assert evaluation_grid([newer, older])["uniform"][("1", "2")] == {"hit_rate": 0.7}


def test_grid_prefers_newer_runs():
    newer = RunData("a", "a", "evaluate", "FINISHED", metrics={"hit_rate/uniform/b1/k2": 0.7})
    older = RunData("b", "b", "evaluate", "FINISHED", metrics={"hit_rate/uniform/b1/k2": 0.1})
    assert evaluation_grid([newer, older])["uniform"][("1", "2")]["hit_rate"] == 0.7
