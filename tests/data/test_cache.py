"""The preprocessing cache: decoded once, reused, keyed by what changes the pixels."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from celeba_like import (
    copy_with_partition_file,
    use_temporary_cache,
    write_celeba_source,
    zip_folder,
)

from aelatent.data import cache
from aelatent.data.cache import cache_dir, cached_images
from aelatent.data.image_folder import decode_image, list_images
from aelatent.data.loading import load_image_folder
from aelatent.errors import UserError


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_temporary_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def celeba_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_celeba_source(tmp_path_factory.mktemp("celeba"))


@pytest.fixture
def celeba_folder(celeba_source: Path, tmp_path: Path) -> Path:
    return copy_with_partition_file(celeba_source, tmp_path)


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("*.npy"))


def test_cache_dir_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("AELATENT_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "aelatent"
    monkeypatch.setenv("AELATENT_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"


def test_decoded_once_then_reused(celeba_folder: Path, isolated_cache: Path):
    source = list_images(celeba_folder)
    first = cached_images(source, 24, progress=False)
    assert not first.reused and first.images.shape == (120, 24, 24, 3)
    assert isinstance(first.images, np.memmap) and not first.images.flags.writeable
    assert first.path.parent == isolated_cache
    assert first.path.name.startswith("img_align_celeba-24px-")
    info = json.loads(first.path.with_suffix(".json").read_text())
    assert info["ids"] == list(source.ids) and info["skipped"] == []
    assert info["key"]["image_size"] == 24 and info["key"]["crop"]
    expected = decode_image(source.read(5), 24)
    np.testing.assert_array_equal(first.images[5], expected)

    again = cached_images(list_images(celeba_folder), 24, progress=False)
    assert again.reused and again.path == first.path
    np.testing.assert_array_equal(again.images, first.images)
    assert len(_entries(isolated_cache)) == 1


def test_key_follows_size_and_source(celeba_folder: Path, isolated_cache: Path):
    load_image_folder(celeba_folder, 16, progress=False)
    load_image_folder(celeba_folder, 16, progress=False)
    assert len(_entries(isolated_cache)) == 1
    load_image_folder(celeba_folder, 8, progress=False)  # another size: another entry
    assert len(_entries(isolated_cache)) == 2
    changed = celeba_folder / "000003.jpg"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced
    load_image_folder(celeba_folder, 16, progress=False)
    assert len(_entries(isolated_cache)) == 3


def test_corrupt_image_is_reported_and_skipped(
    celeba_folder: Path, caplog: pytest.LogCaptureFixture
):
    good = load_image_folder(celeba_folder, 16, progress=False)
    truncated = celeba_folder / "000007.jpg"
    truncated.write_bytes(truncated.read_bytes()[:600])
    (celeba_folder / "000011.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    # the partition file still lists them: they exist, they just cannot be decoded
    with caplog.at_level(logging.WARNING):
        image_set = load_image_folder(celeba_folder, 16, progress=False)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("000007.jpg" in m for m in warned) and any("000011.jpg" in m for m in warned)
    assert len(image_set.ids) == 118 and "000007.jpg" not in image_set.ids
    assert "000011.jpg" not in image_set.ids
    kept = [good.ids.index(i) for i in image_set.ids]
    np.testing.assert_array_equal(image_set.images, good.images[kept])  # no zero rows averaged in
    np.testing.assert_array_equal(image_set.partitions, good.partitions[kept])
    info = json.loads(Path(image_set.images.filename).with_suffix(".json").read_text())
    assert [name for name, _ in info["skipped"]] == ["000007.jpg", "000011.jpg"]

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reused = load_image_folder(celeba_folder, 16, progress=False)
    assert len(reused.ids) == 118
    assert any("000007.jpg" in r.getMessage() for r in caplog.records)  # said again on reuse


def test_nothing_decodable_is_a_user_error(tmp_path: Path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(UserError, match="none of the 3 images could be decoded"):
        load_image_folder(folder, 16, progress=False)


def test_incomplete_entry_is_rebuilt(celeba_folder: Path, isolated_cache: Path):
    first = load_image_folder(celeba_folder, 16, progress=False)
    meta = Path(first.images.filename).with_suffix(".json")
    meta.unlink()  # as if the run had been killed before the entry was complete
    rebuilt = cached_images(list_images(celeba_folder), 16, progress=False)
    assert not rebuilt.reused and meta.is_file()
    np.testing.assert_array_equal(rebuilt.images, first.images)


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_worker_processes_give_the_same_pixels(
    kind: str, celeba_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (celeba_folder / "000002.jpg").write_bytes(b"broken")
    if kind == "zip":
        archive = zip_folder(celeba_folder, tmp_path / "faces.zip", "img_align_celeba")
        source = list_images(archive)
        source.read(0)  # the parent holds an open zip when the workers fork
    else:
        source = list_images(celeba_folder)
    serial = cached_images(source, 16, root=tmp_path / "serial", workers=1, progress=False)
    monkeypatch.setattr(cache, "MIN_PARALLEL", 0)
    monkeypatch.setattr(cache, "CHUNK", 16)
    parallel = cached_images(source, 16, root=tmp_path / "parallel", workers=2, progress=False)
    assert parallel.ids == serial.ids and len(serial.ids) == 119
    assert parallel.skipped == serial.skipped
    np.testing.assert_array_equal(parallel.images, serial.images)
