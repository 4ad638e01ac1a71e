"""The sampler registry: one :class:`SamplerSpec` per generator of latent vectors.

Everything the rest of the project asks about a sampler is answered here: its name and the
order the tables list it in, the name and label of its width axis (uniform's half-width
``b``, the others' factor ``scale``), how it is built at scale 1 from a train run's windows
and training latents, its radius moments, whether its window probability is exact or a GHK
estimate, and how the served generator stores it. Evaluate's grid, the search's axis, the
verdict, the served generator and the report all read this table, so adding a generator
means a class in its own module (the :class:`~aelatent.core.samplers.Sampler` protocol) and
one entry in :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from aelatent.core.mixture import MIN_LATENTS as GMM_MIN_LATENTS
from aelatent.core.mixture import GMMSampler, LatentMixture
from aelatent.core.radius_theory import (
    RadiusMoments,
    gaussian_radius_moments,
    mvn_radius_moments,
    uniform_radius_moments,
)
from aelatent.core.samplers import GaussianSampler, MVNSampler, Sampler, UniformSampler
from aelatent.core.windows import FWHM_PER_SIGMA
from aelatent.errors import UserError

Probability = Literal["exact", "ghk_estimate"]
Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class FitData:
    """What a sampler is built from: the hit windows (centres ``mu``, half-widths ``hw``),
    the training latents ``[n, z_dim]``, and the seed of any random fit (the mixture)."""

    mu: np.ndarray
    hw: np.ndarray
    latents: np.ndarray
    seed: int = 0


@dataclass(frozen=True)
class SamplerSpec:
    """One generator: how to build, describe, measure and store it."""

    name: str
    label: str  # one line for tables and docs
    axis: Literal["b", "scale"]  # the parameter name of its width axis
    build: Callable[[FitData], Sampler]  # at scale 1
    radius_moments: Callable[[Sampler, float], RadiusMoments]  # of its radius at a scale
    probability: Probability  # how its window probability (log10_p_hit) is computed
    to_arrays: Callable[[Sampler], dict[str, np.ndarray]]  # the served generator's copy
    from_arrays: Callable[[Arrays], Sampler]
    min_latents: int = 2  # training latents needed to build it

    @property
    def axis_label(self) -> str:
        """The axis as a plot labels it."""
        return "b (box half-width)" if self.axis == "b" else "scale s"

    @property
    def axis_symbol(self) -> str:
        """The axis in a short label (``b = 2``, ``s = 1``)."""
        return "b" if self.axis == "b" else "s"

    @property
    def has_box(self) -> bool:
        """Whether its axis is the box half-width of the study (only uniform's is)."""
        return self.axis == "b"


# --- the entries -------------------------------------------------------------------------


def _uniform(fit: FitData) -> Sampler:
    return UniformSampler(1.0, int(np.asarray(fit.mu).size))


def _uniform_radius(sampler: Sampler, scale: float) -> RadiusMoments:
    return uniform_radius_moments(scale, sampler.z_dim)


def _gaussian(fit: FitData) -> Sampler:
    return GaussianSampler(np.asarray(fit.mu), np.asarray(fit.hw) / FWHM_PER_SIGMA)


def _gaussian_radius(sampler: Sampler, scale: float) -> RadiusMoments:
    assert isinstance(sampler, GaussianSampler)
    return gaussian_radius_moments(sampler.mu, scale * sampler.sigma, "exact")


def _gaussian_arrays(sampler: Sampler) -> dict[str, np.ndarray]:
    assert isinstance(sampler, GaussianSampler)
    return {"mu": sampler.mu, "sigma": sampler.sigma}


def _mvn_radius(sampler: Sampler, scale: float) -> RadiusMoments:
    assert isinstance(sampler, MVNSampler)
    return mvn_radius_moments(sampler.mean, scale**2 * sampler.cov, "exact")


def _mvn_arrays(sampler: Sampler) -> dict[str, np.ndarray]:
    assert isinstance(sampler, MVNSampler)
    return {"mean": sampler.mean, "cov": sampler.cov}


GMM_ARRAYS = (
    "mean",
    "basis",
    "eigenvalues",
    "weights",
    "sub_means",
    "sub_covariances",
    "residual_variances",
)


def _gmm_radius(sampler: Sampler, scale: float) -> RadiusMoments:
    assert isinstance(sampler, GMMSampler)
    return sampler.with_scale(scale).radius_moments()


def _gmm_arrays(sampler: Sampler) -> dict[str, np.ndarray]:
    assert isinstance(sampler, GMMSampler)
    mixture = sampler.mixture
    arrays = {key: np.asarray(getattr(mixture, key)) for key in GMM_ARRAYS}
    arrays["subspace_dim"] = np.asarray(mixture.subspace_dim, dtype=np.int64)
    arrays["covariance_type"] = np.asarray(mixture.covariance_type)
    arrays["ghk_seed"] = np.asarray(sampler.ghk_seed, dtype=np.int64)
    return arrays


def _gmm_from_arrays(arrays: Arrays) -> Sampler:
    gmm = {key: np.asarray(arrays[key], dtype=np.float64) for key in GMM_ARRAYS}
    mixture = LatentMixture(
        mean=gmm["mean"],
        basis=gmm["basis"],
        eigenvalues=gmm["eigenvalues"],
        subspace_dim=int(arrays["subspace_dim"]),
        weights=gmm["weights"],
        sub_means=gmm["sub_means"],
        sub_covariances=gmm["sub_covariances"],
        residual_variances=gmm["residual_variances"],
        covariance_type=str(arrays["covariance_type"]),
    )
    return GMMSampler(mixture, ghk_seed=int(arrays["ghk_seed"]))


REGISTRY: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec(
            name="uniform",
            label="each component uniform in [-b, b] (the study's generator)",
            axis="b",
            build=_uniform,
            radius_moments=_uniform_radius,
            probability="exact",
            to_arrays=lambda s: {"z_dim": np.asarray(s.z_dim, dtype=np.int64)},
            from_arrays=lambda a: UniformSampler(1.0, int(a["z_dim"])),
        ),
        SamplerSpec(
            name="gaussian",
            label="independent normals with the windows' centres and widths",
            axis="scale",
            build=_gaussian,
            radius_moments=_gaussian_radius,
            probability="exact",
            to_arrays=_gaussian_arrays,
            from_arrays=lambda a: GaussianSampler(a["mu"], a["sigma"]),
        ),
        SamplerSpec(
            name="mvn",
            label="multivariate normal with the latents' mean and covariance",
            axis="scale",
            build=lambda fit: MVNSampler.from_latents(fit.latents),
            radius_moments=_mvn_radius,
            probability="ghk_estimate",
            to_arrays=_mvn_arrays,
            from_arrays=lambda a: MVNSampler(a["mean"], a["cov"]),
        ),
        SamplerSpec(
            name="gmm",
            label="Gaussian mixture in the principal subspace, chosen by BIC",
            axis="scale",
            build=lambda fit: GMMSampler.from_latents(fit.latents, seed=fit.seed),
            radius_moments=_gmm_radius,
            probability="ghk_estimate",
            to_arrays=_gmm_arrays,
            from_arrays=_gmm_from_arrays,
            min_latents=GMM_MIN_LATENTS,
        ),
    )
}

