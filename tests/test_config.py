import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aelatent.arguments import CASE_NAME
from aelatent.config import load_case, parse_case
from aelatent.errors import UserError
from aelatent.limits import MAX_CASE_NAME_LENGTH, MAX_FILTERS, MAX_IMAGE_SIZE, MAX_KERNEL


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


def _case_i() -> dict[str, Any]:
    """Case I's YAML as a dict, to be spoiled one value at a time."""
    return yaml.safe_load(Path(load_case("I").source).read_text())


def _one_line_error(raw: dict[str, Any], *patterns: str) -> str:
    with pytest.raises(UserError) as caught:
        parse_case(raw, source="mine.yaml")
    message = str(caught.value)
    assert "\n" not in message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return message


def test_a_kernel_tensorflow_cannot_convolve_is_refused_in_validation():
    """Issue 28/8: a first kernel of 301 passed validation, then TensorFlow aborted in C++."""
    raw = _case_i()
    raw["model"]["encoder"]["kernels"][0] = 301
    _one_line_error(raw, r"model\.encoder\.kernels\[0\]=301", rf"at most {MAX_KERNEL}\b")
    raw = _case_i()
    raw["model"]["decoder"]["kernels"][3] = MAX_KERNEL + 1
    _one_line_error(raw, rf"model\.decoder\.kernels\[3\]={MAX_KERNEL + 1}\b")
    raw = _case_i()
    raw["model"]["encoder"]["kernels"][0] = MAX_KERNEL
    raw["model"]["decoder"]["kernels"][3] = MAX_KERNEL
    assert parse_case(raw).model.encoder.kernels[0] == MAX_KERNEL


def test_filters_and_strides_are_bounded_in_one_line():
    raw = _case_i()
    raw["model"]["encoder"]["filters"][1] = MAX_FILTERS + 1
    _one_line_error(raw, rf"model\.encoder\.filters\[1\]={MAX_FILTERS + 1}\b", "at most")
    raw = _case_i()
    raw["model"]["decoder"]["filters"][0] = 10**30
    _one_line_error(raw, r"model\.decoder\.filters\[0\]=10{30}")
    raw = _case_i()
    raw["model"]["encoder"]["strides"][0] = 10**30
    _one_line_error(raw, r"model\.encoder\.strides\[0\]=10{30}", rf"at most {MAX_IMAGE_SIZE}")


@pytest.mark.parametrize(
    "name", ["I'", "a/b", "", None, "ü case", "x" * (MAX_CASE_NAME_LENGTH + 1), True, 3]
)
def test_names_outside_the_case_rule_are_refused(name):
    """Issue 28/11-12: such names were registered as aelatent-case-I-, -a-b, -None, ---case
    (two cases could share one model), and 300 characters broke every report's file names."""
    raw = _case_i()
    raw["name"] = name
    _one_line_error(raw, r"^name=", r"letters, digits", rf"at most {MAX_CASE_NAME_LENGTH}")


def test_names_inside_the_case_rule_are_taken():
    raw = _case_i()
    for name in ("case_III", "v1.2-b", "x" * MAX_CASE_NAME_LENGTH):
        raw["name"] = name
        assert parse_case(raw).name == name
    assert CASE_NAME.pattern == r"[A-Za-z0-9_.-]+"  # the rule of the `case` parameter


