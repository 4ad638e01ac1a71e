"""The generator search's study without MLflow: the conditional space, one trial's score split
by split with successive-halving pruning, and the study loop.

:mod:`aelatent.jobs.generator_search.job` runs it inside MLflow runs (every trial a nested run);
``benchmarks/bench_generator_search.py`` and the tests call :func:`optimize` directly on
plain arrays, so what is validated is the search itself, not a copy of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from aelatent.core.generator_space import (
    SPLITS,
    Candidate,
    SplitScore,
    fit_candidate,
    principal_directions,
    score_se,
    split_score,
)
from aelatent.core.sampler_registry import SettingSpace, parameter_count, spec_of
from aelatent.core.samplers import Sampler
from aelatent.core.verdict import Split, make_splits
from aelatent.jobs.generator_search.queue import run_shared
from aelatent.jobs.generator_search.selection import complete_trials, family_bests, tied_with_top

SIBLING_FRACTION = 0.25  # of a study's planned trials: each family's best's siblings (run_trials)
SCORE_VERSION = (
    "generators: min(1, 2(1 - max(acc, acc_shape))) of a quadratic and a k-NN C2ST x "
    f"min(1, copying ratio), {SPLITS} cross-fitted splits (v2)"
)


def suggest(trial: optuna.Trial, families: Sequence[str], n_fit: int) -> Candidate:
    """The trial's candidate: a family, then the settings its registry entry declares, then
    its width axis (a conditional space; a new sampler brings its own)."""
    family = str(trial.suggest_categorical("family", list(families)))
    spec = spec_of(family)
    settings: dict[str, Any] = {}
    for space in spec.settings:
        if space.kind == "choice":
            settings[space.name] = trial.suggest_categorical(space.name, list(space.choices))
        elif space.kind == "int":
            high = int(space.upper(n_fit))
            settings[space.name] = trial.suggest_int(
                space.name, int(space.low), high, log=space.log
            )
        else:
            high_f = float(space.upper(n_fit))
            settings[space.name] = trial.suggest_float(space.name, space.low, high_f, log=space.log)
    settings[spec.axis] = trial.suggest_float(spec.axis, *spec.axis_range, log=True)
    return Candidate.of(family, settings)


def fitted_defaults(objective: GeneratorObjective) -> list[dict[str, Any]]:
    """The study's first trials (Optuna's warm start): each family that has a default fit
    (its registry entry's ``default_settings``: gaussian, mvn without shrinkage, gmm with
    BIC's components, covariance and subspace on the first split's fit latents) at scale 1,
    as evaluate builds it; a value outside the search's range is clipped into it.

    Why: the score is steep in the width and TPE draws the width of each family on its own,
    so a study may never try a family near the width its fit was fitted at: on the demo's
    case I model no mvn trial of 60 came near scale 1 (its best was at 1.78, score 0.55),
    while evaluate's mvn at scale 1 scored 0.835, beside the winner's 0.829; and a study
    whose first good shapes are at a bad width queues their siblings at a width of chance
    (two workers on seed 1 of benchmarks/bench_generator_workers.py). The defaults give
    every study, and every worker of one, the same known-good start."""
    split = objective.splits[0]
    queue: list[dict[str, Any]] = []
    for family in objective.families:
        spec = spec_of(family)
        if spec.default_settings is None or spec.axis != "scale":
            continue
        fitted = objective.fitted(Candidate.of(family, {spec.axis: 1.0}), split)
        defaults = spec.default_settings(fitted)
        settings = {s.name: _within(s, defaults[s.name], objective.n_fit) for s in spec.settings}
        queue.append({"family": family, **settings, spec.axis: 1.0})
    return queue


def _within(space: SettingSpace, value: Any, n_fit: int) -> Any:
    """``value`` clipped into ``space``'s range (a choice is kept as it is)."""
    if space.kind == "choice":
        return value
    clipped = min(max(value, space.low), space.upper(n_fit))
    return int(clipped) if space.kind == "int" else float(clipped)


def pruner() -> optuna.pruners.BasePruner:
    """Successive halving over the splits: a clearly bad candidate stops after one."""
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


