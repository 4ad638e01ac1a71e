"""A Gaussian-mixture generator of latent vectors, fitted to the real latents (sampler ``gmm``).

The study's own observation is that the shape of the occupied region matters: vectors of the
multivariate normal with the real covariance decode into faces, independent Gaussians only
faintly. A mixture is the next step: several Gaussian clouds where the real latents cluster.

Where the mixture is fitted, and why (docs/science.md, "A Gaussian-mixture generator")
-------------------------------------------------------------------------------------
A full-covariance mixture in all N = 256 components is not well posed at the study's sizes:
each component has N (N + 3) / 2 = 33,152 parameters, against 360 training faces of the
built-in data. So the mixture lives where the data determine it:

- **the principal subspace**: the top ``d`` eigenvectors of the sample covariance, ``d`` the
  fewest that hold ``variance_fraction`` (95%) of the variance, but at most ``max_dim`` (32)
  and at most ``n_fit / min_per_dim`` (at least 20 vectors per dimension, so that a full
  covariance of one component is estimated from many more vectors than it has parameters
  per row);
- **the residual**: in the orthogonal complement one Gaussian shared by every component,
  with the sample covariance's own eigenvalues there (it is diagonal in the eigenbasis).
  With one component the mixture is then the multivariate normal of the sampler ``mvn``
  (up to the n/(n-1) of the maximum-likelihood covariance in the subspace), so ``gmm``
  differs from ``mvn`` exactly where the mixture finds structure. An isotropic residual
  (probabilistic PCA's mean of the dropped eigenvalues, ``residual="isotropic"``) would change
  every component's marginal width, and the box test raises a width error to the N-th power.
- **the number of components and the covariance type** (``full`` or ``diag`` in the
  subspace) by the lowest BIC over ``1..max_components`` x ``covariance_types``, every fit
  seeded (``random_state``) on at most ``max_fit`` (5,000) vectors drawn without replacement.
  The residual is the same for every candidate, so BIC in the subspace ranks them exactly as
  BIC in the whole space would. EM runs on one BLAS thread: on a small, busy machine
  sklearn's many tiny GEMMs were 18x slower with two threads than with one.

Sampling and the width factor
-----------------------------
``z = m_c + scale * y`` with ``c`` drawn from the weights, ``m_c`` the component's mean in
latent space and ``y ~ N(0, Sigma_c)``: ``scale`` multiplies the standard deviations around
each component's mean (not around the overall mean), so at small scales the generator
collapses onto the K component means. :meth:`GMMSampler.draw_labelled_base` returns the
labels with the scale-free ``y``, which is what :func:`aelatent.core.hits.hit_grid` needs to
evaluate every scale on the same draws.

The probability of a hit
------------------------
``P(lo <= z <= hi) = sum_c w_c P_c`` with ``P_c`` the box probability of the component's
Gaussian ``N(m_c, scale^2 Sigma_c)`` in latent space, each by GHK as for ``mvn``
(:func:`aelatent.core.samplers.ghk_log_replicates`). Every component is estimated on the
same scrambled Sobol replicates; the sum is formed per replicate in log space and its
standard error taken over the replicates, so the errors of the components (which share
their random numbers) are combined correctly. The GHK budget of ``mvn`` (2,048 draws) is
split evenly over the components, at least 256 each.

Why one module of this size: fitting, sampling and the GHK probability share the mixture's
arrays, and a third of the length is this docstring's reasons for each choice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.special import logsumexp, ndtr

from aelatent.core.correlations import mean_and_covariance
from aelatent.core.radius_theory import RadiusMoments, mvn_radius_moments
from aelatent.core.samplers import (
    LN10,
    AffineSampler,
    cholesky_psd,
    ghk_combine,
    ghk_log_replicates,
)
from aelatent.errors import UserError

Residual = Literal["sample", "isotropic"]
COVARIANCE_TYPES = ("full", "diag")
DEFAULT_VARIANCE_FRACTION = 0.95
DEFAULT_MAX_DIM = 32
DEFAULT_MAX_COMPONENTS = 8
DEFAULT_MAX_FIT = 5000
MIN_PER_DIM = 20  # training vectors per subspace dimension (and per component)
MIN_LATENTS = MIN_PER_DIM  # fewer cannot hold even a one-dimensional subspace
MIN_COMPONENT_DRAWS = 256  # GHK draws per component
REG_COVAR = 1e-6  # relative to the mean eigenvalue of the subspace


class MixtureError(UserError):
    """The latents cannot carry a mixture (too few, not finite)."""


@dataclass(frozen=True)
class LatentMixture:
    """A Gaussian mixture in the principal subspace with a shared Gaussian residual.

    ``basis`` holds the covariance's eigenvectors as columns, largest eigenvalue first; the
    first ``subspace_dim`` span the mixture's subspace, the rest the residual's.
    """

    mean: np.ndarray  # float64 [D]: the latents' mean
    basis: np.ndarray  # float64 [D, D]
    eigenvalues: np.ndarray  # float64 [D]: of the sample covariance, descending
    subspace_dim: int
    weights: np.ndarray  # float64 [K]
    sub_means: np.ndarray  # float64 [K, d]: component means in subspace coordinates
    sub_covariances: np.ndarray  # float64 [K, d, d]
    residual_variances: np.ndarray  # float64 [D - d]: in the basis' residual directions
    covariance_type: str
    bic: dict[tuple[int, str], float] = field(default_factory=dict)
    n_fit: int = 0

    @property
    def z_dim(self) -> int:
        return int(self.mean.size)

    @property
    def n_components(self) -> int:
        return int(self.weights.size)

    @property
    def variance_kept(self) -> float:
        """The fraction of the total variance inside the mixture's subspace."""
        total = float(np.sum(self.eigenvalues))
        return float(np.sum(self.eigenvalues[: self.subspace_dim]) / total) if total > 0 else 1.0

    @property
    def means(self) -> np.ndarray:
        """float64 [K, D]: component means in latent coordinates."""
        means: np.ndarray = self.mean + self.sub_means @ self.basis[:, : self.subspace_dim].T
        return means

    def summary_metrics(self) -> dict[str, float]:
        """``gmm/n_components``, ``gmm/subspace_dim``, ``gmm/variance_kept``, ``gmm/n_fit``,
        ``gmm/bic`` (of the chosen mixture), ``gmm/diag`` (1: diagonal covariances)."""
        return {
            "gmm/n_components": float(self.n_components),
            "gmm/subspace_dim": float(self.subspace_dim),
            "gmm/variance_kept": self.variance_kept,
            "gmm/n_fit": float(self.n_fit),
            "gmm/bic": self.bic.get((self.n_components, self.covariance_type), math.nan),
            "gmm/diag": float(self.covariance_type == "diag"),
        }

    def bic_columns(self) -> dict[str, np.ndarray]:
        """Every candidate's BIC (lower is better), the chosen one flagged."""
        keys = sorted(self.bic, key=lambda key: (key[1], key[0]))
        chosen = (self.n_components, self.covariance_type)
        return {
            "covariance_type": np.array([kind for _, kind in keys]),
            "n_components": np.array([k for k, _ in keys]),
            "bic": np.array([self.bic[key] for key in keys]),
            "chosen": np.array([key == chosen for key in keys]),
        }

    def describe(self) -> str:
        return (
            f"gmm: {self.n_components} {self.covariance_type}-covariance components by BIC "
            f"in the top {self.subspace_dim} principal directions "
            f"({100 * self.variance_kept:.1f}% of the variance; {self.n_fit} vectors), "
            f"weights {', '.join(f'{w:.3f}' for w in self.weights)}"
        )

    @functools.cached_property
    def covariances(self) -> np.ndarray:
        """float64 [K, D, D]: every component's covariance, formed once (each GHK estimate of
        every scale and k needs them; the mixture is immutable)."""
        return np.stack([self.covariance(c) for c in range(self.n_components)])

    def covariance(self, component: int) -> np.ndarray:
        """float64 [D, D]: the component's covariance in latent coordinates (scale 1)."""
        d = self.subspace_dim
        top = self.basis[:, :d]
        rest = self.basis[:, d:]
        covariance: np.ndarray = (
            top @ self.sub_covariances[component] @ top.T
            + (rest * self.residual_variances) @ rest.T
        )
        return covariance


