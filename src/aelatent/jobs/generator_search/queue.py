"""The generator search's trials shared by the workers of one study: its sibling phase and
its queued trials.

Several workers may share one study (``make server``'s PostgreSQL, or one SQLite file). The
sibling phase (:func:`aelatent.jobs.generator_search.study.run_trials`) is the study's, not a
worker's: :func:`run_shared` records each worker's planned trials in the study, runs TPE's
trials until the study has started the TPE share of its planned total, then runs the
study's one sibling queue, built once from the study's trials, until the total is reached;
so two workers of N/2 trials run the phase one worker of N runs. :func:`optimize_once` runs
the queued trials so that the study runs each setting once: a worker queues only what no
trial has or has queued (:func:`tried_or_queued`), and a setting that two workers queued at
the same moment is caught when a worker starts it (:class:`QueuedTwice`).
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

Key = tuple[tuple[str, str], ...]
PLAN = "worker_plan:"  # + the worker: its planned trials, its round, when it was last seen
WORKER = "worker"  # a trial's user attribute: the worker that ran it
QUEUE = "sibling_queue:"  # + the round's first trial: the round's sibling queue
STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
POLL_S = 0.25


class QueuedTwice(Exception):
    """A queued trial with the settings of an earlier trial: two workers queued it at once."""


def settings_key(params: dict[str, Any]) -> Key:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def settings_of(trial: FrozenTrial) -> Key:
    """A trial's settings: a queued trial's ``fixed_params`` (its ``params`` are empty until a
    worker starts it, and partial while its objective asks for them), another's ``params``.

    Why the queued settings first: a worker that checked a queued trial against one another
    worker had started a few milliseconds before read that one's first few ``params`` only,
    saw no twin, and ran the shape twice (2 trials in 1 of 15 two-worker runs)."""
    return settings_key(trial.system_attrs.get("fixed_params") or trial.params)


def tried_or_queued(study: optuna.Study) -> set[Key]:
    """The settings of every trial of the study, queued ones included. Why: a worker that
    read only ``params`` queued again every sibling another worker had queued and not yet
    started."""
    return {settings_of(t) for t in study.get_trials(deepcopy=False)}


def started(study: optuna.Study) -> int:
    """The study's trials that run or ran to a score: a failed one (a queued copy, a dead
    worker's trial, which is queued again) and a queued one not yet started do not count."""
    return len(study.get_trials(deepcopy=False, states=STARTED))


def pending(study: optuna.Study) -> int:
    """The settings queued and not started: a queued copy of a started or queued setting
    (it fails once started) is not one more."""
    trials = study.get_trials(deepcopy=False)
    begun = {settings_of(t) for t in trials if t.state in STARTED}
    return len({settings_of(t) for t in trials if t.state == TrialState.WAITING} - begun)


def worker_name() -> str:
    """A worker's name in the study: its host and process (as the search job's workers are
    named in their trials) and a random part, unique for each call in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Round:
    """The workers that run one study together: ``first``, how many trials the study had
    started when the first of them joined; ``total``, their planned trials."""

    first: int
    total: int

    def sibling_start(self, fraction: float) -> int:
        """The started trials after which the round's sibling phase begins: the last
        ``fraction`` of its total (none of a total too small for one)."""
        return self.first + self.total - min(self.total, round(fraction * self.total))

    def room(self, study: optuna.Study) -> int:
        """The round's trials not started or queued yet."""
        return self.first + self.total - started(study) - pending(study)


