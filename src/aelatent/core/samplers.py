"""Generators of statistical latent vectors, and the exact chance that they hit a window.

Every sampler here is *affine*: ``z = offset + scale * base`` where ``base`` does not depend
on ``scale``. The hit test (:mod:`aelatent.core.hits`) uses that to draw ``base`` once and
evaluate every scale on the same draws (common random numbers), and ``sample`` is defined
through the same draws (once, in their shared base :class:`AffineSampler`), so a sampler's
own ``sample`` and the fast grid see identical vectors.

- :class:`UniformSampler`: each component uniform in ``[-b, b]`` (the study's method 2);
  ``scale`` is ``b``, ``base`` is uniform in ``[-1, 1]``.
- :class:`GaussianSampler`: independent normal per component, ``N(mu_i, (s*sigma_i)^2)``;
  ``scale`` is the width factor ``s``, ``offset`` is ``mu``.
- :class:`MVNSampler`: multivariate normal ``N(mean, s^2 * cov)`` with the real latents' full
  covariance; ``base = L e`` with ``L`` the Cholesky factor and ``e`` standard normal.
- :class:`aelatent.core.mixture.GMMSampler` (``gmm``): a Gaussian mixture fitted to the real
  latents. It is a *mixture* sampler: ``z = m_c + scale * base`` with a per-vector offset,
  its component's mean ``m_c`` (``component_offsets``, ``draw_labelled_base``), so that the
  width factor widens each component around its own mean.
- The grid (method 1) is never sampled, only counted: :func:`grid_log10_point_count`.

``window_log10_probability(lo, hi)`` is ``log10 P(lo_i <= z_i <= hi_i for every i)``. It is
exact for the uniform and the independent Gaussian sampler (a product over components,
summed in log space so that 0.25**220 does not underflow). For the multivariate normal no
exact value is computable at 256 dimensions (Genz's algorithm is itself a Monte Carlo
method, with an absolute error far above probabilities such as 1e-100); it is the GHK
importance-sampling estimate, see :meth:`MVNSampler.window_log10_probability`.

Why one module of this size: the Sampler protocol, its implementations with their exact
probabilities and GHK for mvn are read together whenever a sampler is added.
"""

from __future__ import annotations

import functools
import math
import warnings
from abc import ABC, abstractmethod
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
from scipy.special import log_ndtr, logsumexp, ndtr, ndtri, ndtri_exp

from aelatent.core.correlations import mean_and_covariance
from aelatent.core.radius_theory import (
    RadiusMoments,
    gaussian_radius_moments,
    mvn_radius_moments,
    uniform_radius_moments,
)
from aelatent.core.threads import on_one_blas_thread

LN10 = math.log(10.0)
GHK_BLOCK = 32  # columns per block of the GHK recursion


@runtime_checkable
class Sampler(Protocol):
    """What the hit test needs from a generator of latent vectors."""

    name: str
    scale: float

    @property
    def z_dim(self) -> int: ...

    @property
    def offset(self) -> np.ndarray:
        """float32 [z_dim]: the part of ``z`` that does not scale."""
        ...

    def draw_base(
        self, n: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> np.ndarray:
        """float32 [n, z_dim], independent of ``scale``; written into ``out`` when given."""
        ...

    def with_scale(self, scale: float) -> Sampler: ...

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """float32 [n, z_dim] = offset + scale * draw_base(n, rng)."""
        ...

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float: ...


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return scale


def _as_window(lo: np.ndarray, hi: np.ndarray, z_dim: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (z_dim,))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (z_dim,))
    return lo, hi


