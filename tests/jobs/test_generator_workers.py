"""Several workers on one generator study, their race made deterministic by a trial callback
that plays the other worker: a worker does not queue again the siblings another has queued
and not started (their settings are ``fixed_params`` until a worker starts them), and a
shape queued twice runs once. The two real worker processes on PostgreSQL are in
test_postgres_stack.py (its server); their winners against one worker's are measured by
benchmarks/bench_generator_workers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from aelatent.core.verdict import make_splits
from aelatent.jobs.generator_queue import tried_or_queued
from aelatent.jobs.generator_study import (
    SPLITS,
    GeneratorObjective,
    candidate_of,
    complete_trials,
    pruner,
    run_trials,
    sibling_shapes,
)
from aelatent.jobs.search.study import TrialSeededSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_generator_search import mixture_latents


def settings(trial: FrozenTrial) -> str:
    return repr(sorted((trial.params or trial.system_attrs.get("fixed_params", {})).items()))


def mixture_study(families: tuple[str, ...]) -> tuple[optuna.Study, GeneratorObjective]:
    """A new study as the job's (seeded TPE, the pruner) and an objective on 300 latents of
    8 dimensions of the known 3-component mixture."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    latents = mixture_latents(0, 300, 8).astype("float64")
    objective = GeneratorObjective(
        make_splits(latents, SPLITS, 0), families, estimate="auto", seed=0
    )
    study = optuna.create_study(
        direction="maximize", sampler=TrialSeededSampler(0), pruner=pruner()
    )
    return study, objective


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
    earlier one's trial number; B still runs 2 sibling trials that score (the shape and its
    own first sibling) and queues the next in the copy's place."""
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
    assert any(t.state == TrialState.WAITING for t in trials)  # the copy's replacement, queued
