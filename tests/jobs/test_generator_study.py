"""The generator search's study on plain arrays: the winner's rule on hand-made trials, the
sibling shapes, and the reduced benchmarks/bench_generator_search (a known 3-component
mixture: the search finds exactly 3 components and ranks uniform last)."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from aelatent.core.generator_space import Candidate
from aelatent.core.mixture import GMMSampler
from aelatent.core.sampler_registry import SUBSPACE, spec_of
from aelatent.core.verdict import make_splits
from aelatent.jobs.generator_search.selection import best_trial, family_ranking, tied_with_top
from aelatent.jobs.generator_search.study import (
    SPLITS,
    GeneratorObjective,
    _within,
    fitted_defaults,
    sibling_shapes,
    sibling_width,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_generator_search import mixture_latents, run_seed


def _trial(
    label: str, scores, fit_ll, parameters: int, number: int = 0, *, pruned: bool = False
) -> FrozenTrial:
    family, *settings = label.split()
    params: dict[str, object] = {"family": family}
    for item in settings:
        key, value = item.split("=")
        params[key] = value if key == "covariance" else float(value)
    attrs: dict[str, object] = {"label": label, "per_split": list(scores), "parameters": parameters}
    if not pruned:
        attrs["score"] = sum(scores) / len(scores)
    if fit_ll is not None:
        attrs["per_split_fit_log_likelihood"] = list(fit_ll)
    trial = create_trial(
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        value=attrs.get("score"),
        params=params,
        distributions={k: CategoricalDistribution([v]) for k, v in params.items()},
        user_attrs=attrs,
    )
    trial.number = number
    return trial


# seed 1 of the reduced benchmark, its means rounded, its splits given the noise the full
# benchmark measures (a residual sd of 0.03-0.05 a split about the candidate and split means:
# rounded means on parallel splits would have none): the score ties 6 diagonal components, 3
# and 2; the fit's held-out log-likelihood tells 2 from 3, not 3 from 6
SEED_1 = [
    _trial("gmm components=2 covariance=full scale=0.96", [0.90, 0.86, 0.91], [-33.1] * 3, 581, 0),
    _trial("gmm components=6 covariance=diag scale=0.96", [0.86, 0.91, 0.88], [-32.9] * 3, 605, 1),
    _trial("gmm components=3 covariance=full scale=0.96", [0.88, 0.84, 0.90], [-32.9] * 3, 596, 2),
    _trial("gmm components=1 covariance=full scale=0.96", [0.80, 0.76, 0.81], [-33.6] * 3, 566, 3),
    _trial("mvn scale=0.47", [0.10, 0.08, 0.07], [-45.0] * 3, 560, 4),
    _trial("uniform b=1", [0.0, 0.0, 0.0], None, 1, 5),
]


def test_the_winner_is_the_simplest_of_the_likeliest_fits_tied_with_the_top_score():
    """2 components top the score, 6 diagonal ones tie 3 full ones in likelihood: the rule
    takes 3 (fewer parameters than 6, likelier than 2); the fewest parameters alone would
    take 2, the likeliest alone 6 (the earlier of the two at -32.9)."""
    tied = {t.user_attrs["label"].split()[1] for t in tied_with_top(SEED_1)}
    assert {"components=2", "components=6", "components=3"} <= tied
    assert best_trial(SEED_1).user_attrs["label"].startswith("gmm components=3 ")


def test_without_a_density_the_fewest_parameters_of_the_tied_win():
    """uniform has no likelihood and 1 parameter: tied with a better-scoring gaussian that has
    none either, uniform wins; of two uniform widths, the higher score."""
    trials = [
        _trial("gaussian scale=1", [0.54, 0.55, 0.53], None, 64, 0),
        _trial("uniform b=1", [0.56, 0.50, 0.49], None, 1, 1),
        _trial("uniform b=1.1", [0.57, 0.52, 0.51], None, 1, 2),
    ]
    assert len(tied_with_top(trials)) == 3
    assert best_trial(trials).number == 2


def test_of_tied_trials_of_one_fit_the_width_nearest_scale_1_wins_not_the_higher_score():
    """One mvn fit at scale 1 and at 1.3: split scores that cross (the higher mean at 1.3 is
    noise), so scale 1 wins; a wider width that is significantly better still wins."""
    tied = [
        _trial("mvn shrinkage=0 scale=1", [0.80, 0.90, 0.84], [-40.0] * 3, 560, 0),
        _trial("mvn shrinkage=0 scale=1.3", [0.88, 0.84, 0.90], [-40.0] * 3, 560, 1),
    ]
    assert len(tied_with_top(tied)) == 2
    assert best_trial(tied).number == 0
    apart = [
        _trial("mvn shrinkage=0 scale=1", [0.60, 0.61, 0.60], [-40.0] * 3, 560, 0),
        _trial("mvn shrinkage=0 scale=1.3", [0.95, 0.96, 0.95], [-40.0] * 3, 560, 1),
    ]
    assert best_trial(apart).number == 1


def test_the_fitted_defaults_are_evaluates_fits_at_scale_1_in_the_search_space():
    """gaussian, mvn without shrinkage and BIC's mixture (its components, covariance type and
    subspace on the first split's fit latents), each at scale 1; uniform (no fitted width)
    and the flow (trained) have none; a value outside the range is clipped into it."""
    latents = mixture_latents(0, 300, 8).astype("float64")
    splits = make_splits(latents, SPLITS, 0)
    families = ("uniform", "gaussian", "mvn", "gmm", "flow")
    objective = GeneratorObjective(splits, families, estimate="auto", seed=0)
    defaults = fitted_defaults(objective)
    assert [d["family"] for d in defaults] == ["gaussian", "mvn", "gmm"]
    assert all(d["scale"] == 1.0 for d in defaults)
    assert defaults[1] == {"family": "mvn", "shrinkage": 0.0, "scale": 1.0}
    bic = GMMSampler.from_latents(splits[0].fit, seed=splits[0].seed).mixture
    assert defaults[2] == {
        "family": "gmm",
        "components": bic.n_components,
        "covariance": bic.covariance_type,
        "subspace": max(2, bic.subspace_dim),
        "scale": 1.0,
    }
    components = spec_of("gmm").settings[0]
    assert _within(SUBSPACE, 40, 300) == 32 and _within(SUBSPACE, 1, 300) == 2
    assert _within(components, 8, 60) == 3  # 60 fit vectors: 3 components of 20


def test_sibling_shapes_are_every_count_and_choice_at_the_same_width():
    """gmm: components 1..8 x {full, diag} at the top's width and subspace, the top left out;
    a family without counts or choices has none."""
    top = Candidate.of("gmm", {"components": 6, "covariance": "diag", "subspace": 4, "scale": 1.0})
    shapes = sibling_shapes(top, n_fit=300)
    assert len(shapes) == 8 * 2 - 1 and top not in shapes
    assert {c.params["subspace"] for c in shapes} == {4}
    assert {c.scale for c in shapes} == {1.0}
    assert shapes[0].params["components"] == 1  # the smallest counts first
    mvn = Candidate.of("mvn", {"shrinkage": 0.3, "scale": 1.0})
    assert sibling_shapes(mvn, n_fit=300) == []


def test_siblings_keep_a_width_known_to_be_good_and_try_the_others_at_scale_1():
    """A family's best tied with the top score lends its width to its siblings; one that is
    not (a mixture at 2.28, 0.31 against 0.84) has them at scale 1, its own shape included;
    uniform's b has no neutral width."""
    top = _trial("flow bijectors=4 scale=1.28", [0.80, 0.84, 0.86], [-70.8] * 3, 34080, 0)
    wide = _trial(
        "gmm components=4 covariance=diag subspace=2 scale=2.28",
        [0.28, 0.30, 0.33],
        [-69.9] * 3,
        33167,
        1,
    )
    box = _trial("uniform b=4", [0.25, 0.25, 0.25], None, 1, 2)
    in_play = {t.number for t in tied_with_top([top, wide, box])}
    assert in_play == {0}
    assert sibling_width(top, in_play) is None and sibling_width(box, in_play) is None
    assert sibling_width(wide, in_play) == 1.0
    gmm = Candidate.of("gmm", {"components": 4, "covariance": "diag", "subspace": 2, "scale": 2.28})
    shapes = sibling_shapes(gmm, n_fit=300, width=1.0)
    assert len(shapes) == 16 and {c.scale for c in shapes} == {1.0}


