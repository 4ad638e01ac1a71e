"""The sampler registry: one :class:`SamplerSpec` per generator of latent vectors.

Everything the rest of the project asks about a sampler is answered here: its name and the
order the tables list it in, the name, label and search range of its width axis (uniform's
half-width ``b``, the others' factor ``scale``), how it is built at scale 1 from a train
run's windows and training latents (with the settings the generator search varies, each
declared here), its radius moments (:func:`radius_moments`: the sampler's own, as every
:class:`~aelatent.core.samplers.AffineSampler` has them), whether its window probability is
exact, a GHK estimate or none, its held-out log-likelihood, and how the served generator
stores it. Evaluate's grid, the search's axis, the generator search's families and settings,
the verdict, the served generator and the report all read this table, so adding a generator
means a class in its own module (an :class:`~aelatent.core.samplers.AffineSampler`) and one
entry in :data:`REGISTRY`.

A *trained* sampler (``flow``) is declared here like the others (it samples, scores and is
stored in numpy), but its fit needs TensorFlow, which the numeric core does not import: its
entry has no ``build``, and the package that trains it (:mod:`aelatent.generators`, above
the core) hands the registry its builder with :func:`provide_trainer` when imported (every
job imports it). ``all`` (:data:`DEFAULT_SAMPLERS`) means the samplers fitted in closed form;
a trained one is named explicitly (its fit takes TensorFlow and seconds to minutes).

Why one module of this size: the registry is the one table every question about a sampler
reads, and each entry's small functions (build, storage, log-likelihood, parameter count)
sit beside it, so a sampler is read in one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.special import logsumexp

from aelatent.core.flow import WEIGHTS as FLOW_WEIGHTS
from aelatent.core.flow import FlowSampler, LatentFlow, made_masks
from aelatent.core.mixture import MIN_LATENTS as GMM_MIN_LATENTS
from aelatent.core.mixture import GMMSampler, LatentMixture, fit_latent_mixture
from aelatent.core.radius_theory import RadiusMoments
from aelatent.core.samplers import (
    AffineSampler,
    GaussianSampler,
    MVNSampler,
    Sampler,
    UniformSampler,
)
from aelatent.core.windows import FWHM_PER_SIGMA
from aelatent.errors import UserError

Probability = Literal["exact", "ghk_estimate", "none"]
Arrays = Mapping[str, np.ndarray]
Setting = float | int | str
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class FitData:
    """What a sampler is built from: the hit windows (centres ``mu``, half-widths ``hw``),
    the training latents ``[n, z_dim]``, the seed of any random fit (the mixture, the flow),
    and the fit's settings (the generator search's; empty: the sampler's defaults)."""

    mu: np.ndarray
    hw: np.ndarray
    latents: np.ndarray
    seed: int = 0
    settings: Mapping[str, Setting] = field(default_factory=dict)


