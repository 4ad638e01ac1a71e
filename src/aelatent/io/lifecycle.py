"""How a job ends when it does not end well: signals, one-line reasons, a live run's owner.

- :func:`stop_signals`: while a job runs, SIGTERM (``timeout``, ``kill``, ``mlflow run``
  cancelling its child) and SIGINT (Ctrl-C) raise :class:`Stopped`, a
  :class:`KeyboardInterrupt`, so both take the same path: the run ends KILLED with the reason
  in its ``error`` tag. A signal that arrives while the job is inside the tracking store or
  Optuna's storage (MLflow, SQLAlchemy, a database driver, HTTP) takes effect when that call
  has returned, never in the middle of a commit (:data:`DEFER_GRACE_S` at most). Further
  signals in the next :data:`GRACE_S` seconds are ignored, so the run can be closed
  (``mlflow run`` sends SIGTERM right after the terminal's SIGINT). Under ``mlflow run``, the
  job also stops (KILLED) when its launcher ends first (``kill <pid of mlflow run>``): the
  launcher does not pass its SIGTERM on.
- :func:`failure_reason`, :func:`stop_reason`: the one line an ``error`` tag holds.
- :func:`tracking_store_problem`: whether an exception means the tracking store itself cannot
  be used (an unreachable server, a SQLite path that cannot be a database), and why.
- :func:`keep_killed_under_launcher`: ``mlflow run`` marks its run FAILED after the job's
  process exits, whatever status the job gave it (MLflow 3's ``_maybe_set_run_terminated``
  compares a status name with status numbers, so it never sees the run as ended); a small
  detached process waits for the launcher to exit and puts KILLED back.
- :func:`heartbeat`, :func:`live_owner`: every job's run records the process that works on it
  (``aelatent.owner`` = ``host:pid``, ``aelatent.owner_started``: that process's start time,
  so a reused pid is not taken for it) and a heartbeat (``aelatent.heartbeat``, seconds since
  the epoch, renewed every :data:`HEARTBEAT_S`); a nested run belongs to its parent's owner.
- :func:`claim_run`: ``train -P resume=`` claims the run atomically (a parameter
  ``aelatent.claim.<n>``: the store's primary key lets exactly one claimant write it), so two
  resumes at once cannot both train.
- :func:`close_dead_runs`: a RUNNING run whose owner is known dead (a process gone on this
  machine; on another machine, no heartbeat for :data:`STALE_S`) is closed KILLED with the
  reason; every job does it when it starts, and
  ``python -m aelatent.io.lifecycle close-dead-runs [--dry-run]`` does it for a store.

Why one module (over 500 lines): ``python -m aelatent.io.lifecycle`` is a command the docs
give users and the one :func:`keep_killed_under_launcher` starts, so the owners, claims, dead
runs and the launcher's KILLED it runs stay here with the :class:`Owner` record they share.
The signal handling (:func:`stop_signals` and its helpers, about 250 lines) shares nothing
with them but :func:`stop_reason`, and is the part to move out first when this one grows.
A full disk or a vanished store is :mod:`aelatent.io.exhaustion`'s.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

import psutil
import requests
from mlflow.entities import Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

OWNER_TAG = "aelatent.owner"
OWNER_STARTED_TAG = "aelatent.owner_started"
OWNER_PID_NAMESPACE_TAG = "aelatent.owner_pid_namespace"
HEARTBEAT_TAG = "aelatent.heartbeat"
CLAIM_PREFIX = "aelatent.claim."  # parameters aelatent.claim.1, .2, ...: one per resume
PARENT_TAG = "mlflow.parentRunId"
ERROR_TAG = "error"
HEARTBEAT_S = 60.0
STALE_S = 300.0  # a run whose heartbeat is older has no live owner (5 missed beats)
GRACE_S = 30.0
DEFER_GRACE_S = 30.0  # a signal waits this long at most for a store call to return
LAUNCHER_POLL_S = 0.5
SIGNAL_NAMES: dict[int, str] = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
MAX_REASON = 500
# Code a signal must not interrupt: the tracking store, Optuna's storage and their transports.
# The innermost frame of the stack that belongs to one of these, or to aelatent, decides.
STORE_PACKAGES = frozenset(
    {
        "mlflow",
        "optuna",
        "sqlalchemy",
        "alembic",
        "sqlite3",
        "psycopg",
        "psycopg2",
        "pymysql",
        "requests",
        "urllib3",
        "http",
    }
)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived while a job ran (handled like Ctrl-C: the run ends KILLED)."""

    def __init__(self, signum: int, reason: str | None = None) -> None:
        self.signum = signum
        self.reason = reason or stop_reason_for(signum)
        super().__init__(self.reason)


