"""The folder/zip loader on CelebA-shaped data: ids, partitions, crop, channels, bad input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from celeba_like import (
    N_IMAGES,
    copy_with_partition_file,
    partition_text,
    use_temporary_cache,
    write_celeba_like,
    write_celeba_source,
    zip_folder,
)
from PIL import Image

from aelatent.data import load_images
from aelatent.data.image_folder import TOP_OFFSET, hashed_partitions
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


def test_folder_with_partition_file(celeba_folder: Path):
    image_set = load_images(str(celeba_folder), 32)
    assert image_set.images.shape == (N_IMAGES, 32, 32, 3)
    assert image_set.images.dtype == np.uint8
    assert image_set.name == "img_align_celeba"
    assert image_set.ids[:2] == ("000001.jpg", "000002.jpg")
    assert list(image_set.ids) == sorted(image_set.ids)
    expected = [line.split()[1] for line in partition_text(list(image_set.ids)).splitlines()]
    assert [str(p) for p in image_set.partitions] == [
        {"0": "train", "1": "val", "2": "test"}[code] for code in expected
    ]
    assert image_set.images.std() > 20  # decoded pictures, not zeros


def test_zip_gives_the_same_set_as_its_folder(celeba_folder: Path, tmp_path: Path):
    text = (celeba_folder.parent / "list_eval_partition.txt").read_text()
    archive = zip_folder(
        celeba_folder,
        tmp_path / "img_align_celeba.zip",
        "img_align_celeba",
        extra={"list_eval_partition.txt": text},
    )
    from_zip = load_image_folder(archive, 32)
    from_folder = load_image_folder(celeba_folder, 32)
    assert from_zip.name == "img_align_celeba"
    assert from_zip.ids == from_folder.ids  # the zip's top folder is not part of the id
    np.testing.assert_array_equal(from_zip.partitions, from_folder.partitions)
    np.testing.assert_array_equal(from_zip.images, from_folder.images)
    assert set(from_zip.partitions) == {"train", "val", "test"}


def test_partition_file_beside_the_zip(celeba_folder: Path, tmp_path: Path):
    holder = tmp_path / "downloads"
    holder.mkdir()
    archive = zip_folder(celeba_folder, holder / "faces.zip", "img_align_celeba")
    (holder / "list_eval_partition.csv").write_text(
        "image_id,partition\n"
        + partition_text(sorted(p.name for p in celeba_folder.iterdir())).replace(" ", ",")
    )
    image_set = load_image_folder(archive, 16)
    assert np.count_nonzero(image_set.partitions == "test") == N_IMAGES // 10


def test_without_partition_file_the_split_is_hashed(celeba_source: Path):
    image_set = load_image_folder(celeba_source, 16)
    np.testing.assert_array_equal(image_set.partitions, hashed_partitions(image_set.ids))
    many = hashed_partitions(tuple(f"{i:06d}.jpg" for i in range(20000)))
    assert set(many) == {"train", "val"}
    assert 0.08 < np.mean(many == "val") < 0.12
    # by base name: the same image in another folder keeps its partition
    assert hashed_partitions(("a/000007.jpg",)) == hashed_partitions(("000007.jpg",))


def test_recursive_and_mixed_formats_become_rgb(tmp_path: Path):
    folder = tmp_path / "faces"
    write_celeba_like(folder / "sub" / "deeper", n=2)
    gray = Image.fromarray(np.full((218, 178), 200, np.uint8), mode="L")
    gray.save(folder / "gray.png")
    rgba = Image.new("RGBA", (178, 218), (10, 20, 30, 0))
    rgba.save(folder / "sub" / "alpha.PNG")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"ignored")
    image_set = load_image_folder(folder, 8)
    assert image_set.ids == (
        "gray.png",
        "sub/alpha.PNG",
        "sub/deeper/000001.jpg",
        "sub/deeper/000002.jpg",
    )
    assert image_set.images.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(image_set.images[0], 200)
    np.testing.assert_array_equal(image_set.images[1], np.broadcast_to([10, 20, 30], (8, 8, 3)))


def test_crop_is_the_stated_square(tmp_path: Path):
    """Rows above and below the square are red and blue; the square itself is green."""
    top = round((218 - 178) * TOP_OFFSET)
    assert top == 30  # as documented: rows 30..207 of CelebA's 218
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[:top] = (255, 0, 0)
    pixels[top : top + 178] = (0, 255, 0)
    pixels[top + 178 :] = (0, 0, 255)
    folder = tmp_path / "bands"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "lossless.png")
    Image.fromarray(pixels).save(folder / "lossy.jpg", quality=95)
    exact = load_image_folder(folder, 178)
    lossless = exact.images[exact.ids.index("lossless.png")]
    np.testing.assert_array_equal(lossless, pixels[top : top + 178])
    small = load_image_folder(folder, 64)
    for image in small.images:  # the JPEG too, decoded in draft mode at half scale
        assert image[..., 1].min() > 200 and image[..., 0].max() < 60 and image[..., 2].max() < 60


def _user_error(path: Path, size: int = 16) -> str:
    with pytest.raises(UserError) as caught:
        load_images(str(path), size)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_paths_and_archives(tmp_path: Path):
    assert "does not exist" in _user_error(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    assert "holds no images" in _user_error(empty)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"this is not a zip archive")
    assert "is not a zip archive" in _user_error(fake)
    text = tmp_path / "faces.txt"
    text.write_text("hello")
    assert "not a .zip archive" in _user_error(text)
    no_images = tmp_path / "docs.zip"
    with zipfile.ZipFile(no_images, "w") as handle:
        handle.writestr("docs/readme.txt", "nothing")
    assert "holds no images" in _user_error(no_images)


def test_partition_file_must_match_the_images(celeba_folder: Path):
    partition_file = celeba_folder.parent / "list_eval_partition.txt"
    lines = partition_file.read_text().splitlines(keepends=True)
    partition_file.write_text("".join(lines[1:]))
    message = _user_error(celeba_folder)
    assert "does not list 1 of the 120 images" in message and "000001.jpg" in message
    partition_file.write_text("".join(lines) + "999999.jpg 0\n")
    message = _user_error(celeba_folder)
    assert "not among the images" in message and "999999.jpg" in message
    partition_file.write_text("".join(lines[:-1]) + "000120.jpg 7\n")
    assert "line 120" in _user_error(celeba_folder)


def test_image_size_must_be_positive(celeba_folder: Path):
    assert "image_size=0" in _user_error(celeba_folder, 0)
