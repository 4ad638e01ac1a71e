"""The ``evaluate`` entry point: which generated latent vectors land where the faces are?

``mlflow run . -e evaluate --env-manager local [-P train_run=<id>] [-P sampler=uniform]``

For a train run (default: the newest finished one, optionally of ``case``) it draws
``n_samples`` vectors per sampler and scale, runs the hit test (docs/science.md) for every
half-width multiple ``k`` against the run's ``stats/components.csv`` (mu, hw), and logs:

- metrics ``hit_rate|hits|log10_p_hit/<sampler>/b<b>/k<k>``,
  ``radius_mean|radius_std/<sampler>/b<b>`` and ``radius_mean_theory|radius_std_theory/...``;
- ``hits/hit_rates.csv``, ``hits/heatmap_<sampler>.png``, ``misses/miss_counts_<sampler>.csv``
  and ``.png``, ``radius/radii.png``, ``decoded/<sampler>_b<b>.png``,
  ``decoded/reconstructions.png`` and ``decoded/overview.png``.

The b-axis: for ``uniform`` it is the half-width ``b`` of the box ``[-b, b]`` (``-P b=``).
``gaussian``, ``mvn`` and ``gmm`` have no box; their axis is the width factor ``s``
(``-P scale=``): sigma_i -> s*sigma_i, resp. cov -> s^2 cov (gmm: each component's covariance,
around its own mean), and metric names carry it in the same slot (``hit_rate/gaussian/b1/k2``
is scale 1), so every sampler reads as one grid.

``log10_p_hit`` is exact for uniform and gaussian; for mvn it is the GHK importance-sampling
estimate (:meth:`aelatent.core.samplers.MVNSampler.window_log10_probability`), for gmm the
weighted sum of its components' GHK estimates (:mod:`aelatent.core.mixture`).

Beside the box test, the k-NN region test (:mod:`aelatent.jobs.knn_evaluation`): precision,
recall, density and coverage of ``knn_n`` vectors per sampler and b or scale against the
training latents' k-NN balls, and of the held-out latents as the ceiling.
"""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aelatent.core.hit_uncertainty import (
    HeldoutCeiling,
    HitIntervals,
    grid_log10_inside,
    heldout_ceiling,
    hit_intervals,
)
from aelatent.core.hits import HitGrid, hit_grid
from aelatent.core.mixture import MIN_LATENTS as GMM_MIN_LATENTS
from aelatent.core.mixture import GMMSampler
from aelatent.core.radius import radii
from aelatent.core.radius_theory import (
    RadiusMoments,
    gaussian_radius_moments,
    mvn_radius_moments,
    uniform_radius_moments,
)
from aelatent.core.samplers import (
    GaussianSampler,
    MVNSampler,
    Sampler,
    UniformSampler,
    grid_log10_point_count,
)
from aelatent.core.windows import (
    DEFAULT_ESTIMATOR,
    FWHM_PER_SIGMA,
    WINDOW_ESTIMATORS,
    Windows,
    check_estimate,
)
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import WINDOWS_CSV, write_csv
from aelatent.io.mlflow_native import (
    HIT_RATES_TABLE,
    WINDOWS_TABLE,
    evaluation_note,
    log_csv_table,
    log_train_dataset,
    set_description,
    train_run_line,
)
from aelatent.io.tracking import (
    ANY_CASE,
    NEWEST,
    ArgumentParser,
    entry_point_run,
    parse_float_list,
    parse_int,
    parse_train_run_choice,
    run_entry_point,
)
from aelatent.io.train_run import TrainRun, read_train_run
from aelatent.jobs import knn_evaluation as knn
from aelatent.limits import (
    EVALUATE_N_SAMPLES_WHY,
    LABEL_WHY,
    MAX_EVALUATE_N_SAMPLES,
    MAX_K,
    MAX_N_DECODED,
    MAX_SCALE,
    MAX_SEED,
    N_DECODED_WHY,
    SEED_WHY,
    check_distinct_labels,
    check_memory,
    evaluate_memory_bytes,
)

