"""``search -P space=generators``: which generator of latent vectors, with which settings?

``job`` runs it as MLflow runs (:func:`~aelatent.jobs.generator_search.job.search_generators`,
called by the search entry point), ``study`` is the Optuna study without MLflow (what the
benchmarks and tests call), ``selection`` which of its trials wins and how its families
rank, ``queue`` the queued trials its workers share, ``reference`` the
yardstick the winner is reported against. Nothing is imported here: ``study`` is importable
without the job's MLflow and plotting imports (and without the import cycle through
:mod:`aelatent.jobs.search`).
"""