def stop_reason_for(signum: int) -> str:
    if signum == signal.SIGINT:
        return "interrupted by Ctrl-C (SIGINT)"
    return f"terminated by {SIGNAL_NAMES.get(signum, f'signal {signum}')}"


def stop_reason(exc: BaseException) -> str:
    """The ``error`` tag of a stopped run: which signal (or what) stopped it."""
    return exc.reason if isinstance(exc, Stopped) else stop_reason_for(signal.SIGINT)


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


OPTIMIZE_LOOP = frozenset({"optuna.study.study", "optuna.study._optimize"})
"""Optuna's trial loop: it calls the job's objective and is in no store call itself."""


def _own_frame(frame: FrameType | None) -> bool:
    """Whether ``frame`` is aelatent's (and not this module's, the signal handling)."""
    module = "" if frame is None else str(frame.f_globals.get("__name__", ""))
    return module.partition(".")[0] == "aelatent" and module != __name__


def inside_store_call(frame: FrameType | None) -> bool:
    """Whether any frame of the stack is a store library's (outside Optuna's trial loop): the
    job is in the middle of a tracking-store or Optuna-storage call, or in a callback of one
    (a sampler's ``after_trial`` runs inside Optuna's ``tell``: stopping there left a
    traceback). This module's frames, the signal handling itself, are looked through."""
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] in STORE_PACKAGES and module not in OPTIMIZE_LOOP:
            return True
        frame = frame.f_back
    return False


