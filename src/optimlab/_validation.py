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
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "check_float",
    "check_optional_float",
    "check_int",
    "check_bool",
    "check_choice",
    "check_in_dtype",
    "check_no_overlap",
    "Constraint",
    "constraint_of",
    "describe_range",
    "show",
]

#: the largest step count or counter accepted anywhere: int64, the peers' counters
MAX_COUNT = 2**63 - 1


def show(value: Any, limit: int = 120) -> str:
    """``repr(value)`` for an error message, kept short: an integer too large for a float
    shows its size (``repr`` of a 5000-digit integer itself fails), long reprs are cut."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        digits = math.floor(math.log10(abs(value))) + 1
        lead = abs(value) // 10 ** (digits - 3)
        sign = "-" if value < 0 else ""
        return f"{sign}{lead // 100}.{lead % 100:02d}e+{digits - 1} (an integer of {digits} digits)"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        text = text[: limit - 5] + " ...>"
    return text


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
    if x == MAX_COUNT:
        return "2**63 - 1"
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x)) if abs(x) < 10**16 else repr(float(x))
    return repr(float(x))


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _unwrap_0d(value: Any, kinds: str) -> Any:
    """A NumPy 0-d array of one of ``kinds`` as its Python scalar, anything else unchanged."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in kinds:
        return value.item()
    return value


def real_array(value: Any) -> tuple[Any, str]:
    """``(numpy.asarray(value), "")`` when it holds integers or floats, else ``(None, why)``
    (``"ragged or not numbers"`` or its dtype): the one test of array-like input whose
    refusal each caller words with its own argument's name."""
    import numpy as np

    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        return None, "ragged or not numbers"
    if array.dtype.kind not in "iuf":
        return None, f"dtype {array.dtype}"
    return array, ""


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

    ``TypeError`` for a non-number (strings, booleans, None, complex), ``ValueError`` for NaN,
    Inf, a number too large for a float (``10**400``) or a value outside ``[low, high]``
    (ends open where ``low_open``/``high_open``).
    """
    what = describe_range(low, high, low_open, high_open)
    if low is None and high is None:
        what = "(any finite value)"
    given, value = value, _unwrap_0d(value, "iuf")  # messages show what was given
    if not _is_real_number(value):
        raise TypeError(
            f"{name} must be a float {what}, got {show(given)} of type {type(given).__name__}"
        )
    try:
        x = float(value)
    except OverflowError:  # an int or Fraction beyond the float range
        raise ValueError(
            f"{name} must be a finite float {what}, got {show(given)}, which is too large "
            "for a float"
        ) from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite float {what}, got {show(given)}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be a float {what}, got {show(given)}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be a float {what}, got {show(given)}")
    return x


def check_optional_float(name: str, value: Any, *args: Any, **kwargs: Any) -> float | None:
    """Like :func:`check_float`, but ``None`` passes through (an option that is switched off)."""
    if value is None:
        return None
    return check_float(name, value, *args, **kwargs)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``int(value)`` for an integral number in ``[low, high]``, else raise.

    A float with an integral value (``10.0``) is accepted; ``10.5``, NaN, Inf and booleans
    are not. Integers are compared exactly (``10**400`` is out of any finite range, not an
    ``OverflowError``).
    """
    what = describe_range(low, high, False, False)
    given, value = value, _unwrap_0d(value, "iuf")  # messages show what was given
    if not _is_real_number(value):
        raise TypeError(
            f"{name} must be an integer {what}, got {show(given)} of type {type(given).__name__}"
        )
    if isinstance(value, numbers.Integral):
        x = operator.index(value)
    else:
        try:
            f = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be an integer {what}, got {show(given)}") from None
        if not f.is_integer():
            raise ValueError(f"{name} must be an integer {what}, got {show(given)}")
        x = int(f)
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{name} must be an integer {what}, got {show(given)}")
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
        raise TypeError(f"{name} must be True or False, got {show(value)}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Accept one of ``choices`` and return that choice itself (so ``numpy.str_("l2")`` comes
    back as ``"l2"``); the error lists them all. Values that only compare elementwise (arrays)
    or not at all are refused, not compared."""
    choices = tuple(choices)
    for choice in choices:
        if type(value) is type(choice) or (isinstance(value, str) and isinstance(choice, str)):
            try:
                equal = value == choice
            except Exception:  # pragma: no cover - a hostile __eq__
                equal = False
            if equal is True or (isinstance(equal, bool) and equal):
                return choice
    listed = ", ".join(repr(c) for c in choices)
    raise ValueError(f"{name} must be one of {listed}, got {show(value)}")


def check_in_dtype(name: str, value: float, dtype: Any, *, positive: bool = False) -> float:
    """Refuse a (validated, finite) float that the parameters' ``dtype`` cannot hold: the fused
    and reference engines compute in that dtype, where ``1e300`` is Inf (a learning rate that
    turns every float32 parameter into -Inf) and, for ``positive`` options that are divided
    by (``loss_scale_factor``), ``1e-300`` is 0."""
    import numpy as np

    info = np.finfo(dtype)
    low = float(info.tiny) if positive else 0.0
    x = abs(float(value))
    if x > float(info.max) or (positive and x < low):
        bounds = f"in [{low!r}, {float(info.max)!r}]" if positive else f"<= {float(info.max)!r}"
        raise ValueError(
            f"{name} must be a float {bounds} when the parameters are {np.dtype(dtype).name} "
            f"(the dtype the update is computed in), got {show(value)}"
        )
    return value


def _bounds(a) -> tuple[int, int]:
    import numpy as np

    if a.size == 0:
        return (0, 0)
    lo, hi = np.lib.array_utils.byte_bounds(a)
    return lo, hi


def check_no_overlap(arrays: Sequence[Any], what: str = "parameter") -> None:
    """Refuse arrays that share memory (two views of one buffer): an in-place update would
    write the shared elements twice. Bounds are compared first (sorted, one sweep), so only
    arrays whose byte ranges overlap pay for NumPy's exact ``shares_memory`` test."""
    import numpy as np

    spans = sorted((*_bounds(a), i) for i, a in enumerate(arrays) if a.size)
    active: list[tuple[int, int]] = []  # (end, index) of the spans still open
    for lo, hi, i in spans:
        active = [(end, j) for end, j in active if end > lo]
        for _, j in active:
            if np.shares_memory(arrays[i], arrays[j]):
                first, second = sorted((i, j))
                raise ValueError(
                    f"{what} {first} and {what} {second} share memory (views of one buffer); "
                    f"the {what}s must be separate arrays, or the shared elements would be "
                    "updated twice"
                )
        active.append((hi, i))


