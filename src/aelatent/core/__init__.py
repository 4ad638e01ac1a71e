"""The numeric core: plain numpy/scipy functions on latent arrays, free of MLflow and TensorFlow."""
