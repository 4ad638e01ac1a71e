"""A masked autoregressive flow in the principal subspace (sampler ``flow``), in numpy.

The flow is the search's most flexible family: where a Gaussian mixture puts K ellipsoids,
a masked autoregressive flow (MAF; Papamakarios et al. 2017) bends one Gaussian into any
smooth density. It lives where ``gmm`` lives, for the same reason (docs/science.md): in the
top ``d`` principal directions of the training latents, whitened (each coordinate divided
by the square root of its eigenvalue), with the same shared Gaussian residual, the sample
eigenvalues, in the other ``D - d`` directions. An untrained flow is the identity, so it
starts as the multivariate normal and differs from it exactly where training finds shape.

Why numpy here and TensorFlow elsewhere: *training* needs gradients, so it is done with
TensorFlow Probability's ``MaskedAutoregressiveFlow`` in :mod:`aelatent.generators.flow`,
which the registry is told about; *sampling and scoring* a trained flow is a few small
matrix products, done here, so the hit test, the verdict, the search's score and the served
generator use it like any other sampler, and the numeric core stays free of TensorFlow.
Both sides build the network from :func:`made_masks`, so they compute the same function
(tests/core/test_flow.py checks numpy against TFP).

The network of one bijector (MADE, Germain et al. 2015): ``y [d] -> tanh(y W1 + b1) ->
tanh(. W2 + b2) -> . W3 + b3 = (shift [d], raw [d])``, each weight masked so output ``i``
sees only inputs before ``i``; ``log_scale = LOG_SCALE_BOUND * tanh(raw / LOG_SCALE_BOUND)``
(bounded: one bijector stretches a coordinate by at most e^3). The bijector's forward map
(sampling) is ``y_i = x_i exp(log_scale_i(y_<i)) + shift_i(y_<i)``, ``d`` passes; its
inverse (scoring) one pass, ``x = (y - shift(y)) exp(-log_scale(y))``. Before each bijector the
coordinates are turned by a fixed random rotation (seeded, stored with the weights; a rotation
keeps the whitening and has Jacobian 1). Why not the usual reversal: in whitened coordinates
a mixture's separation lies along the first principal direction, independent of the others,
and a MAF cannot make its first coordinate (shift and scale constant) or a coordinate that
depends on independent ones bimodal; reversed orders left the flow at the Gaussian it
started from on a two-cluster test, rotated ones learn both clusters.

The width factor: ``z = mean + scale * (x - mean)`` with ``x`` a vector of the flow, like
the multivariate normal's (the offset is the latents' mean). The window probability of a
flow has no exact value and no GHK estimate: it is NaN, and the hit test counts hits only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aelatent.core.radius_theory import RadiusMoments
from aelatent.core.samplers import AffineSampler

LOG_SCALE_BOUND = 3.0
HIDDEN_LAYERS = 2
WEIGHTS = ("w1", "b1", "w2", "b2", "w3", "b3", "rotations")  # per bijector, stacked
RADIUS_DRAWS = 4000  # the radius moments' Monte Carlo draws (no closed form)
LOG_2PI = math.log(2 * math.pi)


def made_masks(d: int, hidden: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The MADE masks ``[d, h]``, ``[h, h]``, ``[h, 2d]`` (float32, 0/1): input ``j`` has
    degree ``j + 1``, hidden unit ``k`` degree ``k mod max(1, d - 1) + 1``; a unit sees the
    units of lower or equal degree, an output of degree ``i`` only hidden degrees below
    ``i``. The output mask is repeated for the shift and the log-scale halves."""
    inputs = np.arange(1, d + 1)
    units = np.arange(hidden) % max(1, d - 1) + 1
    first = (units[None, :] >= inputs[:, None]).astype(np.float32)
    second = (units[None, :] >= units[:, None]).astype(np.float32)
    out = (inputs[None, :] > units[:, None]).astype(np.float32)
    return first, second, np.concatenate([out, out], axis=1)


