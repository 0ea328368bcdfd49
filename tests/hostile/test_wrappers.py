"""The wrappers against hostile input: LossScaleOptimizer's scale and growth, OptimizerMap's
keys and values, MultiOptimizer's names, routing and calls, and both wrappers' weights and
states. Each refusal names the argument and its value and leaves the world (the wrapper, the
optimizers inside, the parameters, the name counters) exactly as it was; a call that one
sub-optimizer would refuse changes none of the others."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings

import optimlab as ol
from optimlab import naming

from .registry import HOSTILE, Int, Real
from .world import accepted, refuses, shown

SCALE = Real(0.0, low_open=True)
GROWTH = Int(1)


def _next_name():
    """The name the next LossScaleOptimizer would get, without taking it."""
    return naming._COUNTS["loss_scale_optimizer"]


@settings(max_examples=25)
@given(value=HOSTILE)
def test_initial_scale(value):
    inner = ol.SGD(0.1, loss_scale_factor=2.0)
    verdict, expected = SCALE.verdict(value)
    with np.errstate(over="ignore"):
        in_float32 = verdict == "accept" and 0 < np.float32(expected) < np.inf
    if verdict == "accept" and not in_float32:
        verdict, expected = "refuse", ValueError  # float32 holds it as 0 or Inf
    if verdict == "refuse":
        count = _next_name()
        refuses(
            lambda: ol.LossScaleOptimizer(inner, initial_scale=value),
            world=(inner,),
            exc=expected,
            says=("initial_scale", shown(value)),
        )
        assert _next_name() == count  # a refused call uses no name
        return
    lso = ol.LossScaleOptimizer(inner, initial_scale=value)
    assert lso.initial_scale == expected and lso.scale_loss(1.0) == expected
    assert inner.loss_scale_factor is None
    accepted()


@settings(max_examples=25)
@given(value=HOSTILE)
def test_dynamic_growth_steps(value):
    inner = ol.Adam()
    verdict, expected = GROWTH.verdict(value)
    if verdict == "refuse":
        refuses(
            lambda: ol.LossScaleOptimizer(inner, dynamic_growth_steps=value),
            world=(inner,),
            exc=expected,
            says=("dynamic_growth_steps", shown(value), GROWTH.range_text()),
        )
        return
    assert ol.LossScaleOptimizer(inner, dynamic_growth_steps=value).dynamic_growth_steps == expected
    accepted()


@pytest.mark.parametrize(
    "inner,says",
    [
        (None, "inner_optimizer must be an optimlab optimizer"),
        ("adam", "inner_optimizer must be an optimlab optimizer"),
        (ol.LossScaleOptimizer(ol.SGD()), "cannot be a LossScaleOptimizer"),
    ],
)
def test_inner_optimizer_is_an_optimizer(inner, says):
    refuses(lambda: ol.LossScaleOptimizer(inner), exc=TypeError, says=(says,))


def _lso():
    p = [np.ones((2, 2)), np.ones(3)]
    lso = ol.LossScaleOptimizer(ol.Adam(0.1), initial_scale=8.0, dynamic_growth_steps=3)
    lso.apply([np.full((2, 2), 8.0), np.full(3, 8.0)], p)
    return lso, p


@pytest.mark.parametrize(
    "grads,exc,says",
    [
        # a wrong gradient beside an Inf: refused, not a skipped step that halves the scale
        ([np.full((2, 2), np.inf), np.ones(4)], ValueError, ("gradient 1", "shape")),
        ([np.full((2, 2), np.inf), np.ones(3, np.float32)], TypeError, ("gradient 1", "float32")),
        ([np.full((2, 2), np.inf)], ValueError, ("1 gradients for 2 parameters",)),
        ([np.full((2, 2), np.inf), "x"], TypeError, ("gradient 1",)),
    ],
)
def test_a_refused_step_does_not_move_the_scale(grads, exc, says):
    lso, p = _lso()
    refuses(lambda: lso.apply(grads, p), world=(lso, p), exc=exc, says=says)


def test_a_schedule_that_fails_leaves_the_scale():
    lso, p = _lso()
    lso.learning_rate = lambda step: -1.0 if step >= 1 else 0.1
    refuses(
        lambda: lso.apply([np.ones((2, 2)), np.ones(3)], p),
        world=(lso, p),
        exc=ValueError,
        says=("learning rate schedule", "-1.0"),
    )


def test_names_go_with_a_multi_optimizer():
    lso, p = _lso()
    refuses(
        lambda: lso.apply([np.ones((2, 2)), np.ones(3)], p, names=["a", "b"]),
        world=(lso, p),
        exc=TypeError,
        says=("names go with a MultiOptimizer",),
    )


@pytest.mark.parametrize(
    "index,value,says",
    [
        (2, np.array(3), "step_counter"),  # >= dynamic_growth_steps
        (2, np.array(-1), "step_counter"),
        (3, np.array(0.0, np.float32), "dynamic_scale"),
        (3, np.array(np.inf, np.float32), "dynamic_scale"),
        (3, np.array(1e39), "dynamic_scale"),
        (3, np.ones(2), "dynamic_scale"),
        (0, np.array(-1), "iteration"),
        (5, np.ones(7), "shape"),  # the inner optimizer's part: checked before anything moves
    ],
)
def test_loss_scale_set_weights(index, value, says):
    lso, p = _lso()
    weights = lso.variables
    weights[index] = value
    refuses(lambda: lso.set_weights(weights), world=(lso, p), says=(says,))
    refuses(lambda: lso.set_weights(weights[:3]), world=(lso, p), says=("4 arrays",))


@pytest.mark.parametrize(
    "field,value,says",
    [
        ("dynamic_scale", -2.0, "dynamic_scale"),
        ("dynamic_scale", float("nan"), "dynamic_scale"),
        ("step_counter", 99, "step_counter"),
        ("built", 1, "built"),
        ("optimizer", "MultiOptimizer", "cannot load into LossScaleOptimizer"),
        ("config", {"name": "x"}, "initial_scale"),
        ("placeholders", [0], "placeholders"),
        ("inner", {"optimizer": "Adam"}, "keys"),
    ],
)
def test_loss_scale_load_state_dict(field, value, says):
    lso, p = _lso()
    state = copy.deepcopy(lso.state_dict())
    state[field] = value
    refuses(lambda: lso.load_state_dict(state), world=(lso, p), says=(says,))


# ---------------------------------------------------------------------------------------------
# OptimizerMap
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,value,exc,says",
    [
        ("dense/(", "sgd", ValueError, ("'dense/('", "not a regular expression")),
        ("[a-", "sgd", ValueError, ("'[a-'", "not a regular expression")),
        (3, "sgd", ValueError, ("key must be a string", "3")),
        ("x", None, ValueError, ("optimizer must be a Keras Optimizer instance", "None")),
        ("x", "lso", ValueError, ("optimizer cannot be LossScaleOptimizer.",)),
        ("x", "multi", ValueError, ("optimizer cannot be MultiOptimizer.",)),
        ("enc/.*", "sgd", ValueError, ("'enc/.*' already exists",)),
    ],
)
def test_optimizer_map_keys_and_values(key, value, exc, says):
    default = ol.Adam()
    table = ol.OptimizerMap(default, {"enc/.*": ol.RMSprop()})
    value = {
        "sgd": ol.SGD(),
        "lso": ol.LossScaleOptimizer(ol.SGD()),
        "multi": ol.MultiOptimizer(ol.SGD()),
        None: None,
    }[value]
    refuses(lambda: table.__setitem__(key, value), world=(table, default), exc=exc, says=says)
    if key != "enc/.*":  # (a dict has no duplicate keys)
        refuses(
            lambda: ol.OptimizerMap(default, {key: value}), world=(default,), exc=exc, says=says
        )


def test_optimizer_map_arguments():
    refuses(lambda: ol.OptimizerMap("adam"), exc=TypeError, says=("default_optimizer", "'adam'"))
    refuses(
        lambda: ol.OptimizerMap(ol.SGD(), [("a", ol.SGD())]),
        exc=TypeError,
        says=("optimizer_map must be a dictionary",),
    )
    refuses(lambda: ol.OptimizerMap(ol.SGD())[3], exc=TypeError, says=("a name", "3"))
    refuses(lambda: ol.OptimizerMap(ol.SGD())("x"), exc=TypeError, says=("has a path", "'x'"))


# ---------------------------------------------------------------------------------------------
# MultiOptimizer
# ---------------------------------------------------------------------------------------------


def _world():
    sgd, adam, default = ol.SGD(0.1, momentum=0.5), ol.Adam(0.01), ol.RMSprop(0.01)
    multi = ol.MultiOptimizer(ol.OptimizerMap(default, {".*kernel": sgd, "head/.*": adam}))
    params = {"enc/kernel": np.ones((2, 3)), "enc/bias": np.zeros(3), "head/bias": np.zeros(2)}
    return multi, params


@pytest.mark.parametrize(
    "table,says",
    [
        ({"enc/.*": "a"}, ("'dec/bias' matches no key", "no default_optimizer")),
        ({".*": "a", ".*bias": "b"}, ("Multiple optimizers assigned to variable", "'.*bias'")),
    ],
)
def test_every_parameter_has_exactly_one_optimizer(table, says):
    a, b = ol.SGD(), ol.Adam()
    subs = {"a": a, "b": b}
    multi = ol.MultiOptimizer(ol.OptimizerMap(None, {k: subs[v] for k, v in table.items()}))
    params = {"enc/kernel": np.ones((2, 2)), "dec/bias": np.ones(2)}
    world = (multi, a, b, list(params.values()))
    refuses(lambda: multi.build(params), world=world, exc=ValueError, says=says)
    refuses(
        lambda: multi.apply_gradients(
            [(np.ones_like(p), p) for p in params.values()], names=list(params)
        ),
        world=world,
        exc=ValueError,
        says=says,
    )
    assert not multi.built and not a.built and not b.built


@pytest.mark.parametrize(
    "names,exc,says",
    [
        (["a", "a", "b"], ValueError, ("both named 'a'",)),
        (["a", "b"], ValueError, ("names has 2 entries for 3 parameters",)),
        (["a", 2, "b"], TypeError, ("name of parameter 1", "2")),
        ("abc", TypeError, ("names", "'abc'")),
    ],
)
def test_names(names, exc, says):
    multi, params = _world()
    arrays = list(params.values())
    refuses(lambda: multi.build(arrays, names=names), world=(multi, arrays), exc=exc, says=says)


def test_a_call_that_one_optimizer_refuses_changes_none():
    """The first sub-optimizer could step, the second refuses its gradient: neither moves."""
    multi, params = _world()
    arrays = list(params.values())
    multi.build(params)
    multi.apply([np.ones_like(p) for p in arrays])
    good = [np.ones_like(p) for p in arrays]
    subs = multi.optimizers
    world = (multi, *subs, arrays)
    bad_dtype = [good[0], good[1], np.ones(2, np.float32)]
    refuses(lambda: multi.apply(bad_dtype), world=world, exc=TypeError, says=("float32",))
    non_finite = [good[0], good[1], np.array([1.0, np.nan])]
    refuses(lambda: multi.apply(non_finite), world=world, exc=FloatingPointError, says=("NaN",))
    refuses(
        lambda: multi.apply(good[:2], arrays[:2]),
        world=world,
        exc=ValueError,
        says=("Gradients must match trainable variables one-to-one",),
    )
    stranger = [good[0], good[1], np.zeros(2)]
    refuses(
        lambda: multi.apply(good, [arrays[0], arrays[1], stranger[2]]),
        world=world,
        exc=ValueError,
        says=("not one of the 3 parameters",),
    )
    refuses(
        lambda: multi.apply(good, arrays, names=["x", "y", "z"]),
        world=world,
        exc=ValueError,
        says=("are not the names",),
    )


def test_a_built_sub_optimizer_is_refused():
    multi, params = _world()
    sgd = multi.optimizers[0]
    sgd.build([np.ones(4)])
    world = (multi, *multi.optimizers, list(params.values()))
    refuses(lambda: multi.build(params), world=world, exc=ValueError, says=("already built",))


def test_selector_results():
    params = {"w": np.ones(2)}
    for result, says in [
        (None, "is not an Optimizer instance"),
        ("adam", "is not an Optimizer instance"),
        (ol.LossScaleOptimizer(ol.SGD()), "LossScaleOptimizer cannot be used inside"),
        (ol.MultiOptimizer(ol.SGD()), "MultiOptimizer cannot be used inside"),
    ]:
        multi = ol.MultiOptimizer(lambda v, r=result: r)
        refuses(lambda m=multi: m.build(params), world=(multi,), exc=ValueError, says=(says,))


def test_multi_optimizer_arguments():
    refuses(lambda: ol.MultiOptimizer("adam"), exc=TypeError, says=("optimizer_map", "'adam'"))
    refuses(
        lambda: ol.MultiOptimizer(ol.LossScaleOptimizer(ol.SGD())),
        exc=ValueError,
        says=("LossScaleOptimizer cannot be used inside",),
    )
    sgd = ol.SGD(loss_scale_factor=3.0)
    refuses(
        lambda: ol.MultiOptimizer(ol.OptimizerMap(sgd), loss_scale_factor=-1.0),
        world=(sgd,),
        exc=ValueError,
        says=("loss_scale_factor", "-1.0"),
    )
    multi, params = _world()
    multi.build(params)
    world = (multi, *multi.optimizers)
    refuses(lambda: setattr(multi, "loss_scale_factor", 0.0), world=world, says=("loss_scale",))
    for action in (lambda: multi.learning_rate, lambda: setattr(multi, "learning_rate", 0.1)):
        refuses(action, world=world, exc=AttributeError, says=("sub-optimizers",))


def _trained_multi():
    multi, params = _world()
    multi.build(params)
    rng = np.random.default_rng(0)
    for _ in range(2):
        multi.apply([rng.standard_normal(p.shape) for p in params.values()])
    return multi, params


def test_multi_set_weights_checks_every_part_first():
    multi, params = _trained_multi()
    world = (multi, *multi.optimizers, list(params.values()))
    weights = multi.variables
    weights[-1] = np.ones(7)  # the last sub-optimizer's last variable: a wrong shape
    refuses(lambda: multi.set_weights(weights), world=world, says=("shape",))
    refuses(lambda: multi.set_weights(weights[:-1]), world=world, says=("must hold",))


@pytest.mark.parametrize(
    "edit,says",
    [
        (lambda s: s["optimizers"][-1]["slots"].clear(), "state['optimizers'][2]"),
        (lambda s: s["optimizers"].pop(), "3 sub-optimizers"),
        (lambda s: s.update(owners=[0, 0, 0]), "routes"),
        (lambda s: s.update(iterations=-1), "iterations"),
        (lambda s: s["config"].update(loss_scale_factor="x"), "loss_scale_factor"),
    ],
)
def test_multi_load_state_dict_checks_every_part_first(edit, says):
    multi, params = _trained_multi()
    world = (multi, *multi.optimizers, list(params.values()))
    state = copy.deepcopy(multi.state_dict())
    edit(state)
    refuses(lambda: multi.load_state_dict(state), world=world, says=(says,))
