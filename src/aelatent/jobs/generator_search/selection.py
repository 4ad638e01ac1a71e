"""The generator search's selection: which of a study's trials wins, and how its families
rank, from the trials' split scores and their fits' held-out log-likelihoods alone.

Pure reading of finished trials (no Optuna study is run here): :mod:`aelatent.jobs.
generator_search.study` uses it for the sibling phase (the family bests, the trials tied with
the top), the job and the report for the winner and the ranking, and
``benchmarks/bench_generator_search.py`` to apply other rules to stored trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from aelatent.core.generator_space import SPLITS, SplitNoise, as_good_as, pooled_noise
from aelatent.core.sampler_registry import spec_of


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "score" in t.user_attrs
    ]


def top_score(trials: Sequence[FrozenTrial]) -> FrozenTrial:
    """The highest score (the earlier trial of a tie)."""
    return max(trials, key=lambda t: (t.user_attrs["score"], -t.number))


SELECTION_RULE = (
    "of the trials tied with the top score (the split scores' noise pooled over the "
    "candidates near the top), those tied with the best held-out log-likelihood of the fit "
    "(paired t over the splits), the fewest parameters, the width nearest the fit's own "
    "(scale 1) (t tests at 95%, two-sided)"
)
RANKING_RULE = (
    "the winner's family first, then the same rule over and over on the other families' "
    "trials, pruned ones on the splits they ran; a family without a density (uniform) after "
    "every family it ties"
)
FIT_LOG_LIKELIHOOD = "per_split_fit_log_likelihood"


def score_noise(trials: Sequence[FrozenTrial]) -> SplitNoise | None:
    """The noise of one split's score (:func:`~aelatent.core.generator_space.pooled_noise`),
    pooled over the complete trials that the pair's own paired t ties with the top score;
    over every complete trial when the top has no such peer; None with fewer than two
    complete trials (then each pair's own test decides).

    Why near the top: a C2ST accuracy's noise depends on its level (binomial: it shrinks
    toward the floor of a generator told apart every time and at the ceiling of 1), and the
    tie test is about candidates near the top. Why every trial rather than none: a pair's
    own test has R - 1 degrees of freedom, and none on the one split of a trial pruned
    after it."""
    full = [
        t.user_attrs["per_split"]
        for t in trials
        if len(t.user_attrs.get("per_split", ())) == SPLITS
    ]
    if not full:
        return None
    best = max(full, key=lambda scores: float(np.mean(scores)))
    near = [scores for scores in full if as_good_as(best, scores)]
    return pooled_noise(near) or pooled_noise(full)


def tied_with_top(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials whose split scores are not significantly below the top score's (the
    noise pooled: :func:`score_noise`)."""
    top, noise = top_score(trials), score_noise(trials)
    best = top.user_attrs["per_split"]
    return [t for t in trials if as_good_as(best, t.user_attrs["per_split"], noise)]


