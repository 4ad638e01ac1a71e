"""The bounds and memory estimates of aelatent.limits, and the shape arithmetic they use."""

from __future__ import annotations

import os
import random
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

from aelatent import limits
from aelatent.config import ConvStack, conv_scratch_bytes, load_case, network_shapes
from aelatent.core.hits import hit_grid
from aelatent.core.objective import RadiusBand, UniformSearchObjective
from aelatent.core.samplers import UniformSampler
from aelatent.errors import UserError
from aelatent.limits import (
    MAX_K,
    MAX_SCALE,
    check_at_most,
    check_distinct_labels,
    check_memory,
    evaluate_memory_bytes,
    search_memory_bytes,
    train_memory_bytes,
)

GIB = 2**30


def test_check_at_most_names_the_value_the_bound_and_why():
    check_at_most(1024, 1024, "image_size", "why")
    with pytest.raises(UserError) as error:
        check_at_most(2_000_000_000, 4096, "model.z_dim", "a reason", "in x.yaml")
    assert str(error.value) == (
        "model.z_dim=2000000000 in x.yaml is out of range; expected at most 4096 (a reason)"
    )
    with pytest.raises(UserError, match=r"b_max=1e\+06 is out of range; expected at most 100000"):
        check_at_most(1e6, MAX_SCALE, "b_max", "why")


def test_values_up_to_the_bound_print_without_an_exponent_sign():
    for value in (MAX_SCALE, MAX_K, 99_999.94, 12.5, 1e-5):
        assert "+" not in f"{value:g}"
    assert "+" in f"{1e6:g}"  # what the bound keeps out of metric names


def test_check_distinct_labels():
    check_distinct_labels([1.0, 1.5, 2.0], "b", "1,1.5,2")
    check_distinct_labels([2.0, 2.0], "b", "2,2.0")  # equal: the same metric, no loss
    check_distinct_labels([2.0, 2.00001], "b", "2,2.00001")  # 2 and 2.00001 print apart
    with pytest.raises(UserError) as error:
        check_distinct_labels([1.0, 2.0, 2.000001], "b", "1, 2,2.000001")
    message = str(error.value)
    assert message.startswith("b='1, 2,2.000001': 2 and 2.000001 both print as 2 ")
    with pytest.raises(UserError, match=r"0\.1 and 0\.1000001 both print as 0\.1"):
        check_distinct_labels([0.1, 0.1000001], "k", "0.1,0.1000001")


def test_check_memory():
    check_memory(GIB, "x", "y", available=2 * GIB)
    check_memory(GIB, "x", "y", available=GIB)
    with pytest.raises(UserError) as error:
        check_memory(
            3 * GIB, "training case I (image_size=1024)", "lower image_size", available=GIB
        )
    assert str(error.value) == (
        "training case I (image_size=1024) needs at least 3 GiB of "
        "memory, but this machine has 1 GiB; lower image_size"
    )


def test_check_memory_without_a_known_size_refuses_nothing(monkeypatch):
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: None)
    check_memory(10**18, "x", "y")


def test_available_memory_is_this_machines():
    available = limits.available_memory_bytes()
    assert available is not None and available > 2**26

    assert available <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_network_shapes_match_keras():
    """The arithmetic gives Keras' shapes and weight counts, for any padding and strides."""
    from aelatent.model import build_decoder, build_encoder

    model = load_case("I").model
    rng = random.Random(4)
    for _ in range(8):
        pick = lambda *options: tuple(rng.choice(options) for _ in range(4))  # noqa: E731
        config = replace(
            model,
            z_dim=8,
            encoder=ConvStack((4, 4, 4, 4), pick(1, 2, 3, 5), pick(1, 2, 3), pick("same", "valid")),
            decoder=ConvStack(
                (4, 4, 4, "n_ch"), pick(1, 2, 3, 5), pick(1, 2, 3), pick("same", "valid")
            ),
        )
        size = rng.choice([16, 32, 48])
        try:
            shapes = network_shapes(config, size, 3)
        except UserError:  # a valid kernel larger than its feature map: Keras cannot build it
            with pytest.raises(ValueError):
                build_encoder(config, size, 3)
            continue
        encoder = build_encoder(config, size, 3)
        height, width, channels = (
            int(d) for d in encoder.get_layer("encoder_flatten").input.shape[1:]
        )
        features = (height, width, channels)
        decoder = build_decoder(config, features, 3)
        assert features == shapes.encoder[-1]
        assert tuple(int(d) for d in decoder.output.shape[1:]) == shapes.decoder[-1]
        assert encoder.count_params() + decoder.count_params() == shapes.n_weights


