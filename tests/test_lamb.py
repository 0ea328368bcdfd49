"""Lamb's pieces on their own: the trust ratio's step of norm lr * ||p||, the ratio 1 of a
zero parameter, the refusals of a tensor-level rule, and the numbers ``optimlab differences``
prints for Lamb, checked against keras.optimizers.Lamb and optax.lamb themselves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import differences

from .conformance import peers  # noqa: F401  (sets the JAX/Keras environment first)

SHAPES = st.sampled_from([(), (1,), (5,), (3, 4), (2, 3, 2)])


@settings(max_examples=60)
@given(
    shape=SHAPES,
    seed=st.integers(0, 2**32 - 1),
    lr=st.floats(1e-4, 0.5),
    preset=st.sampled_from(["keras", "torch", "optax"]),
    weight_decay=st.sampled_from([None, 0.01, 0.3]),
)
def test_every_step_has_the_norm_lr_times_the_norm_of_p(shape, seed, lr, preset, weight_decay):
    """||p_new - p|| = lr * ||p|| whenever the trust ratio is active (both norms > 0): the
    ratio rescales the direction to the parameter's own size. Keras decays first, so there
    the decayed p is the one the step is measured against."""
    rng = np.random.default_rng(seed)
    p = np.asarray(rng.standard_normal(shape) + 0.1)
    opt = ol.Lamb(learning_rate=lr, weight_decay=weight_decay, preset=preset)
    keras_decay = weight_decay is not None and preset == "keras"
    for _ in range(4):
        g = np.asarray(rng.standard_normal(shape) * np.exp(rng.standard_normal()))
        before = p * (1 - lr * weight_decay) if keras_decay else p.copy()
        opt.apply_gradients([(g, p)])
        step = np.linalg.norm(p - before)
        assert step == pytest.approx(lr * np.linalg.norm(before), rel=1e-12, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("preset", ["keras", "optax"])
def test_a_zero_parameter_takes_the_trust_ratio_one_as_the_peers(preset, dtype):
    """||p|| = 0: the ratio is 1, so a zero parameter takes Adam's step lr * r (Keras and
    optax alike); a zero gradient (||r|| = 0) moves nothing."""
    g = np.array([0.5, -2.0, 1e-3], dtype)
    p = np.zeros(3, dtype)
    opt = ol.Lamb(learning_rate=0.1, preset=preset)
    opt.apply_gradients([(g, p)])
    eps = dtype(opt.epsilon)
    r = g / (np.abs(g) + eps)  # m_hat = g, v_hat = g^2 on the first step
    # float32 Keras rounds the betas of its bias corrections to float32 (optimlab
    # differences: "Bias correction in float32"), 7e-6 off the exact m_hat / sqrt(v_hat)
    np.testing.assert_allclose(p, -dtype(0.1) * r, rtol=1e-5 if dtype is np.float32 else 1e-15)
    still = np.ones(3, dtype)
    ol.Lamb(learning_rate=0.1, preset=preset).apply_gradients([(np.zeros(3, dtype), still)])
    assert (still == 1).all()

    plan = peers.LrPlan(0.1, 0.1)
    theirs = peers.run_peer(preset, "Lamb", {}, [np.zeros(3, dtype)], [[g]], plan)
    np.testing.assert_allclose(p, theirs["params"][0], rtol=1e-6, atol=0)


def test_excluded_parameters_are_optax_masked_ones():
    """exclude_from_weight_decay is optax.lamb's mask: the decay leaves the direction of an
    excluded parameter, whose trust ratio is then Adam's own."""
    import jax.numpy as jnp
    import optax

    rng = np.random.default_rng(1)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(5)]
    ours = [p.copy() for p in params]
    opt = ol.Lamb(learning_rate=0.05, weight_decay=0.2, preset="optax")
    opt.exclude_from_weight_decay([ours[1]])
    for gs in grads:
        opt.apply_gradients(zip(gs, ours, strict=True))
    tx = optax.lamb(0.05, weight_decay=0.2, mask=[True, False])
    theirs = [jnp.asarray(p) for p in params]
    state = tx.init(theirs)
    for gs in grads:
        updates, state = tx.update([jnp.asarray(g) for g in gs], state, theirs)
        theirs = optax.apply_updates(theirs, updates)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-13, atol=1e-15)


