"""optimlab.optax's interface: the dialect's refusals, optax's names, pytrees and NamedTuple
state, inject_hyperparams, nan_policy="skip", float32 without jax_enable_x64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
import optimlab.optax as olx

from . import runs


def _message(call):
    try:
        call()
    except (TypeError, ValueError) as error:
        return type(error), str(error)
    return None


@settings(max_examples=60)
@given(
    name=st.sampled_from(["adam", "rmsprop", "sgd", "radam", "rprop", "lion"]),
    key=st.sampled_from(["beta_1", "rho", "momentum", "epsilon", "eta_minus", "threshold"]),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.text(max_size=2)
    ),
    preset=st.sampled_from(["optax", "keras", "torch"]),
)
def test_refusals_are_the_dialects(name, key, value, preset):
    """The factory refuses exactly what the NumPy dialect refuses, with the same error."""
    cls = olx.CLASSES[name]
    ours = _message(lambda: olx.FACTORIES[name](0.01, preset=preset, **{key: value}))
    theirs = _message(lambda: cls(learning_rate=0.01, preset=preset, **{key: value}))
    assert ours == theirs


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: olx.adam(0.01, preset="jax"), ValueError, "preset"),
        (lambda: olx.adam(0.01, betas=(0.9, 0.99)), TypeError, "betas"),
        (lambda: olx.adam(), TypeError, "learning_rate is required"),
        (lambda: olx.adam(-1.0), ValueError, "learning_rate"),
        (lambda: olx.adam(0.01, nan_policy="raise"), ValueError, "nan_policy='raise'"),
        (lambda: olx.adam(0.01, use_ema=True), ValueError, "optax.incremental_update"),
        (lambda: olx.adam(0.01, gradient_accumulation_steps=2), ValueError, "MultiSteps"),
        (lambda: olx.adam(0.01, b1=0.5, beta_1=0.5), TypeError, "b1 is optax's name"),
        (lambda: olx.adam(jnp.ones(2)), TypeError, "0-d float JAX array"),
        (lambda: olx.adam(jnp.asarray(-0.5)), ValueError, "learning_rate"),
        (lambda: olx.adam(0.01, clipnorm=1.0, clipvalue=1.0), ValueError, "at most one"),
    ],
)
def test_refusals_name_the_argument(call, error, words):
    with pytest.raises(error, match=None) as raised:
        call()
    assert words in str(raised.value)


def test_update_and_init_refuse_what_they_cannot_run():
    tx = olx.adam(0.01)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs the parameters"):
        tx.update(params, state)
    with pytest.raises(TypeError, match="parameter leaf 0 has dtype int32"):
        tx.init({"w": jnp.ones(3, jnp.int32)})
    with pytest.raises(TypeError, match="gradient 0 has dtype float32 but its parameter"):
        tx.update({"w": jnp.ones(3, jnp.float32)}, state, params)
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(2,\) but its parameter"):
        jax.jit(tx.update)({"w": jnp.ones(2)}, state, params)
    # a hyperparameter that float32 cannot hold is refused once the dtype is known
    with pytest.raises(ValueError, match="loss_scale_factor"):
        olx.adam(0.01, loss_scale_factor=1e-60).init({"w": jnp.ones(3, jnp.float32)})


def test_optax_names_and_the_keras_default_learning_rate():
    """b1/b2/eps are beta_1/beta_2/epsilon; preset="keras" needs no learning rate (Keras's
    0.001), the optax preset does."""
    params = [jnp.asarray(np.linspace(-1.0, 1.0, 5))]
    grads = [jnp.asarray(np.linspace(0.5, -0.3, 5))]

    def step(tx):
        updates, _ = tx.update(grads, tx.init(params), params)
        return np.asarray(updates[0])

    with jax.disable_jit():
        a = step(olx.adam(0.01, b1=0.5, b2=0.9, eps=1e-3))
        b = step(olx.adam(0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-3))
        c = step(olx.adam(preset="keras"))
        d = step(olx.adam(0.001, preset="keras"))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, d)


def test_pytrees_jit_and_inject_hyperparams():
    """Dict parameters under jit, the state a NamedTuple of pytrees, and the learning rate
    injected by optax.inject_hyperparams (changed between calls, no recompilation): the same
    iterates as the dialect with the same changes."""
    rng = np.random.default_rng(3)
    params0 = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params0.items()} for _ in range(30)]
    tx = optax.inject_hyperparams(olx.nadam)(learning_rate=0.01)
    traces = [0]

    @jax.jit
    def step(params, state, g):
        traces[0] += 1
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state

    params = jax.tree.map(jnp.asarray, params0)
    state = tx.init(params)
    inner = state.inner_state
    assert isinstance(inner, olx.ScaleByRuleState)
    assert sorted(inner.slots) == ["m", "v"] and sorted(inner.slots["m"]) == ["b", "w"]
    assert inner.step_state[0].dtype == jnp.float64  # Nadam's momentum product
    opt = ol.Nadam(learning_rate=0.01, preset="optax", engine="reference")
    ref = {k: v.copy() for k, v in params0.items()}
    for call, g in enumerate(grads):
        lr = 0.01 if call < 10 else 0.003
        state.hyperparams["learning_rate"] = jnp.asarray(lr)
        opt.learning_rate = lr
        params, state = step(params, state, {k: jnp.asarray(v) for k, v in g.items()})
        opt.apply([g["b"], g["w"]], [ref["b"], ref["w"]])
    assert traces[0] == 1
    assert int(state.inner_state.count) == 30
    assert runs.deviation([params["w"], params["b"]], [ref["w"], ref["b"]]) <= 1e-12


def test_nan_policy_skip_changes_nothing():
    """A step with a non-finite gradient returns zero updates and the state unchanged (the
    count too), so the run equals the dialect's, which skips it as well."""
    params0 = [np.linspace(-1.0, 1.0, 4)]
    grads = [[np.full(4, 0.3)], [np.array([0.1, np.nan, 0.2, 0.3])], [np.full(4, -0.2)]]
    tx = olx.radam(0.01, nan_policy="skip")
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    params = [jnp.asarray(params0[0])]
    state = tx.init(params)
    for k, g in enumerate(grads):
        updates, new_state = step(params, state, [jnp.asarray(g[0])])
        if k == 1:
            assert not np.any(np.asarray(updates[0]))
            assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new_state, state))
        params, state = optax.apply_updates(params, updates), new_state
    assert int(state.count) == 2
    opt = ol.RAdam(learning_rate=0.01, preset="optax", nan_policy="skip", engine="reference")
    ref = [params0[0].copy()]
    for g in grads:
        opt.apply(g, ref)
    np.testing.assert_allclose(np.asarray(params[0]), ref[0], rtol=0, atol=1e-15)


