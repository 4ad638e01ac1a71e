"""``search -P space=generators``: which generator of latent vectors, with which settings?

``mlflow run . -e search --env-manager local -P space=generators -P n_trials=40``

One Optuna study over sampler families and their settings, conditional on the family
(:mod:`aelatent.core.generator_space`): uniform ``b``; gaussian ``scale``; mvn
``shrinkage``, ``scale``; gmm ``components``, ``covariance``, ``subspace``, ``scale``.
Every trial is scored out of sample on the verdict's cross-fitting splits (fit on a random
half of the training latents, score against the other half: the quadratic C2ST times the
copying ratio), split by split: after each split the running mean is reported to Optuna's
successive-halving pruner, so a candidate that is clearly bad stops after one split. Every
trial is a nested MLflow run; the parent names the best candidate, every candidate not
significantly worse, the best of each family, Optuna's hyperparameter importances, and
scores the winner (refitted on all training latents) against the held-out images beside the
training latents' own score against them. The winner is logged as the servable
``generator`` and registered as ``aelatent-generator-case-<case>`` with the alias ``best``.
"""

from __future__ import annotations

import csv
import math
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
    COVARIANCE_TYPES,
    Candidate,
    as_good_as,
    fit_candidate,
    score_interval,
    split_score,
)
from aelatent.core.samplers import Sampler
from aelatent.core.two_sample import c2st
from aelatent.core.verdict import Split, make_splits, min_training_latents
from aelatent.errors import UserError
from aelatent.serving.generator_model import has_decoder, log_generator
from aelatent.io.mlflow_native import registered_model_name, set_description, train_run_line
from aelatent.io.run_artifacts import load_autoencoder
from aelatent.io.tracking import entry_point_run, resolve_train_run
from aelatent.io.train_run import TrainRun, read_run
from aelatent.jobs.search_request import GENERATORS, SearchRequest
from aelatent.jobs.search_study import (
    TrialSeededSampler,
    check_existing_study,
    default_storage_url,
    open_storage,
    open_study,
    quiet_optuna,
    redact,
)
from aelatent.plots.image_grids import save_image_rows

SPLITS = 3
SCORE_VERSION = (
    "generators: min(1, 2(1 - acc)) of a quadratic C2ST x min(1, copying ratio), "
    f"{SPLITS} cross-fitted splits (v1)"
)
RANGES = {"b": (0.05, 12.0), "scale": (0.25, 4.0), "shrinkage": (0.0, 1.0)}
MAX_COMPONENTS = 8
GENERATOR_MODEL_PREFIX = "aelatent-generator-case-"
BEST_ALIAS = "best"
ARTIFACT_DIR = "search"


