"""The argument checks and small helpers shared by the schedules."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any

from .._validation import (
    MAX_COUNT,
    check_int,
    show,
)

# -- helpers ------------------------------------------------------------------------------


def _is_bool(value: Any) -> bool:
    """A Python or NumPy boolean (``numpy.bool`` is named ``bool_`` before NumPy 2)."""
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )


def _check_step(step: Any) -> int:
    """``step`` as a Python int in [0, 2**63 - 1]: ints, NumPy integers, integral floats and
    0-d arrays of them (Keras passes its iteration counter, a 0-d tensor) pass."""
    what = "step must be an integer >= 0 (the number of updates already applied; at most 2**63 - 1)"
    given = step
    if not isinstance(step, numbers.Number) and hasattr(step, "__array__"):
        import numpy as np

        array = np.asarray(step)
        if array.ndim != 0 or array.dtype.kind not in "iuf":
            raise TypeError(
                f"{what}, got {show(given)}, an array of shape {array.shape} and dtype "
                f"{array.dtype}"
            )
        step = array.item()
    if _is_bool(step):
        raise TypeError(f"{what}, got {show(given)}")
    try:
        k = operator.index(step)
    except TypeError:
        if not isinstance(step, numbers.Real):
            raise TypeError(f"{what}, got {show(given)} of type {type(given).__name__}") from None
        try:
            x = float(step)
        except OverflowError:
            x = math.inf
        if not (math.isfinite(x) and x.is_integer()):
            raise ValueError(f"{what}, got {show(given)}") from None
        k = int(x)
    if not 0 <= k <= MAX_COUNT:
        raise ValueError(f"{what}, got {show(given)}")
    return k


def _check_count(name: str, value: Any, low: int) -> int:
    """A step count that the schedule turns into a float: an integer >= ``low``, at most
    2**63 - 1 (beyond, the float conversion would overflow)."""
    count = check_int(name, value, low)
    if count > MAX_COUNT:
        raise ValueError(
            f"{name} must be an integer >= {low} (at most 2**63 - 1), got {show(value)}"
        )
    return count


def _real_or_infinite(name: str, value: Any) -> float:
    """A real number as a float, +-inf allowed (integers beyond the float range become them),
    NaN refused."""
    if type(value).__name__ == "ndarray" and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()  # a 0-d array of a number, like the number
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number (+-inf allowed), got {show(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf if value > 0 else -math.inf
    if math.isnan(x):
        raise ValueError(
            f"{name} must not be NaN (a real number, +-inf allowed), got {show(value)}"
        )
    return x


def _check_sequence(name: str, value: Any) -> list:
    """A list, tuple or 1-D array, as a list (strings, sets and mappings are refused)."""
    if isinstance(value, (str, bytes, Mapping, set, frozenset)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list, got {value!r} of type {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list, got {value!r}") from None


def _check_name(name: Any) -> str:
    """A schedule's ``name`` (Keras's ``name=``, kept in ``get_config``): a string."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r} of type {type(name).__name__}")
    return name


def _to_config(value: Any) -> Any:
    """A constructor argument as JSON-serializable data."""
    from .base import LearningRateSchedule  # (they import this module)
    from .serialization import serialize

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_config(v) for v in value]
    if isinstance(value, LearningRateSchedule):
        return serialize(value)
    if callable(value):
        raise TypeError(
            f"{value!r} is a plain Python callable; plain callables are not serializable. "
            "Use a schedule from optimlab.schedules (or subclass LearningRateSchedule)."
        )
    raise TypeError(f"cannot serialize {value!r} of type {type(value).__name__}")


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a constructor argument."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """torch's ``OneCycleLR._annealing_cos``: ``start`` at pct=0, ``end`` at pct=1."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _linear_anneal(start: float, end: float, pct: float) -> float:
    """torch's ``OneCycleLR._annealing_linear``."""
    return (end - start) * pct + start
