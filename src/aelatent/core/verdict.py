"""The verdict on a generator: can its vectors be told from real latents it was not fitted to?

The box, radius and k-NN tests each look at one aspect (every component alone, one length,
whether a vector falls in *some* real ball); a generator that fills the box corner to corner
passes them and decodes to grey blobs. The verdict looks at the whole distribution:

- two-sample tests (:mod:`aelatent.core.two_sample`): a linear and a non-linear classifier
  two-sample test (C2ST), MMD^2, the Fréchet distance of the two Gaussian fits;
- the ellipsoid region test (:mod:`aelatent.core.latent_region`): the hit test with the
  correlations in it;
- the decoder's cycle (:mod:`aelatent.core.cycle`), when the job passes one: against the
  held-out images' cycle errors (real faces the network was not trained on).

**Cross-fitting.** A sampler fitted to the latents it is scored against looks better than
chance (it copies their sample covariance), so every score is out of sample. Each *split*
permutes the training latents at random (over images: latents carry identity, and the
built-in faces are ordered by person, so an ordered split would measure the person shift)
into a *fit* half A and a *test* half B. The sampler is fitted on A; its vectors are tested
against B. The ellipsoid region is B's alone (covariance from B's first half, radius from its
second): a region fitted on A, where the sampler was fitted too, let an mvn 20% too wide fall
inside it every time when A has fewer latents than dimensions.

**Reference rows**, scored by the same tests at the same sizes:

- ``real``: A against B, real latents against real latents of the same people: the row that
  must come out indistinguishable (the tests' calibration, on the user's own data);
- ``heldout``: the held-out images against B: new people, the encoder's generalisation,
  reported as what it is (it may well differ).

**Over splits** (``n_splits``, default 3): the statistic is the mean of the splits', the
interval the mean of their interval ends (each split's interval holds for its own estimate;
the mean of the splits' estimates varies no more than one of them, so this is conservative),
and the p-value the first split's own test, exact (the cycle and the FD, the dear ones,
run on the first split only: :data:`FIRST_SPLIT_ONLY`). Twice the median of the splits' p-values
(valid under any dependence: Meinshausen, Meier & Bühlmann 2009) was measured far below the
nominal rate (0 of 200 real-against-real data sets at n = 40 and 400, where the first split
alone gave 1.5% to 8.5%: ``benchmarks/bench_verdict.py``). A row *differs* when Holm's
procedure over its tests rejects at ``alpha`` (family-wise). The MMD runs 1,000
permutations here (its p-value floor 0.001, below Holm's first threshold); the FD's 100
permutations floor its p-value at 0.0099, so it rejects a row only beside another test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aelatent.core.cycle import CycleCheck
from aelatent.core.latent_region import DEFAULT_QUANTILE, EllipsoidRegion, fit_region
from aelatent.core.samplers import Sampler
from aelatent.core.two_sample import TESTS as TWO_SAMPLE_TESTS
from aelatent.core.two_sample import (
    TwoSampleResult,
    detectable_accuracy,
    min_vectors,
    mmd_test,
    run_test,
)

VERDICT_TESTS: tuple[str, ...] = (*TWO_SAMPLE_TESTS, "ellipsoid", "cycle")
DEFAULT_SPLITS = 3
ALPHA = 0.05
REAL = "real"  # the exchangeable real-against-real row
HELDOUT = "heldout"  # the held-out people's row
MIN_TEST_LATENTS = 8  # the test half B: at least this many (and each test's own minimum)
MMD_PERMUTATIONS = 1000
FIRST_SPLIT_ONLY = ("cycle", "fd")
"""Tests run on the first split alone (it gives the p-value): the decoder's cycle (a decode
and an encode per row) and the FD (100 bootstrap and 100 permutation factorisations) were
most of the verdict's time (``benchmarks/bench_verdict.py``)."""

STATISTIC_NAMES = {
    "c2st_linear": "c2st_linear_acc",
    "c2st_nonlinear": "c2st_nonlinear_acc",
    "mmd": "mmd2",
    "fd": "fd",
    "ellipsoid": "ellipsoid_rate",
    "cycle": "cycle_ratio",
}
"""Each test's statistic as a metric name; its p-value is ``<test>_p``."""


@dataclass(frozen=True)
class Split:
    """One random split of the training latents: fit half, test half, and the region."""

    fit: np.ndarray  # A: a sampler is fitted here
    test: np.ndarray  # B: what generated vectors are tested against
    region: EllipsoidRegion  # covariance from B's first half, radius from its second
    seed: int


@dataclass(frozen=True)
class Criterion:
    """One test's result over the splits (see the module docstring for the aggregation)."""

    test: str
    statistic: float
    lo: float
    hi: float
    p_value: float
    n_real: int
    n_generated: int
    per_split: tuple[float, ...]


