"""The base class of every schedule (a pure function of the update count, with a configuration and
a state) and :class:`Constant`."""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Mapping
from typing import Any

from .._validation import (
    check_float,
    show,
)
from ._checks import _check_step, _freeze, _to_config

# -- base class ---------------------------------------------------------------------------


class LearningRateSchedule(abc.ABC):
    """Base class: ``sched(step) -> float`` with ``step`` the number of updates applied.

    Subclasses implement ``_compute(step)``, which receives ``step`` already validated as a
    Python ``int >= 0`` and returns the learning rate, and ``_params()``, the constructor
    keyword arguments as a dict (from which ``get_config``, ``repr``, ``==`` and ``hash`` are
    derived). ``from_config(config)`` calls ``cls(**config)``. Stateful schedules also
    override ``state_dict`` / ``load_state_dict``.
    """

    def __call__(self, step: Any) -> float:
        # Every schedule is a combination of non-negative numbers: a negative result can only
        # be rounding (e.g. 0.93 + (0 - 0.93) * 3 / 3 = -1.1e-16), which would make the
        # optimizer ascend; it is returned as 0.
        k = _check_step(step)
        try:
            value = float(self._compute(k))
        except OverflowError:  # e.g. decay_rate > 1 raised to a large power
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(
                f"{show(self)} has no finite learning rate at step {k} (it overflows the "
                "float range); a learning rate must be a finite float >= 0"
            )
        return max(value, 0.0)

    @abc.abstractmethod
    def _compute(self, step: int) -> float:
        """The learning rate after ``step`` updates (``step`` a validated int >= 0)."""

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]:
        """The constructor keyword arguments, as given (validated)."""

    def get_config(self) -> dict[str, Any]:
        """The constructor keyword arguments, JSON-serializable."""
        return {name: _to_config(value) for name, value in self._params().items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LearningRateSchedule:
        """Rebuild a schedule from :meth:`get_config`'s output."""
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, got {config!r}")
        accepted = [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        unknown = sorted((k for k in config if k not in accepted), key=repr)
        if unknown:
            raise ValueError(
                f"unknown config keys {unknown} for {cls.__name__}; valid keys: "
                f"{', '.join(accepted)}"
            )
        return cls(**config)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's mutable state (JSON-serializable scalars); ``{}`` when stateless."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; a stateless schedule accepts only ``{}``."""
        if not isinstance(state, Mapping) or dict(state):
            raise ValueError(f"{type(self).__name__} has no state; expected {{}}, got {state!r}")

    def __repr__(self) -> str:
        default = getattr(type(self), "default_name", None)
        args = ", ".join(
            f"{k}={v!r}" for k, v in self._params().items() if not (k == "name" and v == default)
        )
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._params() == other._params() and self.state_dict() == other.state_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, _freeze(tuple(self._params().items()))))


# -- constant -----------------------------------------------------------------------------


class Constant(LearningRateSchedule):
    """A constant learning rate: ``lr(t) = learning_rate``.

    The schedule form of a plain float (Keras and torch take the float itself; optax has
    ``optax.constant_schedule``). Note that torch's ``ConstantLR`` is something else: a factor
    applied for the first ``total_iters`` epochs.
    """

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0.0)

    def _compute(self, step: int) -> float:
        return self.learning_rate

    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}
