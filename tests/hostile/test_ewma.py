"""EWMA and ewma against hostile hyperparameters, values and states."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol

from .registry import HOSTILE, Bool, Real
from .world import accepted, refuses, shown

E = importlib.import_module("optimlab.ewma")  # the module (optimlab.ewma is the function)

KINDS = {"beta": Real(0.0, 1.0, high_open=True), "bias_correction": Bool()}


@pytest.mark.parametrize("name", sorted(KINDS))
@settings(max_examples=60)
@given(value=HOSTILE)
def test_hyperparameters(name, value):
    kwargs = {"beta": 0.9, name: value}
    verdict, expected = KINDS[name].verdict(value)
    if verdict == "refuse":
        refuses(lambda: ol.EWMA(**kwargs), exc=expected, says=(name, shown(value)))
        refuses(lambda: ol.ewma(np.ones(3), **kwargs), exc=expected, says=(name,))
        return
    assert getattr(ol.EWMA(**kwargs), name) == expected
    accepted()


@settings(max_examples=100)
@given(value=HOSTILE, dtype=st.sampled_from([np.float32, np.float64]))
def test_values(value, dtype):
    """A value is a real number or array of them, finite in the average's dtype; a refused
    value leaves the average as it was."""
    e = ol.EWMA(0.5)
    e.update(np.zeros((), dtype))
    try:
        arr = np.asarray(value)
        ok = arr.dtype.kind in "iuf" and arr.shape == ()
        with np.errstate(over="ignore", invalid="ignore"):
            ok = ok and bool(np.isfinite(arr.astype(dtype)))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        refuses(lambda: e.update(value), world=(e,), says=("theta",))
        return
    assert np.isfinite(e.update(value))
    accepted()


def test_ragged_and_odd_series():
    for bad in ([[1.0], [1.0, 2.0]], "abc", {"a": 1}):
        refuses(lambda: ol.EWMA(0.9).update(bad), says=("theta",))  # noqa: B023
        refuses(lambda: ol.ewma(bad, 0.9), says=("series",))  # noqa: B023


@pytest.mark.parametrize(
    "count",
    [-1, 1.5, True, "2", 2**63, 10**400],
    ids=["-1", "1.5", "True", "str", "2**63", "10**400"],
)
def test_state_counts(count):
    e = ol.EWMA(0.9, bias_correction=True)
    e.update(np.float32(2.0))
    state = dict(e.state_dict(), count=count)
    refuses(lambda: e.load_state_dict(state), world=(e,), says=("count", shown(count)))


def test_weights_and_window():
    for t in (-1, 1.5, 10**400, "3"):
        refuses(lambda: E.ewma_weights(t, 0.9), says=("t",))  # noqa: B023
    refuses(lambda: E.effective_window(1.0), exc=ValueError, says=("beta", "[0, 1)"))
    accepted()
