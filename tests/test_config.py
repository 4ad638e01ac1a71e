from pathlib import Path

import pytest
import yaml

from aelatent.config import load_case, parse_case
from aelatent.errors import UserError


def test_reference_cases_match_science():
    one, two = load_case("I"), load_case("II")
    assert one.model.encoder.filters == (32, 64, 128, 256)
    assert one.model.encoder.kernels == (3, 3, 3, 3)
    assert one.model.decoder.filters == (128, 64, 32, "n_ch")
    assert one.model.decoder.kernels == (3, 3, 3, 3)
    assert two.model.encoder.filters == (64, 64, 128, 128)
    assert two.model.encoder.kernels == (5, 5, 3, 3)
    assert two.model.decoder.filters == (128, 64, 64, "n_ch")
    assert two.model.decoder.kernels == (3, 3, 5, 5)
    for case, celeba_epochs in ((one, 24), (two, 30)):
        assert case.model.z_dim == 256
        assert case.model.encoder.strides == (2, 2, 2, 2)
        assert case.model.encoder.padding == ("same",) * 4
        assert case.training.learning_rate == 0.0005
        assert case.training.epochs_celeba == celeba_epochs


def test_flat_params_cover_every_value():
    params = load_case("II").flat_params()
    assert params["model.encoder.kernels"] == "5,5,3,3"
    assert params["training.learning_rate"] == 0.0005
    assert params["data.image_size"] == 64


def test_overrides_and_image_size_rule():
    case = load_case("I").with_overrides(epochs=3, image_size=48)
    assert (case.training.epochs, case.image_size) == (3, 48)
    with pytest.raises(UserError, match=r"image_size=50 .* multiple of 16"):
        load_case("I").with_overrides(image_size=50)


@pytest.mark.parametrize(
    ("case", "message"),
    [("III", "unknown case 'III'"), ("missing.yaml", "does not exist")],
)
def test_bad_case_names(case, message):
    with pytest.raises(UserError, match=message):
        load_case(case)


def test_yaml_path_and_bad_values(tmp_path):
    raw = yaml.safe_load(Path(load_case("I").source).read_text())
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_case(str(path)).model.z_dim == 256
    raw["model"]["activation"] = 7
    with pytest.raises(UserError, match=r"model\.activation=7"):
        parse_case(raw)
    raw["model"]["activation"] = 2
    raw["model"]["decoder"]["filters"] = [128, 64, 32, 3]
    with pytest.raises(UserError, match=r"must end with 'n_ch'"):
        parse_case(raw)
