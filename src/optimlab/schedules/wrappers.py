"""A schedule around another (:class:`LinearWarmup`) and plain callables as learning rates (``step
-> float``, or Keras's function of no argument)."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from .._validation import (
    check_float,
    check_int,
)
from .base import Constant, LearningRateSchedule

# -- generic ------------------------------------------------------------------------------


class LinearWarmup(LearningRateSchedule):
    """Linear warmup in front of any schedule (or a constant learning rate).

    With ``inner`` the wrapped schedule (a float ``lr`` means ``Constant(lr)``), ``W =
    warmup_steps`` and ``target = inner(0)``::

        lr(t) = target * (start_factor + (1 - start_factor) * t / W)   t < W
        lr(t) = inner(t - W)                                           t >= W

    The wrapped schedule is *shifted*: it starts after the warmup, so ``lr(W) = inner(0)`` and
    the ramp joins it continuously. This is how Keras's ``CosineDecay(initial,
    decay_steps, warmup_target=peak, warmup_steps=W)`` equals ``LinearWarmup(CosineDecay(peak,
    decay_steps), W, start_factor=initial / peak)`` and how optax's ``join_schedules([
    linear_schedule(start_factor * target, target, W), inner], [W])`` (and
    ``warmup_cosine_decay_schedule``) behave. torch's ``LinearLR`` chained with another
    scheduler instead multiplies the two *unshifted*.

    ``schedule_or_lr`` may also be a plain callable ``step -> float`` (then the warmup works
    but :func:`serialize` raises ``TypeError``). ``state_dict`` is the wrapped schedule's.
    """

    def __init__(
        self,
        schedule_or_lr: LearningRateSchedule | Callable[[int], float] | float,
        warmup_steps: int,
        start_factor: float = 0.0,
    ) -> None:
        if isinstance(schedule_or_lr, LearningRateSchedule):
            self.schedule_or_lr = schedule_or_lr
            self.schedule: Any = schedule_or_lr
        elif isinstance(schedule_or_lr, numbers.Real) and not isinstance(schedule_or_lr, bool):
            self.schedule_or_lr = check_float("schedule_or_lr", schedule_or_lr, 0)
            self.schedule = Constant(self.schedule_or_lr)
        elif callable(schedule_or_lr) and not isinstance(schedule_or_lr, type):
            self.schedule_or_lr = schedule_or_lr
            self.schedule = schedule_or_lr
        else:
            raise TypeError(
                "schedule_or_lr must be a LearningRateSchedule, a callable step -> float or a "
                f"float >= 0, got {schedule_or_lr!r} of type {type(schedule_or_lr).__name__}"
            )
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        self.start_factor = check_float("start_factor", start_factor, 0, 1)

    def _inner(self, step: int) -> float:
        return float(self.schedule(step))

    def _compute(self, step: int) -> float:
        w = self.warmup_steps
        if step >= w:
            return self._inner(step - w)
        target = self._inner(0)
        return target * (self.start_factor + (1 - self.start_factor) * step / w)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LinearWarmup:
        if isinstance(config, Mapping) and isinstance(config.get("schedule_or_lr"), Mapping):
            config = dict(config)
            from .serialization import deserialize  # (it imports this module)

            config["schedule_or_lr"] = deserialize(config["schedule_or_lr"])
        return super().from_config(config)  # type: ignore[return-value]

    def state_dict(self) -> dict[str, Any]:
        if isinstance(self.schedule, LearningRateSchedule):
            return self.schedule.state_dict()
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(self.schedule, LearningRateSchedule):
            self.schedule.load_state_dict(state)
        else:
            super().load_state_dict(state)

    def _params(self) -> dict[str, Any]:
        return {
            "schedule_or_lr": self.schedule_or_lr,
            "warmup_steps": self.warmup_steps,
            "start_factor": self.start_factor,
        }


# -- plain callables ----------------------------------------------------------------------


class ZeroArgumentLearningRate:
    """A learning rate given as a function of no argument, Keras's callable form: Keras calls
    ``learning_rate()`` before each update. ``lr(step)`` returns ``function()`` (the step is
    not passed); ``function`` is the callable given."""

    def __init__(self, function: Callable[[], float]) -> None:
        self.function = function

    def __call__(self, step: Any) -> Any:
        return self.function()

    def __repr__(self) -> str:
        return repr(self.function)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ZeroArgumentLearningRate):
            return NotImplemented
        return self.function == other.function

    def __hash__(self) -> int:
        return hash(self.function)


def as_step_function(value: Callable) -> Callable[[Any], Any]:
    """A callable learning rate as a function of the step.

    ``value`` is returned as it is when it can be called with one positional argument (``step
    -> float``: optimlab's schedules, optax's, any ``lambda step: ...``; also a callable that
    takes either, such as ``lambda *a: 0.1``, and one whose signature Python cannot read); a
    callable that can only be called with no argument (Keras's ``lambda: 0.1``) is wrapped in
    :class:`ZeroArgumentLearningRate`. Any other callable raises ``TypeError``.
    """
    if isinstance(value, LearningRateSchedule):
        return value
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        return value
    for args, form in (((0,), None), ((), ZeroArgumentLearningRate)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return value if form is None else form(value)
    raise TypeError(
        f"learning_rate {value!r} is a callable of signature {signature}, which takes neither "
        "the step (step -> float, as optimlab's and optax's schedules) nor nothing "
        "(lr() -> float, as Keras calls it)"
    )
