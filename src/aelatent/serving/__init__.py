"""The served generator, a product feature rather than an adapter: a sampler of latent
vectors plus a train run's decoder, logged as an MLflow pyfunc model (``generator_model``;
``generator_code`` is the file MLflow loads it from) that ``mlflow models serve`` answers
HTTP requests with, each checked field by field first (``request``). It sits above ``io``
(it reads the train run's model) and below ``jobs`` (evaluate and search log it);
docs/serving.md shows how to call it.
"""