def test_float32_without_x64():
    """With jax_enable_x64 off the count, schedule and step numbers are float32: within 1e-6
    of the dialect's float32 run (whose step numbers are Python floats)."""
    rng = np.random.default_rng(5)
    params0 = [rng.standard_normal(6).astype(np.float32)]
    grads = [[rng.standard_normal(6).astype(np.float32)] for _ in range(40)]
    with jax.enable_x64(False):
        ours, _, traces = runs.run_face(olx.adam, "keras", {}, params0, grads, 0.01)
    reference, _ = runs.run_reference("Adam", "keras", {}, params0, grads, 0.01)
    assert traces == 1 and ours[0].dtype == np.float32
    assert runs.deviation(ours, reference) <= 1e-6


def test_every_elementwise_optimizer_has_a_documented_factory():
    names = {
        olx.FACTORY_NAMES.get(n, n.lower())
        for n, cls in ol.optimizers.OPTIMIZERS.items()
        if (not cls.rule.__dict__.get("TENSOR") or n in olx.TENSOR_OPTIMIZERS)
        and n not in olx.NOT_YET
    }
    assert set(ol.optimizers.OPTIMIZERS) <= {c.__name__ for c in olx.CLASSES.values()} | set(
        olx.NOT_YET
    )
    assert set(olx.FACTORIES) == names
    for name, factory in olx.FACTORIES.items():
        assert factory.__name__ == name and getattr(olx, name) is factory
        assert (
            "preset" in factory.__doc__
            and olx.CLASSES[name].rule.__doc__.strip()[:40] in factory.__doc__
        )


