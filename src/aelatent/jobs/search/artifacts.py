"""What a search run leaves behind besides metrics: the trials and Pareto CSVs, Optuna's own
plots, and the objective curve with its band, its parts and the interval of the best b."""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
from optuna.study import Study
from optuna.trial import TrialState

from aelatent.core.knn_objective import (
    KnnSearchObjective,
    ReplicateObjective,
)
from aelatent.core.windows import (
    Z95,
)
from aelatent.io.analysis_artifacts import write_csv
from aelatent.jobs.search.request import (
    Curve,
    SearchObjective,
    SearchRequest,
    Sweep,
)
from aelatent.jobs.search.study import (
    objective_of,
)

BOX_PARTS = ("hit_rate", "radius_agreement")


def write_trials_csv(
    study: Study, path: Path, parts: Sequence[str] = BOX_PARTS, axis: str = "b"
) -> None:
    """Every trial of the study (all workers, all runs so far), oldest first; ``parts``: the
    objective's two parts (the box's, or knn's precision and recall); ``axis``: the searched
    parameter (``b`` or ``scale``)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "number",
                "state",
                axis,
                "objective",
                "objective_se",
                *parts,
                "source",
                "worker",
                "mlflow_run_id",
                "datetime_start",
                "datetime_complete",
            ]
        )
        for t in study.get_trials(deepcopy=False):
            attrs = t.user_attrs
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    t.params.get(axis, ""),
                    attrs.get("objective", ""),
                    attrs.get("objective_se", ""),
                    *(attrs.get(part, "") for part in parts),
                    attrs.get("source", "tpe"),
                    attrs.get("worker", ""),
                    attrs.get("mlflow_run_id", ""),
                    t.datetime_start or "",
                    t.datetime_complete or "",
                ]
            )


def write_pareto_csv(
    study: Study, path: Path, parts: Sequence[str] = BOX_PARTS, axis: str = "b"
) -> None:
    """The Pareto-optimal trials of a multi-objective study, by increasing b (or scale)."""
    front = sorted(study.best_trials, key=lambda t: t.params.get(axis, math.inf))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", axis, *parts, "objective"])
        for t in front:
            writer.writerow(
                [
                    t.number,
                    t.params.get(axis, ""),
                    t.values[0],
                    t.values[1],
                    t.user_attrs.get("objective", ""),
                ]
            )


def save_optuna_plots(
    study: Study, out: Path, multi: bool, parts: Sequence[str] = BOX_PARTS, axis: str = "b"
) -> list[Path]:
    """Optuna's own matplotlib plots: history, objective vs b or scale (``slice_<axis>.png``)
    and the Pareto front."""
    import matplotlib  # Agg before pyplot; only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # Agg before pyplot; only when plotting
    from optuna.visualization import matplotlib as ovm  # Agg before pyplot; only when plotting

    target = (lambda t: objective_of(t) or 0.0) if multi else None
    name = "objective"
    plots = {
        "optimization_history.png": lambda: ovm.plot_optimization_history(
            study, target=target, target_name=name
        ),
        f"slice_{axis}.png": lambda: ovm.plot_slice(
            study, params=[axis], target=target, target_name=name
        ),
    }
    if multi:
        plots["pareto_front.png"] = lambda: ovm.plot_pareto_front(study, target_names=list(parts))
    written: list[Path] = []
    # Optuna switches matplotlib's global style; keep that inside these plots
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for filename, plot in plots.items():
            axes = plot()
            ax = axes.ravel()[0] if isinstance(axes, np.ndarray) else axes
            if filename.startswith("slice_"):
                ax.set_xscale("log")
            fig = ax.figure
            fig.set_size_inches(7, 4.5)
            fig.tight_layout()
            fig.savefig(out / filename, dpi=110)
            plt.close(fig)
            written.append(out / filename)
    return written


PART_LABELS = {
    "hit_rate": "hit rate (k={k:g})",
    "radius_agreement": "radius agreement",
    "precision": "k-NN precision",
    "recall": "k-NN recall",
    "accuracy": "C2ST accuracy (0.5: indistinguishable)",
    "auc": "C2ST AUC",
}


def save_objective_curve(
    objective: SearchObjective,
    curve: Curve,
    study: Study,
    request: SearchRequest,
    start: float,
    sweep: Sweep | None,
    path: Path,
) -> None:
    """The exact objective over the whole b (or scale) range with its 95% band, its parts,
    the interval of the best (shaded), the first trial's value (radius theory's b or the
    fitted width) and the Optuna trials on top."""
    import matplotlib  # Agg before pyplot; only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # Agg before pyplot; only when plotting

    grid, axis = curve.b, request.axis
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (part, values), color in zip(curve.parts().items(), ("tab:blue", "tab:green"), strict=True):
        label = PART_LABELS[part].format(k=request.k)
        if part == "radius_agreement" and objective.kind == "typical":
            label += " (typicality)"
        ax.plot(grid, values, color=color, lw=1, label=label)
    ax.plot(grid, curve.objective, color="black", lw=2, label=f"objective ({objective.kind})")
    ax.fill_between(
        grid,
        curve.objective - Z95 * curve.objective_se,
        curve.objective + Z95 * curve.objective_se,
        color="black",
        alpha=0.15,
        lw=0,
    )
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    tb = [t.params[axis] for t in done if axis in t.params]
    tv = [objective_of(t) or 0.0 for t in done if axis in t.params]
    ax.scatter(tb, tv, s=18, color="tab:red", zorder=3, label=f"Optuna trials ({len(tb)})")
    if sweep is not None:
        ax.axvspan(
            sweep.lo,
            sweep.hi,
            color="tab:orange",
            alpha=0.3,
            label=f"best {axis} {sweep.b:.3g} [{sweep.lo:.3g}, {sweep.hi:.3g}]",
        )
        ax.axvline(sweep.b, color="tab:orange", lw=1)
    else:
        ax.text(
            0.5,
            0.5,
            f"objective 0 for every {axis}: no best {axis}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="tab:red",
        )
    start_label = f"radius theory b={start:.3g}" if axis == "b" else "fitted width (scale 1)"
    ax.axvline(start, color="tab:purple", ls="--", lw=1, label=start_label)
    ax.set_xscale("log")
    ax.set_xlabel(
        "b (uniform in [-b, b] per component)"
        if axis == "b"
        else f"scale (width factor of the fitted {request.sampler})"
    )
    ax.set_ylabel("fraction of sampled vectors")
    ax.set_ylim(-0.02, 1.02)
    what = (
        f"{objective.replicates} sets of {objective.n_samples} vectors per {axis}, "
        f"k-NN k={objective.k}"
        if isinstance(objective, KnnSearchObjective)
        else f"{objective.replicates} cross-fitted splits per {axis}"
        if isinstance(objective, ReplicateObjective)
        else f"{objective.n_samples} vectors per b"
    )
    ax.set_title(f"{request.sampler} generator, {what} (band: 95% MC error)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_curve_csv(curve: Curve, path: Path, axis: str = "b") -> None:
    """The objective curve the plot shows, for re-plotting and for the report."""
    write_csv(
        path,
        {
            axis: curve.b,
            "objective": curve.objective,
            "objective_se": curve.objective_se,
            **curve.parts(),
        },
    )
