"""Section 4, "The eight observations": the study's statements about the latents, measured on
each train run next to the reference figures, then the same counts in the run's own units
and beyond the windows' errors (docs/science.md, "Observations in the run's own units")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aelatent.reporting.document import Block, Heading, Note, Paragraph, Section, Table
from aelatent.reporting.sections.context import SectionContext, train_metric_table
from aelatent.reporting.sections.training import TRAIN_HISTORY_KEYS


@dataclass(frozen=True)
class Observation:
    """One of the study's eight observations: the metric(s) behind it and the reference."""

    number: str
    text: str
    reference: str
    metrics: tuple[str, ...]
    holds: Callable[[float], bool] | None = None


OBSERVATIONS = (
    Observation(
        "1",
        "Gaussian-like components (fraction)",
        "most",
        ("frac_gaussian_like",),
        lambda v: v > 0.5,
    ),
    Observation(
        "2",
        "components with mu near 0, |mu| < 0.25 (fraction)",
        ">= 0.9",
        ("frac_mu_near_0",),
        lambda v: v >= 0.9,
    ),
    Observation("3", "value range covered", "[-12, 12]", ("value_min", "value_max")),
    Observation(
        "4", "components with |mu| >= 0.25", "<= 25", ("n_mu_abs_ge_0.25",), lambda v: v <= 25
    ),
    Observation("5", "components with |mu| >= 1", "<= 10", ("n_mu_abs_ge_1",), lambda v: v <= 10),
    Observation("6", "components with hw >= 1", "<= 40", ("n_hw_ge_1",), lambda v: v <= 40),
    Observation("7", "components with hw >= 1.5", "<= 20", ("n_hw_ge_1.5",), lambda v: v <= 20),
    Observation("8", "components with hw >= 3", "<= 5", ("n_hw_ge_3",), lambda v: v <= 5),
    Observation("–", "dominant components", "20 listed", ("n_dominant",)),
)


@dataclass(frozen=True)
class ScaleFreeLevel:
    """One row of the scale-free table: a level, absolute and in the run's unit s, and the
    metrics that count it four ways (None: no such count at this level)."""

    absolute: str
    in_s: str
    study: str | None
    significant: str | None
    scale_free: str | None
    significant_scale_free: str | None

    @property
    def metrics(self) -> tuple[str | None, ...]:
        return (self.study, self.significant, self.scale_free, self.significant_scale_free)


# aelatent.core.significance: the study's questions in the run's own units, beyond doubt
SCALE_METRIC = "scale_median_hw"
SCALE_FREE_LEVELS = (
    ScaleFreeLevel(
        "|mu| >= 0.25",
        "|mu| >= 0.25 s",
        "n_mu_abs_ge_0.25",
        "n_sig_mu_abs_ge_0.25",
        "n_mu_abs_ge_0.25s",
        "n_sig_mu_abs_ge_0.25s",
    ),
    ScaleFreeLevel(
        "|mu| >= 1",
        "|mu| >= 1 s",
        "n_mu_abs_ge_1",
        "n_sig_mu_abs_ge_1",
        "n_mu_abs_ge_1s",
        "n_sig_mu_abs_ge_1s",
    ),
    ScaleFreeLevel("hw >= 1", "", "n_hw_ge_1", "n_sig_hw_ge_1", None, None),
    ScaleFreeLevel(
        "hw >= 1.5",
        "hw >= 1.5 s",
        "n_hw_ge_1.5",
        "n_sig_hw_ge_1.5",
        "n_hw_ge_1.5s",
        "n_sig_hw_ge_1.5s",
    ),
    ScaleFreeLevel("", "hw >= 2 s", None, None, "n_hw_ge_2s", "n_sig_hw_ge_2s"),
    ScaleFreeLevel(
        "hw >= 3", "hw >= 3 s", "n_hw_ge_3", "n_sig_hw_ge_3", "n_hw_ge_3s", "n_sig_hw_ge_3s"
    ),
    ScaleFreeLevel(
        "dominant (the run's rule)",
        "dominant: |mu| >= 0.25 s or hw >= 1.5 s",
        "n_dominant",
        None,
        None,
        "n_dominant_sig",
    ),
)


