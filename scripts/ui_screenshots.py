"""Screenshots of the MLflow UI for the README (``docs/img/*.png``), taken from a real study.

A tiny study (train case I and II, one evaluate run that logs a generator) goes into a
temporary SQLite store, never the project's ``mlflow.db``; ``mlflow server`` shows it on a
free loopback port and headless Chromium (``make browser``) photographs four pages: the
runs table filtered by case, the compare view of the two train runs, the evaluate run's
hit-rate table, and the served generator's answer (``mlflow models serve``, rendered into
a small HTML page). The PNGs are quantized to a palette so the repository stays small.

    .venv/bin/python scripts/ui_screenshots.py            # or: make screenshots
    .venv/bin/python scripts/ui_screenshots.py --workdir /tmp/ui   # keep (and reuse) the study
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "img"
WINDOW = (1280, 800)
# The UI opens its AI assistant panel on a third of the page when it is served from
# localhost; under another name (mapped to 127.0.0.1 inside Chromium only) it stays closed.
UI_HOST = "mlflow-ui.test"
ML = {"workflowType": "machine_learning"}  # the side bar of model training, not of GenAI
MAX_BYTES = 150_000
EPOCHS = 60  # at 32x32 the mvn generator decodes faces from about here; 1 gives grey squares
TRAIN = {"image_size": "32", "seed": "0"}
EVALUATE = {
    "sampler": "uniform,mvn",
    "b": "1,2,3",
    "k": "1,2",
    "scale": "1",
    "n_samples": "2000",
    "n_decoded": "0",
    "knn_n": "200",
    "log_generator": "mvn:1",
}
REQUEST = {"n": 8, "seed": 0}
# window sizes: the table pages by the window's height (800: all 10 rows), the compare page
# shows the run details below its plot, the rest is cut to what the page fills
SIZES = {"runs": (1280, 420), "compare": (1280, 1100), "table": (1440, 800), "answer": (1100, 600)}
NAMES = {
    "runs": "ui_runs_by_case.png",
    "compare": "ui_compare_train.png",
    "table": "ui_evaluate_table.png",
    "answer": "generator_answer.png",
}


@dataclass(frozen=True)
class Study:
    tracking_uri: str
    experiment_id: str
    train: dict[str, str]  # case -> run id
    evaluate: str


# --- URLs (pure) --------------------------------------------------------------------------


def runs_by_case_url(base: str, experiment_id: str, case: str) -> str:
    """The runs table with the search box set to one case (``case`` is a reserved word in
    MLflow's filter grammar, hence the backticks)."""
    query = urllib.parse.urlencode(
        {"searchFilter": f"tags.`case` = '{case}'", "isPreview": "true", **ML},
        quote_via=urllib.parse.quote,
    )
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def compare_url(base: str, run_ids: Sequence[str], experiment_id: str) -> str:
    """The compare-runs page the UI's Compare button opens (JSON lists in the query)."""

    def as_json(values: Sequence[str]) -> str:
        return urllib.parse.quote(json.dumps(list(values), separators=(",", ":")), safe="")

    return (
        f"{base}/#/compare-runs?runs={as_json(run_ids)}"
        f"&experiments={as_json([experiment_id])}&{urllib.parse.urlencode(ML)}"
    )


def artifact_url(base: str, experiment_id: str, run_id: str, path: str) -> str:
    """A run's Artifacts tab opened on one file."""
    return (
        f"{base}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"
        f"?{urllib.parse.urlencode(ML)}"
    )


def answer_html(url: str, request: Mapping[str, object], answer: Mapping[str, object]) -> str:
    """A page showing a generator request, the decoded images and the answer's JSON shape
    (arrays and base64 cut short so the structure fits on screen)."""
    rows = answer["predictions"]
    assert isinstance(rows, list)
    images = "".join(
        f'<figure><img src="data:image/png;base64,{r["png"]}"><figcaption>{r["index"]}'
        f"</figcaption></figure>"
        for r in rows
    )
    shape = answer_shape(rows)
    curl = (
        f"curl -s {url} -H 'Content-Type: application/json' \\\n"
        f"     -d '{json.dumps({'inputs': request})}'"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font: 15px system-ui, sans-serif; margin: 24px 32px; color: #1f2328; }}
h1 {{ font-size: 20px; margin: 0 0 12px; }} h2 {{ font-size: 15px; margin: 18px 0 6px; }}
pre {{ background: #f6f8fa; padding: 10px 14px; border-radius: 6px; font-size: 13px;
      margin: 0; white-space: pre-wrap; }}
.grid {{ display: flex; gap: 10px; }} figure {{ margin: 0; text-align: center; }}
img {{ width: 112px; height: 112px; image-rendering: pixelated; border: 1px solid #d0d7de; }}
figcaption {{ font-size: 12px; color: #57606a; }}
</style></head><body>
<h1>mlflow models serve -m runs:/&lt;evaluate run&gt;/generator</h1>
<h2>Request</h2><pre>{html.escape(curl)}</pre>
<h2>The {len(rows)} decoded images (the <code>png</code> field of each row)</h2>
<div class="grid">{images}</div>
<h2>Answer (arrays and base64 cut short)</h2><pre>{html.escape(shape)}</pre>
</body></html>"""


def answer_shape(rows: list[dict[str, object]]) -> str:
    """The answer as JSON with the first row's image and PNG cut short (sizes as comments)."""
    first = rows[0]
    image, png = first["image"], str(first["png"])
    dims: list[int] = []
    pixel: list[float] = []  # the first pixel's channels
    while isinstance(image, list):
        dims.append(len(image))
        pixel, image = image, image[0]
    scalars = ", ".join(
        f'"{k}": {json.dumps(v)}' for k, v in first.items() if k not in ("image", "png")
    )
    return (
        f'{{"predictions": [\n  {{{scalars},\n'
        f'   "image": [[{json.dumps([round(float(v), 4) for v in pixel])}, ...], ...],   '
        f"// {' x '.join(map(str, dims))} floats in [0, 1]\n"
        f'   "png": "{png[:20]}..."}},   // {len(png)} base64 characters\n'
        f"  ... {len(rows)} rows in all\n]}}"
    )


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(tracking_uri: str, workdir: Path) -> dict[str, str]:
    """The user's environment without their MLflow settings, pointed at the temporary store
    (checkpoints there too, not in the project folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": tracking_uri,
            "AELATENT_CHECKPOINT_DIR": str(workdir / "checkpoints"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        }
    )
    return env


def mlflow_run(entry_point: str, params: dict[str, str], env: dict[str, str]) -> None:
    command = [str(BIN / "mlflow"), "run", str(ROOT), "-e", entry_point, "--env-manager", "local"]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    print(
        f"  mlflow run . -e {entry_point} " + " ".join(f"-P {k}={v}" for k, v in params.items()),
        flush=True,
    )
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"ui_screenshots: `mlflow run -e {entry_point}` failed:\n{done.stderr[-3000:]}")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return 0


@contextmanager
def serving(command: list[str], ready_url: str, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run a server in its own process group until ``ready_url`` answers 200; stop the group
    afterwards (the server's workers included), whatever happened."""
    with log.open("w") as sink:
        server = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while _get(ready_url) != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"ui_screenshots: {command[1]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)


def screenshot(
    url: str,
    out: Path,
    profile: Path,
    budget_ms: int = 15000,
    size: tuple[int, int] = WINDOW,
    ui_host: bool = False,
) -> None:
    """Headless Chromium; the UI is a single-page app, so it gets virtual time to render.
    ``ui_host``: resolve :data:`UI_HOST` to 127.0.0.1 (the MLflow UI pages)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("ui_screenshots: chromium not found; install it with `make browser`")
    rules = [f"--host-resolver-rules=MAP {UI_HOST} 127.0.0.1"] if ui_host else []
    subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--virtual-time-budget={budget_ms}",
            *rules,
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    if not out.exists():
        sys.exit(f"ui_screenshots: chromium wrote no screenshot of {url}")


def shrink(png: Path, colors: int = 64) -> int:
    """Quantize to a palette (screenshots are flat colours and text) and optimise; the size."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)
    return png.stat().st_size


# --- the study ----------------------------------------------------------------------------


def make_study(workdir: Path, epochs: int = EPOCHS) -> Study:
    """Train I and II and evaluate I in ``workdir``'s store, or reuse what an earlier call
    left there (``--workdir``)."""
    import mlflow

    from aelatent.io.experiment import EXPERIMENT_NAME, KIND, KIND_TAG

    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = child_env(tracking_uri, workdir)
    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(EXPERIMENT_NAME)
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(
            EXPERIMENT_NAME,
            artifact_location=(workdir / "artifacts").as_uri(),
            tags={KIND_TAG: KIND},
        )
    )

    def run_once(filter_string: str, entry_point: str, params: dict[str, str]) -> str:
        """The newest finished run that matches, made first if there is none."""
        for attempt in range(2):
            runs = client.search_runs(
                [experiment_id],
                f"{filter_string} and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                return str(runs[0].info.run_id)
            if attempt == 0:
                mlflow_run(entry_point, params, env)
        sys.exit(f"ui_screenshots: `mlflow run -e {entry_point}` left no run ({filter_string})")

    train = {
        case: run_once(
            f"tags.entry_point = 'train' and tags.`case` = '{case}'",
            "train",
            {"case": case, "epochs": str(epochs), **TRAIN},
        )
        for case in ("I", "II")
    }
    evaluate = run_once(
        f"tags.entry_point = 'evaluate' and tags.train_run = '{train['I']}'",
        "evaluate",
        {"train_run": train["I"], **EVALUATE},
    )
    return Study(tracking_uri, experiment_id, train, evaluate)


def take_screenshots(study: Study, workdir: Path, out: Path) -> dict[str, int]:
    """The four pictures into ``out``; their sizes in bytes."""
    env = child_env(study.tracking_uri, workdir)
    profile = workdir / "chromium"
    port = free_port()
    base = f"http://{UI_HOST}:{port}"
    pages = {
        "runs": runs_by_case_url(base, study.experiment_id, "I"),
        "compare": compare_url(base, [study.train["I"], study.train["II"]], study.experiment_id),
        "table": artifact_url(base, study.experiment_id, study.evaluate, "tables/hit_rates.json"),
    }
    ui = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        study.tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        f"{UI_HOST}:{port},127.0.0.1:{port}",
        "--cors-allowed-origins",
        base,
    ]
    print(f"  mlflow server on http://127.0.0.1:{port} (as {base} in Chromium)", flush=True)
    with serving(ui, f"http://127.0.0.1:{port}/health", env, workdir / "ui.log"):
        for key, url in pages.items():
            screenshot(url, out / NAMES[key], profile, size=SIZES.get(key, WINDOW), ui_host=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"runs:/{study.evaluate}/generator",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    print(f"  mlflow models serve on {base}", flush=True)
    with serving(serve, f"{base}/ping", env, workdir / "serve.log"):
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps({"inputs": REQUEST}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())
    page = workdir / "answer.html"
    page.write_text(answer_html("http://127.0.0.1:5001/invocations", REQUEST, answer))
    screenshot(page.as_uri(), out / NAMES["answer"], profile, budget_ms=2000, size=SIZES["answer"])
    return {name: shrink(out / name) for name in NAMES.values()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the study here (reused when run again); default: a "
        "temporary folder, removed at the end",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=EPOCHS,
        help=f"training epochs of both cases (default {EPOCHS}; 1 for a quick try)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"default {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the `finally`s clean up
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="aelatent-ui-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        study = make_study(workdir, args.epochs)
        sizes = take_screenshots(study, workdir, args.out.resolve())
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, size in sizes.items():
        flag = "" if size <= MAX_BYTES else f"  (over {MAX_BYTES // 1000} KB)"
        print(f"  {args.out / name}: {size / 1000:.0f} KB{flag}")
    print(f"ui_screenshots: done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
