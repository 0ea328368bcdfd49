"""The measured examples of ``optimlab differences``, checked against the peers themselves.

The conformance grid shows that each preset reproduces its peer; this file checks the numbers
that ``optimlab differences`` (and the README) print, in particular the peer behaviours that no
preset copies (Keras's schedule and EMA at micro-steps, optax's Adadelta without a learning
rate), which the grid cannot cover.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimlab import differences

from . import peers  # noqa: F401  (sets the JAX/Keras environment before their import)

pytestmark = pytest.mark.conformance


def table(experiment):
    """{first column: [the other columns as floats where they parse]} of a difference."""
    header, rows = experiment()
    out = {}
    for row in rows:
        values = []
        for cell in row[1:]:
            try:
                values.append(float(cell))
            except ValueError:
                values.append(cell)
        out[row[0]] = values
    return out


def keras_sgd(**kwargs):
    import keras

    keras.config.set_floatx("float64")
    return keras.optimizers.SGD(**kwargs)


@pytest.fixture(autouse=True)
def _float64_keras():
    import keras

    previous = keras.config.floatx()
    yield
    keras.config.set_floatx(previous)


def test_keras_evaluates_the_schedule_at_micro_steps():
    import keras

    rows = table(differences.accumulation_schedule)
    schedule = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    opt = keras_sgd(learning_rate=schedule, gradient_accumulation_steps=2)
    p = keras.Variable(np.zeros(1), dtype="float64")
    trajectory = []
    for _ in range(6):
        opt.apply_gradients([(np.ones(1), p)])
        trajectory.append(float(p.numpy()[0]))
    sizes = [-trajectory[1], trajectory[1] - trajectory[3], trajectory[3] - trajectory[5]]
    keras_row = next(v for k, v in rows.items() if k.startswith("Keras"))
    np.testing.assert_allclose(sizes, keras_row, rtol=1e-5)
    np.testing.assert_allclose(sizes, [0.5, 0.125, 0.03125], rtol=1e-12)


def test_optax_multisteps_evaluates_the_schedule_at_real_updates():
    import jax.numpy as jnp
    import optax

    rows = table(differences.accumulation_schedule)
    schedule = optax.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
    tx = optax.MultiSteps(optax.sgd(schedule), every_k_schedule=2)
    p = jnp.zeros(1)
    state = tx.init(p)
    trajectory = []
    for _ in range(6):
        updates, state = tx.update(jnp.ones(1), state, p)
        p = optax.apply_updates(p, updates)
        trajectory.append(float(p[0]))
    sizes = [-trajectory[1], trajectory[1] - trajectory[3], trajectory[3] - trajectory[5]]
    ours = next(v for k, v in rows.items() if k.startswith("optimlab"))
    np.testing.assert_allclose(sizes, ours, rtol=1e-5)
    np.testing.assert_allclose(sizes, [1.0, 0.5, 0.25], rtol=1e-12)


def test_keras_updates_its_ema_at_micro_steps():
    import keras

    rows = table(differences.keras_ema_micro_steps)
    opt = keras_sgd(
        learning_rate=0.1, gradient_accumulation_steps=2, use_ema=True, ema_momentum=0.5
    )
    p = keras.Variable(np.zeros(1), dtype="float64")
    for _ in range(6):
        opt.apply_gradients([(np.ones(1), p)])
    average = float(opt._model_variables_moving_average[0].numpy()[0])
    keras_row = next(v for k, v in rows.items() if k.startswith("Keras"))
    assert keras_row[0] == pytest.approx(float(p.numpy()[0]), rel=1e-5)
    assert keras_row[1] == pytest.approx(average, rel=1e-5)
    ours = next(v for k, v in rows.items() if k.startswith("optimlab"))
    assert ours[1] != pytest.approx(average, rel=1e-3)  # a real difference


def test_torch_averaged_model_takes_one_ema_step_per_update():
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    rows = table(differences.keras_ema_micro_steps)
    module = torch.nn.Linear(1, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        module.weight.zero_()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(0.5))
    for call in range(6):
        if call % 2 == 1:  # the accumulated mean of two gradients of 1
            module.weight.grad = torch.ones_like(module.weight)
            opt.step()
            ema.update_parameters(module)
    ours = next(v for k, v in rows.items() if k.startswith("optimlab"))
    assert ours[1] == pytest.approx(float(ema.module.weight.item()), rel=1e-12)


def test_adam_epsilon_first_update_per_peer():
    import jax.numpy as jnp
    import keras
    import optax
    import torch

    rows = table(differences.adam_epsilon)
    keras.config.set_floatx("float64")
    opt = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-3)
    v = keras.Variable(np.zeros(1), dtype="float64")
    opt.apply_gradients([(np.full(1, 1e-4), v)])
    assert rows["keras"][0] == pytest.approx(float(v.numpy()[0]), rel=1e-5)

    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([t], lr=1e-3, eps=1e-3)
    t.grad = torch.full_like(t, 1e-4)
    topt.step()
    assert rows["torch"][0] == pytest.approx(float(t.item()), rel=1e-5)

    tx = optax.adam(1e-3, eps=1e-3)
    p = jnp.zeros(1)
    updates, _ = tx.update(jnp.full(1, 1e-4), tx.init(p), p)
    assert rows["optax"][0] == pytest.approx(float(updates[0]), rel=1e-5)


def test_torch_clips_a_little_at_the_threshold():
    import torch

    rows = {}
    header, raw = differences.clipping_formulas()
    for preset, g, clipped in raw:
        rows[(preset, float(g))] = float(clipped)
    for g in (3.0, 1.0):
        t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        t.grad = torch.full_like(t, g)
        torch.nn.utils.clip_grad_norm_([t], 1.0)
        assert rows[("torch", g)] == pytest.approx(float(t.grad.item()), rel=1e-14)
    assert rows[("torch", 1.0)] < 1.0


def test_torch_counts_steps_per_parameter_and_keras_globally():
    import keras
    import torch

    rows = table(differences.per_parameter_steps)
    a = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.1, eps=0.0)
    for step in range(6):
        a.grad = torch.ones_like(a)
        b.grad = torch.ones_like(b) if step == 5 else None  # b is frozen for 5 updates
        opt.step()
    assert rows["torch"][0] == pytest.approx(float(b.item()), rel=1e-12)

    keras.config.set_floatx("float64")
    ka = keras.Variable(np.zeros(1), dtype="float64")
    kb = keras.Variable(np.zeros(1), dtype="float64")
    kopt = keras.optimizers.Adam(learning_rate=0.1, epsilon=0.0)
    kopt.build([ka, kb])
    for _ in range(5):
        kopt.apply_gradients([(np.ones(1), ka)])
    kopt.apply_gradients([(np.ones(1), ka), (np.ones(1), kb)])
    assert rows["keras"][0] == pytest.approx(float(kb.numpy()[0]), rel=1e-5)


def test_optax_adadelta_without_learning_rate_ascends():
    import jax.numpy as jnp
    import optax

    tx = optax.adadelta()  # learning_rate=None: the update is not negated
    p = jnp.zeros(1)
    state = tx.init(p)
    for _ in range(3):
        updates, state = tx.update(jnp.ones(1), state, p)
        p = optax.apply_updates(p, updates)
    assert float(p[0]) > 0  # it climbs the gradient


def test_keras_rounds_beta_to_float32_in_the_bias_correction():
    import keras

    header, rows = differences.float32_powers()
    keras.config.set_floatx("float32")
    opt = keras.optimizers.Adam(learning_rate=1.0, epsilon=0.0)
    v = keras.Variable(np.zeros(1, dtype=np.float32), dtype="float32")
    opt.apply_gradients([(np.ones(1, dtype=np.float32), v)])
    # first step: m = 0.1, v = 0.001 (both in float32), update = factor * m / sqrt(v)
    m = np.float32(0.1)
    second = np.float32(0.001)
    factor = -float(v.numpy()[0]) * float(np.sqrt(second)) / float(m)
    keras_factor, exact_factor = float(rows[0][2]), float(rows[1][2])
    assert factor == pytest.approx(keras_factor, rel=1e-6)
    assert abs(factor / exact_factor - 1) > 3e-6


def test_asgd_step_size_one_update_late_and_rounded_as_torch_keeps_it():
    import torch

    header, rows = differences.asgd_step_size()
    late, current, rounded = ([float(x) for x in row[1:]] for row in rows[1:])
    assert late[:3] == current[:2] + [late[2]] and late[2] != current[2]  # the change at 3
    for default, expected in ((torch.float64, late), (torch.float32, rounded)):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(default)
        try:
            t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
            topt = torch.optim.ASGD([t], lr=differences.ASGD_PLAN[0], lambd=0.5, alpha=0.75)
            for k, lr in enumerate(differences.ASGD_PLAN):
                topt.param_groups[0]["lr"] = lr
                t.grad = torch.ones(1, dtype=torch.float64)
                topt.step()
                if k + 1 < len(expected):  # the eta of the next update, torch's state now
                    eta = float(topt.state[t]["eta"])
                    assert f"{eta:.10g}" == f"{expected[k + 1]:.10g}", (default, k)
        finally:
            torch.set_default_dtype(previous)
    assert max(abs(a / b - 1) for a, b in zip(rounded, late, strict=True)) > 1e-9


def test_rprop_clipping_and_optax_late_update_per_peer():
    import jax.numpy as jnp
    import optax
    import torch

    header, rows = differences.rprop_conventions()
    grads = [1.0, 1.0, -1.0, 1.0, 1.0]

    def cells(row):
        return [tuple(float(x.strip("()")) for x in cell.split()) for cell in row[1:]]

    ours = {row[0].split()[0]: cells(row) for row in rows}
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Rprop([t], lr=0.5, step_sizes=(1e-6, 0.2))
    for (p, step), g in zip(ours["torch"], grads, strict=True):
        t.grad = torch.full_like(t, g)
        topt.step()
        assert (p, step) == pytest.approx((float(t.item()), float(topt.state[t]["step_size"])))
    tx = optax.rprop(0.5, max_step_size=0.2)
    q = jnp.zeros(1)
    state = tx.init(q)
    for (p, step), g in zip(ours["optax"], grads, strict=True):
        updates, state = tx.update(jnp.full(1, g), state, q)
        q = optax.apply_updates(q, updates)
        assert (p, step) == pytest.approx((float(q[0]), float(state[0].step_sizes[0])))
    assert ours["optax"][0][0] == 0.0  # optax's first update moves nothing
