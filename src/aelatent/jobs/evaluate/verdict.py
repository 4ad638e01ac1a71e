"""The verdict inside ``evaluate``: can each sampler's vectors be told from real latents?

Glue between :mod:`aelatent.core.verdict` and the evaluate run: the splits of the training
latents (at most :data:`MAX_LATENTS`, a seeded random subset), the samplers refitted on each
split's fit half exactly as evaluate builds them on all latents (windows by the run's
estimator, then the registry's builder), the decoder's cycle, and what is logged:

- metrics ``<statistic>/<sampler>/b<b or scale>`` with ``_lo``/``_hi`` and ``<test>_p/...``
  (:meth:`aelatent.core.verdict.VerdictRow.metrics`), ``.../real`` and ``.../heldout`` for
  the reference rows, ``verdict_differs/...`` (1: some test rejects, Holm at 0.05);
- ``tables/verdict.json`` (every row, rewritten as each sampler finishes) and
  ``verdict/verdict.png`` (the non-linear C2ST accuracy per row, with the real row's band).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aelatent.core import verdict as core
from aelatent.core.cycle import CycleCheck, cycle_errors
from aelatent.core.sampler_registry import build_sampler, spec_of
from aelatent.core.samplers import Sampler
from aelatent.core.threads import one_blas_thread
from aelatent.core.verdict import VerdictRow, criterion_text
from aelatent.core.windows import estimate_windows
from aelatent.errors import UserError
from aelatent.plots.verdict import save_verdict_plot
from aelatent.schema import VERDICT_JSON, VERDICT_PNG

DEFAULT_TESTS = "auto"  # every test; the cycle only where the train run has a model
AUTO = "auto"
DEFAULT_SPLITS = str(core.DEFAULT_SPLITS)
MAX_SPLITS = 20
MIN_CYCLE_REFERENCE = 8  # held-out latents for the cycle's reference
MAX_LATENTS = 4000  # training latents the verdict uses (2,000 per half): the panel's cost
NONE = "none"


def parse_tests(text: str) -> tuple[str, ...]:
    """``auto``, ``all``, ``none`` or a comma list of
    :data:`aelatent.core.verdict.VERDICT_TESTS`. ``auto``: all but the FD (the dearest test,
    whose p-value floor never lets it decide a row alone; ``all`` or ``fd`` add it), and the
    cycle only where the run has a model (:func:`usable_tests`)."""
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if names == [NONE]:
        return ()
    if "all" in names:
        return core.VERDICT_TESTS
    if not names or AUTO in names:
        return tuple(t for t in core.VERDICT_TESTS if t != "fd")
    try:
        return core.check_tests(names)
    except ValueError as exc:
        raise UserError(f"verdict={text!r}: {exc}, a comma list of them, all or none") from None


def usable_tests(tests: Sequence[str], raw: str, has_model: bool) -> tuple[str, ...]:
    """``verdict=auto`` leaves the cycle out for a train run without a model (anything else
    asked for is checked, and refused, by the job)."""
    if str(raw).strip().lower() == AUTO and not has_model:
        return tuple(t for t in tests if t != "cycle")
    return tuple(tests)


def check_verdict_sizes(tests: Sequence[str], run_id: str, n_train: int) -> None:
    """UserError when the training latents are too few for the verdict's tests."""
    need = core.min_training_latents(tests)
    if tests and n_train < need:
        raise UserError(
            f"the verdict ({','.join(tests)}) needs at least {need} training latents (two "
            f"halves); train run {run_id!r} has {n_train}; pass -P verdict=none"
        )