def observations_section(ctx: SectionContext) -> Section:
    cases = ctx.data.cases
    columns = ["#", "observation", "reference (CelebA, case II, 30 epochs)"]
    for c in cases:
        columns += [f"case {c.label}", f"case {c.label}: holds?"]
    rows = []
    for obs in OBSERVATIONS:
        row: list = [obs.number, obs.text, obs.reference]
        for c in cases:
            values = [v for m in obs.metrics if (v := c.train.metrics.get(m)) is not None]
            if len(values) < len(obs.metrics):
                row += [None, None]
            elif len(values) == 2:
                row += [f"[{values[0]:.3g}, {values[1]:.3g}]", None]
            else:
                holds = None if obs.holds is None else ("yes" if obs.holds(values[0]) else "no")
                row += [values[0], holds]
        rows.append(row)
    blocks: list[Block] = [
        Paragraph(
            "The study's eight observations (docs/science.md), measured on each train "
            "run, next to the figures the original study reported for CelebA (case II "
            "after 30 epochs). "
            "They differ per network, training run and data set; 'holds?' says "
            "whether the study's statement also holds here. A dash: the train run did "
            "not log that metric."
        ),
        Table("observations", columns, rows, caption="The eight observations"),
    ]
    blocks += scale_free_observations(ctx)
    missing = sorted(
        {m for obs in OBSERVATIONS for m in obs.metrics for c in cases if m not in c.train.metrics}
    )
    if missing and cases:
        blocks.append(Note("Not logged by every train run: " + ", ".join(missing)))
    keys = sorted({k for c in cases for k in c.train.metrics if k not in TRAIN_HISTORY_KEYS})
    if keys:
        blocks.append(
            train_metric_table(
                "train_metrics", keys, cases, "Every summary metric of the train runs", 60
            )
        )
    return Section("observations", "The eight observations", blocks)


def scale_free_observations(ctx: SectionContext) -> list[Block]:
    """The counts in each run's own units and beyond the windows' errors, by level."""
    cases = ctx.data.cases
    columns = ["level", "level in s"]
    for c in cases:
        columns += [
            f"case {c.label}: {k}" for k in ("study", "significant", "in s", "significant in s")
        ]
    rows = []
    for level in SCALE_FREE_LEVELS:
        row: list = [level.absolute, level.in_s]
        for c in cases:
            # empty: no such count at this level; None (a dash): not logged by the run
            row += ["" if m is None else c.train.metrics.get(m) for m in level.metrics]
        rows.append(row)
    scales = ", ".join(
        f"case {c.label} s = "
        + (f"{c.train.metrics[SCALE_METRIC]:.3g}" if SCALE_METRIC in c.train.metrics else "–")
        for c in cases
    )
    blocks: list[Block] = [
        Heading("Scale-free observations"),
        Paragraph(
            "The same questions in each run's own units and beyond doubt. s is the run's "
            "scale, the median hw of its windows (stats/windows.csv, from the training "
            f"latents){': ' + scales if scales else ''}. 'study' is the count above: the "
            "study's absolute levels on the histogram reading, which mean something else "
            "on data of another scale (on latents spanning [-10, 10] every component "
            "passes) and, at small n, catch the noise of the reading. 'in s' counts the "
            "estimates against multiples of s, so it carries over between data sets; hw "
            ">= 1 s would count half the components by the definition of the median, so "
            "the width levels start at 1.5 s. The 'significant' columns are the ones to "
            "trust: they count a component only when its interval, simultaneous over all "
            "N components (Bonferroni, z = Φ⁻¹(1 - 0.05 / 2N)), lies wholly past the "
            "level, so that with probability >= 95% not a single component is counted "
            "falsely (as far as the windows' standard errors hold). A dash: the train run "
            "did not log that metric (runs from before these metrics); empty: no such "
            "count. docs/science.md, 'Observations in the run's own units'."
        ),
        Table(
            "observations_scale_free",
            columns,
            rows,
            caption="Observations at the study's levels and in the run's own units",
        ),
    ]
    if cases and not any(SCALE_METRIC in c.train.metrics for c in cases):
        blocks.append(
            Note(
                "Not logged: no train run has the scale-free observations (they are from "
                "before them); a new train run logs them."
            )
        )
    return blocks
