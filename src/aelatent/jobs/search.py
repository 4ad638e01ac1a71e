"""The ``search`` entry point: the b for which uniform [-b, b]^N best lands on the real latents.

``mlflow run . -e search --env-manager local -P n_trials=30``

An Optuna study over ``b`` (log scale) maximises :mod:`aelatent.core.objective` (box hit
weighted by how typical the sampled radius is among the real radii; ``objective=band``: box
hit AND a radius inside the real band) or, with ``mode=multi``, the pair (hit rate, radius
agreement). The exact curve of the same objective over the whole range cross-checks Optuna's
answer and gives the interval of b as good as the best within Monte Carlo error.
One parent MLflow run per worker, one nested child run per trial. The study
lives in an Optuna storage (default: an SQLite file beside the MLflow store), so running
the same command again continues it and several workers may share it at once; watch it
live with ``optuna-dashboard <storage URL>``.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import socket
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
from mlflow.tracking import MlflowClient
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from aelatent.console import optuna_progress
from aelatent.core.knn_objective import GRID_POINTS as KNN_GRID_POINTS
from aelatent.core.knn_objective import (
    KNN_OBJECTIVE,
    KnnBest,
    KnnObjectiveCurve,
    KnnObjectiveValue,
    KnnSearchObjective,
    best_of_curve,
)
from aelatent.core.objective import (
    BAND_PERCENTILES,
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    BestB,
    ObjectiveCurve,
    ObjectiveValue,
    UniformSearchObjective,
    radius_band,
    theory_b,
)
from aelatent.core.radius import radii
from aelatent.core.samplers import UniformSampler
from aelatent.core.windows import (
    DEFAULT_ESTIMATOR,
    WINDOW_ESTIMATORS,
    Z95,
    Windows,
    check_estimate,
)
from aelatent.errors import UserError
from aelatent.io.analysis_artifacts import WINDOWS_CSV, write_csv
from aelatent.io.mlflow_native import (
    TRIALS_TABLE,
    WINDOWS_TABLE,
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
    resolve_train_run,
    run_entry_point,
)
from aelatent.io.train_run import read_run
from aelatent.jobs import knn_evaluation as knn
from aelatent.limits import (
    B_MIN_WHY,
    MAX_K,
    MAX_SCALE,
    MAX_SEARCH_N_SAMPLES,
    MAX_SEED,
    MIN_B_MIN,
    SEARCH_N_SAMPLES_WHY,
    SEARCH_RANGE_WHY,
    SEED_WHY,
    check_memory,
    search_memory_bytes,
)

ENTRY_POINT = "search"
MODES = ("single", "multi")
DEFAULT_STORAGE = "default"
AUTO = "auto"
ARTIFACT_DIR = "search"
OPTUNA_DB = "optuna.db"
OBJECTIVE_VERSIONS = {
    "typical": "uniform: box hit at k x radius typicality 2 min(F, 1 - F) (v2)",
    "band": "uniform: box hit at k AND radius in the real band (v1)",
    KNN_OBJECTIVE: "uniform: harmonic mean of k-NN precision and recall, 5 replicates (v1)",
}
SEARCH_OBJECTIVES = (*OBJECTIVES, KNN_OBJECTIVE)
SearchObjective = UniformSearchObjective | KnnSearchObjective
Sweep = BestB | KnnBest
Curve = ObjectiveCurve | KnnObjectiveCurve
SQLITE_BUSY_TIMEOUT_S = 60
SERVER_CONNECT_TIMEOUT_S = 10
HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_GRACE_S = 180
HEARTBEAT_ENV = "AELATENT_OPTUNA_HEARTBEAT_S"  # another interval; the grace is 3 intervals
CURVE_POINTS = 600
NO_BEST_B_TAG = "no_best_b"  # why: the objective is 0 for every b in the range
OUTSIDE_TAG = "best_b_unconfirmed"  # Optuna's best is not as good as the exact optimum


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

    @property
    def multi(self) -> bool:
        return self.mode == "multi"

    @property
    def knn(self) -> bool:
        return self.objective == KNN_OBJECTIVE


def _one_number(text: str, name: str, *, positive: bool, maximum: float | None = None,
                why: str = "") -> float:
    values = parse_float_list(text, name, positive=positive, maximum=maximum, why=why)
    if len(values) != 1:
        raise UserError(f"{name}={text!r}: give one number, not a list")
    return values[0]


def parse_band(text: str) -> tuple[float, float]:
    """``"1,99"`` -> (1.0, 99.0): two percentiles with 0 <= lo < hi <= 100."""
    values = parse_float_list(text, "radius_band", positive=False)
    if len(values) != 2 or not 0 <= values[0] < values[1] <= 100:
        raise UserError(f"radius_band={text!r} is out of range; expected two percentiles lo,hi "
                        "with 0 <= lo < hi <= 100, e.g. 1,99")
    return values[0], values[1]


def parse_args(argv: Sequence[str] | None) -> SearchRequest:
    parser = ArgumentParser(prog="aelatent search", description=__doc__)
    parser.add_argument("--train-run", default=NEWEST,
                        help="train run id, models:/<name>/<version or @alias>, or 'newest'")
    parser.add_argument("--case", default=ANY_CASE, help="with train_run=newest: of this case")
    parser.add_argument("--k", default="2", help="half-width multiple of the hit test")
    parser.add_argument("--n-trials", default="30", help="trials this worker runs")
    parser.add_argument("--n-samples", default="20000", help="uniform vectors per evaluation")
    parser.add_argument("--b-min", default="0.05", help="lower end of the b range (> 0)")
    parser.add_argument("--b-max", default="12", help="upper end of the b range (> b_min)")
    parser.add_argument("--mode", default="single", help="single (objective) or multi (Pareto)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    parser.add_argument("--study-name", default=AUTO, help="'auto' = from train run, k and mode")
    parser.add_argument("--seed", default="0", help="seed of the draws and of the TPE sampler")
    parser.add_argument("--estimate", default=DEFAULT_ESTIMATOR,
                        help=f"window estimator: {', '.join(WINDOW_ESTIMATORS)}")
    parser.add_argument("--objective", default=DEFAULT_OBJECTIVE,
                        help="typical (hit x radius typicality), band (hit AND radius in band) "
                        "or knn (harmonic mean of k-NN precision and recall)")
    parser.add_argument("--radius-band", default="1,99",
                        help="percentiles lo,hi of the real radii outside which a radius counts 0")
    parser.add_argument("--knn-k", default=knn.DEFAULT_KNN_K,
                        help="objective=knn: k of the k-NN balls")
    parser.add_argument("--knn-n", default=knn.DEFAULT_KNN_N,
                        help="objective=knn: real and generated vectors per k-NN test")
    args = parser.parse_args(argv)

    k = _one_number(args.k, "k", positive=True, maximum=MAX_K, why=SEARCH_RANGE_WHY)
    b_min = _one_number(args.b_min, "b_min", positive=False)
    b_max = _one_number(args.b_max, "b_max", positive=False, maximum=MAX_SCALE,
                        why=SEARCH_RANGE_WHY)
    if b_min <= 0:
        raise UserError(f"b_min={b_min:g} is out of range; b_min must be > 0 (b scales U[-b, b])")
    if b_min < MIN_B_MIN:
        raise UserError(f"b_min={b_min:g} is out of range; expected at least {MIN_B_MIN:g} "
                        f"({B_MIN_WHY})")
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
    objective = args.objective.strip().lower()
    if objective not in SEARCH_OBJECTIVES:
        raise UserError(f"objective={args.objective!r} is unknown; choose one of "
                        f"{', '.join(SEARCH_OBJECTIVES)}")
    train_run, case = parse_train_run_choice(args.train_run, args.case)
    n_samples = parse_int(args.n_samples, "n_samples", minimum=100,
                          maximum=MAX_SEARCH_N_SAMPLES, why=SEARCH_N_SAMPLES_WHY)
    check_memory(search_memory_bytes(n_samples), f"the search objective of n_samples={n_samples}",
                 "lower n_samples")
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
    )


# --- storage -----------------------------------------------------------------------------


def default_storage_url(tracking_uri: str) -> str:
    """``sqlite:///<dir>/optuna.db`` beside the MLflow store (SQLite or a local folder).

    For a remote tracking server there is no "beside": the file goes in the working
    directory (share a PostgreSQL URL between machines instead).
    """
    folder = Path.cwd()
    if tracking_uri.startswith("sqlite:///"):
        db = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
        if db and db != ":memory:":
            folder = Path(db).expanduser().resolve().parent
    elif tracking_uri.startswith("file:") or "://" not in tracking_uri:
        local = tracking_uri.removeprefix("file://").removeprefix("file:")
        if local:
            folder = Path(local).expanduser().resolve().parent
    return f"sqlite:///{folder / OPTUNA_DB}"


def redact(url: str) -> str:
    """The storage URL without its password, for logs and tags."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: nothing we could redact reliably
        return url.split("@", 1)[-1] if "@" in url else url


