"""Upper bounds of the parameters and memory estimates, checked before any work starts.

Each bound says why it is there (the ``*_WHY`` texts go into the error message), so a value
out of range ends in one line naming it and what is allowed instead of a crash after
minutes of work: an exponent MLflow refuses in a metric name, a seed numpy cannot take, a
network that does not fit in memory. README.md ("Limits") lists the same bounds.

Everything here is a pure function of its arguments, except :func:`available_memory_bytes`,
which asks the machine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from aelatent.errors import UserError

MAX_SEED = 2**32 - 1
SEED_WHY = "numpy's and Keras's random generators take 32-bit seeds"

# evaluate's b (uniform half-width), scale (gaussian/mvn width factor) and k
MAX_SCALE = 1e5
MAX_K = 1e5
LABEL_WHY = (
    "metric names print it with %g, which from 1e6 on writes an exponent such as 1e+06 that "
    "MLflow refuses ('+'); the latents span a few units, so nothing changes beyond 1e5"
)
LABEL_DIGITS = 6  # %g keeps 6 significant digits
# search's b_max and k: the same bounds
SEARCH_RANGE_WHY = (
    "the bound of evaluate's b and k: the latents span a few units, so nothing changes "
    "beyond 1e5, and values near the float limit overflow in the plots"
)
MIN_B_MIN = 1e-6
B_MIN_WHY = (
    "the exact objective curve is a log grid of 1,000 points over b_min..b_max; from 1e-6 to "
    "1e5 each step is under 3%, fine enough not to step over the narrow band of b whose radii "
    "match the real ones"
)
# evaluate's b, scale and k (and log_generator's scale): at least the search's b_min
MIN_SCALE = MIN_B_MIN
MIN_K = MIN_B_MIN
SMALL_SCALE_WHY = (
    "a box or window narrower than 1e-6 is a few float32 steps of the latents wide, and "
    "far below it the radius theory and the exact probabilities underflow to NaN"
)
# evaluate's grid_spacing (method 1): floor(2b / spacing) + 1 points per axis
MIN_GRID_SPACING = 1e-6
MAX_GRID_SPACING = MAX_SCALE
GRID_SPACING_WHY = (
    "with b at most 1e5 a spacing of 1e-6 already gives 2e11 points per axis; 1e-320 "
    "overflowed, and a spacing above 1e5 leaves one point per axis whatever b is"
)

MAX_IMAGE_SIZE = 1024
IMAGE_SIZE_WHY = (
    "the Dense layers beside the latent grow with image_size squared: at 1024 the reference "
    "networks already hold half a billion weights; the study uses 64"
)
MAX_Z_DIM = 4096
Z_DIM_WHY = (
    "the analysis keeps and plots z_dim x z_dim correlation and covariance matrices, and the "
    "mvn sampler factorises one; the study uses 256"
)
# the case YAML's convolutions (aelatent.config), measured with TensorFlow 2.21 on CPU
MAX_KERNEL = 31
KERNEL_WHY = (
    "TensorFlow's strided CPU convolution takes about 16 (k-1) k^2 x the padded side bytes "
    "of scratch per thread and aborts in C++ when it cannot get it (kernel 161 on a 64-pixel "
    "image: 28 GiB); the study uses 3 and 5"
)
ONEDNN_SCRATCH_BYTES = 16  # the factor of that buffer, per thread (measured: 16.0)
MAX_FILTERS = 4096
FILTERS_WHY = (
    "a layer holds kernel^2 x filters_in x filters_out weights, so 4096 with kernel 31 is "
    "already 16e9; the study uses at most 256"
)
STRIDE_WHY = "a stride divides the image side, which is at most 1024"
MAX_CASE_NAME_LENGTH = 64
CASE_NAME_WHY = (
    "the name goes into the registered model's name and the report's file names, which "
    "the file system limits to 255 bytes"
)
MAX_N_DECODED = 64
N_DECODED_WHY = (
    "each decoded grid is one row of images, 1.2 inches each: 64 already make a figure "
    "7,700 pixels wide"
)
MAX_EVALUATE_N_SAMPLES = 1_000_000_000
EVALUATE_N_SAMPLES_WHY = "1e9 vectors per sampler and b already take hours"
MAX_SEARCH_N_SAMPLES = 10_000_000
SEARCH_N_SAMPLES_WHY = (
    "the search keeps about 100 bytes per vector in memory and evaluates every vector at "
    "thousands of values of b for the exact objective curve"
)

FLOAT32_BYTES = 4
# weights, their gradients and Adam's two moments, all float32
TRAIN_COPIES_PER_WEIGHT = 4
# every convolution's output kept for the backward pass, before and after its activation
TRAIN_COPIES_PER_ACTIVATION = 2
# measured with tracemalloc (objective of 200,000 vectors, 16 and 256 components): 90-106
SEARCH_BYTES_PER_SAMPLE = 96
HIT_CHUNK = 4096  # aelatent.core.hits.DEFAULT_CHUNK: vectors drawn at once
KEPT_RADII = 20_000  # radii kept per sampler and b for the radius plot (hit_grid's n_radii)
GIB = 2**30


def check_at_most(value: float, maximum: float, name: str, why: str, where: str = "") -> None:
    """A :class:`UserError` naming ``name=value``, the bound and why, when value > maximum."""
    if value > maximum:
        place = f" {where}" if where else ""
        raise UserError(
            f"{name}={_show(value)}{place} is out of range; expected at most {_show(maximum)} "
            f"({why})"
        )


def _show(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_distinct_labels(values: Sequence[float], name: str, text: str) -> None:
    """Refuse two values that print alike with ``f"{x:g}"`` (6 significant digits).

    Metric names and file names carry the value printed that way (``hit_rate/uniform/b2/k1``),
    so ``2`` and ``2.000001`` would write the same metric and one result would be lost.
    ``values`` are the parsed numbers of ``text``, in order; equal values are not a clash.
    """
    parts = [part.strip() for part in str(text).split(",")]
    seen: dict[str, tuple[float, str]] = {}
    for index, value in enumerate(values):
        label = f"{value:g}"
        given = parts[index] if len(parts) == len(values) else repr(value)
        if label in seen and seen[label][0] != value:
            raise UserError(
                f"{name}={text!r}: {seen[label][1]} and {given} both print as {label} in metric "
                f"names ({LABEL_DIGITS} significant digits), so one result would overwrite the "
                f"other; give values that differ within {LABEL_DIGITS} significant digits"
            )
        seen.setdefault(label, (value, given))


def train_memory_bytes(n_weights: int, activations_per_image: int, batch_size: int) -> int:
    """A lower estimate of the memory one training step needs, in bytes.

    ``n_weights`` float32 weights, each with a gradient and Adam's two moments, plus every
    convolution's output (``activations_per_image`` values per image: the sum over layers of
    height x width x filters) kept twice, before and after its activation, for a batch.
    TensorFlow's own workspace comes on top, so a machine with less memory cannot train it.
    """
    weights = TRAIN_COPIES_PER_WEIGHT * FLOAT32_BYTES * n_weights
    activations = TRAIN_COPIES_PER_ACTIVATION * FLOAT32_BYTES * batch_size * activations_per_image
    return int(weights + activations)


def search_memory_bytes(n_samples: int) -> int:
    """A lower estimate of the search objective's memory: about 96 bytes per sampled vector
    (its hit interval, norm, sorted interval ends and one evaluation's terms, float64)."""
    return int(SEARCH_BYTES_PER_SAMPLE * n_samples)


def evaluate_memory_bytes(z_dim: int, n_samples: int, n_scales: int, n_ks: int) -> int:
    """A lower estimate of the evaluation's memory beside the latents themselves, in bytes.

    ``n_scales``: the b and scale values of every sampler together. Per value: the kept radii
    (at most 20,000, float32) and the miss-count histograms (``n_ks x (z_dim + 1)`` int64);
    the drawing buffers of one chunk (4,096 vectors: float32 draws and residuals, a boolean
    mask, float64 radii per value); the mvn sampler's covariance and its factor (float64).
    """
    kept = min(n_samples, KEPT_RADII)
    per_scale = FLOAT32_BYTES * kept + 8 * n_ks * (z_dim + 1)
    chunk = min(n_samples, HIT_CHUNK)
    buffers = chunk * z_dim * (2 * FLOAT32_BYTES + 1) + 8 * chunk * n_scales
    covariance = 2 * 8 * z_dim * z_dim
    return int(n_scales * per_scale + buffers + covariance)


def available_memory_bytes() -> int | None:
    """The memory of this machine, or of its container's limit when smaller; ``None`` when
    neither can be read (then nothing is refused)."""
    total: int | None = None
    try:
        import psutil  # optional: not in the served generator's requirements

        total = int(psutil.virtual_memory().total)
    except (ImportError, OSError):
        try:
            total = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            total = None
    limit = _cgroup_limit_bytes()
    if limit is not None and (total is None or limit < total):
        return limit
    return total


def _cgroup_limit_bytes() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return None


def check_memory(needed: int, what: str, advice: str, available: int | None = None) -> None:
    """A :class:`UserError` when the estimate ``needed`` exceeds the machine's memory.

    ``what`` names the values that decide the estimate (``image_size=1024 with z_dim=4096``),
    ``advice`` says which to lower; ``available`` defaults to :func:`available_memory_bytes`.
    """
    total = available_memory_bytes() if available is None else available
    if total is None or needed <= total:
        return
    raise UserError(
        f"{what} needs at least {_gib(needed)} of memory, but this machine has {_gib(total)}; "
        f"{advice}"
    )


def _gib(n_bytes: float) -> str:
    value = n_bytes / GIB
    return f"{value:.3g} GiB" if value < 1000 else f"{math.ceil(value):,} GiB"
