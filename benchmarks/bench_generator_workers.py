"""Several workers on one generator study find the winner one worker finds (issue 25).

    nice -n 10 .venv/bin/python benchmarks/bench_generator_workers.py   # seeds 0-4, 3 repeats

Latents of the known 3-component mixture (:func:`bench_generator_search.mixture_latents`)
at the reduced size of ``tests/jobs/test_generator_study.py`` (600 latents of 32
dimensions, families uniform, mvn and gmm, 24 trials). Per seed: one worker with all the
trials (:func:`aelatent.jobs.generator_search.study.optimize` on a new in-memory study: the study's
direct API), then two worker processes started together that share one Optuna study on
PostgreSQL with half the trials each, each opening it as the job's workers do
(:func:`aelatent.jobs.search.study.open_storage` and ``open_study`` with the seeded TPE and
the successive-halving pruner; exactly one creates it) and running
:func:`~aelatent.jobs.generator_search.study.optimize` into it. The two workers interleave
differently every time, so the two-worker study is repeated ``--repeats`` times. The
sibling phase is the study's (:func:`aelatent.jobs.generator_search.queue.run_shared`): the two
workers' last 6 trials together are the queued siblings, as one worker's last 6 are.

Agreement (:func:`agree`): the same family and, for a mixture, the same number of
components, and the two winners' split scores tied by the search's own tie test
(:func:`aelatent.core.generator_space.as_good_as`, the higher against the lower, with the
noise the one-worker search pools; both studies score on the same splits: same latents,
same seed). Pass: every repeat of every seed agrees. Prints the table; the full run (the
defaults) also writes it to ``benchmarks/results/generator_workers.md`` (every figure in
``.json``). ``--storage URL`` uses that PostgreSQL database instead of starting one
(:mod:`aelatent.ops.server_stack`, in a temporary folder, wiped after).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from bench_generator_search import mixture_latents
from optuna.trial import FrozenTrial, TrialState

from aelatent.core.generator_space import as_good_as
from aelatent.jobs.generator_search.selection import best_trial, complete_trials, score_noise
from aelatent.jobs.generator_search.study import SCORE_VERSION, optimize, pruner

N_LATENTS = 600
Z_DIM = 32
FAMILIES = ("uniform", "mvn", "gmm")
N_TRIALS = 24
SEEDS, REPEATS = 5, 3
ANOTHER_TPE_SEED = 1000
RESULTS = Path(__file__).resolve().parent / "results" / "generator_workers.md"
SCORED = (TrialState.COMPLETE, TrialState.PRUNED)


def definition(seed: int) -> dict[str, Any]:
    """What the workers' study is about, stored with it (as the job stores its own)."""
    return {
        "train_run": f"mixture-{N_LATENTS}x{Z_DIM}",
        "seed": seed,
        "mode": "single",
        "estimate": "auto",
        "objective": SCORE_VERSION,
        "families": ",".join(FAMILIES),
    }


def run_worker(url: str, name: str, seed: int, n_trials: int) -> None:
    """One worker process: open the shared study as the job does, run its trials."""
    from aelatent.jobs.search.study import TrialSeededSampler, open_storage, open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    study, _ = open_study(
        storage, name, definition(seed), TrialSeededSampler(seed), pruner=pruner()
    )
    optimize(
        mixture_latents(seed, N_LATENTS, Z_DIM), FAMILIES, n_trials=n_trials, seed=seed, study=study
    )


