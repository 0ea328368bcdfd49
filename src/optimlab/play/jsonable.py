"""NumPy results as JSON values: arrays become nested lists and every non-finite float
(NaN, +inf, -inf) becomes ``None`` (JSON ``null``), so the body is strict JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def _finite_list(array: np.ndarray) -> list:
    """``array.tolist()`` with None for every non-finite entry (float arrays only)."""
    if np.isfinite(array).all():
        return array.tolist()
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars turned into lists, floats, ints and bools, and
    non-finite floats into None, recursively through dicts, lists and tuples. Python floats
    keep every bit (``json`` writes their shortest round-trip repr)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return _finite_list(value)
        if value.dtype.kind in "iub":
            return value.tolist()
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
