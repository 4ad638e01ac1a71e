"""The search section for a ``space=generators`` run: which generator, with which settings.

The families ranked with their scores and intervals (``search/best_per_family.csv``), their
decoded vectors (``search/decoded_generators.png``), Optuna's hyperparameter importances, the
winner against evaluate's mvn at scale 1 and against the held-out images beside the training
latents' own score, and in mode=multi the Pareto front.
"""

from __future__ import annotations

import math

from aelatent.core.generator_space import difference_verdict
from aelatent.reporting.collect import CaseData, RunData
from aelatent.reporting.document import Block, Note, Paragraph, Table
from aelatent.reporting.sections.context import SectionContext, slug
from aelatent.reporting.sections.formatting import number, read_csv, with_interval
from aelatent.schema import (
    BEST_PER_FAMILY_CSV,
    DECODED_GENERATORS_PNG,
    PARAM_IMPORTANCES_PNG,
    PARETO_FRONT_PNG,
)


def is_generator_search(run: RunData) -> bool:
    return run.params.get("space") == "generators"


def generator_panel(ctx: SectionContext, case: CaseData, run: RunData) -> list[Block]:
    m = run.metrics
    if "best_score" not in m:
        return [
            Note(f"No best generator: {run.tags.get('no_best_generator', 'no trial completed')}.")
        ]
    score = with_interval(m["best_score"], m.get("best_score_lo"), m.get("best_score_hi"), 3)
    blocks: list[Block] = [
        Paragraph(
            f"Best generator: {run.tags.get('best_generator', '?')}, score {score} "
            f"(score = min(1, 2(1 - accuracy)) of the worse of a quadratic and a k-NN C2ST "
            f"against real latents the candidate was not fitted to, times min(1, copying "
            f"ratio); {run.params.get('splits', '3')} cross-fitted splits); "
            + among(m)
            + (
                f", {m['n_as_likely']:g} of them with a fit as likely as the likeliest on "
                "held-out latents; the winner is the one of those with the fewest parameters"
                if "n_as_likely" in m
                else ""
            )
            + f"; {m.get('n_trials_pruned', 0):g} pruned early."
        )
    ]
    if "winner_minus_reference" in m:
        blocks.append(Paragraph(reference_text(m)))
    if "winner_heldout_c2st_acc" in m:
        winner = with_interval(
            m["winner_heldout_c2st_acc"],
            m["winner_heldout_c2st_acc_lo"],
            m["winner_heldout_c2st_acc_hi"],
            3,
        )
        training = with_interval(
            m["training_heldout_c2st_acc"],
            m["training_heldout_c2st_acc_lo"],
            m["training_heldout_c2st_acc_hi"],
            3,
        )
        blocks.append(
            Paragraph(
                f"Against the held-out images (new people): the winner's C2ST accuracy "
                f"{winner}, the training latents' own {training}."
            )
        )
    found = run.find(BEST_PER_FAMILY_CSV)
    if found:
        path, local = found[0]
        ctx.used.add((run.run_id, path))
        rows = read_csv(local)
        blocks.append(
            Table(
                f"generators_{slug(case)}",
                ["family", "trial that placed it", "score [95%]", "C2ST accuracy", "copying ratio"],
                [
                    [
                        r["family"],
                        r["candidate"],
                        with_interval(
                            number(r["score"]), number(r["score_lo"]), number(r["score_hi"]), 3
                        ),
                        number(r["c2st_acc"]),
                        number(r["copying_ratio"]),
                    ]
                    for r in rows
                ],
                caption="the families ranked by the winner's rule (a family without a "
                "density, uniform, after every family it ties), each by the trial that placed it",
            )
        )
    for name, caption in (
        (
            PARETO_FRONT_PNG,
            "mode=multi: the Pareto front of fidelity and copying ratio, winner ringed",
        ),
        (DECODED_GENERATORS_PNG, "each family's placing trial, decoded, in rank order"),
        (PARAM_IMPORTANCES_PNG, "Optuna's hyperparameter importances"),
    ):
        if run.find(name):
            blocks += ctx.figure(run, name, caption=caption)
    return blocks


def among(m: dict[str, float]) -> str:
    """Among which trials the winner was chosen: every complete one, or (mode=multi) the
    Pareto front's."""
    good = f"{m.get('n_as_good', 0):g}"
    if "n_pareto_front" in m:
        return (
            f"{m['n_pareto_front']:g} trials on the Pareto front of fidelity and copying ratio "
            f"(of {m.get('n_trials_complete', 0):g} complete), {good} of them not "
            "significantly below the front's top score"
        )
    return (
        f"{good} of {m.get('n_trials_complete', 0):g} complete trials not significantly "
        "below the top score"
    )


def reference_text(m: dict[str, float]) -> str:
    """The winner against evaluate's mvn at scale 1 on the same splits."""
    lo, hi = m.get("winner_minus_reference_lo"), m.get("winner_minus_reference_hi")
    verdict = difference_verdict(lo, hi)
    difference = with_interval(m["winner_minus_reference"], lo, hi, 3)
    return (
        f"Against evaluate's multivariate normal at scale 1 (scored on the same splits): its "
        f"score {m.get('reference_score', math.nan):.3f}, C2ST accuracy "
        f"{m.get('reference_c2st_acc', math.nan):.3f}; the winner is {verdict} (difference "
        f"{difference}). Look at the decoded grid too: the score is one number."
    )
