"""One job per entry point: parse parameters, validate, run, log to MLflow."""

import aelatent.generators  # noqa: F401  (hands the registry the trained samplers: flow)
