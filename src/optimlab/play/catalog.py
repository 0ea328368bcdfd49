"""What the page offers: the optimizers with their sliders, the schedules, the surfaces.

The sliders are the page's ranges; the API accepts every value the optimizer itself accepts
(its own validation decides and words the refusal). A slider is ``{"name", "kind": "float" |
"int" | "bool" | "choice", "low", "high", "log", "choices"?, "default": {preset: value}}``.

Learning rate: optax has no default learning rate (``optax.adam(learning_rate)``); the page's
default under ``preset="optax"`` is the Keras default, and a request without one gets it too.

Schedules take their initial rate from the optimizer's ``learning_rate`` (the slider): the
argument named in ``rate_argument`` is filled in, the others come from ``"arguments"``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

from .. import optimizers, presets, schedules
from .._validation import MAX_COUNT, Constraint, constraint_of
from ..lab import contenders, surfaces
from ..viz.style import FALLBACK_COLORS, OPTIMIZER_COLORS

__all__ = [
    "LAB_NAMES",
    "SCHEDULES",
    "CHOSEN_SLIDERS",
    "SLIDERS",
    "Slider",
    "ScheduleInfo",
    "default_value",
    "derived_sliders",
    "lab_names",
    "optimizers_json",
    "surfaces_json",
    "surface_json",
]


def _elementwise(base: str) -> bool:
    return not getattr(optimizers.OPTIMIZERS[base].rule, "TENSOR", False)


def lab_names() -> tuple[str, ...]:
    """The page's optimizer names (the lab's: Momentum and NAG are SGD with momentum 0.9),
    those whose rule is elementwise: the page races and sweeps runs as rows of one array on a
    2-D surface, which a rule on whole matrices (Muon, Lamb, Adafactor) refuses. Derived from
    the registry when called (``LAB_NAMES`` is this, read as an attribute)."""
    return tuple(name for name, (base, _) in contenders.CONTENDERS.items() if _elementwise(base))


#: :func:`lab_names`, computed each time the attribute is read (by the module's
#: ``__getattr__``: the annotation declares the name without binding it)
LAB_NAMES: tuple[str, ...]


def __getattr__(name: str):
    if name == "LAB_NAMES":
        return lab_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Slider:
    """One control of the page: a hyperparameter or schedule argument with its range."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def to_json(self, default) -> dict:
        """The control as JSON, with ``default`` (a value, or a dict preset -> value)."""
        out = {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high}
        out["log"] = self.log
        if self.choices:
            out["choices"] = list(self.choices)
        out["default"] = default
        return out


_LR = Slider("learning_rate", "float", 1e-5, 10.0, log=True)
_EPS = Slider("epsilon", "float", 1e-12, 1.0, log=True)
_BETA_1 = Slider("beta_1", "float", 0.0, 0.999)
_BETA_2 = Slider("beta_2", "float", 0.0, 0.9999)
_MOMENTUM = Slider("momentum", "float", 0.0, 0.999)
_RHO = Slider("rho", "float", 0.0, 0.999)
_WD = Slider("weight_decay", "float", 0.0, 0.5)

