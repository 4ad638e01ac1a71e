"""The generator search, validated on latents whose generator is known (issue 25).

    nice -n 10 .venv/bin/python benchmarks/bench_generator_search.py   # 10 seeds x 60 trials

Synthetic training latents from a known 3-component Gaussian mixture in 256 dimensions,
correlated (every component shares the covariance ``A A^T + 0.1 I`` with ``A`` a random
256 x 16 matrix; the component means lie 6 within-component standard deviations apart in
the plane of A's top two singular vectors, so the clusters show in the principal subspace
where gmm and flow model shape; weights 0.4, 0.35, 0.25), ``N_LATENTS`` of them. The search is
:func:`aelatent.jobs.generator_search.study.optimize`, the study loop the job runs (its splits,
score, pruner and seeded TPE; no MLflow), over every family, for ``--trials`` trials a
seed. Per seed the table has the winner, what two other rules pick from the same trials
(the top score alone; the previous rule, the best log-likelihood at the trial's width among
the score's ties), the best gmm candidate, the family ranking,
the best candidate by held-out log-likelihood, and the time. The family ranking is
:func:`aelatent.jobs.generator_search.selection.family_ranking`: the winner's family, then the same
rule over and over on the remaining families' trials (pruned ones on the splits they ran).

Pass: the winner is a gmm with 3 components in at least 9 of 10 seeds, and uniform's best
is ranked last in every seed. ``--seeds``/``--trials`` run a smaller check that prints and
writes nothing. The full run writes ``benchmarks/results/generator_search.md`` after every
seed (a partial table until the last) and every trial's family, settings, split scores,
log-likelihoods and parameter count to ``results/generator_search_trials.json``, from which
``--summarise`` redraws the table without searching again (the trials do not depend on the
likelihood and parameter steps of the rule that picks the winner, only on the score's tie
test: :func:`aelatent.jobs.generator_search.study.run_trials`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

import aelatent.generators  # noqa: F401  (hands the registry the flow's trainer)
from aelatent.core.generator_space import as_good_as
from aelatent.core.sampler_registry import REGISTRY
from aelatent.jobs.generator_search.selection import (
    RANKING_RULE,
    SELECTION_RULE,
    best_by_log_likelihood,
    best_trial,
    family_bests,
    family_ranking,
    tied_with_likeliest,
    tied_with_top,
    top_score,
)
from aelatent.jobs.generator_search.study import optimize

N_LATENTS = 600
Z_DIM = 256
WEIGHTS = (0.4, 0.35, 0.25)
SEPARATION = 6.0  # distance of the means, in within-component standard deviations
RESULTS = Path(__file__).resolve().parent / "results" / "generator_search.md"
FAMILIES = ("uniform", "gaussian", "mvn", "gmm", "flow")
TRIALS = RESULTS.with_name("generator_search_trials.json")


def mixture_latents(seed: int, n: int = N_LATENTS, z_dim: int = Z_DIM) -> np.ndarray:
    """``n`` latents of the known 3-component mixture (module docstring), float32."""
    rng = np.random.default_rng([seed, 25])
    a = rng.standard_normal((z_dim, 16)) / np.sqrt(16)
    cov = a @ a.T + 0.1 * np.eye(z_dim)
    plane = np.linalg.svd(a, full_matrices=False)[0][:, :2]  # two correlated directions
    # the within-component sd along each direction of the plane
    sd = np.sqrt(np.einsum("ij,jk,ki->i", plane.T, cov, plane))
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(0.75)]]) * SEPARATION
    means = (corners * sd) @ plane.T
    labels = rng.choice(3, size=n, p=WEIGHTS)
    noise = rng.standard_normal((n, z_dim)) @ np.linalg.cholesky(cov).T
    return (means[labels] + noise + 0.3).astype(np.float32)


def ranking(all_trials: list[FrozenTrial]) -> dict[str, str]:
    """The families ranked (:data:`~aelatent.jobs.generator_search.selection.RANKING_RULE`),
    each with the mean split score of the trial that placed it (``/2``: a trial pruned after 2
    splits)."""
    out: dict[str, str] = {}
    for family, t in family_ranking(all_trials).items():
        splits = t.user_attrs["per_split"]
        pruned = "" if t.state == TrialState.COMPLETE else f"/{len(splits)}"
        out[family] = f"{np.mean(splits):.2f}{pruned}"
    return out


def run_seed(
    seed: int,
    n_trials: int,
    n_latents: int = N_LATENTS,
    z_dim: int = Z_DIM,
    families: tuple[str, ...] = FAMILIES,
) -> dict[str, object]:
    start = time.perf_counter()
    study = optimize(
        mixture_latents(seed, n_latents, z_dim), families, n_trials=n_trials, seed=seed
    )
    return summarise(seed, study.trials, time.perf_counter() - start)


def summarise(seed: int, all_trials: list[FrozenTrial], seconds: float) -> dict[str, object]:
    """One seed's row of the table, from its trials."""
    trials = [t for t in all_trials if t.state == TrialState.COMPLETE and "score" in t.user_attrs]
    best = best_trial(trials)
    bests = family_bests(trials)
    ranks = ranking(all_trials)
    by_ll = best_by_log_likelihood(trials)
    top = top_score(trials)
    previous = best_by_log_likelihood(tied_with_top(trials)) or top  # the rule before v2's
    paired = unpooled_winner(trials)
    gmm = bests.get("gmm")
    pruned = sum(t.state == TrialState.PRUNED for t in all_trials)
    defaults = [t for t in all_trials if t.number < n_defaults(all_trials)]
    bic = next((t for t in defaults if t.params.get("family") == "gmm"), None)
    return {
        "seed": seed,
        "winner": best.user_attrs["label"],
        "winner_score": best.user_attrs["score"],
        "three": is_three(best),
        "default_won": best.number < len(defaults),
        "bic_three": bic is not None and is_three(bic),
        "top": top.user_attrs["label"],
        "top_three": is_three(top),
        "previous": previous.user_attrs["label"],
        "previous_three": is_three(previous),
        "paired_three": is_three(paired),
        "best_gmm": "-" if gmm is None else gmm.user_attrs["label"],
        "ranking": " > ".join(f"{f} {score}" for f, score in ranks.items()),
        "uniform_last": list(ranks)[-1] == "uniform",
        "by_ll": "-" if by_ll is None else by_ll.user_attrs["label"],
        "seconds": seconds,
        "per_trial": seconds / len(all_trials),
        "pruned": pruned,
        "flow_trials": sum(t.params.get("family") == "flow" for t in all_trials),
    }


