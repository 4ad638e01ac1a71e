"""One job per entry point: parse parameters, validate, run, log to MLflow."""
