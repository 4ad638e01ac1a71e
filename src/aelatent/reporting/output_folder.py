"""The report's output folder: what an earlier report wrote there, and one report at a time.

A marker file, ``.aelatent-report``, lists what the report wrote (with each file's SHA-256),
so a later report into the same folder removes exactly those files, as long as they are
unchanged, and a folder holding anything else is refused (:func:`check_output_folder`). A
file of the user's where the report would write is refused too, never overwritten
(:func:`refuse_foreign_files`), and one report at a time holds the folder
(:func:`lock_output_folder`, an OS lock on ``.aelatent-report.lock``), so two reports cannot
interleave their files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from aelatent.errors import UserError

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
TABLES_DIR = "tables"
IMAGES_DIR = "images"
MARKER_NAME = ".aelatent-report"
LOCK_NAME = ".aelatent-report.lock"
# the report's own bookkeeping: never listed in the marker, never removed
OWN_NAMES = frozenset({MARKER_NAME, LOCK_NAME, f"{MARKER_NAME}.tmp"})


def check_output_folder(path: Path, name: str = "output") -> Path:
    """``path`` can take a report: a new folder, an empty one, or an earlier report's (it has
    the marker); a file, a folder of the user's, or a place that cannot be created is a
    :class:`UserError` naming it, raised before any work. So is a ``report.html`` or
    ``report.md`` of the user's in an earlier report's folder (every report writes them)."""
    shown = f"{name}={str(path)!r}"
    if path.exists() and not path.is_dir():
        raise UserError(f"{shown} is a file, not a folder: give a new folder for the report")
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise UserError(f"{shown} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{shown} cannot be written: {existing} is not writable for you")
    if not path.is_dir():
        return path
    if not (path / MARKER_NAME).is_file():
        if any(p.name not in OWN_NAMES for p in path.iterdir()):
            raise UserError(
                f"{shown} is a folder with files of its own, not an earlier report (it has no "
                f"{MARKER_NAME}): give a new or empty folder; nothing in it was touched"
            )
        return path
    refuse_foreign_files(path, [path / HTML_NAME, path / MARKDOWN_NAME], name)
    return path


@contextlib.contextmanager
def lock_output_folder(path: Path, name: str = "output") -> Iterator[Path]:
    """Hold ``path`` for one report from before its first check to its last write.

    The lock is ``flock`` on ``.aelatent-report.lock`` in the folder (the kernel releases it
    when the process ends, even by SIGKILL, so a crashed report never blocks the next). A
    second report into the folder meanwhile is a :class:`UserError` at once, not a wait:
    it would only replace the first one's files. The lock file stays (removing it would
    let a third report lock a new file while the second holds the old one)."""
    check_output_folder(path, name)
    shown = f"{name}={str(path)!r}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise UserError(f"{shown} cannot be written: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise UserError(
                f"{shown} is being written by another report right now: wait for it to "
                "end, or give another folder; nothing in it was touched"
            ) from None
        check_output_folder(path, name)  # again, now that no other report can change it
        yield path
    finally:
        os.close(fd)


def listed_files(out_dir: Path) -> dict[str, str | None]:
    """The files earlier reports wrote here, as their marker lists them ({} without one), with
    the SHA-256 each had when written (None: not known, an older or interrupted report)."""
    try:
        marker = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
        listed, sums = marker.get("files", []), marker.get("sha256", {})
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(listed, list):
        return {}
    sums = sums if isinstance(sums, dict) else {}
    return {str(item): sums.get(str(item)) for item in listed}


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def written_by_a_report(target: Path, listed: dict[str, str | None], relative: str) -> bool:
    """Listed in the marker, a plain file, and (where the marker knows it) as it was written:
    a file the user put in its place or edited since is the user's."""
    if relative not in listed or target.is_symlink() or not target.is_file():
        return False
    expected = listed[relative]
    return expected is None or sha256(target) == expected


def refuse_foreign_files(out_dir: Path, planned: list[Path], name: str = "output") -> None:
    """A :class:`UserError` naming the first of ``planned`` that is there and that no report
    wrote (not in the marker, changed since, or not a plain file: a link, a folder): writing
    it would destroy something of the user's."""
    listed = listed_files(out_dir)
    foreign: dict[str, None] = {}  # ordered, no repeats
    for target in planned:
        parent = target.parent
        if parent != out_dir and (parent.is_symlink() or (parent.exists() and not parent.is_dir())):
            foreign[parent.relative_to(out_dir).as_posix()] = None
            continue
        relative = target.relative_to(out_dir).as_posix()
        there = target.exists() or target.is_symlink()
        if there and not written_by_a_report(target, listed, relative):
            foreign[relative] = None
    if foreign:
        first, *rest = foreign
        more = f" (and {len(rest)} more)" if rest else ""
        raise UserError(
            f"{name}={str(out_dir)!r} holds {first}{more}, which this report would write "
            f"but which no report wrote as it is now ({MARKER_NAME} lists those): "
            "move or rename it, or give another folder; nothing in the folder was touched"
        )


def clear_earlier_report(out_dir: Path) -> list[Path]:
    """Remove the files an earlier report listed in its marker (only those, unchanged since,
    and the folders they leave empty); returns what was removed."""
    root = out_dir.resolve()
    listed = listed_files(out_dir)
    removed = []
    for relative in listed:
        target = out_dir / relative
        if not written_by_a_report(target, listed, relative):
            continue
        if not target.resolve().is_relative_to(root):
            continue
        target.unlink()
        removed.append(target)
    for folder in (IMAGES_DIR, TABLES_DIR):
        with contextlib.suppress(OSError):  # only when empty: a file of the user's stays
            (out_dir / folder).rmdir()
    return removed


def write_marker(out_dir: Path, files: dict[str, str | None]) -> None:
    """Replace the marker in one step (a crash never leaves half a list)."""
    temporary = out_dir / f"{MARKER_NAME}.tmp"
    relative = sorted(files)
    sums = {k: files[k] for k in relative if files[k] is not None}
    marker = {"written_by": "aelatent report", "files": relative, "sha256": sums}
    temporary.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, out_dir / MARKER_NAME)
