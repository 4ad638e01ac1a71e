"""Accelerator set-up: float32 and the default strategy without a GPU, whatever is asked."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from aelatent.accelerator import choose_precision_and_strategy, configure_accelerator


@pytest.mark.parametrize("mixed", [None, True])
def test_cpu_stays_float32_on_one_replica(mixed, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setenv("AELATENT_MULTI_GPU", "1")
    setup = configure_accelerator(mixed_precision=mixed)
    assert setup.policy == "float32" and not setup.mixed_precision
    assert keras.mixed_precision.global_policy().name == "float32"
    assert setup.replicas == 1
    assert setup.params() == {
        "accelerator.devices": "CPU",
        "accelerator.replicas": 1,
        "accelerator.strategy": "default",
        "accelerator.precision": "float32",
    }
    with setup.strategy.scope():
        layer = keras.layers.Dense(2)
        layer.build((None, 3))
    assert layer.kernel.dtype == "float32"


@pytest.mark.parametrize(
    ("capabilities", "mixed", "multi", "expected"),
    [
        ([], None, None, (False, False)),
        ([], True, True, (False, False)),  # never on a CPU, whatever is asked
        ([(8, 0)], None, None, (True, False)),  # tensor cores: mixed precision
        ([(6, 1)], None, None, (False, False)),  # no tensor cores: float32
        ([(8, 0), (8, 0)], None, None, (True, True)),  # two GPUs: mirrored
        ([(8, 0), (6, 1)], None, None, (False, True)),  # one without tensor cores
        ([(8, 0), (8, 0)], False, False, (False, False)),  # switched off
        ([(6, 1)], True, None, (True, False)),  # forced on
    ],
)
def test_gpu_choices(capabilities, mixed, multi, expected, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AELATENT_MIXED_PRECISION", raising=False)
    monkeypatch.delenv("AELATENT_MULTI_GPU", raising=False)
    assert choose_precision_and_strategy(capabilities, mixed, multi) == expected


def test_environment_switches(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AELATENT_MIXED_PRECISION", "0")
    monkeypatch.setenv("AELATENT_MULTI_GPU", "off")
    assert choose_precision_and_strategy([(9, 0), (9, 0)]) == (False, False)
