"""``search -P space=generators``: which generator of latent vectors, with which settings?

``mlflow run . -e search --env-manager local -P space=generators -P n_trials=40``

One Optuna study over sampler families and their settings, conditional on the family
(:mod:`aelatent.core.generator_space`, the settings each registry entry declares): uniform
``b``; gaussian ``scale``; mvn ``shrinkage``, ``scale``; gmm ``components``, ``covariance``,
``subspace``, ``scale``; flow ``hidden_units``, ``bijectors``, ``subspace``, ``epochs``,
``scale``. The study itself (space, trial, loop) is :mod:`aelatent.jobs.generator_search.study`,
free of MLflow. Every trial is scored out of sample on the verdict's cross-fitting splits
(fit on a random half of the training latents, score against the other half: the worse of
a quadratic and a k-NN C2ST times the copying ratio; the held-out log-likelihood beside it,
at the candidate's width and of its fit), split by split: after each split the running mean
is reported to Optuna's successive-halving pruner, so a candidate that is clearly bad stops
after one split; the study starts from the families' fitted defaults at scale 1
(:func:`~aelatent.jobs.generator_search.study.fitted_defaults`: what evaluate builds), and
the last quarter of the trials its workers plan together tries each
family's best's sibling shapes at its width (:func:`~aelatent.jobs.generator_search.study.
run_trials`: the study's phase, not a worker's). Every trial is a nested MLflow run; the
parent names the winner (:data:`~aelatent.jobs.generator_search.selection.SELECTION_RULE`: of the
candidates tied with the top score, those tied with the best held-out log-likelihood of the
fit, the fewest parameters, the width nearest scale 1), every candidate not
significantly below the top score, the best of each family, the best by held-out
log-likelihood (of the families with a density), Optuna's hyperparameter importances, and
scores the winner (refitted on all training latents) against the held-out images beside the
training latents' own score against them. The winner is logged as the servable
``generator`` and registered as ``aelatent-generator-case-<case>`` with the alias ``best``.

``-P mode=multi``: a two-objective study of the score's two factors, both maximised:
*fidelity* ``min(1, 2(1 - max(acc, acc_shape)))`` (can the two classifiers tell the vectors
from the held-out half?) against the *copying ratio* (how far the vectors lie from the fit
half against how far new real latents lie from it: below 1 it copies, above 1 it spreads
beyond the data), each the mean over the splits. Why these two: they trade off in both
directions, and the single score (fidelity times the ratio cut at 1) hides where a
candidate sits: a candidate buys fidelity by copying its fit vectors (more components, a
narrower width: ratio below 1) or spends it on spread (a wider width: ratio above 1). On the
known 3-component mixture (32 dimensions, 24 trials, seeds 0 and 1) the front had 12 and 6
trials along that trade; with the ratio cut at 1 it had 4 near-tied trials and 1, and the
held-out log-likelihood against fidelity 2 and 1 (it peaks with fidelity, near the fitted
width), so neither would be a front. Optuna's pruning is for one objective, so every trial
runs every split. The parent logs the front (``search/pareto_front.csv``, Optuna's
``search/pareto_front.png`` with the winner ringed, ``n_pareto_front``, the tag
``pareto_front`` with its trial numbers) and a winner by :data:`FRONT_RULE`: the single-mode
rule applied to the front's trials, so the servable winner is one of the front's.

Why one module of this size: it is the MLflow side of the search (the trials as nested
runs, the parent's summary, its CSV files, plots, decoded grids and registered winner), all
of it written into the one parent run; the study itself is free of MLflow in
:mod:`aelatent.jobs.generator_search.study`.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import optuna
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from aelatent.console import optuna_progress
from aelatent.core.generator_space import (
    Candidate,
    fit_candidate,
    score_interval,
    score_se,
)
from aelatent.core.sampler_registry import spec_of
from aelatent.core.samplers import Sampler
from aelatent.core.two_sample import c2st
from aelatent.core.verdict import make_splits, min_training_latents
from aelatent.errors import UserError
from aelatent.io.mlflow_native import registered_model_name, set_description, train_run_line
from aelatent.io.run_artifacts import load_autoencoder
from aelatent.io.tracking import entry_point_run, resolve_train_run
from aelatent.io.train_run import TrainRun, read_run
from aelatent.jobs.generator_search.reference import (
    reference_line,
    reference_metrics,
    score_reference,
)
from aelatent.jobs.generator_search.selection import (
    SELECTION_RULE,
    best_by_log_likelihood,
    best_trial,
    complete_trials,
    family_ranking,
    score_noise,
    tied_with_likeliest,
    tied_with_top,
    top_score,
)
from aelatent.jobs.generator_search.study import (
    SCORE_VERSION,
    SPLITS,
    GeneratorObjective,
    candidate_of,
    pruner,
    run_trials,
    suggest,
)
from aelatent.jobs.search.request import GENERATORS, SearchRequest
from aelatent.jobs.search.study import (
    TrialSeededSampler,
    check_existing_study,
    default_storage_url,
    open_storage,
    open_study,
    quiet_optuna,
    redact,
)
from aelatent.plots.image_grids import save_image_rows
from aelatent.schema import PARETO_FRONT_CSV, PARETO_FRONT_PNG
from aelatent.serving.generator_model import has_decoder, log_generator

GENERATOR_MODEL_PREFIX = "aelatent-generator-case-"
BEST_ALIAS = "best"
ARTIFACT_DIR = "search"


class GeneratorTrials(GeneratorObjective):
    """The objective of :mod:`~aelatent.jobs.generator_search.study`, each trial a nested MLflow run
    (family, settings, score with its standard error, held-out log-likelihood)."""

    def __init__(
        self,
        splits: Sequence[Any],
        families: Sequence[str],
        *,
        estimate: str,
        seed: int,
        parent_run_id: str,
        tags: dict[str, str],
        multi: bool = False,
    ) -> None:
        super().__init__(splits, families, estimate=estimate, seed=seed, multi=multi)
        self.parent_run_id, self.tags = parent_run_id, tags

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        candidate = suggest(trial, self.families, self.n_fit)
        tags = {**self.tags, "trial": str(trial.number), "family": candidate.family}
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True, tags=tags) as child:
            mlflow.log_params({"family": candidate.family, **candidate.params})
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            trial.set_user_attr("mlflow_parent_run_id", self.parent_run_id)
            try:
                score = self.score(trial, candidate)
            except optuna.TrialPruned:
                partial = trial.user_attrs.get("per_split", [])
                mlflow.log_metrics(
                    {"score_partial": float(np.mean(partial)), "splits": len(partial)}
                )
                mlflow.set_tag("pruned", "true")
                raise
            keys: tuple[str, ...] = ("score", "score_se", "c2st_acc", "shape_c2st_acc")
            keys = (*keys, "fidelity", "copying_ratio", "splits")
            keys = (*keys, "log_likelihood", "fit_log_likelihood")
            keys = (*keys, "parameters")
            mlflow.log_metrics({k: trial.user_attrs[k] for k in keys if k in trial.user_attrs})
        return score


def search_generators(request: SearchRequest, *, nested: bool = False) -> str:
    """The whole job for ``space=generators``: every mistake (unknown run, a study made for
    another question, too few latents) before any MLflow run; then the parent run."""
    run = resolve_train_run(request.train_run, request.case)
    train_id, case = run.info.run_id, run.data.tags.get("case", "?")
    url = request.storage or default_storage_url(mlflow.get_tracking_uri())
    storage = open_storage(url)
    families = ",".join(request.families)
    name = request.study_name or (
        f"generators-{train_id}-{families.replace(',', '-')}" + ("-multi" if request.multi else "")
    )
    definition = {
        "train_run": train_id,
        "seed": request.seed,
        "mode": request.mode,
        "estimate": request.estimate,
        "objective": SCORE_VERSION,
        "families": families,
    }
    check_existing_study(storage, name, definition)

    def check(run_id: str, latents: np.ndarray) -> None:
        fits = {f: spec_of(f).min_latents for f in request.families if spec_of(f).min_latents > 2}
        need = max(min_training_latents(["c2st_nonlinear"]), 2 * max(fits.values(), default=0))
        if latents.shape[0] < need:
            why = "; ".join(f"{f}: {n} a fit half" for f, n in fits.items())
            raise UserError(
                f"space=generators needs at least {need} training latents (two halves"
                f"{'; ' + why if why else ''}); train run {run_id!r} has {latents.shape[0]}"
            )

    train = read_run(run, request.estimate, request.seed, check=check)
    tags = {"train_run": train_id, "case": case, "study_name": name, "space": GENERATORS}
    tags["mode"] = request.mode
    with entry_point_run("search", f"search generators case {case}", tags, nested=nested) as parent:
        present = mlflow.get_run(parent.info.run_id).data.params
        params = {
            "train_run": train_id,
            "case": case,
            "space": GENERATORS,
            "families": families,
            "mode": request.mode,
            "n_trials": request.n_trials,
            "storage": redact(url),
            "study_name": name,
            "seed": request.seed,
            "estimate": request.estimate,
            "splits": SPLITS,
            "n_real": train.latents.shape[0],
        }
        mlflow.log_params({k: v for k, v in params.items() if k not in present})
        run_generator_search(
            train,
            request.families,
            n_trials=request.n_trials,
            storage=storage,
            url=url,
            study_name=name,
            definition=definition,
            estimate=request.estimate,
            seed=request.seed,
            parent_run_id=parent.info.run_id,
            multi=request.multi,
        )
        return parent.info.run_id


def run_generator_search(
    train: TrainRun,
    families: Sequence[str],
    *,
    n_trials: int,
    storage: optuna.storages.BaseStorage,
    url: str,
    study_name: str,
    definition: dict[str, Any],
    estimate: str,
    seed: int,
    parent_run_id: str,
    multi: bool = False,
) -> None:
    """The worker's trials and the summary, inside the active (parent) search run;
    ``multi``: two objectives (fidelity, copying ratio), every trial on every split."""
    latents = np.asarray(train.latents, dtype=np.float64)
    splits = make_splits(latents, SPLITS, seed)
    tags = {"train_run": train.run_id, "case": train.case, "study_name": study_name}
    runner = GeneratorTrials(
        splits,
        families,
        estimate=estimate,
        seed=seed,
        parent_run_id=parent_run_id,
        tags=tags,
        multi=multi,
    )
    halving = optuna.pruners.NopPruner() if multi else pruner()  # none for two objectives
    with quiet_optuna():  # Optuna's progress bar, not its log line per study and trial
        study, _ = open_study(
            storage, study_name, definition, TrialSeededSampler(seed), pruner=halving
        )
    print(
        f"aelatent search: generator study {study_name!r} in {redact(url)}; families "
        f"{', '.join(families)}; {SPLITS} cross-fitted splits of {splits[0].test.shape[0]} "
        "against as many"
        + (
            "; mode=multi: fidelity against copying ratio, every split (no pruning)"
            if multi
            else ""
        ),
        file=sys.stderr,
        flush=True,
    )
    with quiet_optuna(), optuna_progress(n_trials, "aelatent search (generators)") as progress:
        run_trials(study, runner, n_trials, **progress)
    reference = score_reference(runner)  # evaluate's mvn at scale 1, on the same splits
    summarise(study, train, latents, families, estimate=estimate, seed=seed, reference=reference)


def summarise(
    study: optuna.Study,
    train: TrainRun,
    latents: np.ndarray,
    families: Sequence[str],
    *,
    estimate: str,
    seed: int,
    reference: dict[str, Any] | None = None,
) -> None:
    """The parent's metrics, tables, plots, winner and registered generator; in a
    two-objective study (``mode=multi``) also the Pareto front, and the winner is
    :data:`FRONT_RULE`'s; ``reference``: the user attributes of
    :data:`~aelatent.jobs.generator_search.reference.REFERENCE` scored on the study's splits, the
    winner reported against it."""
    trials = complete_trials(study)
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED]
    if not trials:
        print("aelatent search: no trial completed; no best generator", file=sys.stderr)
        mlflow.set_tag("no_best_generator", "no trial completed")
        return
    front = pareto_front(study) if len(study.directions) > 1 else []
    peers = front or trials  # whom the winner's rule chooses from
    best = best_trial(peers)
    good = tied_with_top(peers)
    likely = tied_with_likeliest(good)
    ranking = family_ranking([*trials, *pruned], best)  # RANKING_RULE: the families' order
    winner = candidate_of(best)
    fitted = fit_candidate(winner, latents, seed=seed, estimate=estimate)  # on every latent
    heldout = _heldout_check(winner, fitted, train, latents, seed=seed)
    lo, hi = score_interval(best.user_attrs["per_split"])
    metrics = {
        "best_score": best.user_attrs["score"],
        "best_score_se": score_se(best.user_attrs["per_split"]),
        "best_score_lo": lo,
        "best_score_hi": hi,
        "best_c2st_acc": best.user_attrs["c2st_acc"],
        "best_copying_ratio": best.user_attrs["copying_ratio"],
        "best_trial": float(best.number),
        "best_parameters": float(best.user_attrs.get("parameters", -1)),  # -1: not counted
        "top_score": top_score(trials).user_attrs["score"],
        "n_as_good": float(len(good)),
        "n_as_likely": float(len(likely)),
        "n_trials_complete": float(len(trials)),
        "n_trials_pruned": float(len(pruned)),
        **heldout,
    }
    if reference is not None:
        metrics.update(reference_metrics(best.user_attrs, reference, score_noise(trials)))
    by_likelihood = best_by_log_likelihood(trials)
    if by_likelihood is not None:
        metrics["best_log_likelihood"] = by_likelihood.user_attrs["log_likelihood"]
        metrics["best_log_likelihood_trial"] = float(by_likelihood.number)
        mlflow.set_tag("best_generator_by_log_likelihood", by_likelihood.user_attrs["label"])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [
            _write_trials(out / "generators.csv", trials, good, likely, front),
            _write_family_bests(out / "best_per_family.csv", ranking),
        ]
        if front:
            files += _log_front(study, front, best, out, metrics)
        files += _importances(study, out, metrics)
        files += _decoded_family_bests(ranking, train, latents, out, estimate=estimate, seed=seed)
        for path in files:
            mlflow.log_artifact(str(path), ARTIFACT_DIR)
    mlflow.log_metrics(metrics)
    mlflow.set_tag("best_generator", winner.label)
    line = _summary_line(winner, metrics, len(good), len(likely), len(pruned), front)
    line += reference_line(metrics)
    if by_likelihood is not None:
        line += (
            f" Best by held-out log-likelihood: {by_likelihood.user_attrs['label']} "
            f"({by_likelihood.user_attrs['log_likelihood']:.1f} a vector)."
        )
    set_description(line, train_run_line(train.run_id))
    print(f"aelatent search: {line.replace('**', '')}", file=sys.stderr, flush=True)
    _log_winner(winner, fitted, train, seed=seed)


def _summary_line(
    winner: Candidate,
    metrics: dict[str, float],
    n_good: int,
    n_likely: int,
    n_pruned: int,
    front: Sequence[FrozenTrial],
) -> str:
    """The run's headline: the winner, its score and among which trials it was chosen."""
    among = (
        f"{len(front)} trials on the Pareto front of fidelity and copying ratio (of "
        f"{metrics['n_trials_complete']:.0f} complete): {n_good} of them not significantly "
        "below the front's top score"
        if front
        else f"{n_good} of {metrics['n_trials_complete']:.0f} complete trials not "
        "significantly below the top score"
    )
    return (
        f"Best generator: **{winner.label}**, score {metrics['best_score']:.3f} "
        f"[{metrics['best_score_lo']:.3f}, {metrics['best_score_hi']:.3f}] (cross-fitted C2ST "
        f"accuracy {metrics['best_c2st_acc']:.3f}, copying ratio "
        f"{metrics['best_copying_ratio']:.2f}); {among}, {n_likely} of those as likely as the "
        "likeliest fit (the winner: the fewest parameters of those: "
        f"{metrics['best_parameters']:.0f}); {n_pruned} pruned."
    )


