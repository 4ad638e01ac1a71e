"""Download what the selected runs logged, through MLflow's API only.

``mlflow.artifacts.download_artifacts`` and ``MlflowClient.list_artifacts`` work the same
against a local store and a remote tracking server, so the report never reads a store's
files directly. Only what a report shows is fetched (images, CSV and Markdown tables, not
models or latents), and a piece that cannot be fetched is recorded, not fatal.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.io.tracking import ENTRY_POINT_TAG
from aelatent.reporting.selection import PARENT_TAG, Case, Selection
from aelatent.schema import VERDICT_JSON

WANTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".csv", ".md")
WANTED_FILES = (VERDICT_JSON,)  # other JSON (MLflow's own tables) is left
SKIPPED_DIRS = ("model", "latents", "checkpoints")
MAX_ARTIFACT_BYTES = 25 * 2**20
TRAIN_HISTORIES = ("loss", "val_loss")


@dataclass
class RunData:
    """What a report needs of one run, as plain values (no MLflow objects)."""

    run_id: str
    name: str
    entry_point: str
    status: str
    start_time: int | None = None
    experiment_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    histories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    children: list[RunData] = field(default_factory=list)

    def find(self, *patterns: str) -> list[tuple[str, Path]]:
        """Downloaded artifacts whose path matches any glob pattern, sorted by path."""
        return sorted(
            (path, local)
            for path, local in self.artifacts.items()
            if any(fnmatch.fnmatch(path, p) for p in patterns)
        )

    def first(self, *patterns: str) -> Path | None:
        """The first artifact matching the patterns, trying them in order."""
        for pattern in patterns:
            found = self.find(pattern)
            if found:
                return found[0][1]
        return None

    @property
    def started(self) -> str:
        if not self.start_time:
            return ""
        return datetime.fromtimestamp(self.start_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


CaseData = Case[RunData]  # one column of the report, its runs collected


@dataclass
class ReportData:
    cases: list[CaseData]
    selection: str
    tracking_uri: str
    created: str
    problems: list[str] = field(default_factory=list)


def collect(selection: Selection, cache_dir: Path) -> ReportData:
    """Fetch metrics, histories and the wanted artifacts of every selected run."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file
    problems: list[str] = []
    cases = []
    for case in selection.cases:
        cases.append(
            CaseData(
                label=case.label,
                case=case.case,
                train=fetch_run(case.train, cache_dir, problems, histories=TRAIN_HISTORIES),
                evaluations=[fetch_run(r, cache_dir, problems) for r in case.evaluations],
                search=None
                if case.search is None
                else fetch_run(case.search, cache_dir, problems, children=True),
            )
        )
    return ReportData(
        cases=cases,
        selection=selection.description,
        tracking_uri=mlflow.get_tracking_uri(),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        problems=problems,
    )


def run_data(run: Run) -> RunData:
    return RunData(
        run_id=run.info.run_id,
        name=run.info.run_name or run.data.tags.get("mlflow.runName", ""),
        entry_point=run.data.tags.get(ENTRY_POINT_TAG, ""),
        status=run.info.status,
        start_time=run.info.start_time,
        experiment_id=run.info.experiment_id,
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
    )


def fetch_run(
    run: Run,
    cache_dir: Path,
    problems: list[str],
    *,
    histories: tuple[str, ...] = (),
    children: bool = False,
) -> RunData:
    data = run_data(run)
    client = MlflowClient()
    for key in histories:
        try:
            data.histories[key] = [
                (m.step, m.value) for m in client.get_metric_history(data.run_id, key)
            ]
        except MlflowException as exc:
            problems.append(f"run {data.run_id}: metric history {key!r}: {_first_line(exc)}")
    dst = cache_dir / data.run_id
    for path in list_wanted(data.run_id, problems):
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=data.run_id, artifact_path=path, dst_path=str(dst)
            )
        except (MlflowException, OSError) as exc:
            problems.append(f"run {data.run_id}: artifact {path!r}: {_first_line(exc)}")
            continue
        data.artifacts[path] = Path(local)
    if children:
        data.children = [run_data(child) for child in child_runs(run)]
    return data


def list_wanted(run_id: str, problems: list[str], path: str | None = None) -> list[str]:
    """Artifact paths worth downloading for a report, walking folders recursively."""
    try:
        entries = MlflowClient().list_artifacts(run_id, path)
    except (MlflowException, OSError) as exc:
        problems.append(f"run {run_id}: listing {path or 'artifacts'}: {_first_line(exc)}")
        return []
    wanted: list[str] = []
    for entry in entries:
        name = entry.path.rsplit("/", 1)[-1]
        if entry.is_dir:
            if path is None and name in SKIPPED_DIRS:
                continue
            wanted += list_wanted(run_id, problems, entry.path)
        elif (name.lower().endswith(WANTED_SUFFIXES) or entry.path in WANTED_FILES) and (
            entry.file_size is None or entry.file_size <= MAX_ARTIFACT_BYTES
        ):
            wanted.append(entry.path)
    return wanted


def child_runs(run: Run) -> list[Run]:
    """The nested runs of a run (e.g. the trials of a search), oldest first."""
    return mlflow.search_runs(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=10000,
        output_format="list",
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
