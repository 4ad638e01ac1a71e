"""Several workers on one generator study. Two workers taking turns trial by trial (threads,
each with its own study object on one in-memory storage) run the trials one worker runs,
the study's sibling phase included. Races made deterministic by a trial callback that plays
the other worker: a worker does not queue again the siblings another has queued and not
started (their settings are ``fixed_params`` until a worker starts them), and a shape
queued twice runs once. The two real worker processes on PostgreSQL are in
test_postgres_stack.py (its server); their winners against one worker's are measured by
benchmarks/bench_generator_workers.py."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from aelatent.core.verdict import make_splits
from aelatent.jobs.generator_search import queue
from aelatent.jobs.generator_search.queue import (
    PLAN,
    plans,
    run_shared,
    settings_key,
    settings_of,
    tried_or_queued,
)
from aelatent.jobs.generator_search.selection import complete_trials
from aelatent.jobs.generator_search.study import (
    SPLITS,
    GeneratorObjective,
    candidate_of,
    pruner,
    run_trials,
    sibling_shapes,
)
from aelatent.jobs.search.study import TrialSeededSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_generator_search import mixture_latents


def settings(trial: FrozenTrial) -> str:
    return repr(sorted((trial.params or trial.system_attrs.get("fixed_params", {})).items()))


def mixture_study(
    families: tuple[str, ...], storage: optuna.storages.BaseStorage | None = None
) -> tuple[optuna.Study, GeneratorObjective]:
    """A study as the job's (seeded TPE, the pruner; new, or the one in ``storage``) and an
    objective on 300 latents of 8 dimensions of the known 3-component mixture."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    latents = mixture_latents(0, 300, 8).astype("float64")
    objective = GeneratorObjective(
        make_splits(latents, SPLITS, 0), families, estimate="auto", seed=0
    )
    study = optuna.create_study(
        storage=storage,
        study_name="generators",
        direction="maximize",
        sampler=TrialSeededSampler(0),
        pruner=pruner(),
        load_if_exists=True,
    )
    return study, objective


class TakeTurns:
    """Workers that run one trial each in turn (a trial callback passes the turn on): the
    interleaving of two workers made deterministic, none of them running while another
    does."""

    def __init__(self, workers: int) -> None:
        self.cond = threading.Condition()
        self.turn, self.active = 0, list(range(workers))

    def _pass(self, me: int) -> None:
        later = [w for w in self.active if w > me] + [w for w in self.active if w < me]
        self.turn = later[0] if later else me
        self.cond.notify_all()

    def wait(self, me: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me)

    def after_trial(self, me: int) -> None:
        with self.cond:
            self._pass(me)
        self.wait(me)

    def done(self, me: int) -> None:
        with self.cond:
            self.active.remove(me)
            self._pass(me)


def trial_record(trial: FrozenTrial) -> tuple[object, ...]:
    return (trial.number, trial.state, settings(trial), trial.user_attrs.get("per_split"))


