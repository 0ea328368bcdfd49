"""The Keras rows of ``optimlab differences`` against Keras 3 itself (JAX backend, 64-bit mode
on, as tests/conftest.py configures it): every "Keras" cell is what Keras does, every optimlab
cell differs from it, and the float32 schedule figures are Keras's own float32 values.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from optimlab import differences, keras_differences, schedules
from optimlab.keras_differences import API_ROWS, FLOAT32_EXAMPLE, FLOAT32_STEPS

from . import registry

keras = pytest.importorskip("keras")
KS = keras.optimizers.schedules
pytestmark = pytest.mark.conformance


@pytest.fixture(autouse=True)
def _keras_floatx():
    previous = keras.config.floatx()
    keras.config.set_floatx("float32")  # Keras's default
    yield
    keras.config.set_floatx(previous)


def table(experiment):
    header, rows = experiment()
    return {row[0]: row[1:] for row in rows}


# -- the schedules in float32 ----------------------------------------------------------------


def keras_float32(schedule_cls, *args, **kwargs):
    """A Keras schedule in Keras's default float32 arithmetic: float32 arguments make every
    tensor float32 even with JAX's 64-bit mode on (it is Python floats that become float64)."""
    args = [np.float32(a) if isinstance(a, float) else a for a in args]
    kwargs = {k: np.float32(v) if isinstance(v, float) else v for k, v in kwargs.items()}
    return schedule_cls(*args, **kwargs)


def values(schedule, steps):
    return np.array([float(schedule(k)) for k in steps])


KERAS_EXAMPLE = dict(warmup_target=1e-2, warmup_steps=100)


def test_the_table_shows_keras_float32_values():
    rows = table(keras_differences.float32_schedules)
    ref = keras_float32(KS.CosineDecay, 0.0, 900, **KERAS_EXAMPLE)
    assert ref(0).dtype == "float32"
    assert (FLOAT32_EXAMPLE.warmup_target, FLOAT32_EXAMPLE.warmup_steps) == (1e-2, 100)
    keras_lr = values(ref, FLOAT32_STEPS)
    peak = 1e-2
    shown = np.array([float(x) for x in rows["lr, Keras (float32)"]])
    np.testing.assert_allclose(shown, keras_lr, rtol=0, atol=1e-5 * peak)  # to float32 noise
    np.testing.assert_allclose(shown[:3], keras_lr[:3], rtol=1e-5)  # no cancellation yet
    ours = np.array([FLOAT32_EXAMPLE(k) for k in FLOAT32_STEPS])
    np.testing.assert_allclose([float(x) for x in rows[list(rows)[0]]], ours, rtol=1e-8)
    shown_rel = [float(x) for x in rows["relative difference"]]
    assert shown_rel[1] < 1e-6 and shown_rel[-1] > 1e-4
    # the difference is real: ~1e-7 relative mid-run, far beyond near the end
    rel = np.abs(keras_lr / ours - 1)
    assert rel[1] < 1e-6
    near_end = values(ref, range(990, 1000)) / values(FLOAT32_EXAMPLE, range(990, 1000))
    assert np.max(np.abs(near_end - 1)) > 1e-4


