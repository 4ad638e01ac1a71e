"""The servable generator: request parsing, the samplers' parameters, hostile requests through
MLflow's scoring code in-process (a numpy decoder: fast), the logged pyfunc model in Python, and
`mlflow models serve` answering real HTTP requests (400 for bad ones)."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import BIN, cli_error, tracking_env
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from PIL import Image

from aelatent.core.mixture import GMMSampler
from aelatent.core.sampler_registry import SAMPLERS, spec_of
from aelatent.core.samplers import GaussianSampler, MVNSampler, UniformSampler
from aelatent.errors import UserError
from aelatent.serving.generator_model import (
    GENERATOR_NAME,
    GENERATOR_TAG,
    INPUT_EXAMPLE,
    SIGNATURE,
    GeneratorModel,
    build_samplers,
    log_search_generator,
    parse_generator_choice,
    sampler_arrays,
    samplers_from_arrays,
)
from aelatent.serving.request import (
    MAX_IMAGES,
    MAX_REPLY,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    GenerateRequest,
    parse_request,
)

SCALES = {"uniform": 2.5, "gaussian": 1.0, "mvn": 1.0}

# (request, fragment of the one-line message): every way a request can be wrong
BAD_REQUESTS = [
    ({"n": 0, "seed": 1}, "n=0 is out of range; give an integer 1 to 64"),
    ({"n": -3, "seed": 1}, "n=-3 is out of range"),
    (
        {"n": MAX_IMAGES + 1, "seed": 1},
        f"n={MAX_IMAGES + 1} is out of range; give an integer 1 to 64",
    ),
    ({"n": 2, "seed": 1, "sampler": "vae"}, "sampler='vae' is unknown"),
    ({"n": 2, "seed": 1, "b": math.nan}, "b=nan must be a positive finite number"),
    ({"n": 2, "seed": 1, "b": math.inf}, "b=inf must be a positive finite number"),
    ({"n": 2, "seed": 1, "scale": 0.0}, "scale=0.0 must be a positive finite number"),
    ({"n": 2, "seed": 1, "scale": -1.0}, "scale=-1.0 must be a positive finite number"),
    ({"n": 2, "seed": 1, "b": 1.0, "scale": 2.0}, "b=1 and scale=2 differ"),
    ({"n": 2, "seed": -1}, "seed=-1 is out of range"),
    ({"n": 2, "seed": 2**32}, "seed=4294967296 is out of range"),
]


# --- no network: parsing and parameters ---------------------------------------------------


def test_a_request_takes_the_logged_defaults():
    assert parse_request({"n": 4, "seed": 7}, "uniform", SCALES) == GenerateRequest(
        4, 7, "uniform", 2.5
    )
    assert parse_request(
        pd.DataFrame([{"n": 1, "seed": 0, "sampler": " MVN "}]), "uniform", SCALES
    ) == GenerateRequest(1, 0, "mvn", 1.0)
    # b and scale name the one scale of whichever sampler
    assert (
        parse_request({"n": 1, "seed": 0, "sampler": "gaussian", "b": 2.0}, "uniform", SCALES).scale
        == 2.0
    )
    assert parse_request({"n": 1, "seed": 0, "scale": 3.0}, "uniform", SCALES).scale == 3.0


@pytest.mark.parametrize(("request_", "fragment"), BAD_REQUESTS)
def test_a_bad_request_is_one_line(request_, fragment):
    with pytest.raises(MlflowException) as caught:
        parse_request(request_, "uniform", SCALES)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert caught.value.get_http_status_code() == 400
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_one_request_per_call():
    rows = pd.DataFrame([{"n": 1, "seed": 0}, {"n": 1, "seed": 1}])
    with pytest.raises(MlflowException, match="one request per call, got 2 rows"):
        parse_request(rows, "uniform", SCALES)


def test_the_request_fields_are_explicit():
    """No input schema in the signature: MLflow would coerce before the model sees a value."""
    assert (REQUIRED_FIELDS, OPTIONAL_FIELDS) == (("n", "seed"), ("sampler", "b", "scale"))
    assert SIGNATURE.inputs is None and SIGNATURE.outputs is not None


# --- hostile requests: MLflow's scoring code in-process, a numpy decoder ------------------

BIG = 2_000_000  # characters of a hostile value (the trial sent 20 MB; the bound is the same)
# (request body, fragment of the reply's last line); issue 28, item 15: none coerced in silence,
# every field named
HOSTILE_BODIES = [
    ('{"inputs": {"n": 2.5, "seed": 0}}', "n=2.5 is not an integer (got a number)"),
    ('{"inputs": {"n": true, "seed": 0}}', "n=True is not an integer (got a boolean)"),
    ('{"inputs": {"n": 2, "seed": 1.5}}', "seed=1.5 is not an integer (got a number)"),
    ('{"inputs": {"n": null, "seed": 0}}', "n=None is not an integer (got null)"),
    ('{"inputs": {"n": "3", "seed": 0}}', "n='3' is not an integer (got a string)"),
    ('{"inputs": {"n": {"a": 1}, "seed": 0}}', "n={'a': 1} is not an integer (got an object)"),
    ('{"inputs": {"n": 1e30, "seed": 0}}', "n=1000000000000000019884624838656 is out of range"),
    ('{"inputs": {"n": 1e308, "seed": 0}}', "n=1000000000000000010979063629440455417404"),
    ('{"inputs": {"n": 2, "seed": 0, "b": 1%s}}' % ("0" * 400), "b=1000000000000000000"),
    ('{"inputs": {"n": 2, "seed": 0, "b": "abc"}}', "b='abc' is not a number (got a string)"),
    ('{"inputs": {"n": 2, "seed": 0, "b": true}}', "b=True is not a number (got a boolean)"),
    ('{"inputs": {"n": 2, "seed": 0, "scale": null}}', "scale=None is not a number (got null)"),
    ('{"inputs": {"n": 2, "seed": 0, "sampler": 5}}', "sampler=5 is not a string (got an integer)"),
    ('{"inputs": {"n": 2, "seed": 0, "sampler": ""}}', "sampler='' is unknown"),
    ('{"inputs": {"n": [1, 2], "seed": 0}}', "one request per call, got 2 values of n"),
    ('{"inputs": {"n": 2, "seed": 0, "zz": 1}}', "unknown field 'zz'"),
    ('{"inputs": {"seed": 0}}', "n is missing"),
    ('{"inputs": [{"n": 1, "seed": 0}, {"n": 1, "seed": 1}]}', "one request per call, got 2"),
    ('{"dataframe_records": [{"n": 2.5, "seed": 0}]}', "n=2.5 is not an integer"),
    ('{"dataframe_records": [{"n": true, "seed": 0}]}', "n=True is not an integer"),
    (
        '{"dataframe_split": {"columns": ["n", "seed", "b"], "data": [[2, 0, "abc"]]}}',
        "b='abc' is not a number",
    ),
    (json.dumps({"inputs": {"n": 2, "seed": 0, "sampler": "x" * BIG}}), "sampler='xxxx"),
    (json.dumps({"inputs": {"n": 2, "seed": 0, "b": "7" * BIG}}), "b='7777"),
    (json.dumps({"inputs": {"n": "9" * BIG, "seed": 0}}), "n='9999"),
    (json.dumps({"inputs": {"n": 2, "seed": 0, "z" * BIG: 1}}), "unknown field 'zzzz"),
    (json.dumps({"inputs": {"n": 2, "seed": list(range(BIG // 8))}}), "one request per call"),
]


class TinyGenerator(GeneratorModel):
    """The served model with a numpy decoder in place of Keras: every request check is real."""

    def load_context(self, context: object) -> None:
        latents = np.random.default_rng(0).normal(0.0, 0.5, (200, 4))
        self.samplers = {
            "uniform": UniformSampler(1.0, 4),
            "gaussian": GaussianSampler(np.zeros(4), np.ones(4)),
            "mvn": MVNSampler.from_latents(latents),
        }
        self.config = {"sampler": "mvn", "scales": {"mvn": 1.5}}
        self.decoder = lambda z, training=False: np.repeat(
            1 / (1 + np.exp(-np.asarray(z)[:, None, :4, None])), 4, axis=1
        )


@pytest.fixture(scope="module")
def tiny_pyfunc(tmp_path_factory: pytest.TempPathFactory) -> mlflow.pyfunc.PyFuncModel:
    """TinyGenerator saved with the generator's signature and loaded back, as MLflow serves it."""
    path = tmp_path_factory.mktemp("tiny_generator") / "model"
    mlflow.pyfunc.save_model(
        path,
        python_model=TinyGenerator(),
        signature=SIGNATURE,
        input_example=INPUT_EXAMPLE,
        pip_requirements=[],
    )
    return mlflow.pyfunc.load_model(str(path))


