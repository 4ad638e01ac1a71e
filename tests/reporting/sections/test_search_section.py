"""The report's search section: best b with its interval, no best b, and old runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from aelatent.reporting.collect import CaseData, ReportData, RunData
from aelatent.reporting.content import build_document
from aelatent.reporting.document import Figure, Note, Paragraph, Table, walk
from aelatent.reporting.render import write_document
from aelatent.schema import OBJECTIVE_CURVE_PNG as OBJECTIVE_CURVE

FOUND = {
    "best_b": 1.84,
    "best_b_lo": 1.83,
    "best_b_hi": 1.85,
    "best_value": 0.66,
    "best_value_se": 0.002,
    "best_b_sweep": 1.842,
    "best_value_sweep": 0.661,
    "best_b_gap": -0.002,
    "best_b_in_interval": 1.0,
    "b_theory": 1.73,
}


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)
    return path


def _search_blocks(
    tmp_path: Path,
    metrics: dict[str, float],
    tags: dict[str, str],
    curve: bool = True,
    params: dict[str, str] | None = None,
    children: list[RunData] | None = None,
    more: dict[str, Path] | None = None,
) -> list:
    artifacts = {OBJECTIVE_CURVE: _png(tmp_path / "a" / "curve.png")} if curve else {}
    artifacts.update(more or {})
    search = RunData(
        "s1",
        "search case I",
        "search",
        "FINISHED",
        tags=tags,
        metrics=metrics,
        artifacts=artifacts,
        params=params or {},
        children=children or [],
    )
    train = RunData("t1", "train case I", "train", "FINISHED")
    data = ReportData(
        cases=[CaseData("I", "I", train, [], search)],
        selection="fake",
        tracking_uri="sqlite:///x.db",
        created="now",
    )
    document = build_document(data, tmp_path / "work")
    write_document(document, tmp_path / "out")  # renders without error
    section = next(s for s in document.sections if s.key == "search")
    return list(walk(section.blocks))


def _texts(blocks: list, kind: type) -> str:
    return " ".join(b.text for b in blocks if isinstance(b, kind))


def test_best_b_with_its_interval_and_the_objective_curve(tmp_path: Path):
    blocks = _search_blocks(tmp_path, FOUND, {})
    text = _texts(blocks, Paragraph)
    assert "Best b = 1.842 [1.83, 1.85]" in text and "Optuna and the exact curve agree" in text
    figures = [b for b in blocks if isinstance(b, Figure)]
    assert "interval of the best b" in figures[0].caption


def test_optuna_outside_the_interval_is_said(tmp_path: Path):
    outside = {**FOUND, "best_b": 2.5, "best_b_in_interval": 0.0, "best_b_in_ci": 0.0}
    blocks = _search_blocks(tmp_path, outside, {})
    text = _texts(blocks, Paragraph)
    assert "OUTSIDE that interval: the trials did not reach the optimum" in text
    # the headline never puts a point outside its own interval: the sweep's best leads
    assert "Best b = 1.842 [1.83, 1.85]" in text and "Optuna's best trial is b = 2.5" in text


def test_no_best_b_is_a_line_in_the_report(tmp_path: Path):
    reason = "the objective is 0 for every b in [0.05, 12]: ..."
    blocks = _search_blocks(tmp_path, {"b_theory": 2.6}, {"no_best_b": reason})
    assert f"No best b: {reason}" in _texts(blocks, Note)
    assert "Best b =" not in _texts(blocks, Paragraph)


def test_a_run_from_before_the_interval_still_renders(tmp_path: Path):
    blocks = _search_blocks(tmp_path, {"best_b": 2.6, "best_value": 0.9}, {}, curve=False)
    assert "Best b = 2.6 (no interval logged by this run)" in _texts(blocks, Paragraph)


def test_a_knn_search_names_its_sweep_not_an_exact_maximiser(tmp_path: Path):
    params = {"objective": "knn", "knn_n": "2000", "knn_sweep": "48+12"}
    blocks = _search_blocks(tmp_path, FOUND, {}, params=params)
    text = _texts(blocks, Paragraph)
    assert "the best point of the refined sweep of the sampled objective is b = 1.842" in text
    assert "the optimum lies in [1.83, 1.85]" in text
    assert "exact maximiser of the sampled objective is" not in text


def test_an_older_knn_search_keeps_its_own_wording(tmp_path: Path):
    """Runs from before the refined sweep (no knn_sweep param) logged the as-good range."""
    blocks = _search_blocks(tmp_path, FOUND, {}, params={"objective": "knn", "knn_n": "2000"})
    text = _texts(blocks, Paragraph)
    assert "the best of the 48-point sweep of the sampled objective is b = 1.842" in text
    assert "as good within error for b in [1.83, 1.85]" in text


def test_a_scale_search_names_its_sampler_and_axis(tmp_path: Path):
    scale = {key.replace("best_b", "best_scale"): value for key, value in FOUND.items()}
    del scale["b_theory"]
    params = {"objective": "knn", "sampler": "gmm", "knn_sweep": "48+12"}
    trial = RunData(
        "c1",
        "trial 0",
        "search",
        "FINISHED",
        params={"scale": "0.9"},
        metrics={"scale": 0.9, "objective": 0.5, "precision": 0.6, "recall": 0.4},
    )
    tags = {"best_at_range_end": "the interval of the best scale reaches b_max=4: ..."}
    blocks = _search_blocks(tmp_path, scale, tags, params=params, children=[trial])
    text = _texts(blocks, Paragraph)
    assert "Best gmm scale = 1.842 [1.83, 1.85]" in text and "scale = 1.842" in text
    assert "interval of the best scale" in next(b for b in blocks if isinstance(b, Figure)).caption
    assert "At the range's end: the interval of the best scale reaches b_max=4" in _texts(
        blocks, Note
    )
    trials = next(b for b in blocks if isinstance(b, Table) and b.name.startswith("search_trials"))
    assert trials.columns[:3] == ["trial", "scale", "objective"] and trials.rows[0][1] == 0.9


def test_a_generator_search_shows_each_familys_best_and_the_heldout_check(tmp_path: Path):
    table = tmp_path / "best_per_family.csv"
    table.write_text(
        "family,trial,candidate,score,score_lo,score_hi,c2st_acc,copying_ratio\n"
        "gmm,4,gmm components=3 scale=1,0.9,0.8,1.0,0.55,1.2\n"
        "uniform,1,uniform b=2,0.0,0.0,0.0,1.0,3.0\n"
    )
    metrics = {
        "best_score": 0.9,
        "best_score_se": 0.05,
        "best_score_lo": 0.685,  # t(2) x the corrected se of 3 splits, as the job logs it
        "best_score_hi": 1.0,
        "n_as_good": 2,
        "n_trials_complete": 5,
        "n_trials_pruned": 7,
        "winner_heldout_c2st_acc": 0.7,
        "winner_heldout_c2st_acc_lo": 0.6,
        "winner_heldout_c2st_acc_hi": 0.8,
        "training_heldout_c2st_acc": 0.75,
        "training_heldout_c2st_acc_lo": 0.7,
        "training_heldout_c2st_acc_hi": 0.8,
    }
    blocks = _search_blocks(
        tmp_path,
        metrics,
        {"best_generator": "gmm components=3 scale=1"},
        curve=False,
        params={"space": "generators", "splits": "3"},
        more={"search/best_per_family.csv": table},
    )
    text = _texts(blocks, Paragraph)
    assert "Best generator: gmm components=3 scale=1, score 0.9 [0.685, 1]" in text
    assert "7 pruned early" in text and "the training latents' own 0.75 [0.7, 0.8]" in text
    assert "Best b" not in text
    (families,) = [b for b in blocks if isinstance(b, Table) and b.name.startswith("generators")]
    assert [row[0] for row in families.rows] == ["gmm", "uniform"]
    assert families.rows[0][2] == "0.9 [0.8, 1]"


def test_optuna_off_the_plateau_but_inside_the_interval_is_not_told_to_run_more_trials(
    tmp_path: Path,
):
    """The demo's case: Optuna's point is off one draw's plateau, inside the interval that
    carries the latents' error; more trials would not change the answer."""
    inside = {**FOUND, "best_b": 1.845, "best_b_in_interval": 0.0, "best_b_in_ci": 1.0}
    text = _texts(_search_blocks(tmp_path, inside, {}), Paragraph)
    assert "inside the interval of the best" in text and "OUTSIDE" not in text
    assert "run more trials" not in text


