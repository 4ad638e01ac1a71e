"""The ``train`` entry point: train a reference autoencoder, encode every image, analyse.

``mlflow run . -e train -P case=I --env-manager local``
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aelatent.config import CaseConfig, load_case
from aelatent.data.images import BUILT_IN, ImageSet, load_images
from aelatent.errors import UserError
from aelatent.io.run_artifacts import INDEX_PATH, LATENTS_PATH, MODEL_NAME
from aelatent.io.tracking import ArgumentParser, entry_point_run, parse_int, run_entry_point

AUTO = "auto"
N_RECONSTRUCTIONS = 16


@dataclass(frozen=True)
class TrainRequest:
    """Validated parameters of one training run."""

    case: CaseConfig
    data: str
    seed: int


def parse_args(argv: Sequence[str] | None) -> TrainRequest:
    parser = ArgumentParser(prog="aelatent train", description=__doc__)
    parser.add_argument("--case", default="I", help="I, II or a path to a case YAML")
    parser.add_argument("--data", default=BUILT_IN, help="'orl' (built-in faces) or a folder/zip")
    parser.add_argument("--epochs", default=AUTO, help="'auto' = the case YAML's epochs")
    parser.add_argument("--image-size", default=AUTO, help="'auto' = the case YAML's image_size")
    parser.add_argument("--seed", default="0", help="random seed (same seed, same latents)")
    args = parser.parse_args(argv)
    case = load_case(args.case)
    epochs = None if args.epochs == AUTO else parse_int(args.epochs, "epochs", minimum=1)
    image_size = (
        None if args.image_size == AUTO else parse_int(args.image_size, "image_size", minimum=1)
    )
    if epochs is None and args.data != BUILT_IN:
        epochs = case.training.epochs_celeba
    case = case.with_overrides(epochs=epochs, image_size=image_size)
    return TrainRequest(case=case, data=args.data, seed=parse_int(args.seed, "seed", minimum=0))


def main(argv: Sequence[str] | None = None) -> None:
    request = parse_args(argv)
    image_set = load_images(request.data, request.case.image_size)
    if len(image_set.indices("train")) == 0 or len(image_set.indices("val")) == 0:
        raise UserError(f"data={request.data!r} needs images in both the train and val partitions")
    train(request, image_set)


def train(request: TrainRequest, image_set: ImageSet, *, nested: bool = False) -> str:
    """Train, log the model and reconstructions, encode every image, analyse; returns the run id."""
    import keras
    import mlflow
    import mlflow.keras
    import tensorflow as tf

    from aelatent.data.pipeline import autoencoder_dataset, encode_images
    from aelatent.jobs.analyse import analyse_and_log
    from aelatent.model import build_autoencoder, encoder_of
    from aelatent.plots.image_grids import save_reconstructions

    case = request.case
    keras.utils.set_random_seed(request.seed)
    tf.config.experimental.enable_op_determinism()
    tags = {"case": case.name, "dataset": image_set.name}
    with entry_point_run("train", f"train case {case.name}", tags, nested=nested) as run:
        mlflow.log_params(
            {
                **case.flat_params(),
                "data": request.data,
                "seed": request.seed,
                "n_images": len(image_set.images),
                "n_channels": image_set.n_channels,
                "n_train": len(image_set.indices("train")),
                "n_val": len(image_set.indices("val")),
            }
        )
        autoencoder = build_autoencoder(case, image_set.n_channels)
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
            callbacks=[mlflow.keras.MlflowCallback()],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        seconds = time.perf_counter() - started
        mlflow.log_metrics(
            {
                "train_seconds": seconds,
                "train_images_per_second": len(image_set.indices("train"))
                * case.training.epochs
                / seconds,
                "final_loss": history.history["loss"][-1],
                "final_val_loss": history.history["val_loss"][-1],
            }
        )
        mlflow.keras.log_model(autoencoder, name=MODEL_NAME)

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            save_reconstructions(
                *reconstruct_examples(autoencoder, image_set),
                out / "reconstructions.png",
                labels=("train", "val"),
            )
            mlflow.log_artifact(str(out / "reconstructions.png"))

            latents = encode_images(encoder_of(autoencoder), image_set.images)
            (out / "latents").mkdir()
            np.save(out / LATENTS_PATH, latents)
            write_index(out / INDEX_PATH, image_set)
            mlflow.log_artifacts(str(out / "latents"), artifact_path="latents")
        analyse_and_log(latents)
        return run.info.run_id


def reconstruct_examples(autoencoder, image_set: ImageSet) -> tuple[np.ndarray, np.ndarray]:
    """Half training images, half validation images (people the network never saw)."""
    half = N_RECONSTRUCTIONS // 2
    shown = np.concatenate(
        [
            image_set.indices("train")[:: max(1, len(image_set.indices("train")) // half)][:half],
            image_set.indices("val")[:: max(1, len(image_set.indices("val")) // half)][:half],
        ]
    )
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
