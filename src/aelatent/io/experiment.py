"""The MLflow experiment the entry points log into: ``aelatent``, unless the user chose one.

- ``mlflow run . -e NAME`` creates its run *before* the job starts, in the experiment of
  ``--experiment-name`` / ``--experiment-id``, else of ``MLFLOW_EXPERIMENT_NAME`` /
  ``MLFLOW_EXPERIMENT_ID``, else of MLflow's default-experiment providers.
  :class:`ProjectExperimentProvider` is one (this package's ``mlflow.default_experiment_provider``
  entry point): when the project ``mlflow run`` launches is this one, it answers ``aelatent``.
  A user's flag or variable is read before any provider, so it still wins.
- A job started without ``mlflow run`` (``python mlproject/train.py``): :func:`choose_experiment`
  sets ``aelatent`` unless ``MLFLOW_EXPERIMENT_NAME`` or ``MLFLOW_EXPERIMENT_ID`` is set.
- Either way the experiment is tagged ``mlflow.experimentKind = custom_model_development``
  when it has no kind yet (:func:`mark_experiment`): the MLflow 3 UI then opens it on the
  runs table, not on the GenAI traces overview.

MLflow imports this module while it is itself being imported (to register the provider), so
it imports nothing of MLflow at module level beyond the provider's base class.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from mlflow.tracking.default_experiment.abstract_context import DefaultExperimentProvider

from aelatent.errors import UserError

EXPERIMENT_NAME = "aelatent"
PROJECT_NAME = "aelatent"  # `name:` in MLproject
KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"  # the MLflow UI's "machine learning" experiment kind
_MLPROJECT_NAME = re.compile(r"^name:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)


def ensure_experiment(name: str = EXPERIMENT_NAME) -> str:
    """The id of the experiment ``name``, created (with its kind tag) if it does not exist."""
    from mlflow.exceptions import MlflowException  # cycle: MLflow imports this module
    from mlflow.tracking import MlflowClient  # cycle: MLflow imports this module

    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, tags={KIND_TAG: KIND})
        except MlflowException:  # another job created it in the meantime
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise UserError(
            f"experiment {name!r} is deleted: restore it with `mlflow experiments restore "
            f"--experiment-id {found.experiment_id}`, or set MLFLOW_EXPERIMENT_NAME to another"
        )
    return found.experiment_id


def mark_experiment(experiment_id: str) -> None:
    """Tag the experiment as model training (MLflow 3's UI opens it on the runs table), unless
    it has a kind already; a store that refuses (permissions) leaves it as it is."""
    from mlflow.exceptions import MlflowException  # cycle: MLflow imports this module
    from mlflow.tracking import MlflowClient  # cycle: MLflow imports this module

    client = MlflowClient()
    try:
        if KIND_TAG not in client.get_experiment(experiment_id).tags:
            client.set_experiment_tag(experiment_id, KIND_TAG, KIND)
    except MlflowException:
        pass


def choose_experiment() -> None:
    """Before a job's own (top-level) run: the experiment of ``MLFLOW_EXPERIMENT_NAME`` (made
    if missing) or ``MLFLOW_EXPERIMENT_ID``, else ``aelatent``. Set every time, so a process
    that runs several jobs (tests, a notebook) follows the variables as they are now. A
    failure is blamed on a variable only when the user set it and the store itself works."""
    import mlflow  # cycle: MLflow imports this module
    from mlflow.exceptions import MlflowException  # cycle: MLflow imports this module

    from aelatent.io.lifecycle import store_problem  # cycle: MLflow imports this module

    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if not name and not experiment_id:  # a failure here is the store's, reported as such
        mlflow.set_experiment(experiment_id=ensure_experiment())
        return
    try:
        if name:
            mlflow.set_experiment(experiment_name=name)
        else:
            mlflow.set_experiment(experiment_id=experiment_id)
    except MlflowException as exc:  # deleted, or no such id: the user's variable is wrong...
        if exc.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            raise
        problem = store_problem(mlflow.get_tracking_uri())
        if problem is not None:  # ...unless the store itself cannot be used (a file, say)
            raise UserError(problem) from None
        which = (
            f"MLFLOW_EXPERIMENT_NAME={name!r}"
            if name
            else f"MLFLOW_EXPERIMENT_ID={experiment_id!r}"
        )
        raise UserError(f"{which}: {str(exc).splitlines()[0]}") from None


def project_name(directory: Path) -> str | None:
    """The ``name:`` of the MLproject file in ``directory``, or None."""
    try:
        found = _MLPROJECT_NAME.search((directory / "MLproject").read_text())
    except OSError:
        return None
    return found.group(1) if found else None


def launched_project(argv: Sequence[str]) -> Path | None:
    """The folder of this project when ``argv`` is ``mlflow run <this project> ...``, else None.

    Every argument after ``run`` that names a local folder is checked (the project URI may
    come before or after the options); a git URI or another project gives None.
    """
    if len(argv) < 2 or argv[1] != "run":
        return None
    program = Path(argv[0])
    if program.stem != "mlflow" and program.parent.name != "mlflow":  # `python -m mlflow`
        return None
    for arg in argv[2:]:
        if arg.startswith("-"):
            continue
        folder = Path(arg.removeprefix("file://")).expanduser()
        if project_name(folder) == PROJECT_NAME:
            return folder
    return None


class ProjectExperimentProvider(DefaultExperimentProvider):
    """MLflow's default experiment for ``mlflow run`` of this project: ``aelatent``.

    MLflow asks providers only when neither ``--experiment-name``/``--experiment-id`` nor
    ``MLFLOW_EXPERIMENT_NAME``/``MLFLOW_EXPERIMENT_ID`` chose one; any other program, and
    ``mlflow run`` of any other project, keeps MLflow's own default.
    """

    def in_context(self) -> bool:
        from mlflow.tracking import get_tracking_uri  # cycle: MLflow imports this module
        from mlflow.utils.uri import is_databricks_uri  # cycle: MLflow imports this module

        return launched_project(sys.argv) is not None and not is_databricks_uri(get_tracking_uri())

    def get_experiment_id(self) -> str:
        return ensure_experiment()
