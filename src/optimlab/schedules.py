"""Learning-rate schedules as pure functions of the update count.

A schedule is called with ``step``, the number of optimizer updates already applied (0 for the
first update), and returns the learning rate of the next update as a Python ``float``::

    sched = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    sched(0)     # 0.1, the learning rate of the first update
    sched(1000)  # 0.096

Everything is computed in float64 (Python floats), with integer arithmetic wherever a peer
floors or ceils a ratio of step counts, so that step counts far beyond float32's 2**24 stay exact.

Two families, with the peers' class and argument names:

* Keras 3 (``keras.optimizers.schedules``): :class:`ExponentialDecay`,
  :class:`PiecewiseConstantDecay`, :class:`PolynomialDecay`, :class:`InverseTimeDecay`,
  :class:`CosineDecay`, :class:`CosineDecayRestarts`. ``sched(step)`` equals the Keras object
  called with the same ``step``.
* PyTorch (``torch.optim.lr_scheduler``) as closed forms that take the base learning rate
  explicitly: :class:`StepLR`, :class:`MultiStepLR`, :class:`ExponentialLR`, :class:`LinearLR`,
  :class:`CosineAnnealingLR`, :class:`OneCycleLR`, :class:`CyclicLR` and the stateful
  :class:`ReduceLROnPlateau`. ``sched(k)`` equals the optimizer's ``param_groups[0]["lr"]``
  after ``k`` calls of ``scheduler.step()`` (torch updates most of these recursively, by
  multiplying the previous learning rate, so the two agree up to rounding: about ``k`` ulps).

Plus :class:`Constant` and the generic :class:`LinearWarmup` wrapper.

Conventions shared by every class:

* every constructor argument is validated up front (errors name the argument, its value and
  the valid range; integers are accepted where floats are meant);
* ``get_config()`` returns the constructor keyword arguments (JSON-serializable) and
  ``from_config(config)`` rebuilds; :func:`serialize` / :func:`deserialize` add the class name;
* ``state_dict()`` / ``load_state_dict()`` carry the counters of stateful schedules
  (:class:`ReduceLROnPlateau`); stateless schedules return ``{}``;
* ``repr`` shows the configuration, ``==`` compares class, configuration and state;
* the six Keras classes take Keras's ``name=`` (default: Keras's own, e.g.
  ``"ExponentialDecay"``, ``"PiecewiseConstant"``, ``"SGDRDecay"``), kept in ``get_config``
  and shown by ``repr`` when it is not the default; it does not change any value.

A plain callable learning rate is either ``step -> float`` (optimlab, optax) or a function of
no argument (Keras calls ``lr()``): :func:`as_step_function` tells them apart by signature.

Keras 3 computes these schedules in float32 in its default configuration (its JAX, PyTorch and
NumPy backends without JAX's 64-bit mode); optimlab computes them in float64 under every preset.
``optimlab differences`` measures what that changes ("Keras's schedules in float32").
"""

from __future__ import annotations

import abc
import bisect
import inspect
import math
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._validation import (
    MAX_COUNT,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_optional_float,
    show,
)

__all__ = [
    "LearningRateSchedule",
    "Constant",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "LinearLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "CyclicLR",
    "ReduceLROnPlateau",
    "LinearWarmup",
    "serialize",
    "deserialize",
    "as_step_function",
    "ZeroArgumentLearningRate",
]


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


# -- Keras 3 ------------------------------------------------------------------------------


