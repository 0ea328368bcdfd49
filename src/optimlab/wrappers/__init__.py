"""Keras 3's optimizer wrappers in the NumPy dialect: :class:`LossScaleOptimizer` (dynamic loss
scaling around any optimizer) and :class:`MultiOptimizer` with its :class:`OptimizerMap`
(parameter names, matched by regular expressions, to optimizers).

Loss scaling is one concept in optimlab: the first step of the pipeline, ``g = g / s``. An
optimizer's ``loss_scale_factor`` is a constant ``s``; a :class:`LossScaleOptimizer` owns a
dynamic ``s`` and hands it to that same step of its inner optimizer (whose own factor it
switches off, as Keras does), so a gradient is never divided twice.

NumPy arrays have no names; the wrappers take them as Keras takes variables' paths: a mapping
name -> array (a dict, or an :class:`~optimlab.Params`), or a list of arrays with
``names=[...]`` (without names a parameter is named by its place in the list, ``"0"``,
``"1"``, ...). A map or selector sees each parameter as a :class:`Parameter` (``path``,
``name``, ``shape``, ``ndim``, ``dtype``, ``value``), as Keras's see a ``keras.Variable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import Parameter
from .loss_scale import LossScaleOptimizer
from .multi import MultiOptimizer, OptimizerMap

__all__ = ["LossScaleOptimizer", "MultiOptimizer", "OptimizerMap", "Parameter", "WRAPPERS"]

WRAPPERS: dict[str, Callable[..., Any]] = {
    "LossScaleOptimizer": LossScaleOptimizer,
    "MultiOptimizer": MultiOptimizer,
    "OptimizerMap": OptimizerMap,
}
