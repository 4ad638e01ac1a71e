"""The team setup on one machine: PostgreSQL behind an MLflow tracking server and Optuna.

    python -m aelatent.ops.server_stack start [--dir .server] [--host 127.0.0.1] [--workers 2]
    python -m aelatent.ops.server_stack stop  [--dir .server] [--wipe]
    python -m aelatent.ops.server_stack status [--dir .server]

(``make server`` and ``make server-stop`` call the first two.) ``start`` runs

- a PostgreSQL server (Debian's ``postgresql`` package; its ``initdb`` and ``pg_ctl``) on a
  data directory under ``--dir`` and a random free port, password authentication only (no
  Unix socket), with a role ``aelatent`` owning two databases, ``mlflow`` and ``optuna``;
- an ``mlflow server`` on the ``mlflow`` database with proxied artifacts (clients upload
  and download through the server; the files land in ``--dir``/artifacts) and several
  workers, on another free port;

and prints the two URLs to export, as shell lines on stdout (``eval "$(... start)"``), also
written to ``--dir``/env. The URLs hold no password: ``mlflow run`` logs every ``-P`` value
as a run parameter and prints its command line, so the role's password goes to a libpq
password file, ``--dir``/pgpass (mode 600), exported as ``PGPASSFILE`` (psycopg, Optuna,
``optuna-dashboard`` and the tracking server all read it). The ports of a previous start
are taken again when they are free, so exported URLs survive a stop and start. ``stop``
ends exactly the processes ``start`` recorded (the tracking server's process group, checked
against its start time; PostgreSQL through ``pg_ctl stop``) and keeps the data unless
``--wipe``.

PostgreSQL refuses to run as root: under root its programs run as the ``postgres`` user
(``runuser``), which then owns the data directory. When that user cannot reach ``--dir``
(a private temporary folder, say), the database files go to a fresh folder under the
system's temporary directory instead, recorded in the state file and removed by ``--wipe``.

Why one module of this size: PostgreSQL, the tracking server and the state file that records
both start, stop and recover together (a stop must find exactly what a start recorded), and
an operator debugging ``make server`` reads them in one place.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from aelatent.errors import UserError

DEFAULT_DIR = ".server"
STATE_FILE = "stack.json"
ENV_FILE = "env"
PGPASS_FILE = "pgpass"
ROLE = "aelatent"
SUPERUSER = "postgres"
DATABASES = ("mlflow", "optuna")
DEFAULT_WORKERS = 2
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
TRACKING_STOP_S = 10  # the tracking server's in-flight requests end; then SIGKILL
PG_MAX_CONNECTIONS = 200
# psycopg 3 named in the URL: SQLAlchemy 2.1's default for postgresql://, 2.0 needs it said
DRIVER_SCHEME = "postgresql+psycopg"


class StackError(UserError):
    """The stack cannot be started or stopped; the message says what to do."""


@dataclass
class StackState:
    """What ``start`` recorded: enough to print the URLs again and to stop exactly it."""

    root: str
    host: str
    pg_port: int
    mlflow_port: int
    password: str
    superuser_password: str
    pg_dir: str
    workers: int
    mlflow_pid: int | None = None
    mlflow_started: float | None = None

    @property
    def client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.client_host}:{self.mlflow_port}"

    def database_url(self, database: str, password: str | None = None) -> str:
        """The URL of ``database``; without a password (it is in :attr:`pgpass`) unless given."""
        user = ROLE if password is None else f"{ROLE}:{password}"
        return f"{DRIVER_SCHEME}://{user}@{self.client_host}:{self.pg_port}/{database}"

    @property
    def pgpass(self) -> Path:
        """libpq's password file for the role (``PGPASSFILE``)."""
        return Path(self.root) / PGPASS_FILE

    @property
    def storage_url(self) -> str:
        """The Optuna storage URL (``-P storage=...`` of the search)."""
        return self.database_url("optuna")

    @property
    def backend_store_uri(self) -> str:
        return self.database_url("mlflow")

    @property
    def data_dir(self) -> Path:
        return Path(self.pg_dir) / "data"

    @property
    def artifacts(self) -> Path:
        return Path(self.root) / "artifacts"


