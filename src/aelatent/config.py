"""Experiment configuration: the case YAML files as typed, validated objects.

A case is named (``I``, ``II``) or given as a path to a YAML file of the same shape.
A named case is looked up, in this order, in ``experiments/`` of the working directory
(the project folder that ``mlflow run .`` runs in, so an edited copy there wins) and in
the package's own ``aelatent/cases/`` (installed with the package, wheel or editable).
Every mistake raises :class:`~aelatent.errors.UserError` naming the value and what is allowed.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from aelatent.arguments import CASE_NAME
from aelatent.errors import UserError
from aelatent.limits import (
    CASE_NAME_WHY,
    FILTERS_WHY,
    IMAGE_SIZE_WHY,
    KERNEL_WHY,
    MAX_CASE_NAME_LENGTH,
    MAX_FILTERS,
    MAX_IMAGE_SIZE,
    MAX_KERNEL,
    MAX_Z_DIM,
    ONEDNN_SCRATCH_BYTES,
    STRIDE_WHY,
    Z_DIM_WHY,
    check_at_most,
)

PACKAGE_CASES_DIR = Path(__file__).resolve().parent / "cases"  # package data
PROJECT_CASES_DIR = Path("experiments")  # relative to the working directory
EXPERIMENTS_DIR = PACKAGE_CASES_DIR  # the shipped case files (older name)
NAMED_CASES = ("I", "II")
ACTIVATIONS = {0: "leaky_relu", 1: "relu", 2: "selu"}
PADDINGS = ("same", "valid")
N_CHANNELS_PLACEHOLDER = "n_ch"
# every key a case YAML may hold, per level; any other is refused with the nearest named
CASE_KEYS = ("name", "model", "training", "data")
MODEL_KEYS = ("z_dim", "activation", "encoder", "decoder")
STACK_KEYS = ("filters", "kernels", "strides", "padding")
TRAINING_KEYS = ("learning_rate", "batch_size", "epochs", "epochs_celeba")
DATA_KEYS = ("image_size",)


@dataclass(frozen=True)
class ConvStack:
    """Per-layer settings of the encoder or decoder convolutions."""

    filters: tuple[int | str, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    padding: tuple[str, ...]


@dataclass(frozen=True)
class ModelConfig:
    z_dim: int
    activation: int
    encoder: ConvStack
    decoder: ConvStack

    @property
    def stride_product(self) -> int:
        return math.prod(self.encoder.strides)


@dataclass(frozen=True)
class TrainingConfig:
    learning_rate: float
    batch_size: int
    epochs: int
    epochs_celeba: int


@dataclass(frozen=True)
class CaseConfig:
    """One reference network and how to train it."""

    name: str
    model: ModelConfig
    training: TrainingConfig
    image_size: int
    source: str

    def flat_params(self) -> dict[str, Any]:
        """Every configuration value as a flat ``section.key`` dict, for ``mlflow.log_params``."""
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, inner)
            elif isinstance(value, list | tuple):
                flat[prefix] = ",".join(str(v) for v in value)
            else:
                flat[prefix] = value

        walk("", asdict(self))
        # As in the YAML (and apart from `mlflow run`'s own `image_size` parameter).
        flat["data.image_size"] = flat.pop("image_size")
        return flat

    def with_overrides(
        self, *, epochs: int | None = None, image_size: int | None = None
    ) -> CaseConfig:
        training = self.training if epochs is None else replace(self.training, epochs=epochs)
        config = replace(self, training=training)
        if image_size is not None:
            config = replace(config, image_size=image_size)
        validate_image_size(config.image_size, config.model)
        check_decoder_output(config.image_size, config.model, config.source)
        return config


def named_case_candidates(case: str) -> list[Path]:
    """Where a named case is looked for, first match wins: the project's ``experiments/``
    (the working directory's, where ``mlflow run .`` runs), then the package data."""
    name = f"case_{case}.yaml"
    return [(Path.cwd() / PROJECT_CASES_DIR / name).resolve(), PACKAGE_CASES_DIR / name]


def case_path(case: str) -> Path:
    """The YAML file behind a case name or path."""
    if case in NAMED_CASES:
        candidates = named_case_candidates(case)
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise UserError(
                f"case {case}: no case file in {' or '.join(str(p) for p in candidates)}; "
                "reinstall aelatent or give a path to a .yaml file"
            )
        return found
    path = Path(case)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise UserError(
            f"unknown case {case!r}: allowed are {', '.join(NAMED_CASES)} or a path to a .yaml file"
        )
    if not path.is_file():
        raise UserError(f"case file {case!r} does not exist: give I, II or an existing .yaml file")
    return path


class _CaseLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice is refused: PyYAML would keep the
    last value in silence, as it ignored an unknown key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # unhashable: PyYAML's own error follows
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        problem=f"key {key!r} given twice (line {key_node.start_mark.line + 1})"
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def load_case(case: str) -> CaseConfig:
    """Read and validate the configuration of a case (``I``, ``II`` or a YAML path)."""
    path = case_path(case)
    try:
        raw = yaml.load(path.read_text(), Loader=_CaseLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise UserError(
            f"case file {str(path)!r} is not valid YAML: {exc}".splitlines()[0]
        ) from exc
    if not isinstance(raw, dict):
        raise UserError(f"case file {str(path)!r} must hold a mapping with model/training/data")
    return parse_case(raw, source=str(path))


def parse_case(raw: dict[str, Any], source: str = "<dict>") -> CaseConfig:
    """The case as typed values; the whole YAML is checked: every key known, every value in
    range, so that no mistake surfaces later as a traceback, a C++ abort of TensorFlow or a
    name two cases share."""
    where = f"in {source}"
    _check_keys(raw, CASE_KEYS, "", where)
    name = _case_name(raw, source, where)
    model_raw = _section(raw, "model", where)
    training_raw = _section(raw, "training", where)
    data_raw = raw.get("data")
    if data_raw is None:
        data_raw = {}
    if not isinstance(data_raw, dict):
        raise UserError(f"data={data_raw!r} {where}: expected a mapping with image_size")
    _check_keys(model_raw, MODEL_KEYS, "model.", where)
    _check_keys(training_raw, TRAINING_KEYS, "training.", where)
    _check_keys(data_raw, DATA_KEYS, "data.", where)
    encoder = _conv_stack(_section(model_raw, "encoder", where), "model.encoder", where)
    decoder = _conv_stack(_section(model_raw, "decoder", where), "model.decoder", where)
    if len(encoder.filters) != len(decoder.filters):
        raise UserError(
            f"model.encoder has {len(encoder.filters)} layers but model.decoder has "
            f"{len(decoder.filters)} {where}: they must match"
        )
    if decoder.filters[-1] != N_CHANNELS_PLACEHOLDER:
        raise UserError(
            f"model.decoder.filters must end with {N_CHANNELS_PLACEHOLDER!r} (the image channels) "
            f"{where}, got {decoder.filters[-1]!r}"
        )
    activation = _positive_int(model_raw.get("activation", 0), "model.activation", where, minimum=0)
    if activation not in ACTIVATIONS:
        raise UserError(
            f"model.activation={activation} {where}: allowed are "
            + ", ".join(f"{k} ({v})" for k, v in ACTIVATIONS.items())
        )
    z_dim = _positive_int(model_raw.get("z_dim"), "model.z_dim", where)
    check_at_most(z_dim, MAX_Z_DIM, "model.z_dim", Z_DIM_WHY, where)
    model = ModelConfig(
        z_dim=z_dim,
        activation=activation,
        encoder=encoder,
        decoder=decoder,
    )
    training = TrainingConfig(
        learning_rate=_positive_float(
            training_raw.get("learning_rate"), "training.learning_rate", where
        ),
        batch_size=_positive_int(training_raw.get("batch_size"), "training.batch_size", where),
        epochs=_positive_int(training_raw.get("epochs"), "training.epochs", where),
        epochs_celeba=_positive_int(
            training_raw.get("epochs_celeba", training_raw.get("epochs")),
            "training.epochs_celeba",
            where,
        ),
    )
    image_size = _positive_int(data_raw.get("image_size", 64), "data.image_size", where)
    check_at_most(image_size, MAX_IMAGE_SIZE, "data.image_size", IMAGE_SIZE_WHY, where)
    validate_image_size(image_size, model)
    check_decoder_output(image_size, model, source)
    return CaseConfig(
        name=name,
        model=model,
        training=training,
        image_size=image_size,
        source=source,
    )


def _case_name(raw: dict[str, Any], source: str, where: str) -> str:
    """The ``name`` under the rule of the ``case`` parameter (and a length limit): it names
    the registered model and the report's files, so two cases must never print alike."""
    given = "name" in raw
    name = raw["name"] if given else Path(source).stem
    if (
        not isinstance(name, str)
        or not CASE_NAME.fullmatch(name)
        or len(name) > MAX_CASE_NAME_LENGTH
    ):
        origin = "" if given else " (the file's name)"
        advice = "" if given else "; add a name: key"
        raise UserError(
            f"name={name!r}{origin} {where}: expected letters, digits, '_', '-' and '.' only, "
            f"at most {MAX_CASE_NAME_LENGTH} characters ({CASE_NAME_WHY}){advice}"
        )
    return name


def _check_keys(raw: dict[str, Any], known: tuple[str, ...], prefix: str, where: str) -> None:
    """Refuse a key the case does not read: a typo (``zdim``) would otherwise be ignored."""
    for key in raw:
        if key in known:
            continue
        nearest = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {prefix}{nearest[0]}?" if nearest else f"allowed: {', '.join(known)}"
        raise UserError(f"unknown key {prefix}{key} {where}: {hint}")


def validate_image_size(image_size: int, model: ModelConfig) -> None:
    """The decoder mirrors the encoder only when every stride divides the image evenly."""
    step = model.stride_product
    if image_size < step or image_size % step:
        raise UserError(
            f"image_size={image_size} cannot pass the network: it must be a positive multiple of "
            f"{step} (the product of the encoder strides), "
            f"e.g. {max(step, image_size // step * step)}"
        )


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Height (or width) after a Keras ``Conv2D``; < 1 when a ``valid`` kernel does not fit."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Height (or width) after a Keras ``Conv2DTranspose`` (no ``output_padding``)."""
    if padding == "same":
        return size * stride
    return size * stride + max(kernel - stride, 0)


@dataclass(frozen=True)
class NetworkShapes:
    """Every convolution's output shape ``(height, width, filters)`` and the weight count."""

    encoder: tuple[tuple[int, int, int], ...]
    decoder: tuple[tuple[int, int, int], ...]
    n_weights: int
    scratch_per_thread: int = 0  # bytes: the largest of conv_scratch_bytes over the layers

    @property
    def activations_per_image(self) -> int:
        """Values of every convolution's output for one image (what training keeps)."""
        return sum(h * w * f for h, w, f in self.encoder + self.decoder)

    def scratch_bytes(self, threads: int | None = None) -> int:
        """TensorFlow's CPU convolution scratch for ``threads`` threads (default: the CPUs
        this process may use, as TensorFlow's thread pool has), so the memory check sees it."""
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return self.scratch_per_thread * threads


def conv_scratch_bytes(kernel: int, stride: int, size: int, padding: str) -> int:
    """Bytes per thread that TensorFlow's CPU (oneDNN) convolution asks for as scratch when a
    ``kernel`` slides with ``stride`` > 1 over a ``size`` x ``size`` map (the larger map of a
    ``Conv2DTranspose``): ``16 (k - 1) k^2`` times the padded side, as measured from its
    allocations (kernel 161 on 64: 14.8 GB a thread; 96 on 1024: 15.7 GB). Past the memory,
    TensorFlow aborts in C++ instead of raising, so this goes into the memory check."""
    if stride < 2:
        return 0
    padded = size
    if padding == "same":
        padded += max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return ONEDNN_SCRATCH_BYTES * (kernel - 1) * kernel * kernel * padded


def network_shapes(
    model: ModelConfig, image_size: int, n_channels: int, source: str = "<dict>"
) -> NetworkShapes:
    """The autoencoder's shapes by arithmetic, as :func:`aelatent.model.build_autoencoder`
    builds it (no Keras model is made); a UserError when a ``valid`` kernel does not fit."""
    size, channels = image_size, n_channels
    weights = scratch = 0
    encoder = []
    stack = model.encoder
    for i, (filters, kernel, stride, pad) in enumerate(
        zip(stack.filters, stack.kernels, stack.strides, stack.padding, strict=True)
    ):
        out = conv_output_size(size, kernel, stride, pad)
        if out < 1:
            raise UserError(
                f"case file {source!r}: model.encoder layer {i} (kernel {kernel}, padding "
                f"{pad}) gets a {size}x{size} feature map, smaller than its kernel: use padding "
                "same or a larger image_size"
            )
        filters = int(filters)
        weights += kernel * kernel * channels * filters + filters
        scratch = max(scratch, conv_scratch_bytes(kernel, stride, size, pad))
        size, channels = out, filters
        encoder.append((size, size, filters))
    features = size * size * channels
    weights += 2 * features * model.z_dim + features + model.z_dim  # the two Dense layers
    decoder = []
    stack = model.decoder
    for filters, kernel, stride, pad in zip(
        stack.filters, stack.kernels, stack.strides, stack.padding, strict=True
    ):
        n_filters = n_channels if filters == N_CHANNELS_PLACEHOLDER else int(filters)
        weights += kernel * kernel * channels * n_filters + n_filters
        size, channels = conv_transpose_output_size(size, kernel, stride, pad), n_filters
        scratch = max(scratch, conv_scratch_bytes(kernel, stride, size, pad))
        decoder.append((size, size, n_filters))
    return NetworkShapes(tuple(encoder), tuple(decoder), weights, scratch)


def check_decoder_output(image_size: int, model: ModelConfig, source: str) -> None:
    """The decoder must give back images of the input's shape, or the loss cannot compare them
    (Keras would fail only when training starts)."""
    height, width, _ = network_shapes(model, image_size, 1, source).decoder[-1]
    if (height, width) != (image_size, image_size):
        raise UserError(
            f"case file {source!r}: the decoder outputs {height}x{width} images but the input "
            f"images are {image_size}x{image_size} (image_size={image_size}): model.decoder must "
            "mirror model.encoder (its strides reversed, padding same)"
        )


def _section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise UserError(f"missing section {key!r} {where}: expected a mapping")
    return value


def _conv_stack(raw: dict[str, Any], name: str, where: str) -> ConvStack:
    _check_keys(raw, STACK_KEYS, f"{name}.", where)
    lists = {}
    for key in STACK_KEYS:
        value = raw.get(key)
        if not isinstance(value, list) or not value:
            raise UserError(f"{name}.{key} {where} must be a non-empty list, got {value!r}")
        lists[key] = value
    lengths = {key: len(value) for key, value in lists.items()}
    if len(set(lengths.values())) != 1:
        raise UserError(
            f"{name} {where}: filters, kernels, strides and padding differ in length {lengths}"
        )
    last = len(lists["filters"]) - 1
    filters: list[int | str] = []
    for i, f in enumerate(lists["filters"]):
        key = f"{name}.filters[{i}]"
        if f == N_CHANNELS_PLACEHOLDER and name == "model.decoder" and i == last:
            filters.append(f)
            continue
        if isinstance(f, str):
            raise UserError(
                f"{key}={f!r} {where}: expected an integer; {N_CHANNELS_PLACEHOLDER!r} (the image "
                "channels) only as the last of model.decoder.filters"
            )
        filters.append(_bounded_int(f, key, MAX_FILTERS, FILTERS_WHY, where))
    kernels = tuple(
        _bounded_int(k, f"{name}.kernels[{i}]", MAX_KERNEL, KERNEL_WHY, where)
        for i, k in enumerate(lists["kernels"])
    )
    strides = tuple(
        _bounded_int(s, f"{name}.strides[{i}]", MAX_IMAGE_SIZE, STRIDE_WHY, where)
        for i, s in enumerate(lists["strides"])
    )
    for pad in lists["padding"]:
        if pad not in PADDINGS:
            raise UserError(
                f"{name}.padding {where}: {pad!r} is not allowed, use one of {PADDINGS}"
            )
    return ConvStack(tuple(filters), kernels, strides, tuple(lists["padding"]))


def _bounded_int(value: Any, name: str, maximum: int, why: str, where: str) -> int:
    number = _positive_int(value, name, where)
    check_at_most(number, maximum, name, why, where)
    return number


def _positive_int(value: Any, name: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name}={value!r} {where}: expected an integer >= {minimum}")
    return value


def _positive_float(value: Any, name: str, where: str) -> float:
    number = value
    if isinstance(value, str):  # YAML 1.1 (PyYAML) reads 1e30 or 5e-4 as strings
        with contextlib.suppress(ValueError):
            number = float(value)
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or number <= 0
        or not math.isfinite(number)
    ):
        raise UserError(f"{name}={value!r} {where}: expected a finite number > 0")
    return float(number)
