"""The verdict as evaluate runs it: calibration, power, agreement with the decoder, speed.

    nice -n 10 .venv/bin/python benchmarks/bench_verdict.py     # ~22 min; --quick: ~5 min

Every figure comes from :mod:`aelatent.core.verdict` (``make_splits``, ``real_rows``,
``fit_samplers``, ``generator_row``), the samplers refitted on each split's fit half as
``jobs/evaluate/verdict.Verdict._fit`` does (windows by ``estimate_windows``, then the
registry's ``build_sampler``), evaluate's 3 splits and alpha = 0.05:

1. **Calibration**: the real-against-real row (fit half A against test half B) of many
   data sets; per test the false-positive rate of the split-aggregated p-value (twice the
   median of the splits', what evaluate reports) and of the first split's own p-value (the
   test's own calibration), and of the row verdict (Holm over the row's tests); each with
   the central 99% band of Binomial(R, 0.05) and whether it lies inside, below
   (conservative) or above. (a) Synthetic Gaussian latents with correlations (256
   components, 90% of the variance in 32 random directions, a mean off 0) at n = 40, 400,
   2,000 training latents (a test whose minimum, ``core.verdict.min_training_latents``, is
   above n is skipped, with the reason); (b) a trained model's latents: random subsets of
   ``MODEL_SUBSET`` of its training latents, with the cycle test (reference: the held-out
   images, as evaluate); the model's cycle of every latent is computed once and looked up.
2. **Power**: the rejection rate of each test and of the row against the ``gaussian``
   sampler (independent normals from the windows: no correlations), ``uniform`` at the
   radius-matched b = sqrt(3 mean |z|^2 / z_dim) (the data set's), and ``mvn`` at scale 1.2,
   on the synthetic latents at n = 40, 400, 2,000.
3. **Agreement with the decoder**: both demo models (100 epochs on the built-in faces, read
   from a snapshot of the MLflow store: SQLite's backup of the file opened read-only),
   every test including the cycle through the run's decoder and encoder: uniform at
   b = 1, 2.75, 3.3, gaussian at 0.5, 1, 2, mvn and gmm at 1, beside the reference rows.
4. **Speed**: the whole panel for one setting (one split: 2,000 generated against 2,000
   real vectors of 256), each test alone, and the k-NN test (k = 5) on the same vectors,
   interleaved in one run; the split (region fit) and a sampler's fit; the cost rule of a
   CelebA-size run (the job caps the verdict at ``MAX_LATENTS`` training latents).

The FD costs 1.2-1.5 s of CPU a call whatever n (2-3 s on the shared cores: 100
bootstrap and 100 permutation refits, each with O(d^3) factorisations of 256 x 256), over
half of the panel at 2,000 and nearly all of it below, so parts 1 and 2 run it on the
first ``fd`` data sets of each setting only (the table says how many); the other tests run
on all, the full-panel row verdict on those with the FD. Parts 1 to 3 run on one BLAS
thread (the tests do anyway; the splits' region fits and the sampler fits would otherwise
spin threads against the shared cores: ``speed`` times both). ``--quick`` (a smoke run)
and ``--parts`` (a subset) print and write nothing; the full run writes
``benchmarks/results/verdict.json`` and ``verdict.md`` and prints the Markdown;
``--render`` rebuilds the Markdown from the JSON.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import math
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from timing import median_seconds

from aelatent.core import verdict as core
from aelatent.core.cycle import CycleCheck
from aelatent.core.precision_recall import knn_scores, real_manifold
from aelatent.core.sampler_registry import build_sampler, spec_of
from aelatent.core.samplers import Sampler
from aelatent.core.threads import one_blas_thread
from aelatent.core.two_sample import TESTS as TWO_SAMPLE_TESTS
from aelatent.core.two_sample import TwoSampleResult, detectable_accuracy, min_vectors, run_test
from aelatent.core.verdict import Split, VerdictRow
from aelatent.core.windows import estimate_windows

RESULTS = Path(__file__).parent / "results"
COMMAND = "nice -n 10 .venv/bin/python benchmarks/bench_verdict.py"
PARTS = ("calibration", "power", "agreement", "speed")

Z_DIM = 256
TOP_DIRECTIONS = 32  # 90% of the variance lies in these (the demo: 32 of 256)
TOP_SHARE = 0.9
COMPONENT_VARIANCE = 3.0  # mean variance of a component (the demo's case I: sd 1.74)
MEAN_SD = 0.5  # spread of the components' means (the demo: mean |mean| 0.43)
MODEL_SEED = 20_240
ALPHA = core.ALPHA
BAND = 0.99  # the binomial band around ALPHA
SPLITS = core.DEFAULT_SPLITS
ESTIMATE = "auto"  # evaluate's default window estimator
PANEL = (*TWO_SAMPLE_TESTS, "ellipsoid")  # the tests without a decoder
NO_HELDOUT = np.empty((0, Z_DIM))

STORE = "sqlite:////tmp/demo/mlflow.db"
CASES = ("I", "II")  # the newest train run of each case in --store (a `make demo`)
MODEL_SUBSET = 300  # of the model's 360 training latents, per calibration data set
AGREEMENT = (  # (sampler, values of its axis)
    ("uniform", (1.0, 2.75, 3.3)),
    ("gaussian", (0.5, 1.0, 2.0)),
    ("mvn", (1.0,)),
    ("gmm", (1.0,)),
)
ALTERNATIVES = ("gaussian", "uniform", "mvn")  # part 2: scale 1, radius-matched b, 1.2
MVN_TOO_WIDE = 1.2
# lower is better except for the ellipsoid rate (the fraction inside the real region)
HIGHER_IS_BETTER = {"ellipsoid"}

# counts: n -> (data sets, of which with the FD); power: n -> (repetitions, with the FD)
FULL = {
    "calibration": {40: (200, 10), 400: (200, 10), 2000: (34, 5)},
    "model_calibration": (67, 7),
    "power": {40: (40, 3), 400: (20, 2), 2000: (5, 1)},
    "agreement_splits": SPLITS,
    "speed_repeats": 5,
}
QUICK = {
    "calibration": {40: (6, 1), 400: (4, 1), 2000: (2, 1)},
    "model_calibration": (4, 1),
    "power": {40: (2, 1), 400: (1, 1), 2000: (1, 0)},
    "agreement_splits": 1,
    "speed_repeats": 1,
}

STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# data, fits, and the per-split record


class Synthetic:
    """Gaussian latents with correlations: 90% of the variance in 32 random directions."""

    def __init__(self, seed: int = MODEL_SEED) -> None:
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.normal(size=(Z_DIM, Z_DIM)))
        top = np.geomspace(1.0, 0.1, TOP_DIRECTIONS)
        top = TOP_SHARE * top / top.sum()
        rest = np.full(Z_DIM - TOP_DIRECTIONS, (1 - TOP_SHARE) / (Z_DIM - TOP_DIRECTIONS))
        self.eigenvalues = np.concatenate([top, rest]) * Z_DIM * COMPONENT_VARIANCE
        self.mean = rng.normal(0.0, MEAN_SD, Z_DIM)
        self.factor = rotation * np.sqrt(self.eigenvalues)

    def draw(self, n: int, seed: Sequence[int]) -> np.ndarray:
        noise = np.random.default_rng(list(seed)).normal(size=(n, Z_DIM))
        out: np.ndarray = self.mean + noise @ self.factor.T
        return out

    def describe(self) -> dict[str, Any]:
        share = np.cumsum(self.eigenvalues) / self.eigenvalues.sum()
        return {
            "z_dim": Z_DIM,
            "variance_in_top_32": float(share[TOP_DIRECTIONS - 1]),
            "largest_eigenvalue_share": float(self.eigenvalues[0] / self.eigenvalues.sum()),
            "mean_component_variance": COMPONENT_VARIANCE,
            "mean_sd": MEAN_SD,
            "seed": MODEL_SEED,
        }


def fit_with(name: str) -> Callable[[np.ndarray, int], Sampler]:
    """The sampler fit of ``Verdict._fit``: windows by evaluate's estimator, then the
    registry's builder, on the split's fit half."""

    def fit(latents: np.ndarray, seed: int) -> Sampler:
        windows = estimate_windows(latents, ESTIMATE, seed=seed)
        return build_sampler(name, windows.mu, windows.hw, latents, seed=seed)

    return fit


def radius_matched_b(latents: np.ndarray) -> float:
    return math.sqrt(3.0 * float(np.mean(np.sum(latents**2, axis=1))) / latents.shape[1])


class Recorder:
    """Every per-split result the verdict computes while :meth:`active` (the verdict keeps
    only the split-aggregated p-value; a test's own calibration is in the per-split ones)."""

    def __init__(self) -> None:
        self.results: list[TwoSampleResult] = []

    @contextmanager
    def active(self) -> Iterator[Recorder]:
        run, ellipsoid, cycle = core.run_test, core._ellipsoid, CycleCheck.test
        mmd = core.mmd_test

        def run_recorded(name: str, real: Any, generated: Any, *, seed: int = 0) -> Any:
            return self._keep(run(name, real, generated, seed=seed))

        def mmd_recorded(real: Any, generated: Any, **options: Any) -> Any:
            return self._keep(mmd(real, generated, **options))

        def ellipsoid_recorded(region: Any, z: Any) -> Any:
            return self._keep(ellipsoid(region, z))

        def cycle_recorded(check: CycleCheck, z: Any) -> Any:
            return self._keep(cycle(check, z))

        core.run_test, core._ellipsoid = run_recorded, ellipsoid_recorded  # type: ignore[assignment]
        core.mmd_test = mmd_recorded  # type: ignore[assignment]
        CycleCheck.test = cycle_recorded  # type: ignore[method-assign]
        try:
            yield self
        finally:
            core.run_test, core._ellipsoid = run, ellipsoid  # type: ignore[assignment]
            core.mmd_test = mmd  # type: ignore[assignment]
            CycleCheck.test = cycle  # type: ignore[method-assign]

    def _keep(self, result: TwoSampleResult) -> TwoSampleResult:
        self.results.append(result)
        return result

    def take(self) -> dict[str, list[float]]:
        """The p-values per test in split order since the last take."""
        out: dict[str, list[float]] = {}
        for r in self.results:
            out.setdefault(r.test, []).append(r.p_value)
        self.results = []
        return out


def merged(rows: Sequence[VerdictRow]) -> VerdictRow:
    """One row from rows of the same splits and setting with disjoint tests (each test is
    computed alone with the split's seed, so this is the row one call with all would give)."""
    criteria = {t: c for row in rows for t, c in row.criteria.items()}
    ordered = {t: criteria[t] for t in core.VERDICT_TESTS if t in criteria}
    return dataclasses.replace(rows[0], criteria=ordered)


def holm(row: VerdictRow, tests: Sequence[str]) -> bool:
    """Whether Holm over ``tests`` of ``row`` rejects (the row verdict of a smaller panel)."""
    sub = dataclasses.replace(row, criteria={t: row.criteria[t] for t in tests})
    return bool(sub.rejected_by)


def scored(
    recorder: Recorder, score: Callable[[Sequence[str]], VerdictRow], tests: Sequence[str]
) -> tuple[VerdictRow, dict[str, list[float]]]:
    """``score(tests)`` run once without the FD and once for the FD alone (when asked),
    merged; with the per-split p-values."""
    parts = [[t for t in tests if t != "fd"], [t for t in tests if t == "fd"]]
    rows = [score(p) for p in parts if p]
    return merged(rows), recorder.take()


def band(count: int) -> tuple[int, int]:
    """The central 99% of Binomial(count, ALPHA), in counts."""
    lo, hi = stats.binom.interval(BAND, count, ALPHA)
    return int(lo), int(hi)


def rate_entry(rejections: int, count: int) -> dict[str, Any]:
    if count == 0:
        return {"rejections": 0, "count": 0, "rate": None, "band": None, "where": "not run"}
    lo, hi = band(count)
    where = "inside" if lo <= rejections <= hi else ("below" if rejections < lo else "above")
    return {
        "rejections": rejections,
        "count": count,
        "rate": rejections / count,
        "band": [lo / count, hi / count],
        "where": where,
    }


def allowed(tests: Sequence[str], n: int) -> tuple[list[str], dict[str, str]]:
    """The tests a verdict of ``n`` training latents runs, and why the others are skipped."""
    kept, skipped = [], {}
    for t in tests:
        need = core.min_training_latents([t])
        if n < need:
            per_set = min_vectors(t) if t in TWO_SAMPLE_TESTS else core.MIN_TEST_LATENTS
            skipped[t] = f"needs {need} training latents ({per_set} per half), has {n}"
        else:
            kept.append(t)
    return kept, skipped


# ---------------------------------------------------------------------------------------
# 1. calibration


def calibration_of(
    label: str,
    data_sets: int,
    with_fd: int,
    draw: Callable[[int], np.ndarray],
    tests: Sequence[str],
    cycle: CycleCheck | None = None,
) -> dict[str, Any]:
    """The real row of ``data_sets`` data sets ``draw(r)``; the FD on the first ``with_fd``."""
    recorder = Recorder()
    aggregated: dict[str, list[float]] = {t: [] for t in tests}
    first: dict[str, list[float]] = {t: [] for t in tests}
    every: dict[str, list[float]] = {t: [] for t in tests}
    rows_full, rows_no_fd = [], []
    no_fd = [t for t in tests if t != "fd"]
    with one_blas_thread(), recorder.active():
        for r in range(data_sets):
            x = draw(r)
            splits = core.make_splits(x, SPLITS, r)
            run = [t for t in tests if t != "fd" or r < with_fd]
            row, per_split = scored(
                recorder, lambda ts, s=splits: core.real_rows(s, NO_HELDOUT, ts, cycle)[0], run
            )
            for t, c in row.criteria.items():
                aggregated[t].append(c.p_value)
                first[t].append(per_split[t][0])
                every[t].extend(per_split[t])
            rows_no_fd.append(holm(row, no_fd))
            if "fd" in row.criteria or "fd" not in tests:
                rows_full.append(bool(row.rejected_by))
            if r % max(1, data_sets // 5) == 0:
                log(f"calibration {label}: data set {r + 1}/{data_sets}")
    out: dict[str, Any] = {"label": label, "data_sets": data_sets, "tests": {}}
    for t in tests:
        out["tests"][t] = {
            "aggregated": rate_entry(int(np.sum(np.array(aggregated[t]) < ALPHA)), len(first[t])),
            "first_split": rate_entry(int(np.sum(np.array(first[t]) < ALPHA)), len(first[t])),
            "every_split": rate_entry(int(np.sum(np.array(every[t]) < ALPHA)), len(every[t])),
            "median_p": float(np.median(aggregated[t])),
        }
    out["row"] = rate_entry(int(np.sum(rows_full)), len(rows_full))
    out["row_without_fd"] = rate_entry(int(np.sum(rows_no_fd)), len(rows_no_fd))
    return out


def calibration(counts: dict[str, Any], synthetic: Synthetic, model: Any) -> dict[str, Any]:
    settings = []
    for n, (data_sets, with_fd) in counts["calibration"].items():
        tests, skipped = allowed(PANEL, n)
        result = calibration_of(
            f"synthetic n={n}",
            data_sets,
            with_fd,
            lambda r, n=n: synthetic.draw(n, [MODEL_SEED, 1, n, r]),
            tests,
        )
        settings.append({"n": n, "per_half": n // 2, "skipped": skipped, **result})
    data_sets, with_fd = counts["model_calibration"]
    latents = model.latents

    def subset(r: int) -> np.ndarray:
        rows = np.random.default_rng([MODEL_SEED, 2, r]).choice(
            latents.shape[0], MODEL_SUBSET, replace=False
        )
        return latents[np.sort(rows)]

    tests = [*PANEL, "cycle"]
    result = calibration_of(
        f"case {model.case} training latents", data_sets, with_fd, subset, tests, model.lookup
    )
    settings.append(
        {
            "n": MODEL_SUBSET,
            "per_half": MODEL_SUBSET // 2,
            "skipped": {},
            "model": {"case": model.case, "run_id": model.run_id, "n_train": latents.shape[0]},
            "cycle_reference": model.lookup.reference_name,
            **result,
        }
    )
    minima = {t: core.min_training_latents([t]) for t in core.VERDICT_TESTS}
    return {"settings": settings, "min_training_latents": minima}


# ---------------------------------------------------------------------------------------
# 2. power


def power(counts: dict[str, Any], synthetic: Synthetic) -> dict[str, Any]:
    settings = []
    recorder = Recorder()
    for n, (reps, with_fd) in counts["power"].items():
        tests, skipped = allowed(PANEL, n)
        no_fd = [t for t in tests if t != "fd"]
        found: dict[str, dict[str, Any]] = {
            a: {"p": {t: [] for t in tests}, "stat": {t: [] for t in tests}, "row": []}
            for a in ALTERNATIVES
        }
        bs, detectable = [], math.nan
        with one_blas_thread(), recorder.active():
            for r in range(reps):
                x = synthetic.draw(n, [MODEL_SEED, 3, n, r])
                splits = core.make_splits(x, SPLITS, r)
                b = radius_matched_b(x)
                bs.append(b)
                values = {"gaussian": 1.0, "uniform": b, "mvn": MVN_TOO_WIDE}
                run = [t for t in tests if t != "fd" or r < with_fd]
                for name in ALTERNATIVES:
                    fitted = core.fit_samplers(fit_with(name), splits)
                    axis = spec_of(name).axis

                    def score(
                        ts: Sequence[str],
                        name: str = name,
                        axis: str = axis,
                        fitted: list[Sampler] = fitted,
                        splits: list[Split] = splits,
                        value: float = values[name],
                    ) -> VerdictRow:
                        return core.generator_row(name, axis, value, fitted, splits, ts)

                    row, _ = scored(recorder, score, run)
                    detectable = row.detectable_accuracy
                    for t, c in row.criteria.items():
                        found[name]["p"][t].append(c.p_value)
                        found[name]["stat"][t].append(c.statistic)
                    found[name].setdefault("row_without_fd", []).append(holm(row, no_fd))
                    if "fd" in row.criteria or "fd" not in tests:
                        found[name]["row"].append(bool(row.rejected_by))
                log(f"power n={n}: repetition {r + 1}/{reps}")
        rows = []
        for name in ALTERNATIVES:
            f = found[name]
            rows.append(
                {
                    "alternative": name,
                    "value": "radius-matched b" if name == "uniform" else values[name],
                    "row": _power_rate(f["row"]),
                    "row_without_fd": _power_rate(f["row_without_fd"]),
                    "tests": {
                        t: {
                            **_power_rate([p < ALPHA for p in f["p"][t]]),
                            "mean_statistic": float(np.mean(f["stat"][t])),
                            "median_p": float(np.median(f["p"][t])),
                        }
                        for t in tests
                        if f["p"][t]
                    },
                }
            )
        settings.append(
            {
                "n": n,
                "per_half": n // 2,
                "repetitions": reps,
                "with_fd": min(with_fd, reps),
                "skipped": skipped,
                "radius_matched_b": [float(min(bs)), float(max(bs))],
                "c2st_detectable_accuracy": detectable,
                "alternatives": rows,
            }
        )
    return {"settings": settings, "mvn_scale": MVN_TOO_WIDE}


def _power_rate(flags: Sequence[bool]) -> dict[str, Any]:
    count = len(flags)
    return {
        "rejections": int(np.sum(flags)),
        "count": count,
        "rate": float(np.mean(flags)) if count else None,
    }


# ---------------------------------------------------------------------------------------
# 3. agreement with the decoder


@dataclasses.dataclass
class Model:
    """A demo train run: its latents, the keras cycle, and the cycle check by lookup."""

    case: str
    run_id: str
    latents: np.ndarray
    heldout: np.ndarray
    cycle: Callable[[np.ndarray], np.ndarray]
    check: CycleCheck  # cycle_check of the keras cycle, as evaluate builds it
    lookup: CycleCheck  # the same, the cycle of training/held-out latents looked up
    cycle_seconds_2000: float


def load_model(case: str) -> Model:
    from aelatent.io.run_artifacts import load_autoencoder
    from aelatent.io.train_run import read_train_run
    from aelatent.jobs.evaluate.verdict import cycle_check, keras_cycle

    run = read_train_run(None, case, ESTIMATE, 0)
    run_id = run.run_id
    cycle = keras_cycle(load_autoencoder(run_id))
    latents = np.asarray(run.latents, dtype=np.float64)
    heldout = np.asarray(run.heldout, dtype=np.float64)
    known = np.vstack([latents, heldout])
    table = {row.tobytes(): out for row, out in zip(known, cycle(known), strict=True)}

    def looked_up(z: np.ndarray) -> np.ndarray:
        return np.stack([table[row.tobytes()] for row in np.asarray(z, dtype=np.float64)])

    z = np.random.default_rng(0).normal(size=(2000, latents.shape[1]))
    cycle(z[:256])
    started = time.perf_counter()
    cycle(z)
    seconds = time.perf_counter() - started
    return Model(
        run.case,
        run_id,
        latents,
        heldout,
        cycle,
        cycle_check(cycle, heldout, latents),
        cycle_check(looked_up, heldout, latents),
        seconds,
    )


def snapshot(uri: str) -> str:
    """A private copy of the SQLite store (SQLite's backup of the file opened read-only: a
    consistent copy while others write to it), so nothing here can write into the store."""
    if not uri.startswith("sqlite:///"):
        raise SystemExit(f"--store must be a sqlite:/// URI, got {uri!r}")
    source = sqlite3.connect(f"file:{uri.removeprefix('sqlite:///')}?mode=ro", uri=True)
    folder = tempfile.mkdtemp(prefix="bench-verdict-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = Path(folder) / "mlflow.db"
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{copy}"


def agreement_of(model: Model, n_splits: int) -> dict[str, Any]:
    tests = core.VERDICT_TESTS
    with one_blas_thread():
        splits = core.make_splits(model.latents, n_splits, 0)  # evaluate's default seed
        rows = core.real_rows(splits, model.heldout, tests, model.check)
        for name, values in AGREEMENT:
            fitted = core.fit_samplers(fit_with(name), splits)
            axis = spec_of(name).axis
            for v in values:
                rows.append(core.generator_row(name, axis, v, fitted, splits, tests, model.check))
            log(f"agreement case {model.case}: {name} done")
    generators = [r for r in rows if r.name not in (core.REAL, core.HELDOUT)]
    bad = [r for r in generators if r.name in ("uniform", "gaussian")]
    good = [r for r in generators if r.name in ("mvn", "gmm")]
    rejected = {r.label: {t: r.criteria[t].p_value < 0.01 for t in tests} for r in bad}
    ranking = {}
    for t in tests:
        sign = -1.0 if t in HIGHER_IS_BETTER else 1.0  # smaller key is better
        worst_good = max(good, key=lambda r: sign * r.criteria[t].statistic)
        best_bad = min(bad, key=lambda r: sign * r.criteria[t].statistic)
        losers = [
            r.label
            for r in bad
            if sign * r.criteria[t].statistic <= sign * worst_good.criteria[t].statistic
        ]
        ranking[t] = {
            "holds": not losers,
            "worst_of_mvn_gmm": [worst_good.label, worst_good.criteria[t].statistic],
            "best_of_uniform_gaussian": [best_bad.label, best_bad.criteria[t].statistic],
            "not_below": losers,
        }
    real = next(r for r in rows if r.name == core.REAL)
    return {
        "case": model.case,
        "run_id": model.run_id,
        "n_train": int(model.latents.shape[0]),
        "n_heldout": int(model.heldout.shape[0]),
        "n_splits": n_splits,
        "n_test": int(splits[0].test.shape[0]),
        "cycle_reference": model.check.reference_name,
        "cycle_seconds_2000_vectors": model.cycle_seconds_2000,
        "rows": [r.as_dict() for r in rows],
        "uniform_gaussian_rejected_p01": rejected,
        "all_rejected_p01_by_every_test": all(all(v.values()) for v in rejected.values()),
        "rejected_p01_by_some_test": all(any(v.values()) for v in rejected.values()),
        "ranking": ranking,
        "real_row_passes": real.verdict == "indistinguishable",
    }


# ---------------------------------------------------------------------------------------
# 4. speed


def speed(repeats: int, synthetic: Synthetic, cycle_seconds: float | None) -> dict[str, Any]:
    from aelatent.jobs.evaluate.request import DEFAULT_B, DEFAULT_SCALE
    from aelatent.jobs.evaluate.verdict import MAX_LATENTS

    x = synthetic.draw(MAX_LATENTS, [MODEL_SEED, 4])
    split_default = median_seconds(lambda: core.make_splits(x, 1, 0), repeats)
    with one_blas_thread():
        split_one = median_seconds(lambda: core.make_splits(x, 1, 0), repeats)
    splits = core.make_splits(x, 1, 0)
    fit_default = median_seconds(lambda: core.fit_samplers(fit_with("mvn"), splits), repeats)
    with one_blas_thread():
        fit_one = median_seconds(lambda: core.fit_samplers(fit_with("mvn"), splits), repeats)
    fitted = core.fit_samplers(fit_with("mvn"), splits)
    split = splits[0]
    generated = fitted[0].sample(split.test.shape[0], np.random.default_rng([split.seed, 11]))
    generated = generated.astype(np.float64)

    def panel() -> VerdictRow:
        return core.generator_row("mvn", "scale", 1.0, fitted, splits, PANEL)

    def knn() -> Any:
        return knn_scores(real_manifold(split.test, 5, max_vectors=None), generated)

    works: dict[str, Callable[[], Any]] = {"panel": panel, "knn": knn}
    for t in TWO_SAMPLE_TESTS:
        works[t] = lambda t=t: run_test(t, split.test, generated, seed=split.seed)
    works["ellipsoid"] = lambda: split.region.rate(generated)
    for work in works.values():  # warm-up: imports, caches
        work()
    wall: dict[str, list[float]] = {k: [] for k in works}
    cpu: dict[str, list[float]] = {k: [] for k in works}
    for _ in range(repeats):  # interleaved: the load drifts alike for all
        for key, work in works.items():
            started = time.process_time()
            wall[key].append(median_seconds(work, 1, warm_up=False))
            cpu[key].append(time.process_time() - started)
    wall_s = {k: float(np.median(v)) for k, v in wall.items()}
    cpu_s = {k: float(np.median(v)) for k, v in cpu.items()}
    settings = len(DEFAULT_B.split(",")) + 3 * len(DEFAULT_SCALE.split(","))
    rows = settings + 2  # and the two reference rows
    per_set = split.test.shape[0]
    c2st_predictions = int(0.8 * 2 * min(per_set, 1000))
    rule = {
        "max_latents": MAX_LATENTS,
        "per_half": MAX_LATENTS // 2,
        "default_settings": settings,
        "rows_per_run": rows,
        "splits": SPLITS,
        "panel_s": wall_s["panel"],
        "verdict_s_without_cycle": SPLITS * (rows * wall_s["panel"] + split_one + 4 * fit_one),
        "verdict_cpu_s_without_cycle": SPLITS * (rows * cpu_s["panel"] + split_one + 4 * fit_one),
        "cycle_s_2000_vectors_case_I": cycle_seconds,
        "cycle_s_per_run": None if cycle_seconds is None else SPLITS * rows * cycle_seconds,
        "c2st_predictions": c2st_predictions,
        "c2st_detectable_accuracy": detectable_accuracy(c2st_predictions),
        "c2st_detectable_accuracy_uncapped_200000": detectable_accuracy(int(0.8 * 200_000)),
    }
    return {
        "n_real": int(split.test.shape[0]),
        "n_generated": int(generated.shape[0]),
        "z_dim": Z_DIM,
        "repeats": repeats,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "panel_over_knn": wall_s["panel"] / wall_s["knn"],
        "panel_over_knn_cpu": cpu_s["panel"] / cpu_s["knn"],
        "split_region_s": {"default_threads": split_default, "one_thread": split_one},
        "mvn_fit_s": {"default_threads": fit_default, "one_thread": fit_one},
        "rule": rule,
    }


# ---------------------------------------------------------------------------------------
# the Markdown


def _rate(e: dict[str, Any]) -> str:
    if e["count"] == 0:
        return "not run"
    lo, hi = e["band"]
    return f"{e['rejections']}/{e['count']} = {e['rate']:.3f} [{lo:.3f}, {hi:.3f}] {e['where']}"


def _p(p: float) -> str:
    return f"{p:.2g}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# bench_verdict",
        "",
        f"`{result['command']}`; load average {result['load_average_before_after']} "
        f"(start, end); {result['run_s'] / 60:.1f} min.",
    ]
    if "calibration" in result:
        lines += [
            "",
            "## Calibration: false-positive rate of the real-against-real row at alpha = 0.05",
            "",
            "Rejections / data sets = rate [central 99% band of Binomial(R, 0.05)] where. "
            "Aggregated: evaluate's p (twice the median of 3 splits); first split: the test's "
            "own p on one split.",
            "",
            "| setting | per half | test | aggregated | first split |",
            "|---|---:|---|---|---|",
        ]
        for s in result["calibration"]["settings"]:
            for t, e in s["tests"].items():
                lines.append(
                    f"| {s['label']} | {s['per_half']} | {t} | {_rate(e['aggregated'])} | "
                    f"{_rate(e['first_split'])} |"
                )
            lines.append(
                f"| {s['label']} | {s['per_half']} | **row (Holm)** | {_rate(s['row'])} | |"
            )
            lines.append(
                f"| {s['label']} | {s['per_half']} | row without fd | "
                f"{_rate(s['row_without_fd'])} | |"
            )
            for t, why in s["skipped"].items():
                lines.append(f"| {s['label']} | {s['per_half']} | {t} | skipped: {why} | |")
        minima = result["calibration"]["min_training_latents"]
        lines += [
            "",
            "Fewest training latents per test (`min_training_latents`): "
            + ", ".join(f"{t} {m}" for t, m in minima.items()),
        ]
    if "power" in result:
        tests = list(PANEL)
        lines += [
            "",
            "## Power: rejection rate at alpha = 0.05",
            "",
            "Per test: the rate (the mean statistic: C2ST accuracy, MMD^2, FD, ellipsoid rate).",
            "",
            "| n (per half) | alternative | reps (with fd) | row (Holm) | row w/o fd | "
            + " | ".join(tests)
            + " | detectable C2ST acc. |",
            "|---|---|---|---|---|" + "---|" * len(tests) + "---|",
        ]
        for s in result["power"]["settings"]:
            for a in s["alternatives"]:
                cells = []
                for t in tests:
                    e = a["tests"].get(t)
                    cells.append(
                        "skipped" if e is None else f"{e['rate']:.2f} ({e['mean_statistic']:.3g})"
                    )
                row = a["row"]
                row_text = "-" if row["count"] == 0 else f"{row['rate']:.2f} of {row['count']}"
                name = a["alternative"]
                if name == "uniform":
                    lo, hi = s["radius_matched_b"]
                    name = f"uniform b = {lo:.2f}-{hi:.2f}"
                elif name == "mvn":
                    name = f"mvn x{result['power']['mvn_scale']:g}"
                lines.append(
                    f"| {s['n']} ({s['per_half']}) | {name} | "
                    f"{s['repetitions']} ({s['with_fd']}) | "
                    f"{row_text} | {a['row_without_fd']['rate']:.2f} | "
                    + " | ".join(cells)
                    + f" | {s['c2st_detectable_accuracy']:.3f} |"
                )
    if "agreement" in result:
        lines += ["", "## Agreement with the decoder (statistic, p)", ""]
        for case in result["agreement"]["cases"]:
            tests = list(case["rows"][0]["criteria"])
            lines += [
                f"### case {case['case']} ({case['n_test']} per set, {case['n_splits']} splits, "
                f"cycle reference {case['cycle_reference']})",
                "",
                "| row | verdict | " + " | ".join(tests) + " |",
                "|---|---|" + "---|" * len(tests),
            ]
            for row in case["rows"]:
                cells = []
                for t in tests:
                    c = row["criteria"].get(t)
                    cells.append("" if c is None else f"{c['statistic']:.3g}, {_p(c['p_value'])}")
                lines.append(f"| {row['label']} | {row['verdict']} | " + " | ".join(cells) + " |")
            misses = {
                label: [t for t, ok in flags.items() if not ok]
                for label, flags in case["uniform_gaussian_rejected_p01"].items()
            }
            misses = {k: v for k, v in misses.items() if v}
            rank_fail = {t: r["not_below"] for t, r in case["ranking"].items() if not r["holds"]}
            lines += [
                "",
                f"- real row passes: {case['real_row_passes']}",
                "- uniform and gaussian rejected at p < 0.01 by every test: "
                f"{case['all_rejected_p01_by_every_test']}"
                + (f" (not by: {misses})" if misses else ""),
                "- mvn and gmm rank above every uniform and gaussian row by every criterion: "
                f"{not rank_fail}" + (f" (fails: {rank_fail})" if rank_fail else ""),
                "",
            ]
        lines.append(f"Read from {result['agreement']['store']} (a read-only snapshot).")
    if "speed" in result:
        s = result["speed"]
        w, c = s["wall_s"], s["cpu_s"]
        r = s["rule"]
        lines += [
            "",
            f"## Speed ({s['n_real']} x {s['z_dim']} against {s['n_generated']} x {s['z_dim']}, "
            f"median of {s['repeats']}, wall / CPU)",
            "",
            "| figure | wall s | CPU s |",
            "|---|---:|---:|",
        ]
        for key in ("panel", *TWO_SAMPLE_TESTS, "ellipsoid", "knn"):
            lines.append(f"| {key} | {w[key]:.3f} | {c[key]:.3f} |")
        lines += [
            f"| panel / k-NN | {s['panel_over_knn']:.1f}x | {s['panel_over_knn_cpu']:.1f}x |",
            f"| split + region of {r['max_latents']} (default threads / one thread) | "
            f"{s['split_region_s']['default_threads']:.3f} / "
            f"{s['split_region_s']['one_thread']:.3f} | |",
            f"| mvn fit on the fit half (default threads / one thread) | "
            f"{s['mvn_fit_s']['default_threads']:.3f} / {s['mvn_fit_s']['one_thread']:.3f} | |",
            "",
            f"Cost rule: the verdict uses at most {r['max_latents']} training latents "
            f"({r['per_half']} per half) whatever N; a default run scores "
            f"{r['rows_per_run']} rows x "
            f"{r['splits']} splits: {r['verdict_s_without_cycle']:.0f} s "
            f"({r['verdict_cpu_s_without_cycle']:.0f} s of CPU) without the cycle"
            + "".join(
                f"; + {r['splits'] * r['rows_per_run'] * c['cycle_seconds_2000_vectors']:.0f} s "
                f"of cycle for case {c['case']}'s network ("
                f"{c['cycle_seconds_2000_vectors']:.1f} s per {r['per_half']} vectors, CPU)"
                for c in result.get("agreement", {}).get("cases", [])
            )
            + f"; C2ST detectable accuracy {r['c2st_detectable_accuracy']:.3f} "
            f"({r['c2st_predictions']} predictions; "
            f"{r['c2st_detectable_accuracy_uncapped_200000']:.4f} if all 200,000 were used).",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; prints, writes nothing")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}"
    )
    parser.add_argument("--store", default=STORE, help="the MLflow store of the demo runs")
    parser.add_argument("--render", action="store_true", help="verdict.md from verdict.json")
    args = parser.parse_args()
    if args.render:
        result = json.loads((RESULTS / "verdict.json").read_text())
        write(result)
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; expected {', '.join(PARTS)}")
    counts = QUICK if args.quick else FULL
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    load_before = os.getloadavg()[0]
    synthetic = Synthetic()
    result: dict[str, Any] = {
        "command": COMMAND + (" --quick" * args.quick),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "synthetic": synthetic.describe(),
        "counts": {
            k: {str(n): v for n, v in c.items()} if isinstance(c, dict) else c
            for k, c in counts.items()
        },
    }
    models: dict[str, Model] = {}
    if {"calibration", "agreement"} & set(parts):
        os.environ["MLFLOW_TRACKING_URI"] = snapshot(args.store)
        for case in CASES if "agreement" in parts else ("I",):
            models[case] = load_model(case)
            log(f"case {case} loaded")
    if "calibration" in parts:
        result["calibration"] = calibration(counts, synthetic, models["I"])
    if "power" in parts:
        result["power"] = power(counts, synthetic)
    if "agreement" in parts:
        cases = [agreement_of(models[c], counts["agreement_splits"]) for c in CASES]
        result["agreement"] = {"cases": cases, "store": args.store}
    if "speed" in parts:
        cycle_s = models["I"].cycle_seconds_2000 if "I" in models else None
        result["speed"] = speed(counts["speed_repeats"], synthetic, cycle_s)
        log("speed done")
    result["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["run_s"] = round(time.perf_counter() - STARTED, 1)
    if args.quick or parts != list(PARTS):
        print(markdown(result))
    else:
        write(result)


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "verdict.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (RESULTS / "verdict.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
