"""Benchmark of the two-sample tests: cost, calibration under H0, power, references.

    .venv/bin/python benchmarks/bench_two_sample.py [--null-reps 200] [--power-reps 100]
        [--scheme-reps 500] [--sizes 40,400,2000] [--repeats 5] [--quick] [--timing-only]

Latents of 256 components; the "real" distribution a Gaussian whose variance is 90% in 32 of
the 256 directions (random ones), like an autoencoder's latents:

- ``timing``, at the start and again at the end of the run (the load changes): the whole
  panel (``TESTS`` with their defaults) on 2,000 x 256 against 2,000 x 256, the median of
  ``--repeats`` after a warm-up (``timing.median_seconds``), each test's own time, and the
  k-NN precision/recall of ``aelatent.core.precision_recall`` (real radii + scores) on the
  same vectors, for the ratio; the panel again at CelebA's 200,000 x 256 (float32);
- ``references``: the FD formula against the ``scipy.linalg.sqrtm`` one of FID
  implementations, and the MMD^2 of the split matrix against the O(n^2) formula written out
  with ``cdist``, on the capped sets (difference and time);
- ``calibration``: per n in ``--sizes`` and per null (the correlated Gaussian; the same
  covariance with exponential, skewed coordinates), ``--null-reps`` pairs of independent
  draws; each test's rejections at 0.05 against the two-sided 99% binomial band around 5%;
- ``cv_schemes``: the C2STs as first written (pooled 5-fold cross-validated predictions,
  all in one binomial test) beside the module's forward chaining, on ``--scheme-reps``
  Gaussian null pairs at each n <= 400: rejections at 0.05 and the variance of the accuracy
  over the binomial variance (which the binomial test assumes to be 1);
- ``power``: per n, ``--power-reps`` draws of each alternative against fresh real draws:
  (a) ``independent``: the real marginals without the correlations; (b) ``uniform`` in
  [-b, b] per component, b so that the mean radius equals the real one; (c) ``wide``: the
  real Gaussian 20% wider. The rejection rate at 0.05 and the mean statistic per test.

Writes ``benchmarks/results/two_sample.json`` and ``.md`` and prints them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import linalg, stats
from timing import median_seconds

import aelatent.core.precision_recall as pr
import aelatent.core.two_sample as ts
from aelatent.core.threads import one_blas_thread

Z_DIM = 256
MAIN_DIRECTIONS = 32  # carry 90% of the variance
PANEL_N = 2000
CELEBA_N = 200_000
ALPHA = 0.05
RESULTS = Path(__file__).resolve().parent / "results"

Draw = Callable[[int, np.random.Generator], np.ndarray]


def covariance_root(d: int = Z_DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    k = MAIN_DIRECTIONS
    variances = np.r_[np.full(k, 0.9 * d / k), np.full(d - k, 0.1 * d / (d - k))]
    return basis * np.sqrt(variances)


ROOT = covariance_root()
MARGINAL_SD = np.sqrt(np.sum(ROOT**2, axis=1))


def gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, Z_DIM)) @ ROOT.T


def skewed(n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.exponential(size=(n, Z_DIM)) - 1.0) @ ROOT.T


def independent(n: int, rng: np.random.Generator) -> np.ndarray:
    return MARGINAL_SD * rng.standard_normal((n, Z_DIM))


def wide(n: int, rng: np.random.Generator) -> np.ndarray:
    return 1.2 * gaussian(n, rng)


def uniform_half_width() -> float:
    """b with E|u| = E|x| for u uniform in [-b, b]^256 and x real (Monte Carlo, 100,000 each:
    relative error ~1e-4)."""
    rng = np.random.default_rng(99)
    real_radius = np.mean(np.linalg.norm(gaussian(100_000, rng), axis=1))
    unit_radius = np.mean(np.linalg.norm(rng.uniform(-1, 1, (100_000, Z_DIM)), axis=1))
    return float(real_radius / unit_radius)


B_UNIFORM = uniform_half_width()


def uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-B_UNIFORM, B_UNIFORM, (n, Z_DIM))


NULLS: dict[str, Draw] = {"gaussian": gaussian, "skewed": skewed}
ALTERNATIVES: dict[str, Draw] = {"independent": independent, "uniform": uniform, "wide": wide}


def panel(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, ts.TwoSampleResult]:
    return {name: ts.run_test(name, x, y, seed=seed) for name in ts.TESTS}


def pooled_cv(x: np.ndarray, y: np.ndarray, classifier: str, seed: int) -> tuple[float, float]:
    """The C2ST as first written: 5-fold stratified cross-validation, every vector predicted
    once, all 2n predictions in one exact binomial test: (accuracy, p-value)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n = min(x.shape[0], y.shape[0], ts.C2ST_MAX_PER_SET)
    rng = np.random.default_rng(seed)
    x, y = pr.subsample(x, n, rng), pr.subsample(y, n, rng)
    data, labels = np.vstack([x, y]), np.repeat([0, 1], n)
    model = ts._classifier(classifier, min(Z_DIM, (2 * n - math.ceil(2 * n / 5)) // 2), seed)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    with one_blas_thread():
        scores = cross_val_predict(model, data, labels, cv=cv, method="predict_proba")[:, 1]
    correct = int(np.count_nonzero((scores > 0.5) == labels))
    p_value = stats.binomtest(correct, 2 * n, 0.5, alternative="greater").pvalue
    return correct / (2 * n), float(p_value)


def cv_schemes(sizes: list[int], reps: int) -> list[dict]:
    """Pooled cross-validation against forward chaining under H0 (the Gaussian null): the
    rejections at 0.05 and the accuracy's variance over the binomial one, same pairs."""
    rows = []
    for n in sizes:
        rng = np.random.default_rng(3000 + n)
        accuracy: dict[str, list[float]] = {}
        rejections: dict[str, int] = {}
        started = time.perf_counter()
        for seed in range(reps):
            x, y = gaussian(n, rng), gaussian(n, rng)
            for classifier in ts.CLASSIFIERS:
                forward = ts.c2st(x, y, classifier=classifier, seed=seed)
                pooled = pooled_cv(x, y, classifier, seed)
                for scheme, (a, p) in (
                    ("forward", (forward.statistic, forward.p_value)),
                    ("pooled", pooled),
                ):
                    key = f"{classifier}_{scheme}"
                    accuracy.setdefault(key, []).append(a)
                    rejections[key] = rejections.get(key, 0) + (p <= ALPHA)
        m = min(n, ts.C2ST_MAX_PER_SET)
        predictions = {"forward": _predictions(n), "pooled": 2 * m}
        row = {
            "n": n,
            "reps": reps,
            "band": band(reps),
            "rejections": rejections,
            "mean_accuracy": {k: float(np.mean(v)) for k, v in accuracy.items()},
            "variance_ratio": {
                k: float(np.var(v, ddof=1) / (0.25 / predictions[k.rsplit("_", 1)[1]]))
                for k, v in accuracy.items()
            },
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def band(reps: int) -> tuple[int, int]:
    """Two-sided 99% binomial band of the rejections of a level-0.05 test in ``reps``."""
    return int(stats.binom.ppf(0.005, reps, ALPHA)), int(stats.binom.isf(0.005, reps, ALPHA))


def timing(repeats: int) -> dict[str, float]:
    load = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    x, y = gaussian(PANEL_N, rng), wide(PANEL_N, rng)
    result = {
        name: median_seconds(lambda name=name: ts.run_test(name, x, y), repeats)
        for name in ts.TESTS
    }
    result["panel_s"] = median_seconds(lambda: panel(x, y, 0), repeats)

    def knn() -> pr.KnnScores:
        return pr.knn_scores(pr.real_manifold(x, pr.DEFAULT_K), y)

    result["knn_s"] = median_seconds(knn, repeats)
    result["panel_over_knn"] = result["panel_s"] / result["knn_s"]
    # CelebA's size as the latents come (float32): the caps make it cost the same
    big_x = gaussian(CELEBA_N, rng).astype(np.float32)
    big_y = wide(CELEBA_N, rng).astype(np.float32)
    result["panel_celeba_s"] = median_seconds(lambda: panel(big_x, big_y, 0), repeats)
    result["load"] = load
    return result


def references() -> dict[str, float]:
    """The FD and MMD computations against straightforward references, on the capped sets."""
    rng = np.random.default_rng(2)
    x, y = gaussian(ts.FD_MAX_PER_SET, rng), wide(ts.FD_MAX_PER_SET, rng)
    m1, s1 = x.mean(0), np.cov(x, rowvar=False)
    m2, s2 = y.mean(0), np.cov(y, rowvar=False)

    def fid_formula() -> float:
        root = linalg.sqrtm(s1 @ s2)
        return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)

    with one_blas_thread():  # both on one thread, as the module runs
        ours = ts.frechet_distance(m1, s1, m2, s2)
        reference = fid_formula()
        ours_s = median_seconds(lambda: ts.frechet_distance(m1, s1, m2, s2), 5)
        sqrtm_s = median_seconds(fid_formula, 5)
    x, y = gaussian(ts.MMD_MAX_PER_SET, rng), wide(ts.MMD_MAX_PER_SET, rng)
    result = ts.mmd_test(x, y)
    with one_blas_thread():
        direct = ts.mmd2_unbiased(x, y, result.extra["bandwidth"])
    return {
        "fd": ours,
        "fd_sqrtm": reference,
        "fd_relative_difference": abs(ours - reference) / reference,
        "fd_s": ours_s,
        "fd_sqrtm_s": sqrtm_s,
        "mmd2": result.statistic,
        "mmd2_direct": direct,
        "mmd2_abs_difference": abs(result.statistic - direct),
        "mmd2_null_sd": result.extra["null_sd"],
    }


def repeat_panel(n: int, reps: int, seed: int, real: Draw, generated: Draw) -> dict:
    """``reps`` pairs of n vectors (a real draw, then a generated one, from one generator
    seeded by ``seed``) through the panel: rejections at ALPHA and the statistics per test."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(ts.TESTS, 0)
    statistics: dict[str, list[float]] = {name: [] for name in ts.TESTS}
    started = time.perf_counter()
    for rep in range(reps):
        x, y = real(n, rng), generated(n, rng)
        for name, result in panel(x, y, rep).items():
            counts[name] += result.p_value <= ALPHA
            statistics[name].append(result.statistic)
    return {
        "n": n,
        "reps": reps,
        "rejections": counts,
        "mean_statistic": {k: float(np.mean(v)) for k, v in statistics.items()},
        "sd_statistic": {k: float(np.std(v, ddof=1)) for k, v in statistics.items()},
        "seconds": time.perf_counter() - started,
    }


def calibration(sizes: list[int], reps: int) -> list[dict]:
    rows = []
    for n in sizes:
        for null_name, draw in NULLS.items():
            row = {"null": null_name, "band": band(reps)}
            row.update(repeat_panel(n, reps, 1000 + n, draw, draw))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def power(sizes: list[int], reps: int) -> list[dict]:
    rows = []
    for n in sizes:
        for alternative, draw in ALTERNATIVES.items():
            repetitions = reps if n < PANEL_N else max(1, reps // 2)
            row = {"alternative": alternative}
            row.update(repeat_panel(n, repetitions, 2000 + n, gaussian, draw))
            row["power"] = {k: v / repetitions for k, v in row.pop("rejections").items()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-reps", type=int, default=200)
    parser.add_argument("--power-reps", type=int, default=100, help="halved at n = 2,000")
    parser.add_argument("--scheme-reps", type=int, default=500, help="pooled CV vs forward")
    parser.add_argument("--sizes", default="40,400,2000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 / 10 reps")
    parser.add_argument(
        "--timing-only", action="store_true", help="print the panel's times; write nothing"
    )
    args = parser.parse_args()
    if args.timing_only:
        print(json.dumps(timing(args.repeats), indent=2))
        return
    if args.quick:
        args.null_reps, args.power_reps, args.scheme_reps, args.repeats = 20, 10, 20, 3
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at start",
        "z_dim": Z_DIM,
        "caps": {
            "c2st": ts.C2ST_MAX_PER_SET,
            "mmd": ts.MMD_MAX_PER_SET,
            "fd": ts.FD_MAX_PER_SET,
            "mmd_permutations": ts.MMD_PERMUTATIONS,
            "fd_resamples": ts.FD_RESAMPLES,
        },
        "uniform_b": B_UNIFORM,
        "timing": [timing(args.repeats)],
    }
    print(json.dumps(result, indent=2), flush=True)
    result["references"] = references()
    result["detectable_accuracy"] = {str(n): ts.detectable_accuracy(_predictions(n)) for n in sizes}
    result["calibration"] = calibration(sizes, args.null_reps)
    result["cv_schemes"] = cv_schemes([n for n in sizes if n <= 400], args.scheme_reps)
    result["power"] = power(sizes, args.power_reps)
    result["timing"].append(timing(args.repeats))  # again: the load changes over the run
    result["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "two_sample.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "two_sample.md").write_text(markdown(result))
    print(json.dumps(result, indent=2))
    print(markdown(result))


def _predictions(n: int) -> int:
    """The C2STs' number of predictions at n vectors a set (default folds and cap)."""
    n = min(n, ts.C2ST_MAX_PER_SET)
    parts = np.array_split(np.arange(n), 5)
    return 2 * sum(p.size for p in parts[1:])


def markdown(r: dict) -> str:
    ref, caps = r["references"], r["caps"]
    lines = [
        "# Two-sample tests: cost, calibration, power",
        "",
        f"`benchmarks/bench_two_sample.py`; {r['machine']}; {r['seconds'] / 60:.0f} min. "
        f"Caps: C2ST {caps['c2st']:,}, MMD {caps['mmd']:,} ({caps['mmd_permutations']} "
        f"permutations), FD {caps['fd']:,} ({caps['fd_resamples']} resamples and permutations) "
        "vectors a set. Times at the start and the end of the run (load average then).",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for t in r["timing"]:
        lines += [
            f"| panel (4 tests), 2,000 x 256 against 2,000 x 256, median (load {t['load']:.1f}) "
            f"| {t['panel_s']:.2f} s | <= 3 s |",
            f"| the same at 200,000 x 256 float32 against 200,000 x 256 "
            f"| {t.get('panel_celeba_s', math.nan):.2f} s | |",
            "| c2st_linear / c2st_nonlinear / mmd / fd | "
            + " / ".join(f"{t[name]:.2f}" for name in ts.TESTS)
            + " s | |",
            f"| k-NN precision/recall (radii + scores), same vectors | {t['knn_s']:.2f} s | |",
            f"| panel / k-NN | {t['panel_over_knn']:.1f}x | |",
        ]
    lines += [
        f"| FD against the sqrtm formula, 1,000 x 256 (relative difference; time ours / sqrtm) | "
        f"{ref['fd_relative_difference']:.1e}; {ref['fd_s'] * 1e3:.0f} / "
        f"{ref['fd_sqrtm_s'] * 1e3:.0f} ms | 1e-9 |",
        f"| MMD^2 against the direct O(n^2) formula (difference; null sd) | "
        f"{ref['mmd2_abs_difference']:.1e}; {ref['mmd2_null_sd']:.1e} | 1e-12 |",
        "",
        "Calibration: rejections at 0.05 of real-against-real pairs (two-sided 99% binomial "
        "band around 5% in brackets).",
        "",
        "| n | null | reps | band | "
        + " | ".join(ts.TESTS)
        + " | C2ST accuracy variance / binomial (linear, nonlinear) |",
        "|---:|---|---:|---|" + "---:|" * len(ts.TESTS) + "---|",
    ]
    for row in r["calibration"]:
        lo, hi = row["band"]
        cells = [f"{row['rejections'][name] / row['reps']:.1%}" for name in ts.TESTS]
        lines.append(
            f"| {row['n']:,} | {row['null']} | {row['reps']} | "
            f"[{lo / row['reps']:.1%}, {hi / row['reps']:.1%}] | "
            + " | ".join(cells)
            + " | "
            + ", ".join(
                f"{row['sd_statistic'][name] ** 2 / (0.25 / _predictions(row['n'])):.2f}"
                for name in ("c2st_linear", "c2st_nonlinear")
            )
            + " |"
        )
    lines += [
        "",
        "C2ST under H0 (Gaussian null), the same pairs: pooled 5-fold cross-validation against "
        "forward chaining (the module's); rejections at 0.05, accuracy variance / binomial.",
        "",
        "| n | reps | band | scheme | linear | nonlinear |",
        "|---:|---:|---|---|---|---|",
    ]
    for row in r["cv_schemes"]:
        lo, hi = row["band"]
        for scheme in ("pooled", "forward"):
            cells = [
                f"{row['rejections'][f'{c}_{scheme}'] / row['reps']:.1%}, "
                f"{row['variance_ratio'][f'{c}_{scheme}']:.2f}"
                for c in ts.CLASSIFIERS
            ]
            lines.append(
                f"| {row['n']:,} | {row['reps']} | [{lo / row['reps']:.1%}, "
                f"{hi / row['reps']:.1%}] | {scheme} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Power: rejection rate at 0.05 (mean statistic: C2ST accuracy, MMD^2, FD).",
        "",
        "| n | alternative | reps | " + " | ".join(ts.TESTS) + " |",
        "|---:|---|---:|" + "---|" * len(ts.TESTS),
    ]
    for row in r["power"]:
        cells = [
            f"{row['power'][name]:.2f} ({_number(row['mean_statistic'][name])})"
            for name in ts.TESTS
        ]
        lines.append(
            f"| {row['n']:,} | {row['alternative']} | {row['reps']} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "C2ST accuracy detected with 80% power (one-sided exact binomial, 0.05): "
        + ", ".join(f"n = {int(n):,}: {a:.3f}" for n, a in r["detectable_accuracy"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _number(x: float) -> str:
    return f"{x:.3f}" if abs(x) >= 0.01 else f"{x:.1e}"


if __name__ == "__main__":
    main()