def _engine_kwargs(backend: str) -> dict[str, Any]:
    """Wait for a busy SQLite file instead of failing; give up quickly on a dead server."""
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if backend in ("postgresql", "mysql", "mariadb"):
        return {
            "connect_args": {"connect_timeout": SERVER_CONNECT_TIMEOUT_S},
            "pool_pre_ping": True,
        }
    return {}


def open_storage(url: str, *, attempts: int = 3) -> optuna.storages.RDBStorage:
    """An :class:`optuna.storages.RDBStorage` on ``url``; a clear error when unreachable.

    SQLite waits up to a minute for a lock held by another worker ("database is locked").
    A heartbeat marks trials of killed workers FAIL and re-queues them once, so a kill
    neither loses a trial nor leaves a zombie RUNNING one. Two workers creating the tables
    of a new file at the same moment can collide; that is retried. A database that holds
    tables but no Optuna study table (the MLflow store itself, say) is refused, because
    Optuna would add its tables to it.
    """
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        backend = make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        raise UserError(
            f"storage={redact(url)!r} is not a storage URL; give e.g. sqlite:///optuna.db"
        ) from None
    interval, grace = heartbeat_seconds()
    error = ""
    for attempt in range(attempts):
        try:
            _refuse_foreign_database(url, backend)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=_engine_kwargs(backend),
                    heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=FailStaleTrial(grace),
                )
        except UserError:
            raise
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
            error = _first_line(exc)
            racing = "already exists" in error or "UNIQUE" in error
            if not racing or attempt + 1 == attempts:
                break  # a real error, or a race that does not settle
        except ImportError as exc:
            error = f"its database driver is not installed ({_first_line(exc.__cause__ or exc)})"
            break
        except (sqlalchemy.exc.SQLAlchemyError, ValueError, RuntimeError) as exc:
            error = _first_line(exc)
            break
    check = ("; check that the database server is running and its host, port, user, password "
             "and database name" if backend != "sqlite" else "")
    if "driver is not installed" in error and backend == "postgresql":
        check = "; pip install 'aelatent[server]' (psycopg)"
    raise UserError(f"storage={redact(url)!r} cannot be opened: {error}{check}")