def score(model: mlflow.pyfunc.PyFuncModel, body: str) -> tuple[int, str]:
    """The scoring server's answer to ``POST /invocations``: its own function and error handler."""
    schema = model.metadata.get_input_schema()
    try:
        answer = scoring_server.invocations(body, "application/json", model, schema)
    except MlflowException as error:
        return error.get_http_status_code(), error.serialize_as_json()
    return answer.status, answer.response


@pytest.mark.parametrize(
    ("body", "fragment"), HOSTILE_BODIES, ids=[b[:50] for b, _ in HOSTILE_BODIES]
)
def test_a_hostile_request_is_refused_by_field_and_the_reply_is_bounded(
    tiny_pyfunc, body, fragment
):
    status, reply = score(tiny_pyfunc, body)
    assert status == 400, reply[:2000]
    assert len(reply) <= MAX_REPLY, len(reply)
    error = json.loads(reply)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    reason = error["message"].splitlines()[-1]
    assert reason.startswith("Error: generator: ") and fragment in reason, reason
    assert len(reason) < 400, reason
    # and it keeps serving
    status, reply = score(tiny_pyfunc, '{"inputs": {"n": 2, "seed": 3}}')
    assert status == 200 and len(json.loads(reply)["predictions"]) == 2


def test_good_requests_in_every_form_are_served(tiny_pyfunc):
    for body in (
        '{"inputs": {"n": 2, "seed": 3}}',
        '{"inputs": {"n": [2], "seed": [3]}}',  # the columnar form: one value per field
        '{"inputs": [{"n": 2, "seed": 3, "sampler": "mvn", "scale": 1.5}]}',
        '{"inputs": {"n": 2.0, "seed": 3, "b": 1.5}}',  # a whole number written 2.0 is 2
        '{"dataframe_records": [{"n": 2, "seed": 3}]}',
        '{"dataframe_split": {"columns": ["n", "seed", "b"], "data": [[2, 3, 1.5]]}}',
    ):
        status, reply = score(tiny_pyfunc, body)
        assert status == 200, (body, reply[:2000])
        rows = json.loads(reply)["predictions"]
        assert [(r["index"], r["sampler"], r["scale"], r["seed"]) for r in rows] == [
            (0, "mvn", 1.5, 3),
            (1, "mvn", 1.5, 3),
        ], body


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        ({"n": 2.5, "seed": 0}, "n=2.5 is not an integer"),
        ({"n": True, "seed": 0}, "n=True is not an integer"),
        ({"n": np.int64(2), "seed": np.float64(1.5)}, "seed=1.5 is not an integer"),
        (pd.DataFrame([{"n": None, "seed": 0}]), "n=None is not an integer (got null)"),
        ({"n": 2, "seed": 0, "b": "abc"}, "b='abc' is not a number (got a string)"),
        ({"n": 2, "seed": 0, "sampler": "x" * BIG}, f"(a string of {BIG} characters)"),
        ("n=2", "expected a table with the fields n, seed"),
    ],
)
def test_predict_refuses_a_wrong_type_in_one_short_line(tiny_pyfunc, request_, fragment):
    """The pyfunc's own predict, as ``mlflow.pyfunc.load_model(...).predict`` is called."""
    with pytest.raises(MlflowException) as caught:
        tiny_pyfunc.predict(request_)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert caught.value.message.startswith("generator: ") and fragment in caught.value.message
    assert "\n" not in caught.value.message and len(caught.value.message) < 400


