"""Every schedule of optimlab.schedules: constructor arguments (the oracle below), calls with
hostile steps, values beyond the float range, state_dict/load_state_dict, serialize and
deserialize of crafted dicts, and an optimizer driven by a schedule or callable that returns
junk. Refusals name the argument and the value and change nothing."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import schedules as S

from .registry import HOSTILE, MAX_COUNT, Bool, Choice, Int, Real, is_real
from .world import accepted, refuses, shown

R0 = Real(0.0)
POS = Real(0.0, low_open=True)
UNIT = Real(0.0, 1.0)

#: class -> (valid keyword arguments, {argument: kind})
TABLE = {
    S.Constant: ({"learning_rate": 0.1}, {"learning_rate": R0}),
    S.ExponentialDecay: (
        {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
        {
            "initial_learning_rate": R0,
            "decay_steps": Int(1, None),
            "decay_rate": POS,
            "staircase": Bool(),
        },
    ),
    S.PolynomialDecay: (
        {"initial_learning_rate": 0.1, "decay_steps": 10},
        {
            "initial_learning_rate": R0,
            "decay_steps": Int(1, None, cap=MAX_COUNT),
            "end_learning_rate": R0,
            "power": POS,
            "cycle": Bool(),
        },
    ),
    S.InverseTimeDecay: (
        {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
        {
            "initial_learning_rate": R0,
            "decay_steps": Int(1, None),
            "decay_rate": R0,
            "staircase": Bool(),
        },
    ),
    S.CosineDecay: (
        {"initial_learning_rate": 0.1, "decay_steps": 10},
        {
            "initial_learning_rate": R0,
            "decay_steps": Int(1, None),
            "alpha": UNIT,
            "warmup_target": Real(0.0, optional=True),
            "warmup_steps": Int(0, None),
        },
    ),
    S.CosineDecayRestarts: (
        {"initial_learning_rate": 0.1, "first_decay_steps": 10},
        {
            "initial_learning_rate": R0,
            "first_decay_steps": Int(1, None),
            "t_mul": Real(1.0),
            "m_mul": R0,
            "alpha": UNIT,
        },
    ),
    S.StepLR: (
        {"learning_rate": 0.1, "step_size": 3},
        {"learning_rate": R0, "step_size": Int(1, None), "gamma": POS},
    ),
    S.MultiStepLR: (
        {"learning_rate": 0.1, "milestones": [2, 5]},
        {"learning_rate": R0, "gamma": POS},
    ),
    S.ExponentialLR: ({"learning_rate": 0.1, "gamma": 0.9}, {"learning_rate": R0, "gamma": POS}),
    S.LinearLR: (
        {"learning_rate": 0.1},
        {
            "learning_rate": R0,
            "start_factor": Real(0.0, 1.0, low_open=True),
            "end_factor": UNIT,
            "total_iters": Int(1, None),
        },
    ),
    S.CosineAnnealingLR: (
        {"learning_rate": 0.1, "T_max": 10},
        {"learning_rate": R0, "T_max": Int(1, None), "eta_min": R0},
    ),
    S.OneCycleLR: (
        {"max_lr": 0.1, "total_steps": 100},
        {
            "max_lr": R0,
            "total_steps": Int(2, None, cap=MAX_COUNT),
            "pct_start": Real(0.0, 1.0, low_open=True, high_open=True),
            "anneal_strategy": Choice(("cos", "linear")),
            "div_factor": POS,
            "final_div_factor": POS,
            "three_phase": Bool(),
        },
    ),
    S.CyclicLR: (
        {"base_lr": 0.01, "max_lr": 0.1},
        {
            "base_lr": R0,
            "step_size_up": Int(1, None, cap=MAX_COUNT),
            "step_size_down": Int(1, None, optional=True, cap=MAX_COUNT),
            "mode": Choice(("triangular", "triangular2", "exp_range")),
            "gamma": Real(0.0, 1.0, low_open=True),
        },
    ),
    S.ReduceLROnPlateau: (
        {"learning_rate": 0.1},
        {
            "learning_rate": R0,
            "mode": Choice(("min", "max")),
            "factor": Real(0.0, 1.0, high_open=True),
            "patience": Int(0, None),
            "threshold": Real(0.0, 1.0, high_open=True),
            "threshold_mode": Choice(("rel", "abs")),
            "cooldown": Int(0, None),
            "min_lr": R0,
            "eps": R0,
        },
    ),
    S.LinearWarmup: (
        {"schedule_or_lr": 0.1, "warmup_steps": 5},
        {"warmup_steps": Int(0, None), "start_factor": UNIT},
    ),
}
#: (class, argument): accepted on its own, but a cross-argument check may refuse it
COMBINATIONS = {
    (S.CosineDecay, "warmup_steps"),
    (S.OneCycleLR, "total_steps"),
    (S.OneCycleLR, "pct_start"),
    (S.OneCycleLR, "three_phase"),
    (S.CyclicLR, "base_lr"),
}

ARGS = [(cls, name, kind) for cls, (_, kinds) in TABLE.items() for name, kind in kinds.items()]


def test_the_table_knows_every_schedule():
    known = {cls.__name__ for cls in TABLE} | {"PiecewiseConstantDecay"}
    assert known == set(S.serialization._REGISTRY), "a new schedule: add it to TABLE"
    accepted()


@pytest.mark.parametrize("cls,name,kind", ARGS, ids=[f"{c.__name__}-{n}" for c, n, _ in ARGS])
@settings(max_examples=20)
@given(value=HOSTILE)
def test_constructor_argument(cls, name, kind, value):
    kwargs = dict(TABLE[cls][0], **{name: value})
    verdict, expected = kind.verdict(value)
    if verdict == "refuse":
        refuses(lambda: cls(**kwargs), exc=expected, says=(name, shown(value), kind.range_text()))
        return
    try:
        sched = cls(**kwargs)
    except ValueError as error:
        assert (cls, name) in COMBINATIONS, error
        return
    assert sched.get_config()[name] == expected or (
        expected is None and sched.get_config()[name] is None
    )
    accepted()


def _valid(kind):
    if isinstance(kind, Real):
        low = kind.low + (1e-300 if kind.low_open else 0.0)
        high = kind.high if kind.high is not None else 1e308
        values = st.floats(low, high, exclude_max=kind.high_open)
        return values if not kind.optional else st.none() | values
    if isinstance(kind, Int):
        return st.integers(kind.low, MAX_COUNT if kind.high is None else kind.high)
    if isinstance(kind, Bool):
        return st.booleans()
    return st.sampled_from(kind.choices)


STEPS = st.one_of(
    st.integers(0, 1000),
    st.integers(0, MAX_COUNT),
    st.sampled_from([0, 1, 2**53, 2**62, MAX_COUNT]),
)


@pytest.mark.parametrize("cls", list(TABLE), ids=lambda c: c.__name__)
@settings(max_examples=60)
@given(data=st.data(), step=STEPS)
def test_any_valid_schedule_at_any_valid_step(cls, data, step):
    """Valid arguments, any step in [0, 2**63 - 1]: a finite float >= 0, or a ValueError that
    says why (a value beyond the float range, a step past OneCycleLR's cycle); never an
    OverflowError, ZeroDivisionError or NaN."""
    base, kinds = TABLE[cls]
    kwargs = dict(base)
    for name, kind in kinds.items():
        if data.draw(st.booleans()):
            kwargs[name] = data.draw(_valid(kind), label=name)
    if cls is S.CyclicLR:
        kwargs["max_lr"] = kwargs["base_lr"] + data.draw(st.floats(0.0, 1.0))
    try:
        sched = cls(**kwargs)
    except ValueError:
        return  # a cross-argument refusal (tested above)
    try:
        lr = sched(step)
    except ValueError as error:
        assert "overflows" in str(error) or "past the end of the cycle" in str(error), error
        accepted()
        return
    assert isinstance(lr, float) and math.isfinite(lr) and lr >= 0.0, lr
    accepted()


def _step_verdict(step):
    if isinstance(step, bool | np.bool_) or not is_real(step):
        return TypeError
    value = step.item() if isinstance(step, np.ndarray) else step
    try:
        x = float(value)
    except OverflowError:
        return ValueError
    if not (math.isfinite(x) and x.is_integer()):
        return ValueError
    if not 0 <= int(value) <= MAX_COUNT:
        return ValueError
    return None


@settings(max_examples=300)
@given(step=HOSTILE, cls=st.sampled_from(list(TABLE)))
def test_hostile_steps(step, cls):
    sched = cls(**TABLE[cls][0])
    exc = _step_verdict(step)
    if exc is not None:
        refuses(
            lambda: sched(step),
            world=(sched,),
            exc=exc,
            says=("step must be an integer >= 0", shown(step)),
        )
        return
    try:
        value = sched(step)
    except ValueError as error:  # OneCycleLR past its cycle
        assert cls is S.OneCycleLR and "past the end" in str(error)
        return
    assert isinstance(value, float) and math.isfinite(value)
    accepted()


GROWTH = [
    S.ExponentialDecay(0.1, 1, 2.0),
    S.StepLR(0.1, 1, 3.0),
    S.ExponentialLR(0.1, 10.0),
    S.CosineDecayRestarts(0.1, 1, t_mul=1.0, m_mul=10.0),
]


@pytest.mark.parametrize("sched", GROWTH, ids=repr)
def test_a_value_beyond_the_float_range_is_a_value_error(sched):
    """``ExponentialDecay(0.1, 1, 2.0)(2000)``: 2.0 ** 2000 raised a bare OverflowError."""
    refuses(
        lambda: sched(5000),
        world=(sched,),
        exc=ValueError,
        says=(type(sched).__name__, "step 5000", "finite"),
    )
    opt = ol.SGD(learning_rate=sched)
    p = np.ones(2)
    opt.iterations = 5000
    refuses(
        lambda: opt.apply_gradients([(np.ones(2), p)]),
        world=(opt, p),
        exc=ValueError,
        says=("step 5000",),
    )


SEQUENCES = [
    (
        S.PiecewiseConstantDecay,
        dict(boundaries="12", values=[0.1, 0.2, 0.3]),
        TypeError,
        ["boundaries", "'12'"],
    ),
    (
        S.PiecewiseConstantDecay,
        dict(boundaries=[10, 5], values=[0.1, 0.2, 0.3]),
        ValueError,
        ["strictly increasing"],
    ),
    (
        S.PiecewiseConstantDecay,
        dict(boundaries=[1], values=[0.1, 10**400]),
        ValueError,
        ["values[1]", "e+400"],
    ),
    (
        S.PiecewiseConstantDecay,
        dict(boundaries=[1], values=[0.1]),
        ValueError,
        ["len(boundaries) + 1"],
    ),
    (
        S.PiecewiseConstantDecay,
        dict(boundaries={1: 2}, values=[0.1, 0.2]),
        TypeError,
        ["boundaries"],
    ),
    (S.MultiStepLR, dict(learning_rate=0.1, milestones=[5, 2]), ValueError, ["sorted"]),
    (
        S.MultiStepLR,
        dict(learning_rate=0.1, milestones=[1.5]),
        ValueError,
        ["milestones[0]", "1.5"],
    ),
    (S.MultiStepLR, dict(learning_rate=0.1, milestones=None), TypeError, ["milestones", "None"]),
    (
        S.LinearWarmup,
        dict(schedule_or_lr="0.1", warmup_steps=3),
        TypeError,
        ["schedule_or_lr", "'0.1'"],
    ),
    (
        S.LinearWarmup,
        dict(schedule_or_lr=10**400, warmup_steps=3),
        ValueError,
        ["schedule_or_lr", "e+400"],
    ),
    (
        S.LinearWarmup,
        dict(schedule_or_lr=S.Constant, warmup_steps=3),
        TypeError,
        ["schedule_or_lr"],
    ),
    (S.CyclicLR, dict(base_lr=0.5, max_lr=0.1), ValueError, ["max_lr", ">= 0.5"]),
    (
        S.CosineDecay,
        dict(initial_learning_rate=0.1, decay_steps=5, warmup_steps=3),
        ValueError,
        ["warmup_steps=3", "warmup_target"],
    ),
    (
        S.OneCycleLR,
        dict(max_lr=0.1, total_steps=3, pct_start=0.1),
        ValueError,
        ["pct_start * total_steps"],
    ),
]


@pytest.mark.parametrize(
    "cls,kwargs,exc,says",
    SEQUENCES,
    ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _, _ in SEQUENCES],
)
def test_structured_arguments(cls, kwargs, exc, says):
    refuses(lambda: cls(**kwargs), exc=exc, says=tuple(says))


# -- state -----------------------------------------------------------------------------------

PLATEAU_STATE = {
    "lr": 0.1,
    "best": 1.0,
    "num_bad_epochs": 2,
    "cooldown_counter": 0,
    "last_epoch": 3,
}


@pytest.mark.parametrize("key", sorted(PLATEAU_STATE))
@settings(max_examples=25)
@given(value=HOSTILE)
def test_plateau_state_fields(key, value):
    sched = S.ReduceLROnPlateau(0.5)
    for metric in (3.0, 2.0, 2.5):
        sched.step(metric)
    state = dict(PLATEAU_STATE, **{key: value})
    kinds = {
        "lr": Real(0.0),
        "num_bad_epochs": Int(0, None),
        "cooldown_counter": Int(0, None),
        "last_epoch": Int(0, None),
    }
    if key == "best":
        ok = value is None or (
            is_real(value)
            and not (isinstance(value, float | np.floating) and math.isnan(value))
            and not (isinstance(value, np.ndarray) and np.isnan(value))
        )
        verdict = "accept" if ok else "refuse"
    else:
        verdict, _ = kinds[key].verdict(value)
    if verdict == "refuse":
        refuses(lambda: sched.load_state_dict(state), world=(sched,), says=(key,))
        return
    sched.load_state_dict(state)
    assert math.isfinite(sched(0))
    accepted()


@pytest.mark.parametrize("state", [{"x": 1}, [], None, "lr", {"lr": 0.1}], ids=repr)
def test_malformed_states(state):
    stateless = S.ExponentialDecay(0.1, 10, 0.5)
    if state != {}:
        refuses(
            lambda: stateless.load_state_dict(state),
            world=(stateless,),
            exc=ValueError,
            says=("has no state",),
        )
    plateau = S.ReduceLROnPlateau(0.1)
    refuses(
        lambda: plateau.load_state_dict(state),
        world=(plateau,),
        exc=(ValueError, TypeError),
        says=("ReduceLROnPlateau state",),
    )


@settings(max_examples=100)
@given(metric=HOSTILE)
def test_plateau_metrics(metric):
    sched = S.ReduceLROnPlateau(0.5, patience=0)
    sched.step(1.0)
    if isinstance(metric, bool | str | bytes | np.bool_):
        refuses(lambda: sched.step(metric), world=(sched,), exc=TypeError, says=("metric",))
        return
    try:
        x = float(metric)
    except OverflowError:
        x = math.inf
    except (TypeError, ValueError):
        refuses(lambda: sched.step(metric), world=(sched,), exc=TypeError, says=("metric",))
        return
    if math.isnan(x):
        refuses(
            lambda: sched.step(metric),
            world=(sched,),
            exc=ValueError,
            says=("metric must not be NaN",),
        )
        return
    lr = sched.step(metric)
    assert math.isfinite(lr) and lr >= 0
    accepted()


# -- serialize / deserialize ----------------------------------------------------------------

CRAFTED = [
    ("not a dict", [1, 2], ValueError, ["class_name"]),
    ("no config", {"class_name": "Constant"}, ValueError, ["class_name"]),
    ("unknown class", {"class_name": "Nope", "config": {}}, ValueError, ["'Nope'", "valid names"]),
    ("class name a list", {"class_name": ["Constant"], "config": {}}, ValueError, ["['Constant']"]),
    (
        "config a list",
        {"class_name": "Constant", "config": [0.1]},
        TypeError,
        ["config must be a dict"],
    ),
    (
        "unknown key",
        {"class_name": "StepLR", "config": {"learning_rate": 0.1, "step_size": 2, "lr": 3}},
        ValueError,
        ["unknown config keys ['lr']"],
    ),
    (
        "non-string keys",
        {"class_name": "Constant", "config": {1: 2, "a": 3}},
        ValueError,
        ["unknown config keys", "1", "'a'"],
    ),
    (
        "missing argument",
        {"class_name": "StepLR", "config": {"learning_rate": 0.1}},
        TypeError,
        ["step_size"],
    ),
    (
        "huge value",
        {"class_name": "Constant", "config": {"learning_rate": 10**400}},
        ValueError,
        ["learning_rate", "e+400"],
    ),
    (
        "nan value",
        {"class_name": "Constant", "config": {"learning_rate": float("nan")}},
        ValueError,
        ["learning_rate", "nan"],
    ),
    (
        "bad nested",
        {
            "class_name": "LinearWarmup",
            "config": {"schedule_or_lr": {"class_name": "X", "config": {}}, "warmup_steps": 2},
        },
        ValueError,
        ["'X'"],
    ),
]


@pytest.mark.parametrize("label,config,exc,says", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_deserialize_crafted_dicts(label, config, exc, says):
    refuses(lambda: S.deserialize(config), exc=exc, says=tuple(says))


def test_deserialize_a_config_nested_thousands_deep():
    """A crafted LinearWarmup inside LinearWarmup ... 3000 deep raised a RecursionError."""
    config = {"class_name": "Constant", "config": {"learning_rate": 0.1}}
    for _ in range(3000):
        config = {
            "class_name": "LinearWarmup",
            "config": {"schedule_or_lr": config, "warmup_steps": 1},
        }
    refuses(lambda: S.deserialize(config), exc=ValueError, says=("nested too deeply",))


@pytest.mark.parametrize("cls", list(TABLE), ids=lambda c: c.__name__)
@settings(max_examples=10)
@given(data=st.data())
def test_every_config_value_replaced_by_hostile_values(cls, data):
    sched = cls(**TABLE[cls][0])
    config = S.serialize(sched)
    name = data.draw(st.sampled_from(sorted(config["config"])))
    kind = TABLE[cls][1].get(name)
    value = data.draw(HOSTILE)
    crafted = {
        "class_name": config["class_name"],
        "config": dict(config["config"], **{name: value}),
    }
    verdict = kind.verdict(value)[0] if kind is not None else None
    if verdict == "refuse":
        refuses(lambda: S.deserialize(crafted), says=(name, shown(value)))
        return
    try:
        S.deserialize(crafted)
    except (TypeError, ValueError) as error:
        assert name in str(error) or kind is None or (cls, name) in COMBINATIONS, error
        return
    accepted()


# -- an optimizer driven by a schedule or callable ------------------------------------------


@settings(max_examples=150)
@given(value=HOSTILE, dtype=st.sampled_from([np.float32, np.float64]))
def test_a_callable_learning_rate_that_returns_junk(value, dtype):
    """The value a callable returns at each step: a finite float >= 0 that the parameters'
    dtype holds; anything else refuses the step and changes nothing (a huge int raised a bare
    OverflowError, a string '0.5' was accepted)."""
    opt = ol.SGD(learning_rate=lambda step: value)
    p = np.ones(3, dtype)
    verdict, expected = Real(0.0).verdict(value)
    if verdict == "accept" and expected > float(np.finfo(dtype).max):
        verdict, expected = "refuse", ValueError
    if verdict == "refuse":
        refuses(
            lambda: opt.apply_gradients([(np.ones(3, dtype), p)]),
            world=(opt, p),
            exc=expected,
            says=("learning rate schedule", "at step 0", "finite float >= 0"),
        )
        assert not opt.built
        return
    with np.errstate(over="ignore"):
        opt.apply_gradients([(np.ones(3, dtype), p)])
    assert opt.iterations == 1
    accepted()


def test_state_dict_of_a_warmup_around_a_callable():
    """``state_dict()`` raised TypeError for ``LinearWarmup(lambda step: ...)``; it holds
    the schedule object in memory (saving it to a file still refuses it)."""
    opt = ol.SGD(learning_rate=S.LinearWarmup(lambda step: 0.1, 3))
    p = [np.ones(2)]
    opt.apply([np.ones(2)], p)
    state = opt.state_dict()
    again = ol.SGD()
    again.load_state_dict(state, [p[0].copy()])
    assert again.learning_rate == opt.learning_rate
    assert again._learning_rate is not opt._learning_rate  # a copy, not shared
    accepted()


def test_signature_of_every_schedule_is_in_the_table():
    for cls, (_, kinds) in TABLE.items():
        names = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name")]
        untested = [n for n in names if n not in kinds and n not in TABLE[cls][0]]
        assert not untested or cls in (S.CyclicLR, S.LinearWarmup, S.MultiStepLR), (cls, untested)
    accepted()
