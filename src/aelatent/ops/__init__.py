"""Operations tools: what a team runs beside the study, not part of it.

``server_stack`` starts and stops the shared setup of ``make server`` (PostgreSQL, an
``mlflow server`` on it with proxied artifacts, the Optuna database).
"""
