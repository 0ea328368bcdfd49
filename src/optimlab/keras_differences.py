"""The measured differences of optimlab's Keras dialect from Keras 3 itself (part of
``optimlab differences``): its schedules in float32, and the API calls that behave otherwise
on NumPy arrays. Keras is not imported here; ``tests/keras_suite/test_keras_differences.py``
runs Keras beside every number and every "Keras" cell of these tables.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import optimizers as opts
from . import schedules, wrappers

__all__ = [
    "keras_float32_cosine_decay",
    "float32_schedules",
    "ApiRow",
    "API_ROWS",
    "api_table",
    "FLOAT32_EXAMPLE",
    "FLOAT32_STEPS",
]

_F = np.float32


def _cos32(x: np.float32) -> np.float32:
    """cos of a float32, rounded to float32 (computed in double precision first)."""
    return _F(math.cos(float(x)))


def keras_float32_cosine_decay(schedule: schedules.CosineDecay, step: int) -> float:
    """Keras 3's ``CosineDecay.__call__`` in its default configuration: every operation in
    float32 (its floatx), in Keras's order::

        warmup:  (warmup_target - initial) * (step / warmup_steps) + initial
        decay:   peak * ((1 - alpha) * (0.5 * (1 + cos(pi * (s / decay_steps)))) + alpha)

    with ``s = min(step, decay_steps + warmup_steps) - warmup_steps``. Each +, -, *, / is IEEE
    float32; the cosine is correctly rounded to float32 (Keras's backends' float32 cos may differ
    from it in the last bit).
    """
    s = schedule
    step = _F(step)
    decay_steps = _F(s.decay_steps)
    initial = _F(s.initial_learning_rate)

    def decay(t, peak):
        cosine = _F(0.5) * (_F(1.0) + _cos32(_F(math.pi) * (t / decay_steps)))
        return peak * (_F(1 - s.alpha) * cosine + _F(s.alpha))

    if s.warmup_target is None:
        return float(decay(min(step, decay_steps), initial))
    target, warmup = _F(s.warmup_target), _F(s.warmup_steps)
    step = min(step, decay_steps + warmup)
    if step < warmup:
        return float((target - initial) * (step / warmup) + initial)
    return float(decay(step - warmup, target))


#: the README's schedule (its Adam example): warmup to 1e-2 in 100 steps, cosine to 0 in 900
FLOAT32_EXAMPLE = schedules.CosineDecay(0.0, 900, warmup_target=1e-2, warmup_steps=100)
FLOAT32_STEPS = (50, 500, 900, 990, 999)


def _sgd_path(learning_rate, steps: int) -> list[float]:
    """float32 SGD from p = 1 with g = 1: p after each update."""
    opt = opts.SGD(learning_rate=learning_rate, name="sgd")
    p, g = np.ones(1, np.float32), np.ones(1, np.float32)
    path = []
    for _ in range(steps):
        opt.apply_gradients([(g, p)])
        path.append(float(p[0]))
    return path


def float32_schedules():
    """optimlab's float64 CosineDecay against Keras's float32 one, and what it does to a
    float32 SGD run."""
    sched = FLOAT32_EXAMPLE
    ours = [sched(k) for k in FLOAT32_STEPS]
    keras = [keras_float32_cosine_decay(sched, k) for k in FLOAT32_STEPS]
    n = FLOAT32_STEPS[-1] + 1
    path_ours = _sgd_path(sched, n)
    path_keras = _sgd_path(lambda step: keras_float32_cosine_decay(sched, step), n)
    p_ours = [path_ours[k] for k in FLOAT32_STEPS]
    p_keras = [path_keras[k] for k in FLOAT32_STEPS]
    worst = np.maximum.accumulate(np.abs(np.subtract(path_ours, path_keras)))

    def rel(a, b):
        return [f"{abs(x / y - 1):.1e}" if y else "0" for x, y in zip(a, b, strict=True)]

    return [
        "CosineDecay(0, 900, warmup_target=1e-2, warmup_steps=100)",
        *(f"step {k}" for k in FLOAT32_STEPS),
    ], [
        ["lr, optimlab (float64, every preset)", *(f"{x:.9g}" for x in ours)],
        ["lr, Keras (float32)", *(f"{x:.9g}" for x in keras)],
        ["relative difference", *rel(keras, ours)],
        ["float32 SGD, g = 1: p, optimlab", *(f"{x:.9g}" for x in p_ours)],
        ["p, with Keras's float32 lr", *(f"{x:.9g}" for x in p_keras)],
        ["largest abs difference of p so far", *(f"{worst[k]:.1e}" for k in FLOAT32_STEPS)],
    ]


# -- the API on NumPy arrays -------------------------------------------------------------------


@dataclass(frozen=True)
class ApiRow:
    """One call that optimlab (preset="keras") answers otherwise than Keras 3.15.

    ``keras`` is what Keras does (checked against Keras by the tests), ``optimlab`` a
    function that makes the call here and returns what happens, in the same words, ``why``
    the reason. ``topic`` names the row for the Keras test suite's registry."""

    topic: str
    call: str
    keras: str
    optimlab: Callable[[], str]
    why: str