class GeneratorObjective:
    """The Optuna objective: one candidate scored split by split (fits reused across widths).

    Every trial's user attributes hold what the summary reads: ``label``, ``per_split``,
    ``parameters`` (the first split's fit's free parameters: the selection's simplicity),
    and when complete ``score``, ``score_se``, ``c2st_acc``, ``copying_ratio``, ``fidelity``,
    ``splits`` and, for a family with a density, ``log_likelihood`` (mean over the splits)."""

    def __init__(
        self,
        splits: Sequence[Split],
        families: Sequence[str],
        *,
        estimate: str,
        seed: int,
        multi: bool = False,
    ) -> None:
        self.splits = list(splits)
        self.families = tuple(families)
        self.estimate, self.seed = estimate, seed
        self.multi = multi  # mode=multi: (fidelity, copying ratio), every split, no pruning
        self.directions = [principal_directions(split.fit) for split in self.splits]
        self._fits: dict[tuple[str, tuple[Any, ...], int], Sampler] = {}  # one fit per shape

    @property
    def n_fit(self) -> int:
        return int(self.splits[0].fit.shape[0])

    def fitted(self, candidate: Candidate, split: Split) -> Sampler:
        key = (candidate.family, candidate.shape, split.seed)
        if key not in self._fits:
            self._fits[key] = fit_candidate(
                candidate, split.fit, seed=split.seed, estimate=self.estimate
            )
        return self._fits[key]

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        return self.score(trial, suggest(trial, self.families, self.n_fit))

    def score(self, trial: optuna.Trial, candidate: Candidate) -> float | tuple[float, float]:
        """The candidate's mean split score; TrialPruned when Optuna's pruner says so (the
        partial scores are left in ``per_split``). ``multi``: the means of its two factors,
        ``(fidelity, copying ratio)`` (:func:`fidelity`), after every split (Optuna's
        ``report`` and ``should_prune`` raise in a multi-objective study)."""
        trial.set_user_attr("label", candidate.label)
        scores: list[float] = []
        accs, shapes, ratios, logliks, fit_logliks, fidelities = [], [], [], [], [], []
        for step, (split, directions) in enumerate(zip(self.splits, self.directions, strict=True)):
            sampler = self.fitted(candidate, split)
            if step == 0:
                trial.set_user_attr("parameters", parameter_count(sampler))
            got = split_score(sampler, split, candidate.scale, self.seed, directions)
            scores.append(got.score)
            accs.append(got.accuracy)
            shapes.append(got.shape_accuracy)
            ratios.append(got.copying_ratio)
            logliks.append(got.log_likelihood)
            fit_logliks.append(got.fit_log_likelihood)
            fidelities.append(fidelity(got))
            if self.multi:
                continue
            trial.report(float(np.mean(scores)), step)
            if step + 1 < len(self.splits) and trial.should_prune():
                trial.set_user_attr("per_split", scores)
                raise optuna.TrialPruned()
        metrics = {
            "score": float(np.mean(scores)),
            "score_se": score_se(scores),
            "c2st_acc": float(np.mean(accs)),
            "shape_c2st_acc": float(np.mean(shapes)),
            "copying_ratio": float(np.mean(ratios)),
            "fidelity": float(np.mean(fidelities)),
            "splits": float(len(scores)),
        }
        if all(math.isfinite(v) for v in logliks):
            metrics["log_likelihood"] = float(np.mean(logliks))
            metrics["fit_log_likelihood"] = float(np.mean(fit_logliks))
            trial.set_user_attr("per_split_log_likelihood", logliks)
            trial.set_user_attr("per_split_fit_log_likelihood", fit_logliks)
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("per_split", scores)
        if self.multi:
            return metrics["fidelity"], metrics["copying_ratio"]
        return metrics["score"]


def fidelity(got: SplitScore) -> float:
    """The score's two-sample factor ``min(1, 2(1 - max(acc, acc_shape)))``
    (:mod:`aelatent.core.generator_space`): 1 when neither classifier tells the generated
    vectors from the held-out half. ``got.score`` is it times ``min(1, copying ratio)``."""
    return min(1.0, 2.0 * (1.0 - max(got.accuracy, got.shape_accuracy)))


def optimize(
    latents: np.ndarray,
    families: Sequence[str],
    *,
    n_trials: int,
    seed: int,
    estimate: str = "auto",
    study: optuna.Study | None = None,
    multi: bool = False,
) -> optuna.Study:
    """The search on plain training latents: ``n_trials`` trials into ``study`` (default: a
    new in-memory one, seeded and pruned as the job's); ``multi``: the two objectives of
    ``mode=multi`` (a new study: two directions, no pruner), returned."""
    # here, not at the top: importing the package aelatent.jobs.search runs its job module,
    # which imports generator_search and so this module, not yet initialised (a cycle at
    # import time that a caller importing this module first, as the benchmark does, hits)
    from aelatent.jobs.search.study import TrialSeededSampler

    splits = make_splits(np.asarray(latents, dtype=np.float64), SPLITS, seed)
    if study is None:
        study = optuna.create_study(
            directions=["maximize"] * (2 if multi else 1),
            sampler=TrialSeededSampler(seed),
            pruner=optuna.pruners.NopPruner() if multi else pruner(),
        )
    objective = GeneratorObjective(splits, families, estimate=estimate, seed=seed, multi=multi)
    run_trials(study, objective, n_trials)
    return study


