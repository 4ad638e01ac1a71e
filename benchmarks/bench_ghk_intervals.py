"""Coverage of the 95% interval of log10 P(hit) for the GHK samplers (``mvn``, ``gmm``).

    nice -n 10 .venv/bin/python benchmarks/bench_ghk_intervals.py [--quick]

The uniform and gaussian samplers' exact window probabilities have a validated interval
(benchmarks/bench_intervals.py). ``mvn`` and ``gmm`` estimate theirs by GHK, and
``hit_intervals`` (``core/hit_uncertainty.py``) puts beside it the windows' error (a
parametric bootstrap of the windows) and the GHK relative error. This measures whether that
interval covers the truth:

- **Truth.** Fixed samplers with a *one-factor* covariance ``diag(psi) + lam lam^T``
  (correlations 0.3 to 0.6), whose box probability is an exact 1-D integral
  (given the factor the components are independent): ``mvn`` one such normal, ``gmm`` a
  known three-component mixture of them (``LatentMixture`` in the identity basis, the
  subspace the whole space), ``P = sum_c w_c P_c``. The integral is a trapezoid rule over the
  factor in log space (its error from halving the step, reported). The latents: Z_DIM
  independent components of one shape (Gaussian, skew-normal 4, Student t5, 0.7 N(0, 1) +
  0.3 N(2, 1)) scaled to central width HW, centres evenly over [-0.8, 0.8]: the population
  windows of the default ``central`` estimator are exactly (CENTRES, HW).
- **Per data set** (n latents): default windows (``estimate_windows``), then the code's own
  path: ``hit_grid`` (its GHK values and relative errors; one Monte Carlo vector, the counts
  are not used) and ``hit_intervals`` (seed = the data set), every (scale, k) cell. Covered:
  ``log10_lo <= truth <= log10_hi``. The GHK seed differs per data set, so the data sets are
  independent and the count is binomial.
- **GHK alone**: the windows fixed at the truth, GHK_SEEDS seeds: does value +- 1.96 x the
  GHK relative error / ln 10 cover the exact value?

Coverage with its 95% Clopper-Pearson interval (``binomtest(...).proportion_ci``); pass: the
interval reaches 95% (the coverage is not significantly below it). Writes
``benchmarks/results/ghk_intervals.json`` and ``.md`` and prints the Markdown; ``--quick``
(fewer data sets) only prints.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np
from scipy import optimize, stats
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits
from timing import run_record, write_results

from aelatent.core.hit_uncertainty import GHK_DF, MVN_WINDOW_DRAWS, hit_intervals
from aelatent.core.hits import hit_grid
from aelatent.core.mixture import GMMSampler, LatentMixture
from aelatent.core.samplers import LN10, MVNSampler, Sampler, log_normal_interval
from aelatent.core.windows import CENTRAL_TAIL, Z95, estimate_windows

Z_DIM = 64
HW = 1.2
CENTRES = np.linspace(-0.8, 0.8, Z_DIM)
SCALES = (0.6, 1.0, 1.6)
KS = (0.25, 0.5, 1.0)
NS = (400, 2000)
REPEATS = {400: 200, 2000: 100}
QUICK_REPEATS = {400: 40, 2000: 20}
GHK_SEEDS = 100
QUICK_GHK_SEEDS = 40
FACTOR_GRID = 8001  # trapezoid points over the factor, [-FACTOR_SPAN, FACTOR_SPAN]
FACTOR_SPAN = 40.0
TARGET = 0.95
T_GHK = float(stats.t.ppf(0.975, GHK_DF))  # the GHK error's quantile alone (7 df)


# ---------------------------------------------------------------------------------------
# the latents: one shape per component, population windows (CENTRES, HW)


def _mixture_ppf(p: float) -> float:
    def f(x: float) -> float:
        return float(0.7 * stats.norm.cdf(x) + 0.3 * stats.norm.cdf(x, 2.0) - p)

    return float(optimize.brentq(f, -20.0, 20.0, xtol=1e-14))


SHAPES: dict[str, Any] = {
    "gaussian": stats.norm(),
    "skewnorm4": stats.skewnorm(4.0),
    "t5": stats.t(5),
    "mixture": None,
}


DEFAULT_SHAPES = ["gaussian", "skewnorm4", "t5"]  # the mixture too: --shapes (20 minutes)


def draw(shape: str, rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    if shape == "mixture":
        return rng.standard_normal((n, d)) + 2.0 * (rng.random((n, d)) < 0.3)
    return np.asarray(SHAPES[shape].rvs(size=(n, d), random_state=rng))


def central(shape: str) -> tuple[float, float]:
    """Midpoint and length of the central 76.1% interval of the unscaled shape."""
    if shape == "mixture":
        lo, hi = _mixture_ppf(CENTRAL_TAIL), _mixture_ppf(1 - CENTRAL_TAIL)
    else:
        lo, hi = (float(SHAPES[shape].ppf(p)) for p in (CENTRAL_TAIL, 1 - CENTRAL_TAIL))
    return 0.5 * (lo + hi), hi - lo


def latents(shape: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, Z_DIM] whose central windows are exactly (CENTRES, HW)."""
    centre, width = central(shape)
    return (draw(shape, rng, n, Z_DIM) - centre) * (HW / width) + CENTRES