def start_workers(url: str, name: str, seed: int, n_trials: int) -> list[subprocess.Popen[str]]:
    """Two worker processes on one new study ``name`` at ``url``, ``n_trials // 2`` each,
    started together."""
    command = [sys.executable, __file__, "--worker", url, name, str(seed), str(n_trials // 2)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]


def finish_workers(workers: list[subprocess.Popen[str]], url: str, name: str) -> optuna.Study:
    """The study once both workers have ended (an error when one failed)."""
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        if worker.returncode != 0:
            raise RuntimeError(f"a worker failed ({worker.returncode}): {output[-3000:]}")
    return optuna.load_study(study_name=name, storage=url)


def winner_of(study: optuna.Study) -> FrozenTrial:
    """The study's winner by the search's rule (``generator_search.selection.best_trial``)."""
    return best_trial(complete_trials(study))


def shape(trial: FrozenTrial) -> str:
    """The winner's family and, for a mixture, its number of components."""
    family = str(trial.params["family"])
    return f"gmm {int(trial.params['components'])}" if family == "gmm" else family


def duplicates(study: optuna.Study) -> int:
    """Trials that ran the settings of an earlier trial (two workers queueing one sibling)."""
    seen: set[str] = set()
    count = 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            key = json.dumps(t.params, sort_keys=True)
            count += key in seen
            seen.add(key)
    return count


def agree(one: optuna.Study, best: FrozenTrial, other: FrozenTrial) -> bool:
    """Same family and component count, and the lower score not significantly below the
    higher by the search's own tie test: :func:`~aelatent.core.generator_space.as_good_as`
    with the noise of a split's score pooled as the one-worker search pools it
    (``generator_search.selection.score_noise``). Why pooled: a paired t on 3 splits (2 degrees of
    freedom) calls 0.894 and 0.913 apart when the three differences agree (0.019, 0.024,
    0.014: the same shape at widths 0.998 and 1.010), though either lies in the other's
    interval."""
    a, b = best.user_attrs["per_split"], other.user_attrs["per_split"]
    high, low = (a, b) if np.mean(a) >= np.mean(b) else (b, a)
    return shape(best) == shape(other) and as_good_as(high, low, score_noise(complete_trials(one)))


def another_tpe_seed(seed: int, n_trials: int) -> optuna.Study:
    """One worker with all the trials on the same splits (``seed``) whose TPE is seeded
    with ``seed + ANOTHER_TPE_SEED``: how often one worker disagrees with itself, the
    baseline that two workers' agreement is read against (two workers' TPE sees another
    history, as another seed's does)."""
    from aelatent.jobs.search.study import TrialSeededSampler  # the import cycle: run_worker

    study = optuna.create_study(
        direction="maximize", sampler=TrialSeededSampler(seed + ANOTHER_TPE_SEED), pruner=pruner()
    )
    latents = mixture_latents(seed, N_LATENTS, Z_DIM)
    return optimize(latents, FAMILIES, n_trials=n_trials, seed=seed, study=study)


def compare(
    url: str,
    name: str,
    seed: int,
    n_trials: int = N_TRIALS,
    repeats: int = 1,
    *,
    overlap: bool = False,
    baseline: bool = True,
) -> dict[str, Any]:
    """One worker with ``n_trials`` against two workers with half each, ``repeats`` times
    (studies ``name-r<i>``): the winners, their scores, agreement and the times;
    ``overlap``: the one worker's study runs while the first two workers run (the test's
    cost; the times then mean nothing); ``baseline``: also one worker under another TPE seed
    (:func:`another_tpe_seed`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    early = start_workers(url, f"{name}-r0", seed, n_trials) if overlap else None
    start = time.perf_counter()
    one = optimize(mixture_latents(seed, N_LATENTS, Z_DIM), FAMILIES, n_trials=n_trials, seed=seed)
    one_seconds = time.perf_counter() - start
    best = winner_of(one)
    row: dict[str, Any] = {
        "seed": seed,
        "n_trials": n_trials,
        "one": best.user_attrs["label"],
        "one_shape": shape(best),
        "one_score": best.user_attrs["score"],
        "one_seconds": one_seconds,
        "two": [],
    }
    if baseline:
        alone = winner_of(another_tpe_seed(seed, n_trials))
        row["alone"] = alone.user_attrs["label"]
        row["alone_score"] = alone.user_attrs["score"]
        row["alone_agree"] = agree(one, best, alone)
    for r in range(repeats):
        start = time.perf_counter()
        workers = early if r == 0 and early else start_workers(url, f"{name}-r{r}", seed, n_trials)
        study = finish_workers(workers, url, f"{name}-r{r}")
        seconds = time.perf_counter() - start
        other = winner_of(study)
        row["two"].append(
            {
                "winner": other.user_attrs["label"],
                "shape": shape(other),
                "score": other.user_attrs["score"],
                "agree": agree(one, best, other),
                "trials": len(study.trials),
                "finished": sum(t.state.is_finished() for t in study.trials),
                "scored": sum(t.state in SCORED for t in study.trials),
                "queued": sum(
                    t.state in SCORED and "fixed_params" in t.system_attrs for t in study.trials
                ),
                "complete": len(complete_trials(study)),
                "duplicates": duplicates(study),
                "seconds": seconds,
            }
        )
    row["agree"] = all(r["agree"] for r in row["two"])
    return row


def markdown(rows: list[dict[str, Any]], load: float) -> str:
    runs = [r for row in rows for r in row["two"]]
    agreed = sum(r["agree"] for r in runs)
    alone = sum(row["alone_agree"] for row in rows)
    lines = [
        "# Two workers on one generator study against one worker",
        "",
        f"{N_LATENTS} latents of {Z_DIM} dimensions from the known 3-component mixture, "
        f"families {', '.join(FAMILIES)}, {rows[0]['n_trials']} trials: one worker with all "
        "of them (in memory) against two worker processes sharing one study on PostgreSQL "
        f"with half each, {len(rows[0]['two'])} times a seed "
        "(`benchmarks/bench_generator_workers.py`).",
        "",
        f"- the same winner within the interval (family, component count, scores tied by "
        f"`as_good_as`): **{agreed} of {len(runs)}** two-worker studies (pass: all"
        + ("" if agreed == len(runs) else "; **not met**")
        + ")",
        f"- the baseline, one worker against itself with TPE seeded {ANOTHER_TPE_SEED} "
        f"higher (same latents and splits): the same winner within the interval in "
        f"**{alone} of {len(rows)}** seeds",
        f"- trials that ran the settings of an earlier trial (two workers queueing one "
        f"sibling): {sum(r['duplicates'] for r in runs)} in all",
        f"- one worker: median {np.median([row['one_seconds'] for row in rows]):.1f} s; two "
        f"workers: median {np.median([r['seconds'] for r in runs]):.1f} s wall (process "
        f"start included; 2 shared cores, load average {load:.1f} at the start)",
        "",
        "| seed | one worker's winner | score | another TPE seed: agree | two workers' "
        "winner | score | agree | duplicate trials | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        alone = "yes" if row["alone_agree"] else f"**no**: {row['alone']} {row['alone_score']:.3f}"
        one = [str(row["seed"]), row["one"], f"{row['one_score']:.3f}", alone]
        for r in row["two"]:
            agreed = "yes" if r["agree"] else "**no**"
            cells = [*one, r["winner"], f"{r['score']:.3f}", agreed, str(r["duplicates"])]
            cells.append(f"{r['seconds']:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
            one = ["", "", "", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--trials", type=int, default=N_TRIALS)
    parser.add_argument("--storage", default="", help="a PostgreSQL URL (default: start one)")
    parser.add_argument(
        "--worker", nargs=4, metavar=("URL", "NAME", "SEED", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        url, name, seed, n = args.worker
        run_worker(url, name, int(seed), int(n))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        url, stop = storage_url(args.storage, Path(tmp))
        try:
            rows = []
            stamp = time.strftime("%Y%m%d%H%M%S")
            for seed in range(args.seeds):
                rows.append(
                    compare(url, f"workers-{stamp}-s{seed}", seed, args.trials, args.repeats)
                )
                print(json.dumps(rows[-1]), flush=True)
        finally:
            stop()
    text = markdown(rows, load)
    print(text)
    if (args.seeds, args.repeats, args.trials) == (SEEDS, REPEATS, N_TRIALS):
        RESULTS.write_text(text)
        figures = {"load_average": load, "rows": rows}
        RESULTS.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n")


def storage_url(given: str, root: Path) -> tuple[str, Any]:
    """``given``, or a PostgreSQL database of a stack started under ``root``; and how to
    stop that stack."""
    if given:
        return given, lambda: None
    from aelatent.ops import server_stack

    state = server_stack.start(root / "stack", workers=1)
    os.environ["PGPASSFILE"] = str(state.pgpass)  # the URL holds no password
    server_stack.create_databases(state, ("generator_workers",))
    return state.database_url("generator_workers"), lambda: server_stack.stop(
        root / "stack", wipe=True
    )


if __name__ == "__main__":
    main()
