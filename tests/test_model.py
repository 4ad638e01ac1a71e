import os
import subprocess
import sys

import numpy as np
import pytest

from aelatent.config import load_case
from aelatent.limits import MAX_KERNEL
from aelatent.model import build_autoencoder, decoder_of, encoder_of


@pytest.mark.parametrize("case_name", ["I", "II"])
@pytest.mark.parametrize("n_channels", [1, 3])
@pytest.mark.parametrize("image_size", [32, 64])
def test_shapes(case_name, n_channels, image_size):
    case = load_case(case_name).with_overrides(image_size=image_size)
    autoencoder = build_autoencoder(case, n_channels)
    images = np.random.default_rng(0).random(
        (2, image_size, image_size, n_channels), dtype=np.float32
    )
    z = encoder_of(autoencoder)(images).numpy()
    assert z.shape == (2, 256)
    decoded = decoder_of(autoencoder)(z).numpy()
    assert decoded.shape == images.shape
    assert decoded.min() >= 0 and decoded.max() <= 1  # sigmoid output
    assert autoencoder(images).shape == images.shape


def test_layers_follow_the_case():
    autoencoder = build_autoencoder(load_case("II"), 3)
    encoder = encoder_of(autoencoder)
    convs = [layer for layer in encoder.layers if layer.name.startswith("encoder_conv")]
    assert [c.filters for c in convs] == [64, 64, 128, 128]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (3, 3), (3, 3)]
    decoder = decoder_of(autoencoder)
    transposed = [layer for layer in decoder.layers if layer.name.startswith("decoder_conv_t")]
    assert [c.filters for c in transposed] == [128, 64, 64, 3]
    assert [c.kernel_size for c in transposed] == [(3, 3), (3, 3), (5, 5), (5, 5)]
    assert autoencoder.optimizer.learning_rate.numpy() == pytest.approx(0.0005)


BOUNDARY_SCRIPT = """
import sys

import numpy as np
import yaml

from aelatent.config import load_case, parse_case
from aelatent.errors import UserError
from aelatent.jobs.train import check_training_memory
from aelatent.model import build_autoencoder

for kernel in map(int, sys.argv[1:]):
    raw = yaml.safe_load(open(load_case("I").source).read())
    raw["model"]["encoder"]["kernels"][0] = kernel
    raw["model"]["decoder"]["kernels"][-1] = kernel
    raw["data"]["image_size"] = 32
    try:
        case = parse_case(raw)
        check_training_memory(case)
    except UserError as exc:
        print(kernel, "refused:", exc, flush=True)
        continue
    images = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    build_autoencoder(case, 1).fit(images, images, batch_size=2, epochs=1, verbose=0)
    print(kernel, "trained", flush=True)
"""


def test_kernels_at_the_bound_train_and_beyond_it_are_refused_not_aborted():
    """Issue 28/8: a first kernel of 301 passed validation and TensorFlow aborted in C++ (rc
    -6, the run left RUNNING). Now the YAML is refused, and the largest allowed kernel
    trains a step (in a subprocess: an abort would take the test runner with it)."""
    kernels = (301, MAX_KERNEL + 1, MAX_KERNEL)
    done = subprocess.run(
        [sys.executable, "-c", BOUNDARY_SCRIPT, *map(str, kernels)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("301 refused: model.encoder.kernels[0]=301 ")
    assert lines[1].startswith(f"{MAX_KERNEL + 1} refused: model.encoder.kernels[0]=")
    assert lines[2:] == [f"{MAX_KERNEL} trained"]
