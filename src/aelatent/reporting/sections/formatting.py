"""How the sections read and write values: numbers from metric keys and CSV cells, an
estimate with its interval as one text, and the samplers' order.

Shared by every section so that a number looks the same wherever the report shows it.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TypeGuard

from aelatent.core.sampler_registry import order_key


def number(text: str) -> float:
    """A number from a metric key's part (``b0.5`` -> ``"0.5"``); NaN where it is none."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)


IMPOSSIBLE = "-inf (P = 0 exactly)"
MLFLOW_MINUS_INF = -1.79e308  # MLflow stores a logged -inf as -sys.float_info.max


def is_minus_inf(value: object) -> bool:
    """-inf, or what MLflow made of it (``-1.798e+308``): an impossible window's log10 P."""
    return isinstance(value, int | float) and value <= MLFLOW_MINUS_INF


def with_interval(
    value: float | None, lo: float | None, hi: float | None, digits: int = 4
) -> float | str | None:
    """``0.0123 [0.0101, 0.0149]``; the bare value where the interval is unknown (old runs);
    an impossible window's log10 P (-inf, as MLflow stores it too) as ``IMPOSSIBLE``."""
    if is_minus_inf(value):
        return IMPOSSIBLE
    if not finite(value) or not finite(lo) or not finite(hi):
        return value
    return f"{value:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


sampler_key = order_key
"""Known samplers in the registry's order, others after them by name."""


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def truthy(text: str | None) -> bool:
    """A CSV flag as written by pandas, numpy or by hand."""
    return str(text).strip().lower() in ("1", "true", "yes", "1.0")


def cell_value(text: str | None) -> float | int | str | None:
    """A CSV cell as a number where it is one."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
