"""Image grids: each row one strip of its images (white between and after them)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np

from aelatent.plots.image_grids import GAP, image_strip, save_image_rows


def test_a_strip_places_every_image_and_pads_with_white():
    images = np.stack([np.full((3, 2, 1), v, dtype=np.float32) for v in (0.0, 0.5, 2.0)])
    strip = image_strip(images, n_cols=4)
    assert strip.shape == (3, 4 * (2 + GAP) - GAP, 1)
    for i, value in enumerate((0.0, 0.5, 1.0)):  # 2.0 is clipped to 1
        start = i * (2 + GAP)
        assert np.all(strip[:, start : start + 2] == value)
    assert np.all(strip[:, 2 : 2 + GAP] == 1.0)  # the gap
    assert np.all(strip[:, 3 * (2 + GAP) :] == 1.0)  # the missing fourth image


def test_rows_of_different_lengths_and_colours_are_saved(tmp_path: Path):
    rng = np.random.default_rng(0)
    gray = rng.uniform(size=(8, 112, 92, 1))
    path = save_image_rows([gray, gray[:3]], ["real", "sampled"], tmp_path / "g.png", "title")
    assert matplotlib.image.imread(path).shape[1] > 800  # 8 columns wide
    colour = save_image_rows([rng.uniform(size=(2, 16, 16, 3))], ["rgb"], tmp_path / "c.png")
    assert colour.stat().st_size > 1000
