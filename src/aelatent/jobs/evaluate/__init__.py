"""The ``evaluate`` entry point, in parts: which generated latent vectors land where faces are?

- ``job``: the run itself (load the train run, every sampler's hit grid, the k-NN and
  verdict steps, decoded grids, what is logged and printed); ``cli`` is MLproject's command.
- ``request``: the parameters, validated once into an ``EvaluateRequest``.
- ``metrics``: the hit grid's metrics, CSVs and one-line summaries, as plain values.
- ``knn``: the k-NN region test per sampler and scale.
- ``verdict``: the verdict's splits, refits, decoder cycle, metrics and ``tables/verdict.json``.
"""

from aelatent.jobs.evaluate.job import cli, evaluate, load_train_inputs, main, parse_args

__all__ = ["cli", "evaluate", "load_train_inputs", "main", "parse_args"]