class _SignalStopper:
    """The state and the handlers of one :func:`stop_signals` block: the signal waiting for
    a store call to end, when :class:`Stopped` was raised, and why the launcher's end
    stopped the job."""

    def __init__(self, launcher_pid: int | None) -> None:
        self.main_id = threading.get_ident()
        self.pending: tuple[int, float] | None = None  # (signal, when it first arrived)
        self.raised_at: float | None = None
        self.closing = False
        self.launcher_reason: str | None = None
        self.watching = False  # the profile hook that finds the safe point is on
        self.previous_profile: object = None
        self.done = threading.Event()
        self.threads: list[threading.Thread] = []
        self.previous = {signum: signal.signal(signum, self.handler) for signum in SIGNAL_NAMES}
        if launcher_pid is not None:
            self._start(self.watch_launcher, launcher_pid)

    def _start(self, target: Callable[[int], None], argument: int) -> None:
        thread = threading.Thread(target=target, args=(argument,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _unwatch(self) -> None:
        if self.watching:
            sys.setprofile(self.previous_profile)  # type: ignore[arg-type]
            self.watching = False

    def stop_now(self) -> NoReturn:
        self._unwatch()
        assert self.pending is not None
        first = self.pending[0]
        self.raised_at = time.monotonic()
        raise Stopped(first, self.launcher_reason if first == signal.SIGTERM else None)

    def at_safe_point(self, frame: FrameType, event: str, arg: object) -> None:
        if self.raised_at is not None or self.closing or self.pending is None:
            return
        if event == "call":
            current: FrameType | None = frame
        elif event == "return":
            current = frame.f_back
        else:  # C calls: not a frame of the job's
            return
        overdue = time.monotonic() - self.pending[1] >= DEFER_GRACE_S
        # raised only into the job's own frame: raised into Optuna's trial loop (on the
        # return from the objective) it broke the loop's own bookkeeping (a traceback)
        if overdue or (_own_frame(current) and not inside_store_call(current)):
            self.stop_now()

    def deadline(self, signum: int) -> None:
        """A store call blocked past the grace: stop anyway."""
        if not self.done.wait(DEFER_GRACE_S + 0.1) and self.raised_at is None:
            signal.pthread_kill(self.main_id, signum)

    def handler(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.closing:
            return
        if self.raised_at is not None:
            if now - self.raised_at > GRACE_S:  # closing takes too long: let the signal kill
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return  # else: the run is being closed; ignore the repeat
        if self.pending is None:
            self.pending = (signum, now)
        if now - self.pending[1] < DEFER_GRACE_S and inside_store_call(frame):
            if not self.watching:  # wait for the store call to return
                self._start(self.deadline, signum)
                self.previous_profile = sys.getprofile()
                self.watching = True
                sys.setprofile(self.at_safe_point)  # last: this handler's calls are not watched
            return
        self.stop_now()

    def watch_launcher(self, pid: int) -> None:
        while not self.done.wait(LAUNCHER_POLL_S):
            if os.getppid() != pid:
                self.launcher_reason = (
                    f"terminated: its `mlflow run` launcher (pid {pid}) ended while it ran"
                )
                signal.pthread_kill(self.main_id, signal.SIGTERM)
                return

    def close(self) -> None:
        self.closing = True  # a late signal must not raise here
        self._unwatch()
        self.done.set()
        for thread in self.threads:
            thread.join()
        for signum, old in self.previous.items():
            signal.signal(signum, old)


@contextmanager
def stop_signals(launcher_pid: int | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Stopped` inside the block (main thread only), after
    any tracking-store call in progress has returned. ``launcher_pid``: the ``mlflow run``
    that started this job; when it ends first, the block is stopped as by SIGTERM.

    A signal that finds the job inside a store call (:func:`inside_store_call`) turns on a
    profile hook (``sys.setprofile``, this thread only) that raises :class:`Stopped` at the
    first call into, or return to, code outside the store's libraries: the store call has
    then completed, so no transaction is cut in half. After :data:`DEFER_GRACE_S` it is
    raised wherever the job is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopper = _SignalStopper(launcher_pid)
    try:
        yield
    finally:
        stopper.close()


def mlflow_run_launcher() -> int | None:
    """The pid of the ``mlflow run`` that started this job (its parent), or None."""
    if not os.environ.get("MLFLOW_RUN_ID"):
        return None
    pid = os.getppid()
    try:
        words = [os.path.basename(word) for word in psutil.Process(pid).cmdline()]
    except (psutil.Error, OSError):
        return None
    for first, second in itertools.pairwise(words):
        if first in ("mlflow", "mlflow.exe") and second == "run":
            return pid
    return None


def keep_killed_under_launcher(run_id: str, reason: str) -> None:
    """Start the detached helper that restores KILLED once ``mlflow run`` (this process's
    parent) has overwritten it with FAILED; best effort, never raises."""
    with suppress(OSError):
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aelatent.io.lifecycle",
                "restore-killed",
                run_id,
                str(os.getppid()),
                reason,
            ],
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
    with no_http_retries():
        try:
            MlflowClient(tracking_uri).search_experiments(max_results=1)
        except Exception as problem:  # any failure means the store is unusable
            return problem
    return None


def _store_message(tracking_uri: str, cause: BaseException) -> str:
    """One line: the URI, what went wrong, what to check."""
    server = tracking_uri.startswith(("http://", "https://"))
    if any(isinstance(e, requests.exceptions.ConnectionError) for e in _chain(cause)):
        what = "no connection"
    elif any(isinstance(e, requests.exceptions.Timeout) for e in _chain(cause)):
        what = "the server did not answer in time"
    elif (plain := _plain_path(tracking_uri)) is not None and plain.is_file():
        what = f"{plain} is a file, neither a database nor a folder of runs"
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
    shown = shown_uri(tracking_uri)
    return f"the MLflow tracking store MLFLOW_TRACKING_URI={shown} cannot be used ({what}): {check}"


def _plain_path(tracking_uri: str) -> Path | None:
    """The local path of a tracking URI without a scheme or with ``file:``, else None."""
    if "://" in tracking_uri and not tracking_uri.startswith("file:"):
        return None
    if tracking_uri.startswith("file:"):
        from urllib.parse import urlparse

        return Path(urlparse(tracking_uri).path or ".").absolute()
    return None if ":" in tracking_uri.split("/")[0] else Path(tracking_uri).absolute()


class _RaisedOnAnyway(logging.Filter):
    """Drops MLflow's ERROR log (with a traceback) of a database error that it raises on as
    an :class:`~mlflow.exceptions.MlflowException` anyway: the job reports that exception in
    one line (a full disk, a vanished store), or with its traceback (a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


def quiet_store_error_logs() -> None:
    """Install :class:`_RaisedOnAnyway` on MLflow's database-session logger (once)."""
    store_logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _RaisedOnAnyway) for f in store_logger.filters):
        store_logger.addFilter(_RaisedOnAnyway())


def shown_uri(tracking_uri: str) -> str:
    """The URI as a message may show it: a password replaced by ``***``."""
    return re.sub(r"(//[^/:@]+):[^@/]*@", r"\1:***@", tracking_uri)  # no password in logs


def store_problem(tracking_uri: str) -> str | None:
    """Why the tracking store at ``tracking_uri`` cannot be used now (one line naming the
    URI), or None when one cheap question to it is answered."""
    problem = _probe(tracking_uri)
    return None if problem is None else _store_message(tracking_uri, problem)


# ---------------------------------------------------------------------- a run's owner


@dataclass(frozen=True)
class Owner:
    """A process that works (or worked) on a run, and its last sign of life."""

    host: str
    pid: int
    started: float | None  # the process's start time (psutil), None when not recorded
    seen: float  # seconds since the epoch: its last heartbeat or claim
    pid_namespace: str = ""  # Linux: containers that share a host name have their own pids

    @classmethod
    def this_process(cls) -> Owner:
        return cls(
            socket.gethostname(),
            os.getpid(),
            _process_started(os.getpid()),
            time.time(),
            _pid_namespace(),
        )

    @classmethod
    def of_tags(cls, tags: dict[str, str]) -> Owner | None:
        host, _, pid_text = tags.get(OWNER_TAG, "").rpartition(":")
        try:
            pid, seen = int(pid_text), float(tags.get(HEARTBEAT_TAG, ""))
        except ValueError:
            return None
        started = _float_or_none(tags.get(OWNER_STARTED_TAG))
        namespace = tags.get(OWNER_PID_NAMESPACE_TAG, "")
        return cls(host, pid, started, seen, namespace) if host else None

    @classmethod
    def of_claim(cls, value: str) -> Owner | None:
        parts = value.rsplit(":", 4)
        try:
            host, pid, started, seen = parts[0], int(parts[1]), parts[2], float(parts[3])
            namespace = parts[4]
        except (IndexError, ValueError):
            return None
        return cls(host, pid, _float_or_none(started), seen, namespace) if host else None

    def claim_value(self) -> str:
        started = "" if self.started is None else f"{self.started:.2f}"
        return f"{self.host}:{self.pid}:{started}:{self.seen:.0f}:{self.pid_namespace}"

    def on_this_machine(self) -> bool:
        """Same host name, and (where both are known) the same pid namespace."""
        mine = _pid_namespace()
        return self.host == socket.gethostname() and (
            not self.pid_namespace or not mine or self.pid_namespace == mine
        )

    def is_this_process(self) -> bool:
        if not self.on_this_machine() or self.pid != os.getpid():
            return False
        started = _process_started(self.pid)
        return self.started is None or started is None or abs(started - self.started) < 1.0

    def state(self, now: float | None = None) -> tuple[bool, str]:
        """(alive, what is known of it): on this machine, whether the process exists (and is
        the one that started then); elsewhere, whether it beat in the last :data:`STALE_S`."""
        age = max(0.0, (time.time() if now is None else now) - self.seen)
        if self.on_this_machine():
            started = _process_started(self.pid)
            alive = started is not None and (
                self.started is None or abs(started - self.started) < 1.0
            )
            if alive:
                return True, f"process {self.pid} on this machine ({self.host})"
            return False, f"its process {self.pid} on this machine ({self.host}) is gone"
        if age <= STALE_S:
            return True, (
                f"process {self.pid} on {self.host}, last heartbeat {age:.0f} s ago; if that "
                f"process is gone, resume after {STALE_S - age:.0f} s"
            )
        return False, f"no heartbeat from its process {self.pid} on {self.host} for {age:.0f} s"


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _pid_namespace() -> str:
    """This process's pid namespace (Linux: the inode of /proc/self/ns/pid), or ""."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _process_started(pid: int) -> float | None:
    """When the process started (seconds since the epoch), or None when there is none."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError, ValueError):
        return None


def owner_tags() -> dict[str, str]:
    """This process as a run's owner, with a fresh heartbeat."""
    me = Owner.this_process()
    tags = {
        OWNER_TAG: f"{me.host}:{me.pid}",
        OWNER_STARTED_TAG: "" if me.started is None else f"{me.started:.2f}",
        OWNER_PID_NAMESPACE_TAG: me.pid_namespace,
        HEARTBEAT_TAG: f"{me.seen:.0f}",
    }
    return {key: value for key, value in tags.items() if value}


@contextmanager
def heartbeat(run_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Tag the run with this process as its owner and renew the heartbeat until the block ends."""
    client = MlflowClient()
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in owner_tags().items()])
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


def latest_claim(run: Run) -> tuple[int, Owner | None]:
    """The number of the run's latest resume claim (0: none) and who made it."""
    numbers = {
        int(key[len(CLAIM_PREFIX) :]): value
        for key, value in run.data.params.items()
        if key.startswith(CLAIM_PREFIX) and key[len(CLAIM_PREFIX) :].isdigit()
    }
    if not numbers:
        return 0, None
    number = max(numbers)
    return number, Owner.of_claim(numbers[number])


def live_owner(run: Run, now: float | None = None) -> str | None:
    """Who is still working on a run (``process 123 on host h, ...``), or None.

    The owner of a RUNNING run (its tags), or the process whose claim to resume it is the
    latest: None when neither exists, is this very process, is a process on this machine
    that no longer exists, or (on another machine) has not beaten for :data:`STALE_S`.
    """
    if run.info.status == "FINISHED":
        return None
    candidates: list[tuple[Owner, str]] = []
    owner = Owner.of_tags(run.data.tags) if run.info.status == "RUNNING" else None
    if owner is not None:
        candidates.append((owner, ""))
    _, claimant = latest_claim(run)
    if claimant is not None:
        candidates.append((claimant, ", which claimed it to resume it"))
    for candidate, what in candidates:
        if candidate.is_this_process():
            continue
        alive, description = candidate.state(now)
        if alive:
            age = max(0.0, (time.time() if now is None else now) - candidate.seen)
            if candidate.on_this_machine():
                description += f"{what}, last heartbeat {age:.0f} s ago"
            return description
    return None


def claim_run(run_id: str, attempts: int = 6) -> str | None:
    """Make this process the one that resumes the run, atomically; None when it is, else who
    is (the live owner, or the claimant that was first).

    A claim is the parameter ``aelatent.claim.<n+1>`` (``n``: the latest claim) with this
    process's identity as its value. A run's parameters are rows under a primary key (run,
    key) in the store's database (SQLite or PostgreSQL, directly or behind ``mlflow server``),
    so of two claimants that write the same key at once exactly one insert succeeds and the
    other is refused; each then reads the key back and learns which one it is. (Tags cannot do
    this: MLflow overwrites a tag, and a check before a write is a race.)
    """
    client = MlflowClient()
    me = Owner.this_process()
    mine = me.claim_value()
    problem: Exception | None = None
    for attempt in range(attempts):
        run = client.get_run(run_id)
        number, latest = latest_claim(run)
        if latest is not None and latest.is_this_process():  # already ours (an earlier try)
            return None
        owner = live_owner(run)
        if owner is not None:
            return owner
        key = f"{CLAIM_PREFIX}{number + 1}"
        try:
            client.log_param(run_id, key, mine)
        except Exception as exc:  # refused (another claimant was first), or the store hiccuped
            problem = exc
        value = client.get_run(run_id).data.params.get(key)
        if value == mine:
            return None
        winner = Owner.of_claim(value) if value is not None else None
        if winner is not None:
            _, description = winner.state()
            return f"{description}, which claimed it to resume it first"
        time.sleep(0.2 * (attempt + 1))
    raise problem or MlflowException(f"could not claim run {run_id} to resume it")


# ------------------------------------------------------------ runs whose owner is dead


@dataclass(frozen=True)
class DeadRun:
    run: Run
    reason: str


def dead_runs(client: MlflowClient | None = None, now: float | None = None) -> list[DeadRun]:
    """Every RUNNING run of the store whose owner is known dead, with the reason.

    A top-level run is judged by its owner tags and its latest resume claim (either alive:
    alive); a run without either is left alone (nothing tells). A nested run (a trial, a
    step of ``main``) belongs to its parent: it is dead when the parent has ended or is
    dead, or when its own recorded owner is.
    """
    import mlflow  # the fluent search pages over every experiment

    client = client or MlflowClient()
    running = {
        run.info.run_id: run
        for run in mlflow.search_runs(
            search_all_experiments=True,
            filter_string="attributes.status = 'RUNNING'",
            output_format="list",
        )
    }
    verdicts: dict[str, str | None] = {}  # run id -> reason it is dead, None: alive/unknown

    def verdict(run_id: str, depth: int = 0) -> str | None:
        if run_id in verdicts:
            return verdicts[run_id]
        verdicts[run_id] = None  # a cycle (never made by MLflow) stays unjudged
        run = running[run_id]
        reason = _own_verdict(run, now)
        parent_id = run.data.tags.get(PARENT_TAG)
        if reason is None and parent_id and depth < 50:
            if parent_id in running:
                parent_reason = verdict(parent_id, depth + 1)
                if parent_reason is not None:
                    reason = f"its parent run {parent_id} was left RUNNING: {parent_reason}"
            else:
                status = _status_of(client, parent_id)
                if status is not None and status != "RUNNING":
                    reason = f"its parent run {parent_id} ended ({status}) before it"
        verdicts[run_id] = reason
        return reason

    return [
        DeadRun(running[run_id], reason)
        for run_id in running
        if (reason := verdict(run_id)) is not None
    ]


def _own_verdict(run: Run, now: float | None) -> str | None:
    """Why the run's own recorded owner (and latest claimant) is dead, or None."""
    owner = Owner.of_tags(run.data.tags)
    _, claimant = latest_claim(run)
    known = [o for o in (owner, claimant) if o is not None]
    if not known:
        return None
    reasons = []
    for candidate in known:
        if candidate.is_this_process():
            return None
        alive, description = candidate.state(now)
        if alive:
            return None
        reasons.append(description)
    return reasons[0]


def _status_of(client: MlflowClient, run_id: str) -> str | None:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return "deleted"
    return "deleted" if run.info.lifecycle_stage == "deleted" else run.info.status


def close_dead_runs(
    *, dry_run: bool = False, by: str = "", out: TextIO | None = None
) -> list[DeadRun]:
    """Close every run :func:`dead_runs` finds: KILLED, the reason in its ``error`` tag (kept
    when it has one), a line each on ``out`` (stderr by default). Returns them."""
    client = MlflowClient()
    found = dead_runs(client)
    stream = out if out is not None else sys.stderr
    for dead in found:
        run_id = dead.run.info.run_id
        reason = f"left RUNNING: {dead.reason}" + (f" (closed by {by})" if by else "")
        if not dry_run:
            try:
                if ERROR_TAG not in dead.run.data.tags:
                    client.set_tag(run_id, ERROR_TAG, reason[:5000])
                if client.get_run(run_id).info.status == "RUNNING":
                    client.set_terminated(run_id, "KILLED")
            except MlflowException as exc:  # deleted meanwhile, or the store refused: say so
                print(f"aelatent: could not close run {run_id}: {failure_reason(exc)}", file=stream)
                continue
        name = dead.run.data.tags.get("mlflow.runName", "")
        what = "would mark" if dry_run else "marked"
        print(f"aelatent: run {run_id} ({name}) {reason}: {what} it KILLED", file=stream)
    return found


@contextmanager
def no_http_retries() -> Iterator[None]:
    """MLflow's HTTP retries off (and a 10 s timeout unless set) inside the block."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = (
        os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or "10"
    )
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def _cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aelatent.io.lifecycle",
        description="Close the runs of MLFLOW_TRACKING_URI's store whose process is dead.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    close = commands.add_parser(
        "close-dead-runs",
        help="mark KILLED every RUNNING run whose owner is gone (this machine: its process "
        f"does not exist; another machine: no heartbeat for {STALE_S:.0f} s)",
    )
    close.add_argument("--dry-run", action="store_true", help="only list them")
    restore = commands.add_parser("restore-killed", help="(keep_killed_under_launcher's helper)")
    restore.add_argument("run_id")
    restore.add_argument("launcher_pid", type=int)
    restore.add_argument("reason")
    args = parser.parse_args(argv)
    if args.command == "restore-killed":
        restore_killed(args.run_id, args.launcher_pid, args.reason)
        return 0
    found = close_dead_runs(dry_run=args.dry_run, out=sys.stdout)
    if not found:
        print("aelatent: no run is left RUNNING by a dead process")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
