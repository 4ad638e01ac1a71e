"""Where the report entry point writes: a new folder per report by default, ``reports/latest``
pointing at the newest; into an earlier report's folder it replaces only what reports wrote
(a file of the user's there is refused, never overwritten), and one report at a time holds a
folder. Fast: the report's own writing path on small documents, no `mlflow run`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli_error, newest_run

from aelatent.errors import UserError
from aelatent.jobs import report
from aelatent.jobs.report import default_output, point_latest
from aelatent.reporting.document import Document, Figure, Section, Table
from aelatent.reporting.output_folder import (
    LOCK_NAME,
    MARKER_NAME,
    OWN_NAMES,
    check_output_folder,
    lock_output_folder,
)
from aelatent.reporting.render import write_document


def _document(*tables: str, figure: Path | None = None) -> Document:
    blocks: list = [Table(name, ["a"], [[1]]) for name in tables]
    if figure is not None:
        blocks.append(Figure(figure, "a figure"))
    return Document("t", "s", [Section("runs", "Runs", blocks)])


def _report_into(document: Document, out: Path) -> None:
    """What ``jobs.report.write_report`` does with its folder, without the MLflow run."""
    with lock_output_folder(out):
        write_document(document, out)


def _listed(out: Path) -> set[str]:
    return set(json.loads((out / MARKER_NAME).read_text())["files"])


def _present(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - OWN_NAMES


def test_default_output_is_unique_and_latest_follows(tmp_path):
    first = default_output(tmp_path)
    first.mkdir()
    second = default_output(tmp_path)
    assert second != first and second.parent == tmp_path
    second.mkdir()
    point_latest(first)
    point_latest(second)
    assert (tmp_path / "latest").resolve() == second.resolve()
    # claimed folders are made at once: two reports in one second get one each
    claimed = [default_output(tmp_path, claim=True) for _ in range(3)]
    assert len(set(claimed)) == 3 and all(p.is_dir() for p in claimed)


def test_a_users_file_where_the_report_writes_is_refused_and_kept(tmp_path):
    out = tmp_path / "out"
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"\x89PNG fake")
    _report_into(_document("runs", "dominant_I", figure=figure), out)
    assert (
        _listed(out)
        == _present(out)
        == {
            "report.html",
            "report.md",
            "tables/runs.csv",
            "tables/dominant_I.csv",
            "images/001-figure.png",
        }
    )
    clash = out / "tables" / "dominant_None.csv"
    clash.write_text("mine\n")
    aside = out / "tables" / "mine.csv"
    aside.write_text("also mine\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    with pytest.raises(UserError) as refused:
        _report_into(_document("runs", "dominant_None"), out)
    message = str(refused.value)
    assert "\n" not in message and "tables/dominant_None.csv" in message and str(out) in message
    assert "tables/mine.csv" not in message  # not in the new report's way
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched

    clash.rename(tmp_path / "moved.csv")  # what the message asks for
    _report_into(_document("runs", "dominant_None"), out)
    assert aside.read_text() == "also mine\n"  # a file of the user's beside it stays
    assert not (out / "tables" / "dominant_I.csv").exists()  # the earlier report's is gone
    assert not (out / "images").exists()
    assert _listed(out) == {
        "report.html",
        "report.md",
        "tables/runs.csv",
        "tables/dominant_None.csv",
    }
    assert _present(out) == _listed(out) | {"tables/mine.csv"}


@pytest.mark.parametrize("kind", ["file", "edited", "link", "folder"])
def test_a_users_report_md_is_refused_before_any_work(tmp_path, kind):
    out = tmp_path / "out"
    _report_into(_document("runs"), out)
    mine = tmp_path / "mine.md"
    mine.write_text("my notes\n")
    if kind == "edited":  # listed, but not as the report wrote it: the user's now
        with (out / "report.md").open("a") as handle:
            handle.write("my notes\n")
        mine = out / "report.md"
        kept = mine.read_text()
    else:
        (out / "report.md").unlink()
        kept = "my notes\n"
    if kind == "file":
        (out / "report.md").write_text("my notes\n")
        _write_listed(out, _listed(out) - {"report.md"})
    elif kind == "link":  # listed, but a link now: writing through it would overwrite mine.md
        (out / "report.md").symlink_to(mine)
    elif kind == "folder":
        (out / "report.md").mkdir()
    with pytest.raises(UserError, match=r"holds report\.md,"):
        check_output_folder(out)
    with pytest.raises(UserError, match=r"holds report\.md,"):
        _report_into(_document("runs"), out)
    assert mine.read_text() == kept and (out / "report.html").is_file()


def test_an_edited_file_the_new_report_does_not_write_stays_as_the_users(tmp_path):
    out = tmp_path / "out"
    _report_into(_document("runs", "old_table"), out)
    (out / "tables" / "old_table.csv").write_text("a\nmy edit\n")
    _report_into(_document("runs"), out)
    assert (out / "tables" / "old_table.csv").read_text() == "a\nmy edit\n"
    assert _listed(out) == {"report.html", "report.md", "tables/runs.csv"}  # not the report's


def _write_listed(out: Path, files: set[str]) -> None:
    (out / MARKER_NAME).write_text(json.dumps({"files": sorted(files)}))


# One report in a process of its own: waits for "go", writes (or is refused), records the
# outcome, and holds the folder until the other has tried too, so the two always overlap.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aelatent.errors import UserError
    from aelatent.reporting.document import Document, Section, Table
    from aelatent.reporting.output_folder import lock_output_folder
    from aelatent.reporting.render import write_document

    out, sync, me, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    tables = [Table(f"r{me}_{k}", ["a"], [[k]]) for k in range(n)]
    document = Document("t", "s", [Section("runs", "Runs", tables)])
    while not (sync / "go").exists():
        time.sleep(0.002)

    def wait_for_the_other():
        deadline = time.monotonic() + 30
        while len(list(sync.glob("result-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)

    try:
        with lock_output_folder(out):
            write_document(document, out)
            (sync / f"result-{me}").write_text("wrote")
            wait_for_the_other()
    except UserError as exc:
        (sync / f"result-{me}").write_text(f"refused {exc}")
    """
)


