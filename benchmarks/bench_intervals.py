"""Intervals on any component shape: significant counts, log10 P(hit), k-NN coverage.

    .venv/bin/python benchmarks/bench_intervals.py [--quick]

The checks of issue 26 beside the windows' own coverage (benchmarks/bench_windows.py):

- **Family-wise false positives of the significant counts** (``core/significance.py``) on
  nulls: every one of 256 components exactly on the level (centre 0.25, width 1.5 in the
  estimator's own estimand), so any count > 0 is a false positive. Shapes: Gaussian,
  skew-normal (4), Student t (5 df), 0.7 N(0, 1) + 0.3 N(2, 1); n = 400 and 2,000. The
  default (``central``, exact order-statistic bounds) against the 5% it promises; for
  contrast the same windows with normal Bonferroni intervals (estimate +- z se) and ``auto``
  (mode and FWHM on the level). Pass: the one-sided 95% Clopper-Pearson lower bound of the
  rate is <= 5% (the rate is not significantly above 5%).
- **log10 P(hit) of the uniform generator** (exact given the windows) at (b, k) = (3, 1),
  (6, 2), (1.5, 1.5), (3, 2), 256 components of each shape with central width 1.2 and
  centres evenly over [-0.8, 0.8], default windows from n = 400 (and 2,000) vectors: coverage
  of ``propagate_log10``'s interval around the bias-corrected value, and of the plain
  value +- 1.96 se for contrast. Pass at (3, 1) and (6, 2), Gaussian and t5, n = 400:
  coverage >= 93%.
- **The k-NN coverage interval** (``core/precision_recall.py``) when both the real and the
  generated set are random: per configuration, R independent (real, generated) pairs; the
  truth is the mean coverage over them. The split-half interval against Wilson's. Pass:
  coverage >= 92%.

Writes ``benchmarks/results/intervals.json`` and ``intervals.md`` and prints the Markdown;
``--quick`` (fewer repetitions) only prints.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from scipy import optimize, stats
from timing import run_record, write_results
from tqdm import tqdm

from aelatent.core.precision_recall import knn_scores, real_manifold
from aelatent.core.samplers import UniformSampler
from aelatent.core.significance import normal_bounds, scale_free_observations, simultaneous_z
from aelatent.core.windows import (
    CENTRAL_TAIL,
    DEFAULT_ESTIMATOR,
    Z95,
    estimate_windows,
    propagate_log10,
)

Z_DIM = 256
MU_LEVEL, HW_LEVEL = 0.25, 1.5  # the study's absolute levels: n_sig_mu_abs_ge_0.25, hw_ge_1.5
FWER_TARGET = 0.05
FWER_NS = (400, 2000)
FWER_REPEATS = {400: 200, 2000: 100}
AUTO_REPEATS = {400: 50, 2000: 30}
QUICK_FWER_REPEATS = {400: 40, 2000: 20}
QUICK_AUTO_REPEATS = {400: 10, 2000: 6}
HW = 1.2
CENTRES = np.linspace(-0.8, 0.8, Z_DIM)
BK = ((3.0, 1.0), (6.0, 2.0), (1.5, 1.5), (3.0, 2.0))
LOG10_REPEATS = {400: 200, 2000: 100}
QUICK_LOG10_REPEATS = {400: 40, 2000: 20}
LOG10_TARGET = 0.93
KNN_TARGET = 0.92
KNN_REPEATS = {32: 200, 256: 200}  # per dimension of the configuration
QUICK_KNN_REPEATS = {32: 30, 256: 10}


# ---------------------------------------------------------------------------------------
# shapes: a standard draw, and the central interval and mode/FWHM of the unscaled shape


def _mixture_pdf(x: np.ndarray) -> np.ndarray:
    pdf: np.ndarray = 0.7 * stats.norm.pdf(x) + 0.3 * stats.norm.pdf(x, 2.0)
    return pdf


def _mixture_ppf(p: float) -> float:
    def f(x: float) -> float:
        return float(0.7 * stats.norm.cdf(x) + 0.3 * stats.norm.cdf(x, 2.0) - p)

    return float(optimize.brentq(f, -20.0, 20.0, xtol=1e-14))


SHAPES: dict[str, dict[str, Any]] = {
    "gaussian": {"label": "Gaussian", "dist": stats.norm()},
    "skewnorm4": {"label": "skew-normal (4)", "dist": stats.skewnorm(4.0)},
    "t5": {"label": "Student t, 5 df", "dist": stats.t(5)},
    "mixture": {"label": "0.7 N(0, 1) + 0.3 N(2, 1)", "dist": None},
}


def draw(shape: str, rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    if shape == "mixture":
        x = rng.standard_normal((n, d))
        return x + 2.0 * (rng.random((n, d)) < 0.3)
    return np.asarray(SHAPES[shape]["dist"].rvs(size=(n, d), random_state=rng))


def central(shape: str) -> tuple[float, float]:
    """Midpoint and length of the central 76.1% interval of the unscaled shape."""
    if shape == "mixture":
        lo, hi = _mixture_ppf(CENTRAL_TAIL), _mixture_ppf(1 - CENTRAL_TAIL)
    else:
        dist = SHAPES[shape]["dist"]
        lo, hi = float(dist.ppf(CENTRAL_TAIL)), float(dist.ppf(1 - CENTRAL_TAIL))
    return 0.5 * (lo + hi), hi - lo


def mode_fwhm(shape: str) -> tuple[float, float]:
    """Mode and FWHM of the unscaled shape, from its pdf on a fine grid."""
    pdf = _mixture_pdf if shape == "mixture" else SHAPES[shape]["dist"].pdf
    x = np.linspace(-12, 12, 2_400_001)
    f = pdf(x)
    top = int(f.argmax())
    above = np.flatnonzero(f >= 0.5 * f[top])
    return float(x[top]), float(x[above[-1]] - x[above[0]])


def on_level(shape: str, estimator: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 256] of the shape with every component's centre at MU_LEVEL and width HW_LEVEL,
    in the estimand of ``estimator`` (central interval, or mode and FWHM)."""
    centre, width = central(shape) if estimator == "central" else mode_fwhm(shape)
    return (draw(shape, rng, n, Z_DIM) - centre) * (HW_LEVEL / width) + MU_LEVEL


