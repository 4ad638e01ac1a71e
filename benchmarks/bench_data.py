"""Benchmark of the data path: decode cache, input pipeline, encoding, training throughput.

    .venv/bin/python benchmarks/bench_data.py [--images 3000] [--encode-images 200000]

On generated CelebA-shaped data (178x218 RGB JPEGs of ~10 kB, like the real ones), at 64x64:

- ``preprocess``: building the decode cache with worker processes (pool start included),
  the same in one process, and loading the finished cache again;
- ``input_pipeline``: images/s of :func:`autoencoder_dataset` over the cache alone (no
  model) against ``keras.utils.image_dataset_from_directory`` on the same folder at the same
  size, both yielding shuffled float32 [0, 1] batches of 32 (fastest of epochs 2-4);
- ``encode``: :func:`encode_images` of case I streaming a memory-mapped cache into an
  ``open_memmap``, in a child process per size (20,000 and ``--encode-images``): images/s,
  the peak anonymous memory (heap: what would grow with the data set if anything were
  held) and the peak resident set (``VmHWM``, which also counts the latents file's pages);
- ``train``: images/s of one epoch of case I and II from the cache through tf.data,
  against ``model.fit`` on an in-memory float32 array of the same images: one epoch of
  each in turn, 5 rounds after a compiling one, the fastest epoch of each counts (the cores
  are shared with other work); achieved FLOP/s (3x the forward FLOPs per image, counted
  per layer) against a float32 matmul measured in the same run.

Writes ``benchmarks/results/data.json`` and prints it. TensorFlow is imported only after
the decode cache is built, as in the train job (see ``aelatent.data.cache``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results" / "data.json"
WORK = Path(tempfile.gettempdir()) / "aelatent-bench-data"
SIZE = 64
BATCH = 32
TRAIN_ROUNDS = 5  # timed epochs per feed; the fastest counts (the cores are shared)
WIDTH, HEIGHT = 178, 218


# --- data -----------------------------------------------------------------------------------


def celeba_like_folder(n: int, seed: int = 0) -> Path:
    """``n`` CelebA-shaped JPEGs (a gradient and a face-like ellipse), made once and kept."""
    folder = WORK / f"celeba-{n}" / "img_align_celeba"
    done = folder.parent / "complete"
    if done.is_file():
        return folder
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for i in range(n):
        weight = (xx / WIDTH * rng.uniform() + yy / HEIGHT * rng.uniform())[..., None] / 2
        image = rng.uniform(0, 255, 3) * (1 - weight) + rng.uniform(0, 255, 3) * weight
        cx, cy = 89 + rng.integers(-8, 9), 128 + rng.integers(-8, 9)
        image[((xx - cx) / 45) ** 2 + ((yy - cy) / 60) ** 2 <= 1] = rng.uniform(120, 240, 3)
        image += rng.normal(0, 4, image.shape)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            folder / f"{i + 1:06d}.jpg", quality=90
        )
    done.write_text("ok")
    return folder


def synthetic_cache(n: int) -> Path:
    """A cache-shaped ``.npy`` of n 64x64x3 images, written by plain file writes (not mapped)."""
    path = WORK / f"synthetic-{n}.npy"
    if path.is_file():
        return path
    partial = path.with_suffix(".partial.npy")
    np.lib.format.open_memmap(partial, "w+", np.uint8, (n, SIZE, SIZE, 3)).flush()
    offset = np.load(partial, mmap_mode="r").offset
    block = np.random.default_rng(0).integers(0, 256, (1000, SIZE, SIZE, 3), dtype=np.uint8)
    with partial.open("r+b") as handle:
        handle.seek(offset)
        for start in range(0, n, len(block)):
            handle.write(block[: min(len(block), n - start)].tobytes())
    partial.replace(path)
    return path


# --- measurements ---------------------------------------------------------------------------


def bench_preprocess(folder: Path) -> dict[str, Any]:
    from aelatent.data.cache import cached_images, default_workers
    from aelatent.data.image_folder import list_images

    root = WORK / "cache"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    source = list_images(folder)
    listed = time.perf_counter() - started
    started = time.perf_counter()
    built = cached_images(source, SIZE, root=root / "parallel", progress=False)
    parallel = time.perf_counter() - started
    started = time.perf_counter()
    cached_images(source, SIZE, root=root / "serial", workers=1, progress=False)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    again = cached_images(list_images(folder), SIZE, root=root / "parallel", progress=False)
    reuse = time.perf_counter() - started
    assert again.reused and len(again.ids) == len(built.ids)
    n = len(source.names)
    return {
        "images": n,
        "workers": default_workers(),
        "images_per_s": round(n / parallel),
        "images_per_s_one_process": round(n / serial),
        "listing_s": round(listed, 3),
        "reuse_s": round(reuse, 3),
        "target_images_per_s": 3000,
    }


def _time_epochs(dataset: Any, epochs: int = 4) -> float:
    """Images/s of the fastest pass after the first (which builds and warms the pipeline)."""
    rates = []
    for _ in range(epochs):
        count, started = 0, time.perf_counter()
        for x, *_ in dataset:
            count += int(x.shape[0])
        rates.append(count / (time.perf_counter() - started))
    return max(rates[1:])


def bench_input_pipeline(folder: Path) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from aelatent.data.loading import load_image_folder
    from aelatent.data.pipeline import autoencoder_dataset

    image_set = load_image_folder(folder, SIZE, progress=False)  # the cache built above
    ours = autoencoder_dataset(
        image_set, np.arange(len(image_set.ids)), BATCH, shuffle=True, seed=0
    )
    keras_dataset = (
        keras.utils.image_dataset_from_directory(
            folder,
            labels=None,
            image_size=(SIZE, SIZE),
            batch_size=BATCH,
            shuffle=True,
            seed=0,
            crop_to_aspect_ratio=True,
            verbose=False,
        )
        .map(lambda x: x / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    cached_rate = _time_epochs(ours)
    keras_rate = _time_epochs(keras_dataset)
    return {
        "images": len(image_set.ids),
        "cached_images_per_s": round(cached_rate),
        "image_dataset_from_directory_images_per_s": round(keras_rate),
        "speedup": round(cached_rate / keras_rate, 1),
        "target_speedup": 5,
    }


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def encode_child(path: Path) -> dict[str, Any]:
    """In a fresh process: encode every image of ``path`` with case I, latents to a memmap."""
    from aelatent.config import load_case
    from aelatent.data.pipeline import encode_images
    from aelatent.model import build_autoencoder, encoder_of

    images = np.load(path, mmap_mode="r")
    encoder = encoder_of(build_autoencoder(load_case("I").with_overrides(image_size=SIZE), 3))
    encode_images(encoder, np.asarray(images[:256]), 256)  # warm up: trace the step
    out_path = path.with_suffix(".latents.npy")
    out = np.lib.format.open_memmap(out_path, "w+", np.float32, (len(images), 256))
    base_anon = _status_kb("RssAnon")
    peak = [base_anon]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _status_kb("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    encode_images(encoder, images, 256, out=out)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    out.flush()
    assert np.isfinite(out[-1]).all()
    del out
    out_path.unlink()
    return {
        "images": len(images),
        "images_per_s": round(len(images) / seconds),
        "anon_mb_before": round(base_anon / 1024),
        "anon_mb_peak": round(peak[0] / 1024),
        "vm_hwm_mb": round(_status_kb("VmHWM") / 1024),
        "latents_file_mb": round(len(images) * 256 * 4 / 2**20),
        "images_file_mb": round(path.stat().st_size / 2**20),
    }


def bench_encode(sizes: list[int]) -> dict[str, Any]:
    runs = []
    for n in sizes:
        path = synthetic_cache(n)
        done = subprocess.run(
            [sys.executable, __file__, "--encode-child", str(path)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    largest = runs[-1]
    return {
        "case": "I",
        "image_size": SIZE,
        "batch_size": 256,
        "runs": runs,
        "images_per_s": largest["images_per_s"],
        "anon_growth_mb": largest["anon_mb_peak"] - runs[0]["anon_mb_peak"],
        "target_images_per_s": 3000,
    }


def forward_flops(model: Any) -> int:
    """FLOPs (2 per multiply-add) of one image through the Conv/Dense layers of ``model``."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * c_in * kh * kw * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_flops_per_s(n: int = 2048, repeats: int = 10) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    _ = (a @ b).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
    _ = c.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def _epoch_timer() -> Any:
    """A Keras callback that records the wall time of every epoch in ``.seconds``."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._started)

    return EpochTimer()


def bench_train(folder: Path, n_train: int, matmul: float) -> dict[str, Any]:
    import keras

    from aelatent.config import load_case
    from aelatent.data.loading import load_image_folder
    from aelatent.data.pipeline import autoencoder_dataset
    from aelatent.model import build_autoencoder

    image_set = load_image_folder(folder, SIZE, progress=False)
    rows = np.arange(min(n_train, len(image_set.ids)))
    in_memory = np.asarray(image_set.images[rows], dtype=np.float32) / 255.0
    results: dict[str, Any] = {"images": len(rows), "batch_size": BATCH, "image_size": SIZE}
    for case_name in ("I", "II"):
        case = load_case(case_name).with_overrides(image_size=SIZE)
        feeds = {
            "cache_tf_data": {
                "x": autoencoder_dataset(image_set, rows, BATCH, shuffle=True, seed=0)
            },
            "in_memory_fit": {"x": in_memory, "y": in_memory, "batch_size": BATCH, "shuffle": True},
        }
        models, timers = {}, {}
        for feed in feeds:
            keras.utils.set_random_seed(0)
            models[feed], timers[feed] = build_autoencoder(case, 3), _epoch_timer()
        # One epoch of each feed in turn, so that both see the same changes in load; the
        # first round compiles and does not count.
        for _ in range(TRAIN_ROUNDS + 1):
            for feed, kwargs in feeds.items():
                models[feed].fit(**kwargs, epochs=1, verbose=0, callbacks=[timers[feed]])
        rates = {feed: len(rows) / min(timers[feed].seconds[1:]) for feed in feeds}
        model = models["cache_tf_data"]
        flops = 3 * forward_flops(model)
        results[f"case_{case_name}"] = {
            "train_flops_per_image": flops,
            "cache_images_per_s": round(rates["cache_tf_data"], 1),
            "in_memory_images_per_s": round(rates["in_memory_fit"], 1),
            "ratio": round(rates["cache_tf_data"] / rates["in_memory_fit"], 2),
            "achieved_gflop_per_s": round(flops * rates["cache_tf_data"] / 1e9, 1),
            "fraction_of_matmul": round(flops * rates["cache_tf_data"] / matmul, 2),
        }
    return results


# --- driver ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000, help="generated JPEGs")
    parser.add_argument("--encode-images", type=int, default=200_000, help="largest encode")
    parser.add_argument("--train-images", type=int, default=1024, help="images per epoch")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--preprocess-only",
        action="store_true",
        help="only the decode cache (no TensorFlow needed)",
    )
    parser.add_argument("--encode-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.encode_child:
        print(json.dumps(encode_child(args.encode_child)))
        return
    if args.preprocess_only:
        load = [round(x, 2) for x in os.getloadavg()]
        figures = {
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
            "load_average_at_start": load,
            "preprocess": bench_preprocess(celeba_like_folder(args.images)),
        }
        write(figures, args.out)
        return
    load = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    folder = celeba_like_folder(args.images)
    figures: dict[str, Any] = {"preprocess": bench_preprocess(folder)}  # before TensorFlow
    figures = {**machine(), **figures}
    figures["load_average_at_start"] = load
    figures["input_pipeline"] = bench_input_pipeline(folder)
    small = min(20_000, args.encode_images)
    figures["encode"] = bench_encode(sorted({small, args.encode_images}))
    matmul = matmul_flops_per_s()
    figures["matmul_gflop_per_s"] = round(matmul / 1e9, 1)
    figures["train"] = bench_train(folder, args.train_images, matmul)
    figures["total_s"] = round(time.perf_counter() - started, 1)
    write(figures, args.out)


def write(figures: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