def test_two_reports_into_one_folder_at_once_one_writes(tmp_path):
    for attempt in range(5):
        out, sync = tmp_path / f"out{attempt}", tmp_path / f"sync{attempt}"
        sync.mkdir()
        if attempt % 2:  # an earlier report's folder as well as a new one
            _report_into(_document("earlier"), out)
        children = [
            subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(sync), str(me), str(n)])
            for me, n in ((0, 5), (1, 40))
        ]
        (sync / "go").touch()
        assert [child.wait(60) for child in children] == [0, 0]
        results = {me: (sync / f"result-{me}").read_text() for me in (0, 1)}
        winners = [me for me, text in results.items() if text == "wrote"]
        assert len(winners) == 1, results
        refusal = results[1 - winners[0]]
        assert refusal.startswith("refused ") and "\n" not in refusal, refusal
        assert str(out) in refusal and "another report" in refusal, refusal
        n = 5 if winners[0] == 0 else 40
        mine = {f"tables/r{winners[0]}_{k}.csv" for k in range(n)}
        assert _listed(out) == _present(out) == {"report.html", "report.md"} | mine
        assert (out / LOCK_NAME).is_file()  # stays, unlisted: the next report locks it again
    _report_into(_document("later"), out)  # the folder is free once the writer ended
    assert _present(out) == {"report.html", "report.md", "tables/later.csv"}


def test_the_report_entry_point_is_refused_while_another_writes(
    tracking_uri, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    out = tmp_path / "out"
    with lock_output_folder(out):  # another report holds the folder
        line = cli_error(report.cli, ["--output", str(out)], capsys)
    assert line.startswith("aelatent report: error: ")
    assert f"output={str(out)!r} is being written by another report" in line
    run = newest_run("tags.entry_point = 'report'")
    assert run.info.status == "FAILED" and "another report" in run.data.tags["error"]
    assert _present(out) == set()  # the refused report wrote nothing
