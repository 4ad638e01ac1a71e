"""What the jobs make, in MLflow's own terms: datasets, the model registry, tables, descriptions.

- **Datasets** (``mlflow.log_input``): a train run logs the images it was trained on
  (:func:`log_image_set`: name ``orl`` or the folder / zip name, a digest of the pixels as
  fed to the network with their ids and partitions, the source, the partition sizes as
  tags), so the runs table's Datasets column shows it and two runs on the same data show
  the same digest. Evaluate, analyse and search runs log the train run's dataset again
  with context ``evaluation`` (:func:`log_train_dataset`) and link to the train run in
  their description (:func:`train_run_line`).
- **Registry**: a train run registers its model as ``aelatent-case-<case>``, one version per
  run (:func:`register_trained_model`); :func:`train_run_of_model` turns
  ``models:/<name>/<version>``, ``models:/<name>/latest`` and ``models:/<name>@<alias>`` back
  into the train run that logged the version.
- **Tables** (``mlflow.log_table``, :func:`log_csv_table`): CSV files the jobs write also go
  in as ``tables/*.json``, which the UI displays without a download.
- **Descriptions** (``mlflow.note.content``, :func:`set_description`), e.g. what an
  evaluation found (:func:`evaluation_note`).
"""

from __future__ import annotations

import hashlib
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.entities import DatasetInput, InputTag, Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from aelatent.arguments import check_case_name
from aelatent.core.sampler_registry import axis_of
from aelatent.data.images import BUILT_IN, PARTITIONS, ImageSet
from aelatent.data.orl import orl_directory
from aelatent.errors import UserError

if TYPE_CHECKING:
    from aelatent.core.hit_uncertainty import HeldoutCeiling, HitIntervals
    from aelatent.core.hits import HitGrid

NOTE_TAG = "mlflow.note.content"  # the run's description in the UI (Markdown)
CONTEXT_TAG = "mlflow.data.context"
TRAINING = "training"
EVALUATION = "evaluation"
MODEL_PREFIX = "aelatent-case-"
REGISTERED_MODEL_TAG = "registered_model"
REGISTRY_ERROR_TAG = "registered_model_error"
DIGEST_CHARS = 16
_CHUNK_ROWS = 4096
_MODEL_URI = re.compile(r"models:/(?P<name>[^/@']+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))")
MODEL_URI_FORMS = "models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>"


# --- datasets ---------------------------------------------------------------------------


def dataset_digest(image_set: ImageSet) -> str:
    """SHA-256 of the pixels as fed to the network, their ids and partitions (16 hex digits).

    Read in chunks, so a memory-mapped CelebA is hashed without being loaded at once.
    """
    digest = hashlib.sha256()
    digest.update(repr(tuple(image_set.images.shape)).encode())
    digest.update("\n".join(image_set.ids).encode())
    digest.update("\n".join(map(str, image_set.partitions)).encode())
    for start in range(0, len(image_set.images), _CHUNK_ROWS):
        digest.update(np.ascontiguousarray(image_set.images[start : start + _CHUNK_ROWS]).data)
    return digest.hexdigest()[:DIGEST_CHARS]


def dataset_source(data: str) -> str:
    """Where the images were read: the built-in faces' folder, else the data folder or zip."""
    if data == BUILT_IN:
        return str(orl_directory())
    return str(Path(data).expanduser().resolve())


def image_set_tags(image_set: ImageSet) -> dict[str, str]:
    """The partition sizes and the image format, as the dataset input's tags."""
    tags = {f"n_{p}": str(len(image_set.indices(p))) for p in PARTITIONS}
    tags |= {
        "n_images": str(len(image_set.images)),
        "image_size": str(image_set.image_size),
        "n_channels": str(image_set.n_channels),
    }
    return tags


def log_image_set(image_set: ImageSet, data: str) -> None:
    """Log the training images as the active run's dataset (context ``training``)."""
    with warnings.catch_warnings():  # a local path resolves to two alike source classes
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(dataset_source(data))
    dataset = mlflow.data.from_numpy(
        image_set.images, source=source, name=image_set.name, digest=dataset_digest(image_set)
    )
    mlflow.log_input(dataset, context=TRAINING, tags=image_set_tags(image_set))


def log_train_dataset(train_run_id: str) -> int:
    """Log the train run's datasets in the active run, with context ``evaluation``; returns
    how many (0 for train runs made before datasets were logged)."""
    client = MlflowClient()
    run = client.get_run(train_run_id)
    inputs = run.inputs.dataset_inputs if run.inputs else []
    relogged = [
        DatasetInput(
            item.dataset,
            [
                InputTag(CONTEXT_TAG, EVALUATION),
                InputTag("train_run", train_run_id),
                *(tag for tag in item.tags if tag.key not in (CONTEXT_TAG, "train_run")),
            ],
        )
        for item in inputs
    ]
    active = mlflow.active_run()
    if relogged and active is not None:
        client.log_inputs(active.info.run_id, datasets=relogged)
    return len(relogged)


# --- descriptions -----------------------------------------------------------------------


def run_link(run: Run) -> str:
    """A Markdown link to the run's page in the MLflow UI (relative: works on any server)."""
    name = run.info.run_name or run.info.run_id
    return f"[{name}](#/experiments/{run.info.experiment_id}/runs/{run.info.run_id})"


def train_run_line(train_run_id: str) -> str:
    """``Train run: [train case I](link) (`<id>`), dataset orl.``"""
    run = MlflowClient().get_run(train_run_id)
    dataset = run.data.tags.get("dataset")
    return f"Train run: {run_link(run)} (`{train_run_id}`)" + (
        f", dataset `{dataset}`." if dataset else "."
    )


