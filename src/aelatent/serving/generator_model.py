"""A generator people can use: a sampler of latent vectors plus the train run's decoder,
logged as an MLflow pyfunc model under the artifact path ``generator``.

The search logs its best uniform b this way, evaluate the sampler named by
``-P log_generator=<sampler>:<b or scale>``. Then::

    mlflow models serve -m runs:/<run_id>/generator --env-manager local -p 5001
    curl -s localhost:5001/invocations -H 'Content-Type: application/json' \\
         -d '{"inputs": {"n": 4, "seed": 0}}'

or ``mlflow.pyfunc.load_model("runs:/<run_id>/generator").predict({"n": 4, "seed": 0})``.

What is logged (artifacts of the model):

- ``decoder.keras``: the train run's decoder sub-model (Keras), nothing else of the network;
- ``samplers.npz``: what every sampler needs, so a request may switch sampler:
  ``uniform.z_dim``; ``gaussian.mu``, ``gaussian.sigma`` (the windows' centres and
  hw / 2.355, as evaluate builds it); ``mvn.mean``, ``mvn.cov`` (training latents);
  ``gmm.*``: the fitted mixture's arrays (mean, basis, eigenvalues, weights, the components'
  subspace means and covariances, the residual variances), when the latents can carry one;
- ``generator.json``: the logged (default) sampler and scale, the default scale of every
  other sampler (1: the real latents' own width), the train run, image shape, the limits.

The request (one row; :data:`~aelatent.serving.request.REQUEST`, in the model's metadata):
``n`` (integer, 1..64), ``seed`` (integer, 0..2^32-1), optional ``sampler`` (string: uniform,
gaussian, mvn, gmm), optional ``b`` or ``scale`` (number 1e-6..1e5: two names of the
sampler's one scale, the uniform half-width b or the gaussian/mvn width factor s). The model
checks it field by field (:mod:`aelatent.serving.request`), converting nothing: the signature
declares the answer only, as an input schema would have MLflow turn 2.5 into 2 first. The
answer: one row per image with ``index``, ``sampler``, ``scale``, ``seed``, ``image``
(float32 [height, width, channels] in [0, 1]) and ``png`` (base64 PNG). A bad request is an
:class:`MlflowException` (INVALID_PARAMETER_VALUE) of one line naming the field: the scoring
server answers HTTP 400 of at most 2,000 characters and keeps serving.

The vectors are the core samplers' own (:mod:`aelatent.core.samplers`), drawn from
``numpy.random.default_rng(seed)``: the same request gives the same images.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, get_model_info
from mlflow.types.schema import Array, ColSpec, DataType, Schema
from PIL import Image

import aelatent
from aelatent.core.sampler_registry import (
    SAMPLERS,
    axis_of,
    build_sampler,
    sampler_arrays,
    samplers_from_arrays,
    spec_of,
)
from aelatent.core.samplers import Sampler
from aelatent.errors import UserError
from aelatent.io.run_artifacts import (
    MODEL_NAME,
    load_autoencoder,
    load_latent_split,
    pinned_requirements,
)
from aelatent.limits import MAX_SCALE, MAX_SEED, MIN_SCALE
from aelatent.serving.request import MAX_IMAGES, REQUEST, bad_request, parse_request

GENERATOR_NAME = "generator"  # artifact path: runs:/<run_id>/generator
GENERATOR_TAG = "generator"
NONE = "none"
DECODER_FILE = "decoder.keras"
SAMPLERS_FILE = "samplers.npz"
CONFIG_FILE = "generator.json"

OUTPUT_SCHEMA = Schema(
    [
        ColSpec(DataType.long, "index"),
        ColSpec(DataType.string, "sampler"),
        ColSpec(DataType.double, "scale"),
        ColSpec(DataType.long, "seed"),
        ColSpec(Array(Array(Array(DataType.float))), "image"),
        ColSpec(DataType.string, "png"),
    ]
)
# No input schema: with one, MLflow converts a request before the model sees it (n 2.5 -> 2,
# true -> 1, "3" -> 3) or refuses it in its own words, naming no field and repeating the whole
# request; parse_request checks every field instead (REQUEST, in the model's metadata, and the
# input example show the request)
SIGNATURE = ModelSignature(inputs=None, outputs=OUTPUT_SCHEMA)
INPUT_EXAMPLE = {"n": 2, "seed": 0}
REQUIREMENTS = ("mlflow", "tensorflow", "keras", "numpy", "scipy", "pandas", "pillow")


# --- the samplers' parameters ------------------------------------------------------------


def build_samplers(
    mu: np.ndarray,
    hw: np.ndarray,
    latents: np.ndarray,
    *,
    seed: int = 0,
    fitted: Mapping[str, Sampler] | None = None,
    logged: str | None = None,
) -> dict[str, Sampler]:
    """Every sampler at scale 1, as evaluate and search build them
    (:func:`aelatent.core.sampler_registry.build_sampler`); a sampler the latents are too
    few to fit (gmm) is left out, the others still serve. ``fitted``: samplers already built
    at scale 1 (evaluate's or the search's), used as they are. A trained sampler (TensorFlow,
    seconds to minutes) is built only when it is the ``logged`` one; otherwise a request may
    switch to it only when it came ``fitted``."""
    samplers: dict[str, Sampler] = {}
    for name in SAMPLERS:
        if fitted is not None and name in fitted:
            samplers[name] = fitted[name]
            continue
        if spec_of(name).trained and name != logged:
            continue
        with contextlib.suppress(UserError):  # too few latents for this one
            samplers[name] = build_sampler(name, mu, hw, latents, seed=seed)
    return samplers


# --- the model ---------------------------------------------------------------------------


def png_base64(image: np.ndarray) -> str:
    """A float image [h, w, c] in [0, 1] (c = 1 or 3) as a base64 PNG (8 bits)."""
    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255), 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class GeneratorModel(mlflow.pyfunc.PythonModel):
    """Sampler plus decoder: ``predict({"n": 4, "seed": 0})`` -> 4 decoded images."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        import keras  # TensorFlow: only a served generator loads its decoder

        self.config = json.loads(Path(context.artifacts["config"]).read_text())
        with np.load(context.artifacts["samplers"], allow_pickle=False) as arrays:
            self.samplers = samplers_from_arrays({k: arrays[k] for k in arrays.files})
        self.decoder = keras.saving.load_model(context.artifacts["decoder"], compile=False)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        # pd.DataFrame: a hint MLflow infers no schema from (a dict or a list of one dict
        # comes too: parse_request takes every form, unconverted)
        request = parse_request(model_input, self.config["sampler"], self.config["scales"])
        if request.sampler not in self.samplers:
            raise bad_request(
                f"sampler={request.sampler!r} is not in this generator; choose one "
                f"of {', '.join(self.samplers)}"
            )
        sampler = self.samplers[request.sampler].with_scale(request.scale)
        z = sampler.sample(request.n, np.random.default_rng(request.seed))
        images = np.asarray(self.decoder(z, training=False), dtype=np.float32)
        return pd.DataFrame(
            {
                "index": np.arange(request.n, dtype=np.int64),
                "sampler": request.sampler,
                "scale": request.scale,
                "seed": np.int64(request.seed),
                "image": list(images),
                "png": [png_base64(image) for image in images],
            }
        )