@settings(max_examples=12)
@given(
    lr=st.floats(1e-4, 0.5),
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-10, 1e-2),
    amsgrad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_optax_preset_is_optax(lr, b1, b2, eps, amsgrad, seed):
    """olx.adam(lr, b1=..., b2=..., eps=...) with the default preset is optax.adam (or
    optax.amsgrad) of the same arguments: three steps, float64, within 1e-13."""
    rng = np.random.default_rng(seed)
    params = [jnp.asarray(rng.standard_normal(4))]
    grads = [[jnp.asarray(rng.standard_normal(4))] for _ in range(3)]
    ours = olx.adam(lr, b1=b1, b2=b2, eps=eps, amsgrad=amsgrad)
    theirs = (optax.amsgrad if amsgrad else optax.adam)(lr, b1=b1, b2=b2, eps=eps)
    results = []
    with jax.disable_jit():
        for tx in (ours, theirs):
            p, state = params, tx.init(params)
            for g in grads:
                updates, state = tx.update(g, state, p)
                p = optax.apply_updates(p, updates)
            results.append(np.asarray(p[0]))
    scale = float(np.max(np.abs(results[1]))) or 1.0
    assert float(np.max(np.abs(results[0] - results[1]))) / scale <= 1e-13


def test_factories_take_no_keras_name():
    """A factory's dialect optimizer is named explicitly: calling factories (refused or not)
    leaves Keras's automatic names (optimlab.naming) as they were."""
    from optimlab import naming

    before = dict(naming._COUNTS)
    olx.adam(0.01)
    olx.sgd(0.1, momentum=0.9, preset="keras")
    with pytest.raises(ValueError):
        olx.rmsprop(0.01, rho=2.0)
    assert dict(naming._COUNTS) == before


def test_schedule_free_eval_params_is_optax_and_the_dialect():
    """olx.schedule_free_eval_params(state, params) is optax.contrib's for optax's
    schedule_free_adamw run alongside (jitted, inside inject_hyperparams too) and the dialect's
    eval_params; a state without Schedule-Free's and beta_1 = 0 are refused."""
    rng = np.random.default_rng(11)
    params0 = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params0.items()} for _ in range(8)]
    runs_of = {
        "ours": (olx.schedule_free_adamw(0.01, warmup_steps=3), olx.schedule_free_eval_params),
        "injected": (
            optax.inject_hyperparams(olx.schedule_free_adamw, static_args=("warmup_steps",))(
                learning_rate=0.01, warmup_steps=3
            ),
            olx.schedule_free_eval_params,
        ),
        "optax": (
            optax.contrib.schedule_free_adamw(0.01, warmup_steps=3),
            optax.contrib.schedule_free_eval_params,
        ),
    }
    results = {}
    for key, (tx, evaluate) in runs_of.items():
        params = jax.tree.map(jnp.asarray, params0)
        state = tx.init(params)
        step = jax.jit(lambda p, s, g, tx=tx: tx.update(g, s, p))
        for g in grads:
            updates, state = step(params, state, jax.tree.map(jnp.asarray, g))
            params = optax.apply_updates(params, updates)
        results[key] = jax.jit(evaluate)(state, params)
    dialect = ol.ScheduleFreeAdamW(learning_rate=0.01, warmup_steps=3, preset="optax")
    ref = [params0["b"].copy(), params0["w"].copy()]
    for g in grads:
        dialect.apply([g["b"], g["w"]], ref)
    ours = [results["ours"]["b"], results["ours"]["w"]]
    for key in ("injected", "optax"):
        assert runs.deviation(ours, [results[key]["b"], results[key]["w"]]) <= 1e-12
    assert runs.deviation(ours, dialect.eval_params()) <= 1e-12
    with pytest.raises(ValueError, match="needs the state of optimlab.optax.schedule_free_adamw"):
        olx.schedule_free_eval_params(olx.adam(0.01).init(params0), params0)
    tx = olx.schedule_free_adamw(0.01, beta_1=0.0)
    with pytest.raises(ValueError, match="beta_1=0.0"):
        olx.schedule_free_eval_params(tx.init(params0), params0)
