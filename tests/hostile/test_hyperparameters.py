"""Every hyperparameter of every optimizer and preset, at construction, through ``ol.get`` and
by assignment (before and after the build), against the value space of ``registry.HOSTILE``:
a refused value raises the type the oracle says, with a message that names the argument, shows
the value and states the range, and changes nothing; an accepted value is stored as the oracle
says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab.optimizer import IN_PARAMETER_DTYPE

from .registry import (
    CASES,
    COMBINATIONS,
    HOSTILE,
    LEARNING_RATE,
    NORMALIZED,
    POSITIVE_LEARNING_RATE,
    kind_under,
)
from .world import accepted, refuses, shown

PRESETS = st.sampled_from(["keras", "torch", "optax"])
IDS = [f"{cls.__name__}-{name}" for cls, name, _ in CASES]


def _says(name, value, kind):
    says = (name, shown(value))
    return says + (kind.range_text(),) if kind is not None else says


def _stored(name, value):
    key = (name, value)
    try:
        return NORMALIZED.get(key, value)
    except TypeError:
        return value


def _same(a, b) -> bool:
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


@pytest.mark.parametrize("cls,name,kind", CASES, ids=IDS)
@settings(max_examples=25)
@given(value=HOSTILE, preset=PRESETS)
def test_constructor_argument(cls, name, kind, value, preset):
    kind = kind_under(cls, name, kind, preset)
    kwargs = {"learning_rate": 0.01, "preset": preset, name: value}
    verdict, expected = (None, None) if kind is None else kind.verdict(value)
    if verdict == "refuse":
        refuses(lambda: cls(**kwargs), exc=expected, says=_says(name, value, kind))
        return
    try:
        opt = cls(**kwargs)
    except (TypeError, ValueError) as error:
        # an unknown validator, or a cross-argument check: a clear refusal all the same
        assert kind is None or (cls.__name__, name) in COMBINATIONS, error
        assert name in str(error)
        return
    if kind is not None:
        stored = getattr(opt, name)
        want = _stored(name, expected)
        if cls is ol.AdamW and name == "weight_decay":
            want = expected  # AdamW keeps its 0
        assert _same(stored, want) and type(stored) is type(want), (stored, want)
    # Newton-Schulz iterates the quintic s -> s (a + b s^2 + c s^4) on the singular values:
    # unless a + b + c stays near 1 (the defaults give 0.7) a singular value of 1 moves away
    # and grows like s^(5^k), in torch and Keras as here; so any other finite coefficient
    # may overflow (the refusals above still hold)
    coefficient = name in ("muon_a", "muon_b", "muon_c")
    _steps_finitely(opt, expected, overflows=coefficient or _powers_overflow(name))
    accepted()


def _powers_overflow(name) -> bool:
    """FTRL takes n^(-learning_rate_power) of the accumulator n: a power far from 0 (-1e3 of
    n = 0.35) underflows to 0 and the quadratic p is divided by with it, in Keras as here."""
    return name == "learning_rate_power"


def _steps_finitely(opt, value, p=None, overflows=False):
    """An accepted moderate value (no float beyond 1e10 or below 1e-10 but 0, no epsilon of
    0, where 0/0 is the math's own NaN) gives a finite step (of ``p``, default a fresh one)."""
    p = np.ones((1, 3)) if p is None else p  # a matrix: Muon's torch preset takes no other
    config = opt.get_config()
    for key, positive in IN_PARAMETER_DTYPE.items():  # a factor that is 0 in the update's dtype
        x = config.get(key)
        if positive and isinstance(x, float) and 0.0 < x < np.finfo(np.float64).tiny:
            refuses(
                lambda: opt.apply_gradients([(np.full(p.shape, 0.5), p)]),
                world=(opt, p),
                says=(key, "float64"),
            )
            return
    with np.errstate(all="ignore"):
        opt.apply_gradients([(np.full(p.shape, 0.5), p)])
    moderate = not isinstance(value, float) or value == 0.0 or 1e-10 <= abs(value) <= 1e10
    moderate = moderate and not overflows
    if moderate and opt.get_config().get("epsilon", 1.0) != 0.0:
        assert np.isfinite(p).all(), p


@pytest.mark.parametrize("cls,name,kind", CASES, ids=IDS)
@settings(max_examples=15)
@given(value=HOSTILE, build=st.booleans())
def test_assignment(cls, name, kind, value, build):
    """``opt.<name> = value`` after construction, on a fresh or a built optimizer: refused
    values change nothing; after the build, values that would change which state buffers exist
    may be refused too (with a ValueError naming the argument)."""
    kind = kind_under(cls, name, kind, "keras")
    opt = cls(learning_rate=0.01, momentum=0.5) if cls is ol.SGD else cls(learning_rate=0.01)
    p = np.ones(3)
    if build:
        opt.apply_gradients([(np.full(3, 0.5), p)])
    verdict, expected = (None, None) if kind is None else kind.verdict(value)
    if verdict == "refuse":
        refuses(
            lambda: setattr(opt, name, value),
            world=(opt, p),
            exc=expected,
            says=_says(name, value, kind),
        )
        return
    try:
        from .world import snapshot

        before = snapshot(opt, p)
        setattr(opt, name, value)
    except (TypeError, ValueError) as error:
        assert name in str(error)
        from .world import assert_same

        assert_same(before, snapshot(opt, p))
        return
    if kind is not None:
        want = expected if (cls is ol.AdamW and name == "weight_decay") else _stored(name, expected)
        assert _same(getattr(opt, name), want)
    # and the optimizer still steps (or names what it refuses)
    _steps_finitely(opt, expected, p, overflows=_powers_overflow(name))
    accepted()


@settings(max_examples=150)
@given(
    value=HOSTILE, cls=st.sampled_from(sorted(ol.OPTIMIZERS.values(), key=str)), via=st.booleans()
)
def test_learning_rate(value, cls, via):
    """The learning rate at construction and by assignment: a float >= 0, > 0 where the rule
    divides by it (Ftrl; schedules and callables are tested with the schedules)."""
    kind = POSITIVE_LEARNING_RATE if cls.learning_rate_positive else LEARNING_RATE
    verdict, expected = kind.verdict(value)
    opt = cls(learning_rate=0.5)
    if verdict == "refuse":
        call = (
            (lambda: setattr(opt, "learning_rate", value))
            if via
            else (lambda: cls(learning_rate=value))
        )
        says = ("learning_rate", shown(value), kind.range_text())
        refuses(call, world=(opt,), exc=expected, says=says)
        return
    if via:
        opt.learning_rate = value
    else:
        opt = cls(learning_rate=value)
    assert opt.learning_rate == expected and type(opt.learning_rate) is float
    accepted()


@settings(max_examples=60)
@given(value=HOSTILE)
def test_get_and_names(value):
    """``ol.get``'s name: a known name in any case, else a ValueError listing the names."""
    if isinstance(value, str) and value.lower() in {k.lower() for k in ol.OPTIMIZERS}:
        assert isinstance(ol.get(value), ol.Optimizer)
        accepted()
        return
    if value is None:
        assert ol.get(value) is None  # as keras.optimizers.get(None)
        return
    if isinstance(value, str):
        says = ("unknown optimizer", shown(value), "valid names", "Adam")
    else:  # Keras's words for an identifier of the wrong kind, then what is valid
        says = ("Could not interpret optimizer identifier", shown(value), "valid", "Adam")
    refuses(lambda: ol.get(value), exc=ValueError, says=says)


FOREIGN = [
    (ol.SGD, "beta_1"),
    (ol.SGD, "epsilon"),
    (ol.Adam, "momentum"),
    (ol.Adam, "lr"),
    (ol.RMSprop, "eps"),
    (ol.Lion, "betas"),
    (ol.Adagrad, "rho"),
]


@pytest.mark.parametrize("cls,name", FOREIGN, ids=[f"{c.__name__}.{n}" for c, n in FOREIGN])
def test_assigning_another_optimizers_hyperparameter_is_refused(cls, name):
    """``SGD().beta_1 = 0.5`` used to create an attribute that changed nothing."""
    opt = cls(learning_rate=0.01)
    refuses(lambda: setattr(opt, name, 0.5), world=(opt,), exc=TypeError, says=(name, cls.__name__))
    assert name not in vars(opt)


def test_user_attributes_still_work():
    opt = ol.Adam()
    opt.my_tag = "run 7"  # not a hyperparameter of any optimizer: a plain attribute
    assert opt.my_tag == "run 7"
    accepted()


COUNTERS = [
    ("iterations", -1),
    ("iterations", 1.5),
    ("iterations", True),
    ("iterations", "3"),
    ("iterations", 2**63),
    ("skipped_steps", -2),
    ("skipped_steps", None),
]


@pytest.mark.parametrize("name,value", COUNTERS)
def test_counters_are_validated_on_assignment(name, value):
    """``opt.iterations = -1`` made the next Adam step divide by zero (bias correction 1 -
    beta^0)."""
    opt = ol.Adam(0.1)
    p = np.ones(2)
    opt.apply_gradients([(np.ones(2), p)])
    refuses(
        lambda: setattr(opt, name, value),
        world=(opt, p),
        says=(name, "in [0, 2**63 - 1]", shown(value)),
    )


@settings(max_examples=40)
@given(
    name=st.sampled_from(["learning_rate", "epsilon", "weight_decay", "loss_scale_factor"]),
    value=st.floats(3.5e38, 1e308) | st.sampled_from([1e39, 1e300]),
    cls=st.sampled_from([ol.SGD, ol.Adam, ol.RMSprop, ol.Adagrad]),
    when=st.sampled_from(["first step", "build", "assignment"]),
)
def test_values_float32_cannot_hold_are_refused_for_float32_parameters(name, value, cls, when):
    """``learning_rate=1e300`` is finite, but Inf in float32: every float32 parameter became
    -Inf. Refused at the first step, the build, or an assignment after the build."""
    if name == "epsilon" and cls is ol.SGD:
        cls = ol.Adam
    if name == "weight_decay":
        kwargs = {"weight_decay": value}
    else:
        kwargs = {name: value}
    p = np.ones(4, np.float32)
    g = np.full(4, 0.25, np.float32)
    if when == "assignment":
        opt = cls(learning_rate=0.01)
        opt.apply_gradients([(g, p)])
        call = lambda: setattr(opt, name, value)  # noqa: E731
    else:
        opt = cls(**({"learning_rate": 0.01} | kwargs))
        call = (
            (lambda: opt.build([p])) if when == "build" else (lambda: opt.apply_gradients([(g, p)]))
        )
    refuses(call, world=(opt, p), exc=ValueError, says=(name, "float32", shown(value)))


@pytest.mark.parametrize(
    "name,value",
    [
        ("eta_plus", 1e39),
        ("max_step_size", 1e39),
        ("eta_minus", 1e-39),
        ("eta_minus", 1e-300),
        ("min_step_size", 1e-46),
    ],
)
@pytest.mark.parametrize("when", ["first step", "build"])
def test_rprop_factors_and_bounds_float32_cannot_hold_are_refused(name, value, when):
    """Rprop computes its step sizes in the parameters' dtype: a factor or bound that is Inf
    there, or a shrink factor or smallest step that is 0 there (a step size of 0 would never
    grow again), is refused for float32 parameters before anything changes."""
    opt = ol.Rprop(**{name: value})
    p = np.ones(4, np.float32)
    g = np.full(4, 0.25, np.float32)
    call = (lambda: opt.build([p])) if when == "build" else (lambda: opt.apply_gradients([(g, p)]))
    refuses(call, world=(opt, p), exc=ValueError, says=(name, "float32", shown(value)))
    q = np.ones(4)
    ol.Rprop(**{name: value}).apply_gradients([(np.full(4, 0.25), q)])  # float64 holds it
    assert np.isfinite(q).all()
    accepted()


@pytest.mark.parametrize("value", [1e-39, 1e-300, 5e-324])
def test_a_loss_scale_that_is_zero_in_float32_is_refused(value):
    opt = ol.SGD(loss_scale_factor=value)
    p = np.ones(3, np.float32)
    refuses(
        lambda: opt.apply_gradients([(np.ones(3, np.float32), p)]),
        world=(opt, p),
        exc=ValueError,
        says=("loss_scale_factor", "float32"),
    )
    if value >= np.finfo(np.float64).tiny:  # float64 holds it
        q = np.ones(3)
        ol.SGD(1e-300, loss_scale_factor=value).apply_gradients([(np.full(3, 1e-300), q)])
        assert np.isfinite(q).all()
        accepted()


def test_float64_parameters_take_what_float64_holds():
    p = np.ones(3)
    ol.SGD(learning_rate=1e300).apply_gradients([(np.full(3, 1e-300), p)])
    np.testing.assert_array_equal(p, 0.0)
    accepted()


def test_adamw_zero_weight_decay_round_trips():
    """AdamW(weight_decay=0) was accepted, then refused by its own get_config/from_config,
    load_state_dict and every later assignment (0 became None, which AdamW refuses)."""
    opt = ol.AdamW(weight_decay=0)
    p = [np.ones(3)]
    opt.apply([np.ones(3)], p)
    opt.beta_1 = 0.5
    again = ol.AdamW.from_config(opt.get_config())
    again.load_state_dict(opt.state_dict(), [np.ones(3)])
    assert again.weight_decay == 0.0
    q = [np.ones(3)]
    reference = ol.Adam(beta_1=0.9)
    reference.apply([np.ones(3)], q)
    np.testing.assert_array_equal(p[0], q[0])  # 0 is no weight decay at all
    accepted()
