"""The exponentially weighted moving average: the lecture's numbers, closed form, both APIs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optimlab.ewma import EWMA, effective_window, ewma, ewma_weights

TEMPERATURES = [25.0, 13.0, 17.0, 31.0, 43.0]  # the lecture's D1..D5

betas = st.floats(0.0, 0.999, allow_nan=False)
series_1d = hnp.arrays(
    np.float64,
    st.integers(1, 60),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


def stream(series, beta, **kwargs):
    avg = EWMA(beta, **kwargs)
    return np.array([avg.update(v) for v in series])


# -- the lecture ---------------------------------------------------------------------------


def test_lecture_worked_example_from_zero():
    avg = EWMA(0.9)
    assert avg.update(13) == pytest.approx(1.3, abs=1e-14)
    assert avg.update(17) == pytest.approx(2.87, abs=1e-14)
    assert avg.t == 2
    assert ewma([13, 17], 0.9) == pytest.approx([1.3, 2.87], abs=1e-14)


def test_lecture_worked_example_from_first_value():
    avg = EWMA(0.9, initial="first")
    assert avg.update(25) == 25.0  # V_0 = theta_0, returned unchanged
    assert avg.t == 0 and avg.count == 1
    assert avg.update(13) == pytest.approx(23.8, abs=1e-14)
    assert avg.t == 1 and avg.count == 2
    out = ewma(TEMPERATURES, 0.9, initial="first")
    assert out[0] == 25.0
    assert out[1] == pytest.approx(23.8, abs=1e-14)
    assert out[2] == pytest.approx(0.9 * 23.8 + 0.1 * 17, abs=1e-13)


def test_numeric_initial_is_v0():
    # V_0 = 25 given explicitly, then D2 = 13: same 23.8 as the lecture
    assert EWMA(0.9, initial=25).update(13) == pytest.approx(23.8, abs=1e-14)
    assert ewma([13.0], 0.9, initial=25.0)[0] == pytest.approx(23.8, abs=1e-14)


def test_bias_correction_of_the_worked_example():
    avg = EWMA(0.9, bias_correction=True)
    assert avg.update(13) == pytest.approx(13.0, abs=1e-13)  # 1.3 / (1 - 0.9)
    assert avg.update(17) == pytest.approx(2.87 / (1 - 0.81), abs=1e-13)
    assert avg.raw_value == pytest.approx(2.87, abs=1e-14)


def test_effective_window():
    assert effective_window(0.9) == pytest.approx(10.0)
    assert effective_window(0.99) == pytest.approx(100.0)
    assert effective_window(0.0) == 1.0


# -- closed form ----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(series=series_1d, beta=betas)
def test_closed_form_equals_recursion(series, beta):
    out = ewma(series, beta)
    scale = max(1.0, float(np.max(np.abs(series))))
    for t in range(1, len(series) + 1):
        closed = (1 - beta) * sum(beta ** (t - i) * series[i - 1] for i in range(1, t + 1))
        assert out[t - 1] == pytest.approx(closed, rel=1e-12, abs=1e-12 * scale)
        assert ewma_weights(t, beta) @ series[:t] == pytest.approx(
            out[t - 1], rel=1e-12, abs=1e-12 * scale
        )


def test_weights():
    w = ewma_weights(3, 0.9)
    assert w == pytest.approx([0.1 * 0.81, 0.1 * 0.9, 0.1])
    assert w.sum() == pytest.approx(1 - 0.9**3)
    assert ewma_weights(3, 0.9, normalized=True).sum() == pytest.approx(1.0, abs=1e-15)
    assert ewma_weights(0, 0.9).shape == (0,)
    assert ewma_weights(4, 0.0) == pytest.approx([0, 0, 0, 1])


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999])
def test_last_effective_window_carries_one_minus_one_over_e(beta):
    window = round(effective_window(beta))
    w = ewma_weights(50 * window, beta, normalized=True)
    share = w[-window:].sum()
    assert share == pytest.approx(1 - beta**window)
    if beta >= 0.99:
        assert 0.63 < share < 0.64
    assert share == pytest.approx(1 - 1 / math.e, abs=0.02)


# -- bias correction ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    c=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    beta=betas,
    n=st.integers(1, 50),
)
def test_bias_corrected_constant_series_is_exactly_constant(c, beta, n):
    series = np.full(n, c)
    assert np.all(ewma(series, beta, bias_correction=True) == c)
    avg = EWMA(beta, bias_correction=True)
    for _ in range(n):
        assert avg.update(c) == c


@settings(max_examples=100, deadline=None)
@given(series=series_1d, beta=betas)
def test_bias_correction_divides_by_one_minus_beta_to_the_t(series, beta):
    corrected = ewma(series, beta, bias_correction=True)
    raw = ewma(series, beta)
    t = np.arange(1, len(series) + 1)
    scale = max(1.0, float(np.max(np.abs(series))))
    # the raw average is divided by 1 - beta^t, which can be as small as 1 - 0.999
    expected = raw / (1 - beta**t)
    assert corrected == pytest.approx(expected, rel=1e-9, abs=1e-9 * scale)
    assert corrected == pytest.approx(
        [ewma_weights(k, beta, normalized=True) @ series[:k] for k in t], rel=1e-9, abs=1e-9 * scale
    )


def test_beta_zero_gives_the_series_itself():
    x = np.array([3.0, -1.5, 8.25, 0.0])
    assert np.array_equal(ewma(x, 0.0), x)
    assert np.array_equal(ewma(x, 0.0, bias_correction=True), x)
    assert np.array_equal(ewma(x, 0.0, initial="first"), x)
    assert np.array_equal(stream(x, 0.0), x)


# -- streaming == vectorized -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    series=series_1d,
    beta=betas,
    options=st.sampled_from(
        [{}, {"initial": 2.5}, {"initial": "first"}, {"bias_correction": True}]
    ),
)
def test_streaming_equals_vectorized(series, beta, options):
    got = ewma(series, beta, **options)
    want = stream(series, beta, **options)
    scale = max(1.0, float(np.max(np.abs(series))))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12 * scale)


@pytest.mark.parametrize(
    "options", [{}, {"initial": -4.0}, {"initial": "first"}, {"bias_correction": True}]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streaming_equals_vectorized_arrays_and_dtypes(options, dtype):
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(40, 3, 2)) * 10 + 5).astype(dtype)
    got = ewma(x, 0.95, **options)
    avg = EWMA(0.95, **options)
    want = np.stack([avg.update(row) for row in x])
    assert got.dtype == dtype and want.dtype == dtype and avg.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_float32_is_computed_in_float32():
    x = np.linspace(0, 1, 30, dtype=np.float32)
    out = ewma(x, 0.9)
    assert out.dtype == np.float32
    # the same recursion written out in float32 arithmetic (beta and 1 - beta rounded once)
    b, v, want = np.float32(0.9), np.float32(0.0), []
    for value in x:
        v = b * v + np.float32(1 - 0.9) * value
        want.append(v)
    np.testing.assert_allclose(out, np.array(want, dtype=np.float32), rtol=2e-7, atol=0)
    np.testing.assert_allclose(out, ewma(x.astype(np.float64), 0.9), rtol=1e-5)


def test_integer_input_is_float64():
    assert ewma(np.arange(5), 0.5).dtype == np.float64
    assert EWMA(0.5).update(np.arange(3)).dtype == np.float64


# -- axis --------------------------------------------------------------------------------------


def test_axis_handling_2d():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    along0 = ewma(x, 0.8, axis=0)
    along1 = ewma(x, 0.8, axis=1)
    along_last = ewma(x, 0.8, axis=-1)
    assert along0.shape == along1.shape == x.shape
    for j in range(4):
        np.testing.assert_allclose(along0[:, j], stream(x[:, j], 0.8), rtol=1e-12, atol=1e-12)
    for i in range(6):
        np.testing.assert_allclose(along1[i], stream(x[i], 0.8), rtol=1e-12, atol=1e-12)
    assert np.array_equal(along1, along_last)
    np.testing.assert_array_equal(ewma(x.T, 0.8, axis=1), along0.T)
    for opts in ({"initial": "first"}, {"bias_correction": True}, {"initial": 1.5}):
        np.testing.assert_allclose(
            ewma(x, 0.8, axis=1, **opts), ewma(x.T, 0.8, axis=0, **opts).T, rtol=0, atol=0
        )


def test_empty_series():
    assert ewma(np.empty(0), 0.9).shape == (0,)
    assert ewma(np.empty((3, 0)), 0.9, axis=1, bias_correction=True).shape == (3, 0)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"beta": 1.0}, ValueError, r"beta must be a float in \[0, 1\), got 1"),
        ({"beta": 1}, ValueError, r"beta .*\[0, 1\)"),
        ({"beta": -0.1}, ValueError, r"beta .*got -0\.1"),
        ({"beta": float("nan")}, ValueError, r"beta must be a finite float"),
        ({"beta": float("inf")}, ValueError, r"beta must be a finite float"),
        ({"beta": "0.9"}, TypeError, r"beta .*'0\.9'"),
        ({"beta": True}, TypeError, r"beta"),
        ({"beta": None}, TypeError, r"beta"),
        ({"beta": 0.9, "initial": "last"}, ValueError, r"initial must be one of 'first'.*'last'"),
        ({"beta": 0.9, "initial": None}, TypeError, r"initial"),
        ({"beta": 0.9, "initial": float("nan")}, ValueError, r"initial"),
        ({"beta": 0.9, "bias_correction": 1}, TypeError, r"bias_correction must be True or False"),
        (
            {"beta": 0.9, "bias_correction": True, "initial": "first"},
            ValueError,
            r"bias_correction=True cannot be combined with initial='first'",
        ),
        (
            {"beta": 0.9, "bias_correction": True, "initial": 25.0},
            ValueError,
            r"needs initial=0\.0",
        ),
    ],
)
def test_error_table(kwargs, error, match):
    kwargs = dict(kwargs)
    with pytest.raises(error, match=match):
        EWMA(**kwargs)
    beta = kwargs.pop("beta")
    with pytest.raises(error, match=match):
        ewma([1.0, 2.0], beta, **kwargs)


def test_update_errors():
    avg = EWMA(0.9)
    avg.update(np.zeros(3))
    with pytest.raises(ValueError, match=r"theta has shape \(2,\).*shape \(3,\)"):
        avg.update(np.zeros(2))
    with pytest.raises(ValueError, match=r"theta must be finite"):
        avg.update(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match=r"theta must be finite"):
        EWMA(0.9).update(float("inf"))
    with pytest.raises(TypeError, match=r"theta must hold real numbers"):
        EWMA(0.9).update("13")
    with pytest.raises(TypeError, match=r"theta must hold real numbers"):
        EWMA(0.9).update(True)
    assert avg.count == 1  # failed updates change nothing


def test_series_errors():
    with pytest.raises(ValueError, match=r"series must be finite"):
        ewma([1.0, float("nan")], 0.9)
    with pytest.raises(ValueError, match=r"at least one dimension"):
        ewma(3.0, 0.9)
    with pytest.raises(ValueError, match=r"axis must be an integer in \[-2, 1\], got 2"):
        ewma(np.zeros((2, 2)), 0.9, axis=2)
    with pytest.raises(TypeError, match=r"series must hold real numbers"):
        ewma(["a", "b"], 0.9)
    with pytest.raises(ValueError, match=r"t must be an integer >= 0"):
        ewma_weights(-1, 0.9)
    with pytest.raises(ValueError, match=r"beta"):
        effective_window(1.0)


# -- streaming state ---------------------------------------------------------------------------


def test_properties_before_and_after_updates():
    avg = EWMA(0.9, bias_correction=True)
    assert avg.value is None and avg.raw_value is None and avg.t == 0 and avg.shape is None
    assert "no values yet" in repr(avg)
    avg.update(2.0)
    assert avg.value == 2.0 and isinstance(avg.value, float)
    assert avg.raw_value == pytest.approx(0.2)
    assert avg.t == 1 and avg.shape == ()
    assert repr(avg).startswith("EWMA(beta=0.9, bias_correction=True, initial=0.0)")
    avg.reset()
    assert avg.value is None and avg.t == 0
    avg.update(np.ones(2))  # a new shape after reset is fine
    assert avg.shape == (2,)


def test_returned_arrays_are_copies():
    avg = EWMA(0.5)
    theta = np.array([1.0, 2.0])
    out = avg.update(theta)
    out[:] = 100.0
    theta[:] = -5.0
    assert avg.value == pytest.approx([0.5, 1.0])


@pytest.mark.parametrize(
    "options", [{}, {"initial": 3.0}, {"initial": "first"}, {"bias_correction": True}]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_exact_continuation(options, dtype):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(30, 4)).astype(dtype)
    full = EWMA(0.97, **options)
    want = [full.update(row) for row in x]
    first = EWMA(0.97, **options)
    for row in x[:12]:
        first.update(row)
    state = first.state_dict()
    second = EWMA(0.97, **options)
    second.load_state_dict(state)
    assert second.t == first.t and second.count == 12
    got = [second.update(row) for row in x[12:]]
    for a, b in zip(got, want[12:], strict=True):
        assert np.array_equal(a, b) and a.dtype == dtype
    # the state dict holds copies
    state["raw_value"][:] = 0.0
    assert not np.all(first.raw_value == 0.0)


def test_state_dict_of_fresh_average_and_mismatches():
    fresh = EWMA(0.9).state_dict()
    avg = EWMA(0.9)
    avg.update(1.0)
    avg.load_state_dict(fresh)
    assert avg.value is None and avg.t == 0
    with pytest.raises(ValueError, match=r"state has beta=0\.9, but this EWMA has beta=0\.8"):
        EWMA(0.8).load_state_dict(fresh)
    with pytest.raises(ValueError, match=r"initial"):
        EWMA(0.9, initial="first").load_state_dict(fresh)
    with pytest.raises(ValueError, match=r"missing the key\(s\) 'count'"):
        EWMA(0.9).load_state_dict({k: v for k, v in fresh.items() if k != "count"})
    with pytest.raises(TypeError, match=r"mapping"):
        EWMA(0.9).load_state_dict([1, 2])
