"""One reader of a train run for every job that starts from one (evaluate, search).

A train run is named by an id, a ``models:/`` URI or ``newest`` (of a case); what the jobs
need from it is always the same: its tags, its latents split into the training partition
(windows are estimated from it) and the held-out rest (the real-data ceiling), and the
windows. Reading it here, with the same checks for every job, means a run that one job
accepts is accepted by all of them, with the same one-line error otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mlflow.entities import Run

from aelatent.core.windows import Windows, estimate_windows
from aelatent.io.run_artifacts import load_latent_split
from aelatent.io.tracking import resolve_train_run


@dataclass(frozen=True)
class TrainRun:
    """A train run as the jobs use it, read and checked before any work."""

    run_id: str
    case: str
    dataset: str
    latents: np.ndarray  # float32 [n_train, z_dim]: the training partition
    heldout: np.ndarray  # float32 [n_heldout, z_dim]: every other partition (val, test)
    windows: Windows  # estimated from ``latents``

    @property
    def mu(self) -> np.ndarray:
        return self.windows.mu

    @property
    def hw(self) -> np.ndarray:
        return self.windows.hw

    @property
    def z_dim(self) -> int:
        return int(self.latents.shape[1])

    @property
    def n_real(self) -> int:
        """Every real vector: the training partition and the held-out rest."""
        return int(self.latents.shape[0] + self.heldout.shape[0])


def read_train_run(
    choice: str | None,
    case: str | None,
    estimate: str,
    seed: int,
    *,
    check: Callable[[str, np.ndarray], None] | None = None,
) -> TrainRun:
    """Resolve ``choice`` (id, ``models:/`` URI, or None = newest of ``case``) and read it
    (:func:`read_run`). UserError if unusable."""
    return read_run(resolve_train_run(choice, case), estimate, seed, check=check)


def read_run(
    run: Run,
    estimate: str,
    seed: int,
    *,
    check: Callable[[str, np.ndarray], None] | None = None,
) -> TrainRun:
    """Split a resolved train run's latents and estimate the windows; ``check(run_id,
    training latents)`` runs a job's own checks (sizes, memory) before the windows are
    estimated. UserError if unusable."""
    run_id = run.info.run_id
    train, heldout = load_latent_split(run_id)
    if check is not None:
        check(run_id, train)
    return TrainRun(
        run_id=run_id,
        case=run.data.tags.get("case", "?"),
        dataset=run.data.tags.get("dataset", "?"),
        latents=np.asarray(train, dtype=np.float32),
        heldout=np.asarray(heldout, dtype=np.float32),
        windows=estimate_windows(train, estimate, seed=seed),
    )