def test_train_memory_of_the_reference_networks():
    case = load_case("I")
    shapes = network_shapes(case.model, 64, 1)
    assert shapes.n_weights == 2_876_929
    needed = train_memory_bytes(shapes.n_weights, shapes.activations_per_image, 32)
    assert 50e6 < needed < 200e6  # tens of MB: fits anywhere
    large = network_shapes(case.model, 1024, 3)
    assert train_memory_bytes(large.n_weights, large.activations_per_image, 32) > 8 * GIB


def test_search_memory_estimate_is_close_to_what_the_objective_uses():
    n = 100_000
    real = np.random.default_rng(0).normal(9, 1, 1000).clip(1)
    tracemalloc.start()
    objective = UniformSearchObjective(
        np.zeros(16), np.ones(16), 2.0, RadiusBand(7, 11, 9), n, 0, kind="typical", real_radii=real
    )
    objective.curve(np.geomspace(0.05, 12, 3))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 0.6 < peak / search_memory_bytes(n) < 1.5


def test_evaluate_memory_estimate_is_close_to_what_the_grid_uses():
    d, scales, ks, n = 64, [0.5, 1.0, 2.0], [1.0, 2.0], 20_000
    tracemalloc.start()
    hit_grid(
        UniformSampler(1.0, d), scales, ks, np.zeros(d), np.ones(d), n, np.random.default_rng(0)
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 0.6 < peak / evaluate_memory_bytes(d, n, len(scales), len(ks)) < 1.6


@pytest.mark.parametrize(
    ("kernel", "stride", "size", "measured"),
    [
        # TensorFlow 2.21's failed allocations on a 2-thread CPU, halved (bytes per thread)
        (161, 2, 64, 29_597_433_872 // 2),
        (201, 2, 64, 68_008_382_480 // 2),
        (301, 2, 64, 315_738_341_440 // 2),
        (96, 2, 1024, 31_325_528_064 // 2),
        (256, 2, 256, 272_739_000_000 // 2),  # "254.01GiB"
    ],
)
def test_conv_scratch_matches_tensorflows_allocations(kernel, stride, size, measured):
    """Issue 28/8: the scratch TensorFlow's CPU convolution aborted on (rc -6), per thread."""
    assert conv_scratch_bytes(kernel, stride, size, "same") == pytest.approx(measured, rel=2e-3)


def test_conv_scratch_enters_the_network_and_the_memory_check(monkeypatch):
    case = load_case("I")
    assert network_shapes(case.model, 64, 3).scratch_bytes(threads=16) < 10e6  # 3x3: nothing
    wide = replace(
        case.model,
        encoder=replace(case.model.encoder, kernels=(limits.MAX_KERNEL, 3, 3, 3)),
        decoder=replace(case.model.decoder, kernels=(3, 3, 3, limits.MAX_KERNEL)),
    )
    shapes = network_shapes(wide, 1024, 3)
    # the decoder's last layer writes the map the encoder's first reads: the same scratch
    assert shapes.scratch_per_thread == conv_scratch_bytes(limits.MAX_KERNEL, 2, 1024, "same")
    assert 400e6 < shapes.scratch_per_thread < 600e6  # the bound's worst case, per thread
    assert shapes.scratch_bytes(threads=16) == 16 * shapes.scratch_per_thread
    assert conv_scratch_bytes(161, 1, 64, "same") == 0  # stride 1 takes no such buffer
    from aelatent.jobs.train import check_training_memory

    large = replace(case, image_size=1024, model=wide)
    batch = large.training.batch_size
    needed = train_memory_bytes(shapes.n_weights, shapes.activations_per_image, batch)
    needed += shapes.scratch_bytes()
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: needed)
    check_training_memory(large)
    monkeypatch.setattr(limits, "available_memory_bytes", lambda: needed - 1)
    with pytest.raises(UserError, match=r"lower .*the kernels"):
        check_training_memory(large)
