"""The generator search's queued trials, shared by the workers of one study.

A worker's sibling phase (:func:`aelatent.jobs.generator_study.run_trials`) queues
candidates for Optuna to run (``study.enqueue_trial``), and several workers may share one
study (``make server``'s PostgreSQL, or one SQLite file). :func:`optimize_once` runs a
worker's trials so that the study runs each queued setting once: a worker queues only what
no trial has or has queued (:func:`tried_or_queued`), and a setting that two workers queued
at the same moment is caught when a worker starts it (:class:`QueuedTwice`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

Key = tuple[tuple[str, str], ...]


class QueuedTwice(Exception):
    """A queued trial with the settings of an earlier trial: two workers queued it at once."""


def settings_key(params: dict[str, Any]) -> Key:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def settings_of(trial: FrozenTrial) -> Key:
    """A trial's settings; a queued (WAITING) trial's are its ``fixed_params`` until a worker
    starts it (its ``params`` are empty)."""
    return settings_key(trial.params or trial.system_attrs.get("fixed_params", {}))


def tried_or_queued(study: optuna.Study) -> set[Key]:
    """The settings of every trial of the study, queued ones included. Why: a worker that
    read only ``params`` queued again every sibling another worker had queued and not yet
    started."""
    return {settings_of(t) for t in study.get_trials(deepcopy=False)}


class _Once:
    """``objective`` for a trial unless it is a queued copy: a trial started from the queue
    whose settings an earlier trial (not failed) has fails at once, unscored (``skipped``
    counts them). A trial TPE proposes is never a copy (it has no queued settings)."""

    def __init__(self, objective: Callable[[optuna.Trial], Any]) -> None:
        self.objective, self.skipped = objective, 0

    def __call__(self, trial: optuna.Trial) -> Any:
        trials = trial.study.get_trials(deepcopy=False)
        fixed = next(t for t in trials if t.number == trial.number).system_attrs
        if "fixed_params" in fixed:
            key = settings_key(fixed["fixed_params"])
            earlier = [t for t in trials if t.number < trial.number and t.state != TrialState.FAIL]
            twin = next((t for t in earlier if settings_of(t) == key), None)
            if twin is not None:
                self.skipped += 1
                raise QueuedTwice(f"trial {trial.number} has the settings of trial {twin.number}")
        return self.objective(trial)


def optimize_once(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    n_trials: int,
    queue: Sequence[dict[str, Any]] = (),
    **optimize: Any,
) -> None:
    """``n_trials`` trials of ``objective`` (``optimize``: ``study.optimize``'s keyword
    arguments), first queueing the settings of ``queue`` that no trial has or has queued (in
    order, as many as trials are left), none of them a queued copy of an earlier trial.

    Why: workers that share a study reach their sibling phases within a second of each
    other, each reads which siblings are queued and queues the others, and Optuna cannot
    make that read and write one step: in 4 of 8 two-worker runs of
    benchmarks/bench_generator_workers.py both queued one shape, ran it twice and left the
    last siblings (3 components) untried. Starting a queued trial is one step (a worker
    takes a WAITING trial only once): the later copy fails there, unscored, and a trial of
    the next untried setting of ``queue`` takes its place. One worker never queues a
    setting twice: its trials are the same as ``study.optimize``'s."""
    left = n_trials
    while left > 0:
        tried = tried_or_queued(study)
        for params in [p for p in queue if settings_key(p) not in tried][:left]:
            study.enqueue_trial(params)
        once = _Once(objective)
        study.optimize(once, n_trials=left, catch=(QueuedTwice,), **optimize)
        left = once.skipped