def plans(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """Every worker's plan; a dead worker's cut to the trials it ran (complete or pruned).

    Dead: its plan not ended (a worker that ends records the trials it ran and ``done``), not
    refreshed for the heartbeat's grace period (after each of its trials, and while it waits for
    the sibling queue: :func:`run_shared`), and no trial of its running. The hosts' clocks must
    agree within the grace period (NTP): ``seen`` is the writer's time. Why: a worker ended by
    an error or a signal it can catch records what it ran, but a SIGKILLed one (or a lost host)
    cannot, and its plan held its round open for good: the other workers never reached the
    sibling phase (the round's started trials could not reach its total), and a study continued
    later joined that old round and its spent queue instead of starting its own. A dead worker's
    running trial is FAIL after the same grace period (Optuna's heartbeat) and queued again, so
    another worker runs it."""
    raw = {k[len(PLAN) :]: v for k, v in study.user_attrs.items() if k.startswith(PLAN)}
    silent_since = time.time() - _grace_s()  # once per call, not per plan
    stale = [
        w for w, p in raw.items() if not p.get("done") and p.get("seen", math.inf) < silent_since
    ]
    if not stale:
        return raw
    trials = study.get_trials(deepcopy=False)
    running = {t.user_attrs.get(WORKER) for t in trials if t.state == TrialState.RUNNING}
    ran = Counter(
        t.user_attrs.get(WORKER)
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    )
    for worker in stale:
        if worker not in running:
            raw[worker] = {**raw[worker], "trials": min(raw[worker]["trials"], ran[worker])}
    return raw


def _grace_s() -> float:
    """The heartbeat's grace period (:func:`aelatent.jobs.search.study.heartbeat_seconds`)."""
    # here, not at the top: the package aelatent.jobs.search imports this one (a cycle)
    from aelatent.jobs.search.study import heartbeat_seconds

    return float(heartbeat_seconds()[1])


def join(study: optuna.Study, worker: str, n_trials: int) -> int:
    """Record the worker's ``n_trials`` in the study (its own user attribute: no read,
    modify and write of a shared one) and return its round's first trial: a new round when
    every trial planned before has started (a study continued later, or a new one), else
    the latest. Workers that join together read the same: either no plan, or one of a
    round with none of its trials started (both name the round by the same count)."""
    known = plans(study).values()
    now = started(study)
    first = now if now >= sum(p["trials"] for p in known) else max(p["round"] for p in known)
    _record(study, worker, n_trials, first)
    return first


def _record(
    study: optuna.Study, worker: str, n_trials: int, first: int, *, done: bool = False
) -> None:
    """The worker's plan, seen now; ``done``: it has ended, ``n_trials`` the trials it ran
    (:func:`plans`: how a dead one is told)."""
    plan = {"trials": n_trials, "round": first, "seen": time.time(), "done": done}
    study.set_user_attr(PLAN + worker, plan)


def round_of(study: optuna.Study, first: int) -> Round:
    total = sum(p["trials"] for p in plans(study).values() if p["round"] == first)
    return Round(first, total)


def sibling_queue(
    study: optuna.Study,
    first: int,
    build: Callable[[], list[dict[str, Any]]],
    alive: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """The round's sibling queue: the one stored in the study, else ``build()``'s once the
    trials still running (the last of the TPE phase, another worker's) have ended, stored.

    Why wait: the queue is built from the phase's family bests, and a worker that enters
    the phase while another worker's last TPE trial runs would build it without that trial,
    which one worker never does. A dead worker's trial ends too: Optuna's heartbeat (every
    storage of the job has one, :func:`aelatent.jobs.search.study.open_storage`) marks it
    FAIL after its grace period. Two workers that stop waiting at the same moment both
    build it, from the same trials: the same queue, and a setting they both queue runs
    once (:func:`optimize_once`). ``alive()`` is called every third of the heartbeat's grace
    period while it waits (a worker waiting runs no trial, and the other workers' trials may
    take longer than the grace period: its plan must not look dead, :func:`plans`)."""
    key = QUEUE + str(first)
    stored = study.user_attrs.get(key)
    if stored is None:
        refresh, last = _grace_s() / 3, time.monotonic()
        while study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            with warnings.catch_warnings():  # Optuna calls it experimental since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            time.sleep(POLL_S)
            if time.monotonic() - last > refresh:
                alive()
                last = time.monotonic()
        stored = study.user_attrs.get(key)
    if stored is None:
        stored = build()
        study.set_user_attr(key, stored)
    return list(stored)


def run_shared(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    n_trials: int,
    fraction: float,
    build: Callable[[], list[dict[str, Any]]],
    *,
    worker: str | None = None,
    start: Sequence[dict[str, Any]] = (),
    **optimize: Any,
) -> None:
    """This worker's ``n_trials`` trials of the study's two phases: the settings of
    ``start`` that the study has not tried (queued once for the study, first) and TPE's,
    until the round (:func:`join`) has started all but its last ``fraction``, then the
    round's sibling queue (:func:`sibling_queue`, ``build``), TPE's again for what it leaves.

    A worker reads the phase from the study before each trial (a trial callback), so the
    round's phase is the same however its trials are shared among workers; one worker alone
    runs exactly the trials it ran when the phase was a worker's. A worker that ends early
    (an error, a signal) records the trials it ran, so its plan does not hold the round
    open. ``optimize``: ``study.optimize``'s keyword arguments."""
    worker = worker or worker_name()
    first = join(study, worker, n_trials)
    done = [0]  # this worker's trials, counted as each optimize ends, however it ends

    def count(ran: int) -> None:
        done[0] += ran

    def sibling_phase() -> bool:
        round_ = round_of(study, first)
        start = round_.sibling_start(fraction)
        return start < round_.first + round_.total and started(study) >= start

    def seen(study: optuna.Study, trial: FrozenTrial) -> None:
        _record(study, worker, n_trials, first)

    optimize = {**optimize, "callbacks": [*(optimize.get("callbacks") or []), seen]}
    try:
        optimize_once(
            study,
            objective,
            n_trials,
            start,
            stop=sibling_phase,
            counted=count,
            worker=worker,
            **optimize,
        )
        if done[0] < n_trials:
            queue = sibling_queue(
                study, first, build, alive=lambda: _record(study, worker, n_trials, first)
            )

            def room() -> int:
                return round_of(study, first).room(study)

            left = n_trials - done[0]
            optimize_once(
                study, objective, left, queue, room=room, counted=count, worker=worker, **optimize
            )
    finally:  # ended: its plan is what it ran, however it ended
        _record(study, worker, done[0], first, done=True)


class _Once:
    """``objective`` for a trial unless it is a queued copy: a trial started from the queue
    whose settings an earlier trial (not failed) has fails at once, unscored (``skipped``
    counts them; ``calls`` every trial). A trial TPE proposes is never a copy (it has no
    queued settings)."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], worker: str | None = None) -> None:
        self.objective, self.worker = objective, worker
        self.skipped, self.calls, self.failed = 0, 0, 0

    def copied(self) -> bool:
        return self.skipped > 0

    def __call__(self, trial: optuna.Trial) -> Any:
        self.calls += 1
        if self.worker is not None:
            trial.set_user_attr(WORKER, self.worker)
        trials = trial.study.get_trials(deepcopy=False)
        fixed = next(t for t in trials if t.number == trial.number).system_attrs
        if "fixed_params" in fixed:
            key = settings_key(fixed["fixed_params"])
            earlier = [t for t in trials if t.number < trial.number and t.state != TrialState.FAIL]
            twin = next((t for t in earlier if settings_of(t) == key), None)
            if twin is not None:
                self.skipped += 1
                raise QueuedTwice(f"trial {trial.number} has the settings of trial {twin.number}")
        try:
            return self.objective(trial)
        except optuna.TrialPruned:
            raise
        except BaseException:  # the trial fails (FAIL: not started, for the round's count)
            self.failed += 1
            raise

    @property
    def ran(self) -> int:
        """Trials that ended complete or pruned (copies and failures are not trials run)."""
        return self.calls - self.skipped - self.failed


class _StopWhen:
    """A trial callback that stops ``study.optimize`` once ``stop()`` says so."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        self.stop = stop

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.stop():
            study.stop()


def optimize_once(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    n_trials: int,
    queue: Sequence[dict[str, Any]] = (),
    *,
    room: Callable[[], int] | None = None,
    stop: Callable[[], bool] | None = None,
    counted: Callable[[int], None] | None = None,
    worker: str | None = None,
    **optimize: Any,
) -> int:
    """Up to ``n_trials`` trials of ``objective`` (``optimize``: ``study.optimize``'s keyword
    arguments), first queueing the settings of ``queue`` that no trial has or has queued (in
    order, as many as trials are left and at most ``room()``: the study's trials left), none
    of them a queued copy of an earlier trial; ``stop``: checked before each trial, ends the
    run early; ``worker``: each trial's :data:`WORKER` attribute. Returns the trials run (a
    copy, failed at once, is not one).

    Why: workers that share a study reach the sibling phase within a second of each
    other, each reads which siblings are queued and queues the others, and Optuna cannot
    make that read and write one step: in 4 of 8 two-worker runs of
    benchmarks/bench_generator_workers.py both queued one shape, ran it twice and left the
    last siblings (3 components) untried. Starting a queued trial is one step (a worker
    takes a WAITING trial only once): the later copy fails there, unscored, and a trial of
    the next untried setting of ``queue`` takes its place, queued before the next trial
    starts (else TPE's would). A worker queues no more than its own trials: the other
    worker's are queued by it, so two workers that queue at once collide on a few settings,
    not on the whole queue. One worker never queues a setting twice: its trials are the same
    as ``study.optimize``'s."""
    callbacks = list(optimize.pop("callbacks", None) or [])
    if stop is not None:
        callbacks.append(_StopWhen(stop))
    left = n_trials
    while left > 0 and not (stop is not None and stop()):
        tried = tried_or_queued(study)
        slots = left if room is None else min(left, room())
        for params in [p for p in queue if settings_key(p) not in tried][: max(0, slots)]:
            study.enqueue_trial(params)
        once = _Once(objective, worker)
        after_copy = _StopWhen(once.copied)  # queue its replacement before the next trial
        try:
            study.optimize(
                once,
                n_trials=left,
                catch=(QueuedTwice,),
                callbacks=[*callbacks, after_copy],
                **optimize,
            )
        finally:  # counted even when a trial's error or a signal ends the run
            ran = once.ran
            left -= ran
            if counted is not None:
                counted(ran)
    return n_trials - left