# --- logging -----------------------------------------------------------------------------


def parse_generator_choice(text: str) -> tuple[str, float] | None:
    """evaluate's ``log_generator``: ``none`` or ``<sampler>:<b or scale>``, e.g. ``mvn:1``."""
    value = str(text).strip().lower()
    if value in ("", NONE):
        return None
    sampler, sep, number = value.partition(":")
    hint = f"give none or <sampler>:<b or scale> with a sampler of {', '.join(SAMPLERS)}"
    if not sep or sampler.strip() not in SAMPLERS:
        raise UserError(f"log_generator={text!r} is not understood; {hint}, e.g. mvn:1")
    try:
        scale = float(number)
    except ValueError:
        raise UserError(
            f"log_generator={text!r}: {number.strip()!r} is not a number; {hint}, e.g. uniform:2"
        ) from None
    if not (math.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
        raise UserError(
            f"log_generator={text!r}: the scale must be finite, at least {MIN_SCALE:g} and at "
            f"most {MAX_SCALE:g}"
        )
    return sampler.strip(), scale


def check_has_decoder(run_id: str) -> None:
    """A UserError, before any work, when the train run has no model to decode with."""
    try:
        get_model_info(f"runs:/{run_id}/{MODEL_NAME}")
    except (MlflowException, OSError):
        raise UserError(
            f"run {run_id!r} has no model {MODEL_NAME!r} whose decoder a generator "
            "needs; pass -P log_generator=none"
        ) from None


def has_decoder(run_id: str) -> bool:
    try:
        check_has_decoder(run_id)
    except UserError:
        return False
    return True


def _requirements() -> list[str]:
    """Pinned to this environment (listing them skips MLflow's slow inference by loading)."""
    return pinned_requirements(REQUIREMENTS)


def log_generator(
    train_run: str,
    sampler: str,
    scale: float,
    *,
    mu: np.ndarray,
    hw: np.ndarray,
    latents: np.ndarray,
    source: str,
    seed: int = 0,
    fitted: Mapping[str, Sampler] | None = None,
) -> str:
    """Log ``sampler`` at ``scale`` plus ``train_run``'s decoder to the active run as the pyfunc
    model ``generator``; tag the run ``generator``; return the model URI ``runs:/.../generator``.

    ``mu``, ``hw``: the hit windows (the gaussian sampler's centres and widths); ``latents``:
    the training latents (the mvn sampler's mean and covariance, the gmm's fit, seeded by
    ``seed``); ``fitted``: samplers the caller has built already; ``source``: what chose it.
    """
    from aelatent.model import decoder_of  # TensorFlow: off evaluate's and search's start

    if sampler not in SAMPLERS:
        raise UserError(
            f"sampler {sampler!r} cannot be logged as a generator; choose one of "
            f"{', '.join(SAMPLERS)}"
        )
    samplers = build_samplers(mu, hw, latents, seed=seed, fitted=fitted, logged=sampler)
    if sampler not in samplers:
        raise UserError(
            f"sampler {sampler!r} cannot be logged as a generator: the "
            f"{latents.shape[0]} training latents are too few to fit it"
        )
    scales = {name: 1.0 for name in samplers}
    scales[sampler] = float(scale)
    samplers[sampler].with_scale(scale)  # a bad scale fails here, before anything is logged
    decoder = decoder_of(load_autoencoder(train_run))
    config = {
        "sampler": sampler,
        "scale": float(scale),
        "scales": scales,
        "train_run": train_run,
        "source": source,
        "z_dim": int(np.asarray(mu).size),
        "image_shape": [int(d) for d in decoder.output_shape[1:]],
        "max_images": MAX_IMAGES,
        "max_seed": MAX_SEED,
    }
    active = mlflow.active_run()
    assert active is not None, "log_generator needs an active run"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        decoder.save(out / DECODER_FILE)
        # numpy's stub lets ** fill savez's `allow_pickle: bool`; the names are arrays'
        np.savez(out / SAMPLERS_FILE, **sampler_arrays(samplers))  # type: ignore[arg-type]
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        info = mlflow.pyfunc.log_model(
            name=GENERATOR_NAME,
            python_model=str(Path(__file__).with_name("generator_code.py")),
            artifacts={
                "decoder": str(out / DECODER_FILE),
                "samplers": str(out / SAMPLERS_FILE),
                "config": str(out / CONFIG_FILE),
            },
            signature=SIGNATURE,
            input_example=INPUT_EXAMPLE,
            pip_requirements=_requirements(),
            # the package itself travels with the model: it serves where aelatent is not installed
            code_paths=[str(Path(aelatent.__file__).parent)],
            metadata={
                **{k: config[k] for k in ("sampler", "scale", "train_run", "source")},
                "request": REQUEST,
            },
        )
    uri = f"runs:/{active.info.run_id}/{GENERATOR_NAME}"
    axis = axis_of(sampler)
    mlflow.set_tag(GENERATOR_TAG, f"{sampler} {axis}={scale:g}: {uri}")
    print(
        f"aelatent: logged the generator ({sampler}, {axis} = {scale:g}, decoder of run "
        f"{train_run[:8]}) as {uri} (model {info.model_id}); serve it with: mlflow models "
        f"serve -m {uri} --env-manager local",
        file=sys.stderr,
        flush=True,
    )
    return uri


def log_search_generator(
    run_id: str,
    train_run: str,
    mu: np.ndarray,
    hw: np.ndarray,
    *,
    sampler: str = "uniform",
    latents: np.ndarray | None = None,
    fitted: Mapping[str, Sampler] | None = None,
) -> str | None:
    """The search's winner: ``sampler`` at the run's ``best_b`` (uniform) or ``best_scale``
    metric plus the train run's decoder, into the active (search) run; None, with one line
    why, when the search found no best value or the train run has no model. ``latents``: the
    training latents (read from the train run when not given); ``fitted``: samplers the search
    built (its gmm), used as they are."""
    axis = axis_of(sampler)
    best = mlflow.get_run(run_id).data.metrics.get(f"best_{axis}")
    if best is None:
        print(f"aelatent search: no best {axis}, so no generator is logged", file=sys.stderr)
        return None
    if not has_decoder(train_run):
        print(
            f"aelatent search: train run {train_run!r} has no model, so no generator is logged",
            file=sys.stderr,
        )
        return None
    if latents is None:
        latents, _ = load_latent_split(train_run)
    return log_generator(
        train_run,
        sampler,
        best,
        mu=mu,
        hw=hw,
        latents=latents,
        source=f"search run {run_id} (best_{axis})",
        fitted=fitted,
    )
