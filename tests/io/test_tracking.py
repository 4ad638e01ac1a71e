"""Entry-point plumbing: parameter parsing, run lookup, and how user errors end a run."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable

import mlflow
import pytest
from conftest import newest_run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.arguments import parse_float_list, parse_int
from aelatent.errors import UserError
from aelatent.io.exhaustion import exhausted_resource
from aelatent.io.tracking import (
    entry_point_run,
    fail_run,
    get_run,
    newest_finished_run,
    resolve_train_run,
    run_entry_point,
)


def test_parse_float_list():
    assert parse_float_list("1,1.5, 2", "b") == [1.0, 1.5, 2.0]
    with pytest.raises(UserError, match=r"b='1,x': 'x' is not a number"):
        parse_float_list("1,x", "b")
    with pytest.raises(UserError, match="every value must be > 0, got -1"):
        parse_float_list("1,-1", "b")
    with pytest.raises(UserError, match="finite"):
        parse_float_list("nan", "k")


def test_parse_int():
    assert parse_int("7", "n", minimum=1) == 7
    with pytest.raises(UserError, match="n=0 is out of range"):
        parse_int("0", "n", minimum=1)
    with pytest.raises(UserError, match=r"n='1\.5' is not an integer"):
        parse_int("1.5", "n", minimum=1)


def test_user_error_fails_the_run_and_keeps_its_artifacts(tracking_uri, tmp_path, capsys):
    note = tmp_path / "note.txt"
    note.write_text("logged before the mistake")

    def job(argv):
        mlflow.start_run()
        mlflow.set_tag("entry_point", "demo")
        mlflow.log_artifact(str(note))
        raise UserError("n=0 is out of range; expected an integer >= 1")

    with pytest.raises(SystemExit) as exit_info:
        run_entry_point("demo", job, [])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "aelatent demo: error: n=0 is out of range; expected an integer >= 1"
    )
    run = newest_failed()
    assert run.data.tags["error"].startswith("n=0 is out of range")
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert artifacts == ["note.txt"]


def newest_failed():
    return newest_run("attributes.status = 'FAILED'")


def test_fail_run_marks_the_mlflow_run_launched_run(tracking_uri, monkeypatch, capsys):
    run = mlflow.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with pytest.raises(SystemExit) as exit_info:
        fail_run("evaluate", "sampler='x' is unknown")
    assert exit_info.value.code == 2
    stored = mlflow.get_run(run.info.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.tags["error"] == "sampler='x' is unknown"


def test_run_lookup(tracking_uri):
    with mlflow.start_run() as other:
        mlflow.set_tag("entry_point", "evaluate")
    with pytest.raises(UserError, match="is a evaluate run, not a train run"):
        get_run(other.info.run_id, expected_entry_point="train")
    with pytest.raises(UserError, match="does not exist"):
        get_run("feedfacefeedfacefeedfacefeedface")
    with pytest.raises(UserError, match="no finished train run of case XYZ"):
        newest_finished_run("train", case="XYZ")
    with mlflow.start_run() as unfinished:
        mlflow.set_tags({"entry_point": "train", "case": "XYZ"})
        with pytest.raises(UserError, match="is RUNNING, not FINISHED"):
            resolve_train_run(unfinished.info.run_id)
    with mlflow.start_run() as finished:
        mlflow.set_tags({"entry_point": "train", "case": "XYZ"})
    assert newest_finished_run("train", case="XYZ").info.run_id == finished.info.run_id


def test_entry_point_run_ends_with_the_right_status(tracking_uri):
    from aelatent.io.tracking import entry_point_run

    statuses = {}
    with entry_point_run("demo", "demo ok", {"case": "Z"}) as run:
        statuses["ok"] = run.info.run_id
    raised = {
        "mistake": UserError("k=0: every value must be > 0"),
        "interrupt": KeyboardInterrupt(),
        "bug": RuntimeError("a bug"),
    }
    for outcome, error in raised.items():
        # the exception must come out again: the run's end does not swallow it
        with pytest.raises(type(error)), entry_point_run("demo", f"demo {outcome}") as run:
            statuses[outcome] = run.info.run_id
            raise error
        assert mlflow.active_run() is None
    got = {o: mlflow.get_run(r).info.status for o, r in statuses.items()}
    assert got == {"ok": "FINISHED", "mistake": "FAILED", "interrupt": "KILLED", "bug": "FAILED"}
    assert mlflow.get_run(statuses["mistake"]).data.tags["error"] == "k=0: every value must be > 0"
    assert mlflow.get_run(statuses["ok"]).data.tags["case"] == "Z"


def test_train_run_choice_is_the_same_for_every_entry_point():
    from aelatent.arguments import parse_train_run_choice
    from aelatent.jobs import analyse, evaluate, search

    assert parse_train_run_choice(" newest ", "any") == (None, None)
    assert parse_train_run_choice("", "") == (None, None)
    assert parse_train_run_choice("abc123", "II") == ("abc123", "II")
    for job in (analyse, evaluate, search):  # `any` as MLproject passes it, for each job
        request = job.parse_args(["--train-run", "newest", "--case", "any"])
        assert (request.train_run, request.case) == (None, None), job.__name__


# ------------------------------------------------ a full disk, a vanished store (issue 28)


def _raised(make: Callable[[], BaseException]) -> BaseException:
    try:
        raise make()
    except BaseException as exc:  # the traceback is what exhausted_resource reads
        return exc


def _store_error(inner: BaseException) -> BaseException:
    """``inner`` as MLflow raises it from its SQLAlchemy store: wrapped, ``from`` it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise MlflowException(f"(sqlite3.OperationalError) {exc}") from exc
    except MlflowException as wrapped:
        return wrapped