@dataclass(frozen=True)
class SettingSpace:
    """One setting of a sampler's fit that the generator search varies, with its range:
    ``kind`` int or float in ``[low, high]`` (``log``: on a log scale), or one of
    ``choices``; ``per_latent`` > 0 caps an int at ``n_fit // per_latent`` (a mixture
    component needs 20 fit vectors)."""

    name: str
    kind: Literal["int", "float", "choice"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[str, ...] = ()
    per_latent: int = 0

    def upper(self, n_fit: int) -> float:
        """The highest value allowed with ``n_fit`` fit vectors (at least ``low``)."""
        if self.per_latent > 0:
            return max(self.low, min(self.high, n_fit // self.per_latent))
        return self.high


# the log density of the fit's test vectors, per vector, in the given principal directions
LogLikelihood = Callable[[Sampler, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Storage:
    """How the served generator stores a sampler (at scale 1): as named arrays, and back."""

    to_arrays: Callable[[Sampler], dict[str, np.ndarray]]
    from_arrays: Callable[[Arrays], Sampler]


def _stored(cls: Callable[..., Sampler], *keys: str) -> Storage:
    """The storage of a sampler that is its constructor's arguments, the attributes ``keys``."""
    return Storage(
        lambda sampler: {key: getattr(sampler, key) for key in keys},
        lambda arrays: cls(*(arrays[key] for key in keys)),
    )


@dataclass(frozen=True, kw_only=True)
class SamplerSpec:
    """One generator: how to build, describe, search, measure and store it. Its radius
    moments are the sampler's own (``radius_moments()`` at its scale)."""

    name: str
    label: str  # one line for tables and docs
    axis: Literal["b", "scale"] = "scale"  # the parameter name of its width axis
    build: Callable[[FitData], Sampler] | None = None  # at scale 1; None: provide_trainer's
    probability: Probability  # how its window probability (log10_p_hit) is computed
    storage: Storage  # the served generator's copy
    min_latents: int = 2  # training latents needed to build it
    axis_range: tuple[float, float] = (0.25, 4.0)  # the generator search's range (log scale)
    settings: tuple[SettingSpace, ...] = ()  # what else the generator search varies
    log_likelihood: LogLikelihood | None = None  # None: no density worth scoring (uniform)
    needs_windows: bool = False  # built from the hit windows (mu, hw), not the latents alone
    trained: bool = False  # fitted by gradient descent in TensorFlow, outside the core
    parameters: Callable[[Sampler], int] | None = None  # free parameters fitted (search ties)
    # the settings of its default fit (no settings) in the search's space: the generator
    # search's first trials; None: no fitted default (uniform's b, the trained flow)
    default_settings: Callable[[Sampler], dict[str, Setting]] | None = None

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


def _gaussian_log_likelihood(sampler: Sampler, z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    assert isinstance(sampler, GaussianSampler)
    cov = (basis.T * (sampler.scale * np.asarray(sampler.sigma, np.float64)) ** 2) @ basis
    return _normal_log_pdf(z @ basis, np.asarray(sampler.mu, np.float64) @ basis, cov)


def _mvn(fit: FitData) -> Sampler:
    sampler = MVNSampler.from_latents(fit.latents)
    shrink = float(fit.settings.get("shrinkage", 0.0))
    if shrink == 0.0:
        return sampler
    cov = sampler.cov
    return MVNSampler(sampler.mean, (1 - shrink) * cov + shrink * np.diag(np.diag(cov)))


def _mvn_log_likelihood(sampler: Sampler, z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    assert isinstance(sampler, MVNSampler)
    cov = sampler.scale**2 * basis.T @ np.asarray(sampler.cov, np.float64) @ basis
    return _normal_log_pdf(z @ basis, np.asarray(sampler.mean, np.float64) @ basis, cov)


GMM_ARRAYS = (
    "mean",
    "basis",
    "eigenvalues",
    "weights",
    "sub_means",
    "sub_covariances",
    "residual_variances",
)


def _gmm(fit: FitData) -> Sampler:
    """BIC's mixture; with the search's settings (``components``, ``covariance``,
    ``subspace``) the mixture of exactly those."""
    if not fit.settings:
        return GMMSampler.from_latents(fit.latents, seed=fit.seed)
    mixture = fit_latent_mixture(
        np.asarray(fit.latents, dtype=np.float64),
        n_components=int(fit.settings["components"]),
        covariance_types=(str(fit.settings["covariance"]),),
        max_dim=int(fit.settings["subspace"]),
        variance_fraction=1.0,
        seed=fit.seed,
    )
    return GMMSampler(mixture, ghk_seed=fit.seed)


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


def _gmm_log_likelihood(sampler: Sampler, z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """The mixture of the components' Gaussians ``N(m_c, scale^2 Sigma_c)``, projected."""
    assert isinstance(sampler, GMMSampler)
    mixture = sampler.mixture
    y, means = z @ basis, mixture.means @ basis
    with np.errstate(divide="ignore"):
        log_w = np.log(mixture.weights)
    per_component = [
        log_w[c]
        + _normal_log_pdf(y, means[c], sampler.scale**2 * basis.T @ mixture.covariances[c] @ basis)
        for c in range(mixture.n_components)
    ]
    result: np.ndarray = logsumexp(np.stack(per_component), axis=0)
    return result


FLOW_SCALARS = ("subspace_dim", "n_fit", "epochs", "validation_log_likelihood")


def _flow_arrays(sampler: Sampler) -> dict[str, np.ndarray]:
    assert isinstance(sampler, FlowSampler)
    flow = sampler.flow
    keys = ("mean", "basis", "eigenvalues", *FLOW_WEIGHTS, *FLOW_SCALARS)
    return {key: np.asarray(getattr(flow, key)) for key in keys}


def _flow_from_arrays(arrays: Arrays) -> Sampler:
    flow = LatentFlow(
        mean=np.asarray(arrays["mean"], dtype=np.float64),
        basis=np.asarray(arrays["basis"], dtype=np.float64),
        eigenvalues=np.asarray(arrays["eigenvalues"], dtype=np.float64),
        subspace_dim=int(arrays["subspace_dim"]),
        **{key: np.asarray(arrays[key], dtype=np.float32) for key in FLOW_WEIGHTS},
        n_fit=int(arrays["n_fit"]),
        epochs=int(arrays["epochs"]),
        validation_log_likelihood=float(arrays["validation_log_likelihood"]),
    )
    return FlowSampler(flow)


def _flow_log_likelihood(sampler: Sampler, z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """In the flow's own principal directions, as many as ``basis`` has (the same span when
    both come from the same fit latents: the search's case)."""
    assert isinstance(sampler, FlowSampler)
    return sampler.log_likelihood(z, basis.shape[1])


def _normal_log_pdf(y: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log N(y; mean, cov)`` per row, by Cholesky (a singular ``cov`` is floored)."""
    r = mean.size
    floor = 1e-12 * max(float(np.trace(cov)) / max(r, 1), 1e-300)
    chol = np.linalg.cholesky(0.5 * (cov + cov.T) + floor * np.eye(r))
    white = np.linalg.solve(chol, (y - mean).T)
    half_log_det = float(np.sum(np.log(np.diag(chol))))
    result: np.ndarray = -0.5 * (white * white).sum(axis=0) - half_log_det - 0.5 * r * LOG_2PI
    return result


def _mvn_count(z_dim: int) -> int:
    """A mean and a symmetric covariance in ``z_dim`` dimensions."""
    return z_dim + z_dim * (z_dim + 1) // 2


def _gmm_parameters(sampler: Sampler) -> int:
    """The multivariate normal's count with the subspace's ``d`` means and ``d`` variances
    replaced by the mixture's ``K`` means, ``K`` covariances (``d(d+1)/2`` full, ``d``
    diagonal) and ``K - 1`` weights: the residual and the subspace come from the latents'
    covariance as the normal's do."""
    assert isinstance(sampler, GMMSampler)
    mixture = sampler.mixture
    d, k = mixture.subspace_dim, mixture.n_components
    per_covariance = d * (d + 1) // 2 if mixture.covariance_type == "full" else d
    return _mvn_count(mixture.z_dim) - 2 * d + k * (d + per_covariance) + k - 1


def _gmm_default_settings(sampler: Sampler) -> dict[str, Setting]:
    """BIC's choice: its number of components, covariance type and subspace."""
    assert isinstance(sampler, GMMSampler)
    mixture = sampler.mixture
    return {
        "components": int(mixture.n_components),
        "covariance": str(mixture.covariance_type),
        "subspace": int(mixture.subspace_dim),
    }


def _flow_parameters(sampler: Sampler) -> int:
    """The multivariate normal's count (the whitening and the residual) plus the MADE
    weights and biases the masks leave free (the rotations are drawn, not fitted)."""
    assert isinstance(sampler, FlowSampler)
    flow = sampler.flow
    masks = made_masks(flow.subspace_dim, flow.hidden_units)
    free = sum(int(np.count_nonzero(m)) for m in masks)
    biases = sum(int(getattr(flow, b)[0].size) for b in ("b1", "b2", "b3"))
    return _mvn_count(flow.z_dim) + flow.n_bijectors * (free + biases)


SCALE_RANGE = (0.25, 4.0)
SUBSPACE = SettingSpace("subspace", "int", 2, 32, log=True)

REGISTRY: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec(
            name="uniform",
            label="each component uniform in [-b, b] (the study's generator)",
            axis="b",
            build=lambda fit: UniformSampler(1.0, int(np.asarray(fit.latents).shape[1])),
            probability="exact",
            storage=Storage(
                lambda s: {"z_dim": np.asarray(s.z_dim, dtype=np.int64)},
                lambda a: UniformSampler(1.0, int(a["z_dim"])),
            ),
            axis_range=(0.05, 12.0),
            parameters=lambda s: 1,
        ),
        SamplerSpec(
            name="gaussian",
            label="independent normals with the windows' centres and widths",
            build=lambda fit: GaussianSampler(
                np.asarray(fit.mu), np.asarray(fit.hw) / FWHM_PER_SIGMA
            ),
            probability="exact",
            storage=_stored(GaussianSampler, "mu", "sigma"),
            log_likelihood=_gaussian_log_likelihood,
            needs_windows=True,
            parameters=lambda s: 2 * s.z_dim,
            default_settings=lambda s: {},
        ),
        SamplerSpec(
            name="mvn",
            label="multivariate normal with the latents' mean and covariance",
            build=_mvn,
            probability="ghk_estimate",
            storage=_stored(MVNSampler, "mean", "cov"),
            settings=(SettingSpace("shrinkage", "float", 0.0, 1.0),),
            log_likelihood=_mvn_log_likelihood,
            parameters=lambda s: _mvn_count(s.z_dim),
            default_settings=lambda s: {"shrinkage": 0.0},
        ),
        SamplerSpec(
            name="gmm",
            label="Gaussian mixture in the principal subspace, chosen by BIC",
            build=_gmm,
            probability="ghk_estimate",
            storage=Storage(_gmm_arrays, _gmm_from_arrays),
            min_latents=GMM_MIN_LATENTS,
            settings=(
                SettingSpace("components", "int", 1, 8, per_latent=GMM_MIN_LATENTS),
                SettingSpace("covariance", "choice", choices=("full", "diag")),
                SUBSPACE,
            ),
            log_likelihood=_gmm_log_likelihood,
            parameters=_gmm_parameters,
            default_settings=_gmm_default_settings,
        ),
        SamplerSpec(
            name="flow",
            label="masked autoregressive flow in the principal subspace (trained)",
            probability="none",
            storage=Storage(_flow_arrays, _flow_from_arrays),
            min_latents=GMM_MIN_LATENTS,
            settings=(
                SettingSpace("hidden_units", "int", 8, 64, log=True),
                SettingSpace("bijectors", "int", 1, 4),
                SUBSPACE,
                SettingSpace("epochs", "int", 20, 300, log=True),
            ),
            log_likelihood=_flow_log_likelihood,
            trained=True,
            parameters=_flow_parameters,
        ),
    )
}

SAMPLERS: tuple[str, ...] = tuple(REGISTRY)
"""Every sampler name, in the order tables list them (and their random streams are numbered)."""

DEFAULT_SAMPLERS: tuple[str, ...] = tuple(n for n, s in REGISTRY.items() if not s.trained)
"""What ``all`` builds: the samplers fitted in closed form (module docstring)."""

_TRAINERS: dict[str, Callable[[FitData], Sampler]] = {}


def provide_trainer(name: str, build: Callable[[FitData], Sampler]) -> None:
    """Hand the registry the builder of the trained sampler ``name`` (at scale 1): called by
    the package that trains it, above the core, when it is imported."""
    if name not in REGISTRY or not REGISTRY[name].trained:
        raise ValueError(f"{name!r} is not a trained sampler of the registry")
    _TRAINERS[name] = build


def builder_of(name: str) -> Callable[[FitData], Sampler]:
    """How to build ``name`` at scale 1: its entry's ``build`` or its provided trainer."""
    spec = spec_of(name)
    if spec.build is not None:
        return spec.build
    try:
        return _TRAINERS[name]
    except KeyError:
        raise RuntimeError(
            f"sampler={name} is trained with TensorFlow by aelatent.generators, which this "
            "process has not imported (every job imports it; import it before building)"
        ) from None


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
    name: str,
    mu: np.ndarray,
    hw: np.ndarray,
    latents: np.ndarray,
    *,
    seed: int = 0,
    settings: Mapping[str, Setting] | None = None,
) -> Sampler:
    """``name`` at scale 1; ``mu``, ``hw``: the hit windows; ``latents``: the training
    latents; ``seed``: a random fit's seed; ``settings``: the fit's (the generator search's;
    None: the defaults). UserError for an unknown name or too few latents."""
    spec = spec_of(name)
    check_fits(spec.name, "the train run", int(np.asarray(latents).shape[0]))
    fit = FitData(np.asarray(mu), np.asarray(hw), np.asarray(latents), seed, dict(settings or {}))
    return builder_of(name)(fit)


def check_fits(name: str, run_id: str, n_latents: int) -> None:
    """UserError when ``n_latents`` training latents are too few to fit sampler ``name``."""
    need = spec_of(name).min_latents
    if n_latents < need:
        what = run_id if run_id == "the train run" else f"train run {run_id!r}"
        raise UserError(
            f"sampler={name} needs at least {need} training latents to fit; {what} has {n_latents}"
        )


def radius_moments(sampler: Sampler, scale: float) -> RadiusMoments:
    """The radius moments of ``sampler`` at ``scale`` (the sampler's own theory)."""
    at_scale = sampler.with_scale(scale)
    assert isinstance(at_scale, AffineSampler)
    return at_scale.radius_moments()


def log_likelihood(sampler: Sampler, z: np.ndarray, basis: np.ndarray) -> float:
    """Mean log density of the rows of ``z`` under ``sampler`` (at its scale), in the
    principal directions ``basis [D, r]`` (the same for every family, so they compare; r no
    more than the fit's rank, so every density is proper there); NaN for a sampler without
    one (uniform)."""
    score = spec_of(sampler.name).log_likelihood
    if score is None:
        return math.nan
    return float(np.mean(score(sampler, np.asarray(z, dtype=np.float64), basis)))


def parameter_count(sampler: Sampler) -> int:
    """The free parameters of a fitted sampler (its entry's ``parameters``): the generator
    search's measure of simplicity, which breaks ties among candidates the score cannot
    tell apart (:func:`aelatent.jobs.generator_search.selection.best_trial`)."""
    count = spec_of(sampler.name).parameters
    if count is None:
        raise ValueError(f"sampler {sampler.name!r} declares no parameter count")
    return int(count(sampler))


def sampler_arrays(samplers: Mapping[str, Sampler]) -> dict[str, np.ndarray]:
    """Samplers as named arrays ``<name>.<key>`` (the served generator's ``samplers.npz``)."""
    arrays: dict[str, np.ndarray] = {}
    for name, sampler in samplers.items():
        for key, value in spec_of(name).storage.to_arrays(sampler).items():
            arrays[f"{name}.{key}"] = value
    return arrays


def samplers_from_arrays(arrays: Arrays) -> dict[str, Sampler]:
    """The samplers (scale 1) stored by :func:`sampler_arrays`."""
    samplers: dict[str, Sampler] = {}
    for name, spec in REGISTRY.items():
        mine = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{name}.")}
        if mine:
            samplers[name] = spec.storage.from_arrays(mine)
    return samplers