def suggest(trial: optuna.Trial, families: Sequence[str], n_fit: int) -> Candidate:
    """The trial's candidate: a family, then that family's settings (a conditional space)."""
    family = trial.suggest_categorical("family", list(families))
    if family == "uniform":
        return Candidate.of(family, {"b": trial.suggest_float("b", *RANGES["b"], log=True)})
    settings: dict[str, Any] = {}
    if family == "mvn":
        settings["shrinkage"] = trial.suggest_float("shrinkage", *RANGES["shrinkage"])
    if family == "gmm":  # at most one component per 20 fit latents (the mixture's rule)
        most = max(1, min(MAX_COMPONENTS, n_fit // 20))
        settings["components"] = trial.suggest_int("components", 1, most)
        settings["covariance"] = trial.suggest_categorical("covariance", list(COVARIANCE_TYPES))
        settings["subspace"] = trial.suggest_int("subspace", 2, 32, log=True)
    settings["scale"] = trial.suggest_float("scale", *RANGES["scale"], log=True)
    return Candidate.of(family, settings)


class GeneratorTrials:
    """The Optuna objective: one candidate scored split by split, as a nested MLflow run."""

    def __init__(
        self,
        splits: Sequence[Split],
        families: Sequence[str],
        *,
        estimate: str,
        seed: int,
        parent_run_id: str,
        tags: dict[str, str],
    ) -> None:
        self.splits = list(splits)
        self.families = tuple(families)
        self.estimate, self.seed = estimate, seed
        self.parent_run_id, self.tags = parent_run_id, tags
        self._fits: dict[tuple[str, tuple[Any, ...], int], Sampler] = {}  # one fit per shape

    def fitted(self, candidate: Candidate, split: Split) -> Sampler:
        key = (candidate.family, candidate.shape, split.seed)
        if key not in self._fits:
            self._fits[key] = fit_candidate(
                candidate, split.fit, seed=split.seed, estimate=self.estimate
            )
        return self._fits[key]

    def __call__(self, trial: optuna.Trial) -> float:
        candidate = suggest(trial, self.families, self.splits[0].fit.shape[0])
        tags = {**self.tags, "trial": str(trial.number), "family": candidate.family}
        with mlflow.start_run(run_name=f"trial {trial.number}", nested=True, tags=tags) as child:
            mlflow.log_params({"family": candidate.family, **candidate.params})
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            trial.set_user_attr("mlflow_parent_run_id", self.parent_run_id)
            trial.set_user_attr("label", candidate.label)
            scores, accs, ratios = [], [], []
            for step, split in enumerate(self.splits):
                got = split_score(self.fitted(candidate, split), split, candidate.scale, self.seed)
                scores.append(got.score)
                accs.append(got.accuracy)
                ratios.append(got.copying_ratio)
                trial.report(float(np.mean(scores)), step)
                if step + 1 < len(self.splits) and trial.should_prune():
                    mlflow.log_metrics(
                        {"score_partial": float(np.mean(scores)), "splits": step + 1}
                    )
                    mlflow.set_tag("pruned", "true")
                    trial.set_user_attr("per_split", scores)
                    raise optuna.TrialPruned()
            score = float(np.mean(scores))
            se = float(np.std(scores, ddof=1) / math.sqrt(len(scores)))
            metrics = {
                "score": score,
                "score_se": se,
                "c2st_acc": float(np.mean(accs)),
                "copying_ratio": float(np.mean(ratios)),
                "splits": float(len(scores)),
            }
            mlflow.log_metrics(metrics)
            for key, value in metrics.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr("per_split", scores)
        return score


def search_generators(request: SearchRequest, *, nested: bool = False) -> str:
    """The whole job for ``space=generators``: every mistake (unknown run, a study made for
    another question, too few latents) before any MLflow run; then the parent run."""
    run = resolve_train_run(request.train_run, request.case)
    train_id, case = run.info.run_id, run.data.tags.get("case", "?")
    url = request.storage or default_storage_url(mlflow.get_tracking_uri())
    storage = open_storage(url)
    families = ",".join(request.families)
    name = request.study_name or f"generators-{train_id}-{families.replace(',', '-')}"
    definition = {
        "train_run": train_id,
        "seed": request.seed,
        "mode": "single",
        "estimate": request.estimate,
        "objective": SCORE_VERSION,
        "families": families,
    }
    check_existing_study(storage, name, definition)

    def check(run_id: str, latents: np.ndarray) -> None:
        need = max(
            min_training_latents(["c2st_nonlinear"]), 2 * 20 if "gmm" in request.families else 0
        )
        if latents.shape[0] < need:
            raise UserError(
                f"space=generators needs at least {need} training latents (two halves"
                f"{'; gmm: 20 a component' if 'gmm' in request.families else ''}); train run "
                f"{run_id!r} has {latents.shape[0]}"
            )

    train = read_run(run, request.estimate, request.seed, check=check)
    tags = {"train_run": train_id, "case": case, "study_name": name, "space": GENERATORS}
    with entry_point_run("search", f"search generators case {case}", tags, nested=nested) as parent:
        present = mlflow.get_run(parent.info.run_id).data.params
        params = {
            "train_run": train_id,
            "case": case,
            "space": GENERATORS,
            "families": families,
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
) -> None:
    """The worker's trials and the summary, inside the active (parent) search run."""
    latents = np.asarray(train.latents, dtype=np.float64)
    splits = make_splits(latents, SPLITS, seed)
    tags = {"train_run": train.run_id, "case": train.case, "study_name": study_name}
    runner = GeneratorTrials(
        splits, families, estimate=estimate, seed=seed, parent_run_id=parent_run_id, tags=tags
    )
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    with quiet_optuna():  # Optuna's progress bar, not its log line per study and trial
        study, _ = open_study(
            storage, study_name, definition, TrialSeededSampler(seed), pruner=pruner
        )
    print(
        f"aelatent search: generator study {study_name!r} in {redact(url)}; families "
        f"{', '.join(families)}; {SPLITS} cross-fitted splits of {splits[0].test.shape[0]} "
        "against as many",
        file=sys.stderr,
        flush=True,
    )
    with quiet_optuna(), optuna_progress(n_trials, "aelatent search (generators)") as progress:
        study.optimize(runner, n_trials=n_trials, **progress)
    summarise(study, train, latents, families, estimate=estimate, seed=seed)


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "score" in t.user_attrs
    ]


def summarise(
    study: optuna.Study,
    train: TrainRun,
    latents: np.ndarray,
    families: Sequence[str],
    *,
    estimate: str,
    seed: int,
) -> None:
    """The parent's metrics, tables, plots, winner and registered generator."""
    trials = complete_trials(study)
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED]
    if not trials:
        print("aelatent search: no trial completed; no best generator", file=sys.stderr)
        mlflow.set_tag("no_best_generator", "no trial completed")
        return
    best = max(trials, key=lambda t: (t.user_attrs["score"], -t.number))
    good = [
        t for t in trials if as_good_as(best.user_attrs["per_split"], t.user_attrs["per_split"])
    ]
    winner = _candidate(best)
    fitted = fit_candidate(winner, latents, seed=seed, estimate=estimate)  # on every latent
    heldout = _heldout_check(winner, fitted, train, latents, seed=seed)
    lo, hi = score_interval(best.user_attrs["per_split"])
    metrics = {
        "best_score": best.user_attrs["score"],
        "best_score_se": best.user_attrs["score_se"],
        "best_score_lo": lo,
        "best_score_hi": hi,
        "best_c2st_acc": best.user_attrs["c2st_acc"],
        "best_copying_ratio": best.user_attrs["copying_ratio"],
        "best_trial": float(best.number),
        "n_as_good": float(len(good)),
        "n_trials_complete": float(len(trials)),
        "n_trials_pruned": float(len(pruned)),
        **heldout,
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [
            _write_trials(out / "generators.csv", trials, good),
            _write_family_bests(out / "best_per_family.csv", trials, pruned),
        ]
        files += _importances(study, out, metrics)
        files += _decoded_family_bests(trials, train, latents, out, estimate=estimate, seed=seed)
        for path in files:
            mlflow.log_artifact(str(path), ARTIFACT_DIR)
    mlflow.log_metrics(metrics)
    mlflow.set_tag("best_generator", winner.label)
    line = (
        f"Best generator: **{winner.label}**, score {metrics['best_score']:.3f} "
        f"[{lo:.3f}, {hi:.3f}] (cross-fitted C2ST accuracy "
        f"{metrics['best_c2st_acc']:.3f}, copying ratio {metrics['best_copying_ratio']:.2f}); "
        f"{len(good)} of {len(trials)} complete trials not significantly worse; "
        f"{len(pruned)} pruned."
    )
    set_description(line, train_run_line(train.run_id))
    print(f"aelatent search: {line.replace('**', '')}", file=sys.stderr, flush=True)
    _log_winner(winner, fitted, train, seed=seed)


def family_bests(trials: Sequence[FrozenTrial]) -> dict[str, FrozenTrial]:
    """The best complete trial of each family, best first."""
    bests: dict[str, FrozenTrial] = {}
    for t in trials:
        family = t.params["family"]
        if family not in bests or t.user_attrs["score"] > bests[family].user_attrs["score"]:
            bests[family] = t
    return dict(sorted(bests.items(), key=lambda item: -item[1].user_attrs["score"]))


def _decoded_family_bests(
    trials: Sequence[FrozenTrial],
    train: TrainRun,
    latents: np.ndarray,
    out: Path,
    *,
    estimate: str,
    seed: int,
) -> list[Path]:
    """``decoded_generators.png``: 8 decoded vectors of each family's best (refitted on every
    training latent) under the real reconstructions: the picture that checks the score."""
    if not has_decoder(train.run_id):
        return []
    from aelatent.model import decoder_of  # TensorFlow: only when there is a decoder

    decoder = decoder_of(load_autoencoder(train.run_id))
    real = latents[np.random.default_rng([seed, 99]).choice(len(latents), 8, replace=False)]
    rows, labels = [decoder.predict(real, verbose=0)], ["real"]
    for family, trial in family_bests(trials).items():
        candidate = _candidate(trial)
        sampler = fit_candidate(candidate, latents, seed=seed, estimate=estimate)
        z = sampler.with_scale(candidate.scale).sample(8, np.random.default_rng([seed, 98]))
        rows.append(decoder.predict(z, verbose=0))
        labels.append(f"{family}\n{trial.user_attrs['score']:.2f}")
    title = "each family's best candidate, decoded (score beside it)"
    return [save_image_rows(rows, labels, out / "decoded_generators.png", title=title)]


def _candidate(trial: FrozenTrial) -> Candidate:
    params = dict(trial.params)
    return Candidate.of(str(params.pop("family")), params)


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


def _write_trials(path: Path, trials: Sequence[FrozenTrial], good: Sequence[FrozenTrial]) -> Path:
    good_numbers = {t.number for t in good}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "trial",
                "family",
                "candidate",
                "score",
                "score_se",
                "c2st_acc",
                "copying_ratio",
                "as_good_as_best",
            ]
        )
        for t in sorted(trials, key=lambda t: -t.user_attrs["score"]):
            a = t.user_attrs
            writer.writerow(
                [
                    t.number,
                    t.params["family"],
                    a["label"],
                    a["score"],
                    a["score_se"],
                    a["c2st_acc"],
                    a["copying_ratio"],
                    int(t.number in good_numbers),
                ]
            )
    return path


