"""A full disk or a vanished store, told apart from a bug at the edge of every job.

A write that finds no space (ENOSPC, or EDQUOT: a quota) fails wherever the job happens to
be writing: the report's folder, the checkpoint folder, the run's artifact folder, the
SQLite store itself (``database or disk is full``), usually wrapped by MLflow or SQLAlchemy
and often without the file's name (a flush on close, ``shutil``'s copy, Keras' save). A
SQLite store whose file is moved or deleted while the job runs fails its next write
(``attempt to write a readonly database``). :func:`exhausted_resource` recognises these in
an exception's chain and says, in one line, which path and what is full or missing;
:func:`aelatent.io.tracking.run_entry_point` asks it before taking an exception for a bug,
so none of these ends in a traceback, and the run is closed FAILED with that line where the
store still takes it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException

from aelatent.io.lifecycle import shown_uri

FULL_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
}
FULL_BYTES = 64 * 1024  # a filesystem with less than this available is taken as the full one
SQLITE_FULL = 13  # sqlite3's result code for "database or disk is full"


@dataclass(frozen=True)
class Exhausted:
    """A resource the job ran out of: ``message`` is one line naming the path and what is
    full or missing."""

    message: str


def exhausted_resource(
    exc: BaseException,
    tracking_uri: str,
    places: Sequence[str | os.PathLike[str]] = (),
    *,
    during: bool = True,
) -> Exhausted | None:
    """Whether ``exc`` means a full disk (ENOSPC, EDQUOT, SQLite's "database or disk is
    full", wrapped by MLflow or SQLAlchemy or not) or a vanished SQLite store; else None.

    A full disk is named by the path the failed write was given when the error carries it;
    else by the first path in the failing frames (innermost first), or of ``places`` (the
    folders the job writes to), that lies on a filesystem with less than :data:`FULL_BYTES`
    available, so a write inside a library that drops the file name is still placed.
    ``during=False``: only the errors ``exc`` was raised *from*, not one it was raised while
    handling (a store that refuses to close a run for its own reason says that reason).
    """
    chain = list(_chain(exc, during))
    database = sqlite_database(tracking_uri)
    shown = shown_uri(tracking_uri)
    if database is not None and any(_from_store(e) for e in chain) and _vanished(database):
        return Exhausted(
            f"the tracking store's SQLite file {database} is missing (moved or deleted while "
            f"the job ran; MLFLOW_TRACKING_URI={shown})"
        )
    if any(_sqlite_full(e) for e in chain):
        # the tracking store's, unless its disk has room and another one is full (Optuna's)
        elsewhere, sure = _on_full_filesystem(chain, places)
        if database is not None and (_available(database) < FULL_BYTES or not sure):
            return Exhausted(
                f"the tracking store's SQLite file {database} cannot grow: database or disk "
                f"is full ({_free_text(database)}; MLFLOW_TRACKING_URI={shown})"
            )
        if elsewhere is not None:
            where = "writing to" if sure else "writing, probably to"
            return Exhausted(
                f"a SQLite database is full {where} {elsewhere} ({_free_text(elsewhere)})"
            )
        return Exhausted("a SQLite database is full (database or disk is full)")
    full = next((e for e in chain if isinstance(e, OSError) and e.errno in FULL_ERRNOS), None)
    if full is None or full.errno is None:
        return None
    what = FULL_ERRNOS[full.errno]
    path, sure = _full_path(full, chain, places)
    if path is None:
        return Exhausted(f"{what} ({errno.errorcode[full.errno]}) in a folder the job writes to")
    store = (
        f"; MLFLOW_TRACKING_URI={shown}"
        if database is not None and _same_filesystem(path, database)
        else ""
    )
    where = "writing to" if sure else "writing, probably to"
    return Exhausted(f"{what} {where} {path} ({_free_text(path)}{store})")


def sqlite_database(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (absolute), else None."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url  # only when a job has failed

    try:
        database = make_url(tracking_uri).database
    except Exception:  # not a URI SQLAlchemy can read: not a file to name
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute()


def local_artifact_folder(artifact_uri: str) -> Path | None:
    """The local folder of a run's artifact URI (a path or ``file:``), else None."""
    from urllib.parse import urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file") or not parsed.path:
        return None
    return Path(parsed.path).absolute()


def _from_store(exc: BaseException) -> bool:
    import sqlite3

    import sqlalchemy.exc

    return isinstance(exc, MlflowException | sqlalchemy.exc.DBAPIError | sqlite3.Error)


def _vanished(database: Path) -> bool:
    """Gone, or an empty file in its place (SQLite creates one when it reconnects)."""
    try:
        return database.stat().st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _sqlite_full(exc: BaseException) -> bool:
    import sqlite3

    return isinstance(exc, sqlite3.Error) and (
        getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL
        or "database or disk is full" in str(exc)
    )


def _full_path(
    full: OSError, chain: Sequence[BaseException], places: Sequence[str | os.PathLike[str]]
) -> tuple[Path | None, bool]:
    """Where the write failed, and whether that is sure: the path the error names (a copy's
    destination first), else :func:`_on_full_filesystem` (a guess when no filesystem is
    full: a quota, or space freed since)."""
    named = [
        Path(os.fsdecode(name)).absolute()
        for name in (full.filename2, full.filename)
        if isinstance(name, str | bytes | os.PathLike)
    ]
    if named:
        return named[0], True
    return _on_full_filesystem(chain, places)


def _on_full_filesystem(
    chain: Sequence[BaseException], places: Sequence[str | os.PathLike[str]]
) -> tuple[Path | None, bool]:
    """The first path of the failing frames (innermost first) or of ``places`` on a full
    filesystem, and True; else the innermost frame's path (a guess), and False."""
    candidates = [*_paths_in_frames(chain), *(Path(p).absolute() for p in places)]
    on_full = next((path for path in candidates if _available(path) < FULL_BYTES), None)
    if on_full is not None:
        return on_full, True
    return next(iter(candidates), None), False


def _paths_in_frames(chain: Sequence[BaseException]) -> list[Path]:
    """Absolute paths held by the failing frames' variables, innermost frame first."""
    found: list[Path] = []
    for exc in chain:
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            for value in frame.f_locals.values():
                if isinstance(value, os.PathLike):
                    try:
                        text = os.fsdecode(os.fspath(value))
                    except TypeError:
                        continue
                elif isinstance(value, str):
                    text = value
                else:
                    continue
                if text.startswith(os.sep) and len(text) < 4096 and "\n" not in text:
                    path = Path(text)
                    if path not in found:
                        found.append(path)
    return found


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _available(path: Path) -> int:
    """Bytes available to this user on the filesystem of ``path`` (a large number if unknown)."""
    try:
        stat = os.statvfs(_existing(path))
    except OSError:
        return 1 << 62
    return stat.f_bavail * stat.f_frsize


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return _existing(a).stat().st_dev == _existing(b).stat().st_dev
    except OSError:
        return False


def _free_text(path: Path) -> str:
    try:
        stat = os.statvfs(_existing(path))
    except OSError:
        return "its filesystem could not be read"
    free, size = stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize
    return f"its filesystem holds {_bytes(size)}, {_bytes(free)} free now"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _chain(exc: BaseException, during: bool) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (``during``: or while handling)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (current.__context__ if during else None)