# ---------------------------------------------------------------------------------------
# 1. family-wise false positives of the significant counts


def _rate(count: int, total: int) -> dict[str, Any]:
    lower = (
        0.0
        if count == 0
        else float(stats.beta.ppf(0.05, count, total - count + 1))  # one-sided 95%
    )
    upper = float(stats.binomtest(count, total).proportion_ci(0.95).high)
    return {
        "count": count,
        "total": total,
        "rate": count / total,
        "lower_95": lower,
        "upper_95": upper,
        "pass": lower <= FWER_TARGET,
    }


def fwer(repeats: dict[int, int], auto_repeats: dict[int, int], progress: tqdm) -> list[dict]:
    rows = []
    z = simultaneous_z(Z_DIM)
    for n in FWER_NS:
        for shape in SHAPES:
            counts = {"exact": [0, 0], "normal": [0, 0], "auto": [0, 0]}
            for rep in range(repeats[n]):
                rng = np.random.default_rng([26, n, rep, list(SHAPES).index(shape)])
                w = estimate_windows(on_level(shape, "central", rng, n), DEFAULT_ESTIMATOR)
                values = scale_free_observations(w)
                counts["exact"][0] += values["n_sig_mu_abs_ge_0.25"] > 0
                counts["exact"][1] += values["n_sig_hw_ge_1.5"] > 0
                mu_lo, mu_hi, hw_lo, _ = normal_bounds(w, z)
                counts["normal"][0] += bool(np.any((mu_lo > MU_LEVEL) | (mu_hi < -MU_LEVEL)))
                counts["normal"][1] += bool(np.any(hw_lo > HW_LEVEL))
                if rep < auto_repeats[n]:
                    a = estimate_windows(on_level(shape, "auto", rng, n), "auto")
                    values = scale_free_observations(a)
                    counts["auto"][0] += values["n_sig_mu_abs_ge_0.25"] > 0
                    counts["auto"][1] += values["n_sig_hw_ge_1.5"] > 0
                progress.update(1)
            for method, (mu_count, hw_count) in counts.items():
                total = auto_repeats[n] if method == "auto" else repeats[n]
                rows.append(
                    {
                        "n": n,
                        "shape": shape,
                        "method": method,
                        "mu": _rate(int(mu_count), total),
                        "hw": _rate(int(hw_count), total),
                    }
                )
    return rows


# ---------------------------------------------------------------------------------------
# 2. log10 P(hit) of the uniform generator