def log_normal_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Natural log of ``Phi(b) - Phi(a)`` per element, accurate deep in either tail.

    Windows below the mean use ``log Phi`` directly, windows above it are mirrored to the
    lower tail, and ``log(1 - exp(d))`` is taken as ``log(-expm1(d))`` so that neither a
    tiny probability nor a narrow window loses its digits. Empty windows give ``-inf``.
    """
    return _log_normal_interval(a, b)[0]


def _log_normal_interval(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log P, log Phi(lower end), mirrored)`` of the windows, the lower end after mirroring."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    upper = a > 0  # whole window above the mean: mirror it
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = log_ndtr(hi)
    log_lo = log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_hi + np.log(-np.expm1(log_lo - log_hi))
    return np.where(hi > lo, out, -np.inf), log_lo, upper


class AffineSampler(ABC):
    """What every sampler here shares: ``z = offset + scale * base`` (module docstring).

    A subclass hands its offset and scale to ``__init__`` and defines how ``base`` is drawn
    (``_draw_into``); ``z_dim``, ``offset``, ``draw_base`` and ``sample`` follow from them, so
    ``sample`` and the hit test's draws cannot drift apart. A mixture sampler (per-vector
    offsets) overrides ``sample``.
    """

    name: str

    def __init__(self, offset: np.ndarray, scale: float) -> None:
        self._offset = np.asarray(offset, dtype=np.float32)
        self.scale = _check_scale(scale)

    @property
    def z_dim(self) -> int:
        return int(self._offset.size)

    @property
    def offset(self) -> np.ndarray:
        """float32 [z_dim]: the part of ``z`` that does not scale."""
        return self._offset

    def draw_base(
        self, n: int, rng: np.random.Generator, out: np.ndarray | None = None
    ) -> np.ndarray:
        """float32 [n, z_dim], independent of ``scale``; written into ``out`` when given."""
        if out is None:
            out = np.empty((n, self.z_dim), dtype=np.float32)
        self._draw_into(out, rng)
        return out

    @abstractmethod
    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """Fill ``out`` (float32 [n, z_dim]) with ``n`` draws of ``base``."""

    @abstractmethod
    def with_scale(self, scale: float) -> Self: ...

    @abstractmethod
    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float: ...

    @abstractmethod
    def radius_moments(self) -> RadiusMoments:
        """Mean and std of ``|z|`` at this scale."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """float32 [n, z_dim] = offset + scale * draw_base(n, rng)."""
        z = self.draw_base(n, rng)
        z *= np.float32(self.scale)
        z += self._offset
        return z


class UniformSampler(AffineSampler):
    """Each component independently uniform in ``[-b, b]`` (the study's method 2)."""

    name = "uniform"

    def __init__(self, b: float, z_dim: int) -> None:
        b = _check_scale(b)
        if z_dim < 1:
            raise ValueError(f"z_dim must be >= 1, got {z_dim}")
        super().__init__(np.zeros(int(z_dim)), b)

    @property
    def b(self) -> float:
        return self.scale

    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        rng.random(out=out, dtype=np.float32)
        out *= 2
        out -= 1

    def with_scale(self, scale: float) -> UniformSampler:
        return UniformSampler(scale, self.z_dim)

    def radius_moments(self) -> RadiusMoments:
        return uniform_radius_moments(self.scale, self.z_dim)

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """Exact: sum over components of log10(|[lo, hi] & [-b, b]| / 2b)."""
        return float(np.sum(self.component_log10_probabilities(lo, hi)))

    def component_log10_probabilities(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """log10 P(lo_i <= z_i <= hi_i) per component (the terms of the exact sum)."""
        lo, hi = _as_window(lo, hi, self.z_dim)
        b = self.scale
        overlap = np.clip(np.minimum(hi, b) - np.maximum(lo, -b), 0.0, None)
        with np.errstate(divide="ignore"):
            log10_p: np.ndarray = np.log10(overlap / (2 * b))
        return log10_p


class GaussianSampler(AffineSampler):
    """Independent normal per component, ``N(mu_i, (scale * sigma_i)^2)``.

    ``mu`` and ``sigma`` come from the per-component fits of the real latents; ``scale``
    widens or narrows every component at once.
    """

    name = "gaussian"

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, scale: float = 1.0) -> None:
        # float64 for the probabilities, float32 copies for the draws
        self.mu = np.asarray(mu, dtype=np.float64).ravel()
        self.sigma = np.asarray(sigma, dtype=np.float64).ravel()
        if self.mu.shape != self.sigma.shape or self.mu.size == 0:
            raise ValueError(
                "mu and sigma must be equal-length vectors, "
                f"got {self.mu.shape}, {self.sigma.shape}"
            )
        if not np.all(self.sigma > 0) or not np.all(np.isfinite(self.sigma)):
            raise ValueError("every sigma must be positive and finite")
        self._sigma32 = self.sigma.astype(np.float32)
        super().__init__(self.mu, scale)

    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        rng.standard_normal(out=out, dtype=np.float32)
        out *= self._sigma32

    def with_scale(self, scale: float) -> GaussianSampler:
        return GaussianSampler(self.mu, self.sigma, scale)

    def radius_moments(self) -> RadiusMoments:
        return gaussian_radius_moments(self.mu, self.scale * self.sigma, "exact")

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """Exact: sum over components of log10(Phi(b_i) - Phi(a_i)), in log space."""
        return float(np.sum(self.component_log10_probabilities(lo, hi)))

    def component_log10_probabilities(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """log10 P(lo_i <= z_i <= hi_i) per component (the terms of the exact sum)."""
        lo, hi = _as_window(lo, hi, self.z_dim)
        sd = self.scale * self.sigma
        return log_normal_interval((lo - self.mu) / sd, (hi - self.mu) / sd) / LN10


class MVNSampler(AffineSampler):
    """Multivariate normal ``N(mean, scale^2 * cov)`` with the real latents' full covariance.

    ``cov`` is factored once for sampling (Cholesky; a tiny diagonal jitter is added when it
    is only semi-definite, as a sample covariance of few images can be). The window
    probability is the GHK estimate (see :meth:`window_log10_probability`), reproducible
    through ``ghk_draws`` and ``ghk_seed``.
    """

    name = "mvn"

    def __init__(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        scale: float = 1.0,
        *,
        ghk_draws: int = 2048,
        ghk_seed: int = 0,
        _chol: np.ndarray | None = None,
    ) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).ravel()
        d = self.mean.size
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != (d, d) or d == 0:
            raise ValueError(f"cov must be [{d}, {d}], got {cov.shape}")
        self.cov = cov
        self.cholesky = _chol if _chol is not None else cholesky_psd(cov)
        self._chol32 = self.cholesky.T.astype(np.float32)  # base = e @ L.T
        super().__init__(self.mean, scale)
        self.ghk_draws = int(ghk_draws)
        self.ghk_seed = int(ghk_seed)
        self.last_relative_se: float = float("nan")

    @classmethod
    def from_latents(cls, latents: np.ndarray, scale: float = 1.0, **kwargs: Any) -> MVNSampler:
        """Mean and (unbiased) covariance of real latents ``[n_images, z_dim]``."""
        x = np.asarray(latents)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"latents must be [n >= 2, z_dim], got {x.shape}")
        return cls(*mean_and_covariance(x), scale, **kwargs)

    def _draw_into(self, out: np.ndarray, rng: np.random.Generator) -> None:
        np.matmul(rng.standard_normal(out.shape, dtype=np.float32), self._chol32, out=out)

    def with_scale(self, scale: float) -> MVNSampler:
        return self._remade(scale, self.ghk_draws)

    def with_ghk_draws(self, ghk_draws: int) -> MVNSampler:
        """The same sampler with a cheaper (or dearer) GHK estimate of its window probability."""
        return self._remade(self.scale, ghk_draws)

    def radius_moments(self) -> RadiusMoments:
        return mvn_radius_moments(self.mean, self.scale**2 * self.cov, "exact")

    def _remade(self, scale: float, ghk_draws: int) -> MVNSampler:
        """A new sampler of the same normal (its Cholesky factor reused, not recomputed)."""
        return MVNSampler(
            self.mean,
            self.cov,
            scale,
            ghk_draws=ghk_draws,
            ghk_seed=self.ghk_seed,
            _chol=self.cholesky,
        )

    def window_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """GHK estimate of log10 P(lo <= z <= hi): an estimate, not an exact value.

        See :func:`ghk_log_replicates`. The relative standard error of the estimated ``P``
        (from independent randomisations) is left in ``last_relative_se``.
        """
        lo, hi = _as_window(lo, hi, self.z_dim)
        log_p, rel_se = ghk_combine(self._log_replicates(lo, hi))
        self.last_relative_se = rel_se
        return log_p / LN10

    def window_log10_probabilities(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """:meth:`window_log10_probability` of a batch of windows ``[B, z_dim]`` in one GHK
        pass (:func:`ghk_log_replicates`): ``[B]`` estimates."""
        logs = self._log_replicates(np.atleast_2d(lo), np.atleast_2d(hi))
        return np.array([ghk_combine(row)[0] for row in logs]) / LN10

    def _log_replicates(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The GHK replicates of ``ln P`` of one window ``[z_dim]`` or a batch ``[B, z_dim]``."""
        return ghk_log_replicates(
            (lo - self.mean) / self.scale,
            (hi - self.mean) / self.scale,
            self.cov,
            n_draws=self.ghk_draws,
            seed=self.ghk_seed,
        )

    def independent_log10_probability(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """The product of the marginal window probabilities: exact only without correlations."""
        sd = self.scale * np.sqrt(np.diag(self.cov))
        return GaussianSampler(self.mean, sd).window_log10_probability(lo, hi)


def cholesky_psd(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive (semi-)definite matrix.

    A sample covariance of few latents may be singular; then the smallest jitter
    ``eps * mean(diag)`` (eps from 1e-12 up) that makes it positive definite is added.
    """
    cov = 0.5 * (cov + cov.T)
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        pass
    base = float(np.mean(np.diag(cov))) or 1.0
    for eps in 10.0 ** np.arange(-12, -1):
        try:
            return np.linalg.cholesky(cov + eps * base * np.eye(cov.shape[0]))
        except np.linalg.LinAlgError:
            continue
    raise ValueError("covariance is not positive semi-definite")


GHK_REPLICATES = 8  # independent scramblings: the relative error's degrees of freedom + 1


def ghk_combine(log_each: np.ndarray) -> tuple[float, float]:
    """``(ln P, relative std error of P)`` from the replicates' ``ln P`` estimates."""
    log_each = np.asarray(log_each, dtype=np.float64).ravel()
    if log_each.size == 0 or not np.any(np.isfinite(log_each)):
        return -math.inf, math.nan
    log_mean = float(logsumexp(log_each) - math.log(log_each.size))
    if log_each.size < 2 or not math.isfinite(log_mean):
        return log_mean, math.nan
    ratio = np.exp(log_each - log_mean)
    return log_mean, float(np.std(ratio, ddof=1) / math.sqrt(ratio.size))


@on_one_blas_thread  # factors a few hundred wide: threads cost more than they give
def ghk_log_replicates(
    lo: np.ndarray,
    hi: np.ndarray,
    cov: np.ndarray,
    *,
    n_draws: int = 2048,
    n_replicates: int = GHK_REPLICATES,
    seed: int = 0,
) -> np.ndarray:
    """``n_replicates`` independent GHK estimates of ``ln P(lo <= x <= hi)`` for
    ``x ~ N(0, cov)``; :func:`ghk_combine` makes them one estimate with its relative standard
    error (``(-inf, nan)`` for an empty window).

    GHK (Geweke-Hajivassiliou-Keane; Genz 1992 in its quasi-Monte Carlo form): with
    ``x = L e``, component i constrains ``e_i`` given ``e_0..e_{i-1}`` to an interval
    ``[a_i, b_i]``; drawing ``e_i`` from the normal truncated to it and weighting each path
    by ``prod_i (Phi(b_i) - Phi(a_i))`` estimates ``P`` without bias, and far below what
    plain sampling can reach (every path contributes, none has to land in the window).

    - Variables are ordered most constrained first (smallest marginal window probability),
      which lowers the weights' variance; ``L`` is the Cholesky factor in that order.
    - The uniforms are scrambled Sobol points (randomised QMC): ``n_replicates``
      independent scramblings of ``n_draws / n_replicates`` points each. Their spread gives
      the standard error; the weights' own spread would not be valid for QMC points.
    - Log space throughout (``log_ndtr``, ``ndtri_exp``, ``logsumexp``): 1e-300 is as
      representable as 0.5.

    ``lo``, ``hi``: one window ``[d]`` (returns ``[n_replicates]``), or a batch ``[B, d]`` of
    windows under the same covariance (returns ``[B, n_replicates]``). A batch is one pass of
    the recursion over ``B x n_draws`` paths: one Cholesky factor, variables ordered by the
    batch's mean window (any order is unbiased; the order only sets the variance), so the
    per-variable Python work is paid once, not ``B`` times. All ``-inf`` for an empty
    window. Estimates with the same ``seed`` share their scrambled points replicate by
    replicate (common random numbers), so a sum over them (a mixture's components) is
    combined per replicate first.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    single = lo.ndim == 1
    lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
    batch, d = lo.shape
    sd = np.sqrt(np.diag(cov))
    order = np.argsort(log_normal_interval(lo.mean(0) / sd, hi.mean(0) / sd), kind="stable")
    chol = cholesky_psd(np.asarray(cov, dtype=np.float64)[np.ix_(order, order)])
    lo, hi = lo[:, order], hi[:, order]
    n_rep = max(1, int(n_replicates))
    per = max(1, int(n_draws) // n_rep)
    log_u = _sobol_log_uniforms(d, per, n_rep, int(seed))  # [d, n]: a variable's row
    u = _sobol_uniforms(d, per, n_rep, int(seed))
    n = log_u.shape[1]
    # variables major, paths contiguous: every per-variable step reads and writes rows.
    # shift[:, j] = sum_{i < j} L[j, i] e_i: rank-1 updates inside a block of variables, one
    # matrix product per block for the variables after it (BLAS-3 instead of d growing gemv)
    shift = np.zeros((batch, d, n))
    e = np.zeros((batch, d, n))
    log_w = np.zeros((batch, n))
    empty = False
    for start in range(0, d, GHK_BLOCK):
        stop = min(start + GHK_BLOCK, d)
        for i in range(start, stop):
            a = (lo[:, i, None] - shift[:, i]) / chol[i, i]
            b = (hi[:, i, None] - shift[:, i]) / chol[i, i]
            log_p, draw, upper = _truncated_normal_step(a, b, log_u[i], u[i])
            empty = not np.any(np.isfinite(log_p))
            if empty:  # every window of the batch is empty: nothing left to estimate
                break
            log_w += log_p
            # mirrored back when the window was above 0; an empty window's paths (weight 0)
            # get 0
            draw = np.where(upper, -draw, draw)
            e[:, i] = np.where(np.isfinite(draw), draw, 0.0)
            if i + 1 < stop:
                shift[:, i + 1 : stop] += chol[i + 1 : stop, i, None] * e[:, i, None]
        if empty:
            break
        if stop < d:
            shift[:, stop:] += chol[stop:, start:stop] @ e[:, start:stop]
    if empty:
        out = np.full((batch, n_rep), -math.inf)
    else:
        with np.errstate(divide="ignore"):  # a window empty on its own: its paths weigh 0
            out = logsumexp(log_w.reshape(batch, n_rep, per), axis=2) - math.log(per)
    return out[0] if single else out


LINEAR_FLOOR = -30.0  # Phi(-30) = 5e-198: above it Phi and its inverse keep their digits
BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _truncated_normal_step(
    a: np.ndarray, b: np.ndarray, log_u: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One GHK variable: ``(log P(a <= e <= b), e drawn from the normal truncated to it
    (before un-mirroring), mirrored)``, ``e = Phi^-1(Phi(lo) + u (Phi(hi) - Phi(lo)))``.

    Windows above 0 are mirrored below it, so ``Phi`` of both ends is small or straddles
    0.5 and the difference keeps its digits. When every mirrored upper end is above
    :data:`LINEAR_FLOOR` (the usual case) ``ndtr``/``ndtri`` do it directly, about twice as
    fast; otherwise in log space (``log_ndtr``, ``ndtri_exp``), where 1e-300 is as
    representable as 0.5."""
    upper = a > 0
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    if hi.size and float(hi.min()) > LINEAR_FLOOR:
        p_lo = ndtr(lo)
        p = np.maximum(ndtr(hi) - p_lo, 0.0)
        with np.errstate(divide="ignore"):
            log_p = np.where(hi > lo, np.log(p), -np.inf)
        return log_p, ndtri(np.minimum(p_lo + u * p, BELOW_ONE)), upper
    log_p, log_lower, _ = _log_normal_interval(a, b)
    return log_p, ndtri_exp(np.logaddexp(log_lower, log_u + log_p)), upper


@functools.lru_cache(maxsize=8)
def _sobol_uniforms(d: int, per: int, n_replicates: int, seed: int) -> np.ndarray:
    """:func:`_sobol_log_uniforms` as plain uniforms, ``[d, n_rep * per]``."""
    out: np.ndarray = np.exp(_sobol_log_uniforms(d, per, n_replicates, seed))
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _sobol_log_uniforms(d: int, per: int, n_replicates: int, seed: int) -> np.ndarray:
    """log of ``n_replicates`` independently scrambled Sobol point sets, ``[d, n_rep * per]``
    (a variable's draws contiguous, as the GHK recursion reads them).

    Cached: every window of one evaluation reuses the same points (common random numbers
    across k and scales, and scrambling 256 dimensions is not free).
    """
    from scipy.stats import qmc  # scipy.stats: ~0.5 s, only for Sobol points

    seeds = np.random.SeedSequence(seed).spawn(n_replicates)
    with warnings.catch_warnings():  # "balance properties" warning for non powers of 2
        warnings.simplefilter("ignore", UserWarning)
        u = np.concatenate(
            [qmc.Sobol(d, scramble=True, rng=np.random.default_rng(s)).random(per) for s in seeds]
        )
    out: np.ndarray = np.ascontiguousarray(np.log(np.clip(u, 1e-300, 1.0)).T)
    out.flags.writeable = False
    return out


def grid_log10_point_count(b: float, spacing: float, z_dim: int) -> float:
    """log10 of the number of points of a regular grid over ``[-b, b]^z_dim`` (method 1).

    ``floor(2b / spacing) + 1`` points per axis (both ends when they fall on the grid), to
    the power ``z_dim``: 5^256 ~ 10^179 points for b = 1, spacing 0.5, 256 dimensions.
    """
    return z_dim * math.log10(grid_points_per_axis(b, spacing))


def grid_points_per_axis(b: float, spacing: float) -> int:
    """Points ``-b + j * spacing`` in ``[-b, b]``: ``floor(2b / spacing) + 1``."""
    return math.floor(2 * _check_scale(b) / _check_scale(spacing) + 1e-9) + 1
