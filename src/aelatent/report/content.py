"""What the report says: the study's sections, built from collected run data.

This module knows the science (the study's reference figures in docs/science.md, the metric
and artifact names of docs/architecture.md) but neither MLflow nor any output format: it turns a
:class:`~aelatent.report.collect.ReportData` into a
:class:`~aelatent.report.document.Document`. Every piece that a run does not have
becomes a :class:`~aelatent.report.document.Note` that says what to run, never an error.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from aelatent.io.analysis_artifacts import (
    COMPONENTS_CSV,
    COMPONENTS_PNG,
    DOMINANT_MD,
    DOMINANT_PNG,
    RADIUS_PNG,
    TOP_PAIRS_CSV,
    WINDOWS_CSV,
)
from aelatent.plots.evaluation import SCALE_LABELS, RateInterval, save_hit_rate_curves
from aelatent.report.collect import CaseData, ReportData, RunData
from aelatent.report.document import (
    Block,
    Columns,
    Document,
    Figure,
    Heading,
    Note,
    Panel,
    Paragraph,
    Section,
    Table,
)
from aelatent.report.knn_content import BOX_VS_KNN, BOX_VS_KNN_CAPTION, KNN_INTRO, knn_blocks
from aelatent.report.plots import training_curves

SAMPLER_ORDER = ("uniform", "gaussian", "mvn", "gmm")
GRID_METRIC = re.compile(
    r"^(?P<kind>hit_rate(?:_lo|_hi)?|hits|log10_p_hit(?:_lo|_hi|_se)?|ghk_rel_se)"
    r"/(?P<sampler>[^/]+)/b(?P<b>[^/]+)/k(?P<k>[^/]+)$"
)
CEILING_METRIC = re.compile(r"^(?P<kind>hit_rate(?:_lo|_hi)?|hits)/heldout/k(?P<k>[^/]+)$")
GRID_POINTS_METRIC = re.compile(r"^grid_log10_points/b(?P<b>[^/]+)$")
GRID_INSIDE_METRIC = re.compile(r"^grid_log10_inside/b(?P<b>[^/]+)/k(?P<k>[^/]+)$")
GHK_REL_SE_LIMIT = 0.5  # above it a GHK estimate of P is too uncertain to read
TOO_UNCERTAIN = "†"
CEILING_ROW = "held-out real latents (ceiling)"
HIT_FIGURE_COLUMNS = (
    "hits",
    "hit_rate",
    "hit_rate_lo",
    "hit_rate_hi",
    "log10_p_hit",
    "log10_p_hit_lo",
    "log10_p_hit_hi",
    "log10_p_hit_se",
    "ghk_rel_se",
)
RADIUS_METRIC = re.compile(
    r"^(?P<kind>radius_(?:mean|std)(?:_theory)?)/(?P<sampler>[^/]+)/b(?P<b>[^/]+)$"
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")
IMAGE_PATTERNS = tuple(f"*{s}" for s in IMAGE_SUFFIXES)
MAX_DOMINANT_ROWS = 40
MAX_TRIAL_ROWS = 10
ENV = "--env-manager local"


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
    ScaleFreeLevel("|mu| >= 0.25", "|mu| >= 0.25 s", "n_mu_abs_ge_0.25", "n_sig_mu_abs_ge_0.25",
                   "n_mu_abs_ge_0.25s", "n_sig_mu_abs_ge_0.25s"),
    ScaleFreeLevel("|mu| >= 1", "|mu| >= 1 s", "n_mu_abs_ge_1", "n_sig_mu_abs_ge_1",
                   "n_mu_abs_ge_1s", "n_sig_mu_abs_ge_1s"),
    ScaleFreeLevel("hw >= 1", "", "n_hw_ge_1", "n_sig_hw_ge_1", None, None),
    ScaleFreeLevel("hw >= 1.5", "hw >= 1.5 s", "n_hw_ge_1.5", "n_sig_hw_ge_1.5",
                   "n_hw_ge_1.5s", "n_sig_hw_ge_1.5s"),
    ScaleFreeLevel("", "hw >= 2 s", None, None, "n_hw_ge_2s", "n_sig_hw_ge_2s"),
    ScaleFreeLevel("hw >= 3", "hw >= 3 s", "n_hw_ge_3", "n_sig_hw_ge_3",
                   "n_hw_ge_3s", "n_sig_hw_ge_3s"),
    ScaleFreeLevel("dominant (the run's rule)", "dominant: |mu| >= 0.25 s or hw >= 1.5 s",
                   "n_dominant", None, None, "n_dominant_sig"),
)

# The study (docs/science.md): dominant components reported for case II on CelebA (i, mu, hw).
REFERENCE_DOMINANT = (
    (15, -0.25, 1.5),
    (16, 0.5, 1.125),
    (56, 0.0, 1.625),
    (58, 0.25, 2.125),
    (66, 0.25, 1.5),
    (68, 0.0, 2.0),
    (110, 0.5, 1.875),
    (118, 2.25, 2.25),
    (151, 1.5, 4.125),
    (177, -1.0, 2.25),
    (178, 0.5, 1.875),
    (180, -0.25, 1.5),
    (188, 0.25, 1.75),
    (195, -1.5, 2.0),
    (202, -0.5, 2.25),
    (204, -0.5, 1.25),
    (210, 0.0, 1.75),
    (230, 0.25, 1.5),
    (242, -0.25, 2.375),
    (253, -0.5, 1.0),
)
DOMINANT_COLUMNS = ("component", "mu", "hw", "mu_fit", "hw_fit", "sigma", "fit_r2", "gaussian_like")
MAX_PAIR_ROWS = 10
MAX_CONFIG_ROWS = 12
CONFIG_FIRST = ("model.", "training.", "data.image_size", "data", "seed", "n_")
SEARCH_PARAMS = ("k", "objective", "radius_band", "n_trials", "n_samples", "b_min", "b_max",
                 "mode", "seed", "study_name")
TRAIN_HISTORY_KEYS = ("loss", "val_loss")
SEARCH_FIRST = ("best_b", "best_b_lo", "best_b_hi", "best_value", "best_value_se", "best_b_sweep",
                "best_value_sweep", "best_b_gap", "best_b_in_interval", "b_theory")
OBJECTIVE_CURVE = "search/objective_curve.png"


def build_document(data: ReportData, work_dir: Path) -> Document:
    """The whole report; ``work_dir`` receives the figures the report draws itself."""
    used: set[tuple[str, str]] = set()
    builder = _Builder(data, work_dir, used)
    sections = [
        builder.overview(),
        builder.configuration(),
        builder.distributions(),
        builder.observations(),
        builder.dominant(),
        builder.radius(),
        builder.hits(),
        builder.search(),
        builder.decoded(),
    ]
    others = builder.other_figures()
    if others is not None:
        sections.append(others)
    cases = ", ".join(c.label for c in data.cases) or "no runs"
    return Document(
        title="aelatent report: where the autoencoder puts its faces",
        subtitle=f"Cases {cases} · {data.selection} · tracking store {data.tracking_uri} · "
        f"written {data.created}",
        sections=sections,
    )


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _sampler_key(name: str) -> tuple[int, str]:
    return (SAMPLER_ORDER.index(name) if name in SAMPLER_ORDER else len(SAMPLER_ORDER), name)


def _ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"the tracking server {tracking_uri}"
    return f"`mlflow ui --backend-store-uri {tracking_uri}`"


def _config_rank(key: str, differs: bool) -> int:
    """Differences first, then the network, training and data, then everything else."""
    if differs:
        return 0
    return 1 if key.startswith(CONFIG_FIRST) else 2


def _decoded_order(item: tuple[str, Path]) -> tuple[int, tuple[int, str], float, str]:
    """Overview first, then real reconstructions, then per sampler by increasing b."""
    name = item[0].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    first = {"overview": 0, "reconstructions": 1}.get(name, 2)
    sampler, _, b = name.partition("_b")
    value = _num(b) if b else 0.0
    return first, _sampler_key(sampler), math.inf if math.isnan(value) else value, name


def evaluation_grid(runs: Iterable[RunData]) -> dict[str, dict[tuple[str, str], dict[str, float]]]:
    """``{sampler: {(b, k): {"hit_rate": .., "hit_rate_lo": .., "log10_p_hit": .., ..}}}``.

    Every metric of GRID_METRIC (older runs lack the intervals). Newer runs come first in
    the selection, so their cells win where runs overlap, each cell whole: a rate never
    gets the interval of another run.
    """
    grid: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
    for run in reversed(list(runs)):
        cells: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
        for name, value in run.metrics.items():
            match = GRID_METRIC.match(name)
            if match:
                cell = cells.setdefault(match["sampler"], {}).setdefault(
                    (match["b"], match["k"]), {}
                )
                cell[match["kind"]] = value
        for sampler, found in cells.items():
            grid.setdefault(sampler, {}).update(found)
    return grid


def ceiling_from_metrics(
    runs: Iterable[RunData],
) -> tuple[dict[str, dict[str, float]], float | None]:
    """``({k: {"hit_rate": .., "hit_rate_lo": .., "hit_rate_hi": .., "hits": ..}}, n_heldout)``.

    The held-out real latents in the same windows: what real faces reach. Empty for runs
    from before the ceiling; the newest run that has it wins, whole.
    """
    for run in runs:
        found: dict[str, dict[str, float]] = {}
        for name, value in run.metrics.items():
            match = CEILING_METRIC.match(name)
            if match:
                found.setdefault(match["k"], {})[match["kind"]] = value
        if found:
            return found, run.metrics.get("n_heldout")
    return {}, None


def grid_method(runs: Iterable[RunData]) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Method 1, the grid: ``({b: log10 points}, {(b, k): log10 points inside})``."""
    points: dict[str, float] = {}
    inside: dict[tuple[str, str], float] = {}
    for run in reversed(list(runs)):
        for name, value in run.metrics.items():
            if match := GRID_POINTS_METRIC.match(name):
                points[match["b"]] = value
            elif match := GRID_INSIDE_METRIC.match(name):
                inside[(match["b"], match["k"])] = value
    return points, inside


