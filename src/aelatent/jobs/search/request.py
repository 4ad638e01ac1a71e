"""The search's parameters: :class:`SearchRequest`, validated once from the command line, and
the objectives a search can name (the box objectives of :mod:`aelatent.core.objective`,
``knn`` of :mod:`aelatent.core.knn_objective`)."""

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
from aelatent.core.generator_space import FAMILIES
from aelatent.core.knn_objective import (
    KNN_OBJECTIVE,
    KnnBest,
    KnnObjectiveCurve,
    ReplicateObjective,
)
from aelatent.core.objective import (
    BAND_PERCENTILES,
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    BestB,
    ObjectiveCurve,
    UniformSearchObjective,
)
from aelatent.core.sampler_registry import SAMPLERS, axis_of, spec_of
from aelatent.core.verdict_objective import C2ST_OBJECTIVES
from aelatent.core.windows import (
    DEFAULT_ESTIMATOR,
    WINDOW_ESTIMATORS,
    check_estimate,
)
from aelatent.errors import UserError
from aelatent.jobs.evaluate import knn
from aelatent.limits import (
    B_MIN_WHY,
    MAX_K,
    MAX_SCALE,
    MAX_SEARCH_N_SAMPLES,
    MAX_SEED,
    MIN_B_MIN,
    MIN_K,
    SEARCH_N_SAMPLES_WHY,
    SEARCH_RANGE_WHY,
    SEED_WHY,
    SMALL_SCALE_WHY,
    check_memory,
    search_memory_bytes,
)

MODES = ("single", "multi")


DEFAULT_STORAGE = "default"


AUTO = "auto"


OBJECTIVE_VERSIONS = {
    "typical": "uniform: box hit at k x radius typicality 2 min(F, 1 - F) (v2)",
    "band": "uniform: box hit at k AND radius in the real band (v1)",
    KNN_OBJECTIVE: "uniform: harmonic mean of k-NN precision and recall, 5 replicates (v1)",
    "c2st": "uniform: 2(1 - accuracy) of a quadratic C2ST, 3 cross-fitted splits (v1)",
    "c2st_linear": "uniform: 2(1 - accuracy) of a linear C2ST, 3 cross-fitted splits (v1)",
}
SINGLE_AXIS = "axis"  # space=axis: one sampler's b or scale (the study's own question)
GENERATORS = "generators"
SPACES = (SINGLE_AXIS, GENERATORS)
REPLICATE_OBJECTIVES = (KNN_OBJECTIVE, *C2ST_OBJECTIVES)
"""Objectives for any sampler's axis, measured on replicate sets (the others are uniform's box)."""


SEARCH_SAMPLERS = SAMPLERS  # as evaluate builds them (aelatent.core.sampler_registry)


# b_min, b_max = auto: uniform's b from near 0 to well past any latent's spread; a fitted
# sampler's scale from a quarter to four times its fitted width (1)
AXIS_RANGES = {"b": (0.05, 12.0), "scale": (0.25, 4.0)}


def objective_version(objective: str, sampler: str) -> str:
    """What a study optimises, stored with it: a study of another sampler is another question."""
    version = OBJECTIVE_VERSIONS[objective]
    return version if spec_of(sampler).has_box else version.replace("uniform:", f"{sampler}:", 1)


SEARCH_OBJECTIVES = (*OBJECTIVES, *REPLICATE_OBJECTIVES)


SearchObjective = UniformSearchObjective | ReplicateObjective


Sweep = BestB | KnnBest


Curve = ObjectiveCurve | KnnObjectiveCurve


@dataclass(frozen=True)
class SearchRequest:
    """Validated parameters of one search worker."""

    train_run: str | None
    case: str | None
    k: float
    n_trials: int
    n_samples: int
    b_min: float
    b_max: float
    mode: str
    storage: str | None
    study_name: str | None
    seed: int
    estimate: str = DEFAULT_ESTIMATOR
    objective: str = DEFAULT_OBJECTIVE
    radius_band: tuple[float, float] = BAND_PERCENTILES
    knn_k: int = int(knn.DEFAULT_KNN_K)
    knn_n: int = int(knn.DEFAULT_KNN_N)
    sampler: str = "uniform"
    space: str = SINGLE_AXIS  # "generators": the search over sampler families and settings
    families: tuple[str, ...] = FAMILIES

    @property
    def axis(self) -> str:
        """The searched axis: uniform's half-width ``b``, the others' width factor ``scale``."""
        return axis_of(self.sampler)

    @property
    def multi(self) -> bool:
        return self.mode == "multi"

    @property
    def knn(self) -> bool:
        return self.objective == KNN_OBJECTIVE

    @property
    def replicate(self) -> bool:
        """Whether the objective is measured on replicate sets (k-NN, C2ST), not the box."""
        return self.objective in REPLICATE_OBJECTIVES