def tied_with_likeliest(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Of the trials with a density, those whose fit's held-out log-likelihoods (scale 1,
    split by split) are not significantly below the likeliest's; all of them when none has
    one (uniform)."""
    scored = [t for t in trials if FIT_LOG_LIKELIHOOD in t.user_attrs]
    if not scored:
        return list(trials)
    likeliest = max(scored, key=lambda t: float(np.mean(t.user_attrs[FIT_LOG_LIKELIHOOD])))
    best = likeliest.user_attrs[FIT_LOG_LIKELIHOOD]
    return [t for t in scored if as_good_as(best, t.user_attrs[FIT_LOG_LIKELIHOOD])]


def best_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial:
    """The winner (SELECTION_RULE): the score says which candidates make vectors the
    classifiers cannot tell from held-out ones (:func:`tied_with_top`); of those, the
    held-out log-likelihood of the fit (scale 1, so the width does not count twice) says
    which shapes the new vectors are likeliest under (:func:`tied_with_likeliest`:
    cross-validated likelihood, which sees the number of components); of those, the fewest
    free parameters (``parameters``), then the width nearest scale 1 (:func:`_simplest`),
    the higher score first among equals.

    Why not the score alone or its tie-break by fewest parameters: the score saturates near
    chance for every good model and cannot tell 1, 2 or 3 components apart in 32 dimensions;
    the simplest tied one had 1 component in 10 of 10 reduced seeds. Why not the
    log-likelihood at the trial's width (the previous tie-break): it rewards narrow widths
    and over-fitted shapes alike (6 diagonal components won seed 1). Measurements:
    benchmarks/results/generator_search.md."""
    peers = tied_with_likeliest(tied_with_top(trials))
    return min(peers, key=lambda t: (*_simplest(t), -t.user_attrs["score"], t.number))


def _simplest(trial: FrozenTrial) -> tuple[float, float]:
    """A tie's order before the score: the fewest free parameters, then the width nearest
    the fit's own (``|log scale|``; uniform's ``b`` has none: 0).

    Why the width before the score: the trials are tied, so the higher score is noise, and
    on real latents it leans wide: the copying ratio is capped at 1 in the score, so a width
    above 1 is punished only by the C2ST, which at a few hundred vectors misses a 20% wider
    spread (on the demo's case I model every family's best was at scale 1.2-1.8, and the
    winner, a flow at 1.197, decoded to blotchier faces than evaluate's mvn at scale 1).
    Scale 1 is the width the fit was fitted at: a width moves away from it only when the
    score says so significantly."""
    family = str(trial.params["family"])
    axis = spec_of(family).axis
    width = abs(math.log(float(trial.params[axis]))) if axis == "scale" else 0.0
    return float(trial.user_attrs.get("parameters", math.inf)), width


def best_by_log_likelihood(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The highest held-out log-likelihood among the trials of families with a density."""
    scored = [t for t in trials if "log_likelihood" in t.user_attrs]
    return max(scored, key=lambda t: (t.user_attrs["log_likelihood"], -t.number), default=None)


def family_bests(trials: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The best complete trial of each family, best first."""
    bests: dict[str, FrozenTrial] = {}
    for t in trials:
        family = t.params["family"]
        if family not in bests or t.user_attrs["score"] > bests[family].user_attrs["score"]:
            bests[family] = t
    return dict(sorted(bests.items(), key=lambda item: -item[1].user_attrs["score"]))


def family_ranking(
    trials: Sequence[FrozenTrial], winner: FrozenTrial | None = None
) -> dict[str, FrozenTrial]:
    """The families ranked (RANKING_RULE), each with the trial that placed it: first the
    winner's (default :func:`best_trial` over the complete trials; ``mode=multi`` passes
    the front's), then, over and over, the rule's choice among the remaining families'
    trials, complete and pruned (:func:`_placed`).

    Why not each family's best score: the score does not rank generators that are told
    apart; every wide generator levels off at the same floor (uniform, gaussian and a wide
    mvn at 0.25-0.26 on the benchmark), where the order of the best scores is the order of
    noise and of what the pruner happened to stop (on one seed every good gaussian trial
    was pruned after two splits at 0.26, and its one complete trial, at a bad width,
    scored 0.02 and ranked it below uniform). The rule orders a tie the way it picks a
    winner: by the fit's held-out log-likelihood, which a family without a density cannot
    show (the winner's rule drops it from a tie with one that has), then by parameters."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and "score" in t.user_attrs]
    order: dict[str, FrozenTrial] = {}
    if winner is None and complete:
        winner = best_trial(complete)
    if winner is not None:
        order[str(winner.params["family"])] = winner
    noise = score_noise(complete)
    fits = {
        _shape_key(t): t.user_attrs[FIT_LOG_LIKELIHOOD]
        for t in complete
        if FIT_LOG_LIKELIHOOD in t.user_attrs
    }
    rest = [
        t for t in trials if t.user_attrs.get("per_split") and t.params.get("family") not in order
    ]
    while rest:
        placed = _placed(rest, noise, fits)
        family = str(placed.params["family"])
        order[family] = placed
        rest = [t for t in rest if t.params["family"] != family]
    return order


def _placed(
    pool: Sequence[FrozenTrial],
    noise: SplitNoise | None,
    fits: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]],
) -> FrozenTrial:
    """The winner's rule on trials that may have been pruned: the top is the highest mean
    split score, a pruned trial compared on the splits it ran; a family with a density
    before one without; the fit's held-out log-likelihood from any complete
    trial of the same shape (it does not depend on the width: every width of a shape is one
    fit); then the fewest parameters and the width nearest scale 1."""
    top = max(pool, key=lambda t: (_mean_score(t), -t.number))
    best = top.user_attrs["per_split"]
    tied = [t for t in pool if as_good_as(best, t.user_attrs["per_split"], noise)]
    dense = [t for t in tied if spec_of(str(t.params["family"])).log_likelihood is not None]
    peers = dense or tied
    known = [(t, fits[_shape_key(t)]) for t in peers if _shape_key(t) in fits]
    if known:
        likeliest = max((ll for _, ll in known), key=lambda ll: float(np.mean(ll)))
        peers = [t for t, ll in known if as_good_as(likeliest, ll)]
    return min(peers, key=lambda t: (*_simplest(t), -_mean_score(t), t.number))


def _mean_score(trial: FrozenTrial) -> float:
    return float(np.mean(trial.user_attrs["per_split"]))


def _shape_key(trial: FrozenTrial) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A trial's fit: its family and every setting but the width."""
    family = str(trial.params["family"])
    axis = spec_of(family).axis
    return family, tuple(
        sorted((k, repr(v)) for k, v in trial.params.items() if k not in ("family", axis))
    )
