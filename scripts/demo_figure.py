"""The README's picture: decoded vectors of each generator setting beside its verdict.

One row per setting (real latents first): on the left the decoded vectors as the evaluate
run drew them (cut from its ``decoded/overview.png``), on the right the verdict's two
classifier two-sample tests for that setting (cross-validated accuracy of telling its
vectors from real latents it was not fitted to, with 95% intervals; 0.5 = indistinguishable)
and the tests that tell it apart (from its ``tables/verdict.json``). Everything comes from
one evaluate run through MLflow's artifact API, so the picture shows what that run logged:

    make demo
    make demo-figure                                        # newest evaluate run of case I
    .venv/bin/python scripts/demo_figure.py --run-id <id>   # or that run

It writes ``docs/img/demo_verdict.png`` (``--out`` for another place); the store is
``MLFLOW_TRACKING_URI`` (the Makefile's ``sqlite:///mlflow.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "demo_verdict.png"
DECODED = "decoded/overview.png"
VERDICT = "tables/verdict.json"
# the story in eight rows: the real floor, uniform across its range, independent Gaussians,
# the correlated generators at their fitted width and wider
DEFAULT_ROWS = ("uniform:1", "uniform:3", "uniform:12", "gaussian:1", "mvn:1", "mvn:1.5", "gmm:1")
REAL = "real"
WHITE = 245  # grey levels above this are the figure's background
MAX_COLOURS = 128  # a palette keeps the repository small (grey faces, two accents)


@dataclass(frozen=True)
class Row:
    label: str
    images: np.ndarray  # grey or RGB pixels of the decoded strip
    verdict: dict[str, Any]  # the row of tables/verdict.json


def image_bands(pixels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The image strips of a ``save_image_rows`` figure, top to bottom, as (top, bottom,
    left, right): runs of pixel rows mostly non-white (the title and labels are not)."""
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    ink = grey < WHITE
    wide = ink.sum(axis=1) > 0.3 * grey.shape[1]
    bands: list[tuple[int, int, int, int]] = []
    y = 0
    while y < len(wide):
        if not wide[y]:
            y += 1
            continue
        top = y
        while y < len(wide) and wide[y]:
            y += 1
        columns = np.flatnonzero(ink[top:y].sum(axis=0) > 0.5 * (y - top))
        bands.append((top, y, int(columns.min()), int(columns.max()) + 1))
    return bands


def overview_order(params: dict[str, str], samplers: Sequence[str]) -> list[tuple[str, float]]:
    """(sampler, value) of the overview's rows below the real one, as evaluate drew them:
    the samplers in the order asked (``all``: evaluate's, DEFAULT_SAMPLERS, which leaves out
    the trained flow), each over its b or scale list."""
    from aelatent.core.sampler_registry import spec_of

    asked = [s.strip().lower() for s in params["sampler"].split(",") if s.strip()]
    names = list(samplers) if not asked or "all" in asked else asked
    order = []
    for name in names:
        values = params["b"] if spec_of(name).has_box else params["scale"]
        order.extend((name, float(v)) for v in values.split(","))
    return order


def pick_rows(
    overview: np.ndarray, verdict: dict[str, Any], params: dict[str, str], wanted: Sequence[str]
) -> list[Row]:
    from aelatent.core.sampler_registry import DEFAULT_SAMPLERS

    bands = image_bands(overview)
    order = [(REAL, float("nan")), *overview_order(params, DEFAULT_SAMPLERS)]
    if len(bands) != len(order):
        raise SystemExit(
            f"{DECODED} has {len(bands)} image rows, the run's parameters say {len(order)}"
        )
    by_setting = {(r["name"], r["value"]): r for r in verdict["rows"]}
    rows = [Row("real latents", _cut(overview, bands[0]), by_setting[(REAL, None)])]
    for item in wanted:
        name, _, value = item.partition(":")
        key = (name, float(value))
        if key not in order[1:] or key not in by_setting:
            raise SystemExit(f"{item}: not a setting of this run (sampler:value, e.g. mvn:1)")
        band = bands[order.index(key)]
        rows.append(Row(by_setting[key]["label"], _cut(overview, band), by_setting[key]))
    return rows