def _finite(value: float | None) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def with_interval(value: float | None, lo: float | None, hi: float | None) -> float | str | None:
    """``0.0123 [0.0101, 0.0149]``; the bare value where the interval is unknown (old runs)."""
    if not _finite(value) or not _finite(lo) or not _finite(hi):
        return value
    return f"{value:.4g} [{lo:.4g}, {hi:.4g}]"


def too_uncertain(cell: dict[str, float]) -> bool:
    """The GHK estimate of P (mvn) has a relative standard error above GHK_REL_SE_LIMIT."""
    rel_se = cell.get("ghk_rel_se")
    return _finite(rel_se) and rel_se > GHK_REL_SE_LIMIT


def _flagged(value: float | str | None) -> str:
    return f"{TOO_UNCERTAIN} {'–' if value is None else value}"


def _interval_note(cells: dict[tuple[str, str], dict[str, float]], key: str) -> str:
    return " [95% interval]" if any(_finite(c.get(key)) for c in cells.values()) else ""


def windows_text(runs: Iterable[RunData]) -> str:
    """Which windows the hit figures of ``runs`` were counted against."""
    parts = []
    for run in runs:
        estimate = run.params.get("estimate")
        if estimate is None:
            parts.append(
                f"the train run's stats/components.csv (run {run.run_id[:8]}, from before "
                "the estimate parameter)"
            )
            continue
        text = f"estimate={estimate}"
        table = run.first(WINDOWS_CSV)
        if table is not None:
            chosen = Counter(r.get("estimator", "") for r in read_csv(table))
            if chosen and set(chosen) != {estimate}:
                text += " (per component: " + ", ".join(
                    f"{name} {count}" for name, count in sorted(chosen.items())
                ) + ")"
        parts.append(f"{text}, estimated from the training latents (run {run.run_id[:8]})")
    return "; ".join(parts)


