"""The hit test: does a generated vector land in the real latent region?

A vector ``z`` hits for the half-width multiple ``k`` when every component lies in its
window ``[mu_i - k*hw_i, mu_i + k*hw_i]`` (docs/science.md, "The study").

The fast path, :func:`hit_grid`, evaluates a whole grid of sampler scales (``b``) times
multiples (``k``) on one set of draws:

- the sampler is affine, ``z = offset + b * y``; ``y`` is drawn once per chunk and reused
  for every ``b`` (common random numbers: the b-axis is compared on identical draws);
- per vector and ``b`` it computes the *needed multiple* ``t = max_i |z_i - mu_i| / hw_i``
  once; the vector hits for every ``k >= t``, so all ``k`` cost one comparison of ``n``
  numbers instead of a pass over ``n x z_dim`` values each;
- float32, and fixed-size chunks with reused buffers, so memory does not grow with
  ``n_samples`` (10 million vectors run in a few tens of MB);
- the radius of ``offset + b*y`` follows from ``|y|^2`` and ``offset . y`` (computed once)
  for every ``b``;
- a *mixture* sampler (``gmm``: ``draw_labelled_base`` and ``component_offsets``) scales
  around each component's mean: the offset is then per vector, its component's.

:func:`hit_grid_loop` is the straightforward reference (draw, compare per ``(b, k)``); tests
check the fast path against it and the benchmark measures both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from aelatent.core.samplers import Sampler

DEFAULT_CHUNK = 4096


def hit_window(mu: np.ndarray, hw: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """The window ``[mu - k*hw, mu + k*hw]`` per component, float64."""
    mu = np.asarray(mu, dtype=np.float64)
    hw = np.asarray(hw, dtype=np.float64)
    return mu - k * hw, mu + k * hw


@dataclass(frozen=True)
class HitGrid:
    """Hit counts and what goes with them, for one sampler over ``scales x ks``.

    ``miss_counts[j, m, c]`` is the number of vectors with exactly ``c`` components outside
    their window, at ``scales[j]`` and ``ks[miss_k_index[m]]``. ``radii`` keeps the first
    ``n_radii`` sample radii per scale, for plots; mean and std use every vector.
    """

    sampler: str
    scales: np.ndarray  # float64 [n_b]
    ks: np.ndarray  # float64 [n_k]
    n: int
    hits: np.ndarray  # int64 [n_b, n_k]
    log10_p_hit: np.ndarray  # float64 [n_b, n_k]
    log10_p_rel_se: np.ndarray  # float64 [n_b, n_k]: relative error of an estimated P; NaN if exact
    miss_k_index: np.ndarray  # int64 [n_m], indices into ks
    miss_counts: np.ndarray  # int64 [n_b, n_m, z_dim + 1]
    radius_mean: np.ndarray  # float64 [n_b]
    radius_std: np.ndarray  # float64 [n_b]
    radii: np.ndarray  # float32 [n_b, n_radii]

    @property
    def hit_rate(self) -> np.ndarray:
        rate: np.ndarray = self.hits / self.n
        return rate

    @property
    def z_dim(self) -> int:
        return int(self.miss_counts.shape[-1]) - 1

    def miss_count_mean(self) -> np.ndarray:
        """Mean number of missing components per vector, ``[n_b, n_m]``."""
        c = np.arange(self.miss_counts.shape[-1])
        mean: np.ndarray = (self.miss_counts * c).sum(-1) / self.n
        return mean


def _check_grid(
    scales: Sequence[float], ks: Sequence[float], mu: np.ndarray, hw: np.ndarray, z_dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    scales_a = np.asarray(scales, dtype=np.float64).ravel()
    ks_a = np.asarray(ks, dtype=np.float64).ravel()
    if scales_a.size == 0 or np.any(~(scales_a > 0)):
        raise ValueError(f"scales must be positive, got {scales_a.tolist()}")
    if ks_a.size == 0 or np.any(~(ks_a > 0)):
        raise ValueError(f"ks must be positive, got {ks_a.tolist()}")
    mu_a = np.asarray(mu, dtype=np.float64).ravel()
    hw_a = np.asarray(hw, dtype=np.float64).ravel()
    if mu_a.shape != (z_dim,) or hw_a.shape != (z_dim,):
        raise ValueError(f"mu and hw must have {z_dim} components, got {mu_a.shape}, {hw_a.shape}")
    if np.any(~(hw_a > 0)) or not np.all(np.isfinite(hw_a)):
        raise ValueError("every half-width hw must be positive and finite")
    return scales_a, ks_a, mu_a, hw_a


class _RunningMoments:
    """Mean and std of a stream, per column, with a shift against cancellation."""

    def __init__(self, width: int) -> None:
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1 = np.zeros(width)
        self.s2 = np.zeros(width)

    def add(self, x: np.ndarray) -> None:  # x: [m, width]
        if self.shift is None:
            self.shift = x.mean(axis=0)
        d = x - self.shift
        self.n += x.shape[0]
        self.s1 += d.sum(axis=0)
        self.s2 += (d * d).sum(axis=0)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.shift is not None
        mean = self.shift + self.s1 / self.n
        var = (self.s2 - self.s1**2 / self.n) / max(self.n - 1, 1)
        return mean, np.sqrt(np.clip(var, 0.0, None))


def hit_grid(
    sampler: Sampler,
    scales: Sequence[float],
    ks: Sequence[float],
    mu: np.ndarray,
    hw: np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
    *,
    miss_ks: Sequence[float] | None = None,
    n_radii: int = 20_000,
    chunk_size: int = DEFAULT_CHUNK,
) -> HitGrid:
    """Hit counts of ``sampler.with_scale(b)`` for every ``b`` in ``scales`` and ``k`` in ``ks``.

    ``miss_ks``: the multiples for which the per-vector number of missing components is
    histogrammed (default: all of ``ks``; each one costs about a fifth of the hit test).
    The draws equal ``sampler.with_scale(b).sample(n_samples, rng)`` for every ``b``.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    d = sampler.z_dim
    scales_a, ks_a, mu_a, hw_a = _check_grid(scales, ks, mu, hw, d)
    if miss_ks is None:
        miss_idx = np.arange(ks_a.size)
    else:
        miss_idx = np.array([int(np.argmin(np.abs(ks_a - k))) for k in miss_ks], dtype=np.int64)
        if miss_idx.size and not np.allclose(ks_a[miss_idx], np.asarray(miss_ks, dtype=np.float64)):
            raise ValueError(f"miss_ks {list(miss_ks)} must be a subset of ks {ks_a.tolist()}")
    miss_k32 = ks_a[miss_idx].astype(np.float32)
    ks32 = ks_a.astype(np.float32)[None, :]
    n_b, n_k, n_m = scales_a.size, ks_a.size, miss_idx.size

    inv_hw = 1.0 / hw_a
    # |offset + b*y - mu| / hw = |y * (b/hw) + (offset - mu)/hw|
    slope = (scales_a[:, None] * inv_hw[None, :]).astype(np.float32)  # [n_b, d]
    labelled = getattr(sampler, "draw_labelled_base", None)
    # one offset per vector (a mixture: its component's mean), or one for all: rows of `table`
    table = np.atleast_2d(
        np.asarray(
            cast(Any, sampler).component_offsets if labelled is not None else sampler.offset,
            dtype=np.float64,
        )
    )
    table_intercept = ((table - mu_a) * inv_hw).astype(np.float32)  # [n_offsets, d]
    table_sq = np.einsum("ij,ij->i", table, table)
    table32 = table.astype(np.float32)
    has_offset = bool(np.any(table != 0))

    hits = np.zeros((n_b, n_k), dtype=np.int64)
    miss_counts = np.zeros((n_b, n_m, d + 1), dtype=np.int64)
    moments = _RunningMoments(n_b)
    n_keep = min(int(n_radii), n_samples)
    radii = np.empty((n_b, n_keep), dtype=np.float32)

    chunk = max(1, min(int(chunk_size), n_samples))
    y_buf = np.empty((chunk, d), dtype=np.float32)
    r_buf = np.empty((chunk, d), dtype=np.float32)
    miss_buf = np.empty((chunk, d), dtype=np.bool_)
    done = 0
    while done < n_samples:
        m = min(chunk, n_samples - done)
        if labelled is not None:
            labels, y = labelled(m, rng, out=y_buf[:m])
            intercept = table_intercept[labels]  # [m, d]
            offset_sq = table_sq[labels]
            y_off = np.einsum("ij,ij->i", y, table32[labels], dtype=np.float64)
        else:
            y = sampler.draw_base(m, rng, out=y_buf[:m])
            intercept = table_intercept[0]
            offset_sq = table_sq[0]
            y_off = (y @ table32[0]).astype(np.float64) if has_offset else 0.0
        r = r_buf[:m]
        y_sq = np.einsum("ij,ij->i", y, y, dtype=np.float64)
        b = scales_a[:, None]
        rad = np.sqrt(
            np.clip(offset_sq + 2 * b * y_off + b * b * y_sq[None, :], 0.0, None)
        )  # [n_b, m]
        moments.add(rad.T)
        if done < n_keep:
            take = min(m, n_keep - done)
            radii[:, done : done + take] = rad[:, :take]
        for j in range(n_b):
            np.multiply(y, slope[j], out=r)
            r += intercept
            np.abs(r, out=r)
            need = r.max(axis=1)
            hits[j] += np.count_nonzero(need[:, None] <= ks32, axis=0)
            need_max = need.max()
            for mm in range(n_m):
                if need_max <= miss_k32[mm]:  # every vector hits: nothing misses
                    miss_counts[j, mm, 0] += m
                    continue
                np.greater(r, miss_k32[mm], out=miss_buf[:m])
                n_miss = miss_buf[:m].view(np.uint8).sum(axis=1, dtype=np.uint16)
                miss_counts[j, mm] += np.bincount(n_miss, minlength=d + 1)
        done += m

    mean, std = moments.mean_std()
    log10_p = np.empty((n_b, n_k))
    rel_se = np.full((n_b, n_k), np.nan)
    for j, s in enumerate(scales_a):
        at_scale = sampler.with_scale(s)
        for i, k in enumerate(ks_a):
            log10_p[j, i] = at_scale.window_log10_probability(*hit_window(mu_a, hw_a, k))
            # estimated (not exact) probabilities leave their error behind (GHK of mvn)
            rel_se[j, i] = getattr(at_scale, "last_relative_se", np.nan)
    return HitGrid(
        sampler=sampler.name,
        scales=scales_a,
        ks=ks_a,
        n=int(n_samples),
        hits=hits,
        log10_p_hit=log10_p,
        log10_p_rel_se=rel_se,
        miss_k_index=miss_idx,
        miss_counts=miss_counts,
        radius_mean=mean,
        radius_std=std,
        radii=radii,
    )


