"""Matplotlib figures logged as artifacts (Agg backend, no display needed)."""