def test_sampler_parameters_round_trip_to_the_same_vectors(tmp_path):
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.normal(-2, 1, size=(150, 6)), rng.normal(2, 1, size=(150, 6))])
    samplers = {
        "uniform": UniformSampler(1.0, 6),
        "gaussian": GaussianSampler(latents.mean(0), latents.std(0)),
        "mvn": MVNSampler.from_latents(latents),
        "gmm": GMMSampler.from_latents(latents, seed=4),
    }
    np.savez(tmp_path / "s.npz", **sampler_arrays(samplers))
    with np.load(tmp_path / "s.npz", allow_pickle=False) as stored:
        back = samplers_from_arrays({k: stored[k] for k in stored.files})
    assert set(back) == set(samplers)
    for name, sampler in samplers.items():
        expected = sampler.with_scale(1.7).sample(5, np.random.default_rng(3))
        got = back[name].with_scale(1.7).sample(5, np.random.default_rng(3))
        np.testing.assert_array_equal(got, expected)
    lo, hi = latents.mean(0) - 2, latents.mean(0) + 2  # the stored gmm's GHK is the same too
    assert back["gmm"].window_log10_probability(lo, hi) == pytest.approx(
        samplers["gmm"].window_log10_probability(lo, hi), rel=1e-12
    )


def test_a_generator_stores_every_sampler_but_trained_ones_not_logged():
    """A trained sampler (flow: TensorFlow, minutes) is fitted only when it is the one logged."""
    latents = np.random.default_rng(1).normal(0.0, 0.5, (300, 6))
    built = build_samplers(np.zeros(6), np.ones(6), latents, logged="mvn")
    assert set(built) == {name for name in SAMPLERS if not spec_of(name).trained}


