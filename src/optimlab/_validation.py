"""Up-front checks of hyperparameters, with errors that name the argument, its value and the
valid range.

Every public constructor in optimlab validates its arguments through these helpers, so a bad
value fails at construction time (never in the middle of a step) with a message such as::

    ValueError: beta_1 must be a float in [0, 1), got 1.5

Integers are accepted wherever a float is meant (``learning_rate=1``), booleans are not (a
``True`` learning rate is almost always a bug).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_float",
    "check_optional_float",
    "check_int",
    "check_bool",
    "check_choice",
    "describe_range",
]


def describe_range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    """Render an interval the way the error messages print it, e.g. ``[0, 1)`` or ``> 0``."""
    if low is None and high is None:
        return "any finite value"
    if high is None:
        return f"> {_fmt(low)}" if low_open else f">= {_fmt(low)}"
    if low is None:
        return f"< {_fmt(high)}" if high_open else f"<= {_fmt(high)}"
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    return f"in {left}{_fmt(low)}, {_fmt(high)}{right}"


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` if it is a finite real number in the interval, else raise.

    ``TypeError`` for a non-number (strings, booleans, None), ``ValueError`` for NaN, Inf or a
    value outside ``[low, high]`` (ends open where ``low_open``/``high_open``).
    """
    what = describe_range(low, high, low_open, high_open)
    if not _is_real_number(value):
        # NumPy 0-d arrays and scalars are numbers too.
        try:
            import numpy as np

            if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
                value = value.item()
            else:
                raise TypeError
        except TypeError:
            raise TypeError(
                f"{name} must be a float {what}, got {value!r} of type {type(value).__name__}"
            ) from None
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite float {what}, got {value!r}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be a float {what}, got {value!r}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be a float {what}, got {value!r}")
    return x


def check_optional_float(name: str, value: Any, *args: Any, **kwargs: Any) -> float | None:
    """Like :func:`check_float`, but ``None`` passes through (an option that is switched off)."""
    if value is None:
        return None
    return check_float(name, value, *args, **kwargs)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``int(value)`` for an integral number in ``[low, high]``, else raise.

    A float with an integral value (``10.0``) is accepted; ``10.5`` and booleans are not.
    """
    what = describe_range(low, high, False, False)
    if not _is_real_number(value):
        raise TypeError(f"{name} must be an integer {what}, got {value!r}")
    if not float(value).is_integer():
        raise ValueError(f"{name} must be an integer {what}, got {value!r}")
    x = int(value)
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{name} must be an integer {what}, got {value!r}")
    return x


def check_bool(name: str, value: Any) -> bool:
    """Accept only real booleans (``True``/``False``, NumPy bools): ``1`` or ``"yes"`` is a bug."""
    try:
        import numpy as np

        if isinstance(value, np.bool_):
            return bool(value)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Accept one of ``choices``; the error lists them all."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value
