"""The served generator's request, checked field by field before anything is decoded.

A request is one row of ``n``, ``seed`` and optionally ``sampler`` and ``b`` or ``scale``
(:data:`REQUEST`), in whatever form MLflow passes it (a dict, a list of one dict, a
DataFrame). Nothing is converted: 2.5 or true for ``n`` is refused, not read as 2 or 1. A
bad request is one :class:`BadRequest` line naming the field, its value cut short and what
is allowed; the scoring server answers it with HTTP 400 of bounded size and keeps serving.
Apart from :mod:`generator_model` because it changes with the request alone and is tested
without TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from aelatent.core.sampler_registry import SAMPLERS
from aelatent.limits import MAX_SCALE, MAX_SEED, MIN_SCALE

MAX_IMAGES = 64  # images per request
MAX_IMAGES_WHY = "one request decodes at most 64 images; ask again with another seed for more"

REQUIRED_FIELDS = ("n", "seed")
OPTIONAL_FIELDS = ("sampler", "b", "scale")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
REQUEST = (  # what a request holds, for the model's metadata
    f"n (integer 1 to {MAX_IMAGES}), seed (integer 0 to {MAX_SEED}), optional sampler "
    f"({', '.join(SAMPLERS)}), optional b or scale (number {MIN_SCALE:g} to {MAX_SCALE:g})"
)

MAX_SHOWN = 40  # characters of a bad value (or field name) that a message repeats
MAX_ECHO = 500  # characters of the request that MLflow's scoring server puts before it
MAX_REPLY = 2000  # so an error reply, JSON and all, stays under this


@dataclass(frozen=True)
class GenerateRequest:
    """One validated request: ``n`` images of ``sampler`` at ``scale`` from ``seed``."""

    n: int
    seed: int
    sampler: str
    scale: float


class BadRequest(MlflowException):
    """A bad request: HTTP 400 (INVALID_PARAMETER_VALUE) whose message stays short.

    MLflow's scoring server puts the whole parsed request before the message
    (``Failed to predict data '<request>'. \\nError: <message>``) and sends it back: a 20 MB
    request got a 40 MB reply. Setting the message keeps its last line (ours, one line,
    itself bounded) whole and at most :data:`MAX_ECHO` characters before it.
    """

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, text: str) -> None:
        head, newline, last = str(text).rpartition("\n")
        if len(head) > MAX_ECHO:
            head = f"{head[:MAX_ECHO]}... ({len(head) - MAX_ECHO} characters left out)"
        self._message = head + newline + last


def bad_request(message: str) -> MlflowException:
    """The one exception a bad request raises: HTTP 400 from the scoring server."""
    return BadRequest(f"generator: {message}", error_code=INVALID_PARAMETER_VALUE)


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN` characters with the length said: a message
    never repeats a hostile value whole."""
    text = repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    size = f"a string of {len(value)} characters" if isinstance(value, str) else "cut"
    return f"{text[:MAX_SHOWN]}... ({size})"


