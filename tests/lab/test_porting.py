"""The porting chapter's pieces: its learning rates, its gap measure, its claims (the
frameworks themselves are in tests/cross_framework)."""

import math

import numpy as np
import pytest

from optimlab.lab.experiments import porting


def test_the_learning_rate_drops_once_by_the_stated_factor():
    rates = porting.learning_rates(0.05)
    assert rates.shape == (porting.STEPS,)
    assert set(rates[: porting.SWITCH]) == {0.05}
    assert set(rates[porting.SWITCH :]) == {0.05 * porting.DROP}
    assert set(porting.learning_rates(0.05, constant=True)) == {0.05}


@pytest.mark.parametrize("bad", [0.0, -1e-3, math.nan, math.inf, "0.1", None, True])
def test_a_nonsense_learning_rate_is_refused_by_name(bad):
    with pytest.raises((TypeError, ValueError), match="learning_rate"):
        porting.learning_rates(bad)


def test_the_gap_is_relative_to_the_largest_entry_and_safe_at_zero():
    a = {"w": np.array([1.0, 2.0]), "b": np.zeros(2)}
    b = {"w": np.array([1.0, 4.0]), "b": np.zeros(2)}
    assert porting.deviation(a, b) == 0.5
    assert porting.deviation(b, b) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        porting.deviation([np.zeros(2)], [np.zeros(3)])