# ---------------------------------------------------------------------------------------
# the samplers and their exact window probabilities


def one_factor_log_p(
    lo: np.ndarray,
    hi: np.ndarray,
    mean: np.ndarray,
    loadings: np.ndarray,
    psi: np.ndarray,
    *,
    points: int = FACTOR_GRID,
) -> float:
    """Exact ``ln P(lo <= x <= hi)``, ``x ~ N(mean, diag(psi) + loadings loadings^T)``:
    ``x = mean + loadings t + sqrt(psi) e``, independent given ``t ~ N(0, 1)``, so ``P`` is
    the 1-D integral over ``t`` of a product of normal interval probabilities (trapezoid
    rule in log space: the integrand is smooth and negligible at the ends)."""
    t = np.linspace(-FACTOR_SPAN, FACTOR_SPAN, points)
    sd = np.sqrt(psi)
    shift = mean[None, :] + t[:, None] * loadings[None, :]
    inner = log_normal_interval((lo - shift) / sd, (hi - shift) / sd).sum(axis=1)
    log_f = inner + stats.norm.logpdf(t)
    weights = np.full(points, t[1] - t[0])
    weights[[0, -1]] *= 0.5
    return float(logsumexp(log_f, b=weights))


def mvn_truth() -> dict[str, np.ndarray]:
    """The fixed ``mvn``: mean 0.1, marginal sd 0.5 (a Gaussian of central width HW has sd
    0.51), correlations lam_i lam_j / 0.25 between 0.3 and 0.6."""
    loadings = 0.5 * np.sqrt(np.linspace(0.3, 0.6, Z_DIM))
    return {"mean": np.full(Z_DIM, 0.1), "loadings": loadings, "psi": 0.25 - loadings**2}


def gmm_truth() -> list[tuple[float, dict[str, np.ndarray]]]:
    """The fixed ``gmm``: three one-factor normals, weights 0.5, 0.3, 0.2, means shifted."""
    rng = np.random.default_rng(20260)
    parts = []
    for w, shift, rho in ((0.5, 0.0, 0.3), (0.3, 0.25, 0.5), (0.2, -0.3, 0.4)):
        sd = 0.4 * np.ones(Z_DIM)
        loadings = sd * math.sqrt(rho)
        mean = shift + 0.1 * rng.standard_normal(Z_DIM)
        parts.append((w, {"mean": mean, "loadings": loadings, "psi": sd**2 - loadings**2}))
    return parts


def factor_cov(part: dict[str, np.ndarray]) -> np.ndarray:
    cov: np.ndarray = np.diag(part["psi"]) + np.outer(part["loadings"], part["loadings"])
    return cov


def make_mvn(seed: int) -> MVNSampler:
    part = mvn_truth()
    return MVNSampler(part["mean"], factor_cov(part), ghk_seed=seed)