def radius_metrics(runs: Iterable[RunData]) -> dict[str, dict[str, dict[str, float]]]:
    """``{sampler: {b: {"radius_mean": .., "radius_std": .., "radius_mean_theory": ..}}}``."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for run in reversed(list(runs)):
        for name, value in run.metrics.items():
            match = RADIUS_METRIC.match(name)
            if match:
                found.setdefault(match["sampler"], {}).setdefault(match["b"], {})[match["kind"]] = (
                    value
                )
    return found


def search_summary(run: RunData) -> Block:
    """One line on a search run's answer: best b with its interval, or why there is none."""
    m = run.metrics
    if "no_best_b" in run.tags:
        return Note(f"No best b: {run.tags['no_best_b']}")
    if "best_b_lo" not in m:
        if "best_b" in m:  # a search run from before the interval was logged
            return Paragraph(f"Best b = {m['best_b']:.4g} (no interval logged by this run).")
        return Note("Not logged: the search run has no best_b metric.")
    interval = f"[{m['best_b_lo']:.4g}, {m['best_b_hi']:.4g}]"
    exact = (f"the exact maximiser of the sampled objective is b = {m['best_b_sweep']:.4g} "
             f"(objective {m['best_value_sweep']:.3g}), as good within error for b in {interval}")
    if "best_b" not in m:
        return Note(f"Every Optuna trial scored 0; {exact}.")
    verdict = ("inside that interval: Optuna and the exact curve agree" if
               m.get("best_b_in_interval") else "OUTSIDE that interval: run more trials")
    return Paragraph(
        f"Best b = {m['best_b']:.4g} {interval} (objective {m['best_value']:.3g} "
        f"± {1.96 * m.get('best_value_se', math.nan):.2g}); {exact}; Optuna's b is {verdict}."
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _truthy(text: str | None) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "1.0")


def _cell(text: str | None) -> float | int | str | None:
    """A CSV cell as a number where it is one."""
    if text is None or text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