def kind(value: Any) -> str:
    """What a value is, in the words of JSON (the request's usual form)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple, np.ndarray)):
        return f"a list of {len(value)} values"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """A numpy scalar or 0-d array (how MLflow parses a JSON value) as the Python value."""
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        return value.item()
    return value


def _one_row(model_input: Any) -> dict[Any, Any]:
    """The request's one row as plain Python values, unconverted, from any form MLflow passes:
    a dict of values or of one-value columns (``inputs``), a list of one dict, a DataFrame
    (``dataframe_records``, ``dataframe_split``, CSV)."""
    if isinstance(model_input, list) and all(isinstance(r, Mapping) for r in model_input):
        if len(model_input) != 1:
            raise bad_request(
                f"one request per call, got {len(model_input)} rows; ask for n images in one row"
            )
        model_input = model_input[0]
    if isinstance(model_input, pd.DataFrame):
        if len(model_input) != 1:
            raise bad_request(
                f"one request per call, got {len(model_input)} rows; ask for n images in one row"
            )
        return {name: _plain(model_input[name].iloc[0]) for name in model_input.columns}
    if not isinstance(model_input, Mapping):
        raise bad_request(
            f"expected a table with the fields {', '.join(FIELDS)}, got {kind(_plain(model_input))}"
        )
    row: dict[Any, Any] = {}
    for name, given in model_input.items():
        value = _plain(given)
        if isinstance(value, (list, tuple, np.ndarray)):  # a column: one value per request
            if len(value) != 1:
                raise bad_request(
                    f"one request per call, got {len(value)} values of "
                    f"{name if name in FIELDS else shown(name)}; "
                    "give one value per field"
                )
            value = _plain(value[0])
        row[name] = value
    return row


def _integer(value: Any, name: str, lo: int, hi: int, why: str = "") -> int:
    """An integer field; a float only when whole (2.0, as some JSON writers put 2), never a
    boolean, a string or null."""
    allowed = f"give an integer {lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name}={shown(value)} is not an integer (got {kind(value)}); {allowed}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise bad_request(f"{name}={shown(value)} is not an integer (got a number); {allowed}")
    number = int(value)
    if not lo <= number <= hi:
        raise bad_request(
            f"{name}={shown(number)} is out of range; {allowed}" + (f" ({why})" if why else "")
        )
    return number


def _scale(value: Any, name: str) -> float:
    """``b`` or ``scale``: a number (not a boolean or a string) in [1e-6, 1e5]."""
    allowed = f"give a number {MIN_SCALE:g} to {MAX_SCALE:g} or leave {name} out for the default"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name}={shown(value)} is not a number (got {kind(value)}); {allowed}")
    if isinstance(value, int) and not -MAX_SCALE <= value <= MAX_SCALE:  # maybe past floats
        raise bad_request(f"{name}={shown(value)} is out of range; {allowed}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise bad_request(f"{name}={number!r} must be a positive finite number; {allowed}")
    if not MIN_SCALE <= number <= MAX_SCALE:
        raise bad_request(
            f"{name}={number:g} is out of range; {allowed} (the latents span a few units)"
        )
    return number


def _sampler(value: Any) -> str:
    choose = f"choose one of {', '.join(SAMPLERS)} or leave sampler out for the default"
    if not isinstance(value, str):
        raise bad_request(f"sampler={shown(value)} is not a string (got {kind(value)}); {choose}")
    sampler = value.strip().lower()
    if sampler not in SAMPLERS:
        raise bad_request(f"sampler={shown(value)} is unknown; {choose}")
    return sampler


def parse_request(
    model_input: Any, default_sampler: str, default_scales: Mapping[str, float]
) -> GenerateRequest:
    """The request as a :class:`GenerateRequest`, or a one-line :func:`bad_request` naming the
    field, its value (cut short) and what is allowed. A field is either left out (optional
    ones take the logged default) or a value of its type: nothing is converted, so 2.5 or
    true for n is refused instead of giving 2 or 1 images."""
    row = _one_row(model_input)
    unknown = [name for name in row if name not in FIELDS]
    if unknown:
        raise bad_request(f"unknown field {shown(unknown[0])}; expected {', '.join(FIELDS)}")
    for name in REQUIRED_FIELDS:
        if name not in row:
            raise bad_request(f"{name} is missing; give n (1 to {MAX_IMAGES}) and seed")
    n = _integer(row["n"], "n", 1, MAX_IMAGES, MAX_IMAGES_WHY)
    seed = _integer(row["seed"], "seed", 0, MAX_SEED)
    sampler = _sampler(row["sampler"]) if "sampler" in row else default_sampler
    given = {name: _scale(row[name], name) for name in ("b", "scale") if name in row}
    if len(given) == 2 and given["b"] != given["scale"]:
        raise bad_request(
            f"b={given['b']:g} and scale={given['scale']:g} differ; they name the "
            "same value, give one"
        )
    scale = next(iter(given.values()), None)
    return GenerateRequest(
        n, seed, sampler, float(default_scales.get(sampler, 1.0)) if scale is None else scale
    )
