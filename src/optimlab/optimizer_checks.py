"""The checks of the optimizer runtime on parameters and gradients: what a parameter may be,
what a gradient must be to be applied to it (shape, dtype, finite real numbers, no aliasing of
a parameter), and Keras's words for missing gradients. Each raises before anything changes."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import presets, schedules
from ._validation import check_float, real_array, show
from .engines import fused

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_learning_rate(value: Any, preset: str, optimizer: str, positive: bool = False) -> Any:
    """A learning rate is a float >= 0 (> 0 with ``positive``: a rule that divides by it), a
    schedule, or a callable: ``step -> float``, or a function of no argument as in Keras (see
    :func:`optimlab.schedules.as_step_function`)."""
    if value is presets.REQUIRED:
        raise TypeError(
            f"learning_rate is required with preset={preset!r}: "
            f"{presets.peer(optimizer, preset) or preset} has no default learning rate"
        )
    if isinstance(value, schedules.LearningRateSchedule) or (
        callable(value) and not isinstance(value, numbers.Number)
    ):
        return schedules.as_step_function(value)
    return check_float("learning_rate", value, 0.0, low_open=positive)


def _keras_missing_gradients(pairs: list, with_gradient: int) -> None:
    """Keras's rule for None gradients (``presets.CONVENTIONS[preset]["missing_gradients"]``):
    every gradient None raises Keras's ValueError, some None warn as Keras does."""
    if not with_gradient:
        raise ValueError(
            f"No gradients provided for any variable. (The {len(pairs)} gradient(s) given are "
            "all None; nothing was changed.)"
        )
    missing = ", ".join(
        f"parameter {k} (shape {p.shape}, {p.dtype})" for k, (g, p) in enumerate(pairs) if g is None
    )
    warnings.warn(
        f"Gradients do not exist for variables [{missing}] when minimizing the loss; they and "
        "their state are left unchanged.",
        UserWarning,
        stacklevel=4,
    )


def _as_list(name: str, value: Any, arrays: bool = False) -> list:
    """``list(value)`` for a sequence argument, with an error naming it for anything else (None,
    a number, a string; for a list of arrays also one array, whose rows are not parameters)."""
    if isinstance(value, str | bytes) or (arrays and isinstance(value, np.ndarray)):
        raise TypeError(
            f"{name} must be a list of arrays, got {show(value)} of type {type(value).__name__}"
            + ("; pass [array] for one array" if isinstance(value, np.ndarray) else "")
        )
    try:
        return list(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a list (or another iterable), got {show(value)} of type "
            f"{type(value).__name__}"
        ) from None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _root(a: np.ndarray) -> Any:
    """The object at the end of ``a.base``: arrays viewing the same memory share it."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _largest_float(params: Sequence[np.ndarray]) -> float:
    """The largest finite float of the narrowest dtype among ``params`` (inf if none)."""
    floats = [p.dtype for p in params if isinstance(p, np.ndarray) and p.dtype in FLOAT_DTYPES]
    if not floats:
        return math.inf
    return float(np.finfo(min(floats, key=lambda d: d.itemsize)).max)


def _check_param(p: Any, k: int) -> None:
    if not isinstance(p, np.ndarray):
        raise TypeError(
            f"parameter {k} must be a NumPy array (float32 or float64), got {type(p).__name__}"
        )
    if type(p) is not np.ndarray and not isinstance(p, np.memmap):
        kind = f"{type(p).__module__}.{type(p).__name__}"
        raise TypeError(
            f"parameter {k} must be a numpy.ndarray (or numpy.memmap), got a {kind}, whose "
            "arithmetic differs (np.matrix multiplies as matrices, masked arrays skip masked "
            "elements); pass np.asarray(p), a plain view of the same memory"
        )
    if p.dtype not in FLOAT_DTYPES:
        raise TypeError(f"parameter {k} must have dtype float32 or float64, got {p.dtype}")
    if not p.flags.writeable:
        raise ValueError(f"parameter {k} is read-only; the optimizer updates it in place")


def _checked_gradient(g: Any, p: np.ndarray, k: int) -> np.ndarray:
    if isinstance(g, np.ndarray):
        if type(g) is not np.ndarray:
            if isinstance(g, np.ma.MaskedArray):
                raise TypeError(
                    f"gradient {k} is a masked array; its masked elements are not gradients: "
                    "pass g.filled(0.0)"
                )
            g = np.asarray(g)  # a plain view of a subclass (np.matrix multiplies as matrices)
        if g.dtype != p.dtype:
            raise TypeError(
                f"gradient {k} has dtype {g.dtype} but its parameter has {p.dtype}; "
                f"cast it first (g.astype(np.{p.dtype}))"
            )
    else:
        raw, kind = real_array(g)
        if raw is None:
            raise TypeError(
                f"gradient {k} must be an array of numbers (integers or floats), got "
                f"{show(g)} of type {type(g).__name__} ({kind})"
            )
        g = np.asarray(raw, dtype=p.dtype)
    if g.shape != p.shape:
        raise ValueError(f"gradient {k} has shape {g.shape} but its parameter has shape {p.shape}")
    return g


def _check_gradients_apart(items, params: Sequence[np.ndarray], roots) -> None:
    """Refuse a gradient that shares memory with a parameter: the update writes the parameter
    while the gradient is being read, and the engines would disagree. Only gradients viewing
    the same base buffer as some parameter (``roots``: id of the base -> parameter indices)
    pay for the exact test."""
    if roots is None:
        roots = {}
        for i, p in enumerate(params):
            roots.setdefault(id(_root(p)), []).append(i)
    for _, p, g in items:
        base = g
        while base.base is not None:  # _root, inlined: this runs for every gradient
            base = base.base
            if not isinstance(base, np.ndarray):
                break
        hits = roots.get(id(base))
        if not hits:
            continue
        for j in hits:
            if np.shares_memory(g, params[j]):
                k = next(n for n, q in enumerate(params) if q is p)
                who = "its own parameter" if j == k else f"parameter {j}"
                raise ValueError(
                    f"the gradient of parameter {k} shares memory with {who}; pass a separate "
                    "array (g.copy())"
                )


def _all_finite(g) -> bool:
    """Whether a gradient has no NaN/Inf (one vectorized read where the fused engine can run)."""
    g = np.asarray(g)
    if fused.supports(g) and g.size >= 1024:
        return fused.all_finite(g)
    return bool(np.isfinite(g).all())


def _count_non_finite(g) -> int:
    """NaN/Inf count of a gradient, without a temporary array where the fused engine can run."""
    g = np.asarray(g)
    if fused.supports(g) and g.size >= 1024:
        return fused.count_non_finite(g)
    return int(g.size - np.count_nonzero(np.isfinite(g)))
