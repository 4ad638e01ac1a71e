"""Start entry points many times, fast: import them once, then fork a child per request.

``python tests/jobs/fork_jobs.py aelatent.jobs.search [more modules]`` reads requests from
stdin, one a line: a JSON object ``{"module": ..., "argv": [...], "log": "<path>"}``. For
each it forks a child that runs ``<module>.cli(argv)`` with its stdout and stderr in
``log``, prints ``pid <pid>`` at once and ``rc <pid> <exit code>`` when the child has ended
(a child a signal ended: 128 + the signal). With ``"term_at_write": n`` the child sends
itself SIGTERM right after its n-th SQL write statement has executed (on any SQLAlchemy
engine: the MLflow store, Optuna's storage), inside that statement's transaction, before
its commit: where a signal from outside lands now and then.

This process never opens the tracking store, so the children share no connection; each is
a real job in a process of its own, and starts in a moment instead of the seconds a fresh
interpreter takes to import MLflow, Optuna and NumPy.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback


def _term_at_write(n: int) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    writes = [0]

    def after_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes[0] += 1
            if writes[0] == n:
                print(f"fork_jobs: SIGTERM inside write {n}: {statement[:60]!r}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    event.listen(Engine, "after_cursor_execute", after_execute)


def _child(module: object, request: dict) -> None:
    code = 0
    try:
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if request.get("term_at_write"):
            _term_at_write(int(request["term_at_write"]))
        module.cli(request["argv"])  # type: ignore[attr-defined]
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    modules = {name: importlib.import_module(name) for name in sys.argv[1:]}
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(modules[request["module"]], request)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        print(f"rc {pid} {code if code >= 0 else 128 - code}", flush=True)


if __name__ == "__main__":
    main()