SAMPLERS: tuple[str, ...] = tuple(REGISTRY)
"""Every sampler name, in the order tables list them (and their random streams are numbered)."""


def spec_of(name: str) -> SamplerSpec:
    """The registry entry of ``name``; UserError naming it and the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(SAMPLERS)
        raise UserError(f"unknown sampler {name!r}; expected one of {known}") from None


def axis_of(sampler: str) -> str:
    """The name of a sampler's width axis (``b`` or ``scale``); ``scale`` for unknown names
    (a run of a sampler this version does not know)."""
    spec = REGISTRY.get(sampler)
    return spec.axis if spec is not None else "scale"


def stream_of(sampler: str) -> int:
    """The sampler's fixed index, part of its random streams' seeds (reproducible draws)."""
    return SAMPLERS.index(sampler)


def order_key(name: str) -> tuple[int, str]:
    """Sort key: known samplers in registry order, others after them by name."""
    return (SAMPLERS.index(name) if name in REGISTRY else len(SAMPLERS), name)


def build_sampler(
    name: str, mu: np.ndarray, hw: np.ndarray, latents: np.ndarray, *, seed: int = 0
) -> Sampler:
    """``name`` at scale 1; ``mu``, ``hw``: the hit windows; ``latents``: the training
    latents; ``seed``: a random fit's seed. UserError for an unknown name or too few latents."""
    spec = spec_of(name)
    check_fits(spec.name, "the train run", int(np.asarray(latents).shape[0]))
    return spec.build(FitData(np.asarray(mu), np.asarray(hw), np.asarray(latents), seed))


def check_fits(name: str, run_id: str, n_latents: int) -> None:
    """UserError when ``n_latents`` training latents are too few to fit sampler ``name``."""
    need = spec_of(name).min_latents
    if n_latents < need:
        what = run_id if run_id == "the train run" else f"train run {run_id!r}"
        raise UserError(
            f"sampler={name} needs at least {need} training latents to fit; {what} has {n_latents}"
        )


def radius_moments(sampler: Sampler, scale: float) -> RadiusMoments:
    """The radius moments of ``sampler`` at ``scale`` (its registry entry's theory)."""
    return spec_of(sampler.name).radius_moments(sampler, scale)


def sampler_arrays(samplers: Mapping[str, Sampler]) -> dict[str, np.ndarray]:
    """Samplers as named arrays ``<name>.<key>`` (the served generator's ``samplers.npz``)."""
    arrays: dict[str, np.ndarray] = {}
    for name, sampler in samplers.items():
        for key, value in spec_of(name).to_arrays(sampler).items():
            arrays[f"{name}.{key}"] = value
    return arrays


def samplers_from_arrays(arrays: Arrays) -> dict[str, Sampler]:
    """The samplers (scale 1) stored by :func:`sampler_arrays`."""
    samplers: dict[str, Sampler] = {}
    for name, spec in REGISTRY.items():
        mine = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{name}.")}
        if mine:
            samplers[name] = spec.from_arrays(mine)
    return samplers