def _one_number(
    text: str, name: str, *, positive: bool, maximum: float | None = None, why: str = ""
) -> float:
    values = parse_float_list(text, name, positive=positive, maximum=maximum, why=why)
    if len(values) != 1:
        raise UserError(f"{name}={text!r}: give one number, not a list")
    return values[0]


def parse_band(text: str) -> tuple[float, float]:
    """``"1,99"`` -> (1.0, 99.0): two percentiles with 0 <= lo < hi <= 100."""
    values = parse_float_list(text, "radius_band", positive=False)
    if len(values) != 2 or not 0 <= values[0] < values[1] <= 100:
        raise UserError(
            f"radius_band={text!r} is out of range; expected two percentiles lo,hi "
            "with 0 <= lo < hi <= 100, e.g. 1,99"
        )
    return values[0], values[1]


DESCRIPTION = (
    "The b for which uniform [-b, b]^N best lands on the real latents (or, with "
    "objective=knn, the width factor of the gaussian, mvn or gmm sampler): an Optuna "
    "study over it, each trial a nested MLflow run (docs/science.md, 'The search "
    "objective')."
)


def parse_sampler(text: str, objective: str) -> str:
    """``uniform`` with any objective; the scale samplers with ``knn`` only (the box
    objectives are uniform's: its exact hit probability and radius law)."""
    sampler = text.strip().lower()
    if sampler not in SEARCH_SAMPLERS:
        raise UserError(f"sampler={text!r} is unknown; choose one of {', '.join(SEARCH_SAMPLERS)}")
    if not spec_of(sampler).has_box and objective not in REPLICATE_OBJECTIVES:
        raise UserError(
            f"sampler={sampler} needs objective={' or '.join(REPLICATE_OBJECTIVES)} "
            f"(objective={objective} is the box test of uniform b); give -P objective=c2st "
            "or sampler=uniform"
        )
    return sampler