def rotations(bijectors: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``[K, d, d]`` random rotations (Haar: QR of a normal matrix, signs fixed), float32."""
    q, r = np.linalg.qr(rng.standard_normal((bijectors, d, d)))
    signs = np.sign(np.diagonal(r, axis1=1, axis2=2))
    turns: np.ndarray = (q * signs[:, None, :]).astype(np.float32)
    return turns


@dataclass(frozen=True)
class LatentFlow:
    """A trained MAF in the whitened principal subspace plus the shared Gaussian residual.

    ``basis`` holds the covariance's eigenvectors as columns, largest eigenvalue first; the
    first ``subspace_dim`` span the flow's subspace. ``w1``..``b3`` stack each bijector's
    MADE weights (unmasked; :func:`made_masks` applies the masks)."""

    mean: np.ndarray  # float64 [D]
    basis: np.ndarray  # float64 [D, D]
    eigenvalues: np.ndarray  # float64 [D], descending
    subspace_dim: int
    w1: np.ndarray  # [K, d, h]
    b1: np.ndarray  # [K, h]
    w2: np.ndarray  # [K, h, h]
    b2: np.ndarray  # [K, h]
    w3: np.ndarray  # [K, h, 2d]
    b3: np.ndarray  # [K, 2d]
    rotations: np.ndarray  # [K, d, d]: bijector k reads u @ rotations[k].T
    n_fit: int = 0
    epochs: int = 0  # the epoch whose weights were kept (early stopping)
    validation_log_likelihood: float = math.nan  # per vector, whitened subspace, inner split

    @property
    def z_dim(self) -> int:
        return int(self.mean.size)

    @property
    def n_bijectors(self) -> int:
        return int(self.w1.shape[0])

    @property
    def hidden_units(self) -> int:
        return int(self.w1.shape[2])

    @property
    def residual_variances(self) -> np.ndarray:
        rest: np.ndarray = np.clip(self.eigenvalues[self.subspace_dim :], 0.0, None)
        return rest

    def describe(self) -> str:
        return (
            f"flow: {self.n_bijectors} MAF bijectors of {self.hidden_units} hidden units in "
            f"the top {self.subspace_dim} principal directions ({self.n_fit} vectors; weights "
            f"of epoch {self.epochs})"
        )

    def shift_and_log_scale(self, k: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bijector ``k``'s MADE on ``y [n, d]`` (in its own coordinate order)."""
        m1, m2, m3 = made_masks(self.subspace_dim, self.hidden_units)
        dtype = y.dtype
        h = np.tanh(y @ (self.w1[k] * m1).astype(dtype) + self.b1[k].astype(dtype))
        h = np.tanh(h @ (self.w2[k] * m2).astype(dtype) + self.b2[k].astype(dtype))
        out = h @ (self.w3[k] * m3).astype(dtype) + self.b3[k].astype(dtype)
        d = self.subspace_dim
        bound = dtype.type(LOG_SCALE_BOUND)
        return out[:, :d], bound * np.tanh(out[:, d:] / bound)

    def forward(self, u: np.ndarray) -> np.ndarray:
        """Standard normal ``u [n, d]`` to whitened subspace coordinates (sampling)."""
        d = self.subspace_dim
        for k in range(self.n_bijectors):
            x = u @ self.rotations[k].T.astype(u.dtype)
            y = np.zeros_like(x)
            for _ in range(d):  # coordinate i is right after pass i (autoregressive)
                shift, log_scale = self.shift_and_log_scale(k, y)
                y = x * np.exp(log_scale) + shift
            u = y
        return u

    def inverse(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whitened coordinates ``w [n, d]`` to the base normal, with ``log |det du/dw|``."""
        log_det = np.zeros(w.shape[0], dtype=w.dtype)
        for k in reversed(range(self.n_bijectors)):
            shift, log_scale = self.shift_and_log_scale(k, w)
            x = (w - shift) * np.exp(-log_scale)
            log_det -= log_scale.sum(axis=1)
            w = x @ self.rotations[k].astype(x.dtype)
        return w, log_det

    def whitened_log_prob(self, w: np.ndarray) -> np.ndarray:
        """``log p(w)`` per row of whitened subspace coordinates ``w [n, d]``."""
        u, log_det = self.inverse(np.asarray(w, dtype=np.float64))
        result: np.ndarray = -0.5 * (u * u).sum(axis=1) - 0.5 * self.subspace_dim * LOG_2PI
        total: np.ndarray = result + log_det
        return total


class FlowSampler(AffineSampler):
    """Vectors of a :class:`LatentFlow`: ``z = mean + scale * (x - mean)``, ``x`` the flow's."""

    name = "flow"

    def __init__(self, flow: LatentFlow, scale: float = 1.0) -> None:
        super().__init__(flow.mean, scale)
        self.flow = flow
        d = flow.subspace_dim
        self._top_t32 = (
            np.sqrt(np.clip(flow.eigenvalues[:d], 0.0, None))[:, None] * flow.basis[:, :d].T
        ).astype(np.float32)  # whitened coordinates @ this = the subspace part
        self._rest_t32 = (np.sqrt(flow.residual_variances)[:, None] * flow.basis[:, d:].T).astype(
            np.float32
        )

    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """``x - mean`` for ``n`` vectors of the flow (float32), independent of ``scale``:
        ``z_dim`` normals per vector, the first ``d`` through the flow, a stream of whole
        vectors (chunks draw the same vectors)."""
        e = rng.standard_normal(out.shape, dtype=np.float32)
        d = self.flow.subspace_dim
        w = self.flow.forward(e[:, :d])
        out[...] = w @ self._top_t32 + e[:, d:] @ self._rest_t32

    def with_scale(self, scale: float) -> FlowSampler:
        return FlowSampler(self.flow, scale)

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """No exact value or estimate at 256 dimensions (module docstring): NaN."""
        return math.nan

    def radius_moments(self) -> RadiusMoments:
        """Mean and std of ``|z|`` at this scale from RADIUS_DRAWS seeded draws (a flow has
        no closed form; the same draws for every scale)."""
        r = np.linalg.norm(self.sample(RADIUS_DRAWS, np.random.default_rng(0)), axis=1)
        return RadiusMoments(float(r.mean()), float(r.std(ddof=1)))

    def log_likelihood(self, z: np.ndarray, directions: int) -> np.ndarray:
        """``log p(z)`` per row in the top ``directions`` principal directions of its fit
        (at least the flow's subspace): the flow there, the residual eigenvalues beyond."""
        d = self.flow.subspace_dim
        r = max(d, min(int(directions), self.z_dim))
        c = (np.asarray(z, dtype=np.float64) - self.flow.mean) @ self.flow.basis[:, :r]
        c /= self.scale
        eig = self.flow.eigenvalues[:r]
        w = c[:, :d] / np.sqrt(eig[:d])
        log_p = self.flow.whitened_log_prob(w) - 0.5 * float(np.sum(np.log(eig[:d])))
        rest = np.maximum(eig[d:], 1e-12 * eig[0])  # directions past the fit's rank: floored
        log_p += -0.5 * ((c[:, d:] ** 2) / rest + np.log(rest) + LOG_2PI).sum(axis=1)
        result: np.ndarray = log_p - r * math.log(self.scale)
        return result