def make_gmm(seed: int) -> GMMSampler:
    parts = gmm_truth()
    eye = np.eye(Z_DIM)
    mixture = LatentMixture(
        mean=np.zeros(Z_DIM),
        basis=eye,
        eigenvalues=np.ones(Z_DIM),  # not used by sampling or GHK
        subspace_dim=Z_DIM,
        weights=np.array([w for w, _ in parts]),
        sub_means=np.stack([p["mean"] for _, p in parts]),
        sub_covariances=np.stack([factor_cov(p) for _, p in parts]),
        residual_variances=np.zeros(0),
        covariance_type="full",
    )
    return GMMSampler(mixture, ghk_seed=seed)


MAKERS = {"mvn": make_mvn, "gmm": make_gmm}


def exact_log10(sampler: str, scale: float, k: float, *, points: int = FACTOR_GRID) -> float:
    """Exact log10 P(hit) of the fixed sampler at ``scale`` against the population windows."""
    lo, hi = CENTRES - k * HW, CENTRES + k * HW
    parts = [(1.0, mvn_truth())] if sampler == "mvn" else gmm_truth()
    logs = []
    for w, p in parts:
        scaled = {"mean": p["mean"], "loadings": scale * p["loadings"], "psi": scale**2 * p["psi"]}
        logs.append(math.log(w) + one_factor_log_p(lo, hi, **scaled, points=points))
    return float(logsumexp(logs)) / LN10