def test_a_request_for_a_sampler_the_generator_lacks_takes_scale_1():
    """An old generator (no gmm) still parses a gmm request; predict then names what it has."""
    assert parse_request({"n": 1, "seed": 0, "sampler": "gmm"}, "uniform", SCALES).scale == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("none", None), ("", None), ("mvn:1", ("mvn", 1.0)), ("Uniform:2.5", ("uniform", 2.5))],
)
def test_log_generator_choice(text, expected):
    assert parse_generator_choice(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("vae:1", "is not understood"),
        ("mvn", "is not understood"),
        ("mvn:x", "'x' is not a number"),
        ("uniform:nan", "finite"),
        ("uniform:0", "at least 1e-06"),
        ("uniform:1e6", "at most 100000"),
        ("uniform:1e-300", "at least 1e-06"),
    ],
)
def test_bad_log_generator_choice(text, fragment):
    with pytest.raises(UserError, match="log_generator=") as caught:
        parse_generator_choice(text)
    assert fragment in str(caught.value)


def test_evaluate_refuses_a_bad_log_generator_in_one_line(tracking_uri, capsys):
    from aelatent.jobs.evaluate import cli

    line = cli_error(cli, ["--log-generator", "vae:1"], capsys)
    assert "log_generator='vae:1'" in line


# --- a logged generator -------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_run(tiny_train_run: str) -> str:
    """An evaluate run (in this process: no second TensorFlow start-up) that logged the mvn
    generator of the tiny network."""
    from aelatent.jobs import evaluate

    return evaluate.main(
        [
            "--train-run",
            tiny_train_run,
            "--sampler",
            "uniform",
            "--b",
            "2",
            "--k",
            "2",
            "--n-samples",
            "1000",
            "--n-decoded",
            "0",
            "--seed",
            "41",
            "--log-generator",
            "mvn:1.5",
        ]
    )


