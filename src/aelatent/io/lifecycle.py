"""How a job ends when it does not end well: signals, one-line reasons, a live run's owner.

- :func:`stop_signals`: while a job runs, SIGTERM (``timeout``, ``kill``, ``mlflow run``
  cancelling its child) and SIGINT (Ctrl-C) raise :class:`Stopped`, a
  :class:`KeyboardInterrupt`, so both take the same path: the run ends KILLED with the reason
  in its ``error`` tag. Further signals in the next :data:`GRACE_S` seconds are ignored, so
  the run can be closed (``mlflow run`` sends SIGTERM right after the terminal's SIGINT).
- :func:`failure_reason`, :func:`stop_reason`: the one line an ``error`` tag holds.
- :func:`tracking_store_problem`: whether an exception means the tracking store itself cannot
  be used (an unreachable server, a SQLite path that cannot be a database), and why.
- :func:`keep_killed_under_launcher`: ``mlflow run`` marks its run FAILED after the job's
  process exits, whatever status the job gave it (MLflow 3's ``_maybe_set_run_terminated``
  compares a status name with status numbers, so it never sees the run as ended); a small
  detached process waits for the launcher to exit and puts KILLED back.
- :func:`heartbeat`, :func:`live_owner`: a run records the process that works on it
  (``aelatent.owner`` = ``host:pid``) and a heartbeat (``aelatent.heartbeat``, seconds since
  the epoch, renewed every :data:`HEARTBEAT_S`), so ``train -P resume=`` can tell an
  interrupted run from one still training.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

import requests
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

OWNER_TAG = "aelatent.owner"
HEARTBEAT_TAG = "aelatent.heartbeat"
HEARTBEAT_S = 60.0
STALE_S = 300.0  # a run whose heartbeat is older has no live owner (5 missed beats)
GRACE_S = 30.0
SIGNAL_NAMES: dict[int, str] = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
MAX_REASON = 500


class Stopped(KeyboardInterrupt):
    """A stop signal arrived while a job ran (handled like Ctrl-C: the run ends KILLED)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(stop_reason_for(signum))


def stop_reason_for(signum: int) -> str:
    if signum == signal.SIGINT:
        return "interrupted by Ctrl-C (SIGINT)"
    return f"terminated by {SIGNAL_NAMES.get(signum, f'signal {signum}')}"


