"""``Optimizer.step(params)`` from the second step on runs a cached plan (``step_plan.py``): it
must give bit for bit what the full path gives, for every optimizer x option x preset (float32,
and float64 with each optimizer's defaults), react to every change a user can make between
steps, and still refuse bad gradients by name."""

from __future__ import annotations

import numpy as np
import pytest

import optimlab as ol
from optimlab.step_plan import StepPlan

from .test_fused import CASES, assert_same

# every option in float32: the plan hands Python floats to the compiled loops, which round them
# to the parameter's dtype, and float32 is where that rounding shows; float64 with the defaults
PLAN_CASES = [case for case in CASES if case[2] == "float32" or not case[3]]

STEPS = 30
ARRAYS = {"w": (7, 5), "b": (300,), "s": ()}
GROUPS = {"slow": {"params": ["b"], "lr_scale": 0.5, "weight_decay": 0.01}}
# what the plan leaves to the full path, step after step
FULL_PATH_ONLY = {"clipnorm", "global_clipnorm", "gradient_accumulation_steps"}


def run(engine, name, preset, dtype, options, groups=GROUPS):
    """STEPS steps through a Params (lr halved at step 12), on ``engine``."""
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(s) for k, s in ARRAYS.items()}
    params = ol.Params(arrays, dtype=dtype, groups=groups)
    kwargs = dict(options)
    if preset == "optax":
        kwargs.setdefault("learning_rate", 0.01)
    opt = ol.get(name, preset=preset, engine=engine, **kwargs)
    planned = []
    for step in range(STEPS):
        scale = np.exp(rng.standard_normal())
        for k, s in ARRAYS.items():
            params.grads[k][...] = scale * rng.standard_normal(s)
        if step == 12:
            opt.learning_rate = opt.learning_rate * 0.5
        opt.step(params)
        planned.append(opt.__dict__.get("_plan") is not None)
    state = opt.state_dict()
    state["config"].pop("engine")
    state["config"].pop("name")  # Keras's default names count up: adam, adam_1, ...
    return params.data.copy(), state, planned


@pytest.mark.parametrize(
    "name,preset,dtype,options",
    PLAN_CASES,
    ids=[f"{n}-{p}-{d}-{o or 'defaults'}" for n, p, d, o in PLAN_CASES],
)
def test_the_plan_gives_what_the_full_path_gives(name, preset, dtype, options):
    try:
        ref_data, ref_state, _ = run("reference", name, preset, dtype, options)
    except (ValueError, TypeError) as error:  # a combination the optimizer refuses
        with pytest.raises(type(error)):
            run("auto", name, preset, dtype, options)
        return
    data, state, planned = run("auto", name, preset, dtype, options)
    full_path_only = bool(FULL_PATH_ONLY & {k for k, v in options.items() if v})
    assert all(planned[1:]) != full_path_only, planned  # the plan really ran (or must not)
    clipped = bool({"clipnorm", "global_clipnorm"} & set(options))
    tol = 0.0 if not clipped else {"float64": 1e-12, "float32": 1e-6}[dtype]
    assert_same(ref_data, data, tol, "params")
    assert_same(ref_state, state, tol)


def _model(nan_policy="raise", **kwargs):
    params = ol.Params({"w": np.ones(5), "b": np.zeros(2000)})
    params.grads["w"][...] = 0.1
    params.grads["b"][...] = -0.2
    opt = ol.Adam(0.01, nan_policy=nan_policy, **kwargs)
    opt.step(params)
    opt.step(params)
    assert isinstance(opt.__dict__["_plan"], StepPlan)
    return params, opt


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_bad_gradient_is_refused_by_name_and_changes_nothing(bad):
    params, opt = _model()
    params.grads["b"][[3, 1999]] = bad
    data, state = params.data.copy(), opt.state_dict()
    with pytest.raises(FloatingPointError, match=r"gradient of 'b' \(2\) has 2 non-finite"):
        opt.step(params)
    np.testing.assert_array_equal(params.data, data)
    assert_same(state, opt.state_dict(), 0.0)
    params.grads["b"][[3, 1999]] = 0.0
    opt.step(params)  # and it goes on once the gradient is repaired
    assert opt.iterations == 3


def test_skip_policy_counts_and_changes_nothing():
    params, opt = _model("skip")
    params.grads["w"][0] = np.nan
    data = params.data.copy()
    opt.step(params)
    assert opt.skipped_steps == 1 and opt.iterations == 2
    np.testing.assert_array_equal(params.data, data)


def test_loss_scale_overflow_counts_as_non_finite():
    params, opt = _model(loss_scale_factor=1e-300)
    params.grads["b"][0] = 1e10  # finite, but 1e10 / 1e-300 overflows float64
    with pytest.raises(FloatingPointError, match="non-finite"):
        opt.step(params)


def _twin_runs(change):
    """The same 12 steps on a planned optimizer and on the reference engine, with ``change``
    applied to both after step 5."""
    results = []
    for engine in ("auto", "reference"):
        params = ol.Params({"w": np.linspace(-1, 1, 50)})
        opt = ol.Adam(0.01, engine=engine)
        other = ol.Adam(0.05)
        for step in range(12):
            params.grads["w"][...] = np.cos(params["w"] * (step + 1))
            if step == 5:
                change(opt, params, other)
            opt.step(params)
        results.append(params.data.copy())
    return results


@pytest.mark.parametrize(
    "change",
    [
        lambda opt, params, other: setattr(opt, "beta_1", 0.5),
        lambda opt, params, other: setattr(opt, "learning_rate", 0.2),
        lambda opt, params, other: setattr(opt, "iterations", 0),
        lambda opt, params, other: opt.load_state_dict(opt.state_dict()),
    ],
    ids=["hyperparameter", "learning-rate", "iterations", "load_state_dict"],
)
def test_changes_between_steps_take_effect(change):
    planned, reference = _twin_runs(change)
    np.testing.assert_array_equal(planned, reference)


def test_a_schedule_is_evaluated_every_step():
    schedule = ol.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    params = ol.Params({"w": np.zeros(1)})
    opt = ol.SGD(schedule)
    moves = []
    for _ in range(4):
        params.grads["w"][...] = 1.0
        before = params["w"].copy()
        opt.step(params)
        moves.append(float(before[0] - params["w"][0]))
    np.testing.assert_allclose(moves, [0.1, 0.05, 0.025, 0.0125])
