"""What every hyperparameter accepts, written down here (the oracle the hostile tests compare
the library with), and the hypothesis strategy of hostile values.

Each optimizer's hyperparameters are read from the class (``cls.hyperparameters`` plus the
common ones), so a new optimizer is covered by adding nothing; the *kind* of each (a float in
an interval, an integer, a flag, a choice) comes from the validator's identity or the name, and
the verdict on a value is computed here, not by the library. A validator this table does not
know gets the generic checks only (a refusal names the argument and changes nothing).
"""

from __future__ import annotations

import decimal
import enum
import fractions
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import optimlab as ol
from optimlab import adafactor, optimizers, schedule_free
from optimlab import optimizer as runtime

MAX_COUNT = 2**63 - 1


def is_real(value: Any) -> bool:
    """A real number for the library: numbers.Real (not bool / numpy bool) or a 0-d array of
    integers or floats."""
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iuf"
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def as_python(value: Any) -> Any:
    return value.item() if isinstance(value, np.ndarray) else value


@dataclass(frozen=True)
class Real:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def range_text(self) -> str:
        if self.high is None:
            return f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        if self.low is None:
            return f"< {self.high:g}" if self.high_open else f"<= {self.high:g}"
        left, right = "(["[not self.low_open], ")]"[not self.high_open]
        return f"in {left}{self.low:g}, {self.high:g}{right}"

    def verdict(self, value):
        """("accept", stored value) or ("refuse", exception type)."""
        if value is None and self.optional:
            return "accept", None
        if not is_real(value):
            return "refuse", TypeError
        value = as_python(value)
        try:
            x = float(value)
        except OverflowError:
            return "refuse", ValueError
        if not math.isfinite(x):
            return "refuse", ValueError
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return "refuse", ValueError
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return "refuse", ValueError
        return "accept", x


@dataclass(frozen=True)
class Int:
    low: int
    high: int | None = MAX_COUNT
    optional: bool = False
    cap: int | None = None  # refused above, but not part of the range the message states

    def range_text(self) -> str:
        if self.high is None:
            return f">= {self.low}"
        if self.high == MAX_COUNT:
            return f"in [{self.low}, 2**63 - 1]"
        return f"in [{self.low}, {self.high}]"

    def verdict(self, value):
        if value is None and self.optional:
            return "accept", None
        if not is_real(value):
            return "refuse", TypeError
        value = as_python(value)
        if isinstance(value, numbers.Integral):
            x = int(value)
        else:
            try:
                f = float(value)
            except OverflowError:
                return "refuse", ValueError
            if not f.is_integer():
                return "refuse", ValueError
            x = int(f)
        if x < self.low or (self.high is not None and x > self.high) or (self.cap and x > self.cap):
            return "refuse", ValueError
        return "accept", x


