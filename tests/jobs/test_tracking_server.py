"""Against a real MLflow tracking server: train, evaluate and report over HTTP, with the
server proxying artifacts, and the report downloaded back through the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest import BIN, TINY_TRAIN, mlflow_run, newest_run

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError((root / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield url, root
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_train_evaluate_report_through_a_server(server, tmp_path, monkeypatch):
    url, root = server
    trained = mlflow_run("train", TINY_TRAIN, url)
    assert trained.returncode == 0, trained.output[-3000:]
    original_uri = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    try:
        train_run = newest_run("tags.entry_point = 'train'")
        assert train_run.info.status == "FINISHED"
        assert train_run.info.artifact_uri.startswith("mlflow-artifacts:")
        evaluated = mlflow_run("evaluate", {
            "train_run": train_run.info.run_id, "sampler": "uniform", "b": "1,2", "k": "1,2",
            "n_samples": "2000", "n_decoded": "4",
        }, url)
        assert evaluated.returncode == 0, evaluated.output[-3000:]
        reported = mlflow_run("report", {"output": str(tmp_path / "out")}, url)
        assert reported.returncode == 0, reported.output[-3000:]

        report_run = newest_run("tags.entry_point = 'report'")
        html = mlflow.artifacts.download_artifacts(
            run_id=report_run.info.run_id, artifact_path="report/report.html",
            dst_path=str(tmp_path / "downloaded"),
        )
        text = Path(html).read_text(encoding="utf-8")
        assert "data:image/png;base64," in text
        assert train_run.info.run_id[:8] in text
        # The server, not the client, wrote the artifacts (proxied artifact access).
        stored = list((root / "artifacts").rglob("report.html"))
        assert stored, "the report was not stored under the server's artifact destination"
    finally:
        mlflow.set_tracking_uri(original_uri)
