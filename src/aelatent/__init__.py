"""aelatent: where an autoencoder puts its data in latent space, and which random
generators of latent vectors land there."""

__version__ = "0.1.0"