def log10_coverage(repeats: dict[int, int], progress: tqdm) -> list[dict]:
    rows = []
    for n, reps in repeats.items():
        for shape in SHAPES:
            centre, width = central(shape)
            results: dict[tuple[float, float], dict[str, Any]] = {
                bk: {"err": [], "bias": [], "se": [], "plain": 0, "corrected": 0} for bk in BK
            }
            truths = {
                bk: UniformSampler(bk[0], Z_DIM).window_log10_probability(
                    CENTRES - bk[1] * HW, CENTRES + bk[1] * HW
                )
                for bk in BK
            }
            for rep in range(reps):
                rng = np.random.default_rng([27, n, rep, list(SHAPES).index(shape)])
                x = (draw(shape, rng, n, Z_DIM) - centre) * (HW / width) + CENTRES
                w = estimate_windows(x, DEFAULT_ESTIMATOR)
                for b, k in BK:
                    p = UniformSampler(b, Z_DIM).component_log10_probabilities
                    out = propagate_log10(w, k, p)
                    r, truth = results[(b, k)], truths[(b, k)]
                    r["err"].append(out.value - truth)
                    r["bias"].append(out.bias)
                    r["se"].append(out.se)
                    r["plain"] += abs(out.value - truth) <= Z95 * out.se
                    r["corrected"] += out.lo <= truth <= out.hi
                progress.update(1)
            for (b, k), r in results.items():
                rows.append(
                    {
                        "n": n,
                        "shape": shape,
                        "b": b,
                        "k": k,
                        "true": truths[(b, k)],
                        "repeats": reps,
                        "error_mean": float(np.mean(r["err"])),
                        "error_sd": float(np.std(r["err"], ddof=1)),
                        "bias_mean": float(np.mean(r["bias"])),
                        "se_mean": float(np.mean(r["se"])),
                        "plain_coverage": r["plain"] / reps,
                        "coverage": r["corrected"] / reps,
                        "pass": (r["corrected"] / reps >= LOG10_TARGET)
                        if n == 400 and shape in ("gaussian", "t5") and (b, k) in BK[:2]
                        else None,
                    }
                )
    return rows


# ---------------------------------------------------------------------------------------
# 3. the k-NN coverage interval, both sets random

# (dimensions, real N, generated M, generator width factor, generator shift in sigma)
KNN_CONFIGS = (
    (32, 1000, 1000, 1.0, 0.0),
    (32, 1000, 1000, 1.3, 0.0),
    (32, 1000, 300, 1.0, 0.0),
    (32, 500, 500, 1.0, 0.3),
    (256, 2000, 2000, 1.0, 0.0),
    (256, 2000, 2000, 1.1, 0.0),
    (256, 2000, 2000, 1.0, 0.2),
    (256, 2000, 500, 1.0, 0.0),
)


