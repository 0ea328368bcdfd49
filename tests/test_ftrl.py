"""Ftrl's pieces on their own: the identities of FTRL-Proximal (the L1 threshold holds a
coordinate at exactly 0, the accumulator is the sum of squares, a fixed rate ignores it, and
without regularization FTRL is Adagrad), Keras's own golden values, the engines (a general
power runs on the reference engine only), the refusals, and the numbers ``optimlab
differences`` prints for Ftrl, checked against keras.optimizers.Ftrl itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import differences
from optimlab.rules import ftrl as rule

from .conformance import peers  # noqa: F401  (sets the JAX/Keras environment first)
from .hostile.world import refuses

GRADS = st.lists(
    st.lists(st.floats(-3.0, 3.0).filter(lambda x: abs(x) > 1e-3), min_size=4, max_size=4),
    min_size=1,
    max_size=8,
)


def _state(opt):
    slots = opt.state_dict()["slots"]
    return slots["accumulator/0"], slots["linear/0"]


@settings(max_examples=60, deadline=None)
@given(
    grads=GRADS,
    l1=st.floats(0.0, 3.0),
    l2=st.sampled_from([0.0, 0.2]),
    power=st.sampled_from([-0.5, 0.0, -0.3]),
    lr=st.floats(0.01, 1.0),
)
def test_the_parameter_is_solved_from_the_state(grads, l1, l2, power, lr):
    """After every step: n = n0 + sum g^2 (in order), p = 0 exactly where |z| <= l1, and
    elsewhere p = -(z - sign(z) l1) / quadratic with the opposite sign of z."""
    p = np.array([0.3, -0.2, 0.0, 1.0])
    opt = ol.Ftrl(
        learning_rate=lr,
        learning_rate_power=power,
        l1_regularization_strength=l1,
        l2_regularization_strength=l2,
    )
    n = np.full(4, 0.1)
    for g in grads:
        g = np.array(g)
        opt.apply_gradients([(g, p)])
        n = n + g * g
        acc, z = _state(opt)
        np.testing.assert_array_equal(acc, n)
        held = np.abs(z) <= l1
        assert (p[held] == 0).all()
        assert (np.sign(p[~held]) == -np.sign(z[~held])).all()
        root = 1.0 if power == 0.0 else n**-power
        quadratic = root / lr + 2 * l2
        expected = -(z - np.sign(z) * l1) / quadratic
        np.testing.assert_allclose(p[~held], expected[~held], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(grads=GRADS, start=st.floats(0.01, 5.0), lr=st.floats(0.01, 1.0))
def test_a_fixed_rate_ignores_the_accumulator(grads, start, lr):
    """learning_rate_power = 0: n^0 = 1, so the initial accumulator changes no bit."""
    runs = []
    for initial in (0.0, start):
        p = np.array([0.3, -0.2, 0.0, 1.0])
        opt = ol.Ftrl(learning_rate=lr, learning_rate_power=0.0, initial_accumulator_value=initial)
        for g in grads:
            opt.apply_gradients([(np.array(g), p)])
        runs.append(p)
    np.testing.assert_array_equal(runs[0], runs[1])


@settings(max_examples=40, deadline=None)
@given(grads=GRADS, lr=st.floats(0.01, 1.0))
def test_without_regularization_ftrl_is_adagrad(grads, lr):
    """McMahan et al. (2013): FTRL-Proximal with the rates lr / sqrt(n) and no regularization
    is online gradient descent with them: Adagrad (epsilon 0), from n = 0 and a fixed lr."""
    p_ftrl = np.array([0.3, -0.2, 0.0, 1.0])
    p_adagrad = p_ftrl.copy()
    ftrl = ol.Ftrl(learning_rate=lr, initial_accumulator_value=0.0)
    adagrad = ol.Adagrad(learning_rate=lr, initial_accumulator_value=0.0, epsilon=0.0)
    for g in grads:
        ftrl.apply_gradients([(np.array(g), p_ftrl)])
        adagrad.apply_gradients([(np.array(g), p_adagrad)])
        np.testing.assert_allclose(p_ftrl, p_adagrad, rtol=1e-9, atol=1e-12)


def test_keras_s_own_golden_values_with_float32_gradients():
    """keras/src/optimizers/ftrl_test.py: test_single_step and test_correctness_with_golden,
    their float64 gradients cast to the float32 variables (optimlab asks for the cast)."""
    p = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    ol.Ftrl(learning_rate=0.5).apply_gradients([(np.float32([1.0, 6.0, 7.0, 2.0]), p)])
    np.testing.assert_allclose(p, [0.2218, 1.3954, 2.3651, 2.8814], rtol=1e-4, atol=1e-4)

    opt = ol.Ftrl(
        learning_rate=0.05,
        learning_rate_power=-0.2,
        initial_accumulator_value=0.4,
        l1_regularization_strength=0.05,
        l2_regularization_strength=0.15,
        l2_shrinkage_regularization_strength=0.01,
        beta=0.3,
    )
    x = np.ones(10, np.float32)
    grads = np.arange(0.1, 1.1, 0.1).astype(np.float32)
    golden = [
        [0.0] * 10,
        [-0.0034, -0.0077, -0.0118, -0.0157, -0.0194, -0.023, -0.0263, -0.0294, -0.0325, -0.0354],
        [-0.0078, -0.0162, -0.0242, -0.0317, -0.0387, -0.0454, -0.0516, -0.0575, -0.0631, -0.0685],
        [-0.0121, -0.0246, -0.0363, -0.0472, -0.0573, -0.0668, -0.0757, -0.0842, -0.0922, -0.0999],
        [-0.0164, -0.0328, -0.0481, -0.0623, -0.0753, -0.0875, -0.099, -0.1098, -0.1201, -0.1299],
    ]
    opt.apply_gradients([(np.full(10, 0.01, np.float32), x)])
    for row in golden:
        np.testing.assert_allclose(x, row, rtol=5e-4, atol=5e-4)
        opt.apply_gradients([(grads, x)])


@pytest.mark.parametrize("power", [-0.5, 0.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_runs_the_fused_kernel_for_a_root_or_a_fixed_rate(power, dtype, monkeypatch):
    from optimlab.engines import fused

    calls = []
    original = fused.apply
    monkeypatch.setattr(fused, "apply", lambda *a, **k: calls.append(1) or original(*a, **k))
    p = np.ones(5, dtype)
    ol.Ftrl(0.1, learning_rate_power=power).apply_gradients([(np.full(5, 0.5, dtype), p)])
    assert calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_general_power_runs_on_the_reference_engine_only(dtype, monkeypatch):
    """NumPy's ``**`` (SIMD) and the C library's, which a kernel calls, differ in the last bit:
    engine="auto" takes the reference engine, with its numbers, also under Params.step."""
    from optimlab.engines import fused

    monkeypatch.setattr(fused, "apply", lambda *a, **k: pytest.fail("fused engine used"))
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(6).astype(dtype) for _ in range(5)]
    runs = {}
    for engine in ("auto", "reference"):
        params = ol.Params({"w": np.linspace(-1, 1, 6).astype(dtype)})
        opt = ol.Ftrl(0.1, learning_rate_power=-0.3, engine=engine)
        for g in grads:
            params.grads["w"][...] = g
            opt.step(params)
        runs[engine] = params["w"].copy()
    np.testing.assert_array_equal(runs["auto"], runs["reference"])


def test_engine_fused_refuses_a_general_power_and_the_refusal_changes_nothing():
    refuses(
        lambda: ol.Ftrl(learning_rate_power=-0.3, engine="fused"),
        exc=ValueError,
        says=("learning_rate_power", "-0.3", "-0.5", "engine='fused'"),
    )
    opt = ol.Ftrl(0.1, engine="fused")
    p = np.ones(3)
    opt.apply_gradients([(np.full(3, 0.5), p)])
    refuses(
        lambda: setattr(opt, "learning_rate_power", -1.0),
        world=(opt, p),
        exc=ValueError,
        says=("learning_rate_power", "-1.0"),
    )
    opt.learning_rate_power = 0.0  # a fixed rate runs fused
    assert opt.learning_rate_power == 0.0


REFUSALS = [
    ("learning_rate_power", 0.1, "<= 0"),
    ("initial_accumulator_value", -0.1, ">= 0"),
    ("l1_regularization_strength", -0.1, ">= 0"),
    ("l2_regularization_strength", -0.1, ">= 0"),
    ("l2_shrinkage_regularization_strength", -0.1, ">= 0"),
    ("beta", -1.0, ">= 0"),
]


@pytest.mark.parametrize("name,value,bound", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_the_argument_its_value_and_the_range(name, value, bound):
    refuses(lambda: ol.Ftrl(**{name: value}), exc=ValueError, says=(name, repr(value), bound))
    opt = ol.Ftrl(0.1)
    p = np.ones(2)
    opt.apply_gradients([(np.full(2, 0.5), p)])
    refuses(lambda: setattr(opt, name, value), world=(opt, p), exc=ValueError, says=(name,))


def test_state_defaults_and_names_are_keras_s():
    opt = ol.Ftrl()
    assert opt.name.startswith("ftrl")
    config = opt.get_config()
    assert {k: config[k] for k in ("learning_rate", "learning_rate_power", "beta")} == {
        "learning_rate": 0.001,
        "learning_rate_power": -0.5,
        "beta": 0.0,
    }
    p = np.ones((2, 3), np.float32)
    opt.build([p])
    acc, z = _state(opt)
    assert acc.dtype == np.float32 and (acc == np.float32(0.1)).all() and (z == 0).all()
    assert ol.presets.PEERS["Ftrl"] == {
        "keras": "keras.optimizers.Ftrl",
        "torch": None,
        "optax": None,
    }
    with pytest.raises(TypeError, match="learning_rate is required with preset='optax'"):
        ol.Ftrl(preset="optax")


def test_the_scalars_of_a_zero_learning_rate_are_ieee_s():
    """lr = 0 divides by zero, as in Keras: inf and NaN, never a ZeroDivisionError."""
    numbers = rule.scalars(
        1,
        0.0,
        learning_rate_power=0.0,
        l1_regularization_strength=0.0,
        l2_regularization_strength=0.0,
        l2_shrinkage_regularization_strength=0.0,
        beta=1.0,
    )
    assert numbers[2:4] == (False, True)  # a fixed rate
    assert np.isnan(numbers[4]) and np.isinf(numbers[5]) and np.isinf(numbers[8])


def test_the_ftrl_row_of_optimlab_differences_is_what_keras_does():
    """The keras row: keras.optimizers.Ftrl itself; the torch and optax rows (L2 decay):
    Keras's Ftrl fed the gradient g + wd * p."""
    import keras

    header, rows = differences.ftrl_weight_decay()
    by_preset = {row[0].split(":")[0]: row for row in rows}

    def keras_run(l2_form):
        v = keras.Variable(np.ones(1), dtype="float64")
        opt = keras.optimizers.Ftrl(learning_rate=0.1, weight_decay=None if l2_form else 0.1)
        out = []
        for _ in range(3):
            g = np.ones(1) + (0.1 * np.asarray(v.value) if l2_form else 0.0)
            opt.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
            out.append(float(np.asarray(v.value)[0]))
        return out

    assert [float(x) for x in by_preset["keras"][1:4]] == pytest.approx(keras_run(False), 1e-5)
    for name in ("torch", "optax"):
        assert [float(x) for x in by_preset[name][1:4]] == pytest.approx(keras_run(True), 1e-5)
    assert len(header) == 4


def test_a_learning_rate_of_zero_is_refused_as_a_number_and_as_a_schedule_s_value():
    """FTRL divides by the learning rate (Keras's parameters turn NaN at 0): 0 is refused at
    construction, by assignment and when a schedule returns it, and nothing changes."""
    refuses(lambda: ol.Ftrl(learning_rate=0.0), exc=ValueError, says=("learning_rate", "> 0"))
    opt = ol.Ftrl(learning_rate=lambda step: 0.1 if step < 2 else 0.0)
    p = np.ones(3)
    for _ in range(2):
        opt.apply_gradients([(np.full(3, 0.5), p)])
    refuses(
        lambda: opt.apply_gradients([(np.full(3, 0.5), p)]),
        world=(opt, p),
        exc=ValueError,
        says=("learning rate schedule", "returned 0.0", "> 0"),
    )
    refuses(lambda: setattr(opt, "learning_rate", 0), world=(opt, p), exc=ValueError)
    assert ol.SGD(learning_rate=0.0).learning_rate == 0.0  # the others take 0
