"""The report's configuration table shows the train runs' settings, not the job's own
bookkeeping (``aelatent.claim.N``, written by a resume's claim on the run)."""

from __future__ import annotations

from pathlib import Path

from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.document import Table, walk
from aelatent.reporting.sections.context import SectionContext
from aelatent.reporting.sections.training import configuration_section


def _train(label: str, params: dict[str, str]) -> RunData:
    return RunData(f"train{label}", f"train case {label}", "train", "FINISHED", params=params)


def test_internal_params_are_not_configuration(tmp_path: Path):
    resumed = {"model.z_dim": "256", "epochs": "30", "aelatent.claim.1": "host pid 1 t0"}
    resumed["aelatent.claim.2"] = "host pid 2 t1"  # differs from case II: it would come first
    cases = [
        CaseData("I", "I", _train("I", resumed)),
        CaseData("II", "II", _train("II", {"model.z_dim": "128", "epochs": "30"})),
    ]
    data = ReportData(cases=cases, selection="fake", tracking_uri="sqlite:///x.db", created="now")
    section = configuration_section(SectionContext(data, tmp_path))
    table = next(b for b in walk(section.blocks) if isinstance(b, Table))
    assert table.name == "configuration"
    assert [row[0] for row in table.rows] == ["model.z_dim", "epochs"]
    assert table.rows[0] == ["model.z_dim", 256, 128, "yes"]