# --- PostgreSQL programs -----------------------------------------------------------------


def pg_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    raise StackError(
        "PostgreSQL is not installed (no pg_ctl on PATH or under "
        "/usr/lib/postgresql): run `make server` (it installs Debian's postgresql "
        "package) or `sudo apt-get install postgresql`"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when we are root (it refuses root); None otherwise."""
    if not _as_root():
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise StackError(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to "
            "run it as: install Debian's postgresql package (it creates the user) "
            "or start the stack as another user"
        ) from None


def _pg_command(program: str, *args: str) -> list[str]:
    command = [str(pg_bindir() / program), *args]
    if _pg_user() is not None:
        return ["runuser", "-u", SUPERUSER, "--", *command]
    return command


def _run_pg(program: str, *args: str, timeout: float = START_TIMEOUT_S) -> str:
    done = subprocess.run(
        _pg_command(program, *args), capture_output=True, text=True, timeout=timeout, cwd="/"
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise StackError(f"{program} failed ({done.returncode}): {output[-1500:]}")
    return done.stdout


def _reachable_by_pg_user(folder: Path) -> bool:
    user = _pg_user()
    if user is None:
        return True
    done = subprocess.run(
        ["runuser", "-u", SUPERUSER, "--", "test", "-x", str(folder)],
        capture_output=True,
        timeout=30,
    )
    return done.returncode == 0


def _hand_to_pg_user(path: Path) -> None:
    user = _pg_user()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


# --- ports and processes -----------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _process_is(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the process we started (not a recycled pid, not a zombie)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of process group ``pgid`` is left."""
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


# --- state -------------------------------------------------------------------------------


def _state_path(root: Path) -> Path:
    return root / STATE_FILE


def load_state(root: Path) -> StackState | None:
    path = _state_path(root)
    if not path.exists():
        return None
    return StackState(**json.loads(path.read_text()))


def _save_state(state: StackState) -> None:
    root = Path(state.root)
    path = _state_path(root)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(asdict(state), indent=2) + "\n")
    env = root / ENV_FILE
    env.touch(mode=0o600, exist_ok=True)
    env.write_text(export_lines(state))
    state.pgpass.touch(mode=0o600, exist_ok=True)
    state.pgpass.write_text(f"*:{state.pg_port}:*:{ROLE}:{state.password}\n")