FRONT_RULE = (
    "on the Pareto front of fidelity and copying ratio, the single-mode rule: " + SELECTION_RULE
)
FRONT_AXES = ("fidelity", "copying_ratio")
FRONT_LABELS = ("fidelity: min(1, 2(1 - C2ST accuracy))", "copying ratio (1: as new real latents)")


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The complete trials no other trial beats in both fidelity and copying ratio (Optuna's
    ``best_trials`` of the two-objective study), highest fidelity first."""
    front = [t for t in study.best_trials if "score" in t.user_attrs]
    return sorted(front, key=lambda t: (-t.values[0], t.number))


def _log_front(
    study: optuna.Study,
    front: Sequence[FrozenTrial],
    winner: FrozenTrial,
    out: Path,
    metrics: dict[str, float],
) -> list[Path]:
    """``pareto_front.csv`` (the front's trials) and ``pareto_front.png`` (Optuna's plot, the
    winner ringed); the front's size and the winner's fidelity as metrics, the front's trial
    numbers and the winner's rule as tags."""
    metrics["n_pareto_front"] = float(len(front))
    metrics["best_fidelity"] = winner.user_attrs["fidelity"]
    mlflow.set_tags(
        {
            "pareto_front": ",".join(str(t.number) for t in front)[:5000],
            "winner_rule": FRONT_RULE,
        }
    )
    rows = [
        [
            t.number,
            t.params["family"],
            t.user_attrs["label"],
            *t.values,
            t.user_attrs["score"],
            score_se(t.user_attrs["per_split"]),
            t.user_attrs["c2st_acc"],
            t.user_attrs["shape_c2st_acc"],
            t.user_attrs.get("log_likelihood", ""),
            t.user_attrs.get("parameters", ""),
            int(t.number == winner.number),
        ]
        for t in front
    ]
    header = ["trial", "family", "candidate", *FRONT_AXES, "score", "score_se"]
    header += ["c2st_acc", "shape_c2st_acc", "log_likelihood", "parameters", "winner"]
    return [
        _write_csv(out / Path(PARETO_FRONT_CSV).name, header, rows),
        _plot_front(study, winner, out / Path(PARETO_FRONT_PNG).name),
    ]


