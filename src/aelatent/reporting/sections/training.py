"""Section 2, "Configuration and training": the train runs' parameters side by side, how
training ended, the loss curves (drawn by the report from the metric histories) and the
reconstructions."""

from __future__ import annotations

from aelatent.reporting.document import Block, Figure, Heading, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import SectionContext, train_metric_table
from aelatent.reporting.sections.formatting import cell_value
from aelatent.reporting.training_figure import training_curves

MAX_CONFIG_ROWS = 12
CONFIG_FIRST = ("model.", "training.", "data.image_size", "data", "seed", "n_")
TRAIN_HISTORY_KEYS = ("loss", "val_loss")
SUMMARY_KEYS = ("final_loss", "final_val_loss", "train_seconds", "train_images_per_second")
# the jobs' own bookkeeping on a run (a resume's claim, ``aelatent.claim.N``), not a setting
INTERNAL_PREFIX = "aelatent."


def config_rank(key: str, differs: bool) -> int:
    """Differences first, then the network, training and data, then everything else."""
    if differs:
        return 0
    return 1 if key.startswith(CONFIG_FIRST) else 2


def configuration_section(ctx: SectionContext) -> Section:
    cases = ctx.data.cases
    rows: list[list] = []
    for key in {k for c in cases for k in c.train.params if not k.startswith(INTERNAL_PREFIX)}:
        values = [c.train.params.get(key) for c in cases]
        differs = len(set(values)) > 1
        rows.append([key, *[cell_value(v) for v in values], "yes" if differs else ""])
    rows.sort(key=lambda row: (config_rank(row[0], row[-1] == "yes"), row[0]))
    blocks: list[Block] = [
        Paragraph(
            "The network and training settings of each case, side by side: first those in "
            "which the cases differ, then the network, training and data; the CSV has "
            "every parameter (optimizer internals, analysis settings) too."
        ),
        Table(
            "configuration",
            ["parameter", *[f"case {c.label}" for c in cases], "differs"],
            rows,
            caption="Parameters of the train runs",
            max_rows=max(MAX_CONFIG_ROWS, sum(config_rank(r[0], r[-1] == "yes") < 2 for r in rows)),
        ),
    ]
    summary_keys = [k for k in SUMMARY_KEYS if any(k in c.train.metrics for c in cases)]
    if summary_keys:
        blocks.append(
            train_metric_table("training_summary", summary_keys, cases, "End of training")
        )
    curves = {c.label: {k: c.train.histories.get(k, []) for k in TRAIN_HISTORY_KEYS} for c in cases}
    if any(points for series in curves.values() for points in series.values()):
        path = training_curves(curves, ctx.work_dir / "training_curves.png")
        blocks.append(
            Figure(
                path,
                "Training curves: loss and val_loss per epoch (MlflowClient.get_metric_history)",
            )
        )
        rows = [
            [label, step + 1, key, value]
            for label, series in curves.items()
            for key, points in series.items()
            for step, value in points
        ]
        blocks.append(
            Table(
                "training_curves",
                ["case", "epoch", "metric", "value"],
                rows,
                caption="Training curves",
                max_rows=0,
            )
        )
    elif cases:
        blocks.append(Note("Not logged: no loss/val_loss history in the train runs."))
    blocks.append(Heading("Reconstructions"))
    blocks += ctx.per_case(
        lambda c: ctx.figure(
            c.train,
            "reconstructions.png",
            "*reconstructions*.png",
            caption="originals above reconstructions",
        )
    )
    return Section("configuration", "Configuration and training", blocks)