def test_the_float32_formula_follows_keras_at_every_step():
    for args, kwargs, peak in [
        ((0.0, 900), KERAS_EXAMPLE, 1e-2),
        ((0.1, 50), {"alpha": 0.1}, 0.1),
        ((0.02, 30), {"warmup_target": 0.1, "warmup_steps": 7, "alpha": 0.2}, 0.1),
    ]:
        ref = keras_float32(KS.CosineDecay, *args, **kwargs)
        ours = schedules.CosineDecay(*args, **kwargs)
        end = ours.decay_steps + ours.warmup_steps
        steps = sorted({*range(0, end, max(1, end // 8)), *range(end - 4, end + 2)})
        emulated = [keras_differences.keras_float32_cosine_decay(ours, k) for k in steps]
        np.testing.assert_allclose(emulated, values(ref, steps), rtol=0, atol=1e-5 * peak)
        # float32 arithmetic, not float64 rounded at the end (CPU-independent: IEEE float32
        # operations and a double-precision cos)
        every = range(end + 1)
        f32 = np.float32([keras_differences.keras_float32_cosine_decay(ours, k) for k in every])
        rounded = np.float32([ours(k) for k in every])
        assert np.mean(f32 != rounded) > 0.2


CLASSES = [
    (schedules.ExponentialDecay, KS.ExponentialDecay, (0.1, 10, 0.5), {}),
    (schedules.ExponentialDecay, KS.ExponentialDecay, (0.1, 7, 0.9), {"staircase": True}),
    (schedules.PiecewiseConstantDecay, KS.PiecewiseConstantDecay, ([10, 20], [1.0, 0.5, 0.1]), {}),
    (schedules.PolynomialDecay, KS.PolynomialDecay, (0.1, 100, 0.001), {"power": 2.0}),
    (schedules.PolynomialDecay, KS.PolynomialDecay, (0.1, 10), {"power": 0.5, "cycle": True}),
    (schedules.InverseTimeDecay, KS.InverseTimeDecay, (0.1, 10, 0.5), {}),
]
STEPS = [0, 1, 5, 7, 9, 10, 11, 14, 20, 21, 50, 99, 100, 101, 299]


@pytest.mark.parametrize(("ours", "theirs", "args", "kwargs"), CLASSES)
def test_with_64_bit_jax_four_classes_are_float64_like_optimlab(ours, theirs, args, kwargs):
    """The explanation's claim: with x64 on and floatx float32, Python floats make these four
    float64 in Keras, equal to optimlab's values; in float32 they differ."""
    ref = theirs(*args, **kwargs)
    assert ref(3).dtype == "float64"
    mine = ours(*args, **kwargs)
    np.testing.assert_allclose(values(ref, STEPS), values(mine, STEPS), rtol=1e-12)
    f32 = values(keras_float32(theirs, *args, **kwargs), STEPS)
    np.testing.assert_allclose(f32, values(mine, STEPS), rtol=1e-5)
    assert ours is schedules.PiecewiseConstantDecay or np.any(f32 != values(mine, STEPS))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (schedules.CosineDecay(0.1, 100), KS.CosineDecay(0.1, 100)),
        (
            schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5),
            KS.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5),
        ),
    ],
)
def test_with_64_bit_jax_the_cosines_stay_float32(ours, theirs):
    steps = range(0, 100, 9)
    diff = np.abs(values(theirs, steps) - values(ours, steps))
    assert np.max(diff) <= 1e-6 * 0.1 and np.max(diff) > 1e-12  # float32 cos, not float64


# -- the API table ---------------------------------------------------------------------------


def _keras_all_none_then_built():
    opt = keras.optimizers.SGD(learning_rate=1.0)
    try:
        opt.apply_gradients([(None, keras.Variable(np.zeros(2, np.float32)))])
    except ValueError as error:
        assert str(error) == "No gradients provided for any variable."
    return opt.built


def _keras_gradient_of_another_dtype():
    v = keras.Variable(np.zeros(2, np.float32))
    keras.optimizers.SGD(learning_rate=1.0).apply_gradients([(np.ones(2, np.float64), v)])
    assert v.dtype == "float32" and np.all(v.numpy() == -1.0)  # cast, then applied


def _keras_message(fn):
    try:
        fn()
    except ValueError as error:
        return str(error)


def _keras_key_not_a_regex():
    table = keras.optimizers.OptimizerMap(keras.optimizers.SGD())
    table["dense/("] = keras.optimizers.Adam()
    with pytest.raises(re.error):  # the why: the next lookup of another name fails
        table["dense/kernel"]


def _keras_built_twice():
    multi = keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(keras.optimizers.SGD()))
    multi.build([keras.Variable(np.zeros(2))])
    multi.build([keras.Variable(np.zeros(3))])
    assert len(multi._trainable_variables_indices) == 1  # the second build was ignored


