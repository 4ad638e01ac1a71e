"""Reports from tracked runs: pick the runs, download their artifacts, render HTML and Markdown.

``selection`` decides which runs, ``collect`` downloads what they logged through MLflow's
API (so a remote tracking server works too), ``content`` puts the sections (``sections/``,
one module each) into a format-free ``document``, and ``render`` writes the document as
self-contained HTML, Markdown and CSV (``write_document``). ``training_figure`` draws the
one figure the report makes from metric histories. Only ``selection`` and ``collect`` talk
to MLflow. The ``report`` entry point that runs all of it is :mod:`aelatent.jobs.report`.
"""
