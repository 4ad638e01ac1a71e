"""The URL that opens the MLflow UI on the runs table of the experiment ``aelatent``.

MLflow 3's UI opens an experiment on its GenAI overview unless the URL asks for the
machine-learning view (``workflowType=machine_learning``; the UI also remembers the last
choice in the browser's storage). ``make ui`` prints this URL before it starts the UI:

    .venv/bin/python scripts/ui_url.py [--host 127.0.0.1] [--port 5000]

The store is ``MLFLOW_TRACKING_URI`` (the Makefile's ``sqlite:///mlflow.db``); nothing is
written to it (an experiment that does not exist yet is not made).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Sequence

EXPERIMENT = "aelatent"  # aelatent.io.experiment.EXPERIMENT_NAME
ML_VIEW = {"workflowType": "machine_learning"}


def runs_table_url(host: str, port: int, experiment_id: str | None) -> str:
    """``http://host:port/#/experiments/<id>?workflowType=machine_learning``; without an
    experiment id, the experiments list in the same view."""
    base = f"http://{host}:{port}/#/experiments"
    if experiment_id is not None:
        base += f"/{urllib.parse.quote(experiment_id)}"
    return f"{base}?{urllib.parse.urlencode(ML_VIEW)}"


def experiment_id(tracking_uri: str, name: str = EXPERIMENT) -> str | None:
    """The id of experiment ``name`` in the store, or None (also for a store that does not
    exist yet: it is not created)."""
    if tracking_uri.startswith("sqlite:///"):
        path = tracking_uri.removeprefix("sqlite:///")
        if not os.path.exists(path):
            return None
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--experiment", default=EXPERIMENT)
    args = parser.parse_args(argv)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    found = experiment_id(uri, args.experiment)
    if found is None:
        print(f"No experiment {args.experiment!r} in {uri} yet (make demo makes it).")
    print(f"MLflow UI, runs table: {runs_table_url(args.host, args.port, found)}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