# the floor of seed 8 of the full benchmark: every wide generator scores about 0.25; the
# gaussian's one complete trial is at a bad width and its trials at good ones were pruned
FLOOR = [
    _trial(
        "gmm components=3 covariance=diag subspace=3 scale=1.02",
        [0.93, 0.95, 0.91],
        [-70.5] * 3,
        33174,
        0,
    ),
    _trial("uniform b=6.96", [0.25, 0.254, 0.25], None, 1, 1),
    _trial("gaussian scale=0.27", [0.025, 0.012, 0.012], [-201.4] * 3, 512, 2),
    _trial("gaussian scale=0.75", [0.254, 0.262], None, 512, 3, pruned=True),
    _trial("mvn shrinkage=0.99 scale=1.02", [0.25, 0.267], None, 33152, 4, pruned=True),
    _trial("mvn shrinkage=0.5 scale=0.4", [0.05], None, 33152, 5, pruned=True),
]


def test_the_ranking_orders_a_tie_at_the_floor_as_the_winners_rule_does():
    """The winner's family first; then the gaussian (its pruned trial ties uniform on the
    two splits it ran, and its fit's held-out log-likelihood is known from its complete
    trial: the width does not change the fit), the mvn (a density, none measured), and
    uniform, which has no density, last. Best scores alone would put uniform third."""
    ranking = family_ranking(FLOOR)
    assert list(ranking) == ["gmm", "gaussian", "mvn", "uniform"]
    assert ranking["gaussian"].number == 3 and ranking["mvn"].number == 4


def test_the_ranking_puts_uniform_above_a_family_it_beats():
    """Not last by decree: a uniform box significantly above every mvn trial ranks above mvn."""
    trials = [
        FLOOR[0],
        FLOOR[1],
        _trial("mvn shrinkage=0.5 scale=0.4", [0.05, 0.06], None, 33152, 5, pruned=True),
    ]
    assert list(family_ranking(trials)) == ["gmm", "uniform", "mvn"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_search_finds_the_three_component_mixture_and_ranks_uniform_last(seed):
    """600 latents of 32 dimensions, 24 trials over uniform, mvn and gmm (the full
    benchmark: 256 dimensions, 60 trials, every family, 10 seeds). Pass line: the winner a
    mixture of exactly 3 components and uniform's best the lowest, on both seeds (the study
    is seeded, so each seed is a fixed case, not a draw). Measured on seeds 0-9 of this size
    (benchmarks/README.md): 9 of 10 find 3 components with the fitted defaults first (the
    miss, seed 6: 2 components, whose fit's likelihood ties 3's); 8 of 10 before them;
    seed 1 is where an earlier rule picked 6 diagonal components, seed 0 where the top
    score had 2."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    row = run_seed(seed, 24, z_dim=32, families=("uniform", "mvn", "gmm"))
    assert row["three"], row
    assert row["uniform_last"], row
