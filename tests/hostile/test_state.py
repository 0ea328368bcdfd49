"""state_dict / load_state_dict against malformed fields, counters of every kind, states of
other optimizers, presets and configurations: a refused state leaves the optimizer exactly
as it was (every buffer, counter and the configuration), an accepted one resumes
bit-identically."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol

from .registry import HOSTILE, MAX_COUNT, Int
from .world import accepted, refuses, snapshot

CONFIGS = [
    ("Adam", {"amsgrad": True, "use_ema": True}),
    ("Nadam", {}),
    ("Nadam", {"preset": "torch"}),
    ("SGD", {"momentum": 0.9, "gradient_accumulation_steps": 3}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "preset": "torch"}),
    ("AdamW", {"learning_rate": ol.schedules.ReduceLROnPlateau(0.1)}),
    ("Lion", {"nan_policy": "skip", "clipnorm": 1.0}),
    ("Adagrad", {"preset": "optax", "learning_rate": 0.1}),
    ("Adadelta", {"global_clipnorm": 0.5}),
    ("Adamax", {"weight_decay": 0.01}),
    ("RAdam", {"preset": "torch", "threshold": 6.0}),
    ("Rprop", {"preset": "optax", "learning_rate": 0.05, "max_step_size": 0.02}),
    ("ASGD", {"preset": "torch", "learning_rate": 0.05, "t0": 1.0}),
    ("Lamb", {"weight_decay": 0.01, "preset": "optax", "learning_rate": 0.05}),
    ("Ftrl", {"l1_regularization_strength": 0.05, "beta": 0.5, "clipvalue": 0.5}),
]
IDS = [f"{n}-{'-'.join(o) or 'defaults'}" for n, o in CONFIGS]


def grads(k, shapes=((2, 3), (4,))):
    rng = np.random.default_rng(k)
    return [rng.standard_normal(s) for s in shapes]


def trained(name, options, steps=4):
    options = dict(options)
    options.setdefault("learning_rate", 0.05)
    opt = ol.get(name, **copy.deepcopy(options))
    params = [np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(0, 1, 4)]
    for k in range(steps):
        opt.apply(grads(k), params)
        if isinstance(opt.learning_rate_schedule, ol.schedules.ReduceLROnPlateau):
            opt.learning_rate_schedule.step(float(k % 2))
    return opt, params


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
def test_resume_is_bit_identical(name, options):
    """Save at step 3, load into a fresh optimizer (on copies of the parameters), continue:
    parameters and every buffer equal the uninterrupted run's, bit for bit."""
    whole, p_whole = trained(name, options, steps=3)
    state = whole.state_dict()
    resumed = ol.get(name, learning_rate=0.5)  # another configuration: the state's wins
    p_resumed = [p.copy() for p in p_whole]
    resumed.load_state_dict(state, p_resumed)
    for k in range(3, 7):
        whole.apply(grads(k), p_whole)
        resumed.apply(grads(k), p_resumed)
    a, b = whole.state_dict(), resumed.state_dict()
    for x, y in zip(p_whole, p_resumed, strict=True):
        np.testing.assert_array_equal(x, y)
    for key in a["slots"]:
        np.testing.assert_array_equal(a["slots"][key], b["slots"][key])
    assert (a["iterations"], a["micro_step"], a["param_steps"], a["step_state"]) == (
        b["iterations"],
        b["micro_step"],
        b["param_steps"],
        b["step_state"],
    )
    accepted()


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
def test_load_into_a_built_optimizer_of_another_structure(name, options):
    """Loading a state with other buffers (AMSGrad, accumulation, EMA, another preset) into a
    built optimizer used to fail half-way (``'NoneType' object does not support item
    assignment``, after the configuration was replaced) or drop the accumulators silently."""
    source, p_source = trained(name, options)
    target, p_target = trained(name, {"learning_rate": 0.3})
    target.load_state_dict(source.state_dict())
    for dst, src in zip(p_target, p_source, strict=True):
        dst[...] = src  # the parameters travel separately (checkpoint files carry both)
    for k in range(4, 6):
        source.apply(grads(k), p_source)
        target.apply(grads(k), p_target)
    a, b = source.state_dict(), target.state_dict()
    assert a["slots"].keys() == b["slots"].keys()
    for key in a["slots"]:
        np.testing.assert_array_equal(a["slots"][key], b["slots"][key])
    for x, y in zip(a["ema"] or [], b["ema"] or [], strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(p_source, p_target, strict=True):
        np.testing.assert_array_equal(x, y)
    assert target.get_config() == source.get_config()
    accepted()


COUNTERS = {"iterations": Int(0), "skipped_steps": Int(0)}


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
@settings(max_examples=30)
@given(data=st.data())
def test_every_field_replaced_by_hostile_values(name, options, data):
    source, _ = trained(name, options)
    state = source.state_dict()
    target, params = trained(name, options, steps=2)
    field = data.draw(st.sampled_from(sorted(state)), label="field")
    value = data.draw(HOSTILE, label="value")
    bad = dict(state, **{field: value})
    k = target.gradient_accumulation_steps
    kinds = dict(COUNTERS, micro_step=Int(0, (k or 1) - 1))
    if field in kinds:
        verdict = kinds[field].verdict(value)[0]
    else:
        try:
            same = bool(value == state[field]) and type(value) is type(state[field])
        except Exception:
            same = False
        verdict = "accept" if same or (field == "schedule_state" and value is None) else "refuse"
    if verdict == "refuse":
        refuses(
            lambda: target.load_state_dict(bad),
            world=(target, params),
            says=(f"state[{field!r}]",),
        )
        return
    target.load_state_dict(bad)
    target.apply(grads(9), params)
    assert all(np.isfinite(p).all() for p in params)
    accepted()


MALFORMED = [
    ("not a dict", lambda s: [s], TypeError, ["state must be a dict"]),
    (
        "a key missing",
        lambda s: {k: v for k, v in s.items() if k != "micro_step"},
        ValueError,
        ["missing ['micro_step']"],
    ),
    ("an extra key", lambda s: dict(s, extra=1), ValueError, ["unexpected ['extra']"]),
    ("a non-string extra key", lambda s: {**s, 1: 2}, ValueError, ["unexpected [1]"]),
    ("another optimizer", lambda s: dict(s, optimizer="SGD"), ValueError, ["saved by 'SGD'"]),
    ("config not a dict", lambda s: dict(s, config=[1]), TypeError, ["state['config']"]),
    (
        "config incomplete",
        lambda s: dict(s, config={"learning_rate": 0.1}),
        ValueError,
        ["state['config'] lacks"],
    ),
    (
        "config bad value",
        lambda s: dict(s, config=dict(s["config"], beta_1=2.0)),
        ValueError,
        ["beta_1", "2.0"],
    ),
    (
        "config unknown key",
        lambda s: dict(s, config=dict(s["config"], betas=(0.9, 0.99))),
        TypeError,
        ["'betas'"],
    ),
    (
        "iterations negative",
        lambda s: dict(s, iterations=-1),
        ValueError,
        ["state['iterations']", "-1", "in [0, 2**63 - 1]"],
    ),
    (
        "iterations a float",
        lambda s: dict(s, iterations=2.5),
        ValueError,
        ["state['iterations']", "2.5"],
    ),
    (
        "iterations a bool",
        lambda s: dict(s, iterations=True),
        TypeError,
        ["state['iterations']", "True"],
    ),
    (
        "iterations huge",
        lambda s: dict(s, iterations=10**400),
        ValueError,
        ["state['iterations']", "e+400"],
    ),
    ("iterations 2**63", lambda s: dict(s, iterations=2**63), ValueError, ["state['iterations']"]),
    (
        "iterations a string",
        lambda s: dict(s, iterations="4"),
        TypeError,
        ["state['iterations']", "'4'"],
    ),
    (
        "skipped_steps negative",
        lambda s: dict(s, skipped_steps=-3),
        ValueError,
        ["state['skipped_steps']"],
    ),
    (
        "micro_step without accumulation",
        lambda s: dict(s, micro_step=1),
        ValueError,
        ["state['micro_step']", "in [0, 0]"],
    ),
    ("num_params wrong", lambda s: dict(s, num_params=3), ValueError, ["3 parameters", "has 2"]),
    ("num_params a string", lambda s: dict(s, num_params="2"), TypeError, ["state['num_params']"]),
    ("shapes None", lambda s: dict(s, shapes=None), TypeError, ["state['shapes']"]),
    (
        "shapes short",
        lambda s: dict(s, shapes=[[2, 3]]),
        ValueError,
        ["state['shapes']", "2 items"],
    ),
    ("shape junk", lambda s: dict(s, shapes=[[2, "3"], [4]]), TypeError, ["state['shapes'][0][1]"]),
    ("shape other", lambda s: dict(s, shapes=[[3, 2], [4]]), ValueError, ["parameter 0", "(3, 2)"]),
    (
        "dtype junk",
        lambda s: dict(s, dtypes=["abc", "<f8"]),
        ValueError,
        ["state['dtypes'][0]", "'abc'"],
    ),
    (
        "dtype an array",
        lambda s: dict(s, dtypes=[np.array(["<f8"]), "<f8"]),
        ValueError,
        ["state['dtypes'][0]"],
    ),
    (
        "dtype other",
        lambda s: dict(s, dtypes=["<f4", "<f8"]),
        ValueError,
        ["parameter 0", "float32"],
    ),
    (
        "param_steps short",
        lambda s: dict(s, param_steps=[1]),
        ValueError,
        ["state['param_steps']", "2 items"],
    ),
    (
        "param_steps negative",
        lambda s: dict(s, param_steps=[-1, 1]),
        ValueError,
        ["state['param_steps'][0]"],
    ),
    (
        "param_steps strings",
        lambda s: dict(s, param_steps=["a", 1]),
        TypeError,
        ["state['param_steps'][0]", "'a'"],
    ),
    (
        "step_state junk",
        lambda s: dict(s, step_state=[["x"]]),
        ValueError,
        ["state['step_state'][0]"],
    ),
    (
        "step_state too long",
        lambda s: dict(s, step_state=[[], []]),
        ValueError,
        ["state['step_state']"],
    ),
    ("slots a list", lambda s: dict(s, slots=[]), TypeError, ["state['slots']"]),
    (
        "a slot missing",
        lambda s: dict(s, slots={k: v for k, v in s["slots"].items() if k != "m/1"}),
        ValueError,
        ["missing ['m/1']"],
    ),
    (
        "a slot extra",
        lambda s: dict(s, slots=dict(s["slots"], **{"m/7": np.ones(1)})),
        ValueError,
        ["unexpected ['m/7']"],
    ),
    (
        "a slot of another shape",
        lambda s: dict(s, slots=dict(s["slots"], **{"m/0": np.ones(6)})),
        ValueError,
        ["state['slots']['m/0']", "(2, 3)"],
    ),
    (
        "a slot of another dtype",
        lambda s: dict(s, slots=dict(s["slots"], **{"m/0": np.ones((2, 3), np.float32)})),
        ValueError,
        ["float32"],
    ),
    (
        "a slot of junk",
        lambda s: dict(s, slots=dict(s["slots"], **{"m/0": "junk"})),
        ValueError,
        ["state['slots']['m/0']"],
    ),
    (
        "a slot ragged",
        lambda s: dict(s, slots=dict(s["slots"], **{"m/0": [[1.0], [1.0, 2.0]]})),
        ValueError,
        ["not an array"],
    ),
    (
        "accumulators present",
        lambda s: dict(s, accumulators=[np.ones((2, 3)), np.ones(4)]),
        ValueError,
        ["state['accumulators']"],
    ),
    (
        "accumulated junk",
        lambda s: dict(s, accumulated=[1, 2]),
        ValueError,
        ["state['accumulated']"],
    ),
    ("ema missing", lambda s: dict(s, ema=None), ValueError, ["state['ema']"]),
    (
        "ema short",
        lambda s: dict(s, ema=[np.ones((2, 3))]),
        ValueError,
        ["state['ema']", "2 items"],
    ),
    (
        "ema wrong shape",
        lambda s: dict(s, ema=[np.ones(6), np.ones(4)]),
        ValueError,
        ["state['ema'][0]"],
    ),
    (
        "schedule_state for a float",
        lambda s: dict(s, schedule_state={"lr": 1.0}),
        ValueError,
        ["state['schedule_state']"],
    ),
    (
        "huge learning rate for float32",
        lambda s: dict(s, config=dict(s["config"], learning_rate=1e300), dtypes=["<f4", "<f4"]),
        ValueError,
        ["parameter 0"],
    ),
]


@pytest.mark.parametrize("label,mutate,exc,says", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_states_change_nothing(label, mutate, exc, says):
    source, _ = trained("Adam", {"use_ema": True})
    target, params = trained("Adam", {"use_ema": True, "learning_rate": 0.3}, steps=2)
    bad = mutate(source.state_dict())
    refuses(lambda: target.load_state_dict(bad), world=(target, params), exc=exc, says=tuple(says))


def test_an_unbuilt_optimizer_stays_unbuilt():
    source, _ = trained("Adam", {})
    target = ol.Adam()
    params = [np.zeros((2, 3)), np.zeros(4)]
    refuses(
        lambda: target.load_state_dict(source.state_dict()),
        world=(target, params),
        says=("not built", "pass its parameters"),
    )
    refuses(
        lambda: target.load_state_dict(dict(source.state_dict(), iterations=-1), params),
        world=(target, params),
        says=("state['iterations']",),
    )
    refuses(
        lambda: target.load_state_dict(source.state_dict(), [params[0]]),
        world=(target, params),
        says=("state holds 2",),
    )
    same = np.zeros(6)
    refuses(
        lambda: target.load_state_dict(
            dict(source.state_dict(), shapes=[[6], [6]]), [same, same[:]]
        ),
        world=(target,),
        says=("share memory",),
    )
    assert not target.built
    accepted()


def test_counters_accept_their_whole_range():
    source, _ = trained("Adam", {})
    state = dict(
        source.state_dict(),
        iterations=MAX_COUNT - 5,
        skipped_steps=MAX_COUNT,
        param_steps=[MAX_COUNT - 5] * 2,
    )
    target = ol.Adam()
    params = [np.ones((2, 3)), np.ones(4)]
    target.load_state_dict(state, params)
    target.apply(grads(1), params)
    assert target.iterations == MAX_COUNT - 4 and all(np.isfinite(p).all() for p in params)
    accepted()


def test_a_refused_load_does_not_touch_a_shared_schedule():
    """The state's schedule is loaded last and into a copy: a refused state leaves the
    caller's schedule object alone."""
    sched = ol.schedules.ReduceLROnPlateau(0.1)
    source, _ = trained("Adam", {"learning_rate": sched})
    state = source.state_dict()
    state["config"] = dict(state["config"])
    target, params = trained("Adam", {})
    before = snapshot(sched)
    refuses(
        lambda: target.load_state_dict(
            dict(
                state,
                schedule_state={
                    "lr": -1.0,
                    "best": None,
                    "num_bad_epochs": 0,
                    "cooldown_counter": 0,
                    "last_epoch": 0,
                },
            )
        ),
        world=(target, params),
        says=("lr",),
    )
    assert snapshot(sched) == before
