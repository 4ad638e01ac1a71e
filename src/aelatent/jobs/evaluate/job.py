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

Beside the box test, the k-NN region test (:mod:`aelatent.jobs.evaluate.knn`): precision,
recall, density and coverage of ``knn_n`` vectors per sampler and b or scale against the
training latents' k-NN balls, and of the held-out latents as the ceiling.

This module runs the job; beside it :mod:`~aelatent.jobs.evaluate.request` holds the
parameters and :mod:`~aelatent.jobs.evaluate.metrics` the metric names, CSVs and summaries.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import get_model_info

from aelatent.core import sampler_registry
from aelatent.core.hit_uncertainty import (
    HitIntervals,
    heldout_ceiling,
    hit_intervals,
)
from aelatent.core.hits import HitGrid, hit_grid
from aelatent.core.mixture import GMMSampler
from aelatent.core.radius import radii
from aelatent.core.sampler_registry import check_fits, radius_moments, spec_of, stream_of
from aelatent.core.samplers import Sampler
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import write_csv
from aelatent.io.mlflow_native import (
    evaluation_note,
    log_csv_table,
    log_train_dataset,
    set_description,
    train_run_line,
)
from aelatent.io.run_artifacts import MODEL_NAME, load_autoencoder
from aelatent.io.tracking import (
    entry_point_run,
    run_entry_point,
)
from aelatent.io.train_run import TrainRun, read_train_run
from aelatent.jobs.evaluate import knn
from aelatent.jobs.evaluate import verdict as judging
from aelatent.jobs.evaluate.metrics import (
    ceiling_metrics,
    ceiling_summary,
    grid_method_metrics,
    grid_metrics,
    grid_summary,
    write_hit_rates,
    write_miss_counts,
)
from aelatent.jobs.evaluate.request import (
    EvaluateRequest,
    check_evaluate_memory,
    parse_args,
)
from aelatent.plots.evaluation import (
    ceiling_rates,
    grid_rate_curves,
    save_hit_heatmap,
    save_hit_rate_curves,
    save_miss_counts,
    save_radius_overlay,
)
from aelatent.plots.image_grids import save_image_rows
from aelatent.schema import HIT_RATES_CSV, HIT_RATES_TABLE, WINDOWS_CSV, WINDOWS_TABLE, decoded_png
from aelatent.serving.generator_model import check_has_decoder, log_generator

TRAIN_RUN_TAG = "train_run"


def load_train_inputs(request: EvaluateRequest) -> TrainRun:
    """Read the train run (:mod:`aelatent.io.train_run`) with evaluate's own checks: memory,
    enough latents for gmm and the k-NN test, a model to decode with; UserError if unusable."""

    def check(run_id: str, train: np.ndarray) -> None:
        check_evaluate_memory(request, int(train.shape[1]))
        for name in request.samplers:
            check_fits(name, run_id, int(train.shape[0]))
        knn.check_knn_sizes(request.knn_k, request.knn_n, int(train.shape[0]))
        judging.check_verdict_sizes(request.verdict, run_id, int(train.shape[0]))
        if request.n_decoded > 0:
            _check_has_model(run_id)
        if "cycle" in verdict_tests(request, run_id):
            _check_has_model(run_id, "for the verdict's cycle test; drop cycle from -P verdict")
        if request.generator is not None:
            check_has_decoder(run_id)

    return read_train_run(
        request.train_run, request.case, request.estimate, request.seed, check=check
    )


def verdict_tests(request: EvaluateRequest, run_id: str) -> tuple[str, ...]:
    """The verdict's tests for this train run (``auto``: no cycle without a model)."""
    has_model = "cycle" not in request.verdict or _has_model(run_id)
    return judging.usable_tests(request.verdict, request.raw.get("verdict", ""), has_model)


def _has_model(run_id: str) -> bool:
    try:
        get_model_info(f"runs:/{run_id}/{MODEL_NAME}")
    except (MlflowException, OSError):
        return False
    return True


def _check_has_model(run_id: str, advice: str = "to decode with; pass -P n_decoded=0") -> None:
    """The run's ``model`` resolves (MLflow 3 keeps it as a logged model, not a run artifact)."""
    if not _has_model(run_id):
        raise UserError(f"run {run_id!r} has no model {MODEL_NAME!r} {advice}")


def build_sampler(name: str, inputs: TrainRun, seed: int = 0) -> Sampler:
    """The sampler at scale 1 (:func:`aelatent.core.sampler_registry.build_sampler`); ``seed``:
    a random fit's seed (gmm)."""
    return sampler_registry.build_sampler(name, inputs.mu, inputs.hw, inputs.latents, seed=seed)


