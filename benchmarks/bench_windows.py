"""Accuracy of the hit-window estimators: centre (mode) and FWHM of known shapes.

    .venv/bin/python benchmarks/bench_windows.py [--quick]

Every estimator in ``WINDOW_ESTIMATORS`` runs through :func:`estimate_windows` on latent
matrices whose 256 columns are independent draws of one component shape with a known mode
and FWHM (computed here from the shape's pdf: a fine grid, then the maximum and the
outermost half-maximum crossings refined by root finding) and a known central interval of
76.1% (from the shape's quantile function), the estimand of ``central``: each estimator is
measured against its own estimand (``central``: the interval's midpoint and length; the
others: the mode and the FWHM). For a Gaussian the two coincide.

- Gaussian; skew-normal with shape 4; Student t with 5 degrees of freedom; the mixture
  0.7 N(0, 1) + 0.3 N(2, 1) (single-peaked); uniform on [-1, 1], whose mode is undefined:
  its centre 0 and its full width stand in for the mode and the FWHM.
- Each shape is scaled to the FWHM ``HW`` = 1.2 and column j shifted so its mode is
  ``m_j`` (256 values evenly over [-0.8, 0.8]), like latents whose components sit at
  different centres. The estimators other than ``histogram`` are location-equivariant, so
  the shift changes nothing for them; the histogram's bins are shared by all columns (as
  on real latents), so its columns see different bin phases, and its range is set by the
  extremes of the whole matrix.
- n in 100, 400, 2000, 20000, 202599, ``REPEATS[n]`` matrices each: every matrix gives 256
  component replicates for the accuracy figures and one value of log10 P(hit).

Per (shape, n, estimator): bias and standard deviation of ``mu`` in units of the shape's
standard deviation sigma, relative bias and standard deviation of ``hw``, their RMSE, the
coverage of the 95% intervals, the mean reported standard errors, and the statistical floor
(sigma/sqrt(n), 1/sqrt(2n) for a Gaussian) for reference. Then log10 P(hit) of the uniform
generator (256 components, exact given the windows) at (b, k) = (1.5, 1.5), (3, 1), (3, 2):
the estimate from the estimated windows minus the value from the true windows, mean and
standard deviation over the matrices, and the coverage of ``propagate_log10``'s interval
(value +- 1.96 se). With ``HW`` = 1.2 and the modes in [-0.8, 0.8] the three (b, k) are three
regimes: (1.5, 1.5) windows wider than [-b, b] (full) or cut at one end (mu and hw both
matter), (3, 1) every window inside (only hw matters), (3, 2) a quarter cut at one end.

Also: ``estimate_windows`` on 202,599 x 256 float32 CelebA-like latents (``central``,
``auto`` and ``histogram``, median of 3; target <= 5 s for the default), the best estimator
(smallest RMSE against the mode and FWHM) per shape and n, the coverage of the default
estimator's intervals per shape and n (required: 92-98% on every shape but the uniform, at
n = 400 and 20,000), and the acceptance criteria for ``auto`` on Gaussian components. Writes
``benchmarks/results/windows.json`` and ``windows.md`` and prints the Markdown; ``--quick``
(fewer matrices, n <= 20000) only prints; ``--render`` rebuilds the verdicts and the
Markdown from ``windows.json`` without rerunning.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, stats
from tqdm import tqdm

from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import (
    CENTRAL_TAIL,
    DEFAULT_ESTIMATOR,
    WINDOW_ESTIMATORS,
    Z95,
    estimate_windows,
    propagate_log10,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analysis import CELEBA_IMAGES, celeba_like_latents
from timing import RESULTS, run_record, write_results

Z_DIM = 256
HW = 1.2  # every shape's FWHM after scaling
MODES = np.linspace(-0.8, 0.8, Z_DIM)  # column j's mode after shifting
NS = (100, 400, 2000, 20_000, CELEBA_IMAGES)
REPEATS = {100: 20, 400: 20, 2000: 20, 20_000: 10, CELEBA_IMAGES: 3}
QUICK_REPEATS = {100: 4, 400: 4, 2000: 3, 20_000: 2}
BK = ((1.5, 1.5), (3.0, 1.0), (3.0, 2.0))
TIMING_REPEATS = 3
TARGET_TIME_S = 10.0
DEFAULT_TARGET_TIME_S = 5.0
COVERAGE_BAND = (0.92, 0.98)  # the default's intervals, every shape with a mode
COVERAGE_NS = (400, 20_000)
NEAR_TIE = 0.01  # RMSEs within 1% of the smallest count as a tie in the verdict


# ---------------------------------------------------------------------------------------
# the shapes: pdf, standard deviation, sampler (float32, unscaled)


@dataclass(frozen=True)
class Shape:
    name: str
    label: str
    pdf: Callable[[np.ndarray], np.ndarray]
    sigma: float
    draw: Callable[[np.random.Generator, int, int], np.ndarray]
    ppf: Callable[[float], float]
    mode_defined: bool = True


SKEW_A = 4.0
SKEW_DELTA = SKEW_A / math.sqrt(1 + SKEW_A**2)


def _draw_gaussian(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d), dtype=np.float32)


def _draw_skewnorm(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    # delta |U0| + sqrt(1 - delta^2) U1 is skew-normal with shape delta / sqrt(1 - delta^2)
    x = np.abs(rng.standard_normal((n, d), dtype=np.float32))
    x *= np.float32(SKEW_DELTA)
    x += np.float32(math.sqrt(1 - SKEW_DELTA**2)) * rng.standard_normal((n, d), dtype=np.float32)
    return x


def _draw_t5(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    # Z / sqrt(chi2_5 / 5), chi2_5 = 2 Gamma(2.5)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.sqrt(rng.standard_gamma(2.5, (n, d), dtype=np.float32) / np.float32(2.5))
    return x


def _mixture_cdf(x: float) -> float:
    return float(0.7 * stats.norm.cdf(x) + 0.3 * stats.norm.cdf(x, 2.0))


def _mixture_ppf(p: float) -> float:
    return float(optimize.brentq(lambda x: _mixture_cdf(x) - p, -20.0, 20.0, xtol=1e-14))


def _draw_mixture(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += np.float32(2.0) * (rng.random((n, d), dtype=np.float32) < 0.3)
    return x


def _draw_uniform(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.random((n, d), dtype=np.float32)
    x *= 2
    x -= 1
    return x


SHAPES = (
    Shape("gaussian", "Gaussian N(0, 1)", stats.norm.pdf, 1.0, _draw_gaussian, stats.norm.ppf),
    Shape(
        "skewnorm4",
        "skew-normal, shape 4",
        stats.skewnorm(SKEW_A).pdf,
        float(stats.skewnorm(SKEW_A).std()),
        _draw_skewnorm,
        stats.skewnorm(SKEW_A).ppf,
    ),
    Shape(
        "t5", "Student t, 5 df", stats.t(5).pdf, float(stats.t(5).std()), _draw_t5, stats.t(5).ppf
    ),
    Shape(
        "mixture",
        "0.7 N(0, 1) + 0.3 N(2, 1)",
        lambda x: 0.7 * stats.norm.pdf(x) + 0.3 * stats.norm.pdf(x, 2.0),
        math.sqrt(1.0 + 0.7 * 0.3 * 2.0**2),
        _draw_mixture,
        _mixture_ppf,
    ),
    Shape(
        "uniform",
        "uniform on [-1, 1]",
        stats.uniform(-1, 2).pdf,
        1 / math.sqrt(3),
        _draw_uniform,
        stats.uniform(-1, 2).ppf,
        mode_defined=False,
    ),
)


def true_mode_fwhm(shape: Shape) -> tuple[float, float]:
    """Mode and FWHM from the pdf: grid maximum and outermost half-maximum crossings, refined."""
    if not shape.mode_defined:
        return 0.0, 2.0  # uniform on [-1, 1]: the centre and the full width, by convention
    x = np.linspace(-12.0, 12.0, 480_001)
    f = shape.pdf(x)
    top = int(f.argmax())
    res = optimize.minimize_scalar(
        lambda t: -float(shape.pdf(t)),
        bounds=(x[top - 1], x[top + 1]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    mode, half = float(res.x), 0.5 * float(shape.pdf(res.x))
    above = np.flatnonzero(f >= half)
    first, last = int(above[0]), int(above[-1])

    def g(t: float) -> float:
        return float(shape.pdf(t)) - half

    left = optimize.brentq(g, x[first - 1], x[first], xtol=1e-14)
    right = optimize.brentq(g, x[last], x[last + 1], xtol=1e-14)
    return mode, right - left


def true_central(shape: Shape) -> tuple[float, float]:
    """Midpoint and length of the central interval (CENTRAL_TAIL of the mass outside on each
    side) from the shape's quantile function: the estimand of ``central``."""
    lo, hi = float(shape.ppf(CENTRAL_TAIL)), float(shape.ppf(1 - CENTRAL_TAIL))
    return 0.5 * (lo + hi), hi - lo