KERAS = {
    "wrapper: key not a regex": _keras_key_not_a_regex,
    "wrapper: no default": lambda: keras.optimizers.OptimizerMap(None),
    "wrapper: an optimizer as the map": lambda: keras.optimizers.MultiOptimizer(
        keras.optimizers.SGD()
    ).build([keras.Variable(np.zeros(2))]),
    "wrapper: nested loss scale": lambda: keras.optimizers.LossScaleOptimizer(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
    ),
    "wrapper: built twice": _keras_built_twice,
    "negative step": lambda: float(KS.PiecewiseConstantDecay([10], [1.0, 0.5])(-999)),
    "build before raising": _keras_all_none_then_built,
    "gradient dtype": _keras_gradient_of_another_dtype,
    "exclude by name": lambda: keras.optimizers.SGD(weight_decay=0.1).exclude_from_weight_decay(
        var_names=["bias"]
    ),
    "error messages": lambda: _keras_message(lambda: keras.optimizers.SGD(momentum=2.0)),
    "range: beta": lambda: keras.optimizers.Adam(beta_1=1.5),
    "range: epsilon": lambda: keras.optimizers.Adam(epsilon=-1.0),
    "range: learning rate": lambda: keras.optimizers.SGD(learning_rate=-0.1),
    "range: momentum 1": lambda: keras.optimizers.SGD(momentum=1.0),
    "range: clipnorm": lambda: keras.optimizers.SGD(clipnorm=-1.0),
    "range: weight decay": lambda: keras.optimizers.SGD(weight_decay=-1.0),
    "range: Ftrl beta": lambda: keras.optimizers.Ftrl(beta=-1.0),
    "range: Ftrl learning rate 0": lambda: keras.optimizers.Ftrl(learning_rate=0.0),
    "integer learning rate": lambda: keras.optimizers.SGD(learning_rate=1),
    "integer momentum": lambda: keras.optimizers.SGD(momentum=0),
    "accumulation of 1": lambda: keras.optimizers.SGD(gradient_accumulation_steps=1),
    "restarts t_mul < 1": lambda: KS.CosineDecayRestarts(1.0, 10, t_mul=0.5),
    "warmup without target": lambda: KS.CosineDecay(0.1, 10, warmup_steps=5),
}


def keras_outcome(fn):
    """What a Keras call does, in the words of ``keras_differences.outcome``."""
    try:
        value = fn()
    except Exception as error:  # noqa: BLE001 - the outcome is the point
        return type(error).__name__
    kinds = (keras.optimizers.Optimizer, KS.LearningRateSchedule, keras.optimizers.OptimizerMap)
    if value is None or isinstance(value, kinds):
        return "accepted"
    return value if isinstance(value, str) else repr(value)


def test_every_row_has_a_keras_check_and_the_registry_names_rows():
    assert {row.topic for row in API_ROWS} == set(KERAS)
    assert len({row.topic for row in API_ROWS}) == len(API_ROWS)
    assert {d.row for d in registry.DIFFERENCES.values()} <= set(KERAS)


@pytest.mark.parametrize("row", API_ROWS, ids=[row.topic for row in API_ROWS])
def test_keras_does_what_the_row_says_and_optimlab_does_not(row):
    assert keras_outcome(KERAS[row.topic]) == row.keras
    assert row.optimlab() != row.keras


def test_the_whys_that_are_claims_about_keras():
    # clipnorm < 0: Keras does not clip
    v = keras.Variable(np.zeros(2, np.float32))
    keras.optimizers.SGD(learning_rate=1.0, clipnorm=-1.0).apply_gradients(
        [(np.full(2, 100.0, np.float32), v)]
    )
    assert np.all(v.numpy() == -100.0)
    # Ftrl's beta < 0: with n = 1 and beta = -1 the quadratic (sqrt(n) + beta) / lr is 0
    v = keras.Variable(np.zeros(1, np.float32))
    keras.optimizers.Ftrl(learning_rate=0.1, beta=-1.0, initial_accumulator_value=0.0).apply(
        [np.ones(1, np.float32)], [v]
    )
    assert np.isneginf(v.numpy()).all()
    # Ftrl's learning rate 0: sigma and the quadratic divide by it, NaN parameters
    v = keras.Variable(np.ones(2, np.float32))
    keras.optimizers.Ftrl(learning_rate=0.0).apply([np.ones(2, np.float32)], [v])
    assert np.isnan(v.numpy()).all()
    # warmup_steps without warmup_target: no warmup
    assert float(KS.CosineDecay(0.1, 10, warmup_steps=5)(0)) == pytest.approx(0.1, rel=1e-6)
    # t_mul < 1: NaN once the periods (10 + 5 + 2.5 + ... = 20 steps) run out
    assert np.isnan(float(KS.CosineDecayRestarts(1.0, 10, t_mul=0.5)(20)))


def test_the_rows_render_in_optimlab_differences():
    text = differences.render(markdown=True)
    assert "### The Keras API on NumPy arrays" in text
    assert "### Keras's schedules in float32" in text
    for row in API_ROWS:
        assert row.call.replace("|", "\\|") in text