@dataclass(frozen=True)
class VerdictRow:
    """Every test's result for one generator setting (or a reference row)."""

    name: str  # sampler name, or REAL / HELDOUT
    axis: str  # "b", "scale", or "" for a reference row
    value: float  # b or scale (nan for a reference row)
    criteria: dict[str, Criterion]
    detectable_accuracy: float  # the C2ST accuracy detectable with 80% power at these sizes
    alpha: float = ALPHA

    @property
    def label(self) -> str:
        if self.name == REAL:
            return "real latents (random split)"
        if self.name == HELDOUT:
            return "held-out images (new people)"
        return f"{self.name} {self.axis}={self.value:g}"

    @property
    def rejected_by(self) -> tuple[str, ...]:
        """The tests Holm's procedure rejects at ``alpha`` (family-wise over this row)."""
        ordered = sorted(self.criteria.values(), key=lambda c: c.p_value)
        rejected: list[str] = []
        m = len(ordered)
        for i, criterion in enumerate(ordered):
            if not criterion.p_value <= self.alpha / (m - i):
                break
            rejected.append(criterion.test)
        return tuple(rejected)

    @property
    def verdict(self) -> str:
        """``indistinguishable`` (no test rejects) or ``differs``."""
        return "differs" if self.rejected_by else "indistinguishable"

    def metrics(self) -> dict[str, float]:
        """Metric names: ``<statistic>/<sampler>/b<value>`` (``_lo``, ``_hi``) and
        ``<test>_p/...``; reference rows ``.../real`` and ``.../heldout``."""
        where = self.name if self.name in (REAL, HELDOUT) else f"{self.name}/b{self.value:g}"
        out: dict[str, float] = {}
        for test, c in self.criteria.items():
            stat = STATISTIC_NAMES[test]
            out[f"{stat}/{where}"] = c.statistic
            if math.isfinite(c.lo) and math.isfinite(c.hi):
                out[f"{stat}_lo/{where}"] = c.lo
                out[f"{stat}_hi/{where}"] = c.hi
            out[f"{test}_p/{where}"] = c.p_value
        out[f"verdict_differs/{where}"] = float(bool(self.rejected_by))
        out[f"c2st_detectable_acc/{where}"] = self.detectable_accuracy
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "axis": self.axis,
            "value": None if math.isnan(self.value) else self.value,
            "verdict": self.verdict,
            "rejected_by": list(self.rejected_by),
            "alpha": self.alpha,
            "detectable_accuracy": self.detectable_accuracy,
            "criteria": {
                t: {
                    "statistic": c.statistic,
                    "lo": _json_number(c.lo),
                    "hi": _json_number(c.hi),
                    "p_value": c.p_value,
                    "n_real": c.n_real,
                    "n_generated": c.n_generated,
                    "per_split": list(c.per_split),
                }
                for t, c in self.criteria.items()
            },
        }


def rows_to_json(rows: Sequence[VerdictRow], context: Mapping[str, Any]) -> str:
    """``tables/verdict.json``: the rows (reference rows first) and how they were measured."""
    return json.dumps({**context, "rows": [r.as_dict() for r in rows]}, indent=1)


def rows_from_json(text: str) -> list[dict[str, Any]]:
    """The rows of a ``tables/verdict.json`` as plain dicts (the report reads them)."""
    data = json.loads(text)
    rows: list[dict[str, Any]] = data.get("rows", [])
    return rows


def check_tests(tests: Sequence[str]) -> tuple[str, ...]:
    """The tests in their canonical order; ValueError naming an unknown one."""
    unknown = [t for t in tests if t not in VERDICT_TESTS]
    if unknown:
        raise ValueError(f"unknown test {unknown[0]!r}; expected {', '.join(VERDICT_TESTS)}")
    return tuple(t for t in VERDICT_TESTS if t in tests)


def min_training_latents(tests: Sequence[str]) -> int:
    """The fewest training latents a verdict with ``tests`` runs on: each half must hold
    every test's minimum, the region's quarter at least 2."""
    need = max([MIN_TEST_LATENTS, *(min_vectors(t) for t in tests if t in TWO_SAMPLE_TESTS)])
    return 2 * need