def _write_family_bests(
    path: Path, trials: Sequence[FrozenTrial], pruned: Sequence[FrozenTrial] = ()
) -> Path:
    """The best complete trial of each family, best first (the report's table); a family
    whose every trial was pruned gets a row with its best partial score (``pruned``)."""
    bests = family_bests(trials)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "family",
                "trial",
                "candidate",
                "score",
                "score_lo",
                "score_hi",
                "c2st_acc",
                "copying_ratio",
            ]
        )
        for family, t in bests.items():
            a = t.user_attrs
            score_lo, score_hi = score_interval(a["per_split"])
            writer.writerow(
                [
                    family,
                    t.number,
                    a["label"],
                    a["score"],
                    score_lo,
                    score_hi,
                    a["c2st_acc"],
                    a["copying_ratio"],
                ]
            )
        partial: dict[str, tuple[float, FrozenTrial]] = {}
        for t in pruned:
            family, scores = t.params.get("family"), t.user_attrs.get("per_split")
            if family in bests or not scores:
                continue
            score = float(np.mean(scores))
            if family not in partial or score > partial[family][0]:
                partial[family] = (score, t)
        for family, (score, t) in sorted(partial.items(), key=lambda item: -item[1][0]):
            label = f"{t.user_attrs.get('label', family)} (pruned: every trial)"
            writer.writerow([family, t.number, label, score, "", "", "", ""])
    return path


def _importances(study: optuna.Study, out: Path, metrics: dict[str, float]) -> list[Path]:
    """Optuna's hyperparameter importances (fANOVA) as metrics and a plot; none with fewer
    than 3 complete trials (nothing to attribute)."""
    if len(complete_trials(study)) < 3:
        return []
    try:
        importances = optuna.importance.get_param_importances(study)
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
