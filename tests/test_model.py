import numpy as np
import pytest

from aelatent.config import load_case
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