def decode_grids(
    request: EvaluateRequest, inputs: TrainRun, samplers: dict[str, Sampler], out: Path
) -> list[Path]:
    """Decoded sampled vectors per sampler and scale, beside decoded real latents."""
    from aelatent.model import decoder_of  # TensorFlow: only the decoder paths import it

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
            rng = np.random.default_rng([request.seed, stream_of(name), 1000])
            images = decoder.predict(sampler.with_scale(s).sample(n, rng), verbose=0)
            axis = spec_of(name).axis_symbol
            paths.append(
                save_image_rows(
                    [images],
                    [f"{name}\n{axis} = {s:g}"],
                    out / decoded_png(name, s),
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
        mlflow.log_metrics(
            grid_method_metrics(inputs.windows, request.b, request.k, request.grid_spacing)
        )
        print(ceiling_summary(ceiling, inputs.windows.estimator), flush=True)
        samplers = {name: build_sampler(name, inputs, request.seed) for name in request.samplers}
        for fitted in samplers.values():
            if isinstance(fitted, GMMSampler):  # the mixture BIC chose, and every candidate
                log_files(out, [write_csv(out / "gmm" / "bic.csv", fitted.mixture.bic_columns())])
                mlflow.log_metrics(fitted.mixture.summary_metrics())
                mlflow.log_param("gmm_covariance_type", fitted.mixture.covariance_type)
                print(fitted.mixture.describe(), flush=True)
        region = None  # the k-NN test (knn_n = 0: none)
        if request.knn_n > 0:
            region = knn.RegionTest(
                inputs.latents, inputs.heldout, request.knn_k, request.knn_n, request.seed
            )
            mlflow.log_metrics(region.start_metrics())
            print(region.heldout_summary(), flush=True)
        judge = None  # the verdict (verdict=none: none)
        tests = verdict_tests(request, inputs.run_id)
        if tests:
            cycle = (
                judging.keras_cycle(load_autoencoder(inputs.run_id)) if "cycle" in tests else None
            )
            judge = judging.Verdict(
                inputs.latents,
                inputs.heldout,
                tests,
                request.verdict_splits,
                estimate=request.estimate,
                seed=request.seed,
                cycle=cycle,
            )
            mlflow.log_metrics(judge.start_metrics())
            log_files(out, judge.files(out))
            print(judge.summary(judge.rows), flush=True)
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
                np.random.default_rng([request.seed, stream_of(name)]),
            )
            theory = [radius_moments(sampler, s) for s in grid.scales]
            intervals = hit_intervals(grid, sampler, inputs.windows, seed=request.seed)
            metrics = grid_metrics(grid, theory, intervals)
            if region is not None:  # the k-NN test at the same b or scales
                metrics.update(
                    region.score(name, sampler, [float(s) for s in grid.scales], stream_of(name))
                )
            rows = [] if judge is None else judge.score(name, [float(s) for s in grid.scales])
            for row in rows:
                metrics.update(row.metrics())
            all_intervals.append(intervals)
            seconds = time.perf_counter() - started
            theory_means[name] = [t.mean for t in theory]
            grids.append(grid)
            label = spec_of(name).axis_label
            files = [
                save_hit_heatmap(grid, out / "hits" / f"heatmap_{name}.png", label),
                save_hit_rate_curves(
                    grid_rate_curves(grid, intervals),
                    ceiling_rates(ceiling),
                    out / "hits" / f"rate_curves_{name}.png",
                    label,
                    title=f"{name}: hit rate of {grid.n:,} vectors (95% interval)",
                ),
                write_miss_counts(out / "misses" / f"miss_counts_{name}.csv", grid),
                save_miss_counts(grid, out / "misses" / f"miss_counts_{name}.png", label),
                *(
                    []
                    if region is None
                    else region.files(
                        out, name, grid_rate_curves(grid, intervals), ceiling_rates(ceiling), label
                    )
                ),
                *([] if judge is None else judge.files(out)),
                # the combined table, rewritten with every sampler finished so far
                write_hit_rates(
                    out / HIT_RATES_CSV, grids, all_intervals, ceiling, inputs.windows.estimator
                ),
            ]
            log_files(out, files)
            mlflow.log_metrics(metrics)
            mlflow.log_metric(f"seconds/{name}", seconds)
            print(grid_summary(grid), flush=True)
            if region is not None:
                print(region.summary(name), flush=True)
            if judge is not None and rows:
                print(judge.summary(rows), flush=True)
        log_csv_table(out / HIT_RATES_CSV, HIT_RATES_TABLE)  # the whole grid, as a UI table
        set_description(
            "" if judge is None else judge.note(),
            evaluation_note(grids, all_intervals, ceiling),
            train_line,
        )
        log_files(
            out,
            [
                save_radius_overlay(
                    radii(inputs.latents),
                    grids,
                    out / "radius" / "radii.png",
                    theory_means,
                    {name: spec_of(name).axis_label for name in samplers},
                )
            ],
        )
        if request.n_decoded > 0:
            log_files(out, decode_grids(request, inputs, samplers, out))
        if request.generator is not None:  # last: every figure above is logged already
            chosen, scale = request.generator
            log_generator(
                inputs.run_id,
                chosen,
                scale,
                mu=inputs.mu,
                hw=inputs.hw,
                latents=inputs.latents,
                source=f"evaluate run {run.info.run_id}",
                seed=request.seed,
                fitted=samplers,
            )
        return run.info.run_id


def log_files(out: Path, paths: Sequence[Path]) -> None:
    """Log files written under ``out`` at the same relative paths in the active run."""
    for path in paths:
        folder = path.parent.relative_to(out).as_posix()
        mlflow.log_artifact(str(path), None if folder == "." else folder)


def main(argv: Sequence[str] | None = None) -> str:
    request = parse_args(argv)
    inputs = load_train_inputs(request)
    return evaluate(request, inputs)


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("evaluate", main, argv)


if __name__ == "__main__":
    cli()