def keras_cycle(autoencoder: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``z -> E(D(z))`` through the train run's own decoder and encoder."""
    from aelatent.model import decoder_of, encoder_of  # TensorFlow: decoder paths only

    decoder, encoder = decoder_of(autoencoder), encoder_of(autoencoder)

    def cycle(z: np.ndarray) -> np.ndarray:
        images = decoder.predict(np.asarray(z, dtype=np.float32), verbose=0, batch_size=256)
        out: np.ndarray = encoder.predict(images, verbose=0, batch_size=256)
        return out.astype(np.float64)

    return cycle


def cycle_check(
    cycle: Callable[[np.ndarray], np.ndarray], heldout: np.ndarray, training: np.ndarray
) -> CycleCheck:
    """The cycle with its reference errors: the held-out latents' (new faces), or, with
    fewer than :data:`MIN_CYCLE_REFERENCE` of them, the training latents' (stricter: the
    network was fitted to those images; the verdict's context names the reference)."""
    held = np.asarray(heldout, dtype=np.float64)
    name, reference = (
        (core.HELDOUT, held) if held.shape[0] >= MIN_CYCLE_REFERENCE else ("training", training)
    )
    return CycleCheck(cycle, cycle_errors(reference, cycle(reference)), name)


class Verdict:
    """The verdict of one evaluate run: reference rows at the start, a sampler's rows as it
    finishes."""

    def __init__(
        self,
        latents: np.ndarray,
        heldout: np.ndarray,
        tests: Sequence[str],
        n_splits: int,
        *,
        estimate: str,
        seed: int,
        cycle: Callable[[np.ndarray], np.ndarray] | None,
    ) -> None:
        x = np.asarray(latents)
        if x.shape[0] > MAX_LATENTS:
            x = x[
                np.sort(
                    np.random.default_rng([seed, 31]).choice(x.shape[0], MAX_LATENTS, replace=False)
                )
            ]
        self.tests = tuple(tests)
        self.estimate = estimate
        self.seed = seed
        self.n_latents = int(x.shape[0])
        self.cycle = None if cycle is None else cycle_check(cycle, heldout, x)
        # one BLAS thread: many small fits and products, 2 to 34 times slower on threads
        # spinning for shared cores (benchmarks/bench_verdict.py)
        with one_blas_thread():
            self.splits = core.make_splits(x, n_splits, seed)
            self.rows: list[VerdictRow] = core.real_rows(
                self.splits, heldout, self.tests, self.cycle
            )

    def _fit(self, name: str) -> Callable[[np.ndarray, int], Sampler]:
        def fit(latents: np.ndarray, seed: int) -> Sampler:
            windows = estimate_windows(latents, self.estimate, seed=seed)
            return build_sampler(name, windows.mu, windows.hw, latents, seed=seed)

        return fit

    def score(self, name: str, scales: Sequence[float]) -> list[VerdictRow]:
        """Rows of sampler ``name`` at each of ``scales`` (one fit per split for all)."""
        axis = spec_of(name).axis
        with one_blas_thread():
            fitted = core.fit_samplers(self._fit(name), self.splits)
            rows = [
                core.generator_row(
                    name, axis, float(s), fitted, self.splits, self.tests, self.cycle
                )
                for s in scales
            ]
        self.rows.extend(rows)
        return rows

    def start_metrics(self) -> dict[str, float]:
        out = {"verdict_n_latents": float(self.n_latents), "verdict_n_test": float(self.n_test)}
        for row in self.rows:
            out.update(row.metrics())
        return out

    @property
    def n_test(self) -> int:
        return int(self.splits[0].test.shape[0])

    def context(self) -> dict[str, Any]:
        return {
            "tests": list(self.tests),
            "n_splits": len(self.splits),
            "n_latents": self.n_latents,
            "n_test": self.n_test,
            "alpha": core.ALPHA,
            "cycle_reference": None if self.cycle is None else self.cycle.reference_name,
            "seed": self.seed,
        }

    def files(self, out: Path) -> list[Path]:
        """``tables/verdict.json`` and ``verdict/verdict.png`` of every row so far."""
        ranked = core.rank(self.rows)
        table = out / VERDICT_JSON
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(core.rows_to_json(ranked, self.context()))
        paths = [table]
        if any(t in self.tests for t in ("c2st_nonlinear", "c2st_linear")):
            paths.append(save_verdict_plot([r.as_dict() for r in ranked], out / VERDICT_PNG))
        return paths

    def summary(self, rows: Sequence[VerdictRow]) -> str:
        """One line per row: its verdict and the leading test's statistic."""
        return "\n".join(_line(r) for r in rows)

    def note(self) -> str:
        """The run description's lead: the ranked table in Markdown."""
        return verdict_markdown([r.as_dict() for r in core.rank(self.rows)], self.n_test)


def _line(row: VerdictRow) -> str:
    tests = ("c2st_nonlinear", "c2st_linear")
    lead = next((row.criteria[t] for t in tests if t in row.criteria), None)
    stat = ""
    if lead is not None:
        stat = (
            f", C2ST accuracy {lead.statistic:.3f} [{lead.lo:.3f}, {lead.hi:.3f}]"
            f" (p = {lead.p_value:.2g})"
        )
    why = f" by {', '.join(row.rejected_by)}" if row.rejected_by else ""
    return f"verdict {row.label}: {row.verdict}{why}{stat}"


NOTE_ROWS = 6  # generator rows in the run description (MLflow keeps 5,000 characters)
NOTE_TESTS = ("c2st_nonlinear", "c2st_linear", "ellipsoid", "cycle")


def verdict_markdown(rows: Sequence[dict[str, Any]], n_test: int) -> str:
    """The verdict in the run description: the reference rows and the best
    :data:`NOTE_ROWS` generator settings, each lead statistic with its interval (the whole
    table, every test with its p-value, is ``tables/verdict.json`` and the report)."""
    if not rows:
        return ""
    tests = [t for t in NOTE_TESTS if t in rows[0]["criteria"]]
    references = [r for r in rows if r["name"] in (core.REAL, core.HELDOUT)]
    generators = [r for r in rows if r["name"] not in (core.REAL, core.HELDOUT)]
    shown = references + generators[:NOTE_ROWS]
    lines = [
        f"**Verdict**: can each generator be told from real training latents it was not "
        f"fitted to ({n_test} per set)? Statistic [95% interval]; a row differs when Holm's "
        "procedure over all its tests rejects at 0.05.",
        "",
        "| setting | verdict | " + " | ".join(core.STATISTIC_NAMES[t] for t in tests) + " |",
        "|" + "---|" * (len(tests) + 2),
    ]
    for row in shown:
        verdict = row["verdict"] + (
            f" ({', '.join(row['rejected_by'])})" if row["rejected_by"] else ""
        )
        cells = [criterion_text(row["criteria"].get(t), p_value=False) for t in tests]
        lines.append(f"| {row['label']} | {verdict} | " + " | ".join(cells) + " |")
    if len(generators) > NOTE_ROWS:
        lines.append("")
        lines.append(
            f"{len(generators) - NOTE_ROWS} more settings in `tables/verdict.json` and the report."
        )
    return "\n".join(lines)