def knn_coverage(repeats_per_dim: dict[int, int], progress: tqdm) -> list[dict]:
    rows = []
    for d, n_real, n_gen, width, shift in KNN_CONFIGS:
        repeats = repeats_per_dim[d]
        sigma = np.linspace(0.5, 2.0, d)
        rng = np.random.default_rng([28, d, n_real, n_gen])
        value, lo, hi = [], [], []
        for _ in range(repeats):
            manifold = real_manifold(sigma * rng.standard_normal((n_real, d)), 5, max_vectors=None)
            generated = sigma * (shift + width * rng.standard_normal((n_gen, d)))
            c = knn_scores(manifold, generated).coverage
            value.append(c.value)
            lo.append(c.lo)
            hi.append(c.hi)
            progress.update(1)
        v, lo_a, hi_a = np.array(value), np.array(lo), np.array(hi)
        truth = float(v.mean())
        wilson = np.sqrt(v * (1 - v) / n_real)
        rows.append(
            {
                "dims": d,
                "real": n_real,
                "generated": n_gen,
                "width": width,
                "shift": shift,
                "repeats": repeats,
                "truth": truth,
                "sd": float(v.std(ddof=1)),
                "wilson_sd": float(wilson.mean()),
                "interval_sd": float(np.mean(hi_a - lo_a) / (2 * Z95)),
                "coverage": float(np.mean((lo_a <= truth) & (truth <= hi_a))),
                "wilson_coverage": float(np.mean(np.abs(v - truth) <= Z95 * wilson)),
                "pass": bool(np.mean((lo_a <= truth) & (truth <= hi_a)) >= KNN_TARGET),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------
# Markdown


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    out = [
        "# Intervals on any component shape",
        "",
        f"`{result['command']}`: {result['run_s'] / 60:.1f} min on {result['machine']} "
        f"(load average {result['load_average_before_after'][0]} at the start, "
        f"{result['load_average_before_after'][1]} at the end).",
        "",
        "## Family-wise false positives of the significant counts",
        "",
        "Every one of 256 components exactly on the level (centre 0.25, width 1.5, in the "
        "estimator's own estimand): the share of data sets in which `n_sig_mu_abs_ge_0.25` "
        "(`n_sig_hw_ge_1.5`) is > 0, with its 95% interval. `exact`: the default "
        f"(`{DEFAULT_ESTIMATOR}`) as `scale_free_observations` counts (exact order-statistic "
        "bounds); `normal`: the same windows with estimate +- Bonferroni z (3.73) x se; "
        "`auto`: the former default, its mode and FWHM on the level. Promised: <= 5%; pass: "
        "the one-sided 95% lower bound is <= 5%.",
        "",
        "| n | shape | method | data sets | mu: FWER [95%] | hw: FWER [95%] | pass |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for r in result["fwer"]:
        cells = [
            f"{_pct(r[p]['rate'])} [{_pct(r[p]['lower_95'])}, {_pct(r[p]['upper_95'])}]"
            for p in ("mu", "hw")
        ]
        ok = r["mu"]["pass"] and r["hw"]["pass"]
        out.append(
            f"| {r['n']} | {r['shape']} | {r['method']} | {r['mu']['total']} | {cells[0]} "
            f"| {cells[1]} | {'yes' if ok else 'NO'} |"
        )
    out += [
        "",
        "## log10 P(hit) of the uniform generator",
        "",
        f"256 components, central width {HW}, centres evenly over [-0.8, 0.8]; default windows. "
        "error = plug-in value minus truth, mean ± sd; bias = mean estimated second-order bias; "
        "covered: the interval around the bias-corrected value (as reported), and the plain "
        f"value ± 1.96 se. Required >= {LOG10_TARGET:.0%} at (3, 1) and (6, 2) on Gaussian and "
        "t5 at n = 400.",
        "",
        "| n | shape | (b, k) | true | error | bias | se | covered | plain | pass |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["log10_p"]:
        verdict = "" if r["pass"] is None else ("yes" if r["pass"] else "NO")
        out.append(
            f"| {r['n']} | {r['shape']} | ({r['b']:g}, {r['k']:g}) | {r['true']:.2f} "
            f"| {r['error_mean']:+.3f} ± {r['error_sd']:.3f} | {r['bias_mean']:+.3f} "
            f"| {r['se_mean']:.3f} | {_pct(r['coverage'])} | {_pct(r['plain_coverage'])} "
            f"| {verdict} |"
        )
    out += [
        "",
        "## k-NN coverage interval, both sets random",
        "",
        "Real N(0, diag(sigma^2)), sigma evenly over [0.5, 2]; generated with the widths times "
        "a factor and shifted by a multiple of sigma; k = 5. Truth: the mean coverage over the "
        "repetitions. sd: its spread; interval sd: the mean interval length / 3.92. Required: "
        f">= {KNN_TARGET:.0%}.",
        "",
        "| dims | N real | M generated | width | shift | truth | sd | Wilson sd | interval sd "
        "| covered | Wilson covered | pass |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["knn"]:
        out.append(
            f"| {r['dims']} | {r['real']} | {r['generated']} | {r['width']:g} | {r['shift']:g} "
            f"| {r['truth']:.4f} | {r['sd']:.4f} | {r['wilson_sd']:.4f} | {r['interval_sd']:.4f} "
            f"| {_pct(r['coverage'])} ({r['repeats']}) | {_pct(r['wilson_coverage'])} "
            f"| {'yes' if r['pass'] else 'NO'} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; prints only")
    args = parser.parse_args()
    fwer_repeats = QUICK_FWER_REPEATS if args.quick else FWER_REPEATS
    auto_repeats = QUICK_AUTO_REPEATS if args.quick else AUTO_REPEATS
    log10_repeats = QUICK_LOG10_REPEATS if args.quick else LOG10_REPEATS
    knn_repeats = QUICK_KNN_REPEATS if args.quick else KNN_REPEATS
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    total = len(SHAPES) * (sum(fwer_repeats.values()) + sum(log10_repeats.values())) + sum(
        knn_repeats[c[0]] for c in KNN_CONFIGS
    )
    with tqdm(total=total, desc="data sets", unit="set") as progress:
        fwer_rows = fwer(fwer_repeats, auto_repeats, progress)
        log10_rows = log10_coverage(log10_repeats, progress)
        knn_rows = knn_coverage(knn_repeats, progress)
    command = ".venv/bin/python benchmarks/bench_intervals.py" + (" --quick" * args.quick)
    result: dict[str, Any] = {
        **run_record(command, started, load_before),
        "fwer": fwer_rows,
        "log10_p": log10_rows,
        "knn": knn_rows,
    }
    if args.quick:
        print(markdown(result))
    else:
        write_results("intervals", result, markdown(result))


if __name__ == "__main__":
    main()