@pytest.mark.parametrize("shares", [(6, 6), (3, 9)])
def test_two_workers_of_n_trials_in_all_run_the_trials_of_one_worker_of_n(shares):
    """One worker with 12 trials over uniform, mvn and gmm: the 2 fitted defaults queued
    first (mvn and gmm at scale 1; uniform has none), 7 TPE trials, then 3 queued
    siblings. Two workers (6 and 6, or 3 and 9) on one storage, taking turns: the study
    holds the same 12 trials (settings, states, split scores), the same 5 queued trials
    among them, and no other trial (the defaults run once, though both workers queue
    them). Trials seeded by their number and never two running at
    once make TPE's proposals the same, so this isolates the sibling phase: when each worker
    had its own (the last quarter of its own trials, from the best it had seen), the first
    worker queued its siblings after its own 4th or 2nd trial, in place of TPE's 9th."""
    families = ("uniform", "mvn", "gmm")
    one, objective = mixture_study(families)
    run_trials(one, objective, sum(shares))
    storage = optuna.storages.InMemoryStorage()
    turns = TakeTurns(len(shares))
    errors: list[BaseException] = []

    def worker(me: int) -> None:
        study, objective = mixture_study(families, storage)  # its own study object
        turns.wait(me)
        try:
            run_trials(study, objective, shares[me], callbacks=[lambda s, t: turns.after_trial(me)])
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)
        finally:
            turns.done(me)

    threads = [threading.Thread(target=worker, args=(me,)) for me in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    queued = [t.number for t in one.trials if "fixed_params" in t.system_attrs]
    assert queued == [0, 1, 9, 10, 11], [trial_record(t) for t in one.trials]
    two = optuna.load_study(study_name="generators", storage=storage)
    assert [trial_record(t) for t in two.trials] == [trial_record(t) for t in one.trials]


def test_a_worker_does_not_queue_the_siblings_another_worker_queued():
    """Worker B's 3 TPE trials, then its sibling phase (1 of its 4 trials); just before it,
    worker A queues the sibling shapes of every mixture B has completed, at their own width
    and at scale 1 (what A's sibling phase queues, whichever width the rule picks). B queues
    none of them again: no two trials of the study share their settings. Reading ``params``
    alone, B queued its first sibling a second time (the duplicates of the two-worker runs of
    the benchmark)."""
    study, objective = mixture_study(("gmm",))
    queued_by_a: list[str] = []

    def worker_a(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.number != 2:  # B's last TPE trial
            return
        for done in complete_trials(study):
            for width in (None, 1.0):
                for shape in sibling_shapes(candidate_of(done), objective.n_fit, width):
                    params = {"family": shape.family, **shape.params}
                    if repr(sorted(params.items())) not in queued_by_a:
                        study.enqueue_trial(params)
                        queued_by_a.append(repr(sorted(params.items())))

    run_trials(study, objective, 4, callbacks=[worker_a])
    assert queued_by_a and complete_trials(study)
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state.is_finished() for t in trials) == 4  # B's trials, A's first among them
    every = [settings(t) for t in trials]
    assert len(every) == len(set(every)), sorted(every)
    assert len(tried_or_queued(study)) == len(trials)


def test_a_shape_two_workers_queued_runs_once_and_another_trial_takes_its_place():
    """The race that reading the queue cannot close: both workers read it before either
    queued, and both queued one shape. Here worker A queues it twice just before worker B's
    sibling phase (2 of B's 8 trials). The later copy fails at once, unscored, with the
    earlier one's trial number; B still runs 2 sibling trials that score (the shape, then
    its own first sibling, queued in the copy's place), and queues no more than the study's
    trials left: none is left waiting."""
    study, objective = mixture_study(("gmm",))
    shape = {"family": "gmm", "components": 3, "covariance": "diag", "subspace": 4, "scale": 1.0}

    def worker_a(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.number == 5:  # B's last TPE trial
            study.enqueue_trial(shape)
            study.enqueue_trial(shape)

    run_trials(study, objective, 8, callbacks=[worker_a])
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    scored = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(scored) == 8, [(t.number, t.state) for t in trials]
    assert [t.number for t in failed] == [7] and trials[6].params == shape
    assert settings(failed[0]) == settings(trials[6])
    assert len({settings(t) for t in scored}) == 8  # no shape scored twice
    assert "fixed_params" in trials[8].system_attrs  # the copy's replacement, queued
    assert not any(t.state == TrialState.WAITING for t in trials)


def test_a_queued_trial_started_a_moment_ago_is_known_by_its_queued_settings():
    """A worker checks a queued trial against the trials before it while another worker's
    copy of the shape has started and asked for its first setting only: the started one
    still has the shape's settings (its ``fixed_params``), so the later copy is caught.
    Reading ``params`` first, the started trial had the family alone and the shape ran twice
    (2 trials of one two-worker run of the benchmark)."""
    study, _ = mixture_study(("gmm",))
    shape = {"family": "gmm", "components": 3, "covariance": "diag", "subspace": 4, "scale": 1.0}
    study.enqueue_trial(shape)
    running = study.ask()  # the queued trial, started
    running.suggest_categorical("family", ["gmm"])  # its objective's first setting so far
    (frozen,) = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert frozen.params == {"family": "gmm"}
    assert settings_of(frozen) == settings_key(shape)


def test_a_worker_ended_by_an_error_records_the_trials_it_ran():
    """Its plan shrinks to what it ran, so the round's sibling phase is not held for trials
    that never come: an objective that raises in its fourth trial (a signal, a bug) leaves
    a plan of 3, not 0 (the count was lost with the error) and not the 10 planned."""
    study = optuna.create_study(direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 3:
            raise KeyboardInterrupt
        return trial.suggest_float("x", 0.0, 1.0)

    with pytest.raises(KeyboardInterrupt):
        run_shared(study, objective, 10, 0.25, list, worker="w")
    assert study.user_attrs[PLAN + "w"]["trials"] == 3


def test_a_killed_workers_plan_does_not_hold_its_round_open():
    """A worker SIGKILLed after 2 of its 12 planned trials cannot record what it ran; once its
    plan has not been refreshed for the heartbeat's grace period and none of its trials
    runs, its plan counts the 2 it ran. A later worker of 4 trials then starts a round of its
    own (first trial 2) and runs its sibling phase (its last trial, a queued sibling); with
    the dead plan counted whole it joined the dead round (a total of 16 its 4 trials never
    reach) and ran no sibling. A plan seen within the grace period is kept whole."""
    families = ("uniform", "mvn", "gmm")
    study, objective = mixture_study(families)
    run_trials(study, objective, 2, worker="killed")  # the 2 fitted defaults, tagged
    assert [t.user_attrs["worker"] for t in study.trials] == ["killed", "killed"]
    study.set_user_attr(PLAN + "killed", {"trials": 12, "round": 0, "seen": time.time() - 3600})
    study.set_user_attr(PLAN + "alive", {"trials": 0, "round": 0, "seen": time.time()})
    assert plans(study)["killed"]["trials"] == 2
    run_trials(study, objective, 4, worker="later")
    assert plans(study)["later"]["round"] == 2
    last = study.trials[-1]
    assert "fixed_params" in last.system_attrs and last.user_attrs["worker"] == "later"
    study.set_user_attr(PLAN + "busy", {"trials": 12, "round": 6, "seen": time.time()})
    assert plans(study)["busy"]["trials"] == 12
    # silent for an hour but running a trial (a long flow fit): alive
    long_fit = study.ask()
    long_fit.set_user_attr("worker", "fitting")
    study.set_user_attr(PLAN + "fitting", {"trials": 5, "round": 6, "seen": time.time() - 3600})
    assert plans(study)["fitting"]["trials"] == 5
    # ended long ago: its plan is what it ran, never cut again
    ended = {"trials": 7, "round": 6, "seen": time.time() - 3600, "done": True}
    study.set_user_attr(PLAN + "ended", ended)
    assert plans(study)["ended"]["trials"] == 7


def test_a_worker_waiting_for_the_sibling_queue_keeps_its_plan_alive(monkeypatch):
    """While another worker's trial runs, a worker entering the sibling phase waits with no
    trial of its own; it refreshes its plan every third of the grace period, so a wait
    longer than the grace period does not make it look dead (its share of the siblings
    would be cut)."""
    monkeypatch.setattr(queue, "_grace_s", lambda: 0.9)  # refresh every 0.3 s
    study = optuna.create_study(direction="maximize")
    other = study.ask()  # another worker's last TPE trial, running
    calls: list[float] = []
    waiting = threading.Thread(
        target=queue.sibling_queue, args=(study, 0, list), kwargs={"alive": lambda: calls.append(1)}
    )
    waiting.start()
    time.sleep(1.5)
    study.tell(other, 0.5)
    waiting.join(timeout=30)
    assert not waiting.is_alive() and len(calls) >= 2, calls
