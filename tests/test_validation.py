"""Every hyperparameter is checked up front; every bad input to a step is rejected before any
parameter or state changes."""

import re

import numpy as np
import pytest

import optimlab as ol

# (class, keyword arguments, exception, regex the message must match)
BAD_ARGUMENTS = [
    (ol.SGD, dict(learning_rate=-0.1), ValueError, r"learning_rate must be a float >= 0, got -0.1"),
    (ol.SGD, dict(learning_rate=float("nan")), ValueError, r"learning_rate must be a finite"),
    (ol.SGD, dict(learning_rate="fast"), TypeError, r"learning_rate must be a float"),
    (ol.SGD, dict(learning_rate=True), TypeError, r"learning_rate must be a float"),
    (ol.SGD, dict(momentum=1.0), ValueError, r"momentum must be a float in \[0, 1\), got 1.0"),
    (ol.SGD, dict(momentum=-0.5), ValueError, r"momentum must be a float in \[0, 1\)"),
    (
        ol.SGD,
        dict(nesterov=True, preset="torch"),
        ValueError,
        r"Nesterov momentum requires a momentum and zero dampening \(torch.optim.SGD\): "
        r"nesterov=True needs momentum > 0 and dampening=0, got momentum=0.0, dampening=0.0",
    ),
    (ol.SGD, dict(nesterov=1), TypeError, r"nesterov must be True or False, got 1"),
    (
        ol.SGD,
        dict(momentum=0.9, nesterov=True, dampening=0.1),
        ValueError,
        r"nesterov=True requires dampening=0",
    ),
    (
        ol.SGD,
        dict(momentum_style="inside"),
        ValueError,
        r"momentum_style must be one of 'lr_inside', 'lr_outside', got 'inside'",
    ),
    (ol.Adam, dict(beta_1=1.0), ValueError, r"beta_1 must be a float in \[0, 1\), got 1.0"),
    (ol.Adam, dict(beta_2=1.5), ValueError, r"beta_2 must be a float in \[0, 1\), got 1.5"),
    (ol.Adam, dict(beta_2=-0.1), ValueError, r"beta_2 must be a float in \[0, 1\)"),
    (ol.Adam, dict(epsilon=-1e-8), ValueError, r"epsilon must be a float >= 0"),
    (ol.Adam, dict(epsilon_style="tf"), ValueError, r"epsilon_style must be one of 'hat', 'paper'"),
    (ol.Adam, dict(amsgrad="yes"), TypeError, r"amsgrad must be True or False"),
    (ol.Adam, dict(preset="tf"), ValueError, r"preset must be one of 'keras', 'torch', 'optax'"),
    (ol.Adam, dict(preset="optax"), TypeError, r"learning_rate is required with preset='optax'"),
    (ol.Adam, dict(betas=(0.9, 0.99)), TypeError, r"unexpected keyword argument\(s\) 'betas'"),
    (ol.AdamW, dict(weight_decay=None), ValueError, r"weight_decay must be a float >= 0 for AdamW"),
    (ol.AdamW, dict(weight_decay_mode="l2"), ValueError, r"AdamW applies decoupled"),
    (
        ol.Adagrad,
        dict(initial_accumulator_value=-1),
        ValueError,
        r"initial_accumulator_value must be a float >= 0",
    ),
    (ol.Adagrad, dict(lr_decay=-0.1), ValueError, r"lr_decay must be a float >= 0"),
    (ol.RMSprop, dict(rho=1.0), ValueError, r"rho must be a float in \[0, 1\)"),
    (ol.RMSprop, dict(centered=None), TypeError, r"centered must be True or False"),
    (ol.Nadam, dict(momentum_decay=-1.0), ValueError, r"momentum_decay must be a float >= 0"),
    (ol.Adadelta, dict(rho=2), ValueError, r"rho must be a float in \[0, 1\), got 2"),
    (ol.Lion, dict(beta_1=1.1), ValueError, r"beta_1 must be a float in \(0, 1\], got 1.1"),
    (ol.Lion, dict(beta_1=0.0), ValueError, r"beta_1 must be a float in \(0, 1\], got 0.0"),
    (
        ol.Lion,
        dict(beta_1=-0.1, preset="optax", learning_rate=0.1),
        ValueError,
        r"beta_1 must be a float in \[0, 1\], got -0.1",
    ),
    (ol.Rprop, dict(eta_minus=1.0), ValueError, r"eta_minus must be a float in \(0, 1\), got 1.0"),
    (ol.Rprop, dict(eta_plus=1), ValueError, r"eta_plus must be a float > 1, got 1"),
    (ol.Rprop, dict(min_step_size=0.0), ValueError, r"min_step_size must be a float > 0, got 0.0"),
    (
        ol.Rprop,
        dict(min_step_size=1.0, max_step_size=0.5),
        ValueError,
        r"min_step_size must be <= max_step_size .*got min_step_size=1.0, max_step_size=0.5",
    ),
    (
        ol.Rprop,
        dict(compare_with="gradient", preset="optax", learning_rate=0.1),
        ValueError,
        r"delayed_update=True .* compare_with='update', got compare_with='gradient'",
    ),
    (ol.Rprop, dict(compare_with="grad"), ValueError, r"compare_with must be one of 'gradient'"),
    (ol.Adam, dict(weight_decay=-0.1), ValueError, r"weight_decay must be a float >= 0"),
    (ol.Adam, dict(weight_decay_mode="L2"), ValueError, r"weight_decay_mode must be one of"),
    (ol.Adam, dict(clipnorm=0), ValueError, r"clipnorm must be a float > 0, got 0"),
    (ol.Adam, dict(clipvalue=-1.0), ValueError, r"clipvalue must be a float > 0"),
    (
        ol.Adam,
        dict(clipnorm=1.0, clipvalue=1.0),
        ValueError,
        r"at most one of clipnorm, clipvalue, global_clipnorm",
    ),
    (ol.Adam, dict(ema_momentum=1.5), ValueError, r"ema_momentum must be a float in \[0, 1\]"),
    (ol.Adam, dict(use_ema="no"), TypeError, r"use_ema must be True or False"),
    (
        ol.Adam,
        dict(ema_overwrite_frequency=0),
        ValueError,
        r"ema_overwrite_frequency must be an integer in \[1, 2\*\*63 - 1\], got 0",
    ),
    (
        ol.Adam,
        dict(gradient_accumulation_steps=2.5),
        ValueError,
        r"gradient_accumulation_steps must be an integer in \[1, 2\*\*63 - 1\], got 2.5",
    ),
    (
        ol.Adam,
        dict(gradient_accumulation_steps=0),
        ValueError,
        r"gradient_accumulation_steps must be an integer in \[1, 2\*\*63 - 1\], got 0",
    ),
    (ol.Adam, dict(loss_scale_factor=0.0), ValueError, r"loss_scale_factor must be a float > 0"),
    (
        ol.Adam,
        dict(nan_policy="ignore"),
        ValueError,
        r"nan_policy must be one of 'raise', 'skip', 'propagate', got 'ignore'",
    ),
    (ol.Adam, dict(maximize=None), TypeError, r"maximize must be True or False"),
]