def set_description(*paragraphs: str) -> None:
    """The active run's description (``mlflow.note.content``): paragraphs of Markdown."""
    mlflow.set_tag(NOTE_TAG, "\n\n".join(p for p in paragraphs if p)[:5000])


def evaluation_note(
    grids: Sequence[HitGrid], intervals: Sequence[HitIntervals], ceiling: HeldoutCeiling
) -> str:
    """Two lines: the best sampler and b (or scale) by hit rate at the largest k, each
    sampler's best beside it; and the held-out ceiling at that k."""
    if not grids:
        return "No sampler finished."
    k = float(np.max(grids[0].ks))
    best: list[tuple[float, str, float, float, float, int]] = []
    for grid, ci in zip(grids, intervals, strict=True):
        i = int(np.argmax(grid.ks))
        j = int(np.argmax(grid.hit_rate[:, i]))  # the first (smallest) scale among ties
        best.append(
            (
                float(grid.hit_rate[j, i]),
                grid.sampler,
                float(grid.scales[j]),
                float(ci.hit_lo[j, i]),
                float(ci.hit_hi[j, i]),
                grid.n,
            )
        )
    top = max(best, key=lambda b: b[0])  # the first sampler among ties
    others = "; ".join(f"{s} {axis_of(s)} = {x:g}: {r:.3g}" for r, s, x, *_ in best)
    if top[0] > 0:
        rate, sampler, scale, lo, hi, n = top
        first = (
            f"**Best generator at k = {k:g}** (the largest k): **{sampler}, {axis_of(sampler)} "
            f"= {scale:g}**, hit rate {rate:.3g} [{lo:.3g}, {hi:.3g}] of {n:,} vectors "
            f"(each sampler's best: {others})."
        )
    else:
        first = (
            f"**No generator hit the real region at k = {k:g}** (the largest k): 0 of "
            f"{top[5]:,} vectors at every b and scale."
        )
    i = int(np.argmax(ceiling.ks))
    second = (
        f"**Held-out ceiling**: {ceiling.rate[i]:.3g} [{ceiling.lo[i]:.3g}, "
        f"{ceiling.hi[i]:.3g}] of the {ceiling.n:,} held-out real latents lie in the "
        f"windows at k = {float(ceiling.ks[i]):g}."
    )
    return f"{first}\n\n{second}"


# --- tables -----------------------------------------------------------------------------


def log_csv_table(path: Path, artifact_file: str) -> None:
    """Log a CSV file the job wrote as an MLflow table (``.json``) of the active run."""
    mlflow.log_table(pd.read_csv(path), artifact_file=artifact_file)


# --- the model registry -----------------------------------------------------------------


def registered_model_name(case: str, prefix: str = MODEL_PREFIX) -> str:
    """``aelatent-case-I`` (or ``<prefix>I``); a case name outside the ``case`` rule is
    refused, never rewritten (``a/b`` and ``a-b`` would share one model)."""
    return prefix + check_case_name(case)


def register_trained_model(model_uri: str, case: str, dataset: str) -> str | None:
    """Register the active train run's model as a new version of ``aelatent-case-<case>``;
    returns ``models:/<name>/<version>``. A store that cannot register (no registry, no
    permission) leaves the logged model as it is, with one line and the reason in a tag."""
    active = mlflow.active_run()
    name = registered_model_name(case)
    tags = {"case": case, "dataset": dataset}
    if active is not None:
        tags["train_run"] = active.info.run_id
    try:
        version = mlflow.register_model(model_uri, name, tags=tags)
    except MlflowException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"aelatent train: the model is logged ({model_uri}) but not registered as "
            f"{name!r}: {reason}",
            file=sys.stderr,
            flush=True,
        )
        mlflow.set_tag(REGISTRY_ERROR_TAG, reason[:5000])
        return None
    uri = f"models:/{name}/{version.version}"
    mlflow.set_tag(REGISTERED_MODEL_TAG, uri)
    return uri


def is_model_uri(text: str) -> bool:
    return text.strip().startswith("models:/")


def train_run_of_model(uri: str) -> str:
    """The id of the run that logged a registered model version (``models:/...``)."""
    text = uri.strip()
    found = _MODEL_URI.fullmatch(text)
    if found is None:
        raise UserError(
            f"train_run={text!r} is not a registered model: give {MODEL_URI_FORMS}, "
            f"e.g. {MODEL_PREFIX}I/1, or a train run id"
        )
    name, version, alias = found["name"], found["version"], found["alias"]
    client = MlflowClient()
    model = _registered_model(client, name, text)
    if alias is not None:
        if alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise UserError(
                f"train_run={text!r}: registered model {name!r} has no alias "
                f"{alias!r} (its aliases: {known})"
            )
        version = str(model.aliases[alias])
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    if version == "latest":
        if not versions:
            raise UserError(f"train_run={text!r}: registered model {name!r} has no versions")
        version = str(versions[-1])
    if not version.isdigit() or int(version) not in versions:
        known = ", ".join(map(str, versions)) or "none"
        raise UserError(
            f"train_run={text!r}: registered model {name!r} has no version "
            f"{version!r} (its versions: {known})"
        )
    model_version = client.get_model_version(name, version)
    if not model_version.run_id:
        raise UserError(
            f"train_run={text!r}: version {version} of {name!r} was not logged by "
            "a run; give the train run id instead"
        )
    return model_version.run_id


def _registered_model(client, name: str, uri: str):
    """The registered model ``name``; a one-line error naming those that exist."""
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
    names = sorted(m.name for m in client.search_registered_models(max_results=100))
    known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"
    raise UserError(
        f"train_run={uri!r}: no registered model {name!r} in "
        f"{mlflow.get_tracking_uri()} (registered: {known})"
    )