def parse_args(argv: Sequence[str] | None) -> SearchRequest:
    parser = ArgumentParser(prog="aelatent search", description=DESCRIPTION)
    add_train_run_arguments(parser)
    parser.add_argument("--k", default="2", help="half-width multiple of the hit test")
    parser.add_argument("--n-trials", default="30", help="trials this worker runs")
    parser.add_argument("--n-samples", default="20000", help="uniform vectors per evaluation")
    parser.add_argument(
        "--sampler",
        default="uniform",
        help="generator searched: uniform (its b), or gaussian, mvn, gmm (their scale; "
        "objective=knn)",
    )
    parser.add_argument(
        "--b-min",
        default=AUTO,
        help="lower end of the searched range of b or scale (> 0); auto: 0.05 for b, 0.25 "
        "for scale",
    )
    parser.add_argument(
        "--b-max",
        default=AUTO,
        help="upper end of the searched range of b or scale (> b_min); auto: 12 for b, 4 for scale",
    )
    parser.add_argument(
        "--mode",
        default="single",
        help="single (objective) or multi (Pareto front of its two parts; space=generators: "
        "fidelity against copying ratio)",
    )
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    parser.add_argument("--study-name", default=AUTO, help="'auto' = from train run, k and mode")
    parser.add_argument("--seed", default="0", help="seed of the draws and of the TPE sampler")
    parser.add_argument(
        "--estimate",
        default=DEFAULT_ESTIMATOR,
        help=f"window estimator: {', '.join(WINDOW_ESTIMATORS)}",
    )
    parser.add_argument(
        "--objective",
        default=DEFAULT_OBJECTIVE,
        help="typical (hit x radius typicality), band (hit AND radius in band), "
        "knn (harmonic mean of k-NN precision and recall), c2st or c2st_linear "
        "(2(1 - accuracy) of a classifier telling the vectors from held-apart real ones)",
    )
    parser.add_argument(
        "--radius-band",
        default="1,99",
        help="percentiles lo,hi of the real radii outside which a radius counts 0",
    )
    parser.add_argument(
        "--knn-k", default=knn.DEFAULT_KNN_K, help="objective=knn: k of the k-NN balls"
    )
    parser.add_argument(
        "--knn-n",
        default=knn.DEFAULT_KNN_N,
        help="objective=knn: real and generated vectors per k-NN test",
    )
    parser.add_argument(
        "--space",
        default=SINGLE_AXIS,
        help="axis (one sampler's b or scale) or generators (sampler families and their "
        "settings, scored by cross-fitted C2ST; sampler, objective, k, b_min/b_max unused)",
    )
    parser.add_argument(
        "--families",
        default="all",
        help=f"space=generators: all, or a comma list of {', '.join(FAMILIES)}",
    )
    args = parser.parse_args(argv)
    space = args.space.strip().lower()
    if space not in SPACES:
        raise UserError(f"space={args.space!r} is unknown; choose one of {', '.join(SPACES)}")
    families = parse_families(args.families)

    k = _one_number(args.k, "k", positive=True, maximum=MAX_K, why=SEARCH_RANGE_WHY)
    if k < MIN_K:  # as evaluate's k: far below, the exact probabilities underflow to NaN
        raise UserError(f"k={args.k!r} is out of range; give k >= {MIN_K:g} ({SMALL_SCALE_WHY})")
    objective = args.objective.strip().lower()
    if objective not in SEARCH_OBJECTIVES:
        raise UserError(
            f"objective={args.objective!r} is unknown; choose one of {', '.join(SEARCH_OBJECTIVES)}"
        )
    sampler = parse_sampler(args.sampler, objective)
    if (
        objective in C2ST_OBJECTIVES
        and space != GENERATORS
        and args.mode.strip().lower() == "multi"
    ):
        raise UserError(
            f"mode=multi needs an objective with two parts to trade (typical, band, knn); "
            f"objective={objective} has one: give -P mode=single"
        )
    auto_min, auto_max = AXIS_RANGES[axis_of(sampler)]
    b_min = (
        auto_min
        if args.b_min.strip().lower() == AUTO
        else _one_number(args.b_min, "b_min", positive=False)
    )
    b_max = (
        auto_max
        if args.b_max.strip().lower() == AUTO
        else _one_number(
            args.b_max, "b_max", positive=False, maximum=MAX_SCALE, why=SEARCH_RANGE_WHY
        )
    )
    if b_min <= 0:
        raise UserError(f"b_min={b_min:g} is out of range; b_min must be > 0 (b scales U[-b, b])")
    if b_min < MIN_B_MIN:
        raise UserError(
            f"b_min={b_min:g} is out of range; expected at least {MIN_B_MIN:g} ({B_MIN_WHY})"
        )
    if b_min >= b_max:
        raise UserError(f"b_min={b_min:g} must be smaller than b_max={b_max:g}")
    mode = args.mode.strip().lower()
    if mode not in MODES:
        raise UserError(f"mode={args.mode!r} is unknown; choose one of {', '.join(MODES)}")
    storage = args.storage.strip()
    if storage and storage != DEFAULT_STORAGE and "://" not in storage:
        raise UserError(
            f"storage={storage!r} is not a storage URL; give e.g. sqlite:///optuna.db or "
            "postgresql://user@host/db"
        )
    study_name = args.study_name.strip()
    train_run, case = parse_train_run_choice(args.train_run, args.case)
    n_samples = parse_int(
        args.n_samples,
        "n_samples",
        minimum=100,
        maximum=MAX_SEARCH_N_SAMPLES,
        why=SEARCH_N_SAMPLES_WHY,
    )
    check_memory(
        search_memory_bytes(n_samples),
        f"the search objective of n_samples={n_samples}",
        "lower n_samples",
    )
    return SearchRequest(
        train_run=train_run,
        case=case,
        k=k,
        n_trials=parse_int(args.n_trials, "n_trials", minimum=1),
        n_samples=n_samples,
        b_min=b_min,
        b_max=b_max,
        mode=mode,
        storage=None if storage in ("", DEFAULT_STORAGE) else storage,
        study_name=None if study_name in ("", AUTO) else study_name,
        seed=parse_int(args.seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY),
        estimate=check_estimate(args.estimate),
        objective=objective,
        radius_band=parse_band(args.radius_band),
        knn_k=parse_int(args.knn_k, "knn_k", minimum=1, maximum=knn.MAX_KNN_K),
        knn_n=parse_int(args.knn_n, "knn_n", minimum=1, maximum=knn.MAX_KNN_N, why=knn.KNN_N_WHY),
        sampler=sampler,
        space=space,
        families=families,
    )


def parse_families(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of families (registry order); UserError naming a bad one."""
    return parse_choices(text, "families", FAMILIES, item="family", all_means=FAMILIES)
