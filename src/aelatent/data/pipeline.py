"""Feeding images to the network: tf.data for training, batched streaming for encoding.

Images stay uint8 (in memory or memory-mapped from the preprocessing cache) until a batch
is formed, then become float32 in [0, 1]; so memory holds a few batches of floats, whatever
the size of the data set. Only row indices are shuffled, never the pixels.

Training gathers its random rows through the memory map (as fast as from memory once the
pages are cached; the kernel may drop them again at will, so they are no memory a run
holds). Encoding reads its consecutive rows with positioned file reads instead: the page
cache still serves them, but they are never mapped into this process, so its resident
memory stays bounded by the batches in flight, however many images it encodes.
"""

from __future__ import annotations

import os
import weakref

import keras
import numpy as np
import tensorflow as tf

from aelatent.console import progress_bar
from aelatent.data.images import ImageSet


class RowReader:
    """Rows of a uint8 image array, read from memory or the map, or from the ``.npy`` file.

    Safe to call from several tf.data threads at once (``os.pread`` has no shared offset).
    """

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self.shape = tuple(int(d) for d in images.shape[1:])
        self.row_bytes = int(np.prod(self.shape)) * images.itemsize
        self._fd: int | None = None
        self._filename = ""
        self._offset = 0
        if isinstance(images, np.memmap) and _whole_file_memmap(images):
            self._filename = str(images.filename)
            self._offset = int(images.offset)
            self._fd = os.open(self._filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return len(self.images)

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """``images[indices]`` (random rows, for training) as a fresh in-memory array."""
        return np.asarray(self.images[np.asarray(indices, dtype=np.int64)])

    def range(self, start: int, stop: int) -> np.ndarray:
        """``images[start:stop]`` as a fresh array; from a whole ``.npy`` file in one read."""
        if self._fd is None:
            return np.array(self.images[start:stop])
        out = np.empty((stop - start, *self.shape), dtype=self.images.dtype)
        self._read_into(out, start)
        return out

    def _read_into(self, out: np.ndarray, first_row: int) -> None:
        assert self._fd is not None
        view = out.reshape(-1).view(np.uint8).data  # a memoryview of the bytes
        position = self._offset + first_row * self.row_bytes
        while len(view):
            count = os.preadv(self._fd, [view], position)
            if count == 0:
                raise OSError(f"{self._filename} is shorter than its header says")
            view, position = view[count:], position + count


def _whole_file_memmap(images: np.memmap) -> bool:
    """True for an unsliced C-ordered memory map of a whole file (a view has other bounds)."""
    if images.filename is None:
        return False
    if not images.flags.c_contiguous:
        return False
    try:
        return os.path.getsize(images.filename) == images.offset + images.nbytes
    except OSError:
        return False


def _to_unit_float(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    images = tf.cast(batch, tf.float32) / 255.0
    return images, images


def autoencoder_dataset(
    image_set: ImageSet,
    indices: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """(image, image) float32 batches of the given rows; reshuffled each epoch with a fixed seed.

    Only the indices live in the dataset; each batch is gathered from ``image_set.images``
    (the cache's memory map) in a tf.data worker thread and prefetched, so the pixels are
    never copied as a whole and the accelerator does not wait on the input.
    """
    reader = RowReader(image_set.images)
    indices = np.asarray(indices, dtype=np.int64)
    shape = (None, *reader.shape)

    def load(batch_indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.numpy_function(reader.rows, [batch_indices], tf.uint8, stateful=False)
        batch.set_shape(shape)
        return _to_unit_float(batch)

    dataset = tf.data.Dataset.from_tensor_slices(indices)
    if shuffle:
        dataset = dataset.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    return (
        dataset.batch(batch_size, drop_remainder=drop_remainder)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _batch_dataset(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Row-ordered float32 batches, read and converted ahead of the encoder (prefetch)."""
    reader = RowReader(images)
    n = len(images)
    shape = (None, *reader.shape)

    def read(start: tf.Tensor) -> tf.Tensor:
        def load(begin: np.int64) -> np.ndarray:
            return reader.range(int(begin), min(int(begin) + batch_size, n))

        batch = tf.numpy_function(load, [start], tf.uint8, stateful=False)
        batch.set_shape(shape)
        return tf.cast(batch, tf.float32) / 255.0

    return (
        tf.data.Dataset.range(0, n, batch_size)
        .map(read, num_parallel_calls=2, deterministic=True)
        .prefetch(2)
    )


def encode_images(
    encoder: keras.Model,
    images: np.ndarray,
    batch_size: int = 256,
    out: np.ndarray | None = None,
    *,
    progress: bool = False,
) -> np.ndarray:
    """Latents of every image, batch by batch, into ``out`` if given, else a new float32 array.

    Give ``out`` as ``np.lib.format.open_memmap(path, "w+", np.float32, (n, z_dim))`` to write
    the latents straight to disk: memory then holds a few batches whatever ``n`` is.
    """
    z_dim = int(encoder.output.shape[-1])
    n = len(images)
    latents = np.empty((n, z_dim), dtype=np.float32) if out is None else out
    if latents.shape != (n, z_dim):
        raise ValueError(f"out has shape {latents.shape}, the latents need {(n, z_dim)}")
    start = 0
    with progress_bar(n, "encoding", "img", enabled=progress, mininterval=1.0) as bar:
        for batch in _batch_dataset(images, batch_size):
            z = encoder.predict_on_batch(batch)
            latents[start : start + len(z)] = z
            start += len(z)
            bar.update(len(z))
    if start != n:
        raise RuntimeError(f"encoded {start} of {n} images")
    return latents
