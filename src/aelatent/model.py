"""The reference convolutional autoencoder, built from a :class:`~aelatent.config.ModelConfig`.

The structure follows the Autoencoder class of D. Foster's "Generative Deep Learning":
stride-2 convolutions with an activation after each, Flatten, a linear Dense latent layer;
the decoder mirrors it with Conv2DTranspose and ends in a sigmoid. The autoencoder is a
functional model of two named sub-models, ``encoder`` and ``decoder``, so that a model
loaded back from MLflow encodes and decodes on its own.
"""

from __future__ import annotations

import keras
from keras import layers

from aelatent.config import ACTIVATIONS, N_CHANNELS_PLACEHOLDER, CaseConfig, ModelConfig

ENCODER_NAME = "encoder"
DECODER_NAME = "decoder"


def _activation(code: int, name: str) -> layers.Layer:
    if ACTIVATIONS[code] == "leaky_relu":
        return layers.LeakyReLU(name=name)
    return layers.Activation(ACTIVATIONS[code], name=name)


def build_encoder(config: ModelConfig, image_size: int, n_channels: int) -> keras.Model:
    inputs = keras.Input(shape=(image_size, image_size, n_channels), name="encoder_input")
    x = inputs
    stack = config.encoder
    for i, (filters, kernel, stride, padding) in enumerate(
        zip(stack.filters, stack.kernels, stack.strides, stack.padding, strict=True)
    ):
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding=padding, name=f"encoder_conv_{i}"
        )(x)
        x = _activation(config.activation, name=f"encoder_act_{i}")(x)
    x = layers.Flatten(name="encoder_flatten")(x)
    # float32 even under mixed precision: the latents are what the study measures.
    z = layers.Dense(config.z_dim, name="encoder_output", dtype="float32")(x)
    return keras.Model(inputs, z, name=ENCODER_NAME)


def build_decoder(
    config: ModelConfig, feature_shape: tuple[int, int, int], n_channels: int
) -> keras.Model:
    z = keras.Input(shape=(config.z_dim,), name="decoder_input")
    x = layers.Dense(feature_shape[0] * feature_shape[1] * feature_shape[2], name="decoder_dense")(
        z
    )
    x = layers.Reshape(feature_shape, name="decoder_reshape")(x)
    stack = config.decoder
    last = len(stack.filters) - 1
    for i, (filters, kernel, stride, padding) in enumerate(
        zip(stack.filters, stack.kernels, stack.strides, stack.padding, strict=True)
    ):
        n_filters = n_channels if filters == N_CHANNELS_PLACEHOLDER else int(filters)
        x = layers.Conv2DTranspose(
            n_filters, kernel, strides=stride, padding=padding, name=f"decoder_conv_t_{i}"
        )(x)
        if i < last:
            x = _activation(config.activation, name=f"decoder_act_{i}")(x)
        else:
            x = layers.Activation("sigmoid", name="decoder_output", dtype="float32")(x)
    return keras.Model(z, x, name=DECODER_NAME)


def build_autoencoder(case: CaseConfig, n_channels: int) -> keras.Model:
    """Encoder and decoder joined into one compiled model (Adam, mean squared error)."""
    encoder = build_encoder(case.model, case.image_size, n_channels)
    height, width, channels = (int(d) for d in encoder.get_layer("encoder_flatten").input.shape[1:])
    decoder = build_decoder(case.model, (height, width, channels), n_channels)
    inputs = keras.Input(shape=(case.image_size, case.image_size, n_channels), name="image")
    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(learning_rate=case.training.learning_rate), loss="mse"
    )
    return autoencoder


def encoder_of(autoencoder: keras.Model) -> keras.Model:
    return autoencoder.get_layer(ENCODER_NAME)


def decoder_of(autoencoder: keras.Model) -> keras.Model:
    return autoencoder.get_layer(DECODER_NAME)
