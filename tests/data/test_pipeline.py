"""Training batches and streaming encoding from a memory-mapped cache (or an in-memory array)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from aelatent.data.images import ImageSet
from aelatent.data.pipeline import RowReader, autoencoder_dataset, encode_images


def _memmap_set(tmp_path: Path, n: int = 50, size: int = 8) -> ImageSet:
    """A cache-like ImageSet: a read-only memory map of a .npy holding row numbers as pixels."""
    path = tmp_path / "images.npy"
    images = np.lib.format.open_memmap(path, "w+", np.uint8, (n, size, size, 3))
    images[:] = (np.arange(n) % 256).astype(np.uint8)[:, None, None, None]
    images[:, 0, 0, 0] = 255 - np.arange(n) % 256  # distinct first pixel too
    images.flush()
    del images
    ids = tuple(f"{i:03d}.jpg" for i in range(n))
    partitions = np.array(["val" if i % 5 == 0 else "train" for i in range(n)])
    return ImageSet("test", np.load(path, mmap_mode="r"), ids, partitions)


def _rows(batch: np.ndarray) -> list[int]:
    """The row number each image of a batch came from (its pixels encode it)."""
    return np.rint(batch[:, 1, 1, 0] * 255).astype(int).tolist()


def _order(dataset) -> list[int]:
    return [row for x, _ in dataset for row in _rows(x.numpy())]


def test_row_reader_reads_ranges_from_the_file(tmp_path: Path):
    images = _memmap_set(tmp_path).images
    reader = RowReader(images)
    assert reader._fd is not None  # a whole-file map: ranges come by positioned reads
    picked = np.array([7, 3, 49, 3])
    np.testing.assert_array_equal(reader.rows(picked), images[picked])
    np.testing.assert_array_equal(reader.range(10, 23), images[10:23])
    view = RowReader(images[5:20])  # a view has other bounds than its file: plain indexing
    assert view._fd is None
    np.testing.assert_array_equal(view.rows(np.array([0, 14])), images[[5, 19]])
    np.testing.assert_array_equal(view.range(2, 9), images[7:14])
    np.testing.assert_array_equal(RowReader(np.asarray(images)).rows(picked), images[picked])


def test_training_batches_cover_the_rows_once_per_epoch(tmp_path: Path):
    image_set = _memmap_set(tmp_path)
    train = image_set.indices("train")
    dataset = autoencoder_dataset(image_set, train, 16, shuffle=True, seed=3)
    epochs = []
    for _ in range(2):
        order = []
        for x, y in dataset:
            x = x.numpy()
            assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
            np.testing.assert_array_equal(x, y.numpy())
            order += _rows(x)
        epochs.append(order)
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(train)
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    again = autoencoder_dataset(image_set, train, 16, shuffle=True, seed=3)
    assert _order(again) == epochs[0]  # same seed, same order
    ordered = autoencoder_dataset(image_set, image_set.indices("val"), 4, shuffle=False, seed=0)
    assert _order(ordered) == list(image_set.indices("val"))
    assert ordered.element_spec[0].shape.as_list() == [None, 8, 8, 3]


def test_training_from_an_in_memory_set(tmp_path: Path):
    image_set = _memmap_set(tmp_path)
    in_memory = ImageSet("mem", np.array(image_set.images), image_set.ids, image_set.partitions)
    batches = autoencoder_dataset(in_memory, np.arange(10), 4, shuffle=False, seed=0)
    assert _order(batches) == list(range(10))


def _tiny_encoder(size: int = 8) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    z = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    return keras.Model(inputs, z)


def test_encoding_streams_into_a_memmap(tmp_path: Path):
    image_set = _memmap_set(tmp_path, n=45)
    encoder = _tiny_encoder()
    expected = encoder(np.asarray(image_set.images, np.float32) / 255.0).numpy()
    out = np.lib.format.open_memmap(tmp_path / "latents.npy", "w+", np.float32, (45, 5))
    result = encode_images(encoder, image_set.images, batch_size=16, out=out)
    assert result is out
    out.flush()
    np.testing.assert_allclose(np.load(tmp_path / "latents.npy"), expected, rtol=1e-5, atol=1e-5)
    in_memory = encode_images(encoder, np.asarray(image_set.images), batch_size=7)
    np.testing.assert_allclose(in_memory, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="out has shape"):
        encode_images(encoder, image_set.images, out=np.empty((44, 5), np.float32))