@pytest.mark.parametrize(
    "cls,kwargs,exc,pattern",
    BAD_ARGUMENTS,
    ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _, _ in BAD_ARGUMENTS],
)
def test_bad_hyperparameters_are_rejected_with_name_value_and_range(cls, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cls(**kwargs)


def test_ints_are_accepted_where_floats_are_meant():
    opt = ol.SGD(learning_rate=1, momentum=0)
    assert opt.learning_rate == 1.0 and isinstance(opt.learning_rate, float)
    assert isinstance(opt.momentum, float)
    assert ol.Adam(epsilon=0, beta_1=0).beta_1 == 0.0
    assert ol.Adam(gradient_accumulation_steps=4.0).gradient_accumulation_steps == 4


def test_setting_a_hyperparameter_later_is_validated_too():
    opt = ol.Adam()
    with pytest.raises(ValueError, match=r"beta_1 must be a float in \[0, 1\), got 2"):
        opt.beta_1 = 2
    opt.beta_1 = 0.5
    assert opt.beta_1 == 0.5
    with pytest.raises(ValueError, match=r"learning_rate must be a float >= 0"):
        opt.learning_rate = -1
    opt = ol.SGD(0.1, momentum=0.9, nesterov=True, preset="torch")
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum"):
        opt.momentum = 0.0
    assert opt.momentum == 0.9
    opt = ol.Lion()
    with pytest.raises(ValueError, match=r"beta_1 must be a float in \(0, 1\], got 0"):
        opt.beta_1 = 0
    assert opt.beta_1 == 0.9


def test_structural_options_cannot_change_after_build():
    opt = ol.Adam()
    p = np.zeros(3)
    opt.apply_gradients([(np.ones(3), p)])
    with pytest.raises(ValueError, match="amsgrad cannot change .* after the optimizer is built"):
        opt.amsgrad = True
    opt2 = ol.SGD(0.1, momentum=0.9)
    opt2.apply_gradients([(np.ones(3), p)])
    opt2.momentum = 0.5  # still momentum: fine
    with pytest.raises(ValueError, match="momentum cannot change"):
        opt2.momentum = 0.0


def snapshot(opt, params):
    sd = opt.state_dict()
    return [p.copy() for p in params], sd


def assert_unchanged(opt, params, before):
    old_params, old_state = before
    for a, b in zip(params, old_params, strict=True):
        np.testing.assert_array_equal(a, b)
    new_state = opt.state_dict()
    assert new_state["iterations"] == old_state["iterations"]
    assert new_state["skipped_steps"] == old_state["skipped_steps"]
    for key, value in old_state["slots"].items():
        np.testing.assert_array_equal(new_state["slots"][key], value)


def make():
    params = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    opt = ol.Adam(0.1, amsgrad=True)
    opt.apply_gradients(zip([np.ones((2, 3)), np.ones(4)], params, strict=True))
    return opt, params


BAD_STEPS = [
    (
        "wrong shape",
        lambda p: [np.ones((3, 2)), np.ones(4)],
        ValueError,
        r"gradient 0 has shape \(3, 2\) but its parameter has shape \(2, 3\)",
    ),
    (
        "wrong dtype",
        lambda p: [np.ones((2, 3), np.float32), np.ones(4)],
        TypeError,
        r"gradient 0 has dtype float32 but its parameter has float64",
    ),
    (
        "nan",
        lambda p: [np.ones((2, 3)), np.array([1, np.nan, 1, 1])],
        FloatingPointError,
        r"gradient 1 has 1 non-finite value\(s\) .* nothing was changed",
    ),
    (
        "inf",
        lambda p: [np.full((2, 3), np.inf), np.ones(4)],
        FloatingPointError,
        r"gradient 0 has 6 non-finite value\(s\)",
    ),
    (
        "not numbers",
        lambda p: [np.ones((2, 3)), "abc"],
        TypeError,
        r"gradient 1 must be an array of numbers",
    ),
]


@pytest.mark.parametrize("name,grads,exc,pattern", BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_bad_gradients_change_nothing(name, grads, exc, pattern):
    opt, params = make()
    before = snapshot(opt, params)
    with pytest.raises(exc, match=pattern):
        opt.apply_gradients(zip(grads(params), params, strict=True))
    assert_unchanged(opt, params, before)


def test_gradient_count_must_match_parameter_count():
    opt, params = make()
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match="got 1 gradients for 2 parameters"):
        opt.apply([np.ones((2, 3))], params)
    assert_unchanged(opt, params, before)


def test_parameters_must_be_writable_float_arrays():
    opt = ol.SGD()
    with pytest.raises(TypeError, match="parameter 0 must be a NumPy array"):
        opt.apply_gradients([(np.ones(2), [0.0, 1.0])])
    with pytest.raises(
        TypeError, match="parameter 0 must have dtype float32 or float64, got int64"
    ):
        opt.apply_gradients([(np.ones(2), np.zeros(2, dtype=np.int64))])
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="parameter 0 is read-only"):
        opt.apply_gradients([(np.ones(2), ro)])
    p = np.zeros(2)
    with pytest.raises(ValueError, match="parameter 1 appears twice"):
        opt.apply_gradients([(np.ones(2), p), (np.ones(2), p)])
    assert not opt.built


