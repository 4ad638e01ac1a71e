"""CelebA-style data: a folder (searched recursively) or a .zip of JPEG/PNG images.

Conventions, so that every run sees the same pixels and the same split:

- **ids**: the path of each image relative to the folder (``/``-separated). In a zip whose
  members all sit in one top folder (``img_align_celeba.zip`` holds ``img_align_celeba/``),
  that folder is left out, so a zip and its unpacked folder give the same ids.
- **crop**: the largest square (178x178 for CelebA's 178x218 aligned faces), placed
  horizontally in the centre and vertically at ``TOP_OFFSET`` = 0.75 of the spare height
  (rows 30..207 of 218). The aligned faces sit below the image centre (eyes near row 111,
  chin near row 185), so this square holds brow to chin with the face near its centre.
  Then the square is resized to ``image_size`` (Lanczos) and converted to RGB (3 channels;
  grayscale, palette and RGBA images too, alpha dropped). JPEGs are decoded at a reduced
  DCT scale no smaller than ``image_size`` (PIL's draft mode), which is several times
  faster and, like Lanczos, an area-weighted downscale.
- **partitions**: CelebA's ``list_eval_partition.txt`` (``name 0|1|2`` per line, 0 train,
  1 val, 2 test) or Kaggle's ``list_eval_partition.csv`` (``image_id,partition``), found
  inside the zip, or in the data folder (for a zip: the folder holding it) or its parent.
  It must name exactly the images present (by base name, or by relative path). Without
  one, the split is deterministic: an image whose base name has a CRC-32 divisible by 10
  goes to ``val`` (about 10%), the rest to ``train``; there is no ``test`` partition.

Decoding goes through :mod:`aelatent.data.cache`, which decodes once and memory-maps.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from aelatent.data.images import PARTITIONS
from aelatent.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
TOP_OFFSET = 0.75
VAL_MODULUS = 10
# Part of the cache key: change it whenever decode_image changes what it produces.
CROP = f"square-top{TOP_OFFSET:g}-lanczos-rgb-draft"


@dataclass(frozen=True)
class ImageSource:
    """The listing of a folder or zip: what to decode, and a fingerprint that changes with it.

    Picklable and cheap to send to worker processes: a zip is opened lazily, once per process.
    """

    path: Path
    is_zip: bool
    names: tuple[str, ...]  # member names (zip) or relative paths (folder), in id order
    ids: tuple[str, ...]
    fingerprint: str
    _zip: list[zipfile.ZipFile] = field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.stem if self.is_zip else self.path.name

    def read(self, index: int) -> bytes:
        if not self.is_zip:
            return (self.path / self.names[index]).read_bytes()
        if not self._zip:
            self._zip.append(zipfile.ZipFile(self.path))
        return self._zip[0].read(self.names[index])

    def close(self) -> None:
        """Close this process's zip handle (a forked worker must not share its parent's)."""
        while self._zip:
            self._zip.pop().close()

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_zip"] = []
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)


def decode_image(data: bytes, image_size: int) -> np.ndarray:
    """One encoded image -> uint8 ``[image_size, image_size, 3]`` by the crop convention above."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image_size, image_size))  # JPEG only: decode at a reduced scale
        rgb = image.convert("RGB")
    width, height = rgb.size
    side = min(width, height)
    left = (width - side) // 2
    top = round((height - side) * TOP_OFFSET)
    resized = rgb.resize(
        (image_size, image_size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side)
    )
    return np.asarray(resized, dtype=np.uint8)


def _is_image(name: str) -> bool:
    base = PurePosixPath(name).name
    return name.lower().endswith(IMAGE_SUFFIXES) and not base.startswith(".")


def _list_folder(folder: Path) -> ImageSource:
    entries: list[tuple[str, int, int]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if _is_image(file):
                full = Path(root) / file
                stat = full.stat()
                relative = full.relative_to(folder).as_posix()
                entries.append((relative, stat.st_size, stat.st_mtime_ns))
    entries.sort()
    digest = hashlib.sha256()
    for name, size, mtime in entries:
        digest.update(f"{name}\0{size}\0{mtime}\n".encode())
    names = tuple(name for name, _, _ in entries)
    return ImageSource(folder, False, names, names, f"folder:{digest.hexdigest()}")


def _list_zip(path: Path) -> ImageSource:
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"data={str(path)!r} is not a zip archive: give a folder or a .zip of images"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"data={str(path)!r} is not a readable zip archive: {exc}") from exc
    names = sorted(
        info.filename
        for info in infos
        if not info.is_dir()
        and not info.filename.startswith("__MACOSX/")
        and _is_image(info.filename)
    )
    tops = {name.split("/", 1)[0] for name in names}
    strip = len(tops) == 1 and all("/" in name for name in names)
    ids = tuple(name.split("/", 1)[1] for name in names) if strip else tuple(names)
    stat = path.stat()
    fingerprint = f"zip:{stat.st_size}:{stat.st_mtime_ns}"
    return ImageSource(path, True, tuple(names), ids, fingerprint)


