"""The ``train`` entry point: train a reference autoencoder, encode every image, analyse.

``mlflow run . -e train -P case=I --env-manager local``; an interrupted run continues with
``-P resume=<run id>`` (see :mod:`aelatent.io.checkpoints`): from its checkpoint, wherever
it was started from; one process at a time (:func:`aelatent.io.lifecycle.claim_run`).
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from aelatent.arguments import ArgumentParser, parse_int
from aelatent.config import CaseConfig, load_case, network_shapes
from aelatent.data.images import BUILT_IN, ImageSet
from aelatent.data.loading import load_images
from aelatent.errors import UserError
from aelatent.io.lifecycle import claim_run, live_owner
from aelatent.io.mlflow_native import log_image_set, register_trained_model
from aelatent.io.run_artifacts import (
    MODEL_NAME,
    MODEL_REQUIREMENTS,
    pinned_requirements,
)
from aelatent.io.tracking import entry_point_run, get_run, run_entry_point
from aelatent.limits import (
    IMAGE_SIZE_WHY,
    MAX_IMAGE_SIZE,
    MAX_SEED,
    SEED_WHY,
    check_memory,
    train_memory_bytes,
)
from aelatent.schema import LATENT_INDEX_CSV, LATENTS_NPY

if TYPE_CHECKING:
    import keras

AUTO = "auto"
NO_RESUME = "none"
N_RECONSTRUCTIONS = 16


@dataclass(frozen=True)
class TrainRequest:
    """Validated parameters of one training run; ``resume_run`` continues an interrupted one.
    ``checkpoint_dir``: the folder of its checkpoints (absolute; None: the default for the
    run, :func:`aelatent.io.checkpoints.checkpoint_dir`)."""

    case: CaseConfig
    case_arg: str
    data: str
    seed: int
    resume_run: str | None = None
    checkpoint_dir: str | None = None


def parse_args(argv: Sequence[str] | None) -> TrainRequest:
    parser = ArgumentParser(prog="aelatent train", description=__doc__)
    parser.add_argument("--case", default="I", help="I, II or a path to a case YAML")
    parser.add_argument("--data", default=BUILT_IN, help="'orl' (built-in faces) or a folder/zip")
    parser.add_argument("--epochs", default=AUTO, help="'auto' = the case YAML's epochs")
    parser.add_argument("--image-size", default=AUTO, help="'auto' = the case YAML's image_size")
    parser.add_argument("--seed", default="0", help="random seed (same seed, same latents)")
    parser.add_argument("--resume", default=NO_RESUME, help="id of an interrupted train run")
    args = parser.parse_args(argv)
    if args.resume != NO_RESUME:
        return resume_request(args.resume)
    return build_request(args.case, args.data, args.epochs, args.image_size, args.seed)


def build_request(
    case_arg: str, data: str, epochs: str, image_size: str, seed: str, resume_run: str | None = None
) -> TrainRequest:
    case = load_case(case_arg)
    n_epochs = None if epochs == AUTO else parse_int(epochs, "epochs", minimum=1)
    size = (
        None
        if image_size == AUTO
        else parse_int(
            image_size, "image_size", minimum=1, maximum=MAX_IMAGE_SIZE, why=IMAGE_SIZE_WHY
        )
    )
    if n_epochs is None and data != BUILT_IN:
        n_epochs = case.training.epochs_celeba
    case = case.with_overrides(epochs=n_epochs, image_size=size)
    request = TrainRequest(
        case=case,
        case_arg=case_arg,
        data=data,
        resume_run=resume_run,
        seed=parse_int(seed, "seed", minimum=0, maximum=MAX_SEED, why=SEED_WHY),
    )
    check_training_memory(case)
    return request


def check_training_memory(case: CaseConfig, n_channels: int = 3) -> None:
    """Refuse, before any image is read, a network whose training cannot fit in memory
    (``n_channels``: 3, the most any data set here has, so the estimate holds for all)."""
    shapes = network_shapes(case.model, case.image_size, n_channels, case.source)
    check_memory(
        train_memory_bytes(shapes.n_weights, shapes.activations_per_image, case.training.batch_size)
        + shapes.scratch_bytes(),  # TensorFlow aborts in C++ without it (config.py)
        f"training case {case.name} (image_size={case.image_size}, "
        f"model.z_dim={case.model.z_dim}, {shapes.n_weights:,} weights, "
        f"batch_size={case.training.batch_size}, {case.source})",
        "lower image_size, model.z_dim, the filters, the kernels or training.batch_size",
    )


def resume_request(run_id: str) -> TrainRequest:
    """The request of an interrupted train run, rebuilt from the parameters it logged, once
    its checkpoint is found (or no epoch was logged) and this process has claimed the run."""
    run = get_run(run_id, expected_entry_point="train")
    if run.info.status == "FINISHED":
        raise UserError(f"resume={run_id!r} already FINISHED: nothing to resume; start a new run")
    _refuse_live_owner(run_id, live_owner(run))
    params = run.data.params
    try:
        request = build_request(
            params["case_arg"],
            params["data"],
            params["training.epochs"],
            params["data.image_size"],
            params["seed"],
            resume_run=run_id,
        )
    except KeyError as missing:
        raise UserError(f"resume={run_id!r} logged no parameter {missing}: cannot resume") from None
    from aelatent.io.checkpoints import checkpoint_dir, find_checkpoint  # TensorFlow

    found = find_checkpoint(run)
    if not found.found and "loss" in run.data.metrics:  # epochs logged: never train them again
        raise UserError(
            f"resume={run_id!r}: its checkpoint is not found (looked in "
            f"{', '.join(found.looked_in)}); training it again from epoch 1 would log its "
            "epochs twice: set AELATENT_CHECKPOINT_DIR to the folder that holds "
            f"{run_id}/, or start a new run"
        )
    _refuse_live_owner(run_id, claim_run(run_id))  # atomic: one of two claimants wins
    return replace(request, checkpoint_dir=str(found.local or checkpoint_dir(run_id)))


def _refuse_live_owner(run_id: str, owner: str | None) -> None:
    if owner is not None:
        raise UserError(
            f"resume={run_id!r} is still training ({owner}): wait for it to end or stop it "
            f"first; two trainings in one run would mix two models"
        )


def load_training_images(request: TrainRequest) -> ImageSet:
    """The request's images; a clear error when a partition the training needs is empty."""
    image_set = load_images(request.data, request.case.image_size)
    if len(image_set.indices("train")) == 0 or len(image_set.indices("val")) == 0:
        raise UserError(f"data={request.data!r} needs images in both the train and val partitions")
    return image_set


