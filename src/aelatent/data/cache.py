"""Decode once: a preprocessing cache of uint8 images, memory-mapped by every later run.

Decoding 200,000 JPEGs takes about a minute; reading the decoded 64x64 pixels back takes
well under a second. An entry is two files under :func:`cache_dir`:

- ``<name>-<size>px-<key>.npy``: uint8 ``[n, size, size, 3]``, opened with ``mmap_mode="r"``,
  so a data set larger than memory still works and only touched pages are read;
- ``<name>-<size>px-<key>.json``: the ids of the rows, the skipped files and why, the key's
  fields. It is written last, so an entry without it is incomplete and gets rebuilt.

The key hashes the source's path and fingerprint (a zip's size and mtime, or every file's
relative path, size and mtime for a folder), the image size, the crop convention and
:data:`CACHE_VERSION`: changing any of them makes a new entry instead of reusing a stale one.
Images that fail to decode are logged (a warning naming each, up to 20), recorded and left
out; they are never averaged in as zeros.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from aelatent.console import progress_bar
from aelatent.data.image_folder import CROP, ImageSource, decode_image
from aelatent.errors import UserError

log = logging.getLogger(__name__)

CACHE_ENV = "AELATENT_CACHE_DIR"
CACHE_VERSION = 1
CHUNK = 256  # images per worker task: big enough to amortise the task, small enough to balance
MAX_REPORTED = 20  # warnings naming a skipped image; the rest are counted (all are in the JSON)
MIN_PARALLEL = 2000  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class CachedImages:
    """Decoded images (a read-only memory map) and which source files they are."""

    images: np.ndarray
    ids: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (id, reason)
    path: Path
    reused: bool


def cache_dir() -> Path:
    """``$AELATENT_CACHE_DIR``, else ``~/.cache/aelatent``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "aelatent").expanduser()


def cache_key(source: ImageSource, image_size: int) -> dict[str, object]:
    return {
        "version": CACHE_VERSION,
        "source": str(source.path),
        "fingerprint": source.fingerprint,
        "image_size": image_size,
        "crop": CROP,
    }


def entry_stem(source: ImageSource, image_size: int) -> str:
    digest = hashlib.sha256(json.dumps(cache_key(source, image_size), sort_keys=True).encode())
    return f"{source.name}-{image_size}px-{digest.hexdigest()[:16]}"


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cached_images(
    source: ImageSource,
    image_size: int,
    *,
    root: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> CachedImages:
    """The decoded images of ``source``, from the cache if an entry exists, else built now."""
    root = cache_dir() if root is None else Path(root)
    stem = entry_stem(source, image_size)
    npy, meta = root / f"{stem}.npy", root / f"{stem}.json"
    cached = _open_entry(npy, meta)
    if cached is None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the preprocessing cache {str(root)!r} ({exc.strerror}): set "
                f"{CACHE_ENV} to a writable folder"
            ) from exc
        _build_entry(source, image_size, npy, meta, workers or default_workers(), progress)
        cached = _open_entry(npy, meta)
        assert cached is not None
        return cached
    _report_skipped(list(cached.skipped), source, meta)
    return CachedImages(cached.images, cached.ids, cached.skipped, cached.path, reused=True)


def _report_skipped(skipped: list[tuple[str, str]], source: ImageSource, meta: Path) -> None:
    """One warning per unreadable image (the first MAX_REPORTED), then how many more."""
    for image_id, reason in skipped[:MAX_REPORTED]:
        log.warning("skipped unreadable image %s in %s: %s", image_id, source.path, reason)
    if len(skipped) > MAX_REPORTED:
        log.warning(
            "skipped %d more unreadable images: all are listed in %s",
            len(skipped) - MAX_REPORTED,
            meta,
        )


def _open_entry(npy: Path, meta: Path) -> CachedImages | None:
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
        images = np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        log.warning("rebuilding the unreadable cache entry %s: %s", npy, exc)
        return None
    if len(images) != len(info["ids"]):
        log.warning("rebuilding the inconsistent cache entry %s", npy)
        return None
    skipped = tuple((str(i), str(r)) for i, r in info["skipped"])
    return CachedImages(images, tuple(info["ids"]), skipped, npy, reused=False)