#: the hand-written sliders of the optimizers that have them (their ranges chosen for the page)
CHOSEN_SLIDERS: dict[str, tuple[Slider, ...]] = {
    "SGD": (_LR, _MOMENTUM, Slider("nesterov", "bool")),
    "Adagrad": (_LR, _EPS, Slider("initial_accumulator_value", "float", 0.0, 1.0)),
    "RMSprop": (_LR, _RHO, _MOMENTUM, _EPS, Slider("centered", "bool")),
    "Adam": (_LR, _BETA_1, _BETA_2, _EPS, Slider("amsgrad", "bool")),
    "AdamW": (_LR, _BETA_1, _BETA_2, _EPS, _WD, Slider("amsgrad", "bool")),
    "Nadam": (_LR, _BETA_1, _BETA_2, _EPS),
    "Adamax": (_LR, _BETA_1, _BETA_2, _EPS),
    "Adadelta": (_LR, _RHO, _EPS),
    "Lion": (_LR, _BETA_1, _BETA_2),
    "RAdam": (_LR, _BETA_1, _BETA_2, _EPS, Slider("threshold", "float", 4.0, 20.0)),
    "Rprop": (
        _LR,  # the initial step size
        Slider("eta_minus", "float", 0.05, 0.95),
        Slider("eta_plus", "float", 1.05, 3.0),
        Slider("min_step_size", "float", 1e-9, 1e-2, log=True),
        Slider("max_step_size", "float", 1e-3, 100.0, log=True),
    ),
    "Ftrl": (
        _LR,
        Slider("learning_rate_power", "float", -1.0, 0.0),
        Slider("initial_accumulator_value", "float", 0.0, 1.0),
        Slider("l1_regularization_strength", "float", 0.0, 1.0),
        Slider("l2_regularization_strength", "float", 0.0, 1.0),
        Slider("l2_shrinkage_regularization_strength", "float", 0.0, 1.0),
        Slider("beta", "float", 0.0, 2.0),
    ),
    "ScheduleFreeAdamW": (
        _LR,
        _BETA_1,  # 0: y = z, AdamW with beta_1 = 0
        _BETA_2,
        _EPS,
        Slider("warmup_steps", "int", 0, 1000),
        Slider("weight_lr_power", "float", 0.0, 4.0),
    ),
    "ASGD": (
        _LR,
        Slider("lambd", "float", 0.0, 1.0),
        Slider("alpha", "float", 0.0, 1.0),
        Slider("t0", "float", 0.0, 1000.0),  # the averaging starts at update t0 + 3
    ),
}


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _slider(name: str, c: Constraint, default) -> Slider | None:
    """A control for a hyperparameter whose validator accepts ``c`` and whose default is
    ``default``, or None (no control: an option off by default, or a validator of unknown
    range with a default that is not a number).

    bool: a checkbox; choice: a menu of the choices; int: ``[low, high]``, an unbounded top
    10 * default (at least low + 10), log-scaled from 1 over two decades; float: a log scale
    ``[default / 1e5, max(1, default * 1e3)]`` for a small positive default (<= 1e-3, an
    epsilon), else linear ``[low, high]`` with an unbounded end one max(|default|, 1) beyond
    the default and an open end moved in by 1/1000 of the range (``[0, 1)`` -> ``[0, 0.999]``);
    the range always holds the default. Unknown validators with a number default: a number box.
    """
    if default is None or default is presets.REQUIRED:
        return None
    if c.kind == "bool" or (c.kind == "unknown" and isinstance(default, bool)):
        return Slider(name, "bool") if isinstance(default, bool) else None
    if c.kind == "choice":
        choices = tuple(x for x in c.choices if x is not None)
        return Slider(name, "choice", choices=choices) if default in choices else None
    if not _real(default):
        return None
    if c.kind == "unknown":
        return Slider(name, "float")
    d = float(default)
    if c.kind == "int":
        low = 0 if c.low is None else math.ceil(c.low)
        unbounded = c.high is None or c.high >= MAX_COUNT
        high = max(low + 10, 10 * int(d)) if unbounded else math.floor(c.high)
        low, high = min(low, int(d)), max(high, int(d))
        return Slider(name, "int", low, high, log=low >= 1 and high >= 100 * low)
    if 0.0 < d <= 1e-3 and (c.low is None or c.low <= d / 1e5):
        high = max(1.0, d * 1e3) if c.high is None else min(c.high, max(1.0, d * 1e3))
        return Slider(name, "float", d / 1e5, max(high, d), log=True)
    span = max(abs(d), 1.0)
    low = d - span if c.low is None else c.low
    high = d + span if c.high is None else c.high
    width = high - low
    if c.low is not None and c.low_open:
        low += width / 1000
    if c.high is not None and c.high_open:
        high -= width / 1000
    return Slider(name, "float", min(low, d), max(high, d))


def derived_sliders(base: str) -> tuple[Slider, ...]:
    """The page's controls for an optimizer of the registry without hand-written ones: the
    learning rate, then one per hyperparameter of the class (``cls.hyperparameters``, in
    order), its kind and range read from the validator (:func:`optimlab._validation.
    constraint_of`) and its Keras-preset default (see :func:`_slider`)."""
    cls = optimizers.OPTIMIZERS[base]
    keras = presets.defaults(base, "keras")  # every hyperparameter has its default there
    out = [_LR]
    for name, validator in cls.hyperparameters.items():
        slider = _slider(name, constraint_of(validator), keras.get(name))
        if slider is not None:
            out.append(slider)
    return tuple(out)


