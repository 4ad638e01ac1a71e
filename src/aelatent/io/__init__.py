"""The edges: MLflow tracking, run artifacts, files."""