def test_the_refusals_change_nothing():
    with pytest.raises(ValueError, match="engine='fused' is not available for Lamb"):
        ol.Lamb(engine="fused")
    with pytest.raises(TypeError, match="updates whole matrices"):
        ol.Lamb().step(ol.Params({"w": np.ones((2, 3))}))
    with pytest.raises(ValueError, match="weight_decay_mode must be 'decoupled' with weight_dec"):
        ol.Lamb(preset="optax", learning_rate=0.1, weight_decay_mode="l2")
    opt = ol.Lamb(preset="optax", learning_rate=0.1, weight_decay=0.1)
    config = opt.get_config()
    with pytest.raises(ValueError, match="got 'l2'; pass weight_decay_in_trust_ratio=False"):
        opt.weight_decay_mode = "l2"
    assert opt.get_config() == config
    opt = ol.Lamb(0.1, preset="optax", weight_decay_mode="l2", weight_decay_in_trust_ratio=False)
    with pytest.raises(ValueError, match="weight_decay_in_trust_ratio"):
        opt.weight_decay_in_trust_ratio = True
    with pytest.raises(ValueError, match=r"nan_trust_ratio must be one of 'one', 'nan'"):
        ol.Lamb(nan_trust_ratio="zero")


def test_l2_decay_goes_into_the_moments():
    """weight_decay_mode='l2' (with the decay outside the ratio) is g + wd * p before Adam's
    moments, the chain add_decayed_weights -> optax.lamb."""
    p, q = np.array([1.0, -2.0]), np.array([1.0, -2.0])
    g = np.array([0.3, 0.1])
    ol.Lamb(0.1, weight_decay=0.5, weight_decay_mode="l2").apply_gradients([(g, p)])
    ol.Lamb(0.1).apply_gradients([(g + 0.5 * q, q)])
    np.testing.assert_array_equal(p, q)


# -- the numbers of `optimlab differences`, against the peers ---------------------------------


def _keras_lamb(p0, grads, dtype="float64", **kwargs):
    import keras

    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        v = keras.Variable(np.array(p0, dtype), dtype=dtype)
        opt = keras.optimizers.Lamb(**kwargs)
        for g in grads:
            opt.apply_gradients([(np.array(g, dtype), v)])
        return np.array(v.numpy())
    finally:
        keras.config.set_floatx(previous)


def _optax_lamb(p0, grads, learning_rate, **kwargs):
    import jax.numpy as jnp
    import optax

    tx = optax.lamb(learning_rate, **kwargs)
    p = jnp.asarray(np.array(p0, np.float64))
    state = tx.init(p)
    for g in grads:
        updates, state = tx.update(jnp.asarray(np.array(g, np.float64)), state, p)
        p = optax.apply_updates(p, updates)
    return np.array(p)


def test_lamb_weight_decay_row_is_what_keras_and_optax_do():
    header, rows = differences.lamb_weight_decay()
    keras_row, optax_row = rows
    for column, wd in ((1, 0.01), (2, 0.1)):
        k = _keras_lamb([1.0], [[0.0]] * 3, learning_rate=0.1, weight_decay=wd)
        o = _optax_lamb([1.0], [[0.0]] * 3, 0.1, weight_decay=wd)
        assert float(keras_row[column]) == pytest.approx(float(k[0]), rel=1e-6)
        assert float(optax_row[column]) == pytest.approx(float(o[0]), rel=1e-6)
    assert float(optax_row[1]) == float(optax_row[2]) == pytest.approx(0.9**3, rel=1e-6)
    p0, g = [1.0, 2.0], [[1.0, -1.0]]
    k = _keras_lamb(p0, g, learning_rate=0.1, weight_decay=0.1)
    o = _optax_lamb(p0, g, 0.1, weight_decay=0.1)
    lr_norm = 0.1 * np.linalg.norm(p0)
    assert float(keras_row[3]) == pytest.approx(np.linalg.norm(k - p0) / lr_norm, rel=1e-5)
    assert float(optax_row[3]) == pytest.approx(np.linalg.norm(o - p0) / lr_norm, rel=1e-12)
    assert float(optax_row[3]) == pytest.approx(1.0, rel=1e-12)
    import inspect

    import keras
    import optax

    assert (
        float(keras_row[4])
        == inspect.signature(keras.optimizers.Lamb).parameters["epsilon"].default
    )
    assert float(optax_row[4]) == inspect.signature(optax.lamb).parameters["eps"].default


def test_lamb_nan_norm_row_is_what_keras_and_optax_do():
    header, rows = differences.lamb_nan_norm()
    (_, k0, k1), (_, o0, o1) = rows
    g = [[np.nan, 1.0]]
    with np.errstate(invalid="ignore"):
        k = _keras_lamb([1.0, 2.0], g, learning_rate=0.1, epsilon=0.0)
        o = _optax_lamb([1.0, 2.0], g, 0.1, eps=0.0)
    assert np.isnan(k[0]) and float(k0) != float(k0)
    assert float(k1) == pytest.approx(float(k[1]), rel=1e-12) and np.isfinite(k[1])
    assert np.isnan(o).all() and np.isnan([float(o0), float(o1)]).all()