def test_a_generator_search_reports_the_winner_against_mvn_and_its_pareto_front(tmp_path: Path):
    """The winner against evaluate's mvn at scale 1 (its difference's interval decides the
    word), and in mode=multi the trials it was chosen among are the front's."""
    metrics = {
        "best_score": 0.829,
        "best_score_lo": 0.698,
        "best_score_hi": 0.959,
        "n_as_good": 3,
        "n_trials_complete": 28,
        "n_pareto_front": 7,
        "reference_score": 0.835,
        "reference_c2st_acc": 0.528,
        "winner_minus_reference": -0.006,
        "winner_minus_reference_lo": -0.082,
        "winner_minus_reference_hi": 0.069,
    }
    tags = {"best_generator": "flow bijectors=2 scale=1.2"}
    params = {"space": "generators", "splits": "3"}
    text = _texts(_search_blocks(tmp_path, metrics, tags, curve=False, params=params), Paragraph)
    assert "7 trials on the Pareto front" in text and "3 of them not significantly below" in text
    assert "its score 0.835" in text and "the winner is not significantly different" in text
    worse = {**metrics, "winner_minus_reference_hi": -0.01}
    text = _texts(_search_blocks(tmp_path, worse, tags, curve=False, params=params), Paragraph)
    assert "the winner is worse" in text