def outcome(fn: Callable[[], object]) -> str:
    """``"accepted"``, the value (``repr``) a call returns, or the exception type it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = fn()
        except Exception as error:  # noqa: BLE001 - the outcome is the point
            return type(error).__name__
    kinds = (opts.Optimizer, schedules.LearningRateSchedule, *wrappers.WRAPPERS.values())
    accepted = value is None or isinstance(value, kinds)
    return "accepted" if accepted else repr(value)


def _all_none_then_built():
    opt = opts.SGD(learning_rate=1.0)
    try:
        opt.apply_gradients([(None, np.zeros(2))])
    except ValueError:
        pass
    return opt.built


def _gradient_of_another_dtype():
    p = np.zeros(2, np.float32)
    opts.SGD(learning_rate=1.0).apply_gradients([(np.ones(2, np.float64), p)])


def _exclude_by_name():
    opts.SGD(weight_decay=0.1).exclude_from_weight_decay(var_names=["bias"])


def _key_not_a_regex():
    table = wrappers.OptimizerMap(opts.SGD())
    table["dense/("] = opts.Adam()


def _built_twice():
    multi = wrappers.MultiOptimizer(wrappers.OptimizerMap(opts.SGD()))
    multi.build([np.zeros(2)])
    multi.build([np.zeros(3)])


def _message_of(fn):
    try:
        fn()
    except ValueError as error:
        return str(error)


API_ROWS = [
    ApiRow(
        "negative step",
        "PiecewiseConstantDecay([10], [1.0, 0.5])(-999)",
        "1.0",
        lambda: outcome(lambda: schedules.PiecewiseConstantDecay([10], [1.0, 0.5])(-999)),
        "a step is a count of updates; Keras extrapolates below 0",
    ),
    ApiRow(
        "build before raising",
        "SGD().apply_gradients([(None, v)]); then .built",
        "True",
        lambda: outcome(_all_none_then_built),
        "Keras builds the optimizer, then raises 'No gradients provided for any variable.'; "
        "optimlab raises the same error and changes nothing",
    ),
    ApiRow(
        "gradient dtype",
        "a float64 gradient for a float32 variable",
        "accepted",
        lambda: outcome(_gradient_of_another_dtype),
        "Keras casts the gradient to the variable's dtype; optimlab asks for the cast",
    ),
    ApiRow(
        "exclude by name",
        'exclude_from_weight_decay(var_names=["bias"])',
        "accepted",
        lambda: outcome(_exclude_by_name),
        "NumPy arrays have no names: var_list=[arrays], or a Params group weight_decay=0",
    ),
    ApiRow(
        "wrapper: key not a regex",
        'OptimizerMap(SGD())["dense/("] = Adam()',
        "accepted",
        lambda: outcome(_key_not_a_regex),
        "Keras then fails at the lookup of any other name (re.error); optimlab checks each key "
        "when it is set",
    ),
    ApiRow(
        "wrapper: no default",
        "OptimizerMap(default_optimizer=None)",
        "TypeError",
        lambda: outcome(lambda: wrappers.OptimizerMap(None)),
        "optimlab lets a map have no default: a name that no key matches is refused at the "
        "build, naming it",
    ),
    ApiRow(
        "wrapper: an optimizer as the map",
        "MultiOptimizer(SGD()).build([v])",
        "TypeError",
        lambda: outcome(lambda: wrappers.MultiOptimizer(opts.SGD()).build([np.zeros(2)])),
        "optimlab reads one optimizer as the map of every parameter to it",
    ),
    ApiRow(
        "wrapper: nested loss scale",
        "LossScaleOptimizer(LossScaleOptimizer(SGD()))",
        "accepted",
        lambda: outcome(
            lambda: wrappers.LossScaleOptimizer(wrappers.LossScaleOptimizer(opts.SGD()))
        ),
        "the inner one would check and unscale the gradients a second time",
    ),
    ApiRow(
        "wrapper: built twice",
        "a MultiOptimizer's build(vs), then build(others)",
        "accepted",
        lambda: outcome(_built_twice),
        "Keras ignores the second build and its variables; optimlab refuses it, as it refuses "
        "a second build of any optimizer",
    ),
    ApiRow(
        "error messages",
        "SGD(momentum=2.0): the message",
        "`momentum` must be a float between [0, 1].",
        lambda: _message_of(lambda: opts.SGD(momentum=2.0)),
        "one message shape for every refusal: the argument, its value, the valid range",
    ),
    ApiRow(
        "range: beta",
        "Adam(beta_1=1.5)",
        "accepted",
        lambda: outcome(lambda: opts.Adam(beta_1=1.5)),
        "Keras checks no Adam argument; optimlab checks each one up front",
    ),
    ApiRow(
        "range: epsilon",
        "Adam(epsilon=-1.0)",
        "accepted",
        lambda: outcome(lambda: opts.Adam(epsilon=-1.0)),
        "Keras checks no Adam argument; optimlab checks each one up front",
    ),
    ApiRow(
        "range: learning rate",
        "SGD(learning_rate=-0.1)",
        "accepted",
        lambda: outcome(lambda: opts.SGD(learning_rate=-0.1)),
        "a negative learning rate ascends",
    ),
    ApiRow(
        "range: momentum 1",
        "SGD(momentum=1.0)",
        "accepted",
        lambda: outcome(lambda: opts.SGD(momentum=1.0)),
        "momentum 1 never forgets a gradient: optimlab takes [0, 1)",
    ),
    ApiRow(
        "range: clipnorm",
        "SGD(clipnorm=-1.0)",
        "accepted",
        lambda: outcome(lambda: opts.SGD(clipnorm=-1.0)),
        "Keras then silently does not clip",
    ),
    ApiRow(
        "range: weight decay",
        "SGD(weight_decay=-1.0)",
        "accepted",
        lambda: outcome(lambda: opts.SGD(weight_decay=-1.0)),
        "a negative decay grows the weights",
    ),
    ApiRow(
        "range: Ftrl beta",
        "Ftrl(beta=-1.0)",
        "accepted",
        lambda: outcome(lambda: opts.Ftrl(beta=-1.0)),
        "Keras checks no beta: a negative one can make FTRL's quadratic 0 (the parameter "
        "Inf) or negative",
    ),
    ApiRow(
        "range: Ftrl learning rate 0",
        "Ftrl(learning_rate=0.0)",
        "accepted",
        lambda: outcome(lambda: opts.Ftrl(learning_rate=0.0)),
        "FTRL divides by the learning rate: Keras's parameters turn NaN at the first step",
    ),
    ApiRow(
        "integer learning rate",
        "SGD(learning_rate=1)",
        "ValueError",
        lambda: outcome(lambda: opts.SGD(learning_rate=1)),
        "optimlab takes integers where floats are meant",
    ),
    ApiRow(
        "integer momentum",
        "SGD(momentum=0)",
        "ValueError",
        lambda: outcome(lambda: opts.SGD(momentum=0)),
        "optimlab takes integers where floats are meant",
    ),
    ApiRow(
        "accumulation of 1",
        "SGD(gradient_accumulation_steps=1)",
        "ValueError",
        lambda: outcome(lambda: opts.SGD(gradient_accumulation_steps=1)),
        "optimlab takes 1 as no accumulation",
    ),
    ApiRow(
        "restarts t_mul < 1",
        "CosineDecayRestarts(1.0, 10, t_mul=0.5)",
        "accepted",
        lambda: outcome(lambda: schedules.CosineDecayRestarts(1.0, 10, t_mul=0.5)),
        "Keras returns NaN once the periods (which sum to 20 steps) run out",
    ),
    ApiRow(
        "warmup without target",
        "CosineDecay(0.1, 10, warmup_steps=5)",
        "accepted",
        lambda: outcome(lambda: schedules.CosineDecay(0.1, 10, warmup_steps=5)),
        "Keras silently skips the warmup",
    ),
]


def api_table():
    """Every :data:`API_ROWS` call, as Keras answers it and as optimlab does."""
    return ["call", "Keras 3.15", "optimlab (preset='keras')", "why"], [
        [row.call, row.keras, row.optimlab(), row.why] for row in API_ROWS
    ]