SAMPLERS = ("uniform", "gaussian", "mvn", "gmm")
GHK_SAMPLERS = ("mvn", "gmm")  # log10_p_hit is a GHK estimate, with its ghk_rel_se
ALL = "all"
DEFAULT_B = "1,1.5,2,3,4,6,8,12"
DEFAULT_K = "1,1.5,2,3,6,12"
DEFAULT_SCALE = "0.5,1,1.5,2,3"
DEFAULT_N_SAMPLES = "200000"
DEFAULT_N_DECODED = "16"
DEFAULT_GRID_SPACING = "0.5"
MAX_N_SAMPLES = MAX_EVALUATE_N_SAMPLES
HIT_RATES_CSV = "hits/hit_rates.csv"
TRAIN_RUN_TAG = "train_run"


@dataclass(frozen=True)
class EvaluateRequest:
    """Validated parameters; ``raw`` keeps them as given, for the run's params."""

    train_run: str | None
    case: str | None
    samplers: tuple[str, ...]
    b: tuple[float, ...]
    k: tuple[float, ...]
    scale: tuple[float, ...]
    n_samples: int
    seed: int
    n_decoded: int
    estimate: str
    grid_spacing: float
    raw: dict[str, str]
    knn_k: int = int(knn.DEFAULT_KNN_K)
    knn_n: int = int(knn.DEFAULT_KNN_N)  # 0: no k-NN test
    generator: tuple[str, float] | None = None  # log_generator: (sampler, b or scale) to log

    def scales_for(self, sampler: str) -> tuple[float, ...]:
        return self.b if sampler == "uniform" else self.scale


def parse_samplers(text: str) -> tuple[str, ...]:
    names = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    if not names or ALL in names:
        return SAMPLERS
    unknown = [s for s in names if s not in SAMPLERS]
    if unknown:
        raise UserError(
            f"sampler={text!r}: unknown sampler {unknown[0]!r}; expected one of "
            f"{', '.join(SAMPLERS)}, a comma list of them, or {ALL}"
        )
    return tuple(s for s in SAMPLERS if s in names)


def parse_args(argv: Sequence[str] | None) -> EvaluateRequest:
    parser = ArgumentParser(prog="aelatent evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--train-run", default=NEWEST,
                        help="train run id, models:/<name>/<version or @alias>, or 'newest'")
    parser.add_argument("--case", default=ANY_CASE, help="with 'newest': the case (I, II, ...)")
    parser.add_argument("--sampler", default=ALL, help="uniform, gaussian, mvn, gmm or all")
    parser.add_argument("--b", default=DEFAULT_B, help="uniform box half-widths, comma list")
    parser.add_argument("--k", default=DEFAULT_K, help="half-width multiples, comma list")
    parser.add_argument("--scale", default=DEFAULT_SCALE, help="gaussian/mvn/gmm width factors")
    parser.add_argument("--n-samples", default=DEFAULT_N_SAMPLES)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--n-decoded", default=DEFAULT_N_DECODED, help="images per grid, 0: none")
    parser.add_argument("--estimate", default=DEFAULT_ESTIMATOR,
                        help=f"window estimator: {', '.join(WINDOW_ESTIMATORS)}")
    parser.add_argument("--grid-spacing", default=DEFAULT_GRID_SPACING,
                        help="method 1: spacing of the grid over [-b, b]^z_dim")
    parser.add_argument("--log-generator", default="none",
                        help="none, or <sampler>:<b or scale> to log as the pyfunc 'generator'")
    parser.add_argument("--knn-k", default=knn.DEFAULT_KNN_K, help="k of the k-NN balls")
    parser.add_argument("--knn-n", default=knn.DEFAULT_KNN_N,
                        help="real and generated vectors of the k-NN test; 0: no k-NN test")
    args = parser.parse_args(argv)
    raw = dict(vars(args))
    n_samples = parse_int(args.n_samples, "n_samples", minimum=1, maximum=MAX_N_SAMPLES,
                          why=EVALUATE_N_SAMPLES_WHY)
    train_run, case = parse_train_run_choice(args.train_run, args.case)
    spacing = parse_float_list(args.grid_spacing, "grid_spacing")
    if len(spacing) != 1:
        raise UserError(f"grid_spacing={args.grid_spacing!r}: expected one number > 0")
    return EvaluateRequest(
        train_run=train_run,
        case=case,
        samplers=parse_samplers(args.sampler),
        b=_labelled_values(args.b, "b", MAX_SCALE),
        k=_labelled_values(args.k, "k", MAX_K),
        scale=_labelled_values(args.scale, "scale", MAX_SCALE),
        n_samples=n_samples,
        seed=parse_int(args.seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY),
        n_decoded=parse_int(args.n_decoded, "n_decoded", minimum=0, maximum=MAX_N_DECODED,
                            why=N_DECODED_WHY),
        estimate=check_estimate(args.estimate),
        grid_spacing=spacing[0],
        raw=raw,
        knn_k=parse_int(args.knn_k, "knn_k", minimum=1, maximum=knn.MAX_KNN_K),
        knn_n=parse_int(args.knn_n, "knn_n", minimum=0, maximum=knn.MAX_KNN_N,
                        why=knn.KNN_N_WHY),
        generator=_parse_generator(args.log_generator),
    )