def test_unknown_parameter_after_build_is_rejected():
    opt, params = make()
    with pytest.raises(ValueError, match="is not one of the 2 parameters"):
        opt.apply_gradients([(np.ones(3), np.zeros(3))])


def test_schedule_returning_a_bad_learning_rate_changes_nothing():
    opt, params = make()
    before = snapshot(opt, params)
    opt.learning_rate = lambda step: -1.0
    with pytest.raises(ValueError, match=r"returned -1.0 at step 1; it must return a finite"):
        opt.apply_gradients(zip([np.ones((2, 3)), np.ones(4)], params, strict=True))
    assert_unchanged(opt, params, before)


def test_nan_policy_skip_skips_and_counts():
    params = [np.zeros(3)]
    opt = ol.Adam(0.1, nan_policy="skip")
    opt.apply_gradients([(np.ones(3), params[0])])
    before = snapshot(opt, params)
    opt.apply_gradients([(np.array([1.0, np.nan, 0.0]), params[0])])
    assert opt.skipped_steps == 1 and opt.iterations == 1
    before[1]["skipped_steps"] = 1
    assert_unchanged(opt, params, before)


def test_nan_policy_propagate_does_what_the_peers_do():
    p = np.zeros(3)
    ol.SGD(0.1, nan_policy="propagate").apply_gradients([(np.array([1.0, np.nan, 0.0]), p)])
    assert np.isnan(p[1]) and p[0] == -0.1 and p[2] == 0.0


def test_none_gradient_leaves_its_parameter_and_state_alone():
    a, b = np.zeros(2), np.zeros(2)
    opt = ol.Adam(0.1)
    opt.apply_gradients([(np.ones(2), a), (np.ones(2), b)])
    b_before = b.copy()
    m_before = opt.state_dict()["slots"]["m/1"]
    with pytest.warns(UserWarning, match=r"Gradients do not exist for variables \[parameter 1 "):
        opt.apply_gradients([(np.ones(2), a), (None, b)])
    np.testing.assert_array_equal(b, b_before)
    np.testing.assert_array_equal(opt.state_dict()["slots"]["m/1"], m_before)
    assert opt.iterations == 2


def test_unknown_optimizer_name_lists_valid_ones():
    with pytest.raises(
        ValueError, match=re.escape("unknown optimizer 'adamz'; valid names (any case): SGD")
    ):
        ol.get("adamz")
