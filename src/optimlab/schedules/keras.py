"""Keras 3's learning-rate schedules (``keras.optimizers.schedules``), with Keras's class and
argument names: ``sched(step)`` equals the Keras object called with the same ``step``."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from .._validation import (
    check_bool,
    check_float,
    check_int,
    check_optional_float,
)
from ._checks import _check_count, _check_name, _check_sequence
from .base import LearningRateSchedule

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