def _parse_generator(text: str) -> tuple[str, float] | None:
    from aelatent.io.generator_model import parse_generator_choice

    return parse_generator_choice(text)


def _unique(values: list[float]) -> tuple[float, ...]:
    return tuple(sorted(set(values)))


def _labelled_values(text: str, name: str, maximum: float) -> tuple[float, ...]:
    """A comma list of values > 0 that go into metric names: at most ``maximum`` (no
    exponent in ``f"{x:g}"``) and no two printing alike (one metric would overwrite the other).
    """
    values = parse_float_list(text, name, maximum=maximum, why=LABEL_WHY)
    check_distinct_labels(values, name, text)
    return _unique(values)


def load_train_inputs(request: EvaluateRequest) -> TrainRun:
    """Read the train run (:mod:`aelatent.io.train_run`) with evaluate's own checks: memory,
    enough latents for gmm and the k-NN test, a model to decode with; UserError if unusable."""

    def check(run_id: str, train: np.ndarray) -> None:
        check_evaluate_memory(request, int(train.shape[1]))
        if "gmm" in request.samplers and train.shape[0] < GMM_MIN_LATENTS:
            raise UserError(f"sampler=gmm needs at least {GMM_MIN_LATENTS} training latents to "
                            f"fit a mixture; train run {run_id!r} has {train.shape[0]}")
        knn.check_knn_sizes(request.knn_k, request.knn_n, int(train.shape[0]))
        if request.n_decoded > 0:
            _check_has_model(run_id)
        if request.generator is not None:
            from aelatent.io.generator_model import check_has_decoder

            check_has_decoder(run_id)

    return read_train_run(request.train_run, request.case, request.estimate, request.seed,
                          check=check)


def check_evaluate_memory(request: EvaluateRequest, z_dim: int) -> None:
    """Refuse, before any sampling, a grid whose buffers cannot fit in memory (the latents'
    z_dim is known only once the train run is read)."""
    n_scales = sum(len(request.scales_for(name)) for name in request.samplers)
    check_memory(
        evaluate_memory_bytes(z_dim, request.n_samples, n_scales, len(request.k)),
        f"evaluating {n_scales} values of b and scale with {len(request.k)} of k "
        f"at z_dim={z_dim}",
        "give fewer values of b, scale or k",
    )