def make_splits(
    latents: np.ndarray, n_splits: int, seed: int, quantile: float = DEFAULT_QUANTILE
) -> list[Split]:
    """``n_splits`` random halvings of the training latents (over images), each with its
    region. The region's quantile is lowered to ``m / (m + 1)`` (the largest distance) when
    the ``m`` threshold latents are too few for ``quantile``."""
    x = np.asarray(latents, dtype=np.float64)
    n = x.shape[0]
    if n < 2 * MIN_TEST_LATENTS:
        raise ValueError(f"the verdict needs at least {2 * MIN_TEST_LATENTS} latents, got {n}")
    splits = []
    for s in range(n_splits):
        order = np.random.default_rng([seed, s, 7]).permutation(n)
        fit, test = x[order[: n // 2]], x[order[n // 2 :]]
        half = test.shape[0] // 2
        m = test.shape[0] - half  # threshold latents
        q = min(quantile, m / (m + 1))
        region = fit_region(test[:half], test[half:], q)
        splits.append(Split(fit, test, region, seed * 1000 + s))
    return splits


def fit_samplers(
    fit: Callable[[np.ndarray, int], Sampler], splits: Sequence[Split]
) -> list[Sampler]:
    """A sampler (scale 1) per split, fitted on its fit half: ``fit(latents, seed)``."""
    return [fit(split.fit, split.seed) for split in splits]


def real_rows(
    splits: Sequence[Split],
    heldout: np.ndarray,
    tests: Sequence[str],
    cycle: CycleCheck | None = None,
) -> list[VerdictRow]:
    """The reference rows: ``real`` (A against B) and, with held-out latents, ``heldout``
    (without the cycle test when the held-out latents are the cycle's own reference)."""
    rows = [_row(REAL, "", math.nan, splits, [s.fit for s in splits], tests, cycle)]
    if np.asarray(heldout).shape[0] >= 2:
        held = np.asarray(heldout, dtype=np.float64)
        own = cycle is not None and cycle.reference_name == HELDOUT
        kept = [t for t in tests if not (own and t == "cycle")]
        rows.append(_row(HELDOUT, "", math.nan, splits, [held] * len(splits), kept, cycle))
    return rows


def generator_row(
    name: str,
    axis: str,
    scale: float,
    fitted: Sequence[Sampler],
    splits: Sequence[Split],
    tests: Sequence[str],
    cycle: CycleCheck | None = None,
) -> VerdictRow:
    """The row of sampler ``name`` at ``scale``: per split, as many vectors as the test half
    holds, drawn from the sampler fitted on the fit half."""
    draws = [
        sampler.with_scale(scale)
        .sample(split.test.shape[0], np.random.default_rng([split.seed, 11]))
        .astype(np.float64)
        for sampler, split in zip(fitted, splits, strict=True)
    ]
    return _row(name, axis, scale, splits, draws, tests, cycle)


def _row(
    name: str,
    axis: str,
    value: float,
    splits: Sequence[Split],
    others: Sequence[np.ndarray],
    tests: Sequence[str],
    cycle: CycleCheck | None,
) -> VerdictRow:
    per_test: dict[str, list[TwoSampleResult]] = {t: [] for t in tests}
    for i, (split, other) in enumerate(zip(splits, others, strict=True)):
        for test in tests:
            if test in FIRST_SPLIT_ONLY and i > 0:
                continue
            if test == "mmd":  # a p-value floor below Holm's first threshold
                result = mmd_test(
                    split.test, other, seed=split.seed, n_permutations=MMD_PERMUTATIONS
                )
            elif test in TWO_SAMPLE_TESTS:
                result = run_test(test, split.test, other, seed=split.seed)
            elif test == "ellipsoid":
                # the real row's A: real latents the region (B's) never saw
                result = _ellipsoid(split.region, other)
            else:
                if cycle is None:
                    raise ValueError("the cycle test needs the train run's decoder and encoder")
                result = cycle.test(other)
            per_test[test].append(result)
    criteria = {t: _combine(t, results) for t, results in per_test.items()}
    n = min(s.test.shape[0] for s in splits)
    n_other = min(o.shape[0] for o in others)
    return VerdictRow(name, axis, value, criteria, detectable_accuracy(2 * min(n, n_other)))


def _ellipsoid(region: EllipsoidRegion, z: np.ndarray) -> TwoSampleResult:
    rate = region.rate(z)
    return TwoSampleResult(
        "ellipsoid",
        rate.rate,
        rate.lo,
        rate.hi,
        rate.p_value,
        0,
        rate.n,
        {"quantile": rate.reference},
    )


def _combine(test: str, results: Sequence[TwoSampleResult]) -> Criterion:
    stats = [r.statistic for r in results]
    p = results[0].p_value  # the first split's own test (module docstring)
    return Criterion(
        test,
        float(np.mean(stats)),
        float(np.mean([r.lo for r in results])),
        float(np.mean([r.hi for r in results])),
        p,
        min(r.n_real for r in results),
        min(r.n_generated for r in results),
        tuple(float(s) for s in stats),
    )


def rank(rows: Sequence[VerdictRow]) -> list[VerdictRow]:
    """Reference rows first, then generator rows best first: by the larger of the two C2ST
    accuracies (the classifier that tells the sets apart best), else by the number of tests
    that reject."""

    def key(row: VerdictRow) -> tuple[float, int]:
        accs = [
            row.criteria[t].statistic
            for t in ("c2st_linear", "c2st_nonlinear")
            if t in row.criteria
        ]
        return (max(accs) if accs else math.inf, len(row.rejected_by))

    refs = [r for r in rows if r.name in (REAL, HELDOUT)]
    return refs + sorted((r for r in rows if r.name not in (REAL, HELDOUT)), key=key)


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def criterion_text(c: dict[str, Any] | None, *, p_value: bool = True) -> str:
    """One criterion of a ``tables/verdict.json`` row as text: ``0.52 [0.47, 0.57] p=0.3``."""
    if c is None:
        return ""
    lo, hi = c.get("lo"), c.get("hi")
    interval = "" if lo is None or hi is None else f" [{lo:.3g}, {hi:.3g}]"
    return f"{c['statistic']:.3g}{interval}" + (f" p={c['p_value']:.2g}" if p_value else "")