def heartbeat_seconds() -> tuple[int, int]:
    """Optuna's heartbeat interval and grace period: 60 and 180 s, or
    ``$AELATENT_OPTUNA_HEARTBEAT_S`` and three times it (a trial whose worker is silent that
    long is marked FAIL)."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_INTERVAL_S, HEARTBEAT_GRACE_S
    interval = parse_int(text, HEARTBEAT_ENV, minimum=1)
    return interval, 3 * interval


class FailStaleTrial:
    """What happens to the trial of a worker that died (no Optuna heartbeat for the grace
    period), after Optuna has marked it FAIL: it is queued once more (Optuna's retry), and
    its MLflow run and the dead worker's search run are closed FAILED with the reason, so
    none stays RUNNING. Run by whichever worker notices, at the start of its next trial."""

    def __init__(self, grace_s: int) -> None:
        self.grace_s = grace_s
        self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)
        with contextlib.suppress(Exception):  # the study goes on even if MLflow cannot be told
            self.close_runs(study.study_name, trial.number)

    def close_runs(self, study_name: str, number: int) -> None:
        from aelatent.io.tracking import ERROR_TAG

        client = MlflowClient()
        reason = (f"its search worker stopped during trial {number} of study {study_name!r} "
                  f"(no Optuna heartbeat for {self.grace_s} s): the trial is FAIL and queued "
                  "again")
        runs = mlflow.search_runs(
            search_all_experiments=True, output_format="list",
            filter_string=f"tags.study_name = '{study_name}' and tags.trial = '{number}' "
                          "and attributes.status = 'RUNNING'")
        for run in runs:
            for run_id in (run.info.run_id, run.data.tags.get("mlflow.parentRunId")):
                if run_id and client.get_run(run_id).info.status == "RUNNING":
                    client.set_tag(run_id, ERROR_TAG, reason)
                    client.set_terminated(run_id, "FAILED")


def _refuse_foreign_database(url: str, backend: str) -> None:
    """A clear error when ``url`` is some other application's database (e.g. MLflow's)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **_engine_kwargs(backend))
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if tables and "studies" not in tables:
        raise UserError(
            f"storage={redact(url)!r} is another application's database ({len(tables)} tables, "
            "no Optuna studies; the MLflow store?): give Optuna its own, e.g. sqlite:///optuna.db"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# --- the study ---------------------------------------------------------------------------


class TrialSeededSampler(BaseSampler):
    """TPE whose randomness for trial ``n`` comes from ``(seed, n)`` alone.

    Why: one seed must give the same trials (reproducible), yet two workers sharing a study
    with the same command must not propose the same ``b`` values, and a resumed study must
    not replay its first proposals. Trial numbers are unique in a study, so seeding each
    trial from its number does all three. ``constant_liar`` keeps concurrent workers apart
    in the TPE phase too.
    """

    def __init__(self, seed: int) -> None:
        self._seed = int(seed)
        self._tpe = self._for_trial(0)

    def _for_trial(self, number: int) -> TPESampler:
        seed = int(np.random.SeedSequence([self._seed, number]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return TPESampler(seed=seed, constant_liar=True)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe = self._for_trial(trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()


def default_study_name(train_run_id: str, k: float, mode: str, objective: str = DEFAULT_OBJECTIVE,
                       band: tuple[float, float] = BAND_PERCENTILES) -> str:
    """One name per question asked: studies of the first (band) objective keep their names."""
    name = f"uniform-b-{train_run_id}-k{k:g}"
    if objective != "band":
        name += f"-{objective}"
    if tuple(band) != BAND_PERCENTILES:
        name += f"-r{band[0]:g}-{band[1]:g}"
    return name + ("-multi" if mode == "multi" else "")


def study_definition(request: SearchRequest, train_run_id: str) -> dict[str, Any]:
    """What the study's objective depends on, stored as its user attributes."""
    knn_part = {"knn_k": request.knn_k, "knn_n": request.knn_n} if request.knn else {}
    return {
        "train_run": train_run_id,
        "k": request.k,
        "n_samples": request.n_samples,
        "seed": request.seed,
        "mode": request.mode,
        "estimate": request.estimate,
        "objective": OBJECTIVE_VERSIONS[request.objective],
        "radius_band": ",".join(f"{p:g}" for p in request.radius_band),
        **knn_part,
    }


def _directions(mode: str) -> list[StudyDirection]:
    n = 2 if mode == "multi" else 1
    return [StudyDirection.MAXIMIZE] * n


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def check_existing_study(
    storage: optuna.storages.BaseStorage, name: str, definition: dict[str, Any]
) -> bool:
    """``True`` when the study exists (and matches); a clear error when it asks another question.

    Nothing in the storage is changed: a mismatch is reported, never overwritten.
    """
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return False
    directions = storage.get_study_directions(study_id)
    if directions != _directions(definition["mode"]):
        raise UserError(
            f"study_name={name!r} exists with {len(directions)} objective(s); mode="
            f"{definition['mode']} needs {len(_directions(definition['mode']))}: give another "
            "study_name"
        )
    stored = storage.get_study_user_attrs(study_id)
    if not stored and storage.get_all_trials(study_id, deepcopy=False):
        raise UserError(
            f"study_name={name!r} holds trials that no aelatent search made; give another "
            "study_name"
        )
    # keys not stored yet: a worker that created the study a moment ago is still writing them
    differs = [
        f"{key}={_show(stored[key])} (now {_show(definition[key])})"
        for key in definition
        if key in stored and stored[key] != definition[key]
    ]
    if differs:
        raise UserError(
            f"study_name={name!r} was made for {', '.join(differs)}; give another study_name "
            "or the study's own values (b_min, b_max and n_trials may change)"
        )
    return True


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    definition: dict[str, Any],
    sampler: BaseSampler,
) -> tuple[Study, bool]:
    """Create the study, or load it when it exists: what is stored is kept.

    Returns the study and whether this worker created it. The storage's unique study name
    decides that atomically, so of several workers starting at once exactly one creates it.
    """
    try:
        storage.create_new_study(_directions(definition["mode"]), name)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        created = False
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    stored = study.user_attrs
    for key, value in definition.items():
        if key not in stored:
            study.set_user_attr(key, value)
    check_existing_study(storage, name, definition)  # a worker of another question raced us
    return study, created


# --- trials ------------------------------------------------------------------------------


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class TrialRunner:
    """The Optuna objective: evaluate ``b`` and log the trial as a nested MLflow run."""

    def __init__(
        self,
        objective: SearchObjective,
        box: UniformSearchObjective,
        request: SearchRequest,
        study_name: str,
        parent_run_id: str,
        tags: dict[str, str],
    ) -> None:
        self.objective = objective
        self.box = box  # the box test's exact log10 P(hit) beside any objective
        self.request = request
        self.study_name = study_name
        self.parent_run_id = parent_run_id
        self.tags = tags
        self.worker = _worker_id()

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        b = trial.suggest_float("b", self.request.b_min, self.request.b_max, log=True)
        value, attrs = self._evaluate_and_log(b, str(trial.number))
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        values = self._values(value)
        return tuple(values) if self.request.multi else values[0]

    def _values(self, value: ObjectiveValue | KnnObjectiveValue) -> list[float]:
        if self.request.multi:  # the Pareto axes: the objective's two parts
            return list(value.parts().values())
        return [value.objective]

    def add_fixed_trial(self, study: Study, b: float, source: str) -> None:
        """Evaluate ``b`` and store it as a COMPLETE trial in one insert.

        Unlike an enqueued (WAITING) trial, it cannot be taken by two workers at once: with
        SQLite, Optuna's check-then-set of a WAITING trial is not atomic across processes.
        """
        value, attrs = self._evaluate_and_log(b, source)
        study.add_trial(
            optuna.trial.create_trial(
                params={"b": b},
                distributions={
                    "b": FloatDistribution(self.request.b_min, self.request.b_max, log=True)
                },
                values=self._values(value),
                user_attrs={**attrs, "source": source},
            )
        )
        number = next(
            t.number
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("mlflow_run_id") == attrs["mlflow_run_id"]
        )
        client = MlflowClient()
        client.set_tag(attrs["mlflow_run_id"], "trial", str(number))
        client.set_tag(attrs["mlflow_run_id"], "source", source)
        client.set_tag(attrs["mlflow_run_id"], "mlflow.runName", f"trial {number}")

    def _evaluate_and_log(
        self, b: float, label: str
    ) -> tuple[ObjectiveValue | KnnObjectiveValue, dict[str, Any]]:
        """The objective at ``b``, logged as a nested MLflow run; the trial's user attrs."""
        tags = {**self.tags, "trial": label, "study_name": self.study_name}
        with mlflow.start_run(run_name=f"trial {label}", nested=True, tags=tags) as child:
            value = self.objective(b)
            metrics = {
                "b": b,
                "objective": value.objective,
                "objective_se": value.objective_se,
                **value.parts(),
            }
            log10_p = _finite(self.box.log10_p_hit(b))
            if log10_p is not None:
                metrics["log10_p_hit"] = log10_p
            mlflow.log_param("b", repr(b))
            mlflow.log_metrics(metrics)
        return value, {
            "objective": value.objective,
            "objective_se": value.objective_se,
            **value.parts(),
            "mlflow_run_id": child.info.run_id,
            "mlflow_parent_run_id": self.parent_run_id,
            "worker": self.worker,
        }


def _objective_of(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("objective")
    if value is None and trial.values is not None and len(trial.values) == 1:
        value = trial.values[0]
    return None if value is None else float(value)


def best_trial(study: Study) -> FrozenTrial | None:
    """The complete trial with the largest objective (in multi mode too: the combined one)."""
    scored = [
        (value, -t.number, t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (value := _objective_of(t)) is not None
    ]
    return max(scored, key=lambda s: (s[0], s[1]))[2] if scored else None


# --- artifacts ---------------------------------------------------------------------------


BOX_PARTS = ("hit_rate", "radius_agreement")


def write_trials_csv(study: Study, path: Path, parts: Sequence[str] = BOX_PARTS) -> None:
    """Every trial of the study (all workers, all runs so far), oldest first; ``parts``: the
    objective's two parts (the box's, or knn's precision and recall)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "number",
                "state",
                "b",
                "objective",
                "objective_se",
                *parts,
                "source",
                "worker",
                "mlflow_run_id",
                "datetime_start",
                "datetime_complete",
            ]
        )
        for t in study.get_trials(deepcopy=False):
            attrs = t.user_attrs
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    t.params.get("b", ""),
                    attrs.get("objective", ""),
                    attrs.get("objective_se", ""),
                    *(attrs.get(part, "") for part in parts),
                    attrs.get("source", "tpe"),
                    attrs.get("worker", ""),
                    attrs.get("mlflow_run_id", ""),
                    t.datetime_start or "",
                    t.datetime_complete or "",
                ]
            )


def write_pareto_csv(study: Study, path: Path, parts: Sequence[str] = BOX_PARTS) -> None:
    """The Pareto-optimal trials of a multi-objective study, by increasing b."""
    front = sorted(study.best_trials, key=lambda t: t.params.get("b", math.inf))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "b", *parts, "objective"])
        for t in front:
            writer.writerow(
                [
                    t.number,
                    t.params.get("b", ""),
                    t.values[0],
                    t.values[1],
                    t.user_attrs.get("objective", ""),
                ]
            )


def save_optuna_plots(study: Study, out: Path, multi: bool,
                      parts: Sequence[str] = BOX_PARTS) -> list[Path]:
    """Optuna's own matplotlib plots: history, objective vs b (slice) and the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    target = (lambda t: _objective_of(t) or 0.0) if multi else None
    name = "objective"
    plots = {
        "optimization_history.png": lambda: ovm.plot_optimization_history(
            study, target=target, target_name=name
        ),
        "slice_b.png": lambda: ovm.plot_slice(study, params=["b"], target=target, target_name=name),
    }
    if multi:
        plots["pareto_front.png"] = lambda: ovm.plot_pareto_front(
            study, target_names=list(parts)
        )
    written: list[Path] = []
    # Optuna switches matplotlib's global style; keep that inside these plots
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for filename, plot in plots.items():
            axes = plot()
            ax = axes.ravel()[0] if isinstance(axes, np.ndarray) else axes
            if filename == "slice_b.png":
                ax.set_xscale("log")
            fig = ax.figure
            fig.set_size_inches(7, 4.5)
            fig.tight_layout()
            fig.savefig(out / filename, dpi=110)
            plt.close(fig)
            written.append(out / filename)
    return written


PART_LABELS = {"hit_rate": "hit rate (k={k:g})", "radius_agreement": "radius agreement",
               "precision": "k-NN precision", "recall": "k-NN recall"}


def save_objective_curve(
    objective: SearchObjective,
    curve: Curve,
    study: Study,
    request: SearchRequest,
    b_theory: float,
    sweep: Sweep | None,
    path: Path,
) -> None:
    """The exact objective over the whole b range with its 95% band, its parts, the interval
    of b as good as the best (shaded) and the Optuna trials on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = curve.b
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (part, values), color in zip(curve.parts().items(), ("tab:blue", "tab:green"),
                                     strict=True):
        label = PART_LABELS[part].format(k=request.k)
        if part == "radius_agreement" and objective.kind == "typical":
            label += " (typicality)"
        ax.plot(grid, values, color=color, lw=1, label=label)
    ax.plot(grid, curve.objective, color="black", lw=2, label=f"objective ({objective.kind})")
    ax.fill_between(grid, curve.objective - Z95 * curve.objective_se,
                    curve.objective + Z95 * curve.objective_se, color="black", alpha=0.15, lw=0)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    tb = [t.params["b"] for t in done if "b" in t.params]
    tv = [_objective_of(t) or 0.0 for t in done if "b" in t.params]
    ax.scatter(tb, tv, s=18, color="tab:red", zorder=3, label=f"Optuna trials ({len(tb)})")
    if sweep is not None:
        ax.axvspan(sweep.lo, sweep.hi, color="tab:orange", alpha=0.3,
                   label=f"best b {sweep.b:.3g} [{sweep.lo:.3g}, {sweep.hi:.3g}]")
        ax.axvline(sweep.b, color="tab:orange", lw=1)
    else:
        ax.text(0.5, 0.5, "objective 0 for every b: no best b", transform=ax.transAxes,
                ha="center", va="center", color="tab:red")
    ax.axvline(b_theory, color="tab:purple", ls="--", lw=1, label=f"radius theory b={b_theory:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("b (uniform in [-b, b] per component)")
    ax.set_ylabel("fraction of sampled vectors")
    ax.set_ylim(-0.02, 1.02)
    what = (f"{objective.replicates} sets of {objective.n_samples} vectors per b, k-NN k="
            f"{objective.k}" if isinstance(objective, KnnSearchObjective)
            else f"{objective.n_samples} vectors per b")
    ax.set_title(f"uniform generator, {what} (band: 95% MC error)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_curve_csv(curve: Curve, path: Path) -> None:
    """The objective curve the plot shows, for re-plotting and for the report."""
    write_csv(path, {"b": curve.b, "objective": curve.objective,
                     "objective_se": curve.objective_se, **curve.parts()})


# --- the job -----------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's progress bar instead of one log line per trial; no experimental warnings, and
    no "Trial N failed" warning with a traceback: the error ends the job anyway, in one line
    (a tracking store that went away) or with its traceback (a bug)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            yield
        finally:
            optuna.logging.set_verbosity(verbosity)


@dataclass(frozen=True)
class StudyTarget:
    """Where the study lives and what it is about, resolved and checked before any work."""

    storage: optuna.storages.BaseStorage
    url: str
    name: str
    definition: dict[str, Any]
    resumed: bool
    train_run: str
    case: str
    n_real: int
    windows: Windows
    box: UniformSearchObjective  # the box test on the same windows: b_theory, log10 P(hit)


def main(argv: Sequence[str] | None = None) -> None:
    request = parse_args(argv)
    objective, target = prepare(request)
    search(request, objective, target)


def prepare(request: SearchRequest) -> tuple[SearchObjective, StudyTarget]:
    """Resolve the train run, open and check the study, build the objective; no MLflow run.

    Every mistake (unknown run, unreachable storage, a study made for another question,
    mismatched artifacts) surfaces here, before any MLflow run of the search is started.
    """
    run = resolve_train_run(request.train_run, request.case)  # the storage before the latents
    train_id, case = run.info.run_id, run.data.tags.get("case", "?")
    url = request.storage or default_storage_url(mlflow.get_tracking_uri())
    storage = open_storage(url)
    name = request.study_name or default_study_name(train_id, request.k, request.mode,
                                                    request.objective, request.radius_band)
    definition = study_definition(request, train_id)
    resumed = check_existing_study(storage, name, definition)

    train = read_run(run, request.estimate, request.seed, check=_check_knn_sizes(request))
    windows = train.windows
    real_radii = np.concatenate([radii(train.latents), radii(train.heldout)])  # every real one
    band = radius_band(real_radii, request.radius_band)
    if not band.lo > 0:
        raise UserError(f"train run {train_id!r}: the real radii at percentile "
                        f"{request.radius_band[0]:g} are 0; raise radius_band's lower percentile")
    box_kind = DEFAULT_OBJECTIVE if request.knn else request.objective
    box = UniformSearchObjective(windows.mu, windows.hw, request.k, band, request.n_samples,
                                 request.seed, kind=box_kind, real_radii=real_radii)
    objective: SearchObjective = box
    if request.knn:
        manifold = knn.build_manifold(train.latents, request.knn_k, request.knn_n, request.seed)
        z_dim = train.z_dim
        objective = KnnSearchObjective(manifold, lambda b: UniformSampler(b, z_dim),
                                       request.knn_n, request.seed)
    target = StudyTarget(storage, url, name, definition, resumed, train_id, case,
                         len(real_radii), windows, box)
    return objective, target


def _check_knn_sizes(request: SearchRequest) -> Callable[[str, np.ndarray], None] | None:
    """objective=knn: k must fit the real set (checked before the windows are estimated)."""
    if not request.knn:
        return None
    return lambda _run_id, latents: knn.check_knn_sizes(request.knn_k, request.knn_n,
                                                        int(latents.shape[0]))


def search(
    request: SearchRequest,
    objective: SearchObjective,
    target: StudyTarget,
    *,
    nested: bool = False,
) -> str:
    """Run this worker's trials and log the parent run; returns its run id.

    With ``nested``, the search run is a child of the active run (the ``main`` study) and
    the trials' runs are children of the search run.
    """
    url, name, train_id, case = target.url, target.name, target.train_run, target.case
    box = target.box
    b_theory = theory_b(box.band.median, box.z_dim)
    tags = {"train_run": train_id, "case": case}
    parent_tags = {
        **tags,
        "study_name": name,
        "optuna_storage": redact(url),
        "mode": request.mode,
    }
    print(
        f"aelatent search: study {name!r} in {redact(url)} "
        f"({'continued' if target.resumed else 'new'}); "
        f"watch it with: optuna-dashboard {redact(url)}",
        file=sys.stderr,
        flush=True,
    )
    with entry_point_run(ENTRY_POINT, f"search case {case}", parent_tags, nested=nested) as run:
        parent_id = run.info.run_id
        _log_params_once(
            {
                "train_run": train_id,
                "case": case,
                "k": f"{request.k:g}",
                "n_trials": request.n_trials,
                "n_samples": request.n_samples,
                "b_min": f"{request.b_min:g}",
                "b_max": f"{request.b_max:g}",
                "mode": request.mode,
                "storage": redact(url),
                "study_name": name,
                "seed": request.seed,
                "z_dim": box.z_dim,
                "n_real": target.n_real,
                "estimate": request.estimate,
                "objective": request.objective,
                "radius_band": ",".join(f"{p:g}" for p in request.radius_band),
                **({"knn_k": request.knn_k, "knn_n": request.knn_n} if request.knn else {}),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(write_csv(Path(tmp) / WINDOWS_CSV, target.windows.columns())),
                                "stats")
            log_csv_table(Path(tmp) / WINDOWS_CSV, WINDOWS_TABLE)
        log_train_dataset(train_id)  # context "evaluation"
        set_description(train_run_line(train_id))
        with _quiet_optuna():
            study, created = open_study(
                target.storage, name, target.definition, TrialSeededSampler(request.seed)
            )
            mlflow.set_tag("resumed", str(not created).lower())  # joined an existing study
            runner = TrialRunner(objective, box, request, name, parent_id, tags)
            n_trials = request.n_trials
            if created and request.b_min <= b_theory <= request.b_max:
                # radius theory's b first: a good start that TPE refines (only the creator
                # adds it, so concurrent workers do not evaluate it twice)
                runner.add_fixed_trial(study, b_theory, "radius theory")
                n_trials -= 1
            if n_trials:  # a bar on a terminal, a few lines in a log
                with optuna_progress(n_trials, "aelatent search") as progress:
                    study.optimize(runner, n_trials=n_trials, **progress)
        _log_summary(study, objective, box, request, b_theory, parent_id)
        from aelatent.io.generator_model import log_search_generator

        log_search_generator(parent_id, train_id, target.windows.mu, target.windows.hw)
        return parent_id


def _log_params_once(params: dict[str, Any]) -> None:
    """Log what ``mlflow run`` has not logged already (it logs the entry point's own values)."""
    active = mlflow.active_run()
    assert active is not None
    present = mlflow.get_run(active.info.run_id).data.params
    missing = {k: v for k, v in params.items() if k not in present}
    if missing:
        mlflow.log_params(missing)


def summary_metrics(
    study: Study,
    objective: SearchObjective,
    box: UniformSearchObjective,
    b_theory: float,
    sweep: Sweep | None,
    parent_id: str,
) -> dict[str, float]:
    """The parent run's metrics: Optuna's best b beside the exact optimum and its interval.

    Nothing named ``best_*`` when the objective is 0 for every b (there is no best b).
    """
    best = best_trial(study)
    at_theory = objective(b_theory)
    trials = study.get_trials(deepcopy=False)
    metrics: dict[str, float] = {
        "b_theory": b_theory,
        "objective_at_b_theory": at_theory.objective,
        "n_windows_excluding_0": box.n_windows_excluding_zero,
        "radius_band_lo": box.band.lo,
        "radius_band_hi": box.band.hi,
        "radius_median": box.band.median,
        "n_trials_study": sum(t.state == TrialState.COMPLETE for t in trials),
        "n_trials_run": sum(t.user_attrs.get("mlflow_parent_run_id") == parent_id for t in trials),
    }
    if sweep is None:
        return metrics
    metrics.update({
        "best_b_sweep": sweep.b,
        "best_value_sweep": sweep.value.objective,
        "best_value_sweep_se": sweep.value.objective_se,
        "best_b_lo": sweep.lo,
        "best_b_hi": sweep.hi,
    })
    if best is None or not (_objective_of(best) or 0.0) > 0:
        return metrics
    value = objective(float(best.params["b"]))
    metrics.update({
        "best_b": value.b,
        "best_value": value.objective,
        "best_value_se": value.objective_se,
        **{f"best_{part}": x for part, x in value.parts().items()},
        "best_trial": best.number,
        "best_b_gap": value.b - sweep.b,
        "best_b_in_interval": float(sweep.contains(value.b)),
    })
    log10_p = _finite(box.log10_p_hit(value.b))
    if log10_p is not None:
        metrics["best_log10_p_hit"] = log10_p
    return metrics


def sweep_objective(objective: SearchObjective, request: SearchRequest
                    ) -> tuple[Curve, Sweep | None]:
    """The objective over the whole b range, and its best b with the interval as good.

    The box objectives: a dense exact maximiser and a 600-point curve for the plot; knn: one
    curve on the k-NN sweep's grid (each point is a k-NN test per replicate), read for both.
    """
    if isinstance(objective, KnnSearchObjective):
        curve = objective.curve(np.geomspace(request.b_min, request.b_max, KNN_GRID_POINTS))
        return curve, best_of_curve(curve)
    sweep = objective.best_in(request.b_min, request.b_max)
    return objective.curve(np.geomspace(request.b_min, request.b_max, CURVE_POINTS)), sweep


def _log_summary(
    study: Study,
    objective: SearchObjective,
    box: UniformSearchObjective,
    request: SearchRequest,
    b_theory: float,
    parent_id: str,
) -> None:
    curve, sweep = sweep_objective(objective, request)
    metrics = summary_metrics(study, objective, box, b_theory, sweep, parent_id)
    parts = list(curve.parts())
    with tempfile.TemporaryDirectory() as tmp:  # artifacts first: nothing below can lose them
        out = Path(tmp)
        write_trials_csv(study, out / "trials.csv", parts)
        write_curve_csv(curve, out / "objective_curve.csv")
        if request.multi:
            write_pareto_csv(study, out / "pareto_front.csv", parts)
        save_objective_curve(objective, curve, study, request, b_theory, sweep,
                             out / "objective_curve.png")
        save_optuna_plots(study, out, request.multi, parts)
        mlflow.log_artifacts(tmp, artifact_path=ARTIFACT_DIR)
        log_csv_table(out / "trials.csv", TRIALS_TABLE)  # every trial, as a UI table
    mlflow.log_metrics(metrics)
    if sweep is None:
        message = (explain_zero(box, request) if objective is box
                   else explain_knn_zero(request))
        mlflow.set_tag(NO_BEST_B_TAG, message[:5000])
        print(f"aelatent search: no best b: {message}", file=sys.stderr)
        return
    exact = (f"{'exact ' if objective is box else ''}optimum of the sampled objective "
             f"b = {sweep.b:.4g} "
             f"({sweep.value.objective:.4g} +- {sweep.value.objective_se:.2g}), as good within "
             f"error for b in [{sweep.lo:.4g}, {sweep.hi:.4g}]")
    if "best_b" not in metrics:
        mlflow.set_tag(OUTSIDE_TAG, "every Optuna trial scored 0")
        print(f"aelatent search: every Optuna trial scored 0, yet the {exact}; run more trials "
              "or narrow b_min..b_max", file=sys.stderr)
        return
    print(
        f"aelatent search: best b = {metrics['best_b']:.4g} (objective "
        f"{metrics['best_value']:.4g} +- {metrics['best_value_se']:.2g}, trial "
        f"{metrics['best_trial']:g}); {exact}; radius theory b = {b_theory:.4g}; "
        f"{metrics['n_trials_study']:g} trials in the study",
        file=sys.stderr,
    )
    if not metrics["best_b_in_interval"]:
        mlflow.set_tag(OUTSIDE_TAG, f"Optuna's best b {metrics['best_b']:.4g} is outside "
                                    f"[{sweep.lo:.4g}, {sweep.hi:.4g}]")
        print(f"aelatent search: Optuna's best b {metrics['best_b']:.4g} is outside the interval "
              "of the exact optimum; run more trials", file=sys.stderr)


def explain_zero(objective: UniformSearchObjective, request: SearchRequest) -> str:
    """Why no b scores: which of the two conditions fails where.

    Both parts come from the sampled vectors themselves, not from a grid of b (which steps
    over a narrow band when the range is wide): vector j's radius b |y_j| is in the real band
    for b in [band.lo / |y_j|, band.hi / |y_j|], where its radius weight is > 0; it hits for
    b in [hit_lo_j, hit_hi_j], so the hit rate is largest at b_min or at one of those starts.
    """
    b_min, b_max = request.b_min, request.b_max
    norm = objective.norm[objective.norm > 0]
    radius_from, radius_to = objective.band.lo / norm, objective.band.hi / norm
    overlaps = (radius_from <= b_max) & (radius_to >= b_min)
    radius_text = (
        f"the radii alone match for b in [{max(b_min, radius_from[overlaps].min()):.3g}, "
        f"{min(b_max, radius_to[overlaps].max()):.3g}]"
        if overlaps.any()
        else "no b in the range matches the real radii"
    )
    hits = objective.hit_lo <= objective.hit_hi
    starts, ends = np.sort(objective.hit_lo[hits]), np.sort(objective.hit_hi[hits])
    at = np.concatenate([[b_min], starts[(starts > b_min) & (starts <= b_max)]])
    n_hit = np.searchsorted(starts, at, side="right") - np.searchsorted(ends, at, side="left")
    return (
        f"the objective is 0 for every b in [{b_min:g}, {b_max:g}]: at "
        f"k={request.k:g} the hit rate is at most {n_hit.max() / objective.n_samples:.3g}, with "
        f"{objective.n_windows_excluding_zero} of {objective.z_dim} hit windows excluding 0 "
        f"(the real region is off the origin), and {radius_text}. No uniform b reproduces "
        "these latents; try a larger k, mode=multi, or the evaluate entry point's other samplers"
    )


def explain_knn_zero(request: SearchRequest) -> str:
    """Why the k-NN objective is 0 everywhere: no generated vector in any real ball."""
    return (
        f"the objective is 0 for every b in [{request.b_min:g}, {request.b_max:g}]: no uniform "
        f"vector lands in the k-NN ball (k={request.knn_k}) of any of the real latents, so "
        "precision and recall are 0; the real region is not reached by a centred uniform "
        "generator. Try the evaluate entry point's gaussian, mvn or gmm samplers"
    )


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point(ENTRY_POINT, main, argv)


if __name__ == "__main__":
    cli()