def truths() -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``[n_scales, n_ks]`` exact values per sampler, and the largest change from halving
    the trapezoid step (the quadrature's error bound, in decades)."""
    out, err = {}, {}
    for name in MAKERS:
        fine = np.array([[exact_log10(name, s, k) for k in KS] for s in SCALES])
        coarse = np.array(
            [[exact_log10(name, s, k, points=FACTOR_GRID // 2 + 1) for k in KS] for s in SCALES]
        )
        out[name], err[name] = fine, float(np.max(np.abs(fine - coarse)))
    return out, err


# ---------------------------------------------------------------------------------------
# the measurements


def coverage(count: int, total: int) -> dict[str, Any]:
    ci = stats.binomtest(int(count), int(total)).proportion_ci(0.95)
    return {
        "covered": int(count),
        "total": int(total),
        "coverage": count / total,
        "lo": float(ci.low),
        "hi": float(ci.high),
        "pass": bool(ci.high >= TARGET),
    }


def before_fix(row: dict[str, Any]) -> dict[str, Any]:
    """Coverage of the interval before the fix, rebuilt from the stored figures: the plug-in
    value +- 1.96 x sqrt(windows' spread^2 + GHK^2), no bias correction. The stored se is
    sqrt(spread^2 (1 + 1/B) + GHK^2), B = MVN_WINDOW_DRAWS, so the spread follows from it."""
    err, se, ghk = (np.asarray(row[key]) for key in ("errors", "ses", "ghk_ses"))
    ghk = np.nan_to_num(ghk)
    spread2 = np.clip(se**2 - ghk**2, 0.0, None) / (1.0 + 1.0 / MVN_WINDOW_DRAWS)
    return coverage(int(np.sum(np.abs(err) <= Z95 * np.sqrt(spread2 + ghk**2))), err.size)


def one_data_set(
    shape: str, n: int, rep: int, exact: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """Per sampler: value, se, GHK relative se, lo, hi, covered, all [n_scales, n_ks]."""
    rng = np.random.default_rng([31, n, rep, list(SHAPES).index(shape)])
    w = estimate_windows(latents(shape, rng, n))
    out = {}
    for name, make in MAKERS.items():
        sampler: Sampler = make(1000 * n + rep)
        grid = hit_grid(sampler, SCALES, KS, w.mu, w.hw, 1, rng)
        iv = hit_intervals(grid, sampler, w, seed=rep)
        truth = exact[name]
        out[name] = {
            "error": grid.log10_p_hit - truth,
            "se": iv.log10_se,
            "ghk_se": iv.ghk_rel_se / LN10,
            "bias": iv.log10_bias if iv.log10_bias is not None else np.zeros_like(truth),
            "covered": (iv.log10_lo <= truth) & (truth <= iv.log10_hi),
        }
    return out


def windows_coverage(
    repeats: dict[int, int], exact: dict[str, np.ndarray], shapes: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for n, reps in repeats.items():
        for shape in shapes:
            started = time.perf_counter()
            per = [one_data_set(shape, n, rep, exact) for rep in range(reps)]
            print(f"  n={n} {shape}: {time.perf_counter() - started:.0f} s", flush=True)
            for name in MAKERS:
                stack = {key: np.stack([p[name][key] for p in per]) for key in per[0][name]}
                for j, scale in enumerate(SCALES):
                    for i, k in enumerate(KS):
                        err = stack["error"][:, j, i]
                        se = stack["se"][:, j, i]
                        ghk = stack["ghk_se"][:, j, i]
                        rows.append(
                            {
                                "sampler": name,
                                "n": n,
                                "shape": shape,
                                "scale": scale,
                                "k": k,
                                "true": float(exact[name][j, i]),
                                "error_mean": float(np.mean(err)),
                                "error_sd": float(np.std(err, ddof=1)),
                                "se_mean": float(np.mean(se)),
                                "ghk_se_mean": float(np.mean(ghk)),
                                "bias_mean": float(np.mean(stack["bias"][:, j, i])),
                                "plain_z_coverage": float(np.mean(np.abs(err) <= Z95 * se)),
                                **coverage(int(stack["covered"][:, j, i].sum()), reps),
                                "errors": err.round(5).tolist(),
                                "ses": se.round(5).tolist(),
                                "ghk_ses": ghk.round(6).tolist(),
                            }
                        )
                        rows[-1]["before_fix"] = before_fix(rows[-1])
    return rows


def ghk_alone(seeds: int, exact: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The windows at the truth: GHK's value +- 1.96 x its relative error, over seeds."""
    rows = []
    lo_hi = {k: (CENTRES - k * HW, CENTRES + k * HW) for k in KS}
    for name, make in MAKERS.items():
        for j, scale in enumerate(SCALES):
            for i, k in enumerate(KS):
                truth = float(exact[name][j, i])
                err, se = [], []
                for seed in range(seeds):
                    s = make(seed).with_scale(scale)
                    err.append(s.window_log10_probability(*lo_hi[k]) - truth)
                    se.append(s.last_relative_se / LN10)
                e, s_ = np.array(err), np.array(se)
                rows.append(
                    {
                        "sampler": name,
                        "scale": scale,
                        "k": k,
                        "true": truth,
                        "error_mean": float(np.mean(e)),
                        "error_sd": float(np.std(e, ddof=1)),
                        "se_mean": float(np.mean(s_)),
                        **coverage(int(np.sum(np.abs(e) <= Z95 * s_)), seeds),
                        "t_coverage": coverage(int(np.sum(np.abs(e) <= T_GHK * s_)), seeds),
                    }
                )
    return rows


# ---------------------------------------------------------------------------------------
# Markdown


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _cov(r: dict[str, Any]) -> str:
    return f"{_pct(r['coverage'])} [{_pct(r['lo'])}, {_pct(r['hi'])}]"


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown row per (sampler, n, shape): its cells' lowest and mean coverage."""
    out = []
    keys = dict.fromkeys((r["sampler"], r["n"], r["shape"]) for r in rows)
    for sampler, n, shape in keys:
        now = [r for r in rows if (r["sampler"], r["n"], r["shape"]) == (sampler, n, shape)]
        before = [before_fix(r) for r in now]
        cells = []
        for group in (now, before):
            low = min(group, key=lambda r: r["coverage"])
            cells += [
                _cov(low),
                _pct(float(np.mean([r["coverage"] for r in group]))),
                f"{sum(r['pass'] for r in group)}/{len(group)}",
            ]
        out.append(f"| {sampler} | {n} | {shape} | {now[0]['total']} | " + " | ".join(cells) + " |")
    return out


def markdown(result: dict[str, Any]) -> str:
    out = [
        "# Coverage of the log10 P(hit) interval of the GHK samplers (mvn, gmm)",
        "",
        f"`{result['command']}`: {result['run_s'] / 60:.1f} min on {result['machine']} "
        f"(load average {result['load_average_before_after'][0]} at the start, "
        f"{result['load_average_before_after'][1]} at the end).",
        "",
        f"{Z_DIM} components; fixed samplers with a one-factor covariance (exact log10 P by a "
        "1-D integral, quadrature error "
        + ", ".join(f"{k} {v:.1e}" for k, v in result["quadrature_error"].items())
        + " decades); population windows exact (central width "
        f"{HW}, centres evenly over [-0.8, 0.8]). Coverage with its 95% Clopper-Pearson "
        "interval; pass: the interval reaches 95%.",
        "",
        "## Summary",
        "",
        f"Per sampler, n and shape, over its {len(SCALES) * len(KS)} (scale, k) cells (log10 P "
        "from -0.3 to -47): the lowest coverage with its 95% interval, the mean coverage, the "
        "cells that pass; the same for the interval before the fix.",
        "",
        "| sampler | n | shape | data sets | lowest [95%] | mean | pass | before: lowest [95%] "
        "| before: mean | before: pass |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *summary(result["windows"]),
        "",
        "## GHK alone (windows at the truth)",
        "",
        "value +- 1.96 x the GHK relative error / ln 10, over GHK seeds; t: +- t_7 "
        f"({T_GHK:.2f}) x the same, the quantile `hit_intervals` uses for this part.",
        "",
        "| sampler | (scale, k) | true | error | GHK se | covered [95%] | pass | t: covered "
        "[95%] |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["ghk_alone"]:
        out.append(
            f"| {r['sampler']} | ({r['scale']:g}, {r['k']:g}) | {r['true']:.2f} "
            f"| {r['error_mean']:+.4f} ± {r['error_sd']:.4f} | {r['se_mean']:.4f} "
            f"| {_cov(r)} ({r['total']}) | {'yes' if r['pass'] else 'NO'} "
            f"| {_cov(r['t_coverage'])} |"
        )
    out += [
        "",
        "## The interval of `hit_intervals`, windows estimated from n latents",
        "",
        "error = value minus truth, mean ± sd over data sets; se: the interval's mean standard "
        "error (GHK part beside it); bias: the mean correction the interval is centred on; "
        "covered: as reported by `hit_intervals`; plain: value +- 1.96 se; before: the "
        "interval before the fix (value +- 1.96 x the bootstrap spread and GHK error, no bias "
        "correction), rebuilt from the same data sets.",
        "",
        "| sampler | n | shape | (scale, k) | true | error | se (GHK) | bias | covered [95%] "
        "| plain | pass | before [95%] |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["windows"]:
        out.append(
            f"| {r['sampler']} | {r['n']} | {r['shape']} | ({r['scale']:g}, {r['k']:g}) "
            f"| {r['true']:.2f} | {r['error_mean']:+.3f} ± {r['error_sd']:.3f} "
            f"| {r['se_mean']:.3f} ({r['ghk_se_mean']:.4f}) | {r['bias_mean']:+.3f} "
            f"| {_cov(r)} ({r['total']}) | {_pct(r['plain_z_coverage'])} "
            f"| {'yes' if r['pass'] else 'NO'} | {_cov(before_fix(r))} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer data sets; prints only")
    parser.add_argument(
        "--shapes", nargs="+", default=DEFAULT_SHAPES, choices=list(SHAPES), help="latent shapes"
    )
    args = parser.parse_args()
    repeats = QUICK_REPEATS if args.quick else REPEATS
    seeds = QUICK_GHK_SEEDS if args.quick else GHK_SEEDS
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    # one BLAS thread: the windows' 2N x 2N eigendecomposition ran 2x slower with two on a
    # busy 2-core machine
    with threadpool_limits(1):
        exact, quadrature = truths()
        ghk_rows = ghk_alone(seeds, exact)
        print(f"  GHK alone: {time.perf_counter() - started:.0f} s", flush=True)
        window_rows = windows_coverage(repeats, exact, args.shapes)
    command = "nice -n 10 .venv/bin/python benchmarks/bench_ghk_intervals.py"
    result: dict[str, Any] = {
        **run_record(command + (" --quick" * args.quick), started, load_before),
        "z_dim": Z_DIM,
        "quadrature_error": quadrature,
        "ghk_alone": ghk_rows,
        "windows": window_rows,
    }
    if args.quick:
        print(markdown(result))
    else:
        write_results("ghk_intervals", result, markdown(result))


if __name__ == "__main__":
    main()
