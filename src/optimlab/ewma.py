"""The exponentially weighted moving average (EWMA), the building block of momentum and Adam.

Definitions (from the lecture on optimizers; notation: theta_t is the t-th value of the series,
V_t the average after it, beta in [0, 1))::

    V_t = beta * V_{t-1} + (1 - beta) * theta_t            t = 1, 2, ...

with a starting value V_0 that is either 0 (the default) or the first value of the series,
V_0 = theta_0. Unrolled, with V_0 = 0::

    V_t = (1 - beta) * sum_{i=1..t} beta^(t-i) * theta_i

so theta_i carries the weight (1 - beta) * beta^(t-i) (:func:`ewma_weights`). The weights sum
to 1 - beta^t < 1, which pulls early averages towards V_0 = 0; the *bias correction* of Adam
(Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", section 3) divides it out::

    V_t_corrected = V_t / (1 - beta^t)

which makes the weights sum to exactly one. ``1 / (1 - beta)`` is the *effective window*
(:func:`effective_window`): beta = 0.9 averages over about the last 10 values, and for beta close
to 1 those last 1/(1 - beta) values carry about 1 - 1/e ~ 63% of the total weight. beta = 0
gives V_t = theta_t.

Worked example of the lecture (beta = 0.9, V_0 = 0): theta_1 = 13 gives V_1 = 0.1 * 13 = 1.3,
then theta_2 = 17 gives V_2 = 0.9 * 1.3 + 0.1 * 17 = 2.87. With the lecture's temperatures
D1..D5 = 25, 13, 17, 31, 43 and V_0 = theta_0 = 25 (``initial="first"``), the first average is
V_1 = 0.9 * 25 + 0.1 * 13 = 23.8.

Two interfaces with the same conventions, which agree to rounding: both evaluate
beta*V + (1-beta)*theta with the same rounded coefficients, so on common builds of SciPy they
agree bit for bit; the tests require agreement to 1e-12:

* :class:`EWMA`: streaming, one value (a number or an array of fixed shape) at a time, with
  ``state_dict``/``load_state_dict`` for an exact continuation.
* :func:`ewma`: a whole series at once along one axis, with :func:`scipy.signal.lfilter`.

How the bias-corrected value is computed. Mathematically V_t / (1 - beta^t); numerically, with
r = theta_1 (the first value) and W_t the EWMA (from W_0 = 0) of the shifted series
theta_t - r::

    V_t_corrected = r + W_t / (1 - beta^t)

This is the same number (the corrected weights sum to one, so shifting the series shifts the
average), but a constant series then comes out *exactly* constant from t = 1 on (W_t = 0), and a
series with a large offset loses no precision. ``raw_value`` is still the lecture's V_t itself.
Bias correction is only defined for V_0 = 0: ``initial="first"`` or a non-zero ``initial`` with
``bias_correction=True`` raises ``ValueError``.

Dtypes: float32 input stays float32 (every product and sum is done in float32, with beta and
1 - beta rounded to float32 once); every other real input (integers, float16, float64) is
computed in float64. Booleans, complex numbers and NaN/Inf are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._validation import MAX_COUNT, check_bool, check_choice, check_float, check_int, show

__all__ = ["EWMA", "ewma", "ewma_weights", "effective_window"]

_FIRST = "first"


# --------------------------------------------------------------------------------------------
# argument checks shared by the class and the function
# --------------------------------------------------------------------------------------------


def _check_beta(beta: Any) -> float:
    return check_float("beta", beta, 0.0, 1.0, high_open=True)


def _check_initial(initial: Any) -> float | str:
    if isinstance(initial, str):
        try:
            return check_choice("initial", initial, (_FIRST,))
        except ValueError as exc:
            raise ValueError(f"{exc} (or a finite number, the starting value V_0)") from None
    return check_float("initial", initial)


def _check_hyperparameters(beta: Any, bias_correction: Any, initial: Any):
    beta = _check_beta(beta)
    bias_correction = check_bool("bias_correction", bias_correction)
    initial = _check_initial(initial)
    if bias_correction and initial == _FIRST:
        raise ValueError(
            "bias_correction=True cannot be combined with initial='first': bias correction "
            "divides V_t by 1 - beta^t, the total weight of the values seen when the average "
            "starts from V_0 = 0; with V_0 = theta_0 the weights already sum to one, and the "
            "division would inflate the average instead of correcting it"
        )
    if bias_correction and initial != 0.0:
        raise ValueError(
            f"bias_correction=True needs initial=0.0, got initial={initial!r}: bias correction "
            "divides V_t by 1 - beta^t, which only removes the pull towards V_0 when V_0 = 0"
        )
    return beta, bias_correction, initial


def _as_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, with an error naming the argument for ragged or odd input."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(
            f"{name} must be a number or an array of real numbers, got {show(value)} "
            "(ragged or not numbers)"
        ) from None


def _working_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float32 stays float32; other real dtypes compute in float64; others are refused."""
    if dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers (integers or floats), got dtype {dtype}"
            + (" (cast booleans to float explicitly)" if dtype.kind == "b" else "")
        )
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _check_finite(name: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        bad = values[~np.isfinite(values)] if values.ndim else values
        raise ValueError(
            f"{name} must be finite (in {values.dtype}), got NaN or Inf, e.g. {bad.flat[0]!r}"
        )


def _bias_denominators(beta: float, t: np.ndarray) -> np.ndarray:
    """1 - beta^t in float64, elementwise, for integer step numbers t >= 1.

    Both interfaces call this with an array, so they get bit-identical factors.
    """
    return 1.0 - np.power(beta, np.asarray(t, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------------


class EWMA:
    """Streaming exponentially weighted moving average ``V_t = beta*V_{t-1} + (1-beta)*theta_t``.

    Parameters
    ----------
    beta:
        The decay, in [0, 1). ``1/(1-beta)`` is the effective window (beta=0.9: about 10
        values); beta=0 returns the latest value.
    bias_correction:
        Report ``V_t / (1 - beta^t)`` (Adam's correction, Kingma & Ba 2015 section 3) as
        :attr:`value`. Requires ``initial=0.0``. Computed as ``r + W_t/(1 - beta^t)``, see the
        module docstring; a constant series then gives exactly that constant from t=1 on.
    initial:
        The starting value V_0: a finite number (default 0.0, broadcast to the shape of the
        values), or the string ``"first"``: V_0 = theta_0, the first value seen.

    Time index. With a numeric ``initial`` the k-th call of :meth:`update` receives theta_k and
    returns V_k, so ``t == k``. With ``initial="first"`` the first call receives theta_0 and
    returns it unchanged (V_0 = theta_0, ``t == 0``); the k-th call receives theta_{k-1} and
    returns V_{k-1} = beta*V_{k-2} + (1-beta)*theta_{k-1}, so ``t == k - 1``. :attr:`count` is
    always the number of calls.

    Values. :meth:`update` accepts a number or a NumPy array (any real dtype; NaN/Inf raise
    ``ValueError``). The first call fixes the shape (a later different shape raises
    ``ValueError``) and the dtype: float32 stays float32, anything else is float64, and later
    values are converted to it. A scalar state is returned as a Python ``float``, an array state
    as a fresh array.
    """

    def __init__(self, beta: float, bias_correction: bool = False, initial: float | str = 0.0):
        self._beta, self._bias_correction, self._initial = _check_hyperparameters(
            beta, bias_correction, initial
        )
        self.reset()

    # -- state --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every value seen (and the shape and dtype they fixed)."""
        self._count = 0
        self._raw: np.ndarray | None = None  # V_t
        self._shift: np.ndarray | None = None  # r = theta_1 (bias correction only)
        self._shifted: np.ndarray | None = None  # W_t, the EWMA of theta - r

    @property
    def beta(self) -> float:
        return self._beta

    @property
    def bias_correction(self) -> bool:
        return self._bias_correction

    @property
    def initial(self) -> float | str:
        return self._initial

    @property
    def count(self) -> int:
        """The number of values passed to :meth:`update` since construction or :meth:`reset`."""
        return self._count

    @property
    def t(self) -> int:
        """The index t of the current average V_t: :attr:`count` for a numeric ``initial``,
        ``count - 1`` for ``initial="first"`` (whose first value is theta_0); 0 before any
        update."""
        if self._initial == _FIRST:
            return max(self._count - 1, 0)
        return self._count

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape fixed by the first update (``()`` for scalars), None before it."""
        return None if self._raw is None else self._raw.shape

    @property
    def dtype(self) -> np.dtype | None:
        """float32 or float64, fixed by the first update; None before it."""
        return None if self._raw is None else self._raw.dtype

    @property
    def raw_value(self) -> float | np.ndarray | None:
        """V_t of the recursion, never bias-corrected; None before any update."""
        return None if self._raw is None else _export(self._raw)

    @property
    def value(self) -> float | np.ndarray | None:
        """The average: V_t / (1 - beta^t) with bias correction, else V_t; None before any
        update."""
        if self._raw is None:
            return None
        if not self._bias_correction:
            return _export(self._raw)
        return _export(self._corrected())

    def _corrected(self) -> np.ndarray:
        dtype = self._raw.dtype
        den = dtype.type(_bias_denominators(self._beta, np.array([self._count]))[0])
        return np.asarray(self._shifted / den + self._shift, dtype=dtype)

    # -- the recursion ------------------------------------------------------------------------

    def update(self, theta: float | np.ndarray) -> float | np.ndarray:
        """Feed the next value theta_t and return the new average (:attr:`value`)."""
        arr = _as_array("theta", theta)
        if self._raw is None:
            dtype = _working_dtype(arr.dtype, "theta")
        else:
            _working_dtype(arr.dtype, "theta")
            dtype = self._raw.dtype
            if arr.shape != self._raw.shape:
                raise ValueError(
                    f"theta has shape {arr.shape}, but this EWMA holds values of shape "
                    f"{self._raw.shape} (fixed by its first update; call reset() to start over)"
                )
        with np.errstate(over="ignore"):  # a float64 value float32 cannot hold: refused next
            arr = np.asarray(arr, dtype=dtype)
        _check_finite("theta", arr)

        beta = self._beta
        if self._raw is None:
            if self._initial == _FIRST:
                self._raw = arr.copy()
            else:
                v0 = np.full(arr.shape, self._initial, dtype=dtype)
                self._raw = np.asarray(beta * v0 + (1.0 - beta) * arr, dtype=dtype)
                if self._bias_correction:
                    self._shift = arr.copy()
                    w0 = np.zeros(arr.shape, dtype=dtype)
                    self._shifted = np.asarray(
                        beta * w0 + (1.0 - beta) * (arr - self._shift), dtype=dtype
                    )
        else:
            self._raw = np.asarray(beta * self._raw + (1.0 - beta) * arr, dtype=dtype)
            if self._bias_correction:
                self._shifted = np.asarray(
                    beta * self._shifted + (1.0 - beta) * (arr - self._shift), dtype=dtype
                )
        self._count += 1
        return self.value

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this average stands.

        Keys: ``beta``, ``bias_correction``, ``initial`` (the hyperparameters), ``count`` and
        ``raw_value`` (V_t as an array, 0-d for scalars; None before any update), plus, with
        bias correction, ``shift`` (r = theta_1) and ``shifted_value`` (W_t). Arrays are copies.
        """
        return {
            "beta": self._beta,
            "bias_correction": self._bias_correction,
            "initial": self._initial,
            "count": self._count,
            "raw_value": None if self._raw is None else self._raw.copy(),
            "shift": None if self._shift is None else self._shift.copy(),
            "shifted_value": None if self._shifted is None else self._shifted.copy(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; later updates continue bit for bit.

        The hyperparameters in ``state`` must equal this object's (``ValueError`` otherwise):
        construct the EWMA with the same arguments, then load.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"state must be a mapping from state_dict(), got {type(state).__name__}"
            )
        required = ("beta", "bias_correction", "initial", "count", "raw_value")
        missing = [k for k in required if k not in state]
        if missing:
            raise ValueError(f"state is missing the key(s) {', '.join(map(repr, missing))}")
        beta, bias_correction, initial = _check_hyperparameters(
            state["beta"], state["bias_correction"], state["initial"]
        )
        for name, mine, theirs in (
            ("beta", self._beta, beta),
            ("bias_correction", self._bias_correction, bias_correction),
            ("initial", self._initial, initial),
        ):
            if mine != theirs or type(mine) is not type(theirs):
                raise ValueError(
                    f"state has {name}={theirs!r}, but this EWMA has {name}={mine!r}; "
                    "construct it with the same arguments before loading"
                )
        count = check_int("count", state["count"], 0, MAX_COUNT)
        if count == 0:
            if any(state.get(k) is not None for k in ("raw_value", "shift", "shifted_value")):
                raise ValueError("state has count=0 but holds values")
            self.reset()
            return

        raw = _load_array("raw_value", state["raw_value"])
        shift = shifted = None
        if self._bias_correction:
            for key in ("shift", "shifted_value"):
                if state.get(key) is None:
                    raise ValueError(f"state with bias correction needs {key!r}")
            shift = _load_array("shift", state["shift"])
            shifted = _load_array("shifted_value", state["shifted_value"])
            for key, arr in (("shift", shift), ("shifted_value", shifted)):
                if arr.shape != raw.shape or arr.dtype != raw.dtype:
                    raise ValueError(
                        f"state[{key!r}] has shape {arr.shape} and dtype {arr.dtype}, but "
                        f"raw_value has shape {raw.shape} and dtype {raw.dtype}"
                    )
        self._count = count
        self._raw, self._shift, self._shifted = raw, shift, shifted

    def __repr__(self) -> str:
        state = (
            "no values yet"
            if self._raw is None
            else f"t={self.t}, shape={self._raw.shape}, dtype={self._raw.dtype}"
        )
        return (
            f"EWMA(beta={self._beta!r}, bias_correction={self._bias_correction!r}, "
            f"initial={self._initial!r})  # {state}"
        )


def _export(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr.copy()


def _load_array(name: str, value: Any) -> np.ndarray:
    arr = np.array(value, copy=True)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"state[{name!r}] must be a float32 or float64 array, got {arr.dtype}")
    _check_finite(f"state[{name!r}]", arr)
    return arr


# --------------------------------------------------------------------------------------------
# a whole series at once
# --------------------------------------------------------------------------------------------


def ewma(
    series: Any,
    beta: float,
    *,
    bias_correction: bool = False,
    initial: float | str = 0.0,
    axis: int = 0,
) -> np.ndarray:
    """The EWMA of a whole series at once, along ``axis``, by :func:`scipy.signal.lfilter`.

    ``output[k]`` (index k along ``axis``) is the average after the k-th value ``series[k]``,
    exactly as :meth:`EWMA.update` returns it when the values are fed one by one (the other
    axes are independent series):

    * numeric ``initial`` (V_0): ``series[k]`` is theta_{k+1} and ``output[k]`` is V_{k+1}
      (bias-corrected if requested: ``V_{k+1} / (1 - beta^(k+1))``);
    * ``initial="first"``: ``series[0]`` is theta_0, ``output[0] = series[0]``, and
      ``output[k] = beta*output[k-1] + (1-beta)*series[k]``.

    The recursion is the IIR filter ``y[n] = (1-beta)*x[n] + beta*y[n-1]`` (``b = [1-beta]``,
    ``a = [1, -beta]``), started from the filter state ``zi = beta*V_0``. With bias
    correction the filter runs on ``series - series[0]`` and the result is
    ``series[0] + W / (1 - beta^t)`` (see the module docstring).

    Returns a new array of the input's shape: float32 for float32 input (computed in float32),
    float64 otherwise. An empty axis gives an empty result.
    """
    from scipy.signal import lfilter  # imported here: scipy.signal takes a second to load

    beta, bias_correction, initial = _check_hyperparameters(beta, bias_correction, initial)
    x = _as_array("series", series)
    dtype = _working_dtype(x.dtype, "series")
    if x.ndim == 0:
        raise ValueError(
            f"series must be an array with at least one dimension (a time axis), got a scalar "
            f"{series!r}; use EWMA for one value at a time"
        )
    axis = check_int("axis", axis, -x.ndim, x.ndim - 1) % x.ndim
    x = np.asarray(x, dtype=dtype)
    _check_finite("series", x)
    n = x.shape[axis]
    if n == 0:
        return np.empty(x.shape, dtype=dtype)

    def along(index: int | slice) -> tuple:
        key = [slice(None)] * x.ndim
        key[axis] = index
        return tuple(key)

    b = np.array([1.0 - beta], dtype=dtype)
    a = np.array([1.0, -beta], dtype=dtype)
    beta_d = dtype.type(beta)
    first = x[along(slice(0, 1))]  # theta at index 0, keeping the axis (filter-state shape)

    if initial == _FIRST:
        out = np.empty(x.shape, dtype=dtype)
        out[along(slice(0, 1))] = first
        if n > 1:
            out[along(slice(1, None))] = lfilter(
                b, a, x[along(slice(1, None))], axis=axis, zi=beta_d * first
            )[0]
        return out

    if bias_correction:
        shifted = lfilter(b, a, x - first, axis=axis, zi=np.zeros_like(first))[0]
        den_shape = [1] * x.ndim
        den_shape[axis] = n
        den = _bias_denominators(beta, np.arange(1, n + 1)).astype(dtype).reshape(den_shape)
        return np.asarray(shifted / den + first, dtype=dtype)

    v0 = np.full(first.shape, initial, dtype=dtype)
    return np.asarray(lfilter(b, a, x, axis=axis, zi=beta_d * v0)[0], dtype=dtype)


# --------------------------------------------------------------------------------------------
# closed form
# --------------------------------------------------------------------------------------------


def ewma_weights(t: int, beta: float, *, normalized: bool = False) -> np.ndarray:
    """The weights of theta_1..theta_t in V_t (V_0 = 0): ``w[i-1] = (1-beta) * beta^(t-i)``.

    ``V_t = sum_i w[i-1] * theta_i``. They sum to ``1 - beta^t``; ``normalized=True`` divides
    them by that sum (exactly the bias correction V_t / (1 - beta^t)), so they sum to one.
    The last weight (of the newest value) is the largest. ``t=0`` gives an empty array. float64.
    """
    t = check_int("t", t, 0)
    if t > MAX_COUNT:
        raise ValueError(f"t must be an integer >= 0 (at most 2**63 - 1), got {show(t)}")
    beta = _check_beta(beta)
    normalized = check_bool("normalized", normalized)
    weights = (1.0 - beta) * np.power(beta, np.arange(t - 1, -1, -1, dtype=np.float64))
    if normalized and t > 0:
        weights = weights / _bias_denominators(beta, np.array([t]))[0]
    return weights


def effective_window(beta: float) -> float:
    """``1 / (1 - beta)``: the number of recent values an EWMA averages over, roughly.

    beta = 0.9 -> 10, beta = 0.99 -> 100. For beta close to 1 the last 1/(1-beta) values carry
    about 1 - 1/e ~ 63% of the weight (beta^(1/(1-beta)) ~ 1/e).
    """
    beta = _check_beta(beta)
    return 1.0 / (1.0 - beta)