class ExponentialDecay(LearningRateSchedule):
    """Exponential decay, ``keras.optimizers.schedules.ExponentialDecay``::

        lr(t) = initial_learning_rate * decay_rate ** (t / decay_steps)
        lr(t) = initial_learning_rate * decay_rate ** floor(t / decay_steps)   # staircase

    ``decay_rate > 1`` grows the learning rate. optax: ``optax.exponential_decay(
    initial_learning_rate, decay_steps, decay_rate, staircase=staircase)``.

    Peer oddity: Keras 3's JAX backend computes ``ops.floor`` of a float64 tensor in float32,
    so Keras's staircase goes wrong once ``t / decay_steps`` is within float32 rounding of an
    integer: ``ExponentialDecay(1.0, 10**8, 0.5, staircase=True)(10**8 - 1)`` is 0.5 in Keras
    (floor(float32(0.99999999)) = 1); here it is 1.0 (integer division).
    """

    #: Keras's default ``name``
    default_name = "ExponentialDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = default_name,
    ) -> None:
        self.initial_learning_rate = check_float("initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = check_int("decay_steps", decay_steps, 1)
        self.decay_rate = check_float("decay_rate", decay_rate, 0, low_open=True)
        self.staircase = check_bool("staircase", staircase)
        self.name = _check_name(name)

    def _compute(self, step: int) -> float:
        p = float(step // self.decay_steps) if self.staircase else step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate**p

    def _params(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """Piecewise constant, ``keras.optimizers.schedules.PiecewiseConstantDecay``::

        lr(t) = values[0]   if t <= boundaries[0]
                values[i]   if boundaries[i-1] < t <= boundaries[i]
                values[-1]  if t > boundaries[-1]

    ``boundaries`` are strictly increasing integers >= 0, ``len(values) == len(boundaries) + 1``
    (an empty ``boundaries`` gives the constant ``values[0]``).

    Peer notes: Keras switches *after* a boundary (``t > b``), optax's
    ``piecewise_constant_schedule`` *at* it (``t >= b``), so the two disagree at every boundary
    step. Keras raises ``IndexError`` for an empty ``boundaries`` list; here that is allowed.
    """

    #: Keras's default ``name``
    default_name = "PiecewiseConstant"

    def __init__(
        self,
        boundaries: Sequence[int],
        values: Sequence[float],
        name: str = default_name,
    ) -> None:
        b = _check_sequence("boundaries", boundaries)
        v = _check_sequence("values", values)
        b = [check_int(f"boundaries[{i}]", x, 0) for i, x in enumerate(b)]
        v = [check_float(f"values[{i}]", x, 0.0) for i, x in enumerate(v)]
        if len(v) != len(b) + 1:
            raise ValueError(
                f"values must have len(boundaries) + 1 = {len(b) + 1} entries, got {len(v)}: "
                f"boundaries={b}, values={v}"
            )
        for i in range(1, len(b)):
            if b[i] <= b[i - 1]:
                raise ValueError(
                    f"boundaries must be strictly increasing, got {b} "
                    f"(boundaries[{i}]={b[i]} <= boundaries[{i - 1}]={b[i - 1]})"
                )
        self.boundaries = tuple(b)
        self.values = tuple(v)
        self.name = _check_name(name)

    def _compute(self, step: int) -> float:
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def _params(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay, ``keras.optimizers.schedules.PolynomialDecay``::

        t' = min(t, decay_steps),  D = decay_steps                         # cycle=False
        t' = t,  D = decay_steps * max(1, ceil(t / decay_steps))            # cycle=True
        lr(t) = (initial_learning_rate - end_learning_rate) * (1 - t' / D) ** power
                + end_learning_rate

    optax: ``optax.polynomial_schedule(initial_learning_rate, end_learning_rate, power,
    decay_steps)`` (no cycle).

    Peer oddities (reproduced): with ``cycle=True`` the n-th "cycle" is *not* a restart but
    the same curve stretched to ``n * decay_steps`` steps and read at ``t``, so after the end of
    the first cycle the value jumps back up only part of the way: ``PolynomialDecay(1.0, 10,
    0.0, cycle=True)`` gives 1.0, 0.9, ..., 0.0 at t=10, then 0.45 at t=11, 0.0 at t=20, 0.3 at
    t=21. At ``t = 0`` the multiplier is 1 (not ceil(0) = 0). Keras computes the ceil in float32
    on its JAX backend, so with ``decay_steps=10**8`` it returns NaN at ``t = 10**8 + 1``; here
    the ceil is integer arithmetic.
    """

    #: Keras's default ``name``
    default_name = "PolynomialDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = default_name,
    ) -> None:
        self.initial_learning_rate = check_float("initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = _check_count("decay_steps", decay_steps, 1)
        self.end_learning_rate = check_float("end_learning_rate", end_learning_rate, 0)
        self.power = check_float("power", power, 0, low_open=True)
        self.cycle = check_bool("cycle", cycle)
        self.name = _check_name(name)

    def _compute(self, step: int) -> float:
        d = self.decay_steps
        if self.cycle:
            multiplier = 1 if step == 0 else -(-step // d)
            t, dd = float(step), float(d) * float(multiplier)
        else:
            t, dd = float(min(step, d)), float(d)
        p = t / dd
        return (self.initial_learning_rate - self.end_learning_rate) * (
            1 - p
        ) ** self.power + self.end_learning_rate

    def _params(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class InverseTimeDecay(LearningRateSchedule):
    """Inverse time decay, ``keras.optimizers.schedules.InverseTimeDecay``::

        lr(t) = initial_learning_rate / (1 + decay_rate * t / decay_steps)
        lr(t) = initial_learning_rate / (1 + decay_rate * floor(t / decay_steps))  # staircase

    No optax counterpart. Peer oddity: as for :class:`ExponentialDecay`, Keras's staircase
    floor runs in float32 on the JAX backend (``InverseTimeDecay(1.0, 10**8, 0.5,
    staircase=True)(10**8 - 1)`` is 0.6667 in Keras, 1.0 here).
    """

    #: Keras's default ``name``
    default_name = "InverseTimeDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = default_name,
    ) -> None:
        self.initial_learning_rate = check_float("initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = check_int("decay_steps", decay_steps, 1)
        self.decay_rate = check_float("decay_rate", decay_rate, 0)
        self.staircase = check_bool("staircase", staircase)
        self.name = _check_name(name)

    def _compute(self, step: int) -> float:
        p = float(step // self.decay_steps) if self.staircase else step / self.decay_steps
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def _params(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup, ``keras.optimizers.schedules.CosineDecay``.

    Without ``warmup_target`` (``W = 0``, ``peak = initial_learning_rate``)::

        decay(s) = peak * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, decay_steps) / decay_steps))
                           + alpha)
        lr(t) = decay(t)

    With ``warmup_target`` (``W = warmup_steps``, ``peak = warmup_target``)::

        lr(t) = initial_learning_rate + (warmup_target - initial_learning_rate) * t / W   t < W
        lr(t) = decay(t - W)                                                               t >= W

    so the peak is reached at ``t = W`` and the floor ``alpha * peak`` at ``t = W +
    decay_steps``. optax: ``optax.cosine_decay_schedule(initial_learning_rate, decay_steps,
    alpha)`` and ``optax.warmup_cosine_decay_schedule(initial_learning_rate, warmup_target, W,
    W + decay_steps, alpha * warmup_target)`` (optax counts the warmup inside decay_steps).

    Peer notes: Keras silently ignores ``warmup_steps`` when ``warmup_target`` is None; here
    that combination is refused. With ``warmup_steps=0`` Keras decays from ``warmup_target``
    and never uses ``initial_learning_rate`` (reproduced). Keras 3's JAX backend computes
    ``ops.cos`` of a float64 tensor in float32 (``CosineDecay(1.0, 10)(5)`` is
    0.4999999701976776 in Keras with floatx float64, 0.5000000000000001 here): agreement is to
    about 3e-8 * peak, not float64 precision.
    """

    #: Keras's default ``name``
    default_name = "CosineDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = default_name,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        self.initial_learning_rate = check_float("initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = check_int("decay_steps", decay_steps, 1)
        self.alpha = check_float("alpha", alpha, 0, 1)
        self.name = _check_name(name)
        self.warmup_target = check_optional_float("warmup_target", warmup_target, 0)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        if self.warmup_target is None and self.warmup_steps > 0:
            raise ValueError(
                f"warmup_steps={warmup_steps!r} needs a warmup_target (the learning rate "
                "reached at the end of the warmup); Keras silently skips the warmup here"
            )

    def _decay(self, t: float, peak: float) -> float:
        completed_fraction = t / self.decay_steps
        cosine_decayed = 0.5 * (1.0 + math.cos(math.pi * completed_fraction))
        return peak * ((1 - self.alpha) * cosine_decayed + self.alpha)

    def _compute(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(float(min(step, self.decay_steps)), self.initial_learning_rate)
        w = self.warmup_steps
        t = min(step, self.decay_steps + w)
        if t < w:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (t / w) + self.initial_learning_rate
        return self._decay(float(t - w), self.warmup_target)

    def _params(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR), ``keras.optimizers.schedules.
    CosineDecayRestarts``.

    Period ``i`` (``i = 0, 1, ...``) lasts ``first_decay_steps * t_mul**i`` steps and starts at
    ``S_i = first_decay_steps * (t_mul**i - 1) / (t_mul - 1)`` (``i * first_decay_steps`` when
    ``t_mul == 1``). For ``S_i <= t < S_{i+1}``, with ``f = (t - S_i) / (first_decay_steps *
    t_mul**i)``::

        lr(t) = initial_learning_rate * ((1 - alpha) * m_mul**i * 0.5 * (1 + cos(pi * f)) + alpha)

    So each period starts at ``initial_learning_rate * ((1 - alpha) * m_mul**i + alpha)`` and
    ends near ``alpha * initial_learning_rate`` (the floor is *not* scaled by ``m_mul``).

    The period index is computed like Keras (``floor(log(1 + (t_mul - 1) * t / D) /
    log(t_mul))``) but in float64 and then corrected so that a restart boundary that is an
    integer in decimal arithmetic (``t_mul=1.1``, ``first_decay_steps=10``: restarts at 10 and
    21) is honoured despite binary rounding (relative tolerance 1e-9).

    Peer notes: Keras computes ``cos`` and ``floor`` in float32 on its JAX backend (values agree
    to about 3e-8 * initial_learning_rate). Keras accepts ``t_mul < 1`` but the periods then
    sum to ``first_decay_steps / (1 - t_mul)`` and Keras returns NaN from there on
    (``t_mul=0.5``, ``first_decay_steps=10``: NaN at t = 20); here ``t_mul >= 1`` is required.
    """

    #: Keras's default ``name``
    default_name = "SGDRDecay"

    _TOL = 1e-9

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = default_name,
    ) -> None:
        self.initial_learning_rate = check_float("initial_learning_rate", initial_learning_rate, 0)
        self.first_decay_steps = check_int("first_decay_steps", first_decay_steps, 1)
        self.t_mul = check_float("t_mul", t_mul, 1.0)
        self.m_mul = check_float("m_mul", m_mul, 0.0)
        self.alpha = check_float("alpha", alpha, 0, 1)
        self.name = _check_name(name)

    def _start(self, i: int) -> float:
        """Start of period ``i`` in units of first_decay_steps (Keras's ``sum_r``)."""
        return (1.0 - self.t_mul**i) / (1.0 - self.t_mul)

    def _reached(self, i: int, cf: float) -> bool:
        return self._start(i) <= cf * (1.0 + self._TOL)

    def _compute(self, step: int) -> float:
        d = self.first_decay_steps
        if self.t_mul == 1.0:
            i = step // d
            frac = (step - i * d) / d
        else:
            cf = step / d
            i = max(0, math.floor(math.log1p(cf * (self.t_mul - 1.0)) / math.log(self.t_mul)))
            while i > 0 and not self._reached(i, cf):
                i -= 1
            while self._reached(i + 1, cf):
                i += 1
            frac = max(0.0, (cf - self._start(i)) / self.t_mul**i)
        cosine_decayed = 0.5 * self.m_mul**i * (1.0 + math.cos(math.pi * frac))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine_decayed + self.alpha)

    def _params(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


# -- PyTorch ------------------------------------------------------------------------------


class StepLR(LearningRateSchedule):
    """Step decay, ``torch.optim.lr_scheduler.StepLR``::

        lr(k) = learning_rate * gamma ** floor(k / step_size)

    optax: ``optax.exponential_decay(learning_rate, step_size, gamma, staircase=True)``.
    torch multiplies the previous learning rate by ``gamma`` at each multiple of
    ``step_size`` (a recursive form): agreement up to rounding.
    """

    def __init__(self, learning_rate: float, step_size: int, gamma: float = 0.1) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma ** (step // self.step_size)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }


class MultiStepLR(LearningRateSchedule):
    """Decay at milestones, ``torch.optim.lr_scheduler.MultiStepLR``::

        lr(k) = learning_rate * gamma ** (number of milestones m with m <= k)

    ``milestones`` are sorted integers >= 0; a repeated milestone decays twice, as in torch
    (which keeps a Counter). optax: ``optax.piecewise_constant_schedule(learning_rate,
    {m: gamma ** count})`` (same ``k >= m`` convention). torch multiplies recursively
    (rounding only). Peer note: torch accepts unsorted milestones; here they must be sorted.
    """

    def __init__(self, learning_rate: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        m = _check_sequence("milestones", milestones)
        m = [check_int(f"milestones[{i}]", x, 0) for i, x in enumerate(m)]
        for i in range(1, len(m)):
            if m[i] < m[i - 1]:
                raise ValueError(
                    f"milestones must be sorted (non-decreasing), got {m} "
                    f"(milestones[{i}]={m[i]} < milestones[{i - 1}]={m[i - 1]})"
                )
        self.milestones = tuple(m)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma ** bisect.bisect_right(self.milestones, step)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
        }


class ExponentialLR(LearningRateSchedule):
    """Per-step exponential decay, ``torch.optim.lr_scheduler.ExponentialLR``::

        lr(k) = learning_rate * gamma ** k

    optax: ``optax.exponential_decay(learning_rate, 1, gamma)``. torch multiplies by ``gamma``
    at every step (rounding grows like ``k`` ulps).
    """

    def __init__(self, learning_rate: float, gamma: float) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma**step

    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "gamma": self.gamma}


class LinearLR(LearningRateSchedule):
    """Linear ramp of a factor, ``torch.optim.lr_scheduler.LinearLR``::

        lr(k) = learning_rate * (start_factor
                                 + (end_factor - start_factor) * min(k, total_iters) / total_iters)

    ``start_factor`` in (0, 1], ``end_factor`` in [0, 1] (torch's ranges), ``total_iters >= 1``.
    optax: ``optax.linear_schedule(learning_rate * start_factor, learning_rate * end_factor,
    total_iters)``. torch updates by a ratio of consecutive factors (rounding only).
    Peer oddity: torch accepts ``total_iters=0`` and then stays at ``start_factor`` forever
    (its closed form divides by zero); refused here.
    """

    def __init__(
        self,
        learning_rate: float,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.start_factor = check_float("start_factor", start_factor, 0, 1, low_open=True)
        self.end_factor = check_float("end_factor", end_factor, 0, 1)
        self.total_iters = check_int("total_iters", total_iters, 1)

    def _compute(self, step: int) -> float:
        sf, ef, n = self.start_factor, self.end_factor, self.total_iters
        if step >= n:  # exactly end_factor (sf + (ef - sf) can round below 0 when ef = 0)
            return self.learning_rate * ef
        return self.learning_rate * max(sf + (ef - sf) * step / n, 0.0)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "start_factor": self.start_factor,
            "end_factor": self.end_factor,
            "total_iters": self.total_iters,
        }


class CosineAnnealingLR(LearningRateSchedule):
    """Cosine annealing, ``torch.optim.lr_scheduler.CosineAnnealingLR`` (closed form)::

        lr(k) = eta_min + (learning_rate - eta_min) * (1 + cos(pi * k / T_max)) / 2

    torch itself updates recursively, ``lr_k = eta_min + (lr_{k-1} - eta_min) * (1 + cos(pi *
    k / T_max)) / (1 + cos(pi * (k - 1) / T_max))``, which equals the closed form up to rounding
    (measured over 400 steps: relative differences up to 1e-15 for T_max=100, 1e-13 for
    T_max=7, where the recursion wraps around more often).

    Peer oddity (reproduced): nothing stops at ``T_max``. The cosine keeps going, so the
    learning rate climbs back to ``learning_rate`` at ``2 * T_max`` and oscillates with period
    ``2 * T_max`` (``T_max=10``: lr(15) = (learning_rate + eta_min) / 2, lr(20) =
    learning_rate). optax's ``cosine_decay_schedule`` and Keras's ``CosineDecay`` stay at the
    floor instead.
    """

    def __init__(self, learning_rate: float, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.T_max = check_int("T_max", T_max, 1)
        self.eta_min = check_float("eta_min", eta_min, 0)

    def _compute(self, step: int) -> float:
        return (
            self.eta_min
            + (self.learning_rate - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2
        )

    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "T_max": self.T_max, "eta_min": self.eta_min}


class OneCycleLR(LearningRateSchedule):
    """The 1cycle policy, ``torch.optim.lr_scheduler.OneCycleLR`` (learning rate only).

    With ``initial = max_lr / div_factor``, ``min_lr = initial / final_div_factor`` and
    ``T = total_steps``, the phases end at (torch's float boundaries)::

        two phases:   e1 = pct_start * T - 1 (initial -> max_lr),
                      e2 = T - 1             (max_lr -> min_lr)
        three phases: e1 = pct_start * T - 1 (initial -> max_lr),
                      e2 = 2 * pct_start * T - 2 (max_lr -> initial),
                      e3 = T - 1             (initial -> min_lr)

    For step ``k`` in the first phase whose end ``e_i >= k`` (or the last phase), with ``s`` the
    previous phase's end (0 for the first) and ``pct = (k - s) / (e_i - s)``::

        cos:    lr(k) = end + (start - end) / 2 * (cos(pi * pct) + 1)
        linear: lr(k) = (end - start) * pct + start

    The schedule covers ``k = 0 .. total_steps - 1`` (``total_steps`` updates); ``lr(k)`` for
    ``k >= total_steps`` raises ``ValueError``. optax: ``optax.cosine_onecycle_schedule``, whose
    boundaries are one step later (peak at ``int(pct_start * T)``, floor at ``T``).

    Peer oddities: torch allows one step past the cycle and *extrapolates* there (``k = T``
    gives ``pct > 1``: with ``anneal_strategy="linear"``, ``max_lr=1``, ``T=10`` the learning
    rate is -0.14), raising only at ``k = T + 1``; here ``k >= T`` raises. torch divides by zero
    (``ZeroDivisionError`` in its constructor) when ``pct_start * total_steps == 1`` and
    silently skips the warmup when it is < 1; here ``pct_start * total_steps > 1`` is required
    (and, with ``three_phase``, ``2 * pct_start * total_steps - 2 < total_steps - 1``).
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.max_lr = check_float("max_lr", max_lr, 0)
        self.total_steps = _check_count("total_steps", total_steps, 2)
        self.pct_start = check_float("pct_start", pct_start, 0, 1, low_open=True, high_open=True)
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = check_float("div_factor", div_factor, 0, low_open=True)
        self.final_div_factor = check_float("final_div_factor", final_div_factor, 0, low_open=True)
        self.three_phase = check_bool("three_phase", three_phase)
        n = self.total_steps
        e1 = float(self.pct_start * n) - 1
        if e1 <= 0:
            raise ValueError(
                f"pct_start * total_steps must be > 1 so that the warmup phase has positive "
                f"length, got pct_start={pct_start!r}, total_steps={total_steps!r} "
                f"(pct_start * total_steps = {self.pct_start * n!r})"
            )
        initial = self.max_lr / self.div_factor
        min_lr = initial / self.final_div_factor
        if self.three_phase:
            e2 = float(2 * self.pct_start * n) - 2
            if e2 >= n - 1:
                raise ValueError(
                    "with three_phase=True, 2 * pct_start * total_steps - 2 must be < "
                    f"total_steps - 1, got pct_start={pct_start!r}, total_steps={total_steps!r}"
                )
            self._phases = (
                (e1, initial, self.max_lr),
                (e2, self.max_lr, initial),
                (float(n - 1), initial, min_lr),
            )
        else:
            self._phases = ((e1, initial, self.max_lr), (float(n - 1), self.max_lr, min_lr))

    def _compute(self, step: int) -> float:
        if step >= self.total_steps:
            raise ValueError(
                f"step={step} is past the end of the cycle: OneCycleLR is defined for step in "
                f"[0, total_steps - 1] = [0, {self.total_steps - 1}] (total_steps="
                f"{self.total_steps})"
            )
        anneal = _cos_anneal if self.anneal_strategy == "cos" else _linear_anneal
        start_step = 0.0
        last = len(self._phases) - 1
        for i, (end_step, start_lr, end_lr) in enumerate(self._phases):
            if step <= end_step or i == last:
                pct = (step - start_step) / (end_step - start_step)
                return anneal(start_lr, end_lr, pct)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def _params(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "three_phase": self.three_phase,
        }


class CyclicLR(LearningRateSchedule):
    """Cyclical learning rate, ``torch.optim.lr_scheduler.CyclicLR`` (learning rate only).

    With ``up = step_size_up``, ``down = step_size_down`` (default ``up``), ``L = up + down``
    and ``r = up / L``::

        cycle = floor(1 + k / L),  x = 1 + k / L - cycle
        h = x / r              if x <= r     (rising)
            (x - 1) / (r - 1)  otherwise     (falling)
        lr(k) = base_lr + (max_lr - base_lr) * h * scale

    ``scale`` is 1 (``"triangular"``), ``1 / 2 ** (cycle - 1)`` (``"triangular2"``) or
    ``gamma ** k`` (``"exp_range"``; note: per iteration, not per cycle). No optax
    counterpart. ``max_lr >= base_lr`` and ``gamma`` in (0, 1] are required (torch checks
    neither). The momentum cycling of torch's class is not part of a learning-rate schedule.
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_lr = check_float("base_lr", base_lr, 0)
        self.max_lr = check_float("max_lr", max_lr, self.base_lr)
        self.step_size_up = _check_count("step_size_up", step_size_up, 1)
        self.step_size_down = (
            None if step_size_down is None else _check_count("step_size_down", step_size_down, 1)
        )
        self.mode = check_choice("mode", mode, self.MODES)
        self.gamma = check_float("gamma", gamma, 0, 1, low_open=True)
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        self._total_size = up + down
        self._step_ratio = up / self._total_size

    def _compute(self, step: int) -> float:
        cycle = math.floor(1 + step / self._total_size)
        x = 1.0 + step / self._total_size - cycle
        if x <= self._step_ratio:
            scale_factor = x / self._step_ratio
        else:
            scale_factor = (x - 1) / (self._step_ratio - 1)
        base_height = (self.max_lr - self.base_lr) * scale_factor
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = math.ldexp(1.0, 1 - cycle)  # 1 / 2**(cycle-1), underflows to 0
        else:
            scale = self.gamma**step
        return self.base_lr + base_height * scale

    def _params(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
        }


class ReduceLROnPlateau(LearningRateSchedule):
    """Reduce the learning rate when a metric stops improving,
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``. A *stateful* schedule.

    ``sched.step(metric)`` reports a metric (e.g. once per epoch); ``sched(step)`` returns the
    current learning rate whatever ``step`` is. On each report, with ``best`` the best metric
    so far::

        improved = metric < best * (1 - threshold)   mode="min", threshold_mode="rel"
                   metric < best - threshold         mode="min", threshold_mode="abs"
                   metric > best * (1 + threshold)   mode="max", threshold_mode="rel"
                   metric > best + threshold         mode="max", threshold_mode="abs"
        improved: best = metric, num_bad_epochs = 0;  else num_bad_epochs += 1
        in cooldown (cooldown_counter > 0): cooldown_counter -= 1, num_bad_epochs = 0
        num_bad_epochs > patience:
            new = max(lr * factor, min_lr);  if lr - new > eps: lr = new
            cooldown_counter = cooldown, num_bad_epochs = 0

    The counters (``lr``, ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``)
    are in :meth:`state_dict`; ``best`` is None until a first metric improves on the start
    value (+inf for "min", -inf for "max"). ``get_config`` holds only the constructor
    arguments. A NaN metric raises ``ValueError`` (torch silently counts it as a bad epoch).

    Peer oddities (reproduced): reductions of at most ``eps`` are dropped, so a learning rate
    near ``eps`` never moves (``learning_rate=1e-8, factor=0.1``: 1e-8 - 1e-9 = 9e-9 <= 1e-8,
    the learning rate stays 1e-8 forever). In ``"rel"`` mode with negative metrics the
    threshold works backwards: with best = -1.0 and threshold = 0.1, mode "min" counts -0.95 (a
    *worse* value) as an improvement, because -0.95 < -1.0 * 0.9. ``threshold`` must be < 1 in
    "rel" mode (torch accepts 1, where +inf * 0 = NaN makes no metric ever an improvement).
    """

    _STATE_KEYS = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(
        self,
        learning_rate: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.factor = check_float("factor", factor, 0, 1, high_open=True)
        self.patience = check_int("patience", patience, 0)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        if self.threshold_mode == "rel":
            self.threshold = check_float("threshold", threshold, 0, 1, high_open=True)
        else:
            self.threshold = check_float("threshold", threshold, 0)
        self.cooldown = check_int("cooldown", cooldown, 0)
        self.min_lr = check_float("min_lr", min_lr, 0)
        self.eps = check_float("eps", eps, 0)
        self._mode_worse = math.inf if self.mode == "min" else -math.inf
        self._lr = self.learning_rate
        self._best = self._mode_worse
        self._num_bad_epochs = 0
        self._cooldown_counter = 0
        self._last_epoch = 0

    # -- the schedule -------------------------------------------------------------------

    def _compute(self, step: int) -> float:
        return self._lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metric: Any) -> float:
        """Report a metric value; returns the (possibly reduced) learning rate."""
        if isinstance(metric, (str, bytes)) or _is_bool(metric):
            raise TypeError(f"metric must be a real number, got {show(metric)}")
        if not isinstance(metric, numbers.Real):
            try:
                metric = float(metric)  # e.g. a 0-d array or a Decimal
            except (TypeError, ValueError):
                raise TypeError(f"metric must be a real number, got {show(metric)}") from None
        current = _real_or_infinite("metric", metric)
        if math.isnan(current):
            raise ValueError(f"metric must not be NaN, got {metric!r}")
        self._last_epoch += 1
        if self._is_better(current, self._best):
            self._best = current
            self._num_bad_epochs = 0
        else:
            self._num_bad_epochs += 1
        if self._cooldown_counter > 0:
            self._cooldown_counter -= 1
            self._num_bad_epochs = 0
        if self._num_bad_epochs > self.patience:
            new_lr = max(self._lr * self.factor, self.min_lr)
            if self._lr - new_lr > self.eps:
                self._lr = new_lr
            self._cooldown_counter = self.cooldown
            self._num_bad_epochs = 0
        return self._lr

    @property
    def best(self) -> float | None:
        """The best metric so far (None before the first improvement)."""
        return None if self._best == self._mode_worse else self._best

    @property
    def num_bad_epochs(self) -> int:
        return self._num_bad_epochs

    @property
    def cooldown_counter(self) -> int:
        return self._cooldown_counter

    @property
    def last_epoch(self) -> int:
        """The number of metrics reported."""
        return self._last_epoch

    # -- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self._lr,
            "best": self.best,
            "num_bad_epochs": self._num_bad_epochs,
            "cooldown_counter": self._cooldown_counter,
            "last_epoch": self._last_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or set(state) != set(self._STATE_KEYS):
            got = sorted(state) if isinstance(state, Mapping) else state
            raise ValueError(
                f"ReduceLROnPlateau state must have the keys {list(self._STATE_KEYS)}, got {got!r}"
            )
        lr = check_float("lr", state["lr"], 0)
        best = state["best"]
        if best is None:
            best = self._mode_worse
        else:
            best = _real_or_infinite("best", best)
        num_bad = check_int("num_bad_epochs", state["num_bad_epochs"], 0)
        cooldown_counter = check_int("cooldown_counter", state["cooldown_counter"], 0)
        last_epoch = check_int("last_epoch", state["last_epoch"], 0)
        self._lr, self._best = lr, float(best)
        self._num_bad_epochs, self._cooldown_counter = num_bad, cooldown_counter
        self._last_epoch = last_epoch

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "eps": self.eps,
        }


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


# -- serialization ------------------------------------------------------------------------

_REGISTRY: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (
        Constant,
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
        StepLR,
        MultiStepLR,
        ExponentialLR,
        LinearLR,
        CosineAnnealingLR,
        OneCycleLR,
        CyclicLR,
        ReduceLROnPlateau,
        LinearWarmup,
    )
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": name, "config": schedule.get_config()}`` (JSON-serializable).

    Raises ``TypeError`` for a plain Python callable (not serializable) or any other object,
    and for a subclass this module does not know (it could not be deserialized).
    """
    if isinstance(schedule, LearningRateSchedule):
        name = type(schedule).__name__
        if _REGISTRY.get(name) is not type(schedule):
            raise TypeError(
                f"{name} is not a schedule of optimlab.schedules and cannot be serialized; "
                f"known schedules: {', '.join(sorted(_REGISTRY))}"
            )
        return {"class_name": name, "config": schedule.get_config()}
    if callable(schedule):
        raise TypeError(
            f"{schedule!r} is a plain Python callable; plain callables are not serializable. "
            "Use a schedule from optimlab.schedules."
        )
    raise TypeError(
        f"serialize expects a LearningRateSchedule, got {schedule!r} of type "
        f"{type(schedule).__name__}"
    )


def deserialize(config: Mapping[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output (extra keys are ignored)."""
    if not isinstance(config, Mapping) or "class_name" not in config or "config" not in config:
        raise ValueError(
            f'expected a dict {{"class_name": ..., "config": {{...}}}}, got {config!r}'
        )
    name = config["class_name"]
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown schedule class_name {show(name)}; valid names: {', '.join(sorted(_REGISTRY))}"
        )
    try:
        return cls.from_config(config["config"])
    except RecursionError:  # a crafted config nesting LinearWarmups thousands deep
        raise ValueError(
            "the schedule config is nested too deeply to deserialize (LinearWarmup inside "
            "LinearWarmup inside ...); a schedule nests a few levels at most"
        ) from None
