"""Claimants of one run at the same instant: ``python tests/jobs/claim_race.py RUN_ID N``.

Imports ``train`` (and TensorFlow) once, forks N children that wait on one pipe, releases
them together; each calls ``train.resume_request(RUN_ID)`` (the claim ``train --resume``
makes) and reports ``won`` or ``lost <the one line>``, then stays alive until all have
answered (a claimant that has ended is no longer an owner). Prints the answers as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    from aelatent.errors import UserError
    from aelatent.io import checkpoints  # noqa: F401  TensorFlow, before the fork
    from aelatent.jobs import train

    run_id, n = sys.argv[1], int(sys.argv[2])
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    end_r, end_w = os.pipe()
    for _ in range(n):
        if os.fork() == 0:
            os.read(go_r, 1)
            try:
                train.resume_request(run_id)
                result = "won"
            except UserError as exc:
                result = f"lost {exc}"
            except BaseException as exc:
                result = f"error {exc!r}"
            os.write(out_w, (json.dumps(result) + "\n").encode())
            os.read(end_r, 1)
            os._exit(0)
    time.sleep(1.0)
    os.write(go_w, b"x" * n)
    with os.fdopen(out_r) as results:
        answers = [json.loads(results.readline()) for _ in range(n)]
    os.write(end_w, b"x" * n)
    for _ in range(n):
        os.wait()
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
