"""The sampler registry: every entry builds, measures and stores its sampler consistently."""

from __future__ import annotations

import math

import numpy as np
import pytest

import aelatent.generators  # noqa: F401  (hands the registry the flow's trainer)
from aelatent.core import sampler_registry
from aelatent.core.radius import radii
from aelatent.core.sampler_registry import (
    DEFAULT_SAMPLERS,
    REGISTRY,
    SAMPLERS,
    axis_of,
    build_sampler,
    check_fits,
    order_key,
    radius_moments,
    sampler_arrays,
    samplers_from_arrays,
    spec_of,
)
from aelatent.errors import UserError

Z_DIM = 12
SMALL = {"flow": {"hidden_units": 8, "bijectors": 2, "subspace": 3, "epochs": 20}}  # ~1 s


def _build(name, fit_data, seed=0):
    return build_sampler(name, *fit_data, seed=seed, settings=SMALL.get(name))


def _correlated(n, seed):
    mixing = np.random.default_rng(0).standard_normal((Z_DIM, Z_DIM)) * 0.3 + np.eye(Z_DIM)
    return np.random.default_rng([seed, 1]).standard_normal((n, Z_DIM)) @ mixing + 0.5


@pytest.fixture(scope="module")
def fit_data():
    latents = _correlated(300, seed=0)
    mu = latents.mean(0)
    hw = 2.355 * latents.std(0)
    return mu, hw, latents


@pytest.mark.parametrize("name", SAMPLERS)
def test_each_entry_builds_its_sampler_at_scale_1(name, fit_data):
    sampler = _build(name, fit_data)
    assert sampler.name == name and sampler.scale == 1.0 and sampler.z_dim == Z_DIM


@pytest.mark.parametrize("name", SAMPLERS)
def test_radius_moments_agree_with_the_samplers_own_draws(name, fit_data):
    """The mean radius of 4,000 draws lies within 4 standard errors (sd / sqrt(n)) of the
    entry's theory: a wrong theory (or a theory of another sampler) is off by far more."""
    sampler = _build(name, fit_data).with_scale(1.3)
    n = 4000
    r = radii(sampler.sample(n, np.random.default_rng(1)))
    theory = radius_moments(sampler, 1.3)
    assert abs(r.mean() - theory.mean) < 4 * r.std() / math.sqrt(n)
    assert abs(r.std() - theory.std) < 4 * r.std() / math.sqrt(2 * (n - 1)) + 0.02 * r.std()


def test_the_stored_samplers_draw_what_the_built_ones_draw(fit_data):
    built = {name: _build(name, fit_data) for name in SAMPLERS}
    back = samplers_from_arrays(sampler_arrays(built))
    assert list(back) == list(SAMPLERS)
    for name in SAMPLERS:
        a = built[name].sample(50, np.random.default_rng(3))
        b = back[name].sample(50, np.random.default_rng(3))
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_axes_orders_and_probability_kinds():
    assert axis_of("uniform") == "b" and spec_of("uniform").has_box
    assert {axis_of(n) for n in SAMPLERS[1:]} == {"scale"}
    assert axis_of("a-sampler-of-a-newer-version") == "scale"
    assert sorted(["gmm", "zzz", "uniform", "mvn"], key=order_key) == [
        "uniform",
        "mvn",
        "gmm",
        "zzz",
    ]
    assert {spec.probability for spec in REGISTRY.values()} <= {"exact", "ghk_estimate", "none"}
    assert "flow" in SAMPLERS and "flow" not in DEFAULT_SAMPLERS  # all: the closed-form ones


def test_unknown_names_and_too_few_latents_are_one_line_errors(fit_data):
    with pytest.raises(UserError, match=r"unknown sampler 'vae'; expected one of uniform, "):
        spec_of("vae")
    with pytest.raises(UserError, match=r"sampler=gmm needs at least 20 .* 'abc' has 10"):
        check_fits("gmm", "abc", 10)
    mu, hw, latents = fit_data
    with pytest.raises(UserError, match="the train run has 5"):
        build_sampler("gmm", mu, hw, latents[:5])
    check_fits("uniform", "abc", 2)


def test_a_trained_sampler_without_its_trainer_says_which_package_provides_it(
    fit_data, monkeypatch
):
    monkeypatch.setattr(sampler_registry, "_TRAINERS", {})
    with pytest.raises(RuntimeError, match=r"sampler=flow is trained .* aelatent.generators"):
        build_sampler("flow", *fit_data)
    with pytest.raises(ValueError, match="'mvn' is not a trained sampler"):
        sampler_registry.provide_trainer("mvn", lambda fit: None)  # type: ignore[arg-type,return-value]


def test_held_out_log_likelihood_ranks_the_true_family_first(fit_data):
    """On correlated Gaussian latents, new vectors are likelier under the fitted mvn than
    under independent normals (the correlations are real), and uniform has none (NaN)."""
    latents = fit_data[2]
    fresh = _correlated(400, seed=1)
    basis = np.linalg.eigh(np.cov(latents.T))[1][:, ::-1][:, :8]
    values = {
        name: sampler_registry.log_likelihood(_build(name, fit_data), fresh, basis)
        for name in ("uniform", "gaussian", "mvn", "gmm")
    }
    assert math.isnan(values["uniform"])
    assert values["mvn"] > values["gaussian"] + 0.5
    assert abs(values["gmm"] - values["mvn"]) < 1.0  # one-component-like on Gaussian data


def test_parameter_counts_follow_the_models(fit_data):
    """The generator search's simplicity (its winner: the fewest parameters of the ties):
    uniform 1, gaussian 2D, mvn D + D(D+1)/2; a 1-component diagonal mixture is the normal's
    count, each component adds, full covariances more than diagonal; a flow adds its
    weights to the normal's."""
    d = Z_DIM
    mvn = d + d * (d + 1) // 2
    count = sampler_registry.parameter_count
    assert count(_build("uniform", fit_data)) == 1
    assert count(_build("gaussian", fit_data)) == 2 * d
    assert count(_build("mvn", fit_data)) == mvn

    def gmm(k, covariance):
        settings = {"components": k, "covariance": covariance, "subspace": 3}
        return count(build_sampler("gmm", *fit_data, seed=0, settings=settings))

    assert gmm(1, "diag") == mvn
    assert gmm(1, "diag") < gmm(2, "diag") < gmm(3, "diag") < gmm(3, "full")
    assert gmm(3, "full") - gmm(3, "diag") == 3 * (3 * 4 // 2 - 3)
    assert count(_build("flow", fit_data)) > mvn


def test_the_report_labels_every_kind_of_window_probability():
    """The hit tables' caption reads the entry's ``probability``: the flow's NaN is not
    "exact"."""
    from aelatent.reporting.sections.hits import PROBABILITY_LABELS, probability_label

    assert {spec.probability for spec in REGISTRY.values()} <= set(PROBABILITY_LABELS)
    assert probability_label("flow") == "none computed"
    assert probability_label("mvn") == "GHK estimate" and probability_label("uniform") == "exact"
    assert probability_label("unknown") == "method unknown"