def export_lines(state: StackState) -> str:
    return (
        f"export MLFLOW_TRACKING_URI={state.tracking_uri}\n"
        f"export OPTUNA_STORAGE={state.storage_url}\n"
        f"export PGPASSFILE={state.pgpass}\n"
    )


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_running(state: StackState) -> bool:
    if not (state.data_dir / "postmaster.pid").exists():
        return False
    done = subprocess.run(
        _pg_command("pg_ctl", "status", "-D", str(state.data_dir)),
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    return done.returncode == 0


def _init_postgres(state: StackState) -> None:
    """A new cluster: the superuser's password, scram authentication over TCP only."""
    pg_dir = Path(state.pg_dir)
    pg_dir.mkdir(parents=True, exist_ok=True)
    pg_dir.chmod(0o700)
    _hand_to_pg_user(pg_dir)
    pwfile = pg_dir / "pwfile"
    pwfile.write_text(state.superuser_password + "\n")
    _hand_to_pg_user(pwfile)
    try:
        _run_pg(
            "initdb",
            "-D",
            str(state.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    conf = state.data_dir / "postgresql.conf"
    with conf.open("a") as handle:  # appended lines win over the defaults above them
        handle.write(
            "\n# aelatent.ops.server_stack\n"
            "unix_socket_directories = ''\n"
            f"max_connections = {PG_MAX_CONNECTIONS}\n"
        )
    (state.data_dir / "pg_hba.conf").write_text(
        "# aelatent.ops.server_stack: password (scram) over TCP, nothing else\n"
        "host all all all scram-sha-256\n"
    )


def _start_postgres(state: StackState) -> None:
    log = Path(state.pg_dir) / "postgres.log"
    _run_pg(
        "pg_ctl",
        "start",
        "-D",
        str(state.data_dir),
        "-l",
        str(log),
        "-w",
        "-t",
        str(START_TIMEOUT_S),
        "-o",
        f"-p {state.pg_port} -c listen_addresses={state.host}",
    )


def _create_databases(state: StackState) -> None:
    """The role and its two databases, when missing (a restart finds them)."""
    create_databases(state, DATABASES)


def create_databases(state: StackState, names: tuple[str, ...]) -> None:
    """The role, and databases ``names`` it owns, where missing (another Optuna database:
    ``state.database_url(name)``)."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise StackError(
            "the PostgreSQL driver is not installed: pip install -e '.[server]' (psycopg)"
        ) from None
    admin = psycopg.connect(
        host=state.client_host,
        port=state.pg_port,
        user=SUPERUSER,
        password=state.superuser_password,
        dbname="postgres",
        connect_timeout=10,
        autocommit=True,
    )
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL(f"CREATE ROLE {ROLE} LOGIN PASSWORD {{}}").format(
                        sql.Literal(state.password)
                    )
                )
            for database in names:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(database), sql.Identifier(ROLE)
                        )
                    )
    finally:
        admin.close()


def _stop_postgres(state: StackState) -> None:
    if _pg_running(state):
        _run_pg(
            "pg_ctl",
            "stop",
            "-D",
            str(state.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(STOP_TIMEOUT_S),
        )


# --- the tracking server -----------------------------------------------------------------


def _mlflow_command(state: StackState) -> list[str]:
    beside = Path(sys.executable).parent / "mlflow"
    program = [str(beside)] if beside.exists() else [sys.executable, "-m", "mlflow"]
    return [
        *program,
        "server",
        "--host",
        state.host,
        "--port",
        str(state.mlflow_port),
        "--backend-store-uri",
        state.backend_store_uri,
        "--artifacts-destination",
        str(state.artifacts),
        "--workers",
        str(state.workers),
    ]


def start_tracking(state: StackState) -> None:
    """Start the ``mlflow server`` of ``state`` and wait until it answers ``/health``."""
    root = Path(state.root)
    state.artifacts.mkdir(parents=True, exist_ok=True)
    log = (root / "mlflow.log").open("ab")
    process = subprocess.Popen(
        _mlflow_command(state),
        env={**os.environ, "PGPASSFILE": str(state.pgpass)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=root,
    )
    log.close()
    state.mlflow_pid = process.pid
    state.mlflow_started = psutil.Process(process.pid).create_time()
    _save_state(state)
    (root / "mlflow.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{state.tracking_uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_tracking(state)
            tail = (root / "mlflow.log").read_text(errors="replace")[-1500:]
            raise StackError(f"the mlflow server did not start (see {root / 'mlflow.log'}): {tail}")
        time.sleep(0.3)


def stop_tracking(state: StackState) -> None:
    """End the tracking server's process group (its workers too): SIGTERM, then SIGKILL."""
    pid = state.mlflow_pid
    if pid and _process_is(pid, state.mlflow_started):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + TRACKING_STOP_S
        while _group_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child (a test's): reap it
            time.sleep(0.1)
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # workers that outlived the parent
    with contextlib.suppress(ChildProcessError):
        if pid:
            os.waitpid(pid, os.WNOHANG)
    state.mlflow_pid = state.mlflow_started = None
    (Path(state.root) / "mlflow.pid").unlink(missing_ok=True)
    _save_state(state)


def restart_tracking(state: StackState) -> None:
    """Stop the tracking server and start it again on the same port (data kept)."""
    stop_tracking(state)
    start_tracking(state)


# --- the stack ---------------------------------------------------------------------------


def start(
    root: Path | str = DEFAULT_DIR, *, host: str = "127.0.0.1", workers: int = DEFAULT_WORKERS
) -> StackState:
    """Start PostgreSQL and the tracking server (what is running already is kept)."""
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    pg_bindir()  # installed?
    state = load_state(root)
    if state is None:
        pg_dir = root / "pg"
        if not _reachable_by_pg_user(root):
            pg_dir = Path(tempfile.mkdtemp(prefix="aelatent-pg-"))
            print(
                f"aelatent server: the 'postgres' user cannot reach {root}; the database "
                f"files go to {pg_dir}",
                file=sys.stderr,
            )
        state = StackState(
            root=str(root),
            host=host,
            pg_port=0,
            mlflow_port=0,
            password=secrets.token_urlsafe(18),
            superuser_password=secrets.token_urlsafe(18),
            pg_dir=str(pg_dir),
            workers=workers,
        )
    state.workers = workers
    if state.host != host:  # listen elsewhere (the ports are chosen again below)
        stop(root)
        state = load_state(root) or state
        state.host = host
    if not _pg_running(state):
        if not (state.data_dir / "PG_VERSION").exists():
            _init_postgres(state)
        if not state.pg_port or not _port_free(host, state.pg_port):
            state.pg_port = free_port(host)
        _save_state(state)
        _start_postgres(state)
    _create_databases(state)
    if not _process_is(state.mlflow_pid, state.mlflow_started):
        if not state.mlflow_port or not _port_free(host, state.mlflow_port):
            state.mlflow_port = free_port(host)
        start_tracking(state)
    _save_state(state)
    return state


def stop(root: Path | str = DEFAULT_DIR, *, wipe: bool = False) -> StackState | None:
    """Stop what :func:`start` started in ``root``; ``wipe`` also removes the data."""
    root = Path(root).resolve()
    state = load_state(root)
    if state is None:
        return None
    stop_tracking(state)
    _stop_postgres(state)
    if wipe:
        shutil.rmtree(state.pg_dir, ignore_errors=True)
        shutil.rmtree(state.artifacts, ignore_errors=True)
        for name in (STATE_FILE, ENV_FILE, PGPASS_FILE, "mlflow.log"):
            (root / name).unlink(missing_ok=True)
    return state


def status(root: Path | str = DEFAULT_DIR) -> str:
    state = load_state(Path(root).resolve())
    if state is None:
        return "not started"
    pg = f"PostgreSQL on port {state.pg_port}: " + ("running" if _pg_running(state) else "stopped")
    running = _process_is(state.mlflow_pid, state.mlflow_started)
    tracking = f"mlflow server {state.tracking_uri}: " + ("running" if running else "stopped")
    return f"{pg}; {tracking}"


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m aelatent.ops.server_stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", default=DEFAULT_DIR, help="where data, logs and state go")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address both servers listen on (0.0.0.0: every interface)",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="worker processes of the mlflow server"
    )
    parser.add_argument("--wipe", action="store_true", help="stop: remove the data too")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            state = start(args.dir, host=args.host, workers=max(1, args.workers))
            print(
                f"aelatent server: PostgreSQL on {state.host}:{state.pg_port} (data "
                f"{state.data_dir}), mlflow server {state.tracking_uri} ({state.workers} "
                f"workers, artifacts {state.artifacts}); stop both with `make server-stop`. "
                f"Export (also in {Path(state.root) / ENV_FILE}):",
                file=sys.stderr,
            )
            print(export_lines(state), end="")
            print(
                "then e.g.: mlflow run . -e search -P storage=$OPTUNA_STORAGE --env-manager local",
                file=sys.stderr,
            )
        elif args.action == "stop":
            stopped = stop(args.dir, wipe=args.wipe)
            done = "stopped" + (" and wiped" if args.wipe else "")
            what = done if stopped else f"nothing was started in {args.dir}"
            print(f"aelatent server: {what}", file=sys.stderr)
        else:
            print(f"aelatent server: {status(args.dir)}")
    except (StackError, subprocess.SubprocessError, OSError) as exc:
        print(f"aelatent server: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    cli()