@dataclass(frozen=True)
class Constraint:
    """What a validator ``(name, value) -> value`` accepts, as :func:`constraint_of` reads it:
    ``kind`` is ``"float"`` or ``"int"`` (within ``low``/``high``, ends open where
    ``low_open``/``high_open``; None: unbounded), ``"bool"``, ``"choice"`` (one of
    ``choices``) or ``"unknown"``; ``optional``: None passes too (an option switched off)."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False


class _Probe:
    """A value no validator accepts, whose refusal states the valid values."""

    def __repr__(self) -> str:
        return "<probe>"


_NUMBER = r"-?(?:2\*\*63 - 1|[0-9.]+(?:e[-+]?[0-9]+)?|inf)"
_RANGE = re.compile(
    rf"must be an? (?:finite )?(float|integer) (?:"
    rf"in (?P<left>[\[(])(?P<low>{_NUMBER}), (?P<high>{_NUMBER})(?P<right>[\])])"
    rf"|(?P<lower>>=?) (?P<lbound>{_NUMBER})"
    rf"|(?P<upper><=?) (?P<ubound>{_NUMBER})"
    rf"|\(any finite value\))"
)
_CHOICES = re.compile(r"must be one of (?P<listed>.*), got <probe>$")


def _number(text: str) -> float:
    return float(MAX_COUNT) if text == "2**63 - 1" else float(text)


def constraint_of(validator: Any) -> Constraint:
    """Read what ``validator`` accepts from its own refusal of a value it cannot take: the
    validators of this module word every refusal in one shape (``"x must be a float in [0,
    1), got ..."``, ``"x must be True or False, ..."``, ``"x must be one of 'a', 'b', got
    ..."``), so a validator built on them (``unit_interval_open``, ``choice("hat", "paper")``,
    an optimizer's own ``lambda name, v: check_float(name, v, 1.0, low_open=True)``) states its
    range this way. Any other validator is ``Constraint("unknown")``."""
    try:
        optional = validator("x", None) is None
    except Exception:
        optional = False
    try:
        validator("x", _Probe())
    except Exception as error:
        message = str(error)
    else:
        return Constraint("unknown", optional=optional)
    if "must be True or False" in message:
        return Constraint("bool", optional=optional)
    found = _CHOICES.search(message)
    if found:
        import ast

        try:
            choices = ast.literal_eval(f"({found['listed']},)")
        except (ValueError, SyntaxError):
            return Constraint("unknown", optional=optional)
        return Constraint("choice", choices=tuple(choices), optional=optional)
    found = _RANGE.search(message)
    if not found:
        return Constraint("unknown", optional=optional)
    kind = "float" if found[1] == "float" else "int"
    if found["left"]:
        return Constraint(
            kind,
            _number(found["low"]),
            _number(found["high"]),
            low_open=found["left"] == "(",
            high_open=found["right"] == ")",
            optional=optional,
        )
    if found["lower"]:
        low = _number(found["lbound"])
        return Constraint(kind, low, low_open=found["lower"] == ">", optional=optional)
    if found["upper"]:
        high = _number(found["ubound"])
        return Constraint(kind, high=high, high_open=found["upper"] == "<", optional=optional)
    return Constraint(kind, optional=optional)
