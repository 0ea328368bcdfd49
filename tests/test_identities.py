"""The lecture's identities, as tests: each holds exactly (or to rounding) for every input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import optimlab as ol
from optimlab.rules import sgd as sgd_rule

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
lrs = st.floats(1e-4, 1.0)
betas = st.floats(0.0, 0.99)


def grads_strategy(steps=20, shape=(4,)):
    return st.lists(arrays(np.float64, shape, elements=finite), min_size=1, max_size=steps)


def run(opt, grads, p0):
    p = p0.copy()
    for g in grads:
        opt.apply_gradients([(g, p)])
    return p


@settings(max_examples=40, deadline=None)
@given(grads=grads_strategy(), lr=lrs, preset=st.sampled_from(["keras", "torch"]))
def test_momentum_with_beta_zero_is_sgd(grads, lr, preset):
    """Lecture: 'beta = 0: momentum -> SGD'. The update is then p = p - lr * g exactly."""
    p0 = np.linspace(-1, 1, 4)
    plain = run(ol.SGD(lr, preset=preset), grads, p0)
    momentum0 = run(ol.SGD(lr, momentum=0.0, preset=preset), grads, p0)
    by_hand = p0 - lr * np.sum(grads, axis=0) if len(grads) == 1 else None
    np.testing.assert_array_equal(plain, momentum0)
    if by_hand is not None:
        np.testing.assert_allclose(plain, by_hand, rtol=0, atol=1e-15)
    # and a momentum buffer with beta -> 0 converges to it
    tiny = run(ol.SGD(lr, momentum=1e-12, preset=preset), grads, p0)
    np.testing.assert_allclose(tiny, plain, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(grads=grads_strategy(), lr=lrs, beta=betas)
def test_lecture_momentum_equals_keras_momentum(grads, lr, beta):
    """The lecture's v = beta*v + lr*g, w = w - v is Keras's v = beta*v - lr*g, p = p + v."""
    w = np.linspace(-1, 1, 4)
    v = np.zeros(4)
    for g in grads:
        w, v = sgd_rule.lecture_momentum_step(w, v, g, lr, beta)
    keras = run(ol.SGD(lr, momentum=beta), grads, np.linspace(-1, 1, 4)) if beta > 0 else None
    if keras is not None:
        np.testing.assert_allclose(keras, w, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(grads=grads_strategy(), lr=lrs, beta=st.floats(0.01, 0.99))
def test_lr_inside_equals_lr_outside_for_constant_lr(grads, lr, beta):
    """With a constant lr, Keras's buffer is -lr times PyTorch's: the same trajectory."""
    p0 = np.linspace(-1, 1, 4)
    for nesterov in (False, True):
        inside = run(ol.SGD(lr, momentum=beta, nesterov=nesterov), grads, p0)
        outside = run(
            ol.SGD(lr, momentum=beta, nesterov=nesterov, momentum_style="lr_outside"), grads, p0
        )
        np.testing.assert_allclose(inside, outside, rtol=1e-10, atol=1e-10)


def test_lr_inside_and_outside_differ_after_a_learning_rate_change():
    """peer-optimizers.md A.1, measured with torch and Keras: momentum 0.9, g = 1, lr dropped
    from 0.1 to 0.01 at step 5 (0-based: the 6th update)."""
    expected = {
        "lr_outside": {4: -1.31441, 5: -1.36127, 9: -1.59678},
        "lr_inside": {4: -1.31441, 5: -1.69297, 9: -2.95514},
    }
    for style, values in expected.items():
        opt = ol.SGD(0.1, momentum=0.9, momentum_style=style)
        p = np.zeros(1)
        for step in range(10):
            if step == 5:
                opt.learning_rate = 0.01
            opt.apply_gradients([(np.ones(1), p)])
            if step in values:
                assert p[0] == pytest.approx(values[step], abs=5e-6), (style, step)


def rosenbrock_grad(x):
    a, b = x
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


@pytest.mark.parametrize("lr,beta", [(1e-3, 0.9), (5e-4, 0.5), (2e-4, 0.95)])
def test_lookahead_nag_equals_keras_nesterov(lr, beta):
    """The lecture's NAG takes the gradient at w_la = w - beta*v; Keras stores p = w_la and
    takes the gradient at p. Under that change of variables the two give the same points."""
    w, v = np.array([-1.2, 1.0]), np.zeros(2)
    p = w.copy()
    opt = ol.SGD(lr, momentum=beta, nesterov=True)
    for _ in range(300):
        opt.apply_gradients([(rosenbrock_grad(p), p)])
        w, v = sgd_rule.lecture_nesterov_step(w, v, rosenbrock_grad, lr, beta)
        np.testing.assert_allclose(p, w - beta * v, rtol=1e-10, atol=1e-12)


def test_lookahead_nag_differs_from_plain_momentum():
    """The identity above is not vacuous: the look-ahead changes the path."""
    w, v = np.array([-1.2, 1.0]), np.zeros(2)
    u, vm = w.copy(), np.zeros(2)
    for _ in range(50):
        w, v = sgd_rule.lecture_nesterov_step(w, v, rosenbrock_grad, 1e-3, 0.9)
        u, vm = sgd_rule.lecture_momentum_step(u, vm, rosenbrock_grad(u), 1e-3, 0.9)
    assert np.max(np.abs(w - u)) > 1e-3


@settings(max_examples=60, deadline=None)
@given(
    g=st.floats(1e-2, 1e3) | st.floats(-1e3, -1e-2),
    lr=st.floats(1e-4, 1e-1),
    preset=st.sampled_from(["keras", "torch", "optax"]),
)
def test_adam_first_bias_corrected_step_has_size_lr(g, lr, preset):
    """Lecture: bias correction exists because m and v start at 0. With it, the first step is
    lr * g / (|g| + eps'), i.e. about lr whatever the gradient's scale (eps' = eps / sqrt(bc2)
    for Keras's epsilon-hat, eps otherwise)."""
    p = np.zeros(1)
    opt = ol.Adam(learning_rate=lr, preset=preset)
    opt.apply_gradients([(np.array([g]), p)])
    eps = opt.epsilon / np.sqrt(1 - opt.beta_2) if preset == "keras" else opt.epsilon
    assert p[0] == pytest.approx(-lr * g / (abs(g) + eps), rel=1e-12)
    assert abs(p[0]) == pytest.approx(lr, rel=1e-3)


def test_adam_first_step_without_bias_correction_is_too_large():
    """Without bias correction the first step is lr * (1-b1)/sqrt(1-b2) = 3.16 lr (b1=0.9,
    b2=0.999): the zero start inflates it."""
    p = np.zeros(1)
    ol.Adam(learning_rate=0.01, bias_correction=False, epsilon=0.0).apply_gradients(
        [(np.array([0.5]), p)]
    )
    assert p[0] == pytest.approx(-0.01 * 0.1 / np.sqrt(0.001), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(grads=grads_strategy(12), k=st.integers(2, 4))
def test_accumulation_equals_one_step_with_the_mean(grads, k):
    """gradient_accumulation_steps=k: every k-th call updates with the mean of k gradients."""
    p0 = np.linspace(-1, 1, 4)
    acc = run(ol.Adam(0.01, gradient_accumulation_steps=k), grads, p0)
    means = [np.mean(grads[i : i + k], axis=0) for i in range(0, len(grads) - k + 1, k)]
    ref = run(ol.Adam(0.01), means, p0) if means else p0
    np.testing.assert_allclose(acc, ref, rtol=1e-12, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(grads=grads_strategy(10), name=st.sampled_from(sorted(ol.OPTIMIZERS)))
def test_maximize_is_minimizing_the_negated_gradient(grads, name):
    p0 = np.linspace(-1, 1, 4)
    up = run(ol.get(name, learning_rate=0.01, maximize=True), grads, p0)
    down = run(ol.get(name, learning_rate=0.01), [-g for g in grads], p0)
    np.testing.assert_array_equal(up, down)


@settings(max_examples=30, deadline=None)
@given(grads=grads_strategy(10), wd=st.floats(0.0, 0.5))
def test_adamw_is_adam_with_decoupled_weight_decay(grads, wd):
    p0 = np.linspace(-1, 1, 4)
    a = run(ol.AdamW(0.01, weight_decay=wd), grads, p0)
    b = run(ol.Adam(0.01, weight_decay=wd, weight_decay_mode="decoupled"), grads, p0)
    np.testing.assert_array_equal(a, b)


@settings(max_examples=30, deadline=None)
@given(grads=grads_strategy(15, (3,)))
def test_adagrad_effective_learning_rate_never_grows(grads):
    """Adagrad's accumulator only grows, so lr / sqrt(G + eps) only falls (the lecture's
    'vanishing learning rate'); RMSprop's average can shrink again."""
    opt = ol.Adagrad(0.1)
    p = np.zeros(3)
    previous = np.full(3, np.inf)
    for g in grads:
        opt.apply_gradients([(g, p)])
        G = opt.state_dict()["slots"]["accumulator/0"]
        effective = 0.1 / np.sqrt(G + 1e-7)
        assert np.all(effective <= previous)
        previous = effective


@settings(max_examples=30, deadline=None)
@given(
    grads=grads_strategy(10),
    c=st.floats(0.1, 5.0),
    preset=st.sampled_from(["keras", "torch", "optax"]),
)
def test_global_clipnorm_bounds_the_norm(grads, c, preset):
    """After global norm clipping the SGD step has norm <= lr * c."""
    for g in grads:
        p = np.zeros(4)
        ol.SGD(1.0, global_clipnorm=c, preset=preset).apply_gradients([(g, p)])
        assert np.linalg.norm(p) <= c * (1 + 1e-12)
        if np.linalg.norm(g) <= c * 0.99:
            np.testing.assert_allclose(-p, g, rtol=1e-12, atol=1e-300)


def test_lion_moves_every_coordinate_by_exactly_lr():
    p = np.zeros(5)
    g = np.array([1e-8, -3.0, 2.0, -1e-3, 7.0])
    ol.Lion(0.01).apply_gradients([(g, p)])
    np.testing.assert_array_equal(p, -0.01 * np.sign(g))


def _momentum_sgd_with_bias_correction(grads, p0, lr, beta_1):
    """p = p - lr * m / (1 - beta_1^t), m the EMA of the gradients: RAdam's step while the
    variance of its adaptive learning rate is intractable."""
    p, m = p0.copy(), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        p = p - lr * m / (1 - beta_1**t)
    return p


@settings(max_examples=40, deadline=None)
@given(
    grads=grads_strategy(5),
    lr=lrs,
    beta_1=betas,
    preset=st.sampled_from(["keras", "torch", "optax"]),
)
def test_radam_is_bias_corrected_momentum_sgd_while_rho_t_is_below_the_threshold(
    grads, lr, beta_1, preset
):
    """With beta_2 = 0.999, rho_t < 5 for t <= 5 (4.996 at t = 5): the first five RAdam
    updates are momentum SGD on the bias-corrected first moment, whatever v holds."""
    p0 = np.linspace(-1, 1, 4)
    opt = ol.RAdam(lr, beta_1=beta_1, beta_2=0.999, preset=preset)
    radam = run(opt, grads, p0)
    expected = _momentum_sgd_with_bias_correction(grads, p0, lr, beta_1)
    np.testing.assert_allclose(radam, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(grads=grads_strategy(30), beta_2=st.floats(0.0, 0.59), lr=lrs)
def test_radam_never_rectifies_when_rho_inf_is_below_4(grads, beta_2, lr):
    """beta_2 < 0.6: rho_inf = 2 / (1 - beta_2) - 1 < 4 <= threshold, so every update is the
    bias-corrected momentum step."""
    p0 = np.linspace(-1, 1, 4)
    radam = run(ol.RAdam(lr, beta_2=beta_2, threshold=4.0), grads, p0)
    expected = _momentum_sgd_with_bias_correction(grads, p0, lr, 0.9)
    np.testing.assert_allclose(radam, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(
    grads=st.lists(arrays(np.float64, (4,), elements=st.floats(0.1, 10)), min_size=6, max_size=20),
    beta_2=st.floats(0.9, 0.999),
    form=st.sampled_from(["torch", "optax"]),
)
def test_a_rectified_radam_step_is_r_t_times_adams(grads, beta_2, form):
    """Once rho_t > 5, RAdam's update is Adam's (with the same epsilon placement) times the
    rectification term r_t in [0, 1]: both keep the same m and v."""
    from optimlab.rules import radam as radam_rule

    style = "hat" if form == "torch" else "paper"
    radam = ol.RAdam(0.01, beta_2=beta_2, preset=form)
    adam = ol.Adam(0.01, beta_2=beta_2, epsilon=1e-8, epsilon_style=style, preset=form)
    p, q = np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        before_p, before_q = p.copy(), q.copy()
        radam.apply_gradients([(g, p)])
        adam.apply_gradients([(g, q)])
        _, r = radam_rule.rectification(
            t, beta_2=beta_2, threshold=5.0, threshold_inclusive=form == "optax"
        )
        if r is None:
            continue
        assert 0.0 <= r <= 1.0
        np.testing.assert_allclose(p - before_p, r * (q - before_q), rtol=1e-9, atol=1e-17)
    assert r is not None  # the last steps were rectified


def test_radam_threshold_inclusive_decides_the_step_where_rho_t_equals_the_threshold():
    """torch rectifies when rho_t > 5, optax when rho_t >= threshold: with the threshold set
    to rho_6 itself, only the inclusive comparison rectifies the sixth update."""
    from optimlab.rules import radam as radam_rule

    rho_6, _ = radam_rule.rectification(6, beta_2=0.999, threshold=5.0, threshold_inclusive=False)
    grads = [np.array([1.0, -2.0, 0.5])] * 6
    ends = {}
    for inclusive in (False, True):
        opt = ol.RAdam(0.01, threshold=rho_6, threshold_inclusive=inclusive, preset="torch")
        ends[inclusive] = run(opt, grads, np.zeros(3))
    sgd = _momentum_sgd_with_bias_correction(grads, np.zeros(3), 0.01, 0.9)
    np.testing.assert_allclose(ends[False], sgd, rtol=1e-14)
    # the sixth step: lr * r_6 * sign(g) (r_6 = 0.026) rather than lr * g
    assert np.all(np.abs(ends[True] - sgd) > 1e-4)


def test_the_radam_difference_states_its_numbers():
    """``optimlab differences``: the numbers its RAdam text states, and its table's steps by
    hand (m_hat = g and v_hat = g^2 for a constant gradient)."""
    import math

    from optimlab import differences
    from optimlab.rules import radam as radam_rule

    (entry,) = [d for d in differences.DIFFERENCES if d.experiment is differences.radam_epsilon]
    rho_5, _ = radam_rule.rectification(5, beta_2=0.999, threshold=5.0, threshold_inclusive=True)
    rho_6, r_6 = radam_rule.rectification(6, beta_2=0.999, threshold=5.0, threshold_inclusive=False)
    sqrt_bc2 = math.sqrt(1 - 0.999**6)
    assert rho_5 < 5 < rho_6 and f"rho_6 = {rho_6:.2f}" in entry.explanation
    assert f"{1 / sqrt_bc2:.1f}x at step 6" in entry.explanation
    _, (torch_row, optax_row, keras_row) = entry.experiment()
    assert keras_row[1:] == torch_row[1:]
    assert torch_row[3] == optax_row[3] == "1e-06"  # step 5: lr * g
    lr = g = eps = 1e-3
    assert float(optax_row[4]) == pytest.approx(lr * r_6 * g / (g + eps), rel=1e-5)
    assert float(torch_row[4]) == pytest.approx(
        lr * r_6 * sqrt_bc2 * g / (sqrt_bc2 * g + eps), rel=1e-5
    )


# -- Rprop: only the signs of the gradients move it ------------------------------------------

# powers of two: every step size and every position is a dyadic number, so no rounding at all
DYADIC = dict(learning_rate=0.125, eta_minus=0.5, eta_plus=2.0, min_step_size=2.0**-20)


def _rprop_states(opt, grads, p0):
    """(p, step_size, prev) after each update."""
    p = p0.copy()
    out = []
    for g in grads:
        opt.apply_gradients([(g, p)])
        slots = opt.state_dict()["slots"]
        out.append((p.copy(), slots["step_size/0"].copy(), slots["prev/0"].copy()))
    return out


@settings(max_examples=60, deadline=None)
@given(grads=grads_strategy(25), preset=st.sampled_from(["keras", "torch"]))
def test_rprop_moves_every_coordinate_by_exactly_its_step_size(grads, preset):
    """Each update moves a coordinate by exactly its new step size against the gradient's sign,
    or not at all where the gradient is 0 or its sign flipped; the step size was multiplied by
    eta_plus (same sign), eta_minus (flipped) or 1 (a zero product), then clipped."""
    opt = ol.Rprop(max_step_size=16.0, preset=preset, **DYADIC)
    p = np.zeros(4)
    step, prev = np.full(4, DYADIC["learning_rate"]), np.zeros(4)
    for g, (p_new, step_new, prev_new) in zip(grads, _rprop_states(opt, grads, p), strict=True):
        s = np.sign(g * prev)
        factor = np.where(s > 0, 2.0, np.where(s < 0, 0.5, 1.0))
        np.testing.assert_array_equal(step_new, np.clip(step * factor, 2.0**-20, 16.0))
        moved = (s >= 0) & (g != 0)
        np.testing.assert_array_equal(p - p_new, np.where(moved, np.sign(g) * step_new, 0.0))
        np.testing.assert_array_equal(prev_new, np.where(s < 0, 0.0, g))
        p, step, prev = p_new, step_new, prev_new


# gradients whose products with each other, scaled or not, neither underflow nor overflow
signed = st.one_of(st.just(0.0), st.floats(1e-3, 10.0), st.floats(-10.0, -1e-3))


@settings(max_examples=30, deadline=None)
@given(
    grads=st.lists(arrays(np.float64, (4,), elements=signed), min_size=1, max_size=20),
    scale=st.floats(1e-3, 1e3),
    preset=st.sampled_from(["keras", "torch", "optax"]),
)
def test_rprop_sees_only_the_signs_of_the_gradients(grads, scale, preset):
    """Scaling every gradient by c > 0 changes nothing, bit for bit; a change of the learning
    rate after the first update changes nothing either (it is the initial step size only)."""
    p0 = np.linspace(-1.0, 1.0, 4)
    plain = run(ol.Rprop(0.01, preset=preset), grads, p0)
    scaled = run(ol.Rprop(0.01, preset=preset), [scale * g for g in grads], p0)
    np.testing.assert_array_equal(plain, scaled)
    opt = ol.Rprop(0.01, preset=preset)
    p = p0.copy()
    for k, g in enumerate(grads):
        opt.apply_gradients([(g, p)])
        opt.learning_rate = 0.5 / (k + 1)
    np.testing.assert_array_equal(plain, p)


@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
def test_rprop_step_size_grows_by_eta_plus_until_the_max(preset):
    """A gradient that keeps its sign: the step size is lr, then grows by eta_plus every update
    until it reaches max_step_size, and stays there; the parameter moves by it each time (the
    optax preset: by the previous update's, optax 0.2.8's one-step delay)."""
    opt = ol.Rprop(learning_rate=0.01, max_step_size=0.05, preset=preset)
    states = _rprop_states(opt, [np.array([3.0, -0.5])] * 15, np.zeros(2))
    expected = [0.01]
    for _ in range(14):
        expected.append(min(expected[-1] * 1.2, 0.05))
    assert [float(step[0]) for _, step, _ in states] == expected
    assert all(float(step[1]) == e for (_, step, _), e in zip(states, expected, strict=True))
    assert expected[-1] == 0.05 and expected[8] < 0.05 < expected[8] * 1.2
    moves = np.diff([np.zeros(2)] + [p for p, _, _ in states], axis=0)
    applied = [0.0] + expected[:-1] if preset == "optax" else expected
    np.testing.assert_allclose(moves[:, 0], -np.array(applied), rtol=1e-12, atol=0)
    np.testing.assert_allclose(moves[:, 1], np.array(applied), rtol=1e-12, atol=0)


def test_rprop_a_sign_flip_shrinks_the_step_and_skips_one_move():
    """g = 1, 1, -1, -1, -1: the flip shrinks the step by eta_minus and does not move (and
    forgets the gradient, so the next product is 0: the step is held and used), then it grows
    again."""
    opt = ol.Rprop(**DYADIC)
    grads = [np.array([g]) for g in (1.0, 1.0, -1.0, -1.0, -1.0)]
    states = _rprop_states(opt, grads, np.zeros(1))
    assert [float(s[0]) for _, s, _ in states] == [0.125, 0.25, 0.125, 0.125, 0.25]
    assert [float(p[0]) for p, _, _ in states] == [-0.125, -0.375, -0.375, -0.25, 0.0]
    assert [float(q[0]) for _, _, q in states] == [1.0, 1.0, 0.0, -1.0, -1.0]


def test_rprop_torch_clips_the_learning_rate_at_once_optax_when_it_moves():
    """lr above max_step_size: PyTorch's first step is clipped to the max, optax's is the lr
    itself (its step sizes are clipped only where they change)."""
    g = [np.array([1.0])] * 3
    torch_steps = [
        float(s[0])
        for _, s, _ in _rprop_states(
            ol.Rprop(0.5, max_step_size=0.1, preset="torch"), g, np.zeros(1)
        )
    ]
    optax_steps = [
        float(s[0])
        for _, s, _ in _rprop_states(
            ol.Rprop(0.5, max_step_size=0.1, preset="optax"), g, np.zeros(1)
        )
    ]
    assert torch_steps == [0.1, 0.1, 0.1]
    assert optax_steps == [0.5, 0.1, 0.1]
