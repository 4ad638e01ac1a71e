"""GPU figures for the two reference networks, with whatever Keras backend is installed.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py [--images 32768] [--out FILE]

The lent GPU machines have JAX but no TensorFlow (its wheels exceed what can be carried
there), so this measures the model itself, built by :func:`aelatent.model.build_autoencoder`
exactly as the train job builds it, under Keras on the available backend; it does not use
tf.data or :mod:`aelatent.accelerator`. Per case at 64x64, from an in-memory float32 array:

- training images/s (the second of two epochs; the first compiles) at the study's batch
  size 32 and at 256, in float32 and in ``mixed_float16``;
- the time of one epoch over CelebA's 162,770 training images at that rate;
- encoding images/s (``predict``, batch 1024, float32).

The input rate the GPU needs is the training rate: compare it with the cached pipeline's
images/s in ``data.json``. Writes ``benchmarks/results/data_gpu.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from aelatent.config import load_case
from aelatent.model import build_autoencoder, encoder_of

RESULTS = Path(__file__).resolve().parent / "results" / "data_gpu.json"
CELEBA_TRAIN = 162_770
SIZE = 64


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def train_rate(case_name: str, images: np.ndarray, batch: int, policy: str) -> tuple[float, float]:
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = build_autoencoder(load_case(case_name).with_overrides(image_size=SIZE), 3)
        timer = EpochTimer()
        history = model.fit(
            images, images, batch_size=batch, epochs=2, shuffle=True, verbose=0, callbacks=[timer]
        )
        return len(images) / timer.seconds[-1], float(history.history["loss"][-1])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def encode_rate(case_name: str, images: np.ndarray) -> float:
    encoder = encoder_of(build_autoencoder(load_case(case_name).with_overrides(image_size=SIZE), 3))
    encoder.predict(images[:2048], batch_size=1024, verbose=0)
    started = time.perf_counter()
    encoder.predict(images, batch_size=1024, verbose=0)
    return len(images) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32768)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((args.images, SIZE, SIZE, 3), dtype=np.float32)
    figures: dict[str, Any] = {
        "machine": platform.machine(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "images": args.images,
        "image_size": SIZE,
    }
    try:
        import jax

        figures["devices"] = [str(d.device_kind) for d in jax.devices()]
    except ImportError:
        pass
    for case_name in ("I", "II"):
        case: dict[str, Any] = {"encode_images_per_s": round(encode_rate(case_name, images))}
        for batch in (32, 256):
            for policy in ("float32", "mixed_float16"):
                rate, loss = train_rate(case_name, images, batch, policy)
                case[f"batch{batch}_{policy}"] = {
                    "train_images_per_s": round(rate),
                    "celeba_epoch_s": round(CELEBA_TRAIN / rate, 1),
                    "final_loss": round(loss, 5),
                }
                print(case_name, batch, policy, case[f"batch{batch}_{policy}"], flush=True)
        figures[f"case_{case_name}"] = case
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
