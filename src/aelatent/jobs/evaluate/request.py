"""The evaluate entry point's parameters: :class:`EvaluateRequest`, validated once from the
command line (samplers, b, k, scale, sizes, the generator to log), and the memory check that
needs the latents' z_dim."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aelatent.arguments import (
    ArgumentParser,
    add_train_run_arguments,
    parse_choices,
    parse_float_list,
    parse_int,
    parse_train_run_choice,
)
from aelatent.core.sampler_registry import DEFAULT_SAMPLERS, SAMPLERS, spec_of
from aelatent.core.windows import (
    DEFAULT_ESTIMATOR,
    WINDOW_ESTIMATORS,
    check_estimate,
)
from aelatent.errors import UserError
from aelatent.jobs.evaluate import knn
from aelatent.jobs.evaluate import verdict as judging
from aelatent.limits import (
    EVALUATE_N_SAMPLES_WHY,
    GRID_SPACING_WHY,
    LABEL_WHY,
    MAX_EVALUATE_N_SAMPLES,
    MAX_GRID_SPACING,
    MAX_K,
    MAX_N_DECODED,
    MAX_SCALE,
    MAX_SEED,
    MIN_GRID_SPACING,
    MIN_K,
    MIN_SCALE,
    N_DECODED_WHY,
    SEED_WHY,
    SMALL_SCALE_WHY,
    check_distinct_labels,
    check_memory,
    evaluate_memory_bytes,
)
from aelatent.serving.generator_model import parse_generator_choice

ALL = "all"


DEFAULT_B = "1,1.5,2,3,4,6,8,12"


DEFAULT_K = "1,1.5,2,3,6,12"


DEFAULT_SCALE = "0.5,1,1.5,2,3"


DEFAULT_N_SAMPLES = "200000"


DEFAULT_N_DECODED = "16"


DEFAULT_GRID_SPACING = "0.5"


MAX_N_SAMPLES = MAX_EVALUATE_N_SAMPLES


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
    verdict: tuple[str, ...] = ()  # the verdict's tests asked for (none: no verdict)
    verdict_splits: int = int(judging.DEFAULT_SPLITS)

    def scales_for(self, sampler: str) -> tuple[float, ...]:
        return self.b if spec_of(sampler).has_box else self.scale


def parse_samplers(text: str) -> tuple[str, ...]:
    """``all`` (or nothing): every sampler but the trained ones (flow: name it)."""
    return parse_choices(
        text,
        "sampler",
        tuple(SAMPLERS),
        item="sampler",
        all_means=DEFAULT_SAMPLERS,
        empty_means=DEFAULT_SAMPLERS,
    )


DESCRIPTION = (
    "Hit rates of random generators of latent vectors for every b (or scale) and "
    "k, exact probabilities, the k-NN region test, the verdict (two-sample tests, "
    "ellipsoid region, decoder cycle) and decoded samples "
    "(docs/science.md)."
)


def parse_args(argv: Sequence[str] | None) -> EvaluateRequest:
    parser = ArgumentParser(prog="aelatent evaluate", description=DESCRIPTION)
    add_train_run_arguments(parser)
    parser.add_argument("--sampler", default=ALL, help=f"{', '.join(SAMPLERS)} or all")
    parser.add_argument("--b", default=DEFAULT_B, help="uniform box half-widths, comma list")
    parser.add_argument("--k", default=DEFAULT_K, help="half-width multiples, comma list")
    parser.add_argument("--scale", default=DEFAULT_SCALE, help="gaussian/mvn/gmm width factors")
    parser.add_argument("--n-samples", default=DEFAULT_N_SAMPLES)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--n-decoded", default=DEFAULT_N_DECODED, help="images per grid, 0: none")
    parser.add_argument(
        "--estimate",
        default=DEFAULT_ESTIMATOR,
        help=f"window estimator: {', '.join(WINDOW_ESTIMATORS)}",
    )
    parser.add_argument(
        "--grid-spacing",
        default=DEFAULT_GRID_SPACING,
        help="method 1: spacing of the grid over [-b, b]^z_dim",
    )
    parser.add_argument(
        "--log-generator",
        default="none",
        help="none, or <sampler>:<b or scale> to log as the pyfunc 'generator'",
    )
    parser.add_argument("--knn-k", default=knn.DEFAULT_KNN_K, help="k of the k-NN balls")
    parser.add_argument(
        "--knn-n",
        default=knn.DEFAULT_KNN_N,
        help="real and generated vectors of the k-NN test; 0: no k-NN test",
    )
    parser.add_argument(
        "--verdict",
        default=judging.DEFAULT_TESTS,
        help="the verdict's tests: auto (all; the cycle where the run has a model), all, "
        "none, or a comma list of " + ", ".join(judging.core.VERDICT_TESTS),
    )
    parser.add_argument(
        "--verdict-splits",
        default=judging.DEFAULT_SPLITS,
        help="random halvings of the training latents the verdict averages over",
    )
    args = parser.parse_args(argv)
    raw = dict(vars(args))
    n_samples = parse_int(
        args.n_samples, "n_samples", minimum=1, maximum=MAX_N_SAMPLES, why=EVALUATE_N_SAMPLES_WHY
    )
    train_run, case = parse_train_run_choice(args.train_run, args.case)
    return EvaluateRequest(
        train_run=train_run,
        case=case,
        samplers=parse_samplers(args.sampler),
        b=_labelled_values(args.b, "b", MIN_SCALE, MAX_SCALE),
        k=_labelled_values(args.k, "k", MIN_K, MAX_K),
        scale=_labelled_values(args.scale, "scale", MIN_SCALE, MAX_SCALE),
        n_samples=n_samples,
        seed=parse_int(args.seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY),
        n_decoded=parse_int(
            args.n_decoded, "n_decoded", minimum=0, maximum=MAX_N_DECODED, why=N_DECODED_WHY
        ),
        estimate=check_estimate(args.estimate),
        grid_spacing=parse_grid_spacing(args.grid_spacing),
        raw=raw,
        knn_k=parse_int(args.knn_k, "knn_k", minimum=1, maximum=knn.MAX_KNN_K),
        knn_n=parse_int(args.knn_n, "knn_n", minimum=0, maximum=knn.MAX_KNN_N, why=knn.KNN_N_WHY),
        generator=_parse_generator(args.log_generator),
        verdict=judging.parse_tests(args.verdict),
        verdict_splits=parse_int(
            args.verdict_splits, "verdict_splits", minimum=1, maximum=judging.MAX_SPLITS
        ),
    )


def _parse_generator(text: str) -> tuple[str, float] | None:
    return parse_generator_choice(text)


def _unique(values: list[float]) -> tuple[float, ...]:
    return tuple(sorted(set(values)))


def _labelled_values(text: str, name: str, minimum: float, maximum: float) -> tuple[float, ...]:
    """A comma list of values that go into metric names: at most ``maximum`` (no exponent in
    ``f"{x:g}"``), at least ``minimum`` (tinier values gave NaN metrics) and no two printing
    alike (one metric would overwrite the other).
    """
    values = parse_float_list(text, name, maximum=maximum, why=LABEL_WHY)
    for part, value in zip(str(text).split(","), values, strict=True):
        if value < minimum:
            raise UserError(
                f"{name}={text!r}: {part.strip()} is out of range; every value must be at least "
                f"{minimum:g} and at most {maximum:g} ({SMALL_SCALE_WHY})"
            )
    check_distinct_labels(values, name, text)
    return _unique(values)


def parse_grid_spacing(text: str) -> float:
    """Method 1's grid spacing: one number in [1e-6, 1e5] (1e-320 overflowed the count)."""
    allowed = f"expected one number from {MIN_GRID_SPACING:g} to {MAX_GRID_SPACING:g}"
    values = parse_float_list(text, "grid_spacing", positive=False)
    if len(values) != 1:
        raise UserError(f"grid_spacing={text!r}: {allowed}")
    if not MIN_GRID_SPACING <= values[0] <= MAX_GRID_SPACING:
        raise UserError(f"grid_spacing={text!r} is out of range; {allowed} ({GRID_SPACING_WHY})")
    return values[0]


def check_evaluate_memory(request: EvaluateRequest, z_dim: int) -> None:
    """Refuse, before any sampling, a grid whose buffers cannot fit in memory (the latents'
    z_dim is known only once the train run is read)."""
    n_scales = sum(len(request.scales_for(name)) for name in request.samplers)
    check_memory(
        evaluate_memory_bytes(z_dim, request.n_samples, n_scales, len(request.k)),
        f"evaluating {n_scales} values of b and scale with {len(request.k)} of k at z_dim={z_dim}",
        "give fewer values of b, scale or k",
    )
