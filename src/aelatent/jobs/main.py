"""The ``main`` entry point: the whole study on the built-in faces in one command.

``mlflow run . -e main --env-manager local`` (what ``make demo`` runs).
"""

from __future__ import annotations

from collections.abc import Sequence

from aelatent.io.tracking import ArgumentParser, entry_point_run, run_entry_point
from aelatent.jobs import train

CASES = ("I", "II")


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="aelatent main", description=__doc__)
    parser.add_argument("--data", default="orl")
    parser.add_argument("--epochs", default="auto")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args(argv)
    requests = [
        train.parse_args(["--case", case, "--data", args.data, "--epochs", args.epochs,
                          "--seed", args.seed])
        for case in CASES
    ]
    from aelatent.data.images import load_images

    with entry_point_run("main", "main study", {"dataset": args.data}):
        for request in requests:
            image_set = load_images(request.data, request.case.image_size)
            train.train(request, image_set, nested=True)


def cli(argv: Sequence[str] | None = None) -> None:
    run_entry_point("main", main, argv)
