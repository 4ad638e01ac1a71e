"""The generator search's reference: evaluate's multivariate normal at scale 1, scored on the
study's own splits, so the winner is reported against the simple generator a user would try
first, better or not (issue 25).

The study holds the same candidate among its fitted defaults (its first trials,
:func:`~aelatent.jobs.generator_search.study.fitted_defaults`), so it can win; it is scored
again here, with a fixed trial Optuna never sees, because the study's trial may have been
pruned or may belong to an earlier round of a continued study, and the difference needs
every split. The fits are the objective's (cached) and the score deterministic, so an
unpruned trial of it has the same split scores.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from aelatent.core.generator_space import (
    Candidate,
    SplitNoise,
    difference_interval,
    difference_verdict,
    score_se,
)
from aelatent.jobs.generator_search.study import GeneratorObjective

REFERENCE = Candidate.of("mvn", {"scale": 1.0, "shrinkage": 0.0})  # evaluate's mvn


def score_reference(objective: GeneratorObjective) -> dict[str, Any]:
    """The reference's user attributes as a trial of ``objective`` would hold them (every
    split: a fixed trial is never pruned)."""
    trial = optuna.trial.FixedTrial({"family": REFERENCE.family, **REFERENCE.params})
    objective.score(trial, REFERENCE)
    return dict(trial.user_attrs)


def reference_metrics(
    winner: dict[str, Any], reference: dict[str, Any], noise: SplitNoise | None
) -> dict[str, float]:
    """The reference's score and the winner's difference from it with its 95% interval (the
    split noise pooled as the selection's tie test pools it)."""
    diff, lo, hi = difference_interval(winner["per_split"], reference["per_split"], noise)
    metrics = {
        "reference_score": float(reference["score"]),
        "reference_score_se": score_se(reference["per_split"]),
        "reference_c2st_acc": float(reference["c2st_acc"]),
        "reference_copying_ratio": float(reference["copying_ratio"]),
        "winner_minus_reference": diff,
        "winner_minus_reference_lo": lo,
        "winner_minus_reference_hi": hi,
    }
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def reference_line(metrics: dict[str, float]) -> str:
    """One sentence: the winner against the reference, better, worse or not told apart."""
    if "winner_minus_reference" not in metrics:
        return ""
    lo = metrics.get("winner_minus_reference_lo", math.nan)
    hi = metrics.get("winner_minus_reference_hi", math.nan)
    verdict = difference_verdict(lo, hi)
    return (
        f" Against {REFERENCE.label} (evaluate's): score {metrics['reference_score']:.3f} "
        f"(C2ST accuracy {metrics['reference_c2st_acc']:.3f}, copying ratio "
        f"{metrics['reference_copying_ratio']:.2f}); the winner is {verdict} "
        f"(difference {metrics['winner_minus_reference']:+.3f} [{lo:+.3f}, {hi:+.3f}])."
    )
