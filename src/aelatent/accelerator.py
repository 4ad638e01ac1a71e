"""Use the accelerators that exist: mixed precision and all GPUs when there are GPUs, else CPU.

Call :func:`configure_accelerator` once, *before* building the model, and build and compile
the model inside ``setup.strategy.scope()``: Keras fixes a layer's dtype policy when the
layer is created, and tf.distribute mirrors only variables created in the scope.

- No GPU: the default strategy and float32; nothing changes.
- GPUs (compute capability >= 7.0, i.e. with tensor cores): the ``mixed_float16`` policy;
  Keras then wraps the optimizer in a loss-scale optimizer at ``compile``. The model must
  keep its output layers in float32 (``dtype="float32"`` on the latent Dense and on the
  final sigmoid) so the latents and the loss are computed in full precision.
- More than one GPU: ``tf.distribute.MirroredStrategy`` over all of them; the batch size
  given to tf.data is the global batch, split across the replicas.

``AELATENT_MIXED_PRECISION=0`` (or 1) and ``AELATENT_MULTI_GPU=0`` (or 1) override the
automatic choice, e.g. to compare figures with and without.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

MIXED_POLICY = "mixed_float16"
FLOAT_POLICY = "float32"
MIN_TENSOR_CORE_CAPABILITY = (7, 0)


@dataclass(frozen=True)
class Accelerator:
    """The strategy to build and train under, and what was chosen (for the run's params)."""

    strategy: tf.distribute.Strategy
    policy: str
    devices: tuple[str, ...]

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def mixed_precision(self) -> bool:
        return self.policy != FLOAT_POLICY

    @property
    def strategy_name(self) -> str:
        name = type(self.strategy).__name__
        return "default" if name.startswith("_Default") else name

    def params(self) -> dict[str, Any]:
        """``accelerator.*`` params to log with ``mlflow.log_params``."""
        return {
            "accelerator.devices": ", ".join(self.devices),
            "accelerator.replicas": self.replicas,
            "accelerator.strategy": self.strategy_name,
            "accelerator.precision": self.policy,
        }


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "auto"):
        return None
    return value not in ("0", "false", "no", "off")


def _gpu_details(gpu: tf.config.PhysicalDevice) -> tuple[str, tuple[int, int]]:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except (RuntimeError, ValueError):
        details = {}
    capability = tuple(details.get("compute_capability", (0, 0)))
    return str(details.get("device_name", gpu.name)), capability


def choose_precision_and_strategy(
    capabilities: list[tuple[int, int]],
    mixed_precision: bool | None = None,
    multi_gpu: bool | None = None,
) -> tuple[bool, bool]:
    """(mixed precision?, mirrored over several GPUs?) for GPUs of these compute capabilities.

    ``None`` means automatic: mixed precision when every GPU has tensor cores, mirroring
    when there is more than one GPU; never either on the CPU.
    """
    mixed = _env_flag("AELATENT_MIXED_PRECISION") if mixed_precision is None else mixed_precision
    if mixed is None:
        mixed = bool(capabilities) and all(cc >= MIN_TENSOR_CORE_CAPABILITY for cc in capabilities)
    multi = _env_flag("AELATENT_MULTI_GPU") if multi_gpu is None else multi_gpu
    if multi is None:
        multi = len(capabilities) > 1
    # float16 on a CPU is slower, not faster; one device has nothing to mirror
    return bool(mixed and capabilities), bool(multi and len(capabilities) > 1)


def configure_accelerator(
    mixed_precision: bool | None = None, multi_gpu: bool | None = None
) -> Accelerator:
    """Choose strategy and precision for this machine; ``None`` means automatic (see module).

    Sets Keras' global dtype policy, so it affects every layer created afterwards.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Take GPU memory as needed, so other processes can share the GPU; once the devices
        # are initialised this raises, and their settings stay.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    details = [_gpu_details(gpu) for gpu in gpus]
    mixed, multi = choose_precision_and_strategy(
        [cc for _, cc in details], mixed_precision, multi_gpu
    )
    if multi:
        strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    policy = MIXED_POLICY if mixed else FLOAT_POLICY
    keras.mixed_precision.set_global_policy(policy)
    devices = tuple(name for name, _ in details) if gpus else ("CPU",)
    return Accelerator(strategy=strategy, policy=policy, devices=devices)