def n_defaults(all_trials: list[FrozenTrial]) -> int:
    """How many of the study's first trials are the families' fitted defaults
    (``generator_search.study.fitted_defaults``: one per family of the study that has a
    default fit, in the registry's order, queued before any other)."""
    families = {str(t.params["family"]) for t in all_trials if "family" in t.params}
    return sum(
        REGISTRY[f].default_settings is not None and REGISTRY[f].axis == "scale"
        for f in REGISTRY
        if f in families
    )


def unpooled_winner(trials: list[FrozenTrial]) -> FrozenTrial:
    """The winner's rule with each pair's own paired t as the score's tie test (the first
    version's), for comparison with the pooled noise
    (:func:`~aelatent.jobs.generator_search.selection.score_noise`)."""
    best = top_score(trials).user_attrs["per_split"]
    tied = [t for t in trials if as_good_as(best, t.user_attrs["per_split"])]
    return min(
        tied_with_likeliest(tied),
        key=lambda t: (t.user_attrs.get("parameters", np.inf), -t.user_attrs["score"], t.number),
    )


def is_three(trial: FrozenTrial) -> bool:
    return trial.params["family"] == "gmm" and int(trial.params["components"]) == 3


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    """What :func:`summarise` reads of a trial, as JSON."""
    return {"state": t.state.name, "params": t.params, "user_attrs": t.user_attrs}


