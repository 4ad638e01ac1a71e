"""From the ``data`` parameter to an :class:`ImageSet`: the one entry to the data sets.

It sits above the loaders (built-in faces, image folders and their decode cache), so
that none of them imports another in a loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aelatent.data.cache import cached_images
from aelatent.data.image_folder import (
    find_partition_file,
    hashed_partitions,
    list_images,
    match_partitions,
    parse_partition_file,
)
from aelatent.data.images import BUILT_IN, ImageSet
from aelatent.data.orl import load_orl
from aelatent.errors import UserError


def load_images(data: str, image_size: int) -> ImageSet:
    """``orl`` for the built-in faces, else a path to a folder or zip of images (CelebA style)."""
    if data == BUILT_IN:
        return load_orl(image_size)
    path = Path(data).expanduser()
    if not path.exists():
        raise UserError(
            f"data={data!r} does not exist: use {BUILT_IN!r} (built-in faces) or a path to a "
            "folder or .zip of images"
        )
    return load_image_folder(path, image_size)


def load_image_folder(path: Path, image_size: int, *, progress: bool = True) -> ImageSet:
    """A folder or zip of images as an :class:`ImageSet` backed by the preprocessing cache.

    The partition file is checked before anything is decoded, so a mismatch fails fast.
    Images that cannot be decoded are logged, skipped and left out of the set.
    """
    if image_size < 1:
        raise UserError(f"image_size={image_size} must be a positive number of pixels")
    source = list_images(Path(path))
    found = find_partition_file(source)
    if found is None:
        partitions = hashed_partitions(source.ids)
    else:
        partitions = match_partitions(source.ids, parse_partition_file(*found), found[0])
    partition_of = dict(zip(source.ids, partitions.tolist(), strict=True))
    cached = cached_images(source, image_size, progress=progress)
    return ImageSet(
        name=source.name,
        images=cached.images,
        ids=cached.ids,
        partitions=np.array([partition_of[i] for i in cached.ids], dtype=partitions.dtype),
    )