def _cut(pixels: np.ndarray, band: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = band
    return pixels[top:bottom, left:right]


def draw(rows: Sequence[Row], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strip_ratio = rows[0].images.shape[1] / rows[0].images.shape[0]
    fig, axes = plt.subplots(
        len(rows),
        3,
        figsize=(14, 0.95 * len(rows) + 1.6),
        gridspec_kw={"width_ratios": [strip_ratio * 0.95, 3.2, 3.4], "wspace": 0.04},
        squeeze=False,
    )
    real = rows[0].verdict["criteria"].get("c2st_nonlinear")
    for (left, middle, right), row in zip(axes, rows, strict=True):
        cmap = "gray" if row.images.ndim == 2 else None
        left.imshow(row.images, cmap=cmap, vmin=0, vmax=255)
        left.set_xticks([])
        left.set_yticks([])
        for side in left.spines.values():
            side.set_visible(False)
        left.set_ylabel(row.label, rotation=0, ha="right", va="center", fontsize=10)
        colour = _accuracy_axis(middle, row.verdict, real)
        right.axis("off")
        right.text(0.02, 0.5, _verdict_text(row.verdict), va="center", fontsize=10, color=colour)
    bottom = axes[-1][1]
    bottom.set_xlabel(
        "classifier accuracy (0.5: it cannot tell them from real latents)", fontsize=9
    )
    bottom.tick_params(axis="x", labelbottom=True, labelsize=9)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color="k", label="quadratic C2ST"),
        plt.Line2D([], [], marker="o", ls="", mfc="white", color="k", label="linear C2ST"),
        plt.Rectangle((0, 0), 1, 1, color="0.9", label="real against real (quadratic)"),
    ]
    fig.legend(handles=handles, loc="lower right", fontsize=9, frameon=False, ncol=3)
    fig.suptitle(title, fontsize=11)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.11, right=0.99, top=1 - 0.6 / height, bottom=0.75 / height)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _accuracy_axis(ax: Any, verdict: dict[str, Any], real: dict[str, Any] | None) -> str:
    """The row's two C2ST accuracies with their intervals; returns the row's colour."""
    differs = bool(verdict["rejected_by"])
    colour = "black" if verdict["axis"] == "" else ("tab:red" if differs else "tab:green")
    if real is not None:
        ax.axvspan(real["lo"], real["hi"], color="0.9", zorder=0)
    ax.axvline(0.5, color="0.5", lw=0.8, ls="--", zorder=1)
    for y, test, face in ((0.65, "c2st_nonlinear", colour), (0.35, "c2st_linear", "white")):
        c = verdict["criteria"].get(test)
        if c is None:
            continue
        err = [[c["statistic"] - c["lo"]], [c["hi"] - c["statistic"]]]
        ax.errorbar(c["statistic"], y, xerr=err, fmt="o", color=colour, mfc=face, capsize=3)
    ax.set_xlim(0.38, 1.02)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelbottom=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return colour


def _verdict_text(verdict: dict[str, Any]) -> str:
    rejected, n_tests = verdict["rejected_by"], len(verdict["criteria"])
    if not rejected:
        return f"{verdict['verdict']}:\nnone of the {n_tests} tests tells them apart"
    if len(rejected) == n_tests:
        return f"told apart by all {n_tests} tests"
    names = ", ".join(t.replace("_", " ") for t in rejected)
    return f"told apart by {len(rejected)} of {n_tests} tests:\n{names}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", help="an evaluate run (default: the newest of --case)")
    parser.add_argument("--case", default="I")
    parser.add_argument(
        "--rows", default=",".join(DEFAULT_ROWS), help="sampler:value settings, comma separated"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    run = mlflow.get_run(args.run_id) if args.run_id else newest_evaluate_run(args.case)
    with tempfile.TemporaryDirectory() as tmp:
        get = mlflow.artifacts.download_artifacts
        overview = np.asarray(
            Image.open(get(run_id=run.info.run_id, artifact_path=DECODED, dst_path=tmp)).convert(
                "RGB"
            )
        )
        verdict = json.loads(
            Path(get(run_id=run.info.run_id, artifact_path=VERDICT, dst_path=tmp)).read_text()
        )
    rows = pick_rows(overview, verdict, run.data.params, args.rows.split(","))
    case = run.data.tags.get("case", "?")
    title = (
        f"make demo, case {case}: decoded vectors of each generator, and can they be told from "
        f"real latents?\n(the verdict: {verdict['n_test']} vectors per set, "
        f"{verdict['n_splits']} cross-fitted splits, Holm at 0.05 over the tests)"
    )
    draw(rows, title, args.out)
    picture = Image.open(args.out).convert("RGB")
    # maximum coverage keeps the accents' hue (median cut dulls the red) and the greys' steps
    picture.quantize(colors=MAX_COLOURS, method=Image.Quantize.MAXCOVERAGE).save(
        args.out, optimize=True
    )
    print(f"{args.out} from evaluate run {run.info.run_id}")
    sys.stdout.flush()
    return 0


def newest_evaluate_run(case: str) -> Any:
    """The newest finished evaluate run of ``case`` in the experiment aelatent."""
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=["aelatent"],
        filter_string=(
            f"tags.entry_point = 'evaluate' and tags.`case` = '{case}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise SystemExit(f"no finished evaluate run of case {case} in experiment aelatent")
    return runs[0]


if __name__ == "__main__":
    raise SystemExit(main())
