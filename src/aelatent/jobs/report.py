"""The ``report`` entry point: tracked runs -> a self-contained HTML report (and Markdown).

``mlflow run . -e report --env-manager local [-P experiment=NAME] [-P run_ids=ID,ID]
[-P output=FOLDER]``

Artifacts are fetched through MLflow's API only, so the same command reports on runs in a
local store and on a remote tracking server (``MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow

from aelatent.arguments import ArgumentParser
from aelatent.errors import UserError
from aelatent.io.tracking import entry_point_run, run_entry_point
from aelatent.reporting.collect import collect
from aelatent.reporting.content import build_document
from aelatent.reporting.output_folder import check_output_folder, lock_output_folder
from aelatent.reporting.render import ReportFiles, write_document
from aelatent.reporting.selection import select_runs

AUTO = "auto"
REPORTS_DIR = Path("reports")
LATEST = "latest"
ARTIFACT_DIR = "report"


@dataclass(frozen=True)
class ReportResult:
    run_id: str
    html: Path
    markdown: Path


def parse_run_ids(text: str) -> list[str]:
    return [part.strip() for part in str(text).split(",") if part.strip()]


def default_output(root: Path = REPORTS_DIR, *, claim: bool = False) -> Path:
    """``reports/<timestamp>`` (unique), so earlier reports are kept. With ``claim`` the
    folder is made here, atomically: two reports started in the same second get a folder
    each (``<timestamp>-2``), never one shared folder where the second would be refused."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while True:
        try:
            if claim:
                path.mkdir(parents=True)
            elif path.exists():
                raise FileExistsError(path)
            return path
        except FileExistsError:
            n += 1
            path = root / f"{stamp}-{n}"
        except OSError as exc:
            raise UserError(f"output={str(path)!r} cannot be created: {exc.strerror}") from None


def point_latest(output: Path) -> None:
    """Make ``reports/latest`` a link to the newest default report (best effort)."""
    latest = output.parent / LATEST
    try:
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.exists():
            return  # a real folder someone made: leave it alone
        latest.symlink_to(output.name, target_is_directory=True)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="aelatent report", description=__doc__)
    parser.add_argument("--experiment", default="", help="experiment name or id (default: all)")
    parser.add_argument("--run-ids", default="", help="comma list of run ids (default: newest)")
    parser.add_argument("--output", default=AUTO, help="folder (default reports/<timestamp>)")
    args = parser.parse_args(argv)
    result = write_report(
        args.experiment.strip() or None,
        parse_run_ids(args.run_ids),
        None if args.output in ("", AUTO) else Path(args.output),
    )
    print_where(result)


def write_report(
    experiment: str | None,
    run_ids: Sequence[str],
    output: Path | None = None,
    *,
    nested: bool = False,
    tags: dict[str, str] | None = None,
) -> ReportResult:
    """Select, download, render and log the report in a run named "report"."""
    is_default = output is None
    output = check_output_folder((default_output() if output is None else output).resolve())
    with entry_point_run("report", "report", tags, nested=nested) as run:
        selection = select_runs(experiment, run_ids)
        shown = [
            r.info.run_id
            for case in selection.cases
            for r in [case.train, *case.evaluations, *([case.search] if case.search else [])]
        ]
        mlflow.set_tags(
            {
                "report.selection": selection.description[:5000],
                "report.cases": ",".join(c.label for c in selection.cases) or "none",
                "report.runs": ",".join(shown)[:5000],
            }
        )
        if is_default:
            output = default_output(output.parent, claim=True)
        # one report at a time in the folder, until its files are logged (a second one is
        # refused); an earlier report's files are replaced, a file of the user's is refused
        with (
            lock_output_folder(output),
            tempfile.TemporaryDirectory(prefix="aelatent-report-") as tmp,
        ):
            data = collect(selection, Path(tmp) / "artifacts")
            document = build_document(data, Path(tmp) / "figures")
            files = write_document(document, output)
            log_report_files(files, output, Path(tmp) / ARTIFACT_DIR)
        mlflow.log_metric("n_cases", len(selection.cases))
        mlflow.log_metric("n_fetch_problems", len(data.problems))
        if is_default:
            point_latest(output)
        return ReportResult(run.info.run_id, files.html, files.markdown)


def log_report_files(files: ReportFiles, output: Path, staging: Path) -> None:
    """Log this report's files (only these: a file of the user's beside them stays private)
    under ``report/`` in one call, through copies in ``staging``."""
    for path in [files.html, files.markdown, *files.tables, *files.images]:
        copy = staging / path.relative_to(output)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    mlflow.log_artifacts(str(staging), ARTIFACT_DIR)


def print_where(result: ReportResult) -> None:
    print(f"report: {result.html}")
    print(f"  open it in a browser: file://{result.html}")
    print(f"  markdown: {result.markdown}")
    print(f"  report run {result.run_id}; fetch it anywhere with")
    print(f"  mlflow artifacts download -r {result.run_id} -a {ARTIFACT_DIR} -d ./report")


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("report", main, argv)


if __name__ == "__main__":
    cli()