def stop_reason(exc: BaseException) -> str:
    """The ``error`` tag of a stopped run: which signal stopped it."""
    return stop_reason_for(exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def stop_exit_code(exc: BaseException) -> int:
    """128 + the signal's number, as a shell reports a process a signal ended."""
    return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


def failure_reason(exc: BaseException) -> str:
    """One line for an ``error`` tag: ``TypeName: first line of the message``."""
    if isinstance(exc, SystemExit):
        return f"exited with code {exc.code}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:MAX_REASON]


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Stopped` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first: list[float] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not first:
            first.append(time.monotonic())
            raise Stopped(signum)
        if time.monotonic() - first[0] > GRACE_S:  # closing takes too long: let the signal kill
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        # else: the run is being closed; ignore the repeat

    previous = {signum: signal.signal(signum, handler) for signum in SIGNAL_NAMES}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def keep_killed_under_launcher(run_id: str, reason: str) -> None:
    """Start the detached helper that restores KILLED once ``mlflow run`` (this process's
    parent) has overwritten it with FAILED; best effort, never raises."""
    with suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "aelatent.io.lifecycle", run_id, str(os.getppid()), reason],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )


def restore_killed(
    run_id: str, launcher_pid: int, reason: str, wait_s: float = 120.0, settle_s: float = 15.0
) -> bool:
    """Wait for the launcher to exit, then set the run KILLED again if it is FAILED with
    ``reason`` in its ``error`` tag (a launcher that is slow to write gets ``settle_s``)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _process_exists(launcher_pid):
        time.sleep(0.1)
    client = MlflowClient()
    settle = time.monotonic() + settle_s
    while True:
        run = client.get_run(run_id)
        if run.info.status == "FAILED" and run.data.tags.get("error") == reason:
            client.set_terminated(run_id, "KILLED", end_time=run.info.end_time)
            return True
        if time.monotonic() > settle:
            return False
        time.sleep(0.5)


# ------------------------------------------------------------------- the tracking store


def tracking_store_problem(exc: BaseException, tracking_uri: str) -> str | None:
    """Why the tracking store cannot be used, when ``exc`` came from it; else None.

    Connection and database errors in the exception's chain say so directly; an
    :class:`OSError` or an :class:`~mlflow.exceptions.MlflowException` is checked by asking
    the store one cheap question (HTTP retries off), so a bug elsewhere keeps its traceback.
    """
    import sqlalchemy.exc  # ~150 ms on every job's start; needed only when one fails

    store_errors = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        sqlalchemy.exc.DBAPIError,
    )
    cause = next((e for e in _chain(exc) if isinstance(e, store_errors)), None)
    if cause is not None and _probe(tracking_uri) is not None:
        return _store_message(tracking_uri, cause)
    if isinstance(exc, OSError | MlflowException):
        problem = _probe(tracking_uri)
        if problem is not None:
            return _store_message(tracking_uri, problem)
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _probe(tracking_uri: str) -> BaseException | None:
    """The error of one cheap request to the store (no HTTP retries), or None if it works."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = (
        os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or "10"
    )
    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as problem:  # any failure means the store is unusable
        return problem
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return None


def _store_message(tracking_uri: str, cause: BaseException) -> str:
    """One line: the URI, what went wrong, what to check."""
    server = tracking_uri.startswith(("http://", "https://"))
    if any(isinstance(e, requests.exceptions.ConnectionError) for e in _chain(cause)):
        what = "no connection"
    elif any(isinstance(e, requests.exceptions.Timeout) for e in _chain(cause)):
        what = "the server did not answer in time"
    else:
        what = failure_reason(cause)[:200]
    check = (
        "check that the tracking server is running and the URI is right"
        if server
        else "check that the URI names a database file in a folder you can write, e.g. "
        "sqlite:///mlflow.db"
    )
    if (
        not server
        and not tracking_uri.startswith(("sqlite:", "file:", "/"))
        and "://" in tracking_uri
    ):  # a database server (postgresql://, mysql://, ...)
        check = (
            "check that the database server is running and the URI's host, port, user, "
            "password and database name"
        )
    shown = re.sub(r"(//[^/:@]+):[^@/]*@", r"\1:***@", tracking_uri)  # no password in logs
    return f"the MLflow tracking store MLFLOW_TRACKING_URI={shown} cannot be used ({what}): {check}"


# ---------------------------------------------------------------------- a run's owner


def owner_tags() -> dict[str, str]:
    """This process as a run's owner, with a fresh heartbeat."""
    return {OWNER_TAG: f"{socket.gethostname()}:{os.getpid()}", HEARTBEAT_TAG: f"{time.time():.0f}"}


@contextmanager
def heartbeat(run_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Tag the run with this process as its owner and renew the heartbeat until the block ends."""
    client = MlflowClient()
    for key, value in owner_tags().items():
        client.set_tag(run_id, key, value)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every_s):
            try:
                client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time():.0f}")
            except Exception:  # a missed beat only ages the heartbeat
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat {run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def live_owner(run: Run, now: float | None = None) -> str | None:
    """Who is still working on a RUNNING run (``process 123 on host h, ...``), or None.

    None when the run has ended, records no owner, its heartbeat is older than
    :data:`STALE_S`, or its owner is a process on this machine that no longer exists.
    """
    if run.info.status != "RUNNING":
        return None
    tags = run.data.tags
    owner, beat = tags.get(OWNER_TAG, ""), tags.get(HEARTBEAT_TAG, "")
    host, _, pid_text = owner.rpartition(":")
    try:
        pid, last = int(pid_text), float(beat)
    except ValueError:
        return None
    age = max(0.0, (time.time() if now is None else now) - last)
    if not host or age > STALE_S:
        return None
    if host == socket.gethostname():
        if pid == os.getpid() or not _process_exists(pid):
            return None
        return f"process {pid} on this machine ({host}), last heartbeat {age:.0f} s ago"
    return (
        f"process {pid} on {host}, last heartbeat {age:.0f} s ago; if that process is gone, "
        f"resume after {STALE_S - age:.0f} s"
    )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


if __name__ == "__main__":  # the helper of keep_killed_under_launcher
    restore_killed(sys.argv[1], int(sys.argv[2]), sys.argv[3])
