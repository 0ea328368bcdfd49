"""``optimizer.variables`` and ``set_weights`` as Keras 3 has them: the same list (count,
order, shapes, values) as Keras's own optimizer after the same steps, and a refused
``set_weights`` that changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import optimlab as ol
from tests.hostile.world import refuses

keras = pytest.importorskip("keras")

CASES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "use_ema": True}),
    ("Adagrad", {}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"use_ema": True, "gradient_accumulation_steps": 2}),
    ("AdamW", {}),
    ("Nadam", {}),
    ("Adamax", {}),
    ("Adadelta", {}),
    ("Lion", {}),
    ("Ftrl", {}),
    ("Ftrl", {"learning_rate_power": -0.3, "l1_regularization_strength": 0.01, "beta": 0.5}),
    ("ScheduleFreeAdamW", {"warmup_steps": 3}),  # z (Keras's momentum) and v, per variable
]


def _pair(name, options, steps=4):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((2, 3)), rng.standard_normal(4)]
    theirs = [keras.Variable(p.copy()) for p in params]
    k_opt = getattr(keras.optimizers, name)(learning_rate=0.01, **options)
    o_opt = getattr(ol, name)(learning_rate=0.01, **options)
    for _ in range(steps):
        grads = [rng.standard_normal(p.shape) for p in params]
        k_opt.apply_gradients(
            zip([keras.ops.convert_to_tensor(g) for g in grads], theirs, strict=True)
        )
        o_opt.apply_gradients(zip(grads, params, strict=True))
    return k_opt, o_opt, params


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_variables_are_keras_s_list(name, options):
    k_opt, o_opt, _ = _pair(name, options)
    expected = [np.asarray(v) for v in k_opt.variables]
    got = o_opt.variables
    assert [a.shape for a in got] == [a.shape for a in expected]
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        # Keras keeps the learning rate in float32: 0.01 -> 0.009999999776
        scale = max(float(np.max(np.abs(b))), 1e-300)
        assert float(np.max(np.abs(a - b))) <= 1e-7 * scale, (i, k_opt.variables[i].path)


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_set_weights_continues_bit_identically(name, options):
    _, source, params = _pair(name, options)
    target = getattr(ol, name)(learning_rate=0.5, **options)
    copies = [p.copy() for p in params]
    target.build(copies)
    target.set_weights(source.variables)
    assert all(
        np.array_equal(a, b) for a, b in zip(target.variables, source.variables, strict=True)
    )
    rng = np.random.default_rng(1)
    for _ in range(3):
        grads = [rng.standard_normal(p.shape) for p in params]
        source.apply_gradients(zip(grads, params, strict=True))
        target.apply_gradients(zip(grads, copies, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(copies, params, strict=True))


def test_a_schedule_is_not_a_variable():
    opt = ol.Adam(learning_rate=0.001)
    assert len(opt.variables) == 2
    opt.learning_rate = ol.schedules.PolynomialDecay(0.001, 4)
    assert len(opt.variables) == 1


def _built():
    opt = ol.Adam(learning_rate=0.01, amsgrad=True)
    params = [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]
    opt.apply_gradients(
        zip([np.ones((2, 3), np.float32), np.ones(4, np.float32)], params, strict=True)
    )
    return opt, params


def test_set_weights_before_build_is_keras_s_error():
    opt = ol.Adam()
    refuses(
        lambda: opt.set_weights([np.array(0), np.array(0.001)]),
        world=(opt,),
        exc=ValueError,
        says=("You are calling `set_weights()` on an optimizer that has not yet been built",),
    )


def _replace(weights, index, value):
    return [value if i == index else w for i, w in enumerate(weights)]


BAD = [
    ("too few", lambda w: w[:-1], ValueError, ["weights must hold 8 arrays", "got 7"]),
    ("too many", lambda w: [*w, w[-1]], ValueError, ["got 9"]),
    ("not a list", lambda w: 5, TypeError, ["weights"]),
    ("a shape", lambda w: _replace(w, 2, np.zeros(3)), ValueError, ["shape (2, 3)", "(3,)"]),
    (
        "iterations < 0",
        lambda w: _replace(w, 0, np.array(-1)),
        ValueError,
        ["[0, 2**63 - 1]", "-1"],
    ),
    ("iterations 1.5", lambda w: _replace(w, 0, np.array(1.5)), (TypeError, ValueError), ["1.5"]),
    ("lr NaN", lambda w: _replace(w, 1, np.array(np.nan)), ValueError, ["learning_rate"]),
    ("lr < 0", lambda w: _replace(w, 1, np.array(-0.1)), ValueError, ["learning_rate", "-0.1"]),
    ("lr beyond float32", lambda w: _replace(w, 1, np.array(1e300)), ValueError, ["float32"]),
    ("a slot beyond float32", lambda w: _replace(w, 4, np.full(4, 1e300)), ValueError, ["float32"]),
    ("strings", lambda w: _replace(w, 3, np.array(["a"] * 6).reshape(2, 3)), TypeError, ["real"]),
    ("complex", lambda w: _replace(w, 3, np.ones((2, 3), complex)), TypeError, ["real"]),
]


@pytest.mark.parametrize("label,mutate,exc,says", BAD, ids=[b[0] for b in BAD])
def test_a_refused_set_weights_changes_nothing(label, mutate, exc, says):
    opt, params = _built()
    bad = mutate(opt.variables)
    refuses(lambda: opt.set_weights(bad), world=(opt, params), exc=exc, says=tuple(says))