def _check_has_model(run_id: str) -> None:
    """The run's ``model`` resolves (MLflow 3 keeps it as a logged model, not a run artifact)."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    from aelatent.io.run_artifacts import MODEL_NAME

    try:
        get_model_info(f"runs:/{run_id}/{MODEL_NAME}")
    except (MlflowException, OSError):
        raise UserError(
            f"run {run_id!r} has no model {MODEL_NAME!r} to decode with; pass -P n_decoded=0"
        ) from None


def build_sampler(name: str, inputs: TrainRun, seed: int = 0) -> Sampler:
    """The sampler at scale 1; ``with_scale`` gives the rest of its axis. ``seed``: the
    mixture's fit (gmm)."""
    if name == "uniform":
        return UniformSampler(1.0, inputs.latents.shape[1])
    if name == "gaussian":  # the Gaussian with the windows' centres and widths
        return GaussianSampler(inputs.mu, inputs.hw / FWHM_PER_SIGMA)
    if name == "mvn":
        return MVNSampler.from_latents(inputs.latents)
    if name == "gmm":  # a Gaussian mixture in the principal subspace, chosen by BIC
        return GMMSampler.from_latents(inputs.latents, seed=seed)
    raise UserError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def radius_theory(sampler: Sampler, scale: float) -> RadiusMoments:
    """Uniform: the closed form; gaussian, mvn, gmm: exact quadrature (anisotropic widths)."""
    if isinstance(sampler, UniformSampler):
        return uniform_radius_moments(scale, sampler.z_dim)
    if isinstance(sampler, GaussianSampler):
        return gaussian_radius_moments(sampler.mu, scale * sampler.sigma, "exact")
    if isinstance(sampler, MVNSampler):
        return mvn_radius_moments(sampler.mean, scale**2 * sampler.cov, "exact")
    if isinstance(sampler, GMMSampler):
        return sampler.with_scale(scale).radius_moments()
    raise TypeError(f"no radius theory for {type(sampler).__name__}")


def metric_key(kind: str, sampler: str, b: float, k: float | None = None) -> str:
    """Metric names (docs/architecture.md): ``hit_rate/uniform/b1.5/k2``,
    ``radius_mean/uniform/b1.5``."""
    key = f"{kind}/{sampler}/b{b:g}"
    return key if k is None else f"{key}/k{k:g}"


def grid_metrics(grid: HitGrid, theory: Sequence[RadiusMoments],
                 intervals: HitIntervals) -> dict[str, float]:
    """Every figure of one sampler's grid, each with its interval beside it."""
    metrics: dict[str, float] = {}
    for j, b in enumerate(grid.scales):
        for i, k in enumerate(grid.ks):
            values = {
                "hit_rate": grid.hit_rate[j, i],
                "hit_rate_lo": intervals.hit_lo[j, i],
                "hit_rate_hi": intervals.hit_hi[j, i],
                "hits": grid.hits[j, i],
                "log10_p_hit": grid.log10_p_hit[j, i],
                "log10_p_hit_lo": intervals.log10_lo[j, i],
                "log10_p_hit_hi": intervals.log10_hi[j, i],
                "log10_p_hit_se": intervals.log10_se[j, i],
            }
            if grid.sampler in GHK_SAMPLERS:
                values["ghk_rel_se"] = intervals.ghk_rel_se[j, i]
            for kind, value in values.items():
                metrics[metric_key(kind, grid.sampler, b, k)] = float(value)
        metrics[metric_key("radius_mean", grid.sampler, b)] = float(grid.radius_mean[j])
        metrics[metric_key("radius_std", grid.sampler, b)] = float(grid.radius_std[j])
        metrics[metric_key("radius_mean_theory", grid.sampler, b)] = theory[j].mean
        metrics[metric_key("radius_std_theory", grid.sampler, b)] = theory[j].std
    return metrics


def ceiling_metrics(ceiling: HeldoutCeiling) -> dict[str, float]:
    """``hit_rate/heldout/k<k>`` with its interval: what real faces reach."""
    metrics: dict[str, float] = {}
    for i, k in enumerate(ceiling.ks):
        metrics[f"hit_rate/heldout/k{k:g}"] = float(ceiling.rate[i])
        metrics[f"hit_rate_lo/heldout/k{k:g}"] = float(ceiling.lo[i])
        metrics[f"hit_rate_hi/heldout/k{k:g}"] = float(ceiling.hi[i])
        metrics[f"hits/heldout/k{k:g}"] = float(ceiling.hits[i])
    metrics["n_heldout"] = float(ceiling.n)
    return metrics