class _Builder:
    def __init__(self, data: ReportData, work_dir: Path, used: set[tuple[str, str]]) -> None:
        self.data = data
        self.work_dir = work_dir
        self.used = used

    # ------------------------------------------------------------------ helpers

    def figure(self, run: RunData, *patterns: str, caption: str = "") -> list[Block]:
        """Every artifact image of ``run`` matching the patterns, or a note that none is."""
        found = [
            (p, local) for p, local in run.find(*patterns) if p.lower().endswith(IMAGE_SUFFIXES)
        ]
        if not found:
            return [
                Note(f"Not logged: run {run.run_id} ({run.name}) has no {' or '.join(patterns)}.")
            ]
        blocks: list[Block] = []
        for path, local in found:
            self.used.add((run.run_id, path))
            text = f"{caption}: {path}" if caption else path
            blocks.append(Figure(local, f"{text} (run {run.name}, {run.run_id[:8]})"))
        return blocks

    def per_case(self, make: Callable[[CaseData], list[Block]]) -> list[Block]:
        if not self.data.cases:
            return [
                Note(
                    "Not run: no train run was selected, so there is nothing to show. "
                    f"Run `mlflow run . -e train -P case=I {ENV}` (or `-e main`) first."
                )
            ]
        return [Columns([Panel(f"case {c.label}", make(c)) for c in self.data.cases])]

    @staticmethod
    def no_evaluation(case: CaseData) -> Note:
        return Note(
            f"Not run: no finished evaluate run of train run {case.train.run_id} "
            f"(case {case.case}). Run `mlflow run . -e evaluate -P "
            f"train_run={case.train.run_id} {ENV}`."
        )

    @staticmethod
    def no_search(case: CaseData) -> Note:
        return Note(
            f"Not run: no finished search run of train run {case.train.run_id} "
            f"(case {case.case}). Run `mlflow run . -e search -P "
            f"train_run={case.train.run_id} {ENV}`."
        )

    def slug(self, case: CaseData) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "_", case.label).strip("_") or "case"

    # ----------------------------------------------------------------- sections

    def overview(self) -> Section:
        rows = []
        for case in self.data.cases:
            for run in [case.train, *case.evaluations, *([case.search] if case.search else [])]:
                rows.append(
                    [
                        case.label,
                        run.entry_point,
                        run.name,
                        run.run_id,
                        run.status,
                        run.started,
                        run.tags.get("dataset") or case.train.tags.get("dataset"),
                        run.params.get("samplers") or run.params.get("sampler", ""),
                    ]
                )
        blocks: list[Block] = [
            Paragraph(
                f"Selection: {self.data.selection}. Each case column shows one train run and "
                "the evaluate and search runs made on that train run, from the tracking store "
                f"{self.data.tracking_uri}. Every table is also a CSV file (tables/). "
                f"Open the same runs in the MLflow UI ({_ui_hint(self.data.tracking_uri)}) and "
                "compare them there (select runs, then Compare)."
            ),
            Table(
                "runs",
                [
                    "case",
                    "entry point",
                    "run name",
                    "run id",
                    "status",
                    "started",
                    "dataset",
                    "sampler",
                ],
                rows,
                caption="The runs behind this report",
            ),
        ]
        if not self.data.cases:
            blocks.append(self.per_case(lambda c: [])[0])
        blocks += [Note(f"Could not fetch: {p}") for p in self.data.problems]
        return Section("runs", "Runs in this report", blocks)

    def configuration(self) -> Section:
        cases = self.data.cases
        rows = []
        for key in {k for c in cases for k in c.train.params}:
            values = [c.train.params.get(key) for c in cases]
            differs = len(set(values)) > 1
            rows.append([key, *[_cell(v) for v in values], "yes" if differs else ""])
        rows.sort(key=lambda row: (_config_rank(row[0], row[-1] == "yes"), row[0]))
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
                max_rows=max(
                    MAX_CONFIG_ROWS, sum(_config_rank(r[0], r[-1] == "yes") < 2 for r in rows)
                ),
            ),
        ]
        summary_keys = [
            k
            for k in ("final_loss", "final_val_loss", "train_seconds", "train_images_per_second")
            if any(k in c.train.metrics for c in cases)
        ]
        if summary_keys:
            blocks.append(
                Table(
                    "training_summary",
                    ["metric", *[f"case {c.label}" for c in cases]],
                    [[k, *[c.train.metrics.get(k) for c in cases]] for k in summary_keys],
                    caption="End of training",
                )
            )
        curves = {
            c.label: {k: c.train.histories.get(k, []) for k in TRAIN_HISTORY_KEYS} for c in cases
        }
        if any(points for series in curves.values() for points in series.values()):
            path = training_curves(curves, self.work_dir / "training_curves.png")
            blocks.append(
                Figure(
                    path,
                    "Training curves: loss and val_loss per epoch "
                    "(MlflowClient.get_metric_history)",
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
        blocks += self.per_case(
            lambda c: self.figure(
                c.train,
                "reconstructions.png",
                "*reconstructions*.png",
                caption="originals above reconstructions",
            )
        )
        return Section("configuration", "Configuration and training", blocks)

    def distributions(self) -> Section:
        blocks: list[Block] = [
            Paragraph(
                "Number distributions of the latent components over every encoded image: all "
                "components in one figure, and the dominant ones (relatively large |mu| or hw) "
                "with their fitted Gaussians."
            )
        ]
        blocks += self.per_case(
            lambda c: [
                *self.figure(c.train, COMPONENTS_PNG, caption="all components"),
                *self.figure(c.train, DOMINANT_PNG, caption="dominant components"),
            ]
        )
        return Section("distributions", "Number distributions", blocks)

    def observations(self) -> Section:
        cases = self.data.cases
        columns = ["#", "observation", "reference (CelebA, case II, 30 epochs)"]
        for c in cases:
            columns += [f"case {c.label}", f"case {c.label}: holds?"]
        rows = []
        for obs in OBSERVATIONS:
            row: list = [obs.number, obs.text, obs.reference]
            for c in cases:
                values = [c.train.metrics.get(m) for m in obs.metrics]
                if any(v is None for v in values):
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
        blocks += self._scale_free_observations()
        missing = sorted(
            {
                m
                for obs in OBSERVATIONS
                for m in obs.metrics
                for c in cases
                if m not in c.train.metrics
            }
        )
        if missing and cases:
            blocks.append(Note("Not logged by every train run: " + ", ".join(missing)))
        keys = sorted({k for c in cases for k in c.train.metrics if k not in TRAIN_HISTORY_KEYS})
        if keys:
            blocks.append(
                Table(
                    "train_metrics",
                    ["metric", *[f"case {c.label}" for c in cases]],
                    [[k, *[c.train.metrics.get(k) for c in cases]] for k in keys],
                    caption="Every summary metric of the train runs",
                    max_rows=60,
                )
            )
        return Section("observations", "The eight observations", blocks)

    def _scale_free_observations(self) -> list[Block]:
        """The counts in each run's own units and beyond the windows' errors, by level."""
        cases = self.data.cases
        columns = ["level", "level in s"]
        for c in cases:
            columns += [f"case {c.label}: {k}" for k in ("study", "significant", "in s",
                                                         "significant in s")]
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

    def dominant(self) -> Section:
        reference = Panel(
            "reference: CelebA, case II (the study)",
            [
                Table(
                    "dominant_reference",
                    ["component", "mu", "hw"],
                    [list(r) for r in REFERENCE_DOMINANT],
                    caption="Dominant components the study reported",
                )
            ],
        )

        def case_panel(case: CaseData) -> Panel:
            path = case.train.first(COMPONENTS_CSV)
            if path is None:
                return Panel(
                    f"case {case.label}",
                    [Note(f"Not logged: run {case.train.run_id} has no stats/components.csv.")],
                )
            rows = read_csv(path)
            dominant = [r for r in rows if _truthy(r.get("dominant"))]
            columns = [c for c in DOMINANT_COLUMNS if rows and c in rows[0]]
            blocks: list[Block] = [
                Table(
                    f"dominant_{self.slug(case)}",
                    columns,
                    [[_cell(r.get(c)) for c in columns] for r in dominant],
                    caption=f"{len(dominant)} of {len(rows)} components are dominant",
                    max_rows=MAX_DOMINANT_ROWS,
                )
            ]
            if not dominant:  # the table stays for its CSV, shown as a link only
                blocks = [
                    replace(blocks[0], max_rows=0),
                    Note("No component is flagged dominant in stats/components.csv."),
                ]
            rule = case.train.first(DOMINANT_MD)
            if rule is not None:
                lines = [x for x in rule.read_text().splitlines() if x.startswith("Rule:")]
                blocks[:0] = [Paragraph(x) for x in lines[:1]]
            return Panel(f"case {case.label}", blocks)

        blocks: list[Block] = [
            Paragraph(
                "Components with a relatively large centre |mu| or half-width hw "
                "(stats/components.csv, column 'dominant')."
            ),
            Columns([reference, *[case_panel(c) for c in self.data.cases]]),
            Heading("Correlations and principal components"),
        ]
        blocks += self.per_case(self._correlations)
        return Section("dominant", "Dominant components", blocks)

    def _correlations(self, case: CaseData) -> list[Block]:
        blocks = self.figure(case.train, "correlations/*", "pca/*", caption="correlations and PCA")
        pairs = case.train.first(TOP_PAIRS_CSV)
        if pairs is not None:
            rows = read_csv(pairs)
            columns = list(rows[0]) if rows else []
            blocks.append(
                Table(
                    f"correlated_pairs_{self.slug(case)}",
                    columns,
                    [[_cell(r.get(c)) for c in columns] for r in rows],
                    caption="Most correlated component pairs (r)",
                    max_rows=MAX_PAIR_ROWS,
                )
            )
        return blocks

    def radius(self) -> Section:
        def make(case: CaseData) -> list[Block]:
            blocks = self.figure(
                case.train,
                RADIUS_PNG,
                "*radius*.png",
                caption="radius distribution of the real latents",
            )
            if not case.evaluations:
                return [*blocks, self.no_evaluation(case)]
            for run in case.evaluations:
                blocks += self.figure(
                    run,
                    "*radius*.png",
                    "radius*/*.png",
                    caption="sample radii for each b over the real radii",
                )
            rows: list[list] = [
                [
                    "real latents",
                    None,
                    case.train.metrics.get("radius_mean"),
                    case.train.metrics.get("radius_std"),
                    None,
                    None,
                ]
            ]
            for sampler, per_b in sorted(
                radius_metrics(case.evaluations).items(), key=lambda item: _sampler_key(item[0])
            ):
                for b, values in sorted(per_b.items(), key=lambda item: _num(item[0])):
                    rows.append(
                        [
                            sampler,
                            _cell(b),
                            values.get("radius_mean"),
                            values.get("radius_std"),
                            values.get("radius_mean_theory"),
                            values.get("radius_std_theory"),
                        ]
                    )
            blocks.append(
                Table(
                    f"radius_{self.slug(case)}",
                    ["vectors", "b", "mean |z|", "std |z|", "theory mean", "theory std"],
                    rows,
                    caption="Radii of the real latents and of the samples, beside the theory",
                )
            )
            return blocks

        blocks: list[Block] = [
            Paragraph(
                "A right box is not enough: the lengths |z| of generated vectors must also fall "
                "where the real ones are. For the uniform sampler <R> ~ b*sqrt(N/3) grows with b "
                "while its spread stays small, so only a narrow band of b matches the real radii."
            )
        ]
        blocks += self.per_case(make)
        return Section("radius", "Radius distributions", blocks)

    def hits(self) -> Section:
        grids = {c.label: evaluation_grid(c.evaluations) for c in self.data.cases}
        samplers = sorted({s for g in grids.values() for s in g}, key=_sampler_key)
        blocks: list[Block] = [
            Paragraph(
                "Fraction of generated vectors with every component inside [mu_i - k*hw_i, "
                "mu_i + k*hw_i] (Monte Carlo), and the log10 probability of a hit (exact; mvn "
                "and gmm: a GHK estimate), for each b (samplers other than uniform: the width "
                "scale) and half-width multiple k. In "
                "brackets the 95% interval: Wilson for a rate; for log10 P the uncertainty of "
                "the windows propagated (mvn, gmm: with the GHK estimate's own error). The last "
                "row of each hit-rate table and the dashed lines of its figure are the ceiling: "
                "held-out real latents, which the windows were not estimated from, in the same "
                "windows; no generator can be expected to hit more often than real faces do. "
                + KNN_INTRO
            )
        ]
        if not samplers:
            blocks += self.per_case(
                lambda c: (
                    [self.no_evaluation(c)]
                    if not c.evaluations
                    else [Note("Not logged: no hit_rate/... metrics in the evaluate runs.")]
                )
            )
            return Section("hits", "Hit rates", blocks)
        for sampler in samplers:
            blocks.append(Heading(f"sampler {sampler}"))
            blocks += self.per_case(lambda c, s=sampler: self._hit_panel(c, s, grids[c.label]))
        blocks += self._grid_method()
        return Section("hits", "Hit rates", blocks)

    def _hit_panel(
        self, case: CaseData, sampler: str, grid: dict[str, dict[tuple[str, str], dict[str, float]]]
    ) -> list[Block]:
        if not case.evaluations:
            return [self.no_evaluation(case)]
        cells = grid.get(sampler)
        if not cells:
            return [
                Note(
                    f"Not run: no evaluate run of train run {case.train.run_id} covered "
                    f"sampler {sampler}."
                )
            ]
        bs = sorted({b for b, _ in cells}, key=_num)
        ks = sorted({k for _, k in cells}, key=_num)
        slug = f"{self.slug(case)}_{sampler}"
        runs = [
            r
            for r in case.evaluations
            if any((m := GRID_METRIC.match(name)) and m["sampler"] == sampler for name in r.metrics)
        ]
        ceiling, n_heldout = ceiling_from_metrics(runs)
        blocks: list[Block] = [Paragraph(f"Windows: {windows_text(runs)}.")]

        def rate(values: dict[str, float]) -> float | str | None:
            return with_interval(
                values.get("hit_rate"), values.get("hit_rate_lo"), values.get("hit_rate_hi")
            )

        rows: list[list] = [[_cell(b), *[rate(cells.get((b, k), {})) for k in ks]] for b in bs]
        caption = f"hit rate (Monte Carlo){_interval_note(cells, 'hit_rate_lo')}, sampler {sampler}"
        if ceiling:
            rows.append([CEILING_ROW, *[rate(ceiling.get(k, {})) for k in ks]])
            held = "" if n_heldout is None else f"{n_heldout:.0f} "
            caption += f"; last row: {held}held-out real latents, the ceiling"
        blocks.append(Table(f"hit_rate_{slug}", ["b \\ k", *[f"k={k}" for k in ks]], rows,
                            caption=caption))
        if not ceiling:
            blocks.append(
                Note(
                    "Not logged: no held-out ceiling (hit_rate/heldout/k...) in the evaluate "
                    f"runs of sampler {sampler}, which predate it; rerun evaluate to get it."
                )
            )

        flagged: list[tuple[str, str]] = []
        rows = []
        for b in bs:
            row: list = [_cell(b)]
            for k in ks:
                cell = cells.get((b, k), {})
                value = with_interval(
                    cell.get("log10_p_hit"), cell.get("log10_p_hit_lo"), cell.get("log10_p_hit_hi")
                )
                if too_uncertain(cell):
                    flagged.append((b, k))
                    value = _flagged(value)
                row.append(value)
            rows.append(row)
        method = "GHK estimate" if sampler in ("mvn", "gmm") else "exact"
        blocks.append(
            Table(
                f"log10_p_hit_{slug}",
                ["b \\ k", *[f"k={k}" for k in ks]],
                rows,
                caption=f"log10 P(hit) ({method}){_interval_note(cells, 'log10_p_hit_lo')}, "
                f"sampler {sampler}",
            )
        )
        if flagged:
            where = ", ".join(f"b={b} k={k}" for b, k in flagged)
            blocks.append(
                Paragraph(
                    f"{TOO_UNCERTAIN} too uncertain to read: the GHK estimate of P(hit) has a "
                    f"relative standard error above {GHK_REL_SE_LIMIT:g} (ghk_rel_se) at "
                    f"{where}; neither the value nor its interval can be trusted there."
                )
            )
        blocks.append(self._hit_figures_table(slug, sampler, bs, ks, cells, ceiling))
        blocks += self._hit_rate_curves(case, sampler, slug, cells, ceiling)

        blocks += knn_blocks(slug, sampler, case.evaluations)  # the region test without a box
        figure = BOX_VS_KNN.format(sampler=sampler)
        runs = [r for r in case.evaluations if r.find(figure)]
        if runs:  # box and k-NN test side by side, then what the vectors decode to
            blocks += self.figure(runs[0], figure, caption=BOX_VS_KNN_CAPTION)
            for path, local in sorted(runs[0].find(f"decoded/{sampler}_b*.png"),
                                      key=_decoded_order):
                self.used.add((runs[0].run_id, path))
                blocks.append(Figure(local, f"decoded {sampler} vectors: {path}"))
        heatmaps = (f"hits/heatmap*{sampler}*.png", f"*heatmap*{sampler}*.png")
        misses = (f"misses/*{sampler}*.png",)
        # the report draws the rate curves itself (merged runs); a run's own copy is not repeated
        for run in case.evaluations:
            own = run.find(f"hits/rate_curves_{sampler}.png")
            self.used.update((run.run_id, path) for path, _ in own)
        runs = [r for r in case.evaluations if r.find(*heatmaps)]
        if runs:
            blocks += self.figure(runs[0], *heatmaps, caption=f"hit rates over b x k, {sampler}")
        else:
            blocks.append(Note(f"Not logged: no heat map for sampler {sampler}."))
        runs = [r for r in case.evaluations if r.find(*misses)]
        if runs:
            blocks += self.figure(runs[0], *misses, caption="components a vector misses")
        return blocks

    @staticmethod
    def _hit_figures_table(
        slug: str,
        sampler: str,
        bs: list[str],
        ks: list[str],
        cells: dict[tuple[str, str], dict[str, float]],
        ceiling: dict[str, dict[str, float]],
    ) -> Table:
        """Every figure and interval as plain numbers, one row per (b, k): a CSV only."""
        rows: list[list] = []
        for b in bs:
            for k in ks:
                cell = cells.get((b, k))
                if cell is not None:
                    rows.append(
                        [sampler, _cell(b), _cell(k), *[cell.get(c) for c in HIT_FIGURE_COLUMNS],
                         too_uncertain(cell)]
                    )
        for k in ks:
            if k in ceiling:
                rows.append(
                    ["heldout", None, _cell(k), *[ceiling[k].get(c) for c in HIT_FIGURE_COLUMNS],
                     False]
                )
        return Table(
            f"hit_figures_{slug}",
            ["vectors", "b", "k", *HIT_FIGURE_COLUMNS, "too_uncertain"],
            rows,
            caption=f"Every hit figure of sampler {sampler} with its interval, as numbers",
            max_rows=0,
        )

    def _hit_rate_curves(
        self,
        case: CaseData,
        sampler: str,
        slug: str,
        cells: dict[tuple[str, str], dict[str, float]],
        ceiling: dict[str, dict[str, float]],
    ) -> list[Block]:
        """Hit rate against b per k, with error bars where known and the ceiling dashed."""

        def point(values: dict[str, float]) -> RateInterval:
            return tuple(  # type: ignore[return-value]
                float(v) if _finite(v := values.get(key)) else math.nan
                for key in ("hit_rate", "hit_rate_lo", "hit_rate_hi")
            )

        curves: dict[float, dict[float, RateInterval]] = {}
        for (b, k), values in cells.items():
            if _finite(values.get("hit_rate")) and _finite(_num(b)) and _finite(_num(k)):
                curves.setdefault(_num(k), {})[_num(b)] = point(values)
        if not curves:
            return []
        limits = {
            _num(k): point(values)
            for k, values in ceiling.items()
            if _finite(values.get("hit_rate")) and _finite(_num(k))
        }
        path = save_hit_rate_curves(
            curves,
            limits or None,
            self.work_dir / f"hit_rates_{slug}.png",
            SCALE_LABELS.get(sampler, "b"),
            title=f"case {case.label}, {sampler}: hit rate (95% interval)",
        )
        has_bars = any(math.isfinite(p[1]) for c in curves.values() for p in c.values())
        notes = [
            "error bars: Wilson 95% intervals" if has_bars else "no intervals logged",
            "dashed: held-out real latents (ceiling)" if limits else "no ceiling logged",
        ]
        caption = (f"hit rate against {SCALE_LABELS.get(sampler, 'b')} per k, sampler {sampler}; "
                   + "; ".join(notes))
        return [Figure(path, caption)]

    def _grid_method(self) -> list[Block]:
        """Method 1, the grid, per case: only where some evaluate run logged it."""
        found = {c.label: grid_method(c.evaluations) for c in self.data.cases}
        if not any(points or inside for points, inside in found.values()):
            return []

        def make(case: CaseData) -> list[Block]:
            points, inside = found[case.label]
            if not case.evaluations:
                return [self.no_evaluation(case)]
            if not points and not inside:
                return [
                    Note(
                        "Not logged: no grid_log10_points/... metrics in the evaluate runs, "
                        "which predate method 1; rerun evaluate to get them."
                    )
                ]
            bs = sorted({*points, *(b for b, _ in inside)}, key=_num)
            ks = sorted({k for _, k in inside}, key=_num)
            spacing = next(
                (r.params["grid_spacing"] for r in case.evaluations if "grid_spacing" in r.params),
                None,
            )
            caption = "log10 of the grid points over [-b, b]^z_dim and of those inside the windows"
            if spacing is not None:
                caption += f", spacing {spacing}"
            return [
                Table(
                    f"grid_method_{self.slug(case)}",
                    ["b", "log10 points", *[f"log10 inside, k={k}" for k in ks]],
                    [[_cell(b), points.get(b), *[inside.get((b, k)) for k in ks]] for b in bs],
                    caption=caption,
                )
            ]

        return [
            Heading("Method 1: the grid"),
            Paragraph(
                "The study's first method: a regular grid over the box [-b, b]^z_dim "
                "(parameter grid_spacing), counted instead of sampled. log10 of its number of "
                "points, and of those inside every window at multiple k (-inf: none); their "
                "difference is log10 of the fraction of the box inside the windows."
            ),
            *self.per_case(make),
        ]

    def search(self) -> Section:
        def make(case: CaseData) -> list[Block]:
            run = case.search
            if run is None:
                return [self.no_search(case)]
            keys = [k for k in SEARCH_FIRST if k in run.metrics]
            keys += sorted(k for k in run.metrics if k not in SEARCH_FIRST)
            params = [k for k in SEARCH_PARAMS if k in run.params]
            blocks: list[Block] = [
                Table(
                    f"search_{self.slug(case)}",
                    ["quantity", "value"],
                    [[k, run.metrics[k]] for k in keys]
                    + [[f"param {k}", _cell(run.params[k])] for k in params],
                    caption=f"Search run {run.name} ({run.run_id[:8]})",
                )
            ]
            blocks.insert(0, search_summary(run))
            if run.children:
                metric_keys = sorted({k for t in run.children for k in t.metrics} - {"b"})
                if "objective" in metric_keys:
                    metric_keys.remove("objective")
                    metric_keys.insert(0, "objective")
                rows = [
                    [t.name, _cell(t.params.get("b")), *[t.metrics.get(k) for k in metric_keys]]
                    for t in run.children
                ]
                rows.sort(
                    key=lambda r: (
                        -(
                            r[2]
                            if isinstance(r[2], int | float) and not math.isnan(r[2])
                            else -math.inf
                        )
                    )
                )
                blocks.append(
                    Table(
                        f"search_trials_{self.slug(case)}",
                        ["trial", "b", *metric_keys],
                        rows,
                        caption=f"{len(rows)} trials (child runs), best first",
                        max_rows=MAX_TRIAL_ROWS,
                    )
                )
            images = run.find(*IMAGE_PATTERNS)
            if run.find(OBJECTIVE_CURVE):
                blocks += self.figure(run, OBJECTIVE_CURVE, caption=(
                    "objective over b: the exact curve with its 95% Monte Carlo band (black), "
                    "its two parts, the Optuna trials (red) and the interval of the best b "
                    "(shaded)"))
                images = [i for i in images if i[0] != OBJECTIVE_CURVE]
            if images:
                blocks += self.figure(run, *(path for path, _ in images), caption="search")
            else:
                blocks.append(Note(f"Not logged: the search run {run.run_id} has no plots."))
            return blocks

        blocks: list[Block] = [
            Paragraph(
                "The b for which the uniform generator best reproduces the real latents, found "
                "by Optuna: the box hit rate weighted by how typical the sampled radius is among "
                "the real radii (objective 'typical'; 'band' runs count a hit with a radius "
                "inside the real band). Beside it the exact maximiser of the same sampled "
                "objective, the interval of b whose objective is not significantly below the "
                "best, and the b that radius theory predicts."
            )
        ]
        blocks += self.per_case(make)
        return Section("search", "Search for b", blocks)

    def decoded(self) -> Section:
        def make(case: CaseData) -> list[Block]:
            if not case.evaluations:
                return [self.no_evaluation(case)]
            blocks: list[Block] = []
            for run in case.evaluations:
                found = sorted(
                    (item for item in run.find("decoded/*") if item[0].endswith(IMAGE_SUFFIXES)),
                    key=_decoded_order,
                )
                overview = [item for item in found if "overview" in item[0]]
                for path, _ in found:
                    self.used.add((run.run_id, path))
                for path, local in overview or found:
                    blocks.append(Figure(local, f"{path} (run {run.name}, {run.run_id[:8]})"))
                if overview and len(found) > len(overview):
                    rest = ", ".join(p.rsplit("/", 1)[-1] for p, _ in found if "overview" not in p)
                    blocks.append(
                        Paragraph(
                            f"The same samples per sampler and b, larger, in the run's "
                            f"artifacts under decoded/: {rest}."
                        )
                    )
            if not blocks:
                blocks.append(Note("Not logged: the evaluate runs have no decoded/ images."))
            return blocks

        blocks: list[Block] = [
            Paragraph(
                "Sampled latent vectors put through the decoder, next to real reconstructions "
                "(section 2): which samplers make faces?"
            )
        ]
        blocks += self.per_case(make)
        return Section("decoded", "Decoded samples", blocks)

    def other_figures(self) -> Section | None:
        """Images the runs logged that no section above shows, so nothing is hidden."""
        panels = []
        for case in self.data.cases:
            blocks: list[Block] = []
            runs = [case.train, *case.evaluations, *([case.search] if case.search else [])]
            for run in runs:
                for path, local in run.find(*IMAGE_PATTERNS):
                    if (run.run_id, path) not in self.used:
                        blocks.append(Figure(local, f"{path} (run {run.name}, {run.run_id[:8]})"))
            if blocks:
                panels.append(Panel(f"case {case.label}", blocks))
        if not panels:
            return None
        return Section(
            "other",
            "Other figures",
            [Paragraph("Further images the runs logged."), Columns(panels)],
        )
