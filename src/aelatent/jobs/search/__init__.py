"""The ``search`` entry point, in parts: which b (or width, or generator) best lands on the
real latents?

- ``job``: the run itself (prepare, the worker's trials as nested runs); ``cli`` is
  MLproject's command.
- ``request``: the parameters, validated once into a ``SearchRequest``.
- ``study``: the Optuna storage and study (continued, shared by several workers).
- ``trials``: one trial as a nested MLflow run.
- ``artifacts``: the CSVs and plots.
- ``summary``: the exact optimum beside Optuna's, its interval, and why there is none.

``space=generators`` (Optuna over generator families) is :mod:`aelatent.jobs.generator_search.job`.
"""

from aelatent.jobs.search.job import cli, main, parse_args, prepare, search
from aelatent.jobs.search.summary import NO_BEST_B_TAG, explain_zero

__all__ = ["NO_BEST_B_TAG", "cli", "explain_zero", "main", "parse_args", "prepare", "search"]