@pytest.fixture(scope="module")
def generator(evaluate_run: str):
    return mlflow.pyfunc.load_model(f"runs:/{evaluate_run}/{GENERATOR_NAME}")


def images_of(frame: pd.DataFrame) -> np.ndarray:
    return np.stack(frame["image"].to_numpy())


@pytest.mark.e2e
def test_evaluate_logs_the_generator_with_its_signature(evaluate_run, tiny_train_run):
    from mlflow.models import get_model_info

    run = mlflow.get_run(evaluate_run)
    assert run.info.status == "FINISHED"
    assert run.data.tags[GENERATOR_TAG].startswith("mvn scale=1.5: runs:/")
    assert run.data.params["log_generator"] == "mvn:1.5"
    info = get_model_info(f"runs:/{evaluate_run}/{GENERATOR_NAME}")
    assert info.signature.inputs is None  # checked by the model itself, field by field
    assert info.metadata["request"].startswith("n (integer 1 to 64), seed (integer 0 to")
    assert info.metadata["sampler"] == "mvn"
    assert info.metadata["scale"] == 1.5
    assert info.metadata["train_run"] == tiny_train_run


@pytest.mark.e2e
def test_predict_decodes_n_images_deterministically(generator):
    out = generator.predict({"n": 5, "seed": 11})
    assert list(out.columns) == ["index", "sampler", "scale", "seed", "image", "png"]
    images = images_of(out)
    assert images.shape == (5, 32, 32, 1)  # the tiny network: 32x32 grey faces
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and np.isfinite(images).all()
    assert set(out["sampler"]) == {"mvn"} and set(out["scale"]) == {1.5}
    assert list(out["index"]) == [0, 1, 2, 3, 4] and set(out["seed"]) == {11}
    np.testing.assert_array_equal(images_of(generator.predict({"n": 5, "seed": 11})), images)
    assert not np.array_equal(images_of(generator.predict({"n": 5, "seed": 12})), images)
    png = Image.open(io.BytesIO(base64.b64decode(out["png"][0])))
    assert png.format == "PNG" and png.size == (32, 32) and png.mode == "L"
    np.testing.assert_allclose(np.asarray(png) / 255.0, images[0, ..., 0], atol=0.5 / 255 + 1e-6)


@pytest.mark.e2e
def test_predict_switches_sampler_and_scale(generator):
    uniform = generator.predict(pd.DataFrame([{"n": 2, "seed": 0, "sampler": "uniform", "b": 3.0}]))
    assert set(uniform["sampler"]) == {"uniform"} and set(uniform["scale"]) == {3.0}
    gaussian = generator.predict({"n": 2, "seed": 0, "sampler": "gaussian"})
    assert set(gaussian["scale"]) == {1.0}  # another sampler's default: the real width
    assert not np.array_equal(images_of(uniform), images_of(gaussian))
    mixture = generator.predict({"n": 2, "seed": 0, "sampler": "gmm", "scale": 0.5})
    assert (
        set(mixture["sampler"]) == {"gmm"} and images_of(mixture).shape == images_of(uniform).shape
    )


@pytest.mark.e2e
@pytest.mark.parametrize(("request_", "fragment"), BAD_REQUESTS[:6])
def test_predict_refuses_bad_input(generator, request_, fragment):
    with pytest.raises(MlflowException, match="generator: ") as caught:
        generator.predict(request_)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert fragment in caught.value.message


