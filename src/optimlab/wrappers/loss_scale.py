"""Keras 3's ``LossScaleOptimizer`` in the NumPy dialect: dynamic loss scaling around any
optimizer (see :class:`LossScaleOptimizer`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import naming
from .._validation import MAX_COUNT, check_float, check_int, show
from ..optimizer import Optimizer
from ..optimizer_checks import _as_list
from ._common import (
    _NAMES_NEED_MULTI,
    _check_keys,
    _grads_params,
    _load,
    _pairs,
    _save,
    _scalar_weight,
)
from .multi import MultiOptimizer


def _check_scale(name: str, value: Any) -> float:
    """A loss scale: a float > 0 that float32 holds as a positive finite number (Keras keeps
    the dynamic scale in a float32 variable)."""
    x = check_float(name, value, 0.0, low_open=True)
    with np.errstate(over="ignore"):
        f = np.float32(x)
    if not (np.isfinite(f) and f > 0):
        raise ValueError(
            f"{name} must be a float in (0, {float(np.finfo(np.float32).max):.6g}] that float32 "
            f"holds as a positive number (the scale is kept in float32, as in Keras), got "
            f"{show(value)}"
        )
    return x


#: Keras's LossScaleOptimizer: base-optimizer arguments it takes only at their defaults
_LSO_BASE_DEFAULTS = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class LossScaleOptimizer:
    """Dynamic loss scaling around ``inner_optimizer`` (Keras 3's
    ``keras.optimizers.LossScaleOptimizer``; its names, defaults, semantics)::

        the gradients arrive scaled: g = dL_scaled/dp = s * dL/dp   (use scale_loss(loss))
        if every g is finite:
            inner step with g / s          (the inner pipeline's loss-scale step)
            counter = counter + 1; after dynamic_growth_steps such steps: s = 2 s, counter = 0
        else:
            skip: the parameters, the inner optimizer's state and its iterations unchanged
            s = s / 2;  counter = 0

    ``s`` starts at ``initial_scale`` (default 2**15) and is kept in float32, as Keras keeps
    its ``dynamic_scale`` variable. The finiteness is checked on the scaled gradients, before
    the division, as Keras does. ``iterations`` and ``learning_rate`` are the inner
    optimizer's; ``variables`` are Keras's list (the wrapper's iteration and learning-rate
    placeholders, ``step_counter``, ``dynamic_scale``, then the inner optimizer's).

    The inner optimizer's ``loss_scale_factor`` is set to None (Keras: "otherwise gradients
    will be scaled twice"); a :class:`MultiOptimizer` may be wrapped (then pass ``names`` as
    it takes them). ``dynamic=False`` and the base-optimizer arguments other than their
    defaults are refused with Keras's ValueErrors: set them on the inner optimizer.
    """

    def __init__(
        self,
        inner_optimizer: Any,
        initial_scale: Any = 2.0**15,
        dynamic_growth_steps: Any = 2000,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not kwargs.pop("dynamic", True):
            raise ValueError(
                "LossScaleOptimizer no longer supports `dynamic=False`. Instead, simply set "
                "`loss_scale_factor` directly on the `inner_optimizer`."
            )
        for arg, default in _LSO_BASE_DEFAULTS.items():
            if arg in kwargs and kwargs.pop(arg) != default:
                raise ValueError(
                    f"LossScaleOptimizer does not support `{arg}`. Instead, set `{arg}` on the "
                    "`inner_optimizer`."
                )
        if kwargs:
            raise ValueError(
                f"LossScaleOptimizer does not support arguments: `{'`, `'.join(kwargs)}`."
            )
        if isinstance(inner_optimizer, LossScaleOptimizer):
            raise TypeError(
                "inner_optimizer cannot be a LossScaleOptimizer: the gradients would be "
                "unscaled twice; wrap the innermost optimizer once"
            )
        if not isinstance(inner_optimizer, Optimizer | MultiOptimizer):
            raise TypeError(
                "inner_optimizer must be an optimlab optimizer (ol.SGD(), ol.Adam(), ..., or a "
                f"MultiOptimizer), got {show(inner_optimizer)} of type "
                f"{type(inner_optimizer).__name__}"
            )
        self._initial_scale = _check_scale("initial_scale", initial_scale)
        self._growth = check_int("dynamic_growth_steps", dynamic_growth_steps, 1, MAX_COUNT)
        self.inner_optimizer = inner_optimizer
        self.name = naming.auto_name("LossScaleOptimizer") if name is None else str(name)
        self._reset()
        # Keras: the inner optimizer's own loss scaling is switched off
        inner_optimizer.loss_scale_factor = None

    def _reset(self) -> None:
        self._built = False
        self._step_counter = 0
        self._scale = np.float32(self._initial_scale)
        self._placeholders = (0, 0.0)  # Keras's own (unused) iteration and learning rate

    # -- Keras's attributes -----------------------------------------------------------------

    @property
    def initial_scale(self) -> float:
        """The scale before the first step."""
        return self._initial_scale

    @property
    def dynamic_growth_steps(self) -> int:
        """How many finite steps in a row double the scale."""
        return self._growth

    @property
    def dynamic_scale(self) -> float:
        """The current loss scale s (a float32 value)."""
        return float(self._scale)

    @property
    def step_counter(self) -> int:
        """Finite steps since the scale last changed."""
        return self._step_counter

    @property
    def built(self) -> bool:
        return self._built

    @property
    def iterations(self) -> int:
        """The inner optimizer's update count (Keras's ``iterations``)."""
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self) -> Any:
        """The inner optimizer's learning rate (read and set)."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.inner_optimizer.learning_rate = value

    @property
    def params(self) -> list[np.ndarray]:
        """The inner optimizer's parameters."""
        return self.inner_optimizer.params

    def scale_loss(self, loss: Any) -> Any:
        """``loss * s``: the loss to differentiate (Keras's ``scale_loss``)."""
        return loss * (float(self._scale) if self._built else self._initial_scale)

    def finalize_variable_values(self, params: Any = None) -> None:
        """The inner optimizer's (its EMA, if any, overwrites the parameters)."""
        self.inner_optimizer.finalize_variable_values(params)

    # -- the step ---------------------------------------------------------------------------

    def build(self, params: Any, names: Any = None) -> None:
        """Build the inner optimizer (unless it is built already) and the scale's state."""
        if self._built:
            raise ValueError(f"{self.name} is already built")
        if not self.inner_optimizer.built:
            if isinstance(self.inner_optimizer, MultiOptimizer):
                self.inner_optimizer.build(params, names=names)
            else:
                if names is not None:
                    raise TypeError(_NAMES_NEED_MULTI)
                self.inner_optimizer.build(params)
        self._built = True

    def apply_gradients(self, grads_and_vars: Iterable, names: Any = None) -> None:
        """One step on (scaled gradient, parameter) pairs (see the class docstring)."""
        self._apply(_pairs(grads_and_vars), names)

    def apply(self, grads: Sequence[Any], params: Any = None, names: Any = None) -> None:
        """:meth:`apply_gradients` with the gradients and parameters as two lists
        (``params`` default to those of the build)."""
        built = self.inner_optimizer.params if self.inner_optimizer.built else []
        self._apply(_grads_params(grads, params, built), names)

    def _apply(self, pairs: list, names: Any) -> None:
        inner = self.inner_optimizer
        if names is not None and not isinstance(inner, MultiOptimizer):
            raise TypeError(_NAMES_NEED_MULTI)
        extra = {} if names is None else {"names": names}
        # every check first (the pairs, the gradients as arrays): nothing has changed yet
        grads = _checked_gradients(inner, pairs, names)
        if all(bool(np.all(np.isfinite(g))) for g in grads):
            scale = self._scale
            prepared = inner._prepare_step(pairs, loss_scale=scale, **extra)
            inner._commit_step(prepared)
            self._built = True
            if self._step_counter == self._growth - 1:
                self._step_counter = 0
                self._scale = np.float32(scale * np.float32(2.0))
            else:
                self._step_counter += 1
            return
        if not inner.built:  # Keras builds the inner optimizer on any first call
            _build_for(inner, pairs, names)
        self._built = True
        self._step_counter = 0
        self._scale = np.float32(self._scale * np.float32(0.5))

    # -- Keras's variables ------------------------------------------------------------------

    def _own_variables(self) -> list[tuple[str, np.ndarray]]:
        out = [
            ("iteration", np.array(self._placeholders[0], dtype=np.int64)),
            ("learning_rate", np.array(self._placeholders[1], dtype=np.float64)),
        ]
        if self._built:
            out += [
                ("step_counter", np.array(self._step_counter, dtype=np.int64)),
                ("dynamic_scale", np.array(self._scale, dtype=np.float32)),
            ]
        return out

    @property
    def variables(self) -> list[np.ndarray]:
        """Keras's list: [iteration, learning_rate (the wrapper's own placeholders, 0 as in
        Keras), step_counter, dynamic_scale (once built)] + the inner optimizer's."""
        return [v for _, v in self._own_variables()] + self.inner_optimizer.variables

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Write :attr:`variables` back (checked first, the inner optimizer's too: a refused
        list changes nothing)."""
        if not self._built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Please call `optimizer.build(trainable_variables)` to create the optimizer "
                "weights before calling `set_weights()`."
            )
        weights = _as_list("weights", weights)
        own = self._own_variables()
        if len(weights) < len(own):
            raise ValueError(
                f"weights must hold {len(own)} arrays for {self.name} (iteration, "
                f"learning_rate, step_counter, dynamic_scale) and then the inner optimizer's, "
                f"got {len(weights)}"
            )
        values = [
            _scalar_weight(i, n, w) for i, ((n, _), w) in enumerate(zip(own, weights, strict=False))
        ]
        iteration = check_int("weights[0] (iteration)", values[0], 0, MAX_COUNT)
        placeholder_lr = check_float("weights[1] (learning_rate)", values[1], 0.0)
        counter = check_int("weights[2] (step_counter)", values[2], 0, self._growth - 1)
        scale = _check_scale("weights[3] (dynamic_scale)", values[3])
        self.inner_optimizer.set_weights(weights[len(own) :])  # checks all before it writes
        self._placeholders = (iteration, placeholder_lr)
        self._step_counter = counter
        self._scale = np.float32(scale)

    # -- configuration and state ------------------------------------------------------------

    def get_config(self) -> dict:
        """Keras's four keys: name, inner_optimizer (serialized), initial_scale,
        dynamic_growth_steps."""
        from ..optimizers import serialize

        return {
            "name": self.name,
            "inner_optimizer": serialize(self.inner_optimizer),
            "initial_scale": self._initial_scale,
            "dynamic_growth_steps": self._growth,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> LossScaleOptimizer:
        """Rebuild from :meth:`get_config` (the inner optimizer from its serialized dict)."""
        from ..optimizers import deserialize

        if not isinstance(config, Mapping) or "inner_optimizer" not in config:
            raise ValueError(
                f"config must be a dict from LossScaleOptimizer.get_config() with an "
                f"'inner_optimizer', got {show(config)}"
            )
        config = dict(config)
        inner = config.pop("inner_optimizer")
        if isinstance(inner, Mapping):
            inner = deserialize(dict(inner))
        return cls(inner, **config)

    def state_dict(self) -> dict:
        """The scale's state and the inner optimizer's ``state_dict()``."""
        return {
            "optimizer": "LossScaleOptimizer",
            "config": {
                "name": self.name,
                "initial_scale": self._initial_scale,
                "dynamic_growth_steps": self._growth,
            },
            "built": self._built,
            "step_counter": self._step_counter,
            "dynamic_scale": float(self._scale),
            "placeholders": list(self._placeholders),
            "inner": self.inner_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict, params: Any = None, names: Any = None) -> None:
        """Restore :meth:`state_dict`'s output (every field checked, the inner state loaded
        atomically; a refused state changes nothing)."""
        keys = (
            "optimizer",
            "config",
            "built",
            "step_counter",
            "dynamic_scale",
            "placeholders",
            "inner",
        )
        _check_keys(state, keys, "LossScaleOptimizer")
        config = state["config"]
        if not isinstance(config, Mapping) or set(config) != {
            "name",
            "initial_scale",
            "dynamic_growth_steps",
        }:
            raise ValueError(
                "state['config'] must hold name, initial_scale and dynamic_growth_steps, got "
                f"{show(config)}"
            )
        initial = _check_scale("state['config']['initial_scale']", config["initial_scale"])
        growth = check_int(
            "state['config']['dynamic_growth_steps']",
            config["dynamic_growth_steps"],
            1,
            MAX_COUNT,
        )
        if not isinstance(state["built"], bool):
            raise TypeError(f"state['built'] must be True or False, got {show(state['built'])}")
        counter = check_int("state['step_counter']", state["step_counter"], 0, growth - 1)
        scale = _check_scale("state['dynamic_scale']", state["dynamic_scale"])
        holders = state["placeholders"]
        if not (isinstance(holders, list | tuple) and len(holders) == 2):
            raise TypeError(f"state['placeholders'] must be [iteration, lr], got {show(holders)}")
        iteration = check_int("state['placeholders'][0]", holders[0], 0, MAX_COUNT)
        lr = check_float("state['placeholders'][1]", holders[1], 0.0)
        extra = {} if names is None else {"names": names}
        if names is not None and not isinstance(self.inner_optimizer, MultiOptimizer):
            raise TypeError(_NAMES_NEED_MULTI)
        self.inner_optimizer.load_state_dict(state["inner"], params, **extra)  # atomic
        self.name = str(config["name"])
        self._initial_scale, self._growth = initial, growth
        self._built = state["built"] or self.inner_optimizer.built
        self._step_counter, self._scale = counter, np.float32(scale)
        self._placeholders = (iteration, lr)

    def save(self, path: Any, params: Any = None) -> None:
        """Write :meth:`state_dict` (and the parameters, if given) to ``path``: optimlab's
        checkpoint file (pickle-free, verified, atomic; :mod:`optimlab.checkpoint`)."""
        _save(self, path, params)

    def load(self, path: Any, params: Any = None, names: Any = None) -> None:
        """Restore :meth:`save`'s file (verified before anything changes)."""
        _load(self, path, params, names)

    def __repr__(self) -> str:
        return (
            f"LossScaleOptimizer({self.inner_optimizer!r}, dynamic_scale={self.dynamic_scale}, "
            f"step_counter={self._step_counter}, dynamic_growth_steps={self._growth}, "
            f"name={self.name!r})"
        )


def _checked_gradients(inner: Any, pairs: list, names: Any) -> list[np.ndarray]:
    """The gradients of ``pairs`` as arrays, after every check of the pairs that ``inner``
    makes (nothing changes)."""
    if isinstance(inner, MultiOptimizer):
        return [g for _, grads, _ in inner._route(pairs, names)[1] for g in grads]
    items, _ = inner._checked_pairs(pairs)
    return [g for _, _, g in items]


def _build_for(inner: Any, pairs: list, names: Any) -> None:
    if isinstance(inner, MultiOptimizer):
        plan, _ = inner._route(pairs, names)
        inner._adopt(plan, build_subs=True)
    else:
        _, params = inner._checked_pairs(pairs)
        inner.build(params)