def main(argv: Sequence[str] | None = None) -> None:
    request = parse_args(argv)
    train(request, load_training_images(request))


def train(request: TrainRequest, image_set: ImageSet, *, nested: bool = False) -> str:
    """Train, log the model and reconstructions, encode every image, analyse; returns the run id."""
    import keras  # TensorFlow: only when training
    import mlflow.keras  # TensorFlow: only when training
    import tensorflow as tf  # TensorFlow: only when training

    from aelatent.accelerator import configure_accelerator  # TensorFlow: only when training
    from aelatent.data.pipeline import autoencoder_dataset  # TensorFlow: only when training
    from aelatent.io.checkpoints import (  # TensorFlow: only when training
        CHECKPOINT_TAG,
        EpochCheckpoint,
        SynchronousMlflowCallback,
        checkpoint_dir,
        load_checkpoint,
        remove_checkpoint,
    )
    from aelatent.model import build_autoencoder  # TensorFlow: only when training

    case = request.case
    keras.utils.set_random_seed(request.seed)
    tf.config.experimental.enable_op_determinism()
    tags = {"case": case.name, "dataset": image_set.name}
    if request.resume_run:
        _mark_launcher_run(request.resume_run)
    with entry_point_run(
        "train",
        f"train case {case.name}",
        tags,
        nested=nested,
        run_id=request.resume_run,
        owned=True,
    ) as run:
        run_id = run.info.run_id
        checkpoints = Path(request.checkpoint_dir or checkpoint_dir(run_id))
        mlflow.set_tag(CHECKPOINT_TAG, str(checkpoints))  # a resume from anywhere finds it
        if request.resume_run is not None:
            _set_aside_error(run_id)
        if request.resume_run is None:
            mlflow.log_params(
                {
                    **case.flat_params(),
                    "case_arg": request.case_arg,
                    "data": request.data,
                    "seed": request.seed,
                    "n_images": len(image_set.images),
                    "n_channels": image_set.n_channels,
                    "n_train": len(image_set.indices("train")),
                    "n_val": len(image_set.indices("val")),
                }
            )
            log_image_set(image_set, request.data)  # the runs table's Datasets column
        accelerator = configure_accelerator()
        if request.resume_run is None:
            mlflow.log_params(accelerator.params())
        else:  # params are immutable; the resumed part may run on another machine
            mlflow.set_tags({f"resumed.{k}": str(v) for k, v in accelerator.params().items()})
        with accelerator.strategy.scope():  # mirrored variables and the dtype policy
            checkpoint = load_checkpoint(run_id, checkpoints) if request.resume_run else None
            autoencoder, epochs_done = checkpoint or (
                build_autoencoder(case, image_set.n_channels),
                0,
            )
        if checkpoint:
            print(f"aelatent train: resuming run {run_id} after epoch {epochs_done}", flush=True)
            mlflow.set_tag("resumed_after_epoch", str(epochs_done))
        batch = case.training.batch_size
        train_data = autoencoder_dataset(
            image_set, image_set.indices("train"), batch, shuffle=True, seed=request.seed
        )
        val_data = autoencoder_dataset(
            image_set, image_set.indices("val"), batch, shuffle=False, seed=request.seed
        )
        started = time.perf_counter()
        history = autoencoder.fit(
            train_data,
            validation_data=val_data,
            epochs=case.training.epochs,
            initial_epoch=epochs_done,
            shuffle=False,  # tf.data shuffles; Keras warns that it ignores its own here
            callbacks=[
                keras.callbacks.TerminateOnNaN(),
                EpochCheckpoint(run_id, directory=checkpoints),
                SynchronousMlflowCallback(),
            ],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        diverged = diverged_epoch(history.history, epochs_done)
        if diverged is not None:  # the broken model is neither logged nor kept to resume
            remove_checkpoint(run_id, checkpoints)
            raise UserError(
                f"training diverged at epoch {diverged}; lower learning_rate (the loss is no "
                f"longer finite at training.learning_rate={case.training.learning_rate:g} in "
                f"{case.source})"
            )
        seconds = time.perf_counter() - started
        epochs_run = case.training.epochs - epochs_done
        metrics = {
            "train_seconds": seconds,
            "train_images_per_second": len(image_set.indices("train"))
            * epochs_run
            / max(seconds, 1e-9),
        }
        if history.history:
            metrics |= {
                "final_loss": history.history["loss"][-1],
                "final_val_loss": history.history["val_loss"][-1],
            }
        mlflow.log_metrics(metrics)
        model_uri = log_trained_model(autoencoder, image_set)
        register_trained_model(model_uri, case.name, image_set.name)  # aelatent-case-<case>
        remove_checkpoint(run_id, checkpoints)
        return run_id


def diverged_epoch(history: dict[str, list[float]], initial_epoch: int = 0) -> int | None:
    """The first epoch (counted from 1) whose loss or val_loss is not finite, or None.

    Keras' ``TerminateOnNaN`` stops at the first non-finite batch loss; Keras still ends that
    epoch (its mean loss is then not finite), so it is the last one in the history.
    """
    losses = [history.get(key, []) for key in ("loss", "val_loss")]
    for i in range(max(map(len, losses))):
        if any(i < len(values) and not np.isfinite(values[i]) for values in losses):
            return initial_epoch + i + 1
    return None


def log_trained_model(autoencoder: keras.Model, image_set: ImageSet) -> str:
    """The model, reconstructions, the latents of every image and their analysis; returns
    the logged model's URI."""
    import mlflow.keras  # TensorFlow: only when training

    from aelatent.data.pipeline import encode_images  # TensorFlow: only when training
    from aelatent.jobs.analyse import analyse_and_log  # ~1 s: only after training
    from aelatent.model import encoder_of  # TensorFlow: only when training
    from aelatent.plots.image_grids import save_reconstructions  # pyplot: only after training

    originals, reconstructions = reconstruct_examples(autoencoder, image_set)
    model_info = mlflow.keras.log_model(
        autoencoder,
        name=MODEL_NAME,
        signature=infer_signature(originals[:2], reconstructions[:2]),
        pip_requirements=pinned_requirements(MODEL_REQUIREMENTS),  # not inferred: 9 s
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        save_reconstructions(
            originals, reconstructions, out / "reconstructions.png", labels=("train", "val")
        )
        mlflow.log_artifact(str(out / "reconstructions.png"))
        (out / "latents").mkdir()
        encoder = encoder_of(autoencoder)
        # Streamed into a memory-mapped .npy: memory does not grow with the data set.
        latents = np.lib.format.open_memmap(
            out / LATENTS_NPY,
            mode="w+",
            dtype=np.float32,
            shape=(len(image_set.images), int(encoder.output.shape[-1])),
        )
        encode_images(encoder, image_set.images, out=latents, progress=True)
        latents.flush()
        write_index(out / LATENT_INDEX_CSV, image_set)
        mlflow.log_artifacts(str(out / "latents"), artifact_path="latents")
        analyse_and_log(latents, window_rows=image_set.partitions == "train")
    return model_info.model_uri


def _set_aside_error(run_id: str) -> None:
    """A resumed run's ``error`` (why it stopped) becomes ``resumed_error``: the run is
    working again, and ends with its own status and reason."""
    client = MlflowClient()
    previous = client.get_run(run_id).data.tags.get("error")
    if previous is not None:
        client.set_tag(run_id, "resumed_error", previous)
        client.delete_tag(run_id, "error")


def _mark_launcher_run(resumed: str) -> None:
    """``mlflow run`` made a fresh run for this call; label it as the launcher of a resume."""
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)
    if launcher and launcher != resumed:
        client = MlflowClient()
        client.set_tag(launcher, "entry_point", "resume")
        client.set_tag(launcher, "resumed_run", resumed)
        client.set_tag(launcher, "mlflow.runName", f"resume of {resumed[:8]}")


def reconstruct_examples(
    autoencoder: keras.Model, image_set: ImageSet
) -> tuple[np.ndarray, np.ndarray]:
    """Half training images, half validation images (people the network never saw)."""
    half = N_RECONSTRUCTIONS // 2
    rows = []
    for partition in ("train", "val"):
        indices = image_set.indices(partition)
        rows.append(indices[:: max(1, len(indices) // half)][:half])
    shown = np.concatenate(rows)
    originals = np.asarray(image_set.images[shown], dtype=np.float32) / 255.0
    return originals, autoencoder.predict(originals, verbose=0)


def write_index(path: Path, image_set: ImageSet) -> None:
    """One row per latent vector: its row number, image id and partition."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "image_id", "partition"])
        for row, (image_id, partition) in enumerate(
            zip(image_set.ids, image_set.partitions, strict=True)
        ):
            writer.writerow([row, image_id, partition])


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("train", main, argv)


if __name__ == "__main__":
    cli()
