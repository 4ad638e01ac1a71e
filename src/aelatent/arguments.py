"""Command-line arguments of the entry points, read into validated values.

Every job's ``parse_args`` builds on these, so a bad value is the same one-line
:class:`~aelatent.errors.UserError` whichever entry point it was given to.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from typing import NoReturn

from aelatent.errors import UserError

NEWEST = "newest"
ANY_CASE = "any"
CASE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports mistakes as :class:`UserError` instead of exiting on its own."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


def parse_float_list(
    text: str, name: str, *, positive: bool = True, maximum: float | None = None, why: str = ""
) -> list[float]:
    """``"1,1.5,2"`` -> ``[1.0, 1.5, 2.0]``; every value finite, (by default) > 0 and at most
    ``maximum`` when given (``why``: the reason, for the message)."""
    values: list[float] = []
    for part in str(text).split(","):
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"{name}={text!r}: {part.strip()!r} is not a number; give e.g. 1,1.5,2"
            ) from None
        if not math.isfinite(value):
            raise UserError(f"{name}={text!r}: {part.strip()!r} must be a finite number")
        if positive and value <= 0:
            raise UserError(f"{name}={text!r}: every value must be > 0, got {value:g}")
        if maximum is not None and value > maximum:
            raise UserError(
                f"{name}={text!r}: {part.strip()} is out of range; every value must "
                f"be at most {maximum:g}" + (f" ({why})" if why else "")
            )
        values.append(value)
    return values


def parse_int(
    text: str, name: str, *, minimum: int, maximum: int | None = None, why: str = ""
) -> int:
    """An integer ``minimum <= value`` (``<= maximum`` when given; ``why``: the bound's reason)."""
    allowed = f">= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
    try:
        value = int(str(text))
    except ValueError:
        raise UserError(
            f"{name}={text!r} is not an integer; expected an integer {allowed}"
        ) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise UserError(
            f"{name}={value} is out of range; expected an integer {allowed}"
            + (f" ({why})" if why else "")
        )
    return value


def add_train_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--train-run`` and ``--case``, the same for every entry point that reads a train run."""
    parser.add_argument(
        "--train-run",
        default=NEWEST,
        help="train run id, models:/<name>/<version or @alias>, or 'newest'",
    )
    parser.add_argument("--case", default=ANY_CASE, help="with 'newest': the case (I, II, ...)")


def parse_train_run_choice(train_run: str, case: str) -> tuple[str | None, str | None]:
    """``train_run`` and ``case`` parameters: ``newest``/empty and ``any``/empty mean None
    (the newest finished train run, of any case), as :func:`resolve_train_run` takes them."""
    run, chosen_case = train_run.strip(), case.strip()
    chosen = None if chosen_case.lower() in ("", ANY_CASE) else chosen_case
    if chosen is not None:
        check_case_name(chosen)
    return None if run.lower() in ("", NEWEST) else run, chosen


def check_case_name(case: str) -> str:
    """A case name as a run filter may hold it: letters, digits, ``_``, ``-`` and ``.``."""
    if not CASE_NAME.fullmatch(case):
        raise UserError(
            f"case={case!r} is not a case name: use letters, digits, '_', '-' and '.' only "
            f"(e.g. I, II, case_III), or {ANY_CASE}"
        )
    return case


def parse_choices(
    text: str,
    name: str,
    choices: Sequence[str],
    *,
    item: str,
    all_means: Sequence[str],
    empty_means: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """``all`` or a comma list of ``choices`` (each an ``item``, for the message) -> the
    chosen ones in ``choices``' order.
    ``all`` (and, where ``empty_means`` is given, an empty list) means those; an empty list
    otherwise, or an unknown name, is a UserError naming it and what is allowed."""
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    allowed = f"all or a comma list of {', '.join(choices)}"
    if not names:
        if empty_means is None:
            raise UserError(f"{name}={text!r} is empty; give {allowed}")
        return tuple(empty_means)
    if "all" in names:
        return tuple(all_means)
    unknown = [n for n in names if n not in choices]
    if unknown:
        raise UserError(f"{name}={text!r}: unknown {item} {unknown[0]!r}; expected {allowed}")
    return tuple(c for c in choices if c in names)
