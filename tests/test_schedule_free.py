"""Schedule-Free AdamW's identities and its evaluation parameters.

- beta_1 = 0 is AdamW with beta_1 = 0 (y = z: the parameter takes Adam's bias-corrected RMS
  step and the decoupled decay, wherever the preset puts it): a hypothesis property;
- the evaluation point x is the weighted average of the z iterates, sum(w_t z_t) / sum(w_t),
  with w_t = 1 (Keras) or lr_max,t ^ weight_lr_power (optax): a hypothesis property;
- eval_params against optax's own ``schedule_free_eval_params``; swapping to x and back;
- the refusals, each changing nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import optimlab as ol

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def grads_strategy(steps=15, shape=(4,)):
    return st.lists(arrays(np.float64, shape, elements=finite), min_size=1, max_size=steps)


@settings(max_examples=30, deadline=None)
@given(
    grads=grads_strategy(),
    lr=st.floats(1e-3, 0.1),
    wd=st.sampled_from([None, 0.0, 0.05]),
    preset=st.sampled_from(["keras", "optax", "torch"]),
)
def test_beta_1_zero_is_adamw_with_beta_1_zero(grads, lr, wd, preset):
    """With beta_1 = 0, y = (1 - 0) z + 0 x = z: the parameter is the z sequence,
    z = z - lr (g / (sqrt(v / bc2) + epsilon) + wd z), which is AdamW with beta_1 = 0 (m = g,
    bc1 = 1) in the paper's epsilon form. Keras's decay before the step is AdamW's own order
    (p - lr wd p, then the step); optax's decay at y inside the z step is the same sum. The
    authors' epsilon-hat form is lr sqrt(bc2) g / (sqrt(v) + epsilon): AdamW's "hat"; its
    decay is scaled by lr sqrt(bc2) too (the authors' z step), AdamW's by lr, so the torch
    preset is compared without decay."""
    if preset == "torch":
        wd = None
    p0 = np.linspace(-1, 1, 4)
    sf = ol.ScheduleFreeAdamW(lr, beta_1=0.0, weight_decay=wd, preset=preset)
    style = "hat" if preset == "torch" else "paper"
    adamw = ol.AdamW(lr, beta_1=0.0, weight_decay=wd or 0.0, epsilon=1e-8, epsilon_style=style)
    p, q = p0.copy(), p0.copy()
    for g in grads:
        sf.apply_gradients([(g, p)])
        adamw.apply_gradients([(g, q)])
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(sf.state_dict()["slots"]["z/0"], p)  # z is y


@settings(max_examples=30, deadline=None)
@given(
    grads=grads_strategy(20, (3,)),
    lrs=st.lists(st.floats(1e-3, 0.05), min_size=20, max_size=20),
    beta_1=st.floats(0.1, 0.95),
    preset=st.sampled_from(["keras", "optax"]),
    power=st.sampled_from([None, 0.0, 1.0, 2.0]),
)
def test_x_is_the_weighted_average_of_the_z_iterates(grads, lrs, beta_1, preset, power):
    """x_t = (1 - c_t) x_{t-1} + c_t z_t with c_t = w_t / (w_1 + ... + w_t) makes x_T the
    weighted mean sum(w_t z_t) / sum(w_t) of z_1 ... z_T: uniform for Keras (c_t = 1/t), and
    w_t = lr_max,t^r (lr_max,t the largest rate of the first t steps) for optax's r."""
    kwargs = {} if power is None else {"weight_lr_power": power}
    opt = ol.ScheduleFreeAdamW(lrs[0], beta_1=beta_1, preset=preset, **kwargs)
    r = opt.weight_lr_power
    p = np.linspace(-1, 1, 3)
    zs, weights, lr_max = [], [], 0.0
    for g, lr in zip(grads, lrs, strict=False):
        opt.learning_rate = lr
        opt.apply_gradients([(g, p)])
        zs.append(opt.state_dict()["slots"]["z/0"].copy())
        lr_max = max(lr_max, lr)
        weights.append(lr_max**r)
    expected = np.average(zs, axis=0, weights=weights)
    (x,) = opt.eval_params()
    np.testing.assert_allclose(x, expected, rtol=1e-9, atol=1e-11)


def test_eval_params_are_optax_schedule_free_eval_params():
    """optimlab's x against optax.contrib.schedule_free_eval_params after 30 steps (under
    jax.jit, as optax runs: eagerly, its float32 warmup fraction is divided rather than
    fused, one float32 rounding apart)."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(30)]
    tx = optax.contrib.schedule_free_adamw(0.05, warmup_steps=5, weight_decay=0.01)
    params = jnp.asarray(p0)
    state = tx.init(params)
    opt = ol.ScheduleFreeAdamW(0.05, warmup_steps=5, weight_decay=0.01, preset="optax")
    p = p0.copy()

    @jax.jit
    def step(g, state, params):
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    for g in grads:
        params, state = step(jnp.asarray(g), state, params)
        opt.apply_gradients([(g, p)])
    theirs = np.asarray(optax.contrib.schedule_free_eval_params(state, params))
    np.testing.assert_allclose(p, np.asarray(params), rtol=1e-12)
    np.testing.assert_allclose(opt.eval_params()[0], theirs, rtol=1e-12)


def test_swap_to_eval_and_back():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    opt = ol.ScheduleFreeAdamW(0.01)
    for _ in range(5):
        opt.apply_gradients(
            zip([rng.standard_normal(p.shape) for p in params], params, strict=True)
        )
    y = [p.copy() for p in params]
    x = opt.eval_params()
    assert not any(np.allclose(a, b) for a, b in zip(x, y, strict=True))
    opt.swap_to_eval()
    assert opt.evaluating
    for p, want in zip(params, x, strict=True):
        np.testing.assert_array_equal(p, want)
    np.testing.assert_array_equal(opt.eval_params()[1], x[1])  # already there: copies
    before = opt.state_dict()
    with pytest.raises(ValueError, match="holds the evaluation parameters x"):
        opt.apply_gradients(zip([np.ones((3, 2)), np.ones(4)], params, strict=True))
    with pytest.raises(ValueError, match="already holds the evaluation parameters"):
        opt.swap_to_eval()
    assert opt.state_dict()["iterations"] == before["iterations"]
    opt.swap_to_train()
    assert not opt.evaluating
    for p, want in zip(params, y, strict=True):
        np.testing.assert_allclose(p, want, rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="already holds the training parameters"):
        opt.swap_to_train()


def test_a_params_step_is_refused_while_evaluating():
    params = ol.Params({"w": np.ones(3)})
    opt = ol.ScheduleFreeAdamW(0.01)
    params.grad[...] = 1.0
    opt.step(params)
    opt.step(params)  # the cached plan
    opt.swap_to_eval()
    x = params.data.copy()
    with pytest.raises(ValueError, match="swap_to_train"):
        opt.step(params)
    np.testing.assert_array_equal(params.data, x)


def test_eval_params_refusals():
    with pytest.raises(ValueError, match="not built yet"):
        ol.ScheduleFreeAdamW().eval_params()
    opt = ol.ScheduleFreeAdamW(beta_1=0.0)
    p = np.ones(2)
    opt.apply_gradients([(np.ones(2), p)])
    with pytest.raises(ValueError, match="beta_1=0.0 the parameter is z itself"):
        opt.eval_params()
    with pytest.raises(ValueError, match="beta_1=0.0"):
        opt.swap_to_eval()
    other = ol.ScheduleFreeAdamW()
    other.apply_gradients([(np.ones(2), np.ones(2))])
    with pytest.raises(ValueError, match="does not track"):
        other.eval_params([p])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(warmup_steps=-1), ValueError, r"warmup_steps must be an integer in \[0, "),
        (dict(warmup_steps=2.5), ValueError, r"warmup_steps must be an integer"),
        (dict(weight_lr_power=-1.0), ValueError, r"weight_lr_power must be a float >= 0"),
        (dict(beta_1=1.0), ValueError, r"beta_1 must be a float in \[0, 1\)"),
        (dict(weight_decay_style="at_x"), ValueError, "weight_decay_style must be one of"),
        (dict(weight_sum_dtype="float16"), ValueError, "weight_sum_dtype must be one of"),
        (dict(warmup_from_zero=1), TypeError, "warmup_from_zero"),
    ],
)
def test_refusals_name_the_argument_and_change_nothing(kwargs, error, message):
    with pytest.raises(error, match=message):
        ol.ScheduleFreeAdamW(**kwargs)
    opt = ol.ScheduleFreeAdamW(0.01)
    p = np.ones(3)
    opt.apply_gradients([(np.ones(3), p)])
    before, config = opt.state_dict(), opt.get_config()
    ((name, value),) = kwargs.items()
    with pytest.raises(error, match=message):
        setattr(opt, name, value)
    assert opt.get_config() == config
    after = opt.state_dict()
    assert after["step_state"] == before["step_state"]
    for key, buf in before["slots"].items():
        np.testing.assert_array_equal(after["slots"][key], buf)


def test_presets():
    keras, optax_, torch_ = (ol.ScheduleFreeAdamW(preset=p) for p in ("keras", "optax", "torch"))
    assert (keras.learning_rate, keras.epsilon, keras.warmup_steps) == (0.0025, 1e-8, 0)
    assert keras.weight_lr_power == 0.0 and keras.weight_decay_style == "before_step"
    assert optax_.weight_lr_power == 2.0 and optax_.weight_decay_style == "in_z_step"
    assert optax_.warmup_from_zero and optax_.warmup_dtype == "float32"
    assert torch_.epsilon_style == "hat" and torch_.weight_sum_dtype == "float64"
    assert ol.ScheduleFreeAdamW(warmup_steps=None).warmup_steps == 0  # optax's None


def test_optax_first_warmed_up_step_leaves_z():
    """optax evaluates its warmup at t - 1 for the z step: the first step moves z by 0, so y
    stays; Keras's first step takes lr / W."""
    for preset, moves in (("optax", False), ("keras", True)):
        p = np.ones(3)
        opt = ol.ScheduleFreeAdamW(0.1, warmup_steps=10, preset=preset)
        opt.apply_gradients([(np.ones(3), p)])
        assert (not np.array_equal(p, np.ones(3))) is moves


@pytest.mark.conformance
def test_the_differences_numbers_are_the_peers():
    """optimlab differences' Schedule-Free rows against Keras and optax themselves (run by the
    conformance runners): y after the last step of each experiment, and the NaN of
    beta_1 = 0."""
    from optimlab import differences

    from .conformance import peers

    def peer_y(peer, kwargs, grads, lr0, lr1=None, change_at=1000):
        plan = peers.LrPlan(lr0=lr0, lr1=lr1 or lr0, change_at=change_at, schedule_at=1000)
        params0 = [np.array([1.0])]
        out = peers.run_peer(
            peer, "ScheduleFreeAdamW", kwargs, params0, [[np.array([g])] for g in grads], plan
        )
        return float(out["params"][0][0])

    _, rows = differences.schedule_free_averaging()
    for row, peer in zip(rows[:2], ("keras", "optax"), strict=True):
        theirs = peer_y(peer, {}, [1.0] * 10, 0.01, 0.1, change_at=5)
        assert float(row[-1]) == pytest.approx(theirs, rel=1e-5)
    _, rows = differences.schedule_free_warmup()
    for row, peer in zip(rows, ("keras", "optax"), strict=True):
        theirs = peer_y(peer, {"warmup_steps": 10}, [1.0] * 3, 0.1)
        assert float(row[-1]) == pytest.approx(theirs - 1.0, rel=1e-5)
    _, rows = differences.schedule_free_weight_decay()
    for row, peer in zip(rows, ("keras", "optax"), strict=True):
        theirs = peer_y(peer, {"weight_decay": 0.1}, [0.0] * 10, 0.1)
        assert float(row[3]) == pytest.approx(theirs, rel=1e-5)
    for peer in ("keras", "optax"):
        assert np.isnan(peer_y(peer, {"beta_1": 0.0}, [1.0], 0.1))


@pytest.mark.parametrize("preset", ["keras", "optax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_params_groups_on_the_fused_plan_equal_the_reference_engine(preset, dtype):
    """A Params with a no-decay group, stepped through the cached fused plan (the rule takes
    each group's decay after its scalars), equals the reference engine on the same arrays,
    bit for bit, parameters and z."""
    rng = np.random.default_rng(5)
    values = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    groups = {"no_decay": {"params": ["b"], "weight_decay": 0.0, "lr_scale": 0.5}}
    fused_params = ol.Params({k: v.astype(dtype) for k, v in values.items()}, groups=groups)
    ref_params = ol.Params({k: v.astype(dtype) for k, v in values.items()}, groups=groups)
    kwargs = dict(learning_rate=0.05, warmup_steps=3, weight_decay=0.1, preset=preset)
    fast = ol.ScheduleFreeAdamW(engine="fused", **kwargs)
    slow = ol.ScheduleFreeAdamW(engine="reference", **kwargs)
    for _ in range(6):
        g = rng.standard_normal(fused_params.grad.shape).astype(dtype)
        fused_params.grad[...] = g
        ref_params.grad[...] = g
        fast.step(fused_params)
        slow.step(ref_params)
    assert fast._plan is not None  # the cached plan ran
    np.testing.assert_array_equal(fused_params.data, ref_params.data)
    fast_slots, slow_slots = fast.state_dict()["slots"], slow.state_dict()["slots"]
    for a, b in zip(fast_slots.values(), slow_slots.values(), strict=True):
        np.testing.assert_array_equal(a, b)
