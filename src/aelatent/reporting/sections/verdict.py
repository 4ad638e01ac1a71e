"""Section "Verdict": which generators can be told from real latents, beside what they decode to.

Read from each evaluate run's ``tables/verdict.json`` (:mod:`aelatent.core.verdict`): the
reference rows (real latents against real latents of a random split, which must come out
indistinguishable; the held-out people), then every generator setting, best first, each test
with its interval and p-value; under the table each setting's decoded vectors, so that the
verdict can be checked by eye.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aelatent.core.verdict import HELDOUT, REAL, STATISTIC_NAMES, criterion_text, rows_from_json
from aelatent.reporting.collect import CaseData, RunData
from aelatent.reporting.document import Block, Figure, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import SectionContext, no_evaluation, slug
from aelatent.schema import VERDICT_JSON, VERDICT_PNG, decoded_png

INTRO = (
    "Can a generator's vectors be told from real latents it was not fitted to? Each sampler "
    "is fitted on a random half of the training latents and its vectors are tested against "
    "the other half (cross-fitting, averaged over random splits): a linear and a non-linear "
    "classifier two-sample test (accuracy, 0.5 = indistinguishable), MMD² with a permutation "
    "p-value, the Fréchet distance of the two Gaussian fits, the fraction inside the real "
    "latents' ellipsoid (the box test with the correlations in it), and the decoder's cycle "
    "(P(a generated vector's ||E(D(z)) - z|| / ||z|| exceeds a real latent's)). The first row "
    "is real latents against real latents of a random split: it must pass, and its values "
    "are each test's floor. The held-out row is new people (the encoder's generalisation). "
    "A row differs when Holm's procedure over its tests rejects at 0.05; 'detectable' is the "
    "C2ST accuracy these sizes detect with 80% power. The box and k-NN figures of the next "
    "section are necessary, not sufficient: they look at one component, one length or one "
    "neighbourhood at a time."
)


def verdict_section(ctx: SectionContext) -> Section:
    blocks: list[Block] = [Paragraph(INTRO)]
    blocks += ctx.per_case(lambda case: verdict_panel(ctx, case))
    return Section("verdict", "Verdict", blocks)


def verdict_panel(ctx: SectionContext, case: CaseData) -> list[Block]:
    if not case.evaluations:
        return [no_evaluation(case)]
    runs = [r for r in case.evaluations if r.find(VERDICT_JSON)]
    if not runs:
        return [
            Note(
                "Not logged: no evaluate run of this train run has a verdict "
                "(tables/verdict.json; runs before the verdict, or -P verdict=none)."
            )
        ]
    blocks: list[Block] = []
    for run in runs:
        path, local = run.find(VERDICT_JSON)[0]
        ctx.used.add((run.run_id, path))
        rows = rows_from_json(local.read_text())
        blocks.append(verdict_table(f"verdict_{slug(case)}_{run.run_id[:8]}", run, rows))
        blocks += ctx.figure(run, VERDICT_PNG, caption="the verdict at a glance")
        blocks += decoded_beside(ctx, run, rows)
    return blocks


def verdict_table(name: str, run: RunData, rows: list[dict[str, Any]]) -> Table:
    tests = list(rows[0]["criteria"]) if rows else []
    columns = ["setting", "verdict", *(STATISTIC_NAMES.get(t, t) for t in tests), "detectable"]
    body = []
    for row in rows:
        verdict = row["verdict"]
        if row["rejected_by"]:
            verdict += f" ({', '.join(row['rejected_by'])})"
        body.append(
            [
                row["label"],
                verdict,
                *(criterion_text(row["criteria"].get(t)) for t in tests),
                f"{row['detectable_accuracy']:.3f}",
            ]
        )
    return Table(
        name,
        columns,
        body,
        caption=f"run {run.name} ({run.run_id[:8]}): statistic [95% interval] p-value",
    )


def decoded_beside(ctx: SectionContext, run: RunData, rows: list[dict[str, Any]]) -> list[Block]:
    """Each generator row's decoded grid (``decoded/<sampler>_b<value>.png``), in table order."""
    blocks: list[Block] = []
    for row in rows:
        if row["name"] in (REAL, HELDOUT):
            continue
        path = decoded_png(row["name"], row["value"])
        found: list[tuple[str, Path]] = run.find(path)
        if found:
            ctx.used.add((run.run_id, path))
            why = f" ({', '.join(row['rejected_by'])})" if row["rejected_by"] else ""
            blocks.append(Figure(found[0][1], f"{row['label']}: {row['verdict']}{why}"))
    if not blocks:
        blocks.append(Note("Not logged: no decoded grids in this run (n_decoded=0)."))
    return blocks