def grid_method_metrics(windows: Windows, bs: Sequence[float], ks: Sequence[float],
                        spacing: float) -> dict[str, float]:
    """Method 1: log10 of the grid's points over [-b, b]^d and of those inside the windows."""
    metrics: dict[str, float] = {}
    for b in bs:
        metrics[f"grid_log10_points/b{b:g}"] = grid_log10_point_count(b, spacing, windows.z_dim)
        for k in ks:
            metrics[f"grid_log10_inside/b{b:g}/k{k:g}"] = grid_log10_inside(windows, b, k, spacing)
    return metrics


HIT_RATE_COLUMNS = ["sampler", "b", "k", "hits", "n", "hit_rate", "hit_rate_lo", "hit_rate_hi",
                    "log10_p_hit", "log10_p_hit_lo", "log10_p_hit_hi", "log10_p_hit_se",
                    "p_method", "windows"]


def write_hit_rates(path: Path, grids: Sequence[HitGrid], intervals: Sequence[HitIntervals],
                    ceiling: HeldoutCeiling, estimator: str) -> Path:
    """One row per (sampler, b, k) with intervals, and the held-out ceiling per k."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HIT_RATE_COLUMNS)
        for grid, ci in zip(grids, intervals, strict=True):
            method = "ghk_estimate" if grid.sampler in GHK_SAMPLERS else "exact"
            for j, b in enumerate(grid.scales):
                for i, k in enumerate(grid.ks):
                    numbers = (grid.hit_rate, ci.hit_lo, ci.hit_hi, grid.log10_p_hit,
                               ci.log10_lo, ci.log10_hi, ci.log10_se)
                    writer.writerow([grid.sampler, f"{b:g}", f"{k:g}", int(grid.hits[j, i]),
                                     grid.n, *(repr(float(a[j, i])) for a in numbers),
                                     method, estimator])
        for i, k in enumerate(ceiling.ks):
            writer.writerow(["heldout", "", f"{k:g}", int(ceiling.hits[i]), ceiling.n,
                             repr(float(ceiling.rate[i])), repr(float(ceiling.lo[i])),
                             repr(float(ceiling.hi[i])), "", "", "", "", "real", estimator])
    return path


def write_miss_counts(path: Path, grid: HitGrid) -> Path:
    """Long format: how many vectors miss exactly ``n_missing`` components, per (b, k)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sampler", "b", "k", "n_missing", "n_vectors"])
        for j, b in enumerate(grid.scales):
            for m, i in enumerate(grid.miss_k_index):
                counts = grid.miss_counts[j, m]
                for n_missing in np.flatnonzero(counts):
                    writer.writerow(
                        [
                            grid.sampler,
                            f"{b:g}",
                            f"{grid.ks[i]:g}",
                            int(n_missing),
                            int(counts[n_missing]),
                        ]
                    )
    return path


def decode_grids(
    request: EvaluateRequest, inputs: TrainRun, samplers: dict[str, Sampler], out: Path
) -> list[Path]:
    """Decoded sampled vectors per sampler and scale, beside decoded real latents."""
    from aelatent.io.run_artifacts import load_autoencoder
    from aelatent.model import decoder_of
    from aelatent.plots.image_grids import save_image_rows

    decoder = decoder_of(load_autoencoder(inputs.run_id))
    n = request.n_decoded
    pick = np.random.default_rng([request.seed, 99]).choice(
        len(inputs.latents), size=min(n, len(inputs.latents)), replace=False
    )
    real = decoder.predict(inputs.latents[np.sort(pick)], verbose=0)
    paths = [
        save_image_rows(
            [real],
            ["real latents"],
            out / "decoded" / "reconstructions.png",
            title=f"decoded real latents (reconstructions), run {inputs.run_id[:8]}",
        )
    ]
    rows, labels = [real], ["real"]
    for name, sampler in samplers.items():
        for s in request.scales_for(name):
            # the same base vectors at every scale: the rows differ by the scale alone
            rng = np.random.default_rng([request.seed, SAMPLERS.index(name), 1000])
            images = decoder.predict(sampler.with_scale(s).sample(n, rng), verbose=0)
            axis = "b" if name == "uniform" else "s"
            paths.append(
                save_image_rows(
                    [images],
                    [f"{name}\n{axis} = {s:g}"],
                    out / "decoded" / f"{name}_b{s:g}.png",
                    title=f"{name} sampler, {axis} = {s:g}: decoded vectors",
                )
            )
            rows.append(images[: min(n, 8)])
            labels.append(f"{name} {axis}={s:g}")
    rows[0] = rows[0][: min(n, 8)]
    paths.append(
        save_image_rows(
            rows,
            labels,
            out / "decoded" / "overview.png",
            title="which samplers make faces? (top: real latents)",
        )
    )
    return paths