def _build_entry(
    source: ImageSource, image_size: int, npy: Path, meta: Path, workers: int, progress: bool
) -> None:
    n = len(source.names)
    partial = npy.with_name(f"{npy.stem}.{os.getpid()}.partial.npy")
    images = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.uint8, shape=(n, image_size, image_size, 3)
    )
    del images  # workers write through their own maps
    failures: dict[int, str] = {}
    bar = progress_bar(
        n, f"decoding {source.name} to {image_size}px", "img", enabled=progress, mininterval=1.0
    )
    try:
        for done, failed in _decode_all(source, image_size, partial, workers):
            failures.update(failed)
            bar.update(done)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    _report_skipped([(source.ids[i], failures[i]) for i in sorted(failures)], source, meta)
    if len(failures) == n:
        partial.unlink(missing_ok=True)
        first = source.ids[min(failures)]
        raise UserError(
            f"data={str(source.path)!r}: none of the {n} images could be decoded (first: "
            f"{first!r}: {failures[min(failures)]})"
        )
    keep = np.array([i for i in range(n) if i not in failures], dtype=np.int64)
    if failures:
        _compact(partial, keep)
    os.replace(partial, npy)
    info = {
        "key": cache_key(source, image_size),
        "ids": [source.ids[i] for i in keep],
        "skipped": [[source.ids[i], failures[i]] for i in sorted(failures)],
    }
    tmp = meta.with_name(f"{meta.stem}.{os.getpid()}.partial.json")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, meta)


def _compact(partial: Path, keep: np.ndarray) -> None:
    """Rewrite the entry without the rows that failed (in chunks: memory stays bounded)."""
    source = np.load(partial, mmap_mode="r")
    target_path = partial.with_name(partial.name.replace(".partial.npy", ".compact.npy"))
    target = np.lib.format.open_memmap(
        target_path, mode="w+", dtype=np.uint8, shape=(len(keep), *source.shape[1:])
    )
    for start in range(0, len(keep), 4096):
        rows = keep[start : start + 4096]
        target[start : start + len(rows)] = source[rows]
    target.flush()
    del source, target
    os.replace(target_path, partial)


def _decode_all(
    source: ImageSource, image_size: int, partial: Path, workers: int
) -> Iterator[tuple[int, dict[int, str]]]:
    """(images done, failures) per chunk; in worker processes when it pays."""
    n = len(source.names)
    chunks = [(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]
    if workers > 1 and n >= MIN_PARALLEL:
        done: set[tuple[int, int]] = set()
        try:
            for chunk, failures in _decode_in_pool(source, image_size, partial, workers, chunks):
                done.add(chunk)
                yield chunk[1] - chunk[0], failures
            return
        except BrokenProcessPool as exc:  # e.g. a script without `if __name__ == "__main__":`
            log.warning("decoding in worker processes failed (%s); going on in this one", exc)
        chunks = [chunk for chunk in chunks if chunk not in done]
    _init_worker(source, image_size, partial)
    try:
        for start, stop in chunks:
            yield stop - start, _decode_chunk(start, stop)
    finally:
        source.close()
        _WORKER.clear()


def _decode_in_pool(
    source: ImageSource,
    image_size: int,
    partial: Path,
    workers: int,
    chunks: list[tuple[int, int]],
) -> Iterator[tuple[tuple[int, int], dict[int, str]]]:
    # Fork is instant, but unsafe once TensorFlow's threads run in the parent (a child can
    # inherit a lock held by one of them): then spawn, which pays for importing the main
    # module again in each worker. The train job decodes before it imports TensorFlow.
    method = "spawn" if "tensorflow" in sys.modules else "fork"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(source, image_size, partial),
    ) as pool:
        futures: dict[Future[dict[int, str]], tuple[int, int]] = {
            pool.submit(_decode_chunk, *chunk): chunk for chunk in chunks
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


_WORKER: dict[str, object] = {}


def _init_worker(source: ImageSource, image_size: int, partial: Path) -> None:
    source.close()  # a forked worker inherits the parent's open zip: its file offset is shared
    _WORKER.update(source=source, image_size=image_size, images=np.load(partial, mmap_mode="r+"))


def _decode_chunk(start: int, stop: int) -> dict[int, str]:
    """Decode rows ``start:stop`` into the entry; return {row: reason} for those that failed."""
    source: ImageSource = _WORKER["source"]  # type: ignore[assignment]
    image_size: int = _WORKER["image_size"]  # type: ignore[assignment]
    images: np.memmap = _WORKER["images"]  # type: ignore[assignment]
    failures: dict[int, str] = {}
    for index in range(start, stop):
        try:
            images[index] = decode_image(source.read(index), image_size)
        except UnidentifiedImageError:
            failures[index] = "not an image in a format PIL can read"
        except Exception as exc:  # any unreadable file is skipped, whatever the decoder says
            failures[index] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    images.flush()
    return failures
