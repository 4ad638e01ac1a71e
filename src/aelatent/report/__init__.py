"""Reports from tracked runs: pick the runs, download their artifacts, render HTML and Markdown.

``selection`` decides which runs, ``collect`` downloads what they logged through MLflow's
API (so a remote tracking server works too), ``content`` turns that into a format-free
document, and ``render`` writes the document as self-contained HTML, Markdown and CSV.
Only ``selection`` and ``collect`` talk to MLflow.
"""
