"""One trial of the search: the objective at one ``b`` (or ``scale``), logged as a nested
MLflow run and stored in the Optuna study (by TPE, or added as a fixed trial such as radius
theory's b)."""

from __future__ import annotations

import math
import os
import socket
from typing import Any

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.study import Study

from aelatent.core.knn_objective import (
    KnnObjectiveValue,
)
from aelatent.core.objective import (
    ObjectiveValue,
    UniformSearchObjective,
)
from aelatent.jobs.search.request import (
    SearchObjective,
    SearchRequest,
)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class TrialRunner:
    """The Optuna objective: evaluate the axis value and log the trial as a nested MLflow run.

    Optuna's parameter, the run's parameter and its metric are named after the axis: ``b``
    for uniform, ``scale`` for the others."""

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
        self.axis = request.axis

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        b = trial.suggest_float(self.axis, self.request.b_min, self.request.b_max, log=True)
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
                params={self.axis: b},
                distributions={
                    self.axis: FloatDistribution(self.request.b_min, self.request.b_max, log=True)
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
                self.axis: b,
                "objective": value.objective,
                "objective_se": value.objective_se,
                **value.parts(),
            }
            # uniform's box test beside any objective (the others have no b)
            log10_p = finite_or_none(self.box.log10_p_hit(b)) if self.axis == "b" else None
            if log10_p is not None:
                metrics["log10_p_hit"] = log10_p
            mlflow.log_param(self.axis, repr(b))
            mlflow.log_metrics(metrics)
        return value, {
            "objective": value.objective,
            "objective_se": value.objective_se,
            **value.parts(),
            "mlflow_run_id": child.info.run_id,
            "mlflow_parent_run_id": self.parent_run_id,
            "worker": self.worker,
        }