def run_trials(
    study: optuna.Study,
    objective: GeneratorObjective,
    n_trials: int,
    *,
    worker: str | None = None,
    **optimize: Any,
) -> None:
    """``n_trials`` trials of one worker (named ``worker`` in the study, default
    :func:`~aelatent.jobs.generator_search.queue.worker_name`) in the study's two phases
    (:func:`~aelatent.jobs.generator_search.queue.run_shared`): the families' fitted
    defaults (:func:`fitted_defaults`, queued once for the study) and TPE's, then, for the last
    SIBLING_FRACTION of the trials its workers plan together, the sibling shapes of each
    family's best (:func:`sibling_shapes`; the families taken in turn, best first) at
    :func:`sibling_width`, queued once for the study, TPE's again for what they leave;
    ``optimize``: ``study.optimize``'s keyword arguments.

    Why: the winner is chosen among the shapes tied with the top score
    (:func:`~aelatent.jobs.generator_search.selection.best_trial`), so it can only be one that
    was tried near a good width, and TPE draws each setting on its own while the score is steep
    in the width: in 24 trials on seed 1 of the reduced benchmark it never tried 3 components
    near the width of the top score (6 diagonal ones); on seed 0 of the full one it spent 36 of
    60 trials on the flow and its best mixture had 1 component. Why each family's best, not the
    top's alone: the top may be another family's. The shapes come from the scores and their tie
    test (:func:`tied_with_top`), not from the winner, so the trials do not depend on the rest
    of the rule that picks the winner (the likelihood and parameter steps). Why the study's
    phase, not each worker's: two workers with a phase each spent 3 of their 12 trials on the
    siblings of the best each saw, smallest counts first, and neither reached 3 components,
    where one worker of 24 spends 6 (benchmarks/bench_generator_workers.py)."""

    def siblings() -> list[dict[str, Any]]:
        trials = complete_trials(study)
        if not trials:
            return []
        in_play = {t.number for t in tied_with_top(trials)}
        queues = [
            sibling_shapes(candidate_of(best), objective.n_fit, sibling_width(best, in_play))
            for best in family_bests(trials).values()
        ]
        return [
            {"family": s.family, **s.params}
            for turn in itertools.zip_longest(*queues)
            for s in turn
            if s is not None
        ]

    run_shared(
        study,
        objective,
        n_trials,
        SIBLING_FRACTION,
        siblings,
        worker=worker,
        start=fitted_defaults(objective),
        **optimize,
    )


def sibling_width(best: FrozenTrial, in_play: set[int]) -> float | None:
    """The width of the siblings of a family's best trial: its own (None) when it is tied
    with the top score (``in_play``: the numbers of those trials), a width known to be good;
    otherwise, for a family whose axis scales its fit, scale 1, the fit's own width.

    Why: the width that suits one shape need not suit another, and a family's best that is
    not tied with the top may owe its place to its width, not its shape: on seed 6 of the
    full benchmark the mixture's best was 4 components at 2.28 (score 0.31), its siblings
    inherited 2.28 and all were pruned after one split, while its fits were the likeliest
    on held-out latents. Scale 1 is the width every fit was fitted at, the one choice that
    favours no shape. uniform's b has no such width (its best keeps its own)."""
    if best.number in in_play or spec_of(str(best.params["family"])).axis != "scale":
        return None
    return 1.0


def sibling_shapes(candidate: Candidate, n_fit: int, width: float | None = None) -> list[Candidate]:
    """The candidates of ``candidate``'s family at ``width`` (default its own) with every
    count and choice: every value of a linear integer setting (a count: gmm's components,
    flow's bijectors), smallest first, times every value of a choice (gmm's covariance
    type); the log-scale and float settings kept; the candidate itself left out (at another
    width its own shape is a sibling); none for a family with no count or choice (mvn,
    gaussian, uniform: their width is TPE's to explore, not a sibling's). Why every count,
    not only smaller ones: a top score of too few components (2 on seed 0 of the reduced
    benchmark) must meet the right count too; why smallest first: a budget too small for
    all of them covers the simple ones, and a bad one is pruned after one split."""
    spec = spec_of(candidate.family)
    params = candidate.params
    grid: list[dict[str, Any]] = [{}]
    varied = False
    for space in spec.settings:
        if space.kind == "choice":
            values: list[Any] = list(space.choices)
        elif space.kind == "int" and not space.log:
            values = list(range(int(space.low), int(space.upper(n_fit)) + 1))
        else:
            values = [params[space.name]]
        varied = varied or len(values) > 1
        grid = [{**g, space.name: v} for g in grid for v in values]
    if not varied:
        return []
    at = params[spec.axis] if width is None else width
    shapes = [Candidate.of(candidate.family, {**g, spec.axis: at}) for g in grid]
    return [c for c in shapes if c != candidate]


def candidate_of(trial: FrozenTrial) -> Candidate:
    params = dict(trial.params)
    return Candidate.of(str(params.pop("family")), params)
