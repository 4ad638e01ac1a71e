"""The verdict's glue in evaluate: its parameters and the run description it writes."""

from __future__ import annotations

import math

import pytest

from aelatent.core.verdict import Criterion, VerdictRow
from aelatent.errors import UserError
from aelatent.jobs.evaluate.verdict import parse_tests, usable_tests, verdict_markdown


def _row(name: str, value: float, acc: float) -> VerdictRow:
    tests = ("c2st_linear", "c2st_nonlinear", "mmd", "fd", "ellipsoid", "cycle")
    criteria = {t: Criterion(t, acc, acc - 0.05, acc + 0.05, 1e-4, 180, 180, (acc,)) for t in tests}
    axis = "" if name in ("real", "heldout") else "scale"
    return VerdictRow(name, axis, value, criteria, 0.57)


def test_the_description_fits_mlflows_limit_with_every_setting_of_the_default_grid():
    """4 samplers x 5-8 settings: the reference rows and the best 6 settings are shown,
    the rest named, far below MLflow's 5,000 characters (which cut the full table)."""
    rows = [_row("real", math.nan, 0.5), _row("heldout", math.nan, 0.8)]
    rows += [_row(f"s{i}", 1.0 + i / 10, 0.9) for i in range(23)]
    text = verdict_markdown([r.as_dict() for r in rows], 180)
    assert len(text) < 2500
    assert "real latents (random split)" in text and "s5 scale=1.5" in text
    assert "s6 scale" not in text and "17 more settings in `tables/verdict.json`" in text


def test_tests_parse_and_auto_drops_the_cycle_without_a_model():
    assert parse_tests("auto") == tuple(t for t in parse_tests("all") if t != "fd")
    assert "cycle" in parse_tests("all") and "fd" in parse_tests("all")
    assert parse_tests("none") == ()
    assert parse_tests("fd, MMD") == ("mmd", "fd")
    assert "cycle" not in usable_tests(parse_tests("auto"), "auto", has_model=False)
    assert "cycle" in usable_tests(parse_tests("cycle"), "cycle", has_model=False)
    with pytest.raises(UserError, match="verdict='knn': unknown test 'knn'"):
        parse_tests("knn")
