"""The study's observations as metrics: names as DESIGN.md, counts as the rules say."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aelatent.core.components import ComponentStats
from aelatent.core.observations import (
    axes_for_fraction,
    centre_observations,
    component_observations,
    metric_number,
    value_range_observations,
)


def _stats(mu, hw, **overrides) -> ComponentStats:
    mu = np.asarray(mu, dtype=np.float64)
    hw = np.asarray(hw, dtype=np.float64)
    defaults = {f.name: np.zeros_like(mu) for f in dataclasses.fields(ComponentStats)}
    defaults.update(mu=mu, hw=hw, gaussian_like=np.ones(mu.shape, bool),
                    dominant=(np.abs(mu) >= 0.25) | (hw >= 1.5))
    defaults.update(overrides)
    return ComponentStats(**defaults)


def test_metric_numbers_use_g_format():
    assert [metric_number(x) for x in (1.5, 12.0, 0.25, 1.0, 3)] == ["1.5", "12", "0.25", "1", "3"]


def test_counts_follow_the_thresholds_inclusively():
    mu = [0.0, 0.25, -0.3, 1.0, -2.0, 0.1, 0.0, 0.0]
    hw = [0.5, 0.9, 1.0, 1.2, 1.5, 3.0, 2.9, 0.2]
    gaussian = np.array([1, 1, 1, 0, 1, 1, 1, 1], bool)
    values = component_observations(_stats(mu, hw, gaussian_like=gaussian))
    assert values == {
        "frac_gaussian_like": 7 / 8,
        "frac_mu_near_0": 4 / 8,  # |mu| < 0.25: 0, 0.1, 0, 0
        "n_mu_abs_ge_0.25": 4.0,
        "n_mu_abs_ge_1": 2.0,
        "n_hw_ge_1": 5.0,
        "n_hw_ge_1.5": 3.0,
        "n_hw_ge_3": 1.0,
        "n_dominant": 6.0,
    }
    assert all(isinstance(v, float) for v in values.values())


def test_counts_of_another_estimate():
    s = _stats([0.0, 0.0], [0.5, 0.5], mu_fit=np.array([0.3, 1.2]), hw_fit=np.array([2.0, 0.1]))
    values = component_observations(s, estimate="fit")
    assert values["n_mu_abs_ge_0.25"] == 2 and values["n_mu_abs_ge_1"] == 1
    assert values["n_hw_ge_1.5"] == 1


def test_axes_carrying_the_centre():
    assert axes_for_fraction(np.array([3.0, 4.0, 0.0, 0.0])) == 2  # 16/25 < 0.9 <= 25/25
    assert axes_for_fraction(np.array([0.0, -5.0, 0.1])) == 1
    assert axes_for_fraction(np.zeros(4)) == 0
    assert axes_for_fraction(np.ones(10), 0.9) == 9
    values = centre_observations(np.array([3.0, 0.0, -4.0]))
    assert values == {"centre_norm": pytest.approx(5.0), "n_axes_centre_90": 2.0}


def test_value_range():
    assert value_range_observations(-11.2, 9.0, 11.5) == {
        "value_min": -11.2, "value_max": 9.0, "value_range": 11.5,
    }