@dataclass(frozen=True)
class PrincipalAxes:
    """The frame the mixture and the flow (:mod:`aelatent.generators.flow`) are fitted in:
    the latents' mean and their sample covariance's eigenvectors (the columns of ``basis``)
    and eigenvalues, largest first, clipped at 0."""

    mean: np.ndarray  # float64 [D]
    basis: np.ndarray  # float64 [D, D]
    eigenvalues: np.ndarray  # float64 [D], descending


def principal_axes(latents: np.ndarray) -> PrincipalAxes:
    """The :class:`PrincipalAxes` of latents ``[n, D]``."""
    mean, cov = mean_and_covariance(latents)
    eigenvalues, basis = np.linalg.eigh(0.5 * (cov + cov.T))
    order = np.argsort(eigenvalues)[::-1]
    return PrincipalAxes(mean, basis[:, order], np.clip(eigenvalues[order], 0.0, None))


def choose_subspace_dim(
    eigenvalues: np.ndarray,
    n_fit: int,
    *,
    variance_fraction: float = DEFAULT_VARIANCE_FRACTION,
    max_dim: int = DEFAULT_MAX_DIM,
    min_per_dim: int = MIN_PER_DIM,
) -> int:
    """The fewest leading eigen-directions holding ``variance_fraction`` of the variance,
    at most ``max_dim``, ``n_fit // min_per_dim`` and the number of directions; at least 1."""
    eig = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    total = float(eig.sum())
    if total > 0:
        cumulative = np.cumsum(eig) / total
        d = int(np.searchsorted(cumulative, variance_fraction - 1e-12) + 1)
    else:
        d = 1
    return max(1, min(d, int(max_dim), n_fit // int(min_per_dim), eig.size))


def _checked_latents(
    latents: np.ndarray, min_per_dim: int, covariance_types: Sequence[str]
) -> np.ndarray:
    """The latents as a finite matrix with enough rows to fit, or a MixtureError saying why."""
    x = np.asarray(latents)
    if x.ndim != 2 or x.shape[1] < 1:
        raise MixtureError(f"latents must be a matrix [n, z_dim], got shape {x.shape}")
    n = x.shape[0]
    if n < max(MIN_LATENTS, min_per_dim):
        raise MixtureError(
            f"sampler=gmm needs at least {max(MIN_LATENTS, min_per_dim)} training latents to fit "
            f"a mixture ({min_per_dim} per dimension of its subspace); the train run has {n}"
        )
    if not np.all(np.isfinite(x)):
        raise MixtureError("sampler=gmm: the latents contain NaN or infinite values")
    unknown = [t for t in covariance_types if t not in COVARIANCE_TYPES]
    if unknown or not covariance_types:
        raise ValueError(
            f"covariance_types must be among {COVARIANCE_TYPES}, got {list(covariance_types)}"
        )
    return x


def _component_counts(
    n_components: int | None, largest: int, n_fit: int, min_per_dim: int
) -> range:
    """The numbers of components BIC chooses among: 1..largest, or the one fixed."""
    if n_components is None:
        return range(1, largest + 1)
    if not 1 <= n_components <= max(1, n_fit // min_per_dim):
        raise MixtureError(
            f"a mixture of {n_components} components needs at least "
            f"{n_components * min_per_dim} latents ({min_per_dim} per component); got {n_fit}"
        )
    return range(int(n_components), int(n_components) + 1)


def fit_latent_mixture(
    latents: np.ndarray,
    *,
    variance_fraction: float = DEFAULT_VARIANCE_FRACTION,
    max_dim: int = DEFAULT_MAX_DIM,
    max_components: int = DEFAULT_MAX_COMPONENTS,
    covariance_types: Sequence[str] = COVARIANCE_TYPES,
    max_fit: int = DEFAULT_MAX_FIT,
    min_per_dim: int = MIN_PER_DIM,
    residual: Residual = "sample",
    seed: int = 0,
    n_components: int | None = None,
) -> LatentMixture:
    """Fit the mixture of the module docstring to real latents ``[n, D]``; BIC chooses, or
    ``n_components`` fixes the number of components (the generator search's setting)."""
    from sklearn.mixture import GaussianMixture  # ~1.1 s; only the gmm fit needs sklearn
    from threadpoolctl import threadpool_limits  # not in a served generator's env

    x = _checked_latents(latents, min_per_dim, covariance_types)
    n = x.shape[0]
    axes = principal_axes(x)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=max_fit, replace=False)) if n > max_fit else np.arange(n)
    n_fit = rows.size
    d = choose_subspace_dim(
        axes.eigenvalues,
        n_fit,
        variance_fraction=variance_fraction,
        max_dim=max_dim,
        min_per_dim=min_per_dim,
    )
    y = (np.asarray(x[rows], dtype=np.float64) - axes.mean) @ axes.basis[:, :d]
    reg = REG_COVAR * max(float(np.mean(axes.eigenvalues[:d])), 1e-300)
    largest = max(1, min(int(max_components), n_fit // min_per_dim))
    counts = _component_counts(n_components, largest, n_fit, min_per_dim)
    bic: dict[tuple[int, str], float] = {}
    best = None
    with threadpool_limits(1):
        for kind in covariance_types:
            for k in counts:
                model = GaussianMixture(
                    k,
                    covariance_type=kind,
                    reg_covar=reg,
                    random_state=seed,
                    n_init=1,
                    max_iter=200,
                )
                model.fit(y)
                bic[(k, kind)] = float(model.bic(y))
                if best is None or bic[(k, kind)] < bic[best[0]]:
                    best = ((k, kind), model)
    assert best is not None
    (_, kind), model = best
    covs = np.asarray(model.covariances_, dtype=np.float64)
    if kind == "diag":
        covs = np.stack([np.diag(c) for c in covs])
    rest = axes.eigenvalues[d:]
    if residual == "isotropic" and rest.size:
        rest = np.full(rest.size, float(np.mean(rest)))
    elif residual not in ("sample", "isotropic"):
        raise ValueError(f"residual must be 'sample' or 'isotropic', got {residual!r}")
    return LatentMixture(
        mean=axes.mean,
        basis=axes.basis,
        eigenvalues=axes.eigenvalues,
        subspace_dim=d,
        weights=np.asarray(model.weights_, dtype=np.float64),
        sub_means=np.asarray(model.means_, dtype=np.float64),
        sub_covariances=covs,
        residual_variances=rest,
        covariance_type=kind,
        bic=bic,
        n_fit=n_fit,
    )


class GMMSampler(AffineSampler):
    """Vectors of a :class:`LatentMixture`: ``z = m_c + scale * y``, ``y ~ N(0, Sigma_c)``.

    A *mixture* sampler: besides the :class:`~aelatent.core.samplers.Sampler` protocol it
    has ``component_offsets`` and :meth:`draw_labelled_base`, and each vector's offset is
    its component's mean. ``offset`` (the overall mean) is there for the protocol only.
    """

    name = "gmm"

    def __init__(
        self,
        mixture: LatentMixture,
        scale: float = 1.0,
        *,
        ghk_draws: int = 2048,
        ghk_seed: int = 0,
    ) -> None:
        super().__init__(mixture.mean, scale)
        self.mixture = mixture
        self.ghk_draws = int(ghk_draws)
        self.ghk_seed = int(ghk_seed)
        self.last_relative_se: float = float("nan")
        d = mixture.subspace_dim
        self._offsets32 = mixture.means.astype(np.float32)
        self._basis_t32 = mixture.basis.T.astype(np.float32)  # coefficients @ basis.T
        self._sub_chol32 = np.stack([_cholesky(c).T for c in mixture.sub_covariances]).astype(
            np.float32
        )  # [K, d, d]
        self._rest_sd32 = np.sqrt(np.clip(mixture.residual_variances, 0.0, None)).astype(np.float32)
        self._d = d
        self._cumulative = np.cumsum(mixture.weights) / np.sum(mixture.weights)

    @classmethod
    def from_latents(
        cls, latents: np.ndarray, scale: float = 1.0, *, seed: int = 0, **fit_options: Any
    ) -> GMMSampler:
        """Fit the mixture (BIC, seeded by ``seed``) and sample from it."""
        return cls(fit_latent_mixture(latents, seed=seed, **fit_options), scale, ghk_seed=seed)

    @property
    def component_offsets(self) -> np.ndarray:
        """float32 [K, z_dim]: each component's mean, the offset of its vectors."""
        return self._offsets32

    def draw_labelled_base(
        self, n: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(labels int64 [n], y float32 [n, z_dim])``: ``z = component_offsets[labels] +
        scale * y``; ``y`` does not depend on ``scale``."""
        # z_dim + 1 normals per vector, the last one picks the component (through its normal
        # CDF): a stream of whole vectors, so drawing in chunks draws the same vectors
        full = rng.standard_normal((n, self.z_dim + 1), dtype=np.float32)
        labels = np.searchsorted(
            self._cumulative, ndtr(full[:, -1].astype(np.float64)), side="right"
        )
        labels = np.minimum(labels, self.mixture.n_components - 1)
        e = full[:, :-1]
        d = self._d
        top = e[:, :d]
        for c in range(self.mixture.n_components):
            rows = labels == c
            if np.any(rows):
                top[rows] = top[rows] @ self._sub_chol32[c]
        e[:, d:] *= self._rest_sd32
        if out is None:
            return labels, e @ self._basis_t32
        np.matmul(e, self._basis_t32, out=out)
        return labels, out

    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """The scale-free part ``y`` alone (its labels dropped): see the class docstring."""
        self.draw_labelled_base(out.shape[0], rng, out)

    def with_scale(self, scale: float) -> GMMSampler:
        return GMMSampler(self.mixture, scale, ghk_draws=self.ghk_draws, ghk_seed=self.ghk_seed)

    def with_ghk_draws(self, ghk_draws: int) -> GMMSampler:
        return GMMSampler(self.mixture, self.scale, ghk_draws=ghk_draws, ghk_seed=self.ghk_seed)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        labels, y = self.draw_labelled_base(n, rng)
        y *= np.float32(self.scale)
        y += self._offsets32[labels]
        return y

    def component_draws(self) -> int:
        """GHK draws per component: the budget split evenly, at least MIN_COMPONENT_DRAWS."""
        return max(MIN_COMPONENT_DRAWS, self.ghk_draws // self.mixture.n_components)

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """log10 of ``sum_c w_c P_c(lo <= z <= hi)``, each ``P_c`` by GHK (an estimate).

        The relative standard error of the estimated sum is left in ``last_relative_se``.
        """
        lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (self.z_dim,))
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (self.z_dim,))
        log_p, rel_se = ghk_combine(self._mixed_log_replicates(lo[None], hi[None])[0])
        self.last_relative_se = rel_se
        return log_p / LN10

    def window_log10_probabilities(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """:meth:`window_log10_probability` of a batch of windows ``[B, z_dim]``: ``[B]``."""
        mixed = self._mixed_log_replicates(np.atleast_2d(lo), np.atleast_2d(hi))
        return np.array([ghk_combine(row)[0] for row in mixed]) / LN10

    def _mixed_log_replicates(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """``ln sum_c w_c P_c`` per window and GHK replicate, ``[B, replicates]``: one batched
        recursion per component (:func:`~aelatent.core.samplers.ghk_log_replicates`), combined
        replicate by replicate (the components share their scrambled points)."""
        means = self.mixture.means
        logs = np.stack(
            [
                ghk_log_replicates(
                    (lo - means[c]) / self.scale,
                    (hi - means[c]) / self.scale,
                    self.mixture.covariances[c],
                    n_draws=self.component_draws(),
                    seed=self.ghk_seed,
                )
                for c in range(self.mixture.n_components)
            ]
        )  # [K, B, replicates]
        with np.errstate(divide="ignore"):
            log_w = np.log(self.mixture.weights)[:, None, None]
        return np.asarray(logsumexp(log_w + logs, axis=0))

    def radius_moments(self) -> RadiusMoments:
        """Mean and std of ``|z|`` at this scale: the components' exact moments, mixed
        (``E R = sum w_c E R_c``, ``E R^2 = sum w_c E R_c^2``)."""
        means = self.mixture.means
        first = second = 0.0
        for c, w in enumerate(self.mixture.weights):
            moments = mvn_radius_moments(
                means[c], self.scale**2 * self.mixture.covariance(c), "exact"
            )
            first += w * moments.mean
            second += w * (moments.std**2 + moments.mean**2)
        return RadiusMoments(first, math.sqrt(max(second - first**2, 0.0)))


def _cholesky(cov: np.ndarray) -> np.ndarray:
    return cholesky_psd(np.asarray(cov, dtype=np.float64))
