"""Accelerator set-up: float32 and the default strategy without a GPU, whatever is asked."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from aelatent.accelerator import configure_accelerator


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is present")
@pytest.mark.parametrize("mixed", [None, True])
def test_cpu_stays_float32_on_one_replica(mixed, monkeypatch: pytest.MonkeyPatch):
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