def hit_grid_loop(
    sampler: Sampler,
    scales: Sequence[float],
    ks: Sequence[float],
    mu: np.ndarray,
    hw: np.ndarray,
    n_samples: int,
    rng: np.random.Generator | int,
) -> np.ndarray:
    """The straightforward reference: per ``(b, k)`` draw, compare with the window, count.

    ``rng`` a Generator: fresh draws for every ``(b, k)`` (the baseline the benchmark
    times). ``rng`` an int seed: every ``(b, k)`` restarts from that seed, i.e. sees exactly
    the draws :func:`hit_grid` sees with ``default_rng(seed)`` (what the tests compare).
    Returns int64 hits ``[n_b, n_k]``.
    """
    scales_a, ks_a, mu_a, hw_a = _check_grid(scales, ks, mu, hw, sampler.z_dim)
    hits = np.zeros((scales_a.size, ks_a.size), dtype=np.int64)
    for j, b in enumerate(scales_a):
        at_b = sampler.with_scale(b)
        for i, k in enumerate(ks_a):
            gen = np.random.default_rng(rng) if isinstance(rng, int) else rng
            z = at_b.sample(n_samples, gen)
            lo, hi = hit_window(mu_a, hw_a, k)
            hits[j, i] = np.count_nonzero(np.all((z >= lo) & (z <= hi), axis=1))
    return hits
