"""Feeding images to the network: tf.data for training, batched streaming for encoding.

Images stay uint8 until a batch is formed, then become float32 in [0, 1]; so memory holds
one batch of floats, whatever the size of the data set.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from aelatent.data.images import ImageSet


def _to_unit_float(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    images = tf.cast(batch, tf.float32) / 255.0
    return images, images


def autoencoder_dataset(
    image_set: ImageSet, indices: np.ndarray, batch_size: int, *, shuffle: bool, seed: int
) -> tf.data.Dataset:
    """(image, image) batches of the given rows; reshuffled each epoch with a fixed seed."""
    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(image_set.images[indices]))
    if shuffle:
        dataset = dataset.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    return (
        dataset.batch(batch_size)
        .map(_to_unit_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def unit_float_batches(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch_size):
        yield np.asarray(images[start : start + batch_size], dtype=np.float32) / 255.0


def encode_images(
    encoder: keras.Model, images: np.ndarray, batch_size: int = 256, out: np.ndarray | None = None
) -> np.ndarray:
    """Latents of every image, batch by batch, into ``out`` (e.g. a memory map) if given."""
    z_dim = int(encoder.output.shape[-1])
    latents = np.empty((len(images), z_dim), dtype=np.float32) if out is None else out
    start = 0
    for batch in unit_float_batches(images, batch_size):
        latents[start : start + len(batch)] = encoder(batch, training=False).numpy()
        start += len(batch)
    return latents