def _plot_front(study: optuna.Study, winner: FrozenTrial, path: Path) -> Path:
    """Optuna's matplotlib Pareto-front plot of the study, the winner ringed."""
    import warnings

    from optuna.visualization import matplotlib as ovm  # Agg is set at the top

    with warnings.catch_warnings(), matplotlib.rc_context():  # Optuna sets a global style
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = ovm.plot_pareto_front(study, target_names=list(FRONT_LABELS))
        ax.scatter(*winner.values, s=160, facecolors="none", edgecolors="black", zorder=5)
        ax.annotate(
            f"winner: trial {winner.number}",
            winner.values,
            xytext=(-12, 12),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
        ax.set_title("generators: fidelity against copying ratio", fontsize=10)
        fig = ax.figure
        fig.set_size_inches(7, 4.5)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path


def _decoded_family_bests(
    ranking: dict[str, FrozenTrial],
    train: TrainRun,
    latents: np.ndarray,
    out: Path,
    *,
    estimate: str,
    seed: int,
) -> list[Path]:
    """``decoded_generators.png``: 8 decoded vectors of each family's place in the ranking
    (:func:`~aelatent.jobs.generator_search.selection.family_ranking`, refitted on every training
    latent) under the real reconstructions: the picture that checks the score."""
    if not has_decoder(train.run_id):
        return []
    from aelatent.model import decoder_of  # TensorFlow: only when there is a decoder

    decoder = decoder_of(load_autoencoder(train.run_id))
    real = latents[np.random.default_rng([seed, 99]).choice(len(latents), 8, replace=False)]
    rows, labels = [decoder.predict(real, verbose=0)], ["real"]
    for family, trial in ranking.items():
        candidate = candidate_of(trial)
        sampler = fit_candidate(candidate, latents, seed=seed, estimate=estimate)
        z = sampler.with_scale(candidate.scale).sample(8, np.random.default_rng([seed, 98]))
        rows.append(decoder.predict(z, verbose=0))
        labels.append(f"{family}\n{np.mean(trial.user_attrs['per_split']):.2f}")
    title = "each family's placing trial, decoded in rank order (score beside it)"
    return [save_image_rows(rows, labels, out / "decoded_generators.png", title=title)]


def _heldout_check(
    winner: Candidate, sampler: Sampler, train: TrainRun, latents: np.ndarray, *, seed: int
) -> dict[str, float]:
    """The winner refitted on every training latent against the held-out images, beside the
    training latents' own C2ST against them (new people: both may differ)."""
    held = np.asarray(train.heldout, dtype=np.float64)
    if held.shape[0] < 10:
        return {}
    z = sampler.with_scale(winner.scale).sample(held.shape[0], np.random.default_rng([seed, 77]))
    generated = c2st(held, z.astype(np.float64), classifier="nonlinear", seed=seed)
    real = c2st(held, latents, classifier="nonlinear", seed=seed)
    return {
        "winner_heldout_c2st_acc": generated.statistic,
        "winner_heldout_c2st_acc_lo": generated.lo,
        "winner_heldout_c2st_acc_hi": generated.hi,
        "training_heldout_c2st_acc": real.statistic,
        "training_heldout_c2st_acc_lo": real.lo,
        "training_heldout_c2st_acc_hi": real.hi,
    }


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_trials(
    path: Path,
    trials: Sequence[FrozenTrial],
    good: Sequence[FrozenTrial],
    likely: Sequence[FrozenTrial],
    front: Sequence[FrozenTrial] = (),
) -> Path:
    """Every complete trial, best score first, with what the winner was chosen by (in
    ``mode=multi``: among the front's trials, ``on_pareto_front``)."""
    good_numbers = {t.number for t in good}
    likely_numbers = {t.number for t in likely}
    front_numbers = {t.number for t in front}
    header = ["trial", "family", "candidate", "score", "score_se", "c2st_acc", "copying_ratio"]
    header += ["fidelity", "log_likelihood", "fit_log_likelihood", "parameters"]
    header += ["as_good_as_best", "as_likely_as_likeliest"]
    rows = []
    for t in sorted(trials, key=lambda t: -t.user_attrs["score"]):
        a = t.user_attrs
        row = [t.number, t.params["family"], a["label"], a["score"], score_se(a["per_split"])]
        row += [a["c2st_acc"], a["copying_ratio"], a.get("fidelity", "")]
        row += [a.get(k, "") for k in ("log_likelihood", "fit_log_likelihood", "parameters")]
        row += [int(t.number in good_numbers), int(t.number in likely_numbers)]
        rows.append(row + ([int(t.number in front_numbers)] if front else []))
    return _write_csv(path, header + (["on_pareto_front"] if front else []), rows)


def _write_family_bests(path: Path, ranking: dict[str, FrozenTrial]) -> Path:
    """Each family in the ranking's order (the report's table; RANKING_RULE), with the
    trial that placed it; a pruned one with its partial score and the splits it ran."""
    header = ["family", "trial", "candidate", "score", "score_lo", "score_hi"]
    header += ["c2st_acc", "copying_ratio"]
    rows: list[list[Any]] = []
    for family, t in ranking.items():
        a = t.user_attrs
        if "score" in a:
            row = [family, t.number, a["label"], a["score"], *score_interval(a["per_split"])]
            rows.append([*row, a["c2st_acc"], a["copying_ratio"]])
        else:
            label = f"{a.get('label', family)} (pruned after {len(a['per_split'])} splits)"
            rows.append([family, t.number, label, float(np.mean(a["per_split"])), "", "", "", ""])
    return _write_csv(path, header, rows)


def _importances(study: optuna.Study, out: Path, metrics: dict[str, float]) -> list[Path]:
    """Optuna's hyperparameter importances (fANOVA) for the score as metrics and a plot (in
    ``mode=multi`` too: the score, not either objective); none with fewer than 3 complete
    trials (nothing to attribute)."""
    if len(complete_trials(study)) < 3:
        return []
    try:
        importances = optuna.importance.get_param_importances(
            study, target=lambda t: float(t.user_attrs.get("score", 0.0))
        )
    except (ValueError, RuntimeError):  # e.g. every trial the same family and settings
        return []
    for name, value in importances.items():
        metrics[f"importance/{name}"] = float(value)
    fig, ax = plt.subplots(figsize=(5, 0.4 * len(importances) + 1.2))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for the score (fANOVA)")
    ax.set_title("which settings matter", fontsize=10)
    fig.tight_layout()
    path = out / "param_importances.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def _log_winner(winner: Candidate, sampler: Sampler, train: TrainRun, *, seed: int) -> None:
    """The winner (refitted on every training latent) plus the decoder as ``generator``,
    registered as ``aelatent-generator-case-<case>@best``; one line why not otherwise."""
    if not has_decoder(train.run_id):
        print(
            f"aelatent search: train run {train.run_id!r} has no model, so no generator is logged",
            file=sys.stderr,
        )
        return
    active = mlflow.active_run()
    assert active is not None
    uri = log_generator(
        train.run_id,
        winner.family,
        winner.scale,
        mu=train.mu,
        hw=train.hw,
        latents=train.latents,
        source=f"generator search run {active.info.run_id}: {winner.label}",
        seed=seed,
        fitted={winner.family: sampler},
    )
    name = registered_model_name(train.case, GENERATOR_MODEL_PREFIX)
    try:
        version = mlflow.register_model(uri, name, tags={"candidate": winner.label})
        MlflowClient().set_registered_model_alias(name, BEST_ALIAS, version.version)
    except MlflowException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"aelatent search: generator logged, not registered: {reason}", file=sys.stderr)
        return
    model_uri = f"models:/{name}@{BEST_ALIAS}"
    mlflow.set_tag("registered_generator", model_uri)
    print(
        f"aelatent search: serve new faces with: mlflow models serve -m {model_uri} "
        "--env-manager local",
        file=sys.stderr,
    )