def trial_of(number: int, record: dict[str, Any]) -> FrozenTrial:
    """A trial read back from :func:`trial_record` (params only as summarise reads them)."""
    params = record["params"]
    trial = create_trial(
        state=TrialState[record["state"]],
        value=record["user_attrs"].get("score") if record["state"] == "COMPLETE" else None,
        params=params,
        distributions={k: CategoricalDistribution([v]) for k, v in params.items()},
        user_attrs=record["user_attrs"],
    )
    trial.number = number  # the rules' tie-breaks and the sibling test read it
    return trial


def markdown(rows: list[dict[str, object]], n_trials: int) -> str:
    three = sum(bool(r["three"]) for r in rows)
    last = sum(bool(r["uniform_last"]) for r in rows)
    lines = [
        "# The generator search on a known 3-component mixture",
        "",
        f"{N_LATENTS} training latents of 256 dimensions per seed, {n_trials} trials, every "
        "family (`benchmarks/bench_generator_search.py`).",
        "",
        f"- winner a gmm with 3 components: **{three} of {len(rows)}** seeds (pass: >= 9 of 10)"
        + ("" if len(rows) == 10 else " (partial: the run is not finished)"),
        f"- uniform ranked last: **{last} of {len(rows)}** seeds",
        "- the winner is a fitted default (the study's first trials: gaussian, mvn and BIC's "
        f"mixture at scale 1) in {sum(bool(r.get('default_won')) for r in rows)} of "
        f"{len(rows)}; BIC's mixture has 3 components in "
        f"{sum(bool(r.get('bic_three')) for r in rows)} of {len(rows)}",
        f"- winner: {SELECTION_RULE}",
        f"- families ranked: {RANKING_RULE} (beside each, the mean split score of the trial "
        "that placed it; /k: pruned after k splits)",
        "- the same trials, other rules: the top score a gmm with 3 components in "
        f"{sum(bool(r['top_three']) for r in rows)} of {len(rows)}; the previous rule (of the "
        "trials tied with the top score, the best log-likelihood at the trial's width) in "
        f"{sum(bool(r['previous_three']) for r in rows)} of {len(rows)}; the rule with each "
        "pair's own paired t as the score's tie test (the first version's) in "
        f"{sum(bool(r['paired_three']) for r in rows)} of {len(rows)}",
        f"- time per trial (median over seeds): "
        f"{np.median([float(r['per_trial']) for r in rows]):.1f} s",
        "",
        "| seed | winner | score | top score | previous rule | best gmm "
        "| families ranked | best by log-lik. | pruned | flow trials | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['winner']} | {float(r['winner_score']):.3f} | {r['top']} "
            f"| {r['previous']} | {r['best_gmm']} "
            f"| {r['ranking']} | {r['by_ll']} | {r['pruned']} | {r['flow_trials']} "
            f"| {float(r['seconds']):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument(
        "--summarise", action="store_true", help="redraw the table from the stored trials"
    )
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full = args.seeds == 10 and args.trials == 60
    if args.summarise:
        stored = json.loads(TRIALS.read_text())
        rows = [
            summarise(
                int(seed),
                [trial_of(i, r) for i, r in enumerate(entry["trials"])],
                float(entry["seconds"]),
            )
            for seed, entry in stored["seeds"].items()
        ]
        RESULTS.write_text(markdown(rows, int(stored["trials"])))
        print(RESULTS.read_text())
        return
    rows, stored_seeds = [], {}
    for seed in range(args.seeds):
        start = time.perf_counter()
        study = optimize(mixture_latents(seed), FAMILIES, n_trials=args.trials, seed=seed)
        seconds = time.perf_counter() - start
        rows.append(summarise(seed, study.trials, seconds))
        print(rows[-1], file=sys.stderr, flush=True)
        stored_seeds[str(seed)] = {
            "seconds": seconds,
            "trials": [trial_record(t) for t in study.trials],
        }
        if full:  # after every seed: a partial table survives an interrupted run
            TRIALS.write_text(json.dumps({"trials": args.trials, "seeds": stored_seeds}))
            RESULTS.write_text(markdown(rows, args.trials))
    print(markdown(rows, args.trials))


if __name__ == "__main__":
    main()
