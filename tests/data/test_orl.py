import numpy as np
from PIL import Image

from aelatent.data import load_images
from aelatent.data.images import square_crop_resize
from aelatent.data.orl import VALIDATION_PEOPLE, orl_files


def test_orl_faces_are_complete_and_split_by_person():
    image_set = load_images("orl", 64)
    assert image_set.images.shape == (400, 64, 64, 1)
    assert image_set.images.dtype == np.uint8
    assert len(set(image_set.ids)) == 400
    val_people = {
        int(i.split("/")[0][1:])
        for i, p in zip(image_set.ids, image_set.partitions, strict=True)
        if p == "val"
    }
    train_people = {
        int(i.split("/")[0][1:])
        for i, p in zip(image_set.ids, image_set.partitions, strict=True)
        if p == "train"
    }
    assert val_people == set(VALIDATION_PEOPLE)
    assert not val_people & train_people
    assert image_set.images.std() > 20  # real faces, not a constant


def test_crop_is_centred_and_matches_raw_pixels():
    _, _, path = orl_files()[0]
    raw = np.asarray(Image.open(path))
    assert raw.shape == (112, 92)
    full = square_crop_resize(Image.open(path), 92)[..., 0]
    np.testing.assert_array_equal(full, raw[10:102, :])


def test_image_size_is_respected():
    assert load_images("orl", 32).images.shape == (400, 32, 32, 1)
