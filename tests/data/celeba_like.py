"""CelebA-shaped data made on the fly: 178x218 RGB JPEGs in a folder and in a zip.

A helper module, not a conftest: a second module named ``conftest`` would shadow
tests/conftest.py for the ``from conftest import ...`` of the other test modules.

Each image is a colour gradient with a bright ellipse (a "face") below the centre, so crops,
channel order and compression behave as with real aligned faces, at ~10 kB a file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WIDTH, HEIGHT = 178, 218
N_IMAGES = 120


def celeba_like(rng: np.random.Generator) -> np.ndarray:
    """One uint8 [218, 178, 3] image."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    weight = (xx / WIDTH * rng.uniform() + yy / HEIGHT * rng.uniform())[..., None] / 2
    image = rng.uniform(0, 255, 3) * (1 - weight) + rng.uniform(0, 255, 3) * weight
    cx, cy = 89 + rng.integers(-8, 9), 128 + rng.integers(-8, 9)
    face = ((xx - cx) / 45) ** 2 + ((yy - cy) / 60) ** 2 <= 1
    image[face] = rng.uniform(120, 240, 3)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def celeba_name(index: int) -> str:
    return f"{index + 1:06d}.jpg"


def write_celeba_like(folder: Path, n: int = N_IMAGES, seed: int = 0) -> list[str]:
    """n JPEGs named like CelebA's (000001.jpg, ...) in ``folder``; returns the names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [celeba_name(i) for i in range(n)]
    for name in names:
        Image.fromarray(celeba_like(rng)).save(folder / name, quality=90)
    return names


def partition_text(names: list[str]) -> str:
    """CelebA's format: ``name code`` with 0 train, 1 val, 2 test (here 80/10/10 in order)."""
    n = len(names)
    codes = [0 if i < 0.8 * n else 1 if i < 0.9 * n else 2 for i in range(n)]
    return "".join(f"{name} {code}\n" for name, code in zip(names, codes, strict=True))


def zip_folder(folder: Path, archive: Path, top: str, extra: dict[str, str] | None = None) -> Path:
    """A zip holding ``top/<file>`` for every file of ``folder`` (CelebA's zip layout)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for file in sorted(folder.iterdir()):
            handle.write(file, f"{top}/{file.name}")
        for name, text in (extra or {}).items():
            handle.writestr(name, text)
    return archive


def use_temporary_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the preprocessing cache at an empty folder of this test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AELATENT_CACHE_DIR", str(cache))
    return cache


def write_celeba_source(root: Path) -> Path:
    """``root/img_align_celeba/*.jpg`` (120 images), no partition file: a read-only source."""
    write_celeba_like(root / "img_align_celeba")
    return root / "img_align_celeba"


def copy_with_partition_file(source: Path, tmp_path: Path) -> Path:
    """A writable copy of ``source`` with ``list_eval_partition.txt`` beside the folder."""
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for file in source.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    names = sorted(f.name for f in folder.iterdir())
    (folder.parent / "list_eval_partition.txt").write_text(partition_text(names))
    return folder
