"""The train entry point on CelebA-shaped data: a zip with a partition file, end to end."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import mlflow_run, newest_run
from PIL import Image

from aelatent.jobs.train import cli

N_IMAGES = 60
CORRUPT = "000013.jpg"
PARTITION = {0: "train", 1: "val", 2: "test"}


def _celeba_zip(folder: Path) -> tuple[Path, dict[str, str]]:
    """``img_align_celeba.zip`` of 178x218 JPEGs (one truncated) with CelebA's partition file."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:218, 0:178]
    codes = {f"{i + 1:06d}.jpg": 0 if i < 40 else 1 if i < 50 else 2 for i in range(N_IMAGES)}
    archive = folder / "img_align_celeba.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in codes:
            face = ((xx - 89) / rng.uniform(35, 50)) ** 2 + ((yy - 128) / 60) ** 2 <= 1
            pixels = np.where(face[..., None], rng.uniform(120, 240, 3), rng.uniform(0, 255, 3))
            pixels = np.clip(pixels + rng.normal(0, 4, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name, quality=90)
            data = (folder / name).read_bytes()
            handle.writestr(f"img_align_celeba/{name}", data[:500] if name == CORRUPT else data)
        handle.writestr(
            "list_eval_partition.txt", "".join(f"{name} {code}\n" for name, code in codes.items())
        )
    return archive, {name: PARTITION[code] for name, code in codes.items()}


@pytest.mark.e2e
def test_train_on_a_celeba_zip(tracking_uri: str, tmp_path: Path):
    archive, partition_of = _celeba_zip(tmp_path)
    cache = tmp_path / "cache"
    params = {"data": str(archive), "epochs": "1", "image_size": "32"}
    result = mlflow_run("train", params, tracking_uri, AELATENT_CACHE_DIR=str(cache))
    assert result.returncode == 0, result.output[-4000:]
    assert CORRUPT in result.stderr  # reported, then skipped
    assert len(list(cache.glob("img_align_celeba-32px-*.npy"))) == 1

    run = newest_run("tags.dataset = 'img_align_celeba'")
    assert run.info.status == "FINISHED"
    assert run.data.params["n_images"] == str(N_IMAGES - 1)
    assert run.data.params["n_channels"] == "3"
    folder = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="latents", dst_path=str(tmp_path / "run")
    )
    latents = np.load(Path(folder) / "latents.npy")
    assert latents.shape == (N_IMAGES - 1, 256) and np.isfinite(latents).all()
    with open(Path(folder) / "index.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_IMAGES - 1 and CORRUPT not in {r["image_id"] for r in rows}
    assert all(r["partition"] == partition_of[r["image_id"]] for r in rows)
    assert {r["partition"] for r in rows} == {"train", "val", "test"}


@pytest.mark.parametrize("case", ["not_a_zip", "no_images", "partition_mismatch"])
def test_bad_data_is_one_line(case: str, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("AELATENT_CACHE_DIR", str(tmp_path / "cache"))
    if case == "not_a_zip":
        data, fragment = tmp_path / "faces.zip", "is not a zip archive"
        data.write_text("hello")
    elif case == "no_images":
        data, fragment = tmp_path / "empty", "holds no images"
        data.mkdir()
    else:
        data, fragment = tmp_path / "faces", "not among the images"
        data.mkdir()
        Image.new("RGB", (178, 218)).save(data / "000001.jpg")
        (data / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n")
    with pytest.raises(SystemExit) as exit_info:
        cli(["--data", str(data), "--epochs", "1", "--image-size", "32"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aelatent train: error: ")
    assert fragment in err
