"""Where a search's Optuna study lives and what it is about: storage URLs and opening them
(SQLite or a server database, with clear one-line errors), the heartbeat that fails a dead
worker's trial, the per-trial seeded TPE sampler, the study's name and definition (refused
when a continued study asked another question), and its best trial."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
from mlflow.tracking import MlflowClient
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from aelatent.arguments import parse_int
from aelatent.core.objective import (
    BAND_PERCENTILES,
    DEFAULT_OBJECTIVE,
)
from aelatent.core.sampler_registry import spec_of
from aelatent.core.verdict_objective import DEFAULT_SPLITS as C2ST_SPLITS
from aelatent.errors import UserError
from aelatent.io.tracking import ERROR_TAG
from aelatent.jobs.search.request import (
    SearchRequest,
    objective_version,
)

OPTUNA_DB = "optuna.db"


SQLITE_BUSY_TIMEOUT_S = 60


SERVER_CONNECT_TIMEOUT_S = 10


HEARTBEAT_INTERVAL_S = 60


HEARTBEAT_GRACE_S = 180


HEARTBEAT_ENV = "AELATENT_OPTUNA_HEARTBEAT_S"  # another interval; the grace is 3 intervals


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
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
        from sqlalchemy.engine import make_url  # ~0.3 s; only once a storage is opened

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


def open_storage(url: str, *, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An :class:`optuna.storages.RDBStorage` on ``url``; a clear error when unreachable.

    SQLite waits up to a minute for a lock held by another worker ("database is locked").
    A heartbeat marks trials of killed workers FAIL and re-queues them once, so a kill
    neither loses a trial nor leaves a zombie RUNNING one. Two workers creating the tables
    of a new file or database at the same moment can collide; that is retried. A database that holds
    tables but no Optuna study table (the MLflow store itself, say) is refused, because
    Optuna would add its tables to it.
    """
    import sqlalchemy.exc  # ~0.3 s; only once a storage is opened
    from sqlalchemy.engine import make_url  # ~0.3 s; only once a storage is opened

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
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.ProgrammingError,
        ) as exc:
            error = _first_line(exc)
            # SQLite: "table ... already exists", "UNIQUE constraint failed"; PostgreSQL:
            # "duplicate key value violates unique constraint" (concurrent CREATE TABLE) and
            # DuplicateTable 'relation "alembic_version" already exists' (a ProgrammingError)
            racing = any(s in error.lower() for s in ("already exists", "unique", "duplicate"))
            if not racing or attempt + 1 == attempts:
                break  # a real error, or a race that does not settle
            time.sleep(0.5 * (attempt + 1))  # let the winner finish creating the tables
        except ImportError as exc:
            error = f"its database driver is not installed ({_first_line(exc.__cause__ or exc)})"
            break
        except (sqlalchemy.exc.SQLAlchemyError, ValueError, RuntimeError) as exc:
            error = _first_line(exc)
            break
    check = (
        "; check that the database server is running and its host, port, user, password "
        "and database name"
        if backend != "sqlite"
        else ""
    )
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
        client = MlflowClient()
        reason = (
            f"its search worker stopped during trial {number} of study {study_name!r} "
            f"(no Optuna heartbeat for {self.grace_s} s): the trial is FAIL and queued "
            "again"
        )
        runs = mlflow.search_runs(
            search_all_experiments=True,
            output_format="list",
            filter_string=f"tags.study_name = '{study_name}' and tags.trial = '{number}' "
            "and attributes.status = 'RUNNING'",
        )
        for run in runs:
            for run_id in (run.info.run_id, run.data.tags.get("mlflow.parentRunId")):
                if run_id and client.get_run(run_id).info.status == "RUNNING":
                    client.set_tag(run_id, ERROR_TAG, reason)
                    client.set_terminated(run_id, "FAILED")


def _refuse_foreign_database(url: str, backend: str) -> None:
    """A clear error when ``url`` is some other application's database (e.g. MLflow's)."""
    import sqlalchemy  # ~0.3 s; only once a storage is opened

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


def default_study_name(
    train_run_id: str,
    k: float,
    mode: str,
    objective: str = DEFAULT_OBJECTIVE,
    band: tuple[float, float] = BAND_PERCENTILES,
    sampler: str = "uniform",
) -> str:
    """One name per question asked: studies of the first (band) objective keep their names."""
    if not spec_of(sampler).has_box:  # k-NN only: neither k nor the band enter its objective
        return f"{sampler}-scale-{train_run_id}-{objective}" + ("-multi" if mode == "multi" else "")
    name = f"uniform-b-{train_run_id}-k{k:g}"
    if objective != "band":
        name += f"-{objective}"
    if tuple(band) != BAND_PERCENTILES:
        name += f"-r{band[0]:g}-{band[1]:g}"
    return name + ("-multi" if mode == "multi" else "")


def study_definition(request: SearchRequest, train_run_id: str) -> dict[str, Any]:
    """What the study's objective depends on, stored as its user attributes.

    A scale search leaves out what does not enter its objective (the box's k, n_samples and
    radius band; the window estimator unless the gaussian is built from the windows), so
    continuing it with another of those is not refused.
    """
    knn_part = {"knn_k": request.knn_k, "knn_n": request.knn_n} if request.knn else {}
    if request.replicate and not request.knn:  # the C2ST: cross-fitted splits of the latents
        knn_part = {"splits": C2ST_SPLITS}
    definition: dict[str, Any] = {
        "train_run": train_run_id,
        "k": request.k,
        "n_samples": request.n_samples,
        "seed": request.seed,
        "mode": request.mode,
        "estimate": request.estimate,
        "objective": objective_version(request.objective, request.sampler),
        "radius_band": ",".join(f"{p:g}" for p in request.radius_band),
        **knn_part,
    }
    if request.replicate:  # neither k, n_samples nor the band enter a replicate objective
        unused = ["k", "n_samples", "radius_band"]
        if request.sampler != "gaussian":
            unused.append("estimate")
        for key in unused:
            del definition[key]
    return definition


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
    *,
    pruner: BasePruner | None = None,
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
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    stored = study.user_attrs
    for key, value in definition.items():
        if key not in stored:
            study.set_user_attr(key, value)
    check_existing_study(storage, name, definition)  # a worker of another question raced us
    return study, created


def objective_of(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("objective")
    if value is None and trial.values is not None and len(trial.values) == 1:
        value = trial.values[0]
    return None if value is None else float(value)


def best_trial(study: Study) -> FrozenTrial | None:
    """The complete trial with the largest objective (in multi mode too: the combined one)."""
    scored = [
        (value, -t.number, t)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (value := objective_of(t)) is not None
    ]
    return max(scored, key=lambda s: (s[0], s[1]))[2] if scored else None
