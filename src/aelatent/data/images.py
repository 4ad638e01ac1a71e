"""The data-set interface every loader returns: square uint8 images, ids and partitions.

Images are kept as uint8 ``[n, size, size, channels]`` (possibly a memory map) and scaled
to [0, 1] only when fed to the network, so a data set the size of CelebA stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

BUILT_IN = "orl"
PARTITIONS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageSet:
    """Square images with a stable id and a partition (train/val/test) per row."""

    name: str
    images: np.ndarray
    ids: tuple[str, ...]
    partitions: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 [n, h, w, c], got {self.images.dtype} {self.images.shape}"
            )
        if not (len(self.ids) == len(self.partitions) == len(self.images)):
            raise ValueError("ids, partitions and images differ in length")

    @property
    def n_channels(self) -> int:
        return int(self.images.shape[-1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def indices(self, partition: str) -> np.ndarray:
        return np.flatnonzero(self.partitions == partition)


def square_crop_resize(image: Image.Image, size: int, top_offset: float = 0.5) -> np.ndarray:
    """Crop the largest centred square (``top_offset`` places it vertically), resize to ``size``.

    Returns uint8 ``[size, size, channels]``. Area-averaging (``Image.Resampling.BOX`` after a
    reduce) keeps downscaled faces free of aliasing.
    """
    width, height = image.size
    side = min(width, height)
    left = (width - side) // 2
    top = round((height - side) * top_offset)
    square = image.crop((left, top, left + side, top + side))
    resized = square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    array = np.asarray(resized, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array