def estimand(
    estimator: str, mode: float, fwhm: float, central: tuple[float, float]
) -> tuple[np.ndarray, float]:
    """The estimator's true centres (per column) and width in the scaled matrix: the mode at
    ``MODES[j]`` and the FWHM ``HW`` for the mode-and-FWHM estimators; the central interval,
    shifted and scaled like the shape, for ``central``."""
    if estimator != "central":
        return MODES, HW
    scale = HW / fwhm
    return MODES + scale * (central[0] - mode), scale * central[1]


# ---------------------------------------------------------------------------------------
# one (shape, n): the matrices, the estimates, the figures


def scaled_matrix(
    shape: Shape, mode: float, fwhm: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """float32 [n, 256]: the shape scaled to FWHM ``HW``, column j's mode at ``MODES[j]``."""
    x = shape.draw(rng, n, Z_DIM)
    scale = HW / fwhm
    x *= np.float32(scale)
    x += (MODES - scale * mode).astype(np.float32)
    return x


def true_log10_p(b: float, k: float, centres: np.ndarray = MODES, width: float = HW) -> float:
    sampler = UniformSampler(b, Z_DIM)
    return sampler.window_log10_probability(centres - k * width, centres + k * width)


def run_cell(
    shape: Shape, mode: float, fwhm: float, n: int, repeats: int, seed: int, progress: tqdm
) -> dict[str, dict[str, list]]:
    """Raw per-estimator figures for ``repeats`` matrices of one (shape, n); each
    estimator's errors against its own estimand (:func:`estimand`)."""
    sigma = shape.sigma * HW / fwhm  # the scaled shape's standard deviation
    central = true_central(shape)
    targets = {e: estimand(e, mode, fwhm, central) for e in WINDOW_ESTIMATORS}
    raw: dict[str, dict[str, list]] = {
        e: {
            "mu_err": [],
            "hw_err": [],
            "mu_cov": [],
            "hw_cov": [],
            "mu_se": [],
            "hw_se": [],
            "kde": [],
            "log10": [],
        }
        for e in WINDOW_ESTIMATORS
    }
    truths = {e: {bk: true_log10_p(*bk, *targets[e]) for bk in BK} for e in WINDOW_ESTIMATORS}
    for rep in range(repeats):
        rng = np.random.default_rng([seed, n, rep])
        z = scaled_matrix(shape, mode, fwhm, n, rng)
        for estimator in WINDOW_ESTIMATORS:
            w = estimate_windows(z, estimator)
            centres, width = targets[estimator]
            r = raw[estimator]
            r["mu_err"].append((w.mu - centres) / sigma)
            r["hw_err"].append(w.hw / width - 1.0)
            r["mu_cov"].append((w.mu_lo <= centres) & (w.mu_hi >= centres))
            r["hw_cov"].append((w.hw_lo <= width) & (w.hw_hi >= width))
            r["mu_se"].append(w.mu_se / sigma)
            r["hw_se"].append(w.hw_se / width)
            r["kde"].append(w.chosen == "kde")
            row = []
            for b, k in BK:
                p = propagate_log10(w, k, UniformSampler(b, Z_DIM).component_log10_probabilities)
                row.append((p.value, p.se, truths[estimator][(b, k)], p.bias))
            r["log10"].append(row)
        del z
        progress.update(1)
    return raw


def summarise(shape: Shape, n: int, estimator: str, r: dict[str, list]) -> tuple[dict, list]:
    mu_err, hw_err = np.concatenate(r["mu_err"]), np.concatenate(r["hw_err"])
    accuracy = {
        "shape": shape.name,
        "n": n,
        "estimator": estimator,
        "replicates": int(mu_err.size),
        "matrices": len(r["log10"]),
        "mu_bias_sigma": float(mu_err.mean()),
        "mu_sd_sigma": float(mu_err.std(ddof=1)),
        "mu_rmse_sigma": float(np.sqrt(np.mean(mu_err**2))),
        "mu_se_mean_sigma": float(np.concatenate(r["mu_se"]).mean()),
        "bound_mu_sigma": 1 / math.sqrt(n),
        "hw_rel_bias": float(hw_err.mean()),
        "hw_rel_sd": float(hw_err.std(ddof=1)),
        "hw_rel_rmse": float(np.sqrt(np.mean(hw_err**2))),
        "hw_se_mean_rel": float(np.concatenate(r["hw_se"]).mean()),
        "bound_hw_rel": 1 / math.sqrt(2 * n),
        "mu_coverage": float(np.concatenate(r["mu_cov"]).mean()),
        "hw_coverage": float(np.concatenate(r["hw_cov"]).mean()),
        "kde_fraction": float(np.concatenate(r["kde"]).mean()),
    }
    log10 = []
    # [matrices, len(BK), (value, se, true, bias)]
    values = np.array(r["log10"], dtype=np.float64)
    for i, (b, k) in enumerate(BK):
        value, se, true, bias = (values[:, i, j] for j in range(4))
        finite = np.isfinite(value) & np.isfinite(se)
        err = value[finite] - true[finite]
        # the interval is centred on the bias-corrected value (propagate_log10)
        covered = np.abs(err - bias[finite]) <= Z95 * se[finite]
        log10.append(
            {
                "shape": shape.name,
                "n": n,
                "estimator": estimator,
                "b": b,
                "k": k,
                "true": float(true[0]),
                "matrices": int(value.size),
                "finite": int(finite.sum()),
                "error_mean": float(err.mean()) if err.size else math.nan,
                "error_sd": float(err.std(ddof=1)) if err.size > 1 else math.nan,
                "se_mean": float(se[finite].mean()) if err.size else math.nan,
                "bias_mean": float(bias[finite].mean()) if err.size else math.nan,
                "covered": int(covered.sum()),
                "coverage": float(covered.mean()) if err.size else math.nan,
            }
        )
    return accuracy, log10


# ---------------------------------------------------------------------------------------
# timing, verdicts, acceptance


def timing(repeats: int) -> dict[str, Any]:
    latents = celeba_like_latents(CELEBA_IMAGES)
    estimate_windows(latents[:2000])  # warm-up
    out: dict[str, Any] = {
        "latents": f"{CELEBA_IMAGES} x {Z_DIM} float32, CelebA-like "
        "(bench_analysis.celeba_like_latents)"
    }
    for estimator in ("central", "auto", "histogram"):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            estimate_windows(latents, estimator)
            times.append(time.perf_counter() - started)
        target = DEFAULT_TARGET_TIME_S if estimator == DEFAULT_ESTIMATOR else TARGET_TIME_S
        out[estimator] = {
            "median_s": round(statistics.median(times), 2),
            "all_s": [round(t, 2) for t in times],
            "target_s": target,
            "met": statistics.median(times) <= target,
        }
    out["target_s"] = TARGET_TIME_S
    return out


def best_estimators(accuracy: list[dict]) -> dict[str, dict[str, dict[str, str]]]:
    """Per shape and n, the estimator with the smallest RMSE of mu and of hw against the mode
    and the FWHM; others within ``NEAR_TIE`` of it follow after "≈" (``auto`` equals ``fit``
    where it never switched). ``central`` estimates another quantity and is left out."""
    best: dict[str, dict[str, dict[str, str]]] = {}
    for shape in SHAPES:
        best[shape.name] = {}
        for n in sorted({a["n"] for a in accuracy}):
            rows = [
                a
                for a in accuracy
                if a["shape"] == shape.name and a["n"] == n and a["estimator"] != "central"
            ]
            best[shape.name][str(n)] = {
                part: " ≈ ".join(
                    a["estimator"]
                    for a in sorted(rows, key=lambda a: a[key])
                    if a[key] <= (1 + NEAR_TIE) * min(r[key] for r in rows)
                )
                for part, key in (("mu", "mu_rmse_sigma"), ("hw", "hw_rel_rmse"))
            }
    return best


def acceptance(accuracy: list[dict]) -> list[dict[str, Any]]:
    def row(n: int) -> dict | None:
        return next(
            (
                a
                for a in accuracy
                if a["shape"] == "gaussian" and a["n"] == n and a["estimator"] == "auto"
            ),
            None,
        )

    checks = []
    a = row(400)
    if a is not None:
        checks += [
            ("auto, Gaussian, n = 400: |hw bias| < 1%", abs(a["hw_rel_bias"]), 0.01, "<"),
            (
                "auto, Gaussian, n = 400: hw spread <= 1.2/sqrt(2n)",
                a["hw_rel_sd"],
                1.2 / math.sqrt(800),
                "<=",
            ),
            (
                "auto, Gaussian, n = 400: mu spread <= 1.2/sqrt(n) sigma",
                a["mu_sd_sigma"],
                1.2 / math.sqrt(400),
                "<=",
            ),
        ]
    a = row(CELEBA_IMAGES)
    if a is not None:
        checks.append(
            (
                f"auto, Gaussian, n = {CELEBA_IMAGES}: |hw bias| < 0.5%",
                abs(a["hw_rel_bias"]),
                0.005,
                "<",
            )
        )
    out = [
        {"criterion": c, "value": v, "limit": lim, "pass": bool(v < lim if op == "<" else v <= lim)}
        for c, v, lim, op in checks
    ]
    lo, hi = COVERAGE_BAND
    for a in default_rows(accuracy):
        if a["n"] in COVERAGE_NS:
            for part in ("mu", "hw"):
                value = a[f"{part}_coverage"]
                out.append(
                    {
                        "criterion": f"{DEFAULT_ESTIMATOR}, {a['shape']}, n = {a['n']}: "
                        f"{part} interval coverage in [{lo:.0%}, {hi:.0%}]",
                        "value": value,
                        "limit": lo,
                        "pass": bool(lo <= value <= hi),
                    }
                )
    return out


def default_rows(accuracy: list[dict]) -> list[dict]:
    """The default estimator's rows for every shape with a mode (the uniform has none)."""
    shapes = [s.name for s in SHAPES if s.mode_defined]
    return sorted(
        (a for a in accuracy if a["estimator"] == DEFAULT_ESTIMATOR and a["shape"] in shapes),
        key=lambda a: (shapes.index(a["shape"]), a["n"]),
    )


def coverage_table(accuracy: list[dict]) -> list[str]:
    """Shape x n: the default's interval coverage against its own estimand."""
    lo, hi = COVERAGE_BAND
    lines = [
        "| shape | n | replicates | mu bias / sd [sigma] | hw bias / sd | cover mu | cover hw "
        f"| in [{lo:.0%}, {hi:.0%}] |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for a in default_rows(accuracy):
        inside = all(lo <= a[f"{p}_coverage"] <= hi for p in ("mu", "hw"))
        lines.append(
            f"| {a['shape']} | {a['n']} | {a['replicates']} | {a['mu_bias_sigma']:+.4f} / "
            f"{a['mu_sd_sigma']:.4f} | {_pct(a['hw_rel_bias'])} / {100 * a['hw_rel_sd']:.2f}% "
            f"| {_cov(a['mu_coverage'])} | {_cov(a['hw_coverage'])} | {'yes' if inside else 'NO'} |"
        )
    return lines


# ---------------------------------------------------------------------------------------
# Markdown


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:+.{digits}f}%" if math.isfinite(x) else "n/a"


def _cov(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_table(accuracy: list[dict], shape: str) -> list[str]:
    lines = [
        "| n | estimator | mu bias [sigma] | mu sd [sigma] | mu se [sigma] | 1/sqrt(n) "
        "| hw bias | hw sd | hw se | 1/sqrt(2n) | cover mu | cover hw | auto: kde |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a in (a for a in accuracy if a["shape"] == shape):
        kde = _cov(a["kde_fraction"]) if a["estimator"] == "auto" else ""
        lines.append(
            f"| {a['n']} | {a['estimator']} | {a['mu_bias_sigma']:+.4f} | {a['mu_sd_sigma']:.4f} "
            f"| {a['mu_se_mean_sigma']:.4f} | {a['bound_mu_sigma']:.4f} "
            f"| {_pct(a['hw_rel_bias'])} | {100 * a['hw_rel_sd']:.2f}% "
            f"| {100 * a['hw_se_mean_rel']:.2f}% | {100 * a['bound_hw_rel']:.2f}% "
            f"| {_cov(a['mu_coverage'])} | {_cov(a['hw_coverage'])} | {kde} |"
        )
    return lines


def log10_table(log10: list[dict], shape: str) -> list[str]:
    heads = [f"(b, k) = ({b:g}, {k:g})" for b, k in BK]
    lines = ["| n | estimator | " + " | ".join(heads) + " |", "|---:|---|" + "---:|" * len(BK)]
    keys = sorted(
        {(r["n"], r["estimator"]) for r in log10 if r["shape"] == shape},
        key=lambda t: (t[0], WINDOW_ESTIMATORS.index(t[1])),
    )
    for n, estimator in keys:
        cells = []
        for b, k in BK:
            r = next(
                r
                for r in log10
                if r["shape"] == shape
                and r["n"] == n
                and r["estimator"] == estimator
                and r["b"] == b
                and r["k"] == k
            )
            missing = r["matrices"] - r["finite"]
            bad = f", {missing} non-finite" if missing else ""
            bias = r.get("bias_mean", 0.0)
            cells.append(
                f"{r['error_mean']:+.2f} ± {r['error_sd']:.2f} (bias {bias:+.2f}, "
                f"se {r['se_mean']:.2f}; {r['covered']}/{r['finite']}{bad})"
            )
        lines.append(f"| {n} | {estimator} | " + " | ".join(cells) + " |")
    return lines


def best_table(best: dict[str, dict[str, dict[str, str]]]) -> list[str]:
    ns = list(next(iter(best.values())).keys())
    lines = ["| shape | " + " | ".join(f"n = {n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for shape, per_n in best.items():
        lines.append(
            f"| {shape} | "
            + " | ".join(f"mu: {per_n[n]['mu']}, hw: {per_n[n]['hw']}" for n in ns)
            + " |"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    acc, log10 = result["accuracy"], result["log10_p"]
    counts = ", ".join(
        f"n = {n}: {c['matrices']} matrices ({c['component_replicates']} component replicates)"
        for n, c in result["counts"].items()
    )
    out = [
        "# Hit windows: accuracy of the estimators",
        "",
        f"`{result['command']}`: {result['run_s'] / 60:.1f} min on {result['machine']} "
        f"(load average {result['load_average_before_after'][0]} at the start, "
        f"{result['load_average_before_after'][1]} at the end).",
        "",
        f"Counts: {counts}. Every matrix is {Z_DIM} independent columns of one shape, scaled to "
        f"FWHM {HW} with column j's mode at m_j (evenly over [{MODES[0]:g}, {MODES[-1]:g}]). "
        "Each estimator is measured against its own estimand: `central` against the central "
        "76.1% interval (midpoint, length), the others against the mode and the FWHM.",
        "",
        "## Shapes (unscaled; mode and FWHM from the pdf, central interval from the quantiles)",
        "",
        "| shape | mode | FWHM | sigma | FWHM / sigma | central: midpoint | central: length |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in SHAPES:
        t = result["shapes"][s.name]
        note = " (undefined: centre; full width)" if not s.mode_defined else ""
        out.append(
            f"| {s.label} | {t['mode']:.6f}{note} | {t['fwhm']:.6f} | {t['sigma']:.6f} "
            f"| {t['fwhm'] / t['sigma']:.4f} | {t['central_mid']:.6f} | {t['central_len']:.6f} |"
        )
    out += [
        "",
        f"## Coverage of the default (`{DEFAULT_ESTIMATOR}`) intervals, shape x n",
        "",
        "Against its own estimand; mu in units of the shape's sigma, hw relative to the "
        "true length. Required at n = 400 and 20,000: 92-98% on every shape with a mode.",
        "",
        *coverage_table(result["accuracy"]),
    ]
    out += [
        "",
        "## Best estimator of the mode and the FWHM (smallest RMSE of mu and of hw)",
        "",
        f"Estimators within {NEAR_TIE:.0%} of the smallest RMSE follow after ≈. `central` "
        "estimates the central 76.1% interval instead (equal for a Gaussian) and is left out.",
        "",
    ]
    out += best_table(result["best"])
    out += ["", "## Acceptance", ""]
    out += [
        f"- {'PASS' if c['pass'] else 'FAIL'}: {c['criterion']}: {c['value']:.4f} "
        f"(limit {c['limit']:.4f})"
        for c in result["acceptance"]
    ]
    if result.get("timing"):
        t = result["timing"]
        out += [
            "",
            f"## Time of estimate_windows, {t['latents']}",
            "",
            "| estimator | median of 3 | all | target |",
            "|---|---:|---|---|",
        ]
        out += [
            f"| {e} | {t[e]['median_s']:.2f} s | {', '.join(map(str, t[e]['all_s']))} "
            f"| <= {t[e].get('target_s', t['target_s']):g} s "
            f"({'met' if t[e]['met'] else 'NOT met'}) |"
            for e in ("central", "auto", "histogram")
            if e in t
        ]
    out += [
        "",
        "## Accuracy per shape",
        "",
        "mu in units of the shape's sigma; hw relative to the true FWHM (`central`: to the "
        "true length of the central interval); se = mean reported "
        "standard error; cover = share of the 95% intervals holding the truth; "
        "auto: kde = share of components where auto took the KDE.",
        "",
    ]
    for s in SHAPES:
        out += [f"### {s.label}", "", *accuracy_table(acc, s.name), ""]
    out += [
        "## Error of log10 P(hit), uniform generator, 256 components",
        "",
        "Estimated minus true (true from the estimator's own true windows: modes and FWHM, "
        "or the central intervals for `central`), mean ± sd over the matrices; bias = the "
        "mean second-order bias `propagate_log10` estimates; se = its mean standard error; "
        "covered/matrices = true value inside its interval, (value - bias) ± 1.96 se.",
        "",
    ]
    for s in SHAPES:
        out += [f"### {s.label}", "", *log10_table(log10, s.name), ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: fewer matrices, n <= 20000; prints, writes nothing",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="rebuild the verdicts and windows.md from windows.json, no rerun",
    )
    args = parser.parse_args()
    if args.render:
        result = json.loads((RESULTS / "windows.json").read_text())
        result["best"] = best_estimators(result["accuracy"])
        result["acceptance"] = acceptance(result["accuracy"])
        write_results("windows", result, markdown(result))
        return
    repeats = QUICK_REPEATS if args.quick else REPEATS
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    truths = {s.name: true_mode_fwhm(s) for s in SHAPES}

    accuracy: list[dict] = []
    log10: list[dict] = []
    total = sum(repeats.values()) * len(SHAPES)
    with tqdm(total=total, desc="matrices", unit="matrix") as progress:
        for n in NS:
            if n not in repeats:
                continue
            for index, shape in enumerate(SHAPES):
                mode, fwhm = truths[shape.name]
                progress.set_postfix_str(f"n={n} {shape.name}")
                raw = run_cell(shape, mode, fwhm, n, repeats[n], index, progress)
                for estimator in WINDOW_ESTIMATORS:
                    a, p = summarise(shape, n, estimator, raw[estimator])
                    accuracy.append(a)
                    log10.extend(p)
    timed = None if args.quick else timing(TIMING_REPEATS)

    command = ".venv/bin/python benchmarks/bench_windows.py" + (" --quick" * args.quick)
    result: dict[str, Any] = {
        **run_record(command, started, load_before),
        "design": {
            "z_dim": Z_DIM,
            "hw": HW,
            "modes": [float(MODES[0]), float(MODES[-1])],
            "estimators": list(WINDOW_ESTIMATORS),
            "bk": [list(bk) for bk in BK],
            "true_log10_p_mode_fwhm": {f"{b:g},{k:g}": true_log10_p(b, k) for b, k in BK},
        },
        "counts": {
            str(n): {"matrices": r, "component_replicates": r * Z_DIM} for n, r in repeats.items()
        },
        "shapes": {
            s.name: {
                "label": s.label,
                "mode": truths[s.name][0],
                "fwhm": truths[s.name][1],
                "central_mid": true_central(s)[0],
                "central_len": true_central(s)[1],
                "sigma": s.sigma,
                "mode_defined": s.mode_defined,
            }
            for s in SHAPES
        },
        "best": best_estimators(accuracy),
        "acceptance": acceptance(accuracy),
        "timing": timed,
        "accuracy": accuracy,
        "log10_p": log10,
    }
    result["run_s"] = round(time.perf_counter() - started, 1)
    if args.quick:
        print(markdown(result))
    else:
        write_results("windows", result, markdown(result))


if __name__ == "__main__":
    main()