@pytest.mark.e2e
def test_search_logs_its_best_b_generator(tiny_train_run, tracking_uri, capsys):
    from aelatent.core.windows import estimate_windows
    from aelatent.io.run_artifacts import load_latent_split

    windows = estimate_windows(load_latent_split(tiny_train_run)[0], "fit")
    with mlflow.start_run(run_name="search without best b") as run:
        assert log_search_generator(run.info.run_id, tiny_train_run, windows.mu, windows.hw) is None
    assert "no best b, so no generator" in capsys.readouterr().err
    with mlflow.start_run(run_name="search with best b") as run:
        mlflow.log_metric("best_b", 2.25)
        uri = log_search_generator(run.info.run_id, tiny_train_run, windows.mu, windows.hw)
    assert uri == f"runs:/{run.info.run_id}/{GENERATOR_NAME}"
    out = mlflow.pyfunc.load_model(uri).predict({"n": 1, "seed": 0})
    assert list(out["sampler"]) == ["uniform"] and list(out["scale"]) == [2.25]


# --- served over HTTP ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ping(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/ping", timeout=5) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return 0


@pytest.mark.e2e
def test_served_generator_answers_http_and_survives_bad_input(
    evaluate_run, generator, tracking_uri, tmp_path
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"runs:/{evaluate_run}/{GENERATOR_NAME}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log.open("w") as sink:
        server = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=tracking_env(tracking_uri),
            cwd=os.getcwd(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while ping(base) != 200:
            assert server.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)

        status, body = post(f"{base}/invocations", json.dumps({"inputs": {"n": 3, "seed": 7}}))
        assert status == 200, body
        rows = body["predictions"]
        assert [r["index"] for r in rows] == [0, 1, 2]
        images = np.asarray([r["image"] for r in rows], dtype=np.float32)
        assert images.shape == (3, 32, 32, 1)
        local = images_of(generator.predict({"n": 3, "seed": 7}))
        np.testing.assert_allclose(images, local, atol=1e-6)  # the server is the Python model
        png = Image.open(io.BytesIO(base64.b64decode(rows[0]["png"])))
        assert png.size == (32, 32)

        records = {"dataframe_records": [{"n": 2, "seed": 1, "sampler": "uniform", "b": 2.0}]}
        status, body = post(f"{base}/invocations", json.dumps(records))
        assert status == 200, body
        assert [(r["sampler"], r["scale"]) for r in body["predictions"]] == [("uniform", 2.0)] * 2

        for bad, fragment in [
            ('{"inputs": {"n": 0, "seed": 1}}', "n=0 is out of range"),
            ('{"inputs": {"n": 65, "seed": 1}}', "n=65 is out of range"),
            ('{"inputs": {"n": 2, "seed": 1, "sampler": "vae"}}', "sampler='vae' is unknown"),
            ('{"inputs": {"n": 2, "seed": 1, "b": NaN}}', "b=nan must be a positive finite"),
            ('{"inputs": {"n": 2, "seed": 1, "scale": -2}}', "scale=-2.0 must be a positive"),
            ('{"inputs": {"n": 2.5, "seed": 1}}', "n=2.5 is not an integer (got a number)"),
            (json.dumps({"inputs": {"n": 1, "seed": 1, "sampler": "x" * BIG}}), "sampler='xxx"),
        ]:
            status, body = post(f"{base}/invocations", bad)
            assert status == 400, (bad[:100], str(body)[:2000])
            assert len(json.dumps(body)) <= MAX_REPLY  # issue 28: 20 MB in, 40 MB back
            assert body["error_code"] == "INVALID_PARAMETER_VALUE"
            # MLflow puts "Failed to predict data '...'" before it; the reason is one line
            reason = body["message"].splitlines()[-1]
            assert reason.startswith("Error: generator: ") and fragment in reason, body
            assert "Traceback" not in json.dumps(body)
            assert ping(base) == 200  # still up
        status, body = post(f"{base}/invocations", json.dumps({"inputs": {"n": 1, "seed": 7}}))
        assert status == 200 and len(body["predictions"]) == 1
        assert server.poll() is None
    finally:
        if server.poll() is None:  # the server and its workers: the group this test started
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
    assert "Traceback" not in log.read_text()