def list_images(path: Path) -> ImageSource:
    """The images of a folder (recursive, hidden entries skipped) or a zip, sorted by id."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        source = _list_folder(path)
    elif path.is_file():
        if path.suffix.lower() != ".zip" and not zipfile.is_zipfile(path):
            raise UserError(
                f"data={str(path)!r} is a file but not a .zip archive: give a folder or a .zip of "
                "images"
            )
        source = _list_zip(path)
    else:
        raise UserError(f"data={str(path)!r} does not exist: give a folder or a .zip of images")
    if not source.names:
        kind = "zip" if source.is_zip else "folder"
        raise UserError(
            f"data={str(path)!r}: the {kind} holds no images "
            f"({', '.join(IMAGE_SUFFIXES)}, searched recursively)"
        )
    return source


def find_partition_file(source: ImageSource) -> tuple[str, str] | None:
    """(where it was found, its text), or None: inside the zip, then beside the images."""
    if source.is_zip:
        with zipfile.ZipFile(source.path) as archive:
            for name in sorted(archive.namelist(), key=lambda n: (n.count("/"), n)):
                if PurePosixPath(name).name in PARTITION_FILES:
                    return f"{source.path}:{name}", archive.read(name).decode("utf-8", "replace")
    folder = source.path.parent if source.is_zip else source.path
    for directory in (folder, folder.parent):
        for file_name in PARTITION_FILES:
            candidate = directory / file_name
            if candidate.is_file():
                return str(candidate), candidate.read_text(encoding="utf-8", errors="replace")
    return None


def parse_partition_file(where: str, text: str) -> dict[str, str]:
    """name -> train/val/test from ``name 0|1|2`` lines (spaces or a comma; a header is skipped)."""
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if number == 1 and (len(fields) != 2 or not fields[1].isdigit()):
            continue  # a header such as "image_id,partition"
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise UserError(
                f"partition file {where!r} line {number}: {line.strip()!r} is not "
                "'<image name> 0|1|2' (0 train, 1 val, 2 test)"
            )
        name, code = fields
        if name in table:
            raise UserError(f"partition file {where!r} line {number}: {name!r} is listed twice")
        table[name] = PARTITIONS[int(code)]
    if not table:
        raise UserError(f"partition file {where!r} lists no images")
    return table


def match_partitions(ids: tuple[str, ...], table: dict[str, str], where: str) -> np.ndarray:
    """The partition of every id; the file must name exactly these images."""
    by_path = any("/" in name for name in table)
    keys = list(ids) if by_path else [PurePosixPath(i).name for i in ids]
    duplicates = [key for key, count in Counter(keys).items() if count > 1]
    if duplicates:
        duplicate = duplicates[0]
        raise UserError(
            f"partition file {where!r} names images by base name, but {duplicate!r} occurs more "
            "than once among the images: name them by relative path or remove the duplicates"
        )
    missing = [key for key in keys if key not in table]
    if missing:
        raise UserError(
            f"partition file {where!r} does not list {len(missing)} of the {len(keys)} images "
            f"(first: {missing[0]!r}): it must name every image"
        )
    unknown = set(table) - set(keys)
    if unknown:
        raise UserError(
            f"partition file {where!r} lists {len(unknown)} names that are not among the images "
            f"(first: {sorted(unknown)[0]!r}): give the complete image set or a matching file"
        )
    return np.array([table[key] for key in keys])


def hashed_partitions(ids: tuple[str, ...]) -> np.ndarray:
    """Deterministic split without a partition file: CRC-32 of the base name, 1 in 10 to val."""
    return np.array(
        [
            "val" if zlib.crc32(PurePosixPath(i).name.encode()) % VAL_MODULUS == 0 else "train"
            for i in ids
        ]
    )
