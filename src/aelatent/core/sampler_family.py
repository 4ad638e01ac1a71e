"""The four generators at scale 1, built from a train run's windows and training latents.

One place for what "the gaussian" or "the gmm" of a train run is, so that evaluate's grid,
the search's scale axis and the served generator sample the same distribution: uniform in
``[-1, 1]^N``; independent Gaussians with the windows' centres and widths
(``sigma = hw / 2.355``); the multivariate normal with the latents' mean and covariance;
the Gaussian mixture BIC chose (seeded). ``with_scale`` gives the rest of each one's axis.
"""

from __future__ import annotations

import numpy as np

from aelatent.core.mixture import MIN_LATENTS as GMM_MIN_LATENTS
from aelatent.core.mixture import GMMSampler
from aelatent.core.samplers import GaussianSampler, MVNSampler, Sampler, UniformSampler
from aelatent.core.windows import FWHM_PER_SIGMA
from aelatent.errors import UserError

SAMPLERS = ("uniform", "gaussian", "mvn", "gmm")


def axis_of(sampler: str) -> str:
    """The name of a sampler's width axis: uniform's half-width ``b``, the others' ``scale``."""
    return "b" if sampler == "uniform" else "scale"


def build_sampler(
    name: str, mu: np.ndarray, hw: np.ndarray, latents: np.ndarray, *, seed: int = 0
) -> Sampler:
    """``name`` at scale 1; ``mu``, ``hw``: the hit windows; ``latents``: the training
    latents (mvn, gmm); ``seed``: the mixture's fit. UserError for an unknown name or too
    few latents for a mixture."""
    if name == "uniform":
        return UniformSampler(1.0, int(np.asarray(mu).size))
    if name == "gaussian":
        return GaussianSampler(np.asarray(mu), np.asarray(hw) / FWHM_PER_SIGMA)
    if name == "mvn":
        return MVNSampler.from_latents(latents)
    if name == "gmm":  # a Gaussian mixture in the principal subspace, chosen by BIC
        return GMMSampler.from_latents(latents, seed=seed)
    raise UserError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def check_gmm_fits(run_id: str, n_latents: int) -> None:
    """A mixture needs :data:`GMM_MIN_LATENTS` training latents; UserError naming both."""
    if n_latents < GMM_MIN_LATENTS:
        raise UserError(
            f"sampler=gmm needs at least {GMM_MIN_LATENTS} training latents to "
            f"fit a mixture; train run {run_id!r} has {n_latents}"
        )