@dataclass(frozen=True)
class Bool:
    def range_text(self) -> str:
        return "True or False"

    def verdict(self, value):
        if isinstance(value, bool | np.bool_):
            return "accept", bool(value)
        return "refuse", TypeError


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    def range_text(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def verdict(self, value):
        if isinstance(value, str) and value in self.choices:
            return "accept", str(value)
        return "refuse", ValueError


BY_VALIDATOR = {
    runtime.unit_interval_open: Real(0.0, 1.0, high_open=True),
    runtime.unit_interval_closed: Real(0.0, 1.0),
    runtime.non_negative: Real(0.0),
    runtime.optional_positive: Real(0.0, low_open=True, optional=True),
    runtime.optional_non_negative: Real(0.0, optional=True),
    runtime.check_bool: Bool(),
    optimizers._momentum_decay: Real(0.0, optional=True),
    optimizers._momentum_style: Choice(("lr_inside", "lr_outside")),
    optimizers._rectification_threshold: Real(4.0),
    optimizers._eta_minus: Real(0.0, 1.0, low_open=True, high_open=True),
    optimizers._eta_plus: Real(1.0, low_open=True),
    optimizers._positive: Real(0.0, low_open=True),
    optimizers._compare_with: Choice(("gradient", "update")),
    optimizers._learning_rate_power: Real(None, 0.0),
    optimizers._t0: Real(0.0),
    adafactor._non_positive: Real(None, 0.0),
    adafactor._optional_momentum: Real(0.0, 1.0, high_open=True, optional=True),
    adafactor._dimension: Int(0),
    schedule_free._warmup_steps: Int(0, optional=True),
    schedule_free._weight_lr_power: Real(0.0),
    schedule_free._weight_sum_dtype: Choice(("parameter", "float64")),
}
BY_NAME = {
    "ema_overwrite_frequency": Int(1, optional=True),
    "gradient_accumulation_steps": Int(1, optional=True),
    "weight_decay_mode": Choice(("decoupled", "l2")),
    "nan_policy": Choice(("raise", "skip", "propagate")),
    "epsilon_style": Choice(("hat", "paper")),
    "amsgrad_max": Choice(("raw", "corrected")),
    "nan_trust_ratio": Choice(("one", "nan")),
    "epsilon_1_style": Choice(("add", "clamp")),
    "factored_dims": Choice(("last_two", "two_largest")),
    "weight_decay_style": Choice(("before_rms", "after_rms", "unscaled")),
}
#: (optimizer, name): where a name means another set of choices than BY_NAME's
BY_CLASS = {
    ("ScheduleFreeAdamW", "weight_decay_style"): Choice(("before_step", "in_z_step")),
}
LEARNING_RATE = Real(0.0)
#: the learning rate of a rule that divides by it (Ftrl: ``learning_rate_positive``)
POSITIVE_LEARNING_RATE = Real(0.0, low_open=True)

#: (optimizer, argument): values the argument accepts on its own that a cross-argument check
#: may refuse with the defaults of the others (then with a ValueError naming the argument)
COMBINATIONS = {
    ("SGD", "nesterov"),
    ("AdamW", "weight_decay"),
    ("AdamW", "weight_decay_mode"),
    ("Muon", "weight_decay_mode"),
    ("Rprop", "min_step_size"),  # above max_step_size
    ("Rprop", "max_step_size"),  # below min_step_size
    ("Rprop", "delayed_update"),  # True needs compare_with="update" (keras, torch)
    ("Rprop", "compare_with"),  # "gradient" with the optax preset's delayed_update
    ("Lamb", "weight_decay_mode"),  # 'l2' needs weight_decay_in_trust_ratio=False
}

#: (optimizer, argument, preset): a range that a preset narrows (Keras's Lion takes beta_1 in
#: (0, 1], torch's and optax's in [0, 1])
PRESET_KINDS = {("Lion", "beta_1", "keras"): Real(0.0, 1.0, low_open=True)}


def kind_under(cls, name: str, kind: Any, preset: str) -> Any:
    """The kind of argument ``name`` of ``cls`` under ``preset``."""
    return PRESET_KINDS.get((cls.__name__, name, preset), kind)


#: normalizations of accepted values: 0 weight decay is off, 1 accumulation step is none
NORMALIZED = {
    ("weight_decay", 0.0): None,
    ("gradient_accumulation_steps", 1): None,
    ("warmup_steps", None): 0,  # optax's None: no warmup
}


def hyperparameters(cls) -> dict[str, Any]:
    """name -> kind (Real, Int, Bool, Choice) or None (unknown validator) of every
    hyperparameter of ``cls``, the common ones included."""
    validators = {**runtime.COMMON_HYPERPARAMETERS, **cls.hyperparameters}
    return {
        name: BY_CLASS.get((cls.__name__, name)) or BY_NAME.get(name) or BY_VALIDATOR.get(v)
        for name, v in validators.items()
    }


def cases() -> list[tuple[type, str, Any]]:
    """(class, hyperparameter, kind) of every hyperparameter of every optimizer of the registry
    as it is now (an optimizer added to ``OPTIMIZERS`` is covered by adding nothing here)."""
    return [
        (cls, name, kind)
        for cls in ol.OPTIMIZERS.values()
        for name, kind in hyperparameters(cls).items()
    ]


#: :func:`cases` at collection time (the tests are parametrized over it)
CASES = cases()


class Level(enum.IntEnum):
    """An int subclass (enum members are ints)."""

    ONE = 1


class MyInt(int):
    """An int subclass with its own repr."""

    def __repr__(self) -> str:
        return f"MyInt({int(self)})"


class MyFloat(float):
    pass


_HUGE = [10**400, -(10**400), 10**4000, 2**63, 2**63 - 1, 2**64, -(2**63), 2**1024]

#: the value space: numbers of every kind and size, and everything that is not a number
HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.floats(0.0, 2.0),
    st.integers(),
    st.sampled_from(_HUGE),
    st.booleans(),
    st.sampled_from([np.True_, np.False_, None, "", "0.1", "raise", "l2", "hat", b"1"]),
    st.text(max_size=4),
    st.fractions(),
    st.sampled_from([fractions.Fraction(10**400, 3), fractions.Fraction(1, 10**400)]),
    st.decimals(allow_nan=True),
    st.sampled_from([decimal.Decimal("0.5"), decimal.Decimal("1e400")]),
    st.complex_numbers(max_magnitude=2.0),
    st.floats(allow_nan=True, width=32).map(np.float32),
    st.floats(allow_nan=True).map(np.float64),
    st.floats(-2.0, 2.0, width=16).map(np.float16),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.floats(allow_nan=True).map(np.array),
    st.integers(-5, 5).map(np.array),
    st.floats(0.0, 1.0).map(lambda x: np.array([x])),
    st.sampled_from([Level.ONE, MyInt(0), MyInt(3), MyFloat(0.5), MyFloat("nan")]),
    st.sampled_from([[0.5], (0.5,), {"x": 1}, object(), np.array(["l2"]), np.str_("l2")]),
)
