"""Which runs a report shows: per case one train run and the evaluate and search runs of it.

Default: in an experiment (or in all experiments) the newest FINISHED train run of each
case, with the newest finished evaluate run per sampler and the newest finished search run
that belong to *that* train run (tag ``train_run``), so that every number in a column
comes from the same trained network. Explicit run ids: exactly those runs; an evaluate or
search run brings its train run along, and a train run given without any of its
evaluate/search runs brings its newest ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.core.sampler_registry import SAMPLERS
from aelatent.errors import UserError
from aelatent.io.tracking import ENTRY_POINT_TAG, get_run

TRAIN_RUN_TAG = "train_run"
CASE_TAG = "case"
PARENT_TAG = "mlflow.parentRunId"
R = TypeVar("R")
CASE_ORDER = ("I", "II")
MAX_CANDIDATES = 1000


@dataclass
class Case(Generic[R]):
    """One column of the report: a train run and what was measured on it (``R``: MLflow's
    ``Run`` as selected, or the report's ``RunData`` once collected)."""

    label: str
    case: str
    train: R
    evaluations: list[R] = field(default_factory=list)
    search: R | None = None


CaseRuns = Case[Run]


@dataclass
class Selection:
    cases: list[CaseRuns]
    description: str


def resolve_experiment(experiment: str) -> str:
    """An experiment id from a name or an id; a clear error if neither exists."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            found = client.get_experiment(experiment)
        except MlflowException:
            found = None
    if found is None:
        raise UserError(
            f"experiment {experiment!r} does not exist in {mlflow.get_tracking_uri()}: "
            "give an experiment name or id (see `mlflow experiments search`)"
        )
    return found.experiment_id


def select_runs(experiment: str | None = None, run_ids: Sequence[str] = ()) -> Selection:
    """The runs of the report (see the module docstring for the rules)."""
    experiment_ids = [resolve_experiment(experiment)] if experiment else None
    if run_ids:
        cases = _explicit(run_ids)
        description = f"{len(run_ids)} runs chosen by id"
    else:
        cases = _newest(experiment_ids)
        where = f"experiment {experiment!r}" if experiment else "all experiments"
        description = f"the newest finished train run of each case in {where}"
    return Selection(cases=_ordered(cases), description=description)


def _search(filters: list[str], experiment_ids: list[str] | None) -> list[Run]:
    """Runs matching all filters, newest first."""
    scope = (
        {"experiment_ids": experiment_ids} if experiment_ids else {"search_all_experiments": True}
    )
    return mlflow.search_runs(
        **scope,
        filter_string=" and ".join(filters),
        order_by=["attributes.start_time DESC"],
        max_results=MAX_CANDIDATES,
        output_format="list",
    )


def _finished(entry_point: str, *extra: str) -> list[str]:
    return [f"tags.{ENTRY_POINT_TAG} = '{entry_point}'", "attributes.status = 'FINISHED'", *extra]


def _newest(experiment_ids: list[str] | None) -> list[CaseRuns]:
    newest: dict[str, Run] = {}
    for run in _search(_finished("train"), experiment_ids):
        newest.setdefault(run.data.tags.get(CASE_TAG, "?"), run)
    return [
        CaseRuns(
            label=case,
            case=case,
            train=train,
            evaluations=linked_evaluations(train.info.run_id, experiment_ids),
            search=linked_search(train.info.run_id, experiment_ids),
        )
        for case, train in newest.items()
    ]


def _explicit(run_ids: Sequence[str]) -> list[CaseRuns]:
    trains: dict[str, Run] = {}
    evaluations: dict[str, list[Run]] = {}
    searches: dict[str, Run] = {}
    for run_id in run_ids:
        run = get_run(run_id)
        kind = run.data.tags.get(ENTRY_POINT_TAG)
        if kind == "train":
            trains.setdefault(run_id, run)
            continue
        if kind not in ("evaluate", "search"):
            raise UserError(
                f"run {run_id!r} is a {kind or 'untagged'} run; give train, evaluate or search runs"
            )
        train_id = run.data.tags.get(TRAIN_RUN_TAG)
        if not train_id:
            raise UserError(f"{kind} run {run_id!r} has no tag {TRAIN_RUN_TAG!r}")
        if train_id not in trains:
            trains[train_id] = get_run(train_id, expected_entry_point="train")
        if kind == "evaluate":
            evaluations.setdefault(train_id, []).append(run)
        else:
            searches.setdefault(train_id, run)
    explicit_any = set(evaluations) | set(searches)
    cases = []
    for train_id, train in trains.items():
        given = train_id in explicit_any
        cases.append(
            CaseRuns(
                label=train.data.tags.get(CASE_TAG, "?"),
                case=train.data.tags.get(CASE_TAG, "?"),
                train=train,
                evaluations=evaluations.get(train_id, [])
                if given
                else linked_evaluations(train_id, None),
                search=searches.get(train_id) if given else linked_search(train_id, None),
            )
        )
    return cases


def samplers_of(run: Run) -> set[str]:
    """The samplers an evaluate run covered: its ``samplers`` (resolved) or ``sampler`` param."""
    value = run.data.params.get("samplers") or run.data.params.get("sampler")
    if not value:
        return {f"run {run.info.run_id}"}
    names = {s.strip() for s in value.split(",") if s.strip()}
    return set(SAMPLERS) if names == {"all"} else names


def linked_evaluations(train_id: str, experiment_ids: list[str] | None) -> list[Run]:
    """The newest finished evaluate run per sampler of this train run."""
    chosen: list[Run] = []
    covered: set[str] = set()
    for run in _search(
        _finished("evaluate", f"tags.{TRAIN_RUN_TAG} = '{train_id}'"), experiment_ids
    ):
        samplers = samplers_of(run)
        if samplers - covered:
            chosen.append(run)
            covered |= samplers
    return chosen


def linked_search(train_id: str, experiment_ids: list[str] | None) -> Run | None:
    """The newest finished search run of this train run (trial runs carry no entry point)."""
    runs = _search(_finished("search", f"tags.{TRAIN_RUN_TAG} = '{train_id}'"), experiment_ids)
    return runs[0] if runs else None


def _ordered(cases: list[CaseRuns]) -> list[CaseRuns]:
    """Case I, case II, then others by name; labels made unique when a case repeats."""

    def key(c: CaseRuns) -> tuple[int, str, int]:
        rank = CASE_ORDER.index(c.case) if c.case in CASE_ORDER else len(CASE_ORDER)
        return rank, c.case, -(c.train.info.start_time or 0)

    ordered = sorted(cases, key=key)
    repeated = {c.case for c in ordered if sum(o.case == c.case for o in ordered) > 1}
    for c in ordered:
        if c.case in repeated:
            c.label = f"{c.case} ({c.train.info.run_id[:8]})"
    return ordered
