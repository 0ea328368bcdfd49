"""The base of every optimizer that is one rule of :mod:`optimlab.rules` plus its
hyperparameters: the configuration, by name, becomes the keyword arguments of
``rule.scalars``."""

from __future__ import annotations

import inspect
from typing import Any

from .optimizer import Optimizer


class RuleOptimizer(Optimizer):
    """Maps the configuration onto the keyword arguments of ``rule.scalars`` (and of
    ``rule.slot_shape``): every keyword-only argument of ``scalars`` is looked up in the
    configuration; ``lr_outside`` and ``power_dtype`` are derived."""

    def _rule_hyperparameters(self) -> dict:
        names = _scalar_arguments(self.rule)
        config = self._config
        out = {k: config[k] for k in names if k in config}
        if "lr_outside" in names:
            out["lr_outside"] = config["momentum_style"] == "lr_outside"
        if "power_dtype" in names:
            out["power_dtype"] = self._power_dtype()
        out.update(self._dtype_hyperparameters(self._narrowest))
        return out

    def _dtype_hyperparameters(self, narrowest) -> dict:
        """The keyword arguments of ``rule.scalars`` that the narrowest parameter dtype
        decides (``narrowest``: a NumPy dtype, or None before the build), beyond
        ``power_dtype``: none here. The traced faces (optimlab.optax, optimlab.keras), which
        know the dtypes but build no dialect optimizer, ask for them by this hook."""
        return {}


_SIGNATURES: dict[Any, tuple[str, ...]] = {}


def _scalar_arguments(rule) -> tuple[str, ...]:
    if rule not in _SIGNATURES:
        params = inspect.signature(rule.scalars).parameters.values()
        _SIGNATURES[rule] = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    return _SIGNATURES[rule]
