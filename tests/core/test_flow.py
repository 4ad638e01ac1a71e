"""The flow: numpy computes what TensorFlow Probability trains, and training finds shape."""

from __future__ import annotations

import numpy as np
import pytest

from aelatent.core.flow import FlowSampler, LatentFlow
from aelatent.core.sampler_registry import build_sampler, log_likelihood
from aelatent.generators.flow import DEFAULTS, FitSettings, flow_distribution, initial_weights

D = 6


def _random_flow(d: int = 4, hidden: int = 8, bijectors: int = 3) -> LatentFlow:
    rng = np.random.default_rng(0)
    weights = initial_weights(bijectors, d, hidden, rng)
    for key in ("w1", "b1", "w2", "b2", "w3", "b3"):  # a flow far from the identity
        weights[key] = (weights[key] + rng.normal(0, 0.4, weights[key].shape)).astype(np.float32)
    basis = np.linalg.qr(rng.standard_normal((D, D)))[0]
    return LatentFlow(np.full(D, 0.5), basis, np.linspace(3, 0.5, D), d, **weights)


def test_numpy_scores_and_samples_what_the_tfp_flow_does():
    """The same weights through TFP's MaskedAutoregressiveFlow chain and through numpy: log
    densities and forward maps agree to float32 rounding; numpy's inverse undoes its
    forward. A wrong mask, rotation or bijector order differs by whole nats."""
    import tensorflow as tf

    flow = _random_flow()
    weights = {k: tf.constant(getattr(flow, k)) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
    weights["rotations"] = tf.constant(flow.rotations)
    tfp_flow = flow_distribution(weights, 4, 8, 3)
    w = np.random.default_rng(1).standard_normal((200, 4)).astype(np.float32)
    np.testing.assert_allclose(
        flow.whitened_log_prob(w), tfp_flow.log_prob(w).numpy(), rtol=1e-4, atol=1e-4
    )
    u = w.astype(np.float64)
    x = flow.forward(u)
    np.testing.assert_allclose(x, tfp_flow.bijector.forward(w).numpy(), atol=1e-4)
    np.testing.assert_allclose(flow.inverse(x)[0], u, atol=1e-5)  # float32 rotations


def _two_clusters(n: int, seed: int) -> np.ndarray:
    basis = np.linalg.qr(np.random.default_rng(4).standard_normal((D, D)))[0]
    rng = np.random.default_rng([seed, 2])
    side = rng.choice([-2.0, 2.0], size=(n, 1))
    return (rng.standard_normal((n, D)) + side) @ basis.T


def test_a_trained_flow_learns_two_clusters_the_mvn_cannot():
    """Two clusters 4 sd apart: on new vectors of the same law the flow's log-likelihood
    beats the multivariate normal's by at least 0.3 nats a vector (the mixture's true gain
    is about 1); it draws finite vectors around the latents' mean, its stored copy draws
    the same vectors, and its window probability is NaN (none exists)."""
    x, fresh = _two_clusters(600, 0), _two_clusters(600, 1)
    settings = {"hidden_units": 16, "bijectors": 3, "subspace": 2, "epochs": 150}
    flow = build_sampler("flow", x.mean(0), x.std(0), x, seed=0, settings=settings)
    mvn = build_sampler("mvn", x.mean(0), x.std(0), x)
    basis = np.linalg.eigh(np.cov(x.T))[1][:, ::-1]
    assert isinstance(flow, FlowSampler) and flow.flow.epochs > 0
    gain = log_likelihood(flow, fresh, basis) - log_likelihood(mvn, fresh, basis)
    assert gain > 0.3, gain
    z = flow.with_scale(0.5).sample(500, np.random.default_rng(0))
    assert z.shape == (500, D) and np.all(np.isfinite(z))
    np.testing.assert_allclose(z.mean(0), x.mean(0), atol=0.4)
    assert np.isnan(flow.window_log10_probability(np.full(D, -1.0), np.full(D, 1.0)))


def test_a_bad_scale_is_refused():
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        FlowSampler(_random_flow(), 0.0)


def test_fit_settings_fill_in_the_defaults_and_keep_the_subspace_optional():
    assert FitSettings.of({}) == FitSettings(**DEFAULTS, subspace=None)
    chosen = FitSettings.of({"hidden_units": 32.0, "subspace": 3, "epochs": "20"})
    assert chosen == FitSettings(32, DEFAULTS["bijectors"], 20, subspace=3)