def evaluate(request: EvaluateRequest, inputs: TrainRun, *, nested: bool = False) -> str:
    """Run the evaluation in an MLflow run (started, or resumed under ``mlflow run``)."""
    import mlflow

    from aelatent.plots.evaluation import (
        SCALE_LABELS,
        ceiling_rates,
        grid_rate_curves,
        save_hit_heatmap,
        save_hit_rate_curves,
        save_miss_counts,
        save_radius_overlay,
    )

    tags = {TRAIN_RUN_TAG: inputs.run_id, "case": inputs.case, "dataset": inputs.dataset}
    name = f"evaluate case {inputs.case} {','.join(request.samplers)}"
    with (
        entry_point_run("evaluate", name, tags, nested=nested) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out = Path(tmp)
        mlflow.log_params(
            {
                **request.raw,
                "train_run_id": inputs.run_id,
                "samplers": ",".join(request.samplers),
                "z_dim": inputs.latents.shape[1],
                "n_images": inputs.latents.shape[0] + inputs.heldout.shape[0],
                "n_train_latents": inputs.latents.shape[0],
                "n_heldout_latents": inputs.heldout.shape[0],
            }
        )
        log_files(out, [write_csv(out / WINDOWS_CSV, inputs.windows.columns())])
        log_csv_table(out / WINDOWS_CSV, WINDOWS_TABLE)
        log_train_dataset(inputs.run_id)  # context "evaluation"
        train_line = train_run_line(inputs.run_id)
        set_description(train_line)  # the findings join it when every sampler is done
        ceiling = heldout_ceiling(inputs.heldout, inputs.windows, np.asarray(request.k))
        mlflow.log_metrics(ceiling_metrics(ceiling))
        mlflow.log_metrics(grid_method_metrics(
            inputs.windows, request.b, request.k, request.grid_spacing))
        print(_ceiling_summary(ceiling, inputs.windows.estimator), flush=True)
        samplers = {name: build_sampler(name, inputs, request.seed) for name in request.samplers}
        for fitted in samplers.values():
            if isinstance(fitted, GMMSampler):  # the mixture BIC chose, and every candidate
                log_files(out, [write_csv(out / "gmm" / "bic.csv", fitted.mixture.bic_columns())])
                mlflow.log_metrics(fitted.mixture.summary_metrics())
                mlflow.log_param("gmm_covariance_type", fitted.mixture.covariance_type)
                print(fitted.mixture.describe(), flush=True)
        region = None  # the k-NN test (knn_n = 0: none)
        if request.knn_n > 0:
            region = knn.RegionTest(inputs.latents, inputs.heldout, request.knn_k,
                                    request.knn_n, request.seed)
            mlflow.log_metrics(region.start_metrics())
            print(region.heldout_summary(), flush=True)
        grids: list[HitGrid] = []
        all_intervals: list[HitIntervals] = []
        theory_means: dict[str, list[float]] = {}
        # Each sampler's results are logged as soon as it finishes (artifacts, then metrics,
        # `seconds/<sampler>` last), so an interrupted evaluation keeps every finished sampler;
        # only the figures drawn over all samplers (radius/radii.png, decoded/) come at the end.
        for name, sampler in samplers.items():
            started = time.perf_counter()
            grid = hit_grid(
                sampler,
                request.scales_for(name),
                request.k,
                inputs.mu,
                inputs.hw,
                request.n_samples,
                np.random.default_rng([request.seed, SAMPLERS.index(name)]),
            )
            theory = [radius_theory(sampler, s) for s in grid.scales]
            intervals = hit_intervals(grid, sampler, inputs.windows, seed=request.seed)
            metrics = grid_metrics(grid, theory, intervals)
            if region is not None:  # the k-NN test at the same b or scales
                metrics.update(region.score(name, sampler, [float(s) for s in grid.scales],
                                            SAMPLERS.index(name)))
            all_intervals.append(intervals)
            seconds = time.perf_counter() - started
            theory_means[name] = [t.mean for t in theory]
            grids.append(grid)
            label = SCALE_LABELS[name]
            files = [
                save_hit_heatmap(grid, out / "hits" / f"heatmap_{name}.png", label),
                save_hit_rate_curves(
                    grid_rate_curves(grid, intervals), ceiling_rates(ceiling),
                    out / "hits" / f"rate_curves_{name}.png", label,
                    title=f"{name}: hit rate of {grid.n:,} vectors (95% interval)",
                ),
                write_miss_counts(out / "misses" / f"miss_counts_{name}.csv", grid),
                save_miss_counts(grid, out / "misses" / f"miss_counts_{name}.png", label),
                *([] if region is None else region.files(
                    out, name, grid_rate_curves(grid, intervals), ceiling_rates(ceiling), label)),
                # the combined table, rewritten with every sampler finished so far
                write_hit_rates(out / HIT_RATES_CSV, grids, all_intervals, ceiling,
                                inputs.windows.estimator),
            ]
            log_files(out, files)
            mlflow.log_metrics(metrics)
            mlflow.log_metric(f"seconds/{name}", seconds)
            print(_summary(grid), flush=True)
            if region is not None:
                print(region.summary(name), flush=True)
        log_csv_table(out / HIT_RATES_CSV, HIT_RATES_TABLE)  # the whole grid, as a UI table
        set_description(evaluation_note(grids, all_intervals, ceiling), train_line)
        log_files(out, [save_radius_overlay(radii(inputs.latents), grids,
                                            out / "radius" / "radii.png", theory_means,
                                            SCALE_LABELS)])
        if request.n_decoded > 0:
            log_files(out, decode_grids(request, inputs, samplers, out))
        if request.generator is not None:  # last: every figure above is logged already
            from aelatent.io.generator_model import log_generator

            chosen, scale = request.generator
            log_generator(inputs.run_id, chosen, scale, mu=inputs.mu, hw=inputs.hw,
                          latents=inputs.latents, source=f"evaluate run {run.info.run_id}",
                          seed=request.seed, fitted=samplers)
        return run.info.run_id


def log_files(out: Path, paths: Sequence[Path]) -> None:
    """Log files written under ``out`` at the same relative paths in the active run."""
    import mlflow

    for path in paths:
        folder = path.parent.relative_to(out).as_posix()
        mlflow.log_artifact(str(path), None if folder == "." else folder)


def _ceiling_summary(ceiling: HeldoutCeiling, estimator: str) -> str:
    rates = ", ".join(
        f"k={k:g}: {r:.3f} [{lo:.3f}, {hi:.3f}]"
        for k, r, lo, hi in zip(ceiling.ks, ceiling.rate, ceiling.lo, ceiling.hi, strict=True)
    )
    return f"held-out real latents ({ceiling.n}) inside the {estimator} windows: {rates}"


def _summary(grid: HitGrid) -> str:
    lines = [
        f"{grid.sampler}: hits of {grid.n} vectors (rows b/scale, columns k)",
        "        " + "".join(f"{k:>10g}" for k in grid.ks),
    ]
    for j, b in enumerate(grid.scales):
        lines.append(f"{b:>8g}" + "".join(f"{h:>10d}" for h in grid.hits[j]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    request = parse_args(argv)
    inputs = load_train_inputs(request)
    return evaluate(request, inputs)


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("evaluate", main, argv)


if __name__ == "__main__":
    cli()