def test_a_full_disk_is_named_by_the_path_written(tmp_path):
    source, target = tmp_path / "a.csv", tmp_path / "copy" / "a.csv"
    copy = _raised(  # as shutil.copyfile raises it: source, then destination
        lambda: OSError(errno.ENOSPC, "No space left on device", str(source), None, str(target))
    )
    found = exhausted_resource(copy, "sqlite:///elsewhere.db")
    assert found is not None and found.message.startswith(
        f"no space left on device writing to {target} (its filesystem holds "
    )
    quota = _raised(lambda: OSError(errno.EDQUOT, "Disk quota exceeded", str(target)))
    found = exhausted_resource(_store_error(quota), "http://localhost:5000")
    assert found is not None and found.message.startswith(
        f"disk quota exceeded writing to {target}"
    )


def test_a_full_disk_without_a_file_name_is_placed_by_the_failing_frame(tmp_path):
    def write_table() -> None:
        table = tmp_path / "report" / "table.csv"  # noqa: F841 (what the frame holds)
        raise OSError(errno.ENOSPC, "No space left on device")  # as a flush on close raises

    failed = _raised(lambda: _call(write_table))
    found = exhausted_resource(failed, "sqlite:///elsewhere.db")
    assert found is not None
    table = tmp_path / "report" / "table.csv"  # no filesystem here is full: a guess, said so
    assert found.message.startswith(f"no space left on device writing, probably to {table} ")


def _call(function: Callable[[], None]) -> BaseException:
    try:
        function()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_a_full_or_vanished_sqlite_store_is_named_with_its_uri(tmp_path):
    database = tmp_path / "mlflow.db"
    database.write_bytes(b"SQLite format 3\x00" + bytes(100))
    uri = f"sqlite:///{database}"
    full = _store_error(sqlite3.OperationalError("database or disk is full"))
    found = exhausted_resource(full, uri)
    assert found is not None
    assert f"SQLite file {database} cannot grow: database or disk is full" in found.message
    assert f"MLFLOW_TRACKING_URI={uri})" in found.message
    readonly = _store_error(sqlite3.OperationalError("attempt to write a readonly database"))
    assert exhausted_resource(readonly, uri) is None  # the file is there: not this
    database.rename(tmp_path / "moved.db")
    found = exhausted_resource(readonly, uri)
    assert found is not None and found.message.startswith(
        f"the tracking store's SQLite file {database} is missing (moved or deleted while"
    )
    assert exhausted_resource(_raised(lambda: RuntimeError("a bug")), uri) is None


def test_a_full_disk_fails_the_run_in_one_line(tracking_uri, tmp_path, capsys):
    def job(argv):
        with entry_point_run("demo", "demo full disk"):
            mlflow.log_metric("before", 1.0)
            table = tmp_path / "out" / "table.csv"  # noqa: F841 (where the write went)
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SystemExit) as exit_info:
        run_entry_point("demo", job, [])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    run = newest_failed()
    assert err.startswith(
        f"aelatent demo: error: no space left on device writing, probably to {tmp_path / 'out'}"
    )
    assert err.strip().endswith(f"; run {run.info.run_id} is FAILED, what it logged is kept")
    assert run.data.tags["error"].startswith("no space left on device writing, probably to ")
    assert run.data.metrics == {"before": 1.0}


def test_a_store_that_refuses_the_end_is_said_in_the_same_line(tracking_uri, monkeypatch, capsys):
    started: list[str] = []

    def job(argv):
        with entry_point_run("demo", "demo refused end") as run:
            started.append(run.info.run_id)
            monkeypatch.setattr(MlflowClient, "set_terminated", _refuse)
            monkeypatch.setattr(MlflowClient, "set_tag", _refuse)
            raise OSError(errno.ENOSPC, "No space left on device", "/nowhere/file")

    with pytest.raises(SystemExit):
        run_entry_point("demo", job, [])
    monkeypatch.undo()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("aelatent demo: error: no space left on device writing to /nowhere/file")
    assert f"; could not mark run {started[0]} FAILED (OperationalError: database" in line
    assert f"MLFLOW_TRACKING_URI={tracking_uri}): it stays RUNNING until" in line
    assert mlflow.get_run(started[0]).info.status == "RUNNING"
    MlflowClient().set_terminated(started[0], "FAILED")  # no RUNNING run left to other tests


def _refuse(*args: object, **kwargs: object) -> None:
    raise sqlite3.OperationalError("database is locked")