class _Sliders(Mapping):
    """optimizer name -> its sliders: the hand-written ones (:data:`CHOSEN_SLIDERS`), else
    those :func:`derived_sliders` derives, for every elementwise optimizer of the registry,
    read when asked for (so that a new optimizer has sliders without a line here)."""

    def _names(self) -> list[str]:
        names = list(CHOSEN_SLIDERS)
        return names + [
            n for n in optimizers.OPTIMIZERS if n not in CHOSEN_SLIDERS and _elementwise(n)
        ]

    def __getitem__(self, base: str) -> tuple[Slider, ...]:
        if base in CHOSEN_SLIDERS:
            return CHOSEN_SLIDERS[base]
        if base in optimizers.OPTIMIZERS and _elementwise(base):
            return derived_sliders(base)
        raise KeyError(base)

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


#: the sliders per optimizer of optimlab.OPTIMIZERS (the lab names share their base's): the
#: hand-written ones where they exist, else derived from the class (:func:`derived_sliders`)
SLIDERS: Mapping[str, tuple[Slider, ...]] = _Sliders()


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule the page offers: its class, the argument the learning rate fills, the
    other arguments as sliders with their defaults, and its formula."""

    cls: type
    rate_argument: str
    arguments: tuple[tuple[Slider, object], ...]
    formula: str


def _steps(name: str, default: int) -> tuple[Slider, int]:
    return Slider(name, "int", 1, 5000, log=True), default


#: the schedules the page offers, by class name
SCHEDULES: dict[str, ScheduleInfo] = {
    "ExponentialDecay": ScheduleInfo(
        schedules.ExponentialDecay,
        "initial_learning_rate",
        (
            _steps("decay_steps", 100),
            (Slider("decay_rate", "float", 0.01, 1.0), 0.5),
            (Slider("staircase", "bool"), False),
        ),
        "lr(t) = lr * decay_rate^(t / decay_steps) (floor of the ratio with staircase)",
    ),
    "InverseTimeDecay": ScheduleInfo(
        schedules.InverseTimeDecay,
        "initial_learning_rate",
        (
            _steps("decay_steps", 100),
            (Slider("decay_rate", "float", 0.0, 10.0), 1.0),
            (Slider("staircase", "bool"), False),
        ),
        "lr(t) = lr / (1 + decay_rate * t / decay_steps)",
    ),
    "PolynomialDecay": ScheduleInfo(
        schedules.PolynomialDecay,
        "initial_learning_rate",
        (
            _steps("decay_steps", 200),
            (Slider("end_learning_rate", "float", 1e-7, 1.0, log=True), 0.0001),
            (Slider("power", "float", 0.1, 5.0), 1.0),
            (Slider("cycle", "bool"), False),
        ),
        "lr(t) = (lr - end) * (1 - min(t, decay_steps) / decay_steps)^power + end",
    ),
    "CosineDecay": ScheduleInfo(
        schedules.CosineDecay,
        "initial_learning_rate",
        (_steps("decay_steps", 200), (Slider("alpha", "float", 0.0, 1.0), 0.0)),
        "lr(t) = lr * ((1 - alpha) * (1 + cos(pi * min(t, decay_steps) / decay_steps)) / 2 "
        "+ alpha)",
    ),
    "CosineDecayRestarts": ScheduleInfo(
        schedules.CosineDecayRestarts,
        "initial_learning_rate",
        (
            _steps("first_decay_steps", 50),
            (Slider("t_mul", "float", 1.0, 4.0), 2.0),
            (Slider("m_mul", "float", 0.0, 1.0), 1.0),
            (Slider("alpha", "float", 0.0, 1.0), 0.0),
        ),
        "cosine decay restarted after first_decay_steps * t_mul^i steps, peaks scaled by m_mul^i",
    ),
    "StepLR": ScheduleInfo(
        schedules.StepLR,
        "learning_rate",
        (_steps("step_size", 100), (Slider("gamma", "float", 0.01, 1.0), 0.1)),
        "lr(k) = lr * gamma^floor(k / step_size)",
    ),
    "ExponentialLR": ScheduleInfo(
        schedules.ExponentialLR,
        "learning_rate",
        ((Slider("gamma", "float", 0.9, 1.0), 0.99),),
        "lr(k) = lr * gamma^k",
    ),
    "LinearLR": ScheduleInfo(
        schedules.LinearLR,
        "learning_rate",
        (
            (Slider("start_factor", "float", 0.01, 1.0), 1.0 / 3),
            (Slider("end_factor", "float", 0.0, 1.0), 1.0),
            _steps("total_iters", 50),
        ),
        "lr(k) = lr * (start_factor + (end_factor - start_factor) * min(k, total_iters) / "
        "total_iters)",
    ),
    "CosineAnnealingLR": ScheduleInfo(
        schedules.CosineAnnealingLR,
        "learning_rate",
        (_steps("T_max", 200), (Slider("eta_min", "float", 0.0, 1.0), 0.0)),
        "lr(k) = eta_min + (lr - eta_min) * (1 + cos(pi * k / T_max)) / 2",
    ),
    "OneCycleLR": ScheduleInfo(
        schedules.OneCycleLR,
        "max_lr",
        (
            (Slider("total_steps", "int", 2, 5000, log=True), 5000),
            (Slider("pct_start", "float", 0.01, 0.99), 0.3),
            (Slider("anneal_strategy", "choice", choices=("cos", "linear")), "cos"),
            (Slider("div_factor", "float", 1.0, 1000.0, log=True), 25.0),
            (Slider("final_div_factor", "float", 1.0, 1e5, log=True), 1e4),
            (Slider("three_phase", "bool"), False),
        ),
        "warm up from max_lr / div_factor to max_lr over pct_start of total_steps, then anneal "
        "to max_lr / (div_factor * final_div_factor)",
    ),
    "CyclicLR": ScheduleInfo(
        schedules.CyclicLR,
        "base_lr",
        (
            (Slider("max_lr", "float", 1e-5, 10.0, log=True), 0.1),
            _steps("step_size_up", 100),
            (
                Slider("mode", "choice", choices=tuple(schedules.CyclicLR.MODES)),
                "triangular",
            ),
            (Slider("gamma", "float", 0.9, 1.0), 1.0),
        ),
        "triangle waves between lr (base_lr) and max_lr, step_size_up steps up and as many down",
    ),
}


def _base(lab_name: str) -> tuple[str, dict]:
    """(optimlab optimizer, the lab name's fixed arguments), e.g. NAG -> SGD with momentum."""
    return contenders.CONTENDERS[lab_name]


def default_value(lab_name: str, key: str, preset: str):
    """The default of ``key`` for the lab optimizer ``lab_name`` under ``preset``: its fixed
    argument (Momentum's 0.9) or the preset's default; for optax's required learning rate,
    the Keras default."""
    base, fixed = _base(lab_name)
    if key in fixed:
        return fixed[key]
    value = presets.defaults(base, preset).get(key)
    if value is presets.REQUIRED:
        value = presets.defaults(base, "keras")[key]
    return value


def color(lab_name: str, index: int = 0) -> str:
    """The optimizer's fixed colour (:data:`optimlab.viz.style.OPTIMIZER_COLORS`)."""
    found = OPTIMIZER_COLORS.get(lab_name)
    return found if found else FALLBACK_COLORS[index % len(FALLBACK_COLORS)]


def optimizers_json() -> dict:
    """``GET /api/optimizers``: presets, optimizers (lab names, with their base optimizer,
    fixed arguments, colour and sliders with per-preset defaults) and schedules."""
    items = []
    for lab_name in lab_names():
        base, fixed = _base(lab_name)
        sliders = [
            s.to_json({p: default_value(lab_name, s.name, p) for p in presets.PRESETS})
            for s in SLIDERS[base]
        ]
        items.append(
            {
                "name": lab_name,
                "optimizer": base,
                "fixed": dict(fixed),
                "color": color(lab_name),
                "hyperparameters": sliders,
                "accepted": [
                    "learning_rate",
                    "weight_decay",
                    *optimizers.OPTIMIZERS[base].hyperparameters,
                ],
            }
        )
    scheds = [
        {
            "name": name,
            "rate_argument": info.rate_argument,
            "formula": info.formula,
            "arguments": [s.to_json(d) for s, d in info.arguments],
        }
        for name, info in SCHEDULES.items()
    ]
    return {
        "presets": list(presets.PRESETS),
        "default_preset": "keras",
        "optimizers": items,
        "schedules": scheds,
    }


def surface_json(surface) -> dict:
    """One surface as JSON (domain, minima, starts, default start, levels, tags)."""
    return {
        "name": surface.name,
        "title": surface.title,
        "formula": surface.formula,
        "description": surface.description,
        "domain": [list(surface.domain[0]), list(surface.domain[1])],
        "minima": [
            {"point": list(m.point), "value": m.value, "kind": m.kind} for m in surface.minima
        ],
        "starts": {k: list(v) for k, v in surface.starts.items()},
        "default_start": surface.default_start.tolist(),
        "log_levels": bool(surface.log_levels),
        "tags": sorted(surface.tags),
    }


def surfaces_json() -> dict:
    """``GET /api/surfaces``: every surface of :data:`optimlab.lab.surfaces.SURFACES`."""
    return {"surfaces": [surface_json(s) for s in surfaces.SURFACES.values()]}