def test_a_nameless_file_is_named_by_its_stem_under_the_same_rule(tmp_path):
    raw = _case_i()
    del raw["name"]
    good = tmp_path / "case_IV.yaml"
    good.write_text(yaml.safe_dump(raw))
    assert load_case(str(good)).name == "case_IV"
    bad = tmp_path / "my case.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=r"name='my case' \(the file's name\)"):
        load_case(str(bad))


@pytest.mark.parametrize(
    ("path", "key", "nearest"),
    [
        ((), "nmae", "name"),
        (("model",), "zdim", "model.z_dim"),
        (("model", "encoder"), "kernel", "model.encoder.kernels"),
        (("model", "decoder"), "stride", "model.decoder.strides"),
        (("training",), "epoch", "training.epochs"),
        (("data",), "imagesize", "data.image_size"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_known_key(path, key, nearest):
    """Issue 28/12: `zdim: 12` (a typo of z_dim) was ignored in silence."""
    raw = _case_i()
    section = raw
    for part in path:
        section = section[part]
    section[key] = 12
    where = ".".join((*path, key))
    _one_line_error(raw, rf"unknown key {re.escape(where)}\b", rf"did you mean {nearest}\?")


def test_an_unknown_key_with_no_near_one_lists_the_allowed_keys():
    raw = _case_i()
    raw["training"]["optimizer"] = "sgd"
    _one_line_error(raw, r"unknown key training\.optimizer", r"allowed: learning_rate, batch")


@pytest.mark.parametrize(
    ("stack", "index"), [("encoder", 0), ("encoder", 3), ("decoder", 0), ("decoder", 2)]
)
def test_n_ch_only_as_the_last_decoder_filter(stack, index):
    """Issue 28/12: n_ch in the encoder's filters gave a ValueError traceback."""
    raw = _case_i()
    raw["model"][stack]["filters"][index] = "n_ch"
    _one_line_error(
        raw, rf"model\.{stack}\.filters\[{index}\]='n_ch'", r"only as the last of model\.decoder"
    )


def test_a_data_section_that_is_not_a_mapping_is_one_line():
    raw = _case_i()
    raw["data"] = [64]
    _one_line_error(raw, r"data")


def test_the_registry_refuses_a_name_it_would_have_rewritten():
    """Issue 28/12: ``a/b`` was registered as aelatent-case-a-b, the model of case ``a-b``."""
    from aelatent.io.mlflow_native import registered_model_name

    assert registered_model_name("a-b") == "aelatent-case-a-b"
    for name in ("a/b", "I'", "", "ü case"):
        with pytest.raises(UserError, match="not a case name"):
            registered_model_name(name)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("model", "zdim", 12), "unknown key model.zdim"),
        (("model", "encoder", "filters", 0, "n_ch"), "model.encoder.filters[0]='n_ch'"),
        (("name", "a/b"), "name='a/b'"),
        (("model", "encoder", "kernels", 0, 301), "model.encoder.kernels[0]=301"),
    ],
)
def test_train_refuses_the_yaml_with_exit_2_and_one_line(
    tracking_uri, tmp_path, capsys, change, fragment
):
    """What the entry point makes of it: one line and exit 2, before any training."""
    from conftest import cli_error

    from aelatent.jobs.train import cli

    raw = _case_i()
    *path, key, value = change
    section = raw
    for part in path:
        section = section[part]
    section[key] = value
    case = tmp_path / "bad.yaml"
    case.write_text(yaml.safe_dump(raw))
    line = cli_error(cli, ["--case", str(case)], capsys)
    assert fragment in line and str(case) in line, line


@pytest.mark.e2e
def test_a_kernel_of_301_fails_the_mlflow_run_instead_of_leaving_it_running(tracking_uri, tmp_path):
    """Issue 28/8 as found: TensorFlow aborted (rc -6) and the run stayed RUNNING."""
    from conftest import assert_user_error, mlflow_run, newest_run

    raw = _case_i()
    raw["model"]["encoder"]["kernels"][0] = 301
    case = tmp_path / "k301.yaml"
    case.write_text(yaml.safe_dump(raw))
    result = mlflow_run("train", {"case": str(case)}, tracking_uri, timeout=300)
    assert_user_error(result, "model.encoder.kernels[0]=301", f"at most {MAX_KERNEL}")
    run = newest_run("tags.entry_point = 'train'")
    assert run.info.status == "FAILED" and "kernels[0]=301" in run.data.tags["error"]


def test_a_key_given_twice_is_refused(tmp_path):
    """PyYAML keeps the last of two equal keys in silence, as the unknown `zdim` was."""
    text = (
        Path(load_case("I").source)
        .read_text()
        .replace("  z_dim: 256\n", "  z_dim: 256\n  z_dim: 12\n")
    )
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"not valid YAML: key 'z_dim' given twice \(line 5\)"):
        load_case(str(path))
