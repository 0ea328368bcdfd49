"""Numerics conventions of the three peers: ``preset="keras"`` (default), ``"torch"``, ``"optax"``.

A preset is a bundle of defaults: hyperparameter values *and* formula options (where epsilon
goes, whether the momentum buffer holds the learning rate, how weight decay is applied...).
Explicit arguments always win over a preset's defaults, so ``Adam(preset="torch",
epsilon=1e-7)`` is PyTorch's Adam with a Keras-sized epsilon.

Four conventions are not constructor arguments but follow the preset:

``step_counting``
    ``"global"`` (Keras, optax): bias corrections and schedules use the optimizer's update
    count. ``"per_parameter"`` (PyTorch): each parameter keeps its own step count, which only
    advances when that parameter receives a gradient (frozen layers keep their count).
``clip_style``
    the formula of norm clipping: Keras ``g * c / max(n, c)``, PyTorch
    ``g * min(1, c / (n + 1e-6))``, optax ``g if n < c else g / n * c``.
``power_precision``
    ``"dtype"`` (Keras): the bias-correction powers beta^t are taken of beta *rounded to the
    variables' dtype* (Keras casts beta to float32 before ``ops.power``), so that float32 Adam
    uses 1 - 0.99900001^t where the others use 1 - 0.999^t: a relative difference of 1.3e-5 in
    bc2, which moves float32 Adam by about 1e-5 over 200 steps. ``"float64"`` (PyTorch, optax):
    the powers of the exact betas in double precision. With several parameter dtypes, the
    narrowest one decides.
``missing_gradients``
    what ``apply_gradients`` does with None gradients. ``"keras"``: every gradient None raises
    Keras's ``ValueError("No gradients provided for any variable.")`` and some None warn
    (``UserWarning``, "Gradients do not exist for variables [...]"); the parameters with a
    gradient are updated. ``"ignore"`` (PyTorch, optax): parameters without a gradient are left
    alone silently, and a call without any gradient does nothing.

Every entry was checked against the peer itself (torch 2.13, Keras 3.15, optax 0.2.8); see
``tests/conformance``.
"""

from __future__ import annotations

PRESETS = ("keras", "torch", "optax")


class Required:
    """Marks a hyperparameter that the peer has no default for (optax's learning rates)."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED = Required()

# Defaults shared by every optimizer (Keras's base-class keyword arguments plus ours).
COMMON = {
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "maximize": False,
    "nan_policy": "raise",
}

CONVENTIONS = {
    "keras": {
        "step_counting": "global",
        "clip_style": "keras",
        "power_precision": "dtype",
        "missing_gradients": "keras",
    },
    "torch": {
        "step_counting": "per_parameter",
        "clip_style": "torch",
        "power_precision": "float64",
        "missing_gradients": "ignore",
    },
    "optax": {
        "step_counting": "global",
        "clip_style": "optax",
        "power_precision": "float64",
        "missing_gradients": "ignore",
    },
}

# The peer each preset reproduces, per optimizer (None: the peer has no such optimizer; the
# preset then applies that peer's conventions to the rule, see DEFAULTS). An optimizer no peer
# has needs no entry here (peer() answers None); every optimizer needs one in DEFAULTS.
PEERS = {
    "SGD": {"keras": "keras.optimizers.SGD", "torch": "torch.optim.SGD", "optax": "optax.sgd"},
    "Adagrad": {
        "keras": "keras.optimizers.Adagrad",
        "torch": "torch.optim.Adagrad",
        "optax": "optax.adagrad",
    },
    "RMSprop": {
        "keras": "keras.optimizers.RMSprop",
        "torch": "torch.optim.RMSprop",
        "optax": "optax.rmsprop",
    },
    "Adam": {
        "keras": "keras.optimizers.Adam",
        "torch": "torch.optim.Adam",
        "optax": "optax.adam / optax.amsgrad",
    },
    "AdamW": {
        "keras": "keras.optimizers.AdamW",
        "torch": "torch.optim.AdamW",
        "optax": "optax.adamw",
    },
    "Nadam": {
        "keras": "keras.optimizers.Nadam",
        "torch": "torch.optim.NAdam",
        "optax": "optax.nadam",
    },
    "Adamax": {
        "keras": "keras.optimizers.Adamax",
        "torch": "torch.optim.Adamax",
        "optax": "optax.adamax",
    },
    "Adadelta": {
        "keras": "keras.optimizers.Adadelta",
        "torch": "torch.optim.Adadelta",
        "optax": "optax.adadelta",
    },
    "Lion": {"keras": "keras.optimizers.Lion", "torch": None, "optax": "optax.lion"},
    "Muon": {
        "keras": "keras.optimizers.Muon",
        "torch": "torch.optim.Muon",
        "optax": "optax.contrib.muon",
    },
    "RAdam": {"keras": None, "torch": "torch.optim.RAdam", "optax": "optax.radam"},
    "Rprop": {"keras": None, "torch": "torch.optim.Rprop", "optax": "optax.rprop"},
    "ASGD": {"keras": None, "torch": "torch.optim.ASGD", "optax": None},
    "Lamb": {"keras": "keras.optimizers.Lamb", "torch": None, "optax": "optax.lamb"},
    "Adafactor": {
        "keras": "keras.optimizers.Adafactor",
        "torch": "torch.optim.Adafactor",
        "optax": "optax.adafactor",
    },
    # neither torch.optim nor optax 0.2.8 (optax.contrib included) has an FTRL
    "Ftrl": {"keras": "keras.optimizers.Ftrl", "torch": None, "optax": None},
    "LBFGS": {"keras": None, "torch": "torch.optim.LBFGS", "optax": "optax.lbfgs"},
    "ScheduleFreeAdamW": {
        "keras": "keras.optimizers.ScheduleFreeAdamW",
        "torch": None,
        "optax": "optax.contrib.schedule_free_adamw",
    },
}

DEFAULTS = {
    "SGD": {
        "keras": dict(
            learning_rate=0.01,
            momentum=0.0,
            nesterov=False,
            dampening=0.0,
            momentum_style="lr_inside",
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.001,
            momentum=0.0,
            nesterov=False,
            dampening=0.0,
            momentum_style="lr_outside",
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            momentum=0.0,
            nesterov=False,
            dampening=0.0,
            momentum_style="lr_outside",
            weight_decay_mode="l2",
        ),
    },
    "Adagrad": {
        "keras": dict(
            learning_rate=0.001,
            initial_accumulator_value=0.1,
            epsilon=1e-7,
            epsilon_in_sqrt=True,
            lr_decay=0.0,
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.01,
            initial_accumulator_value=0.0,
            epsilon=1e-10,
            epsilon_in_sqrt=False,
            lr_decay=0.0,
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            initial_accumulator_value=0.1,
            epsilon=1e-7,
            epsilon_in_sqrt=True,
            lr_decay=0.0,
            weight_decay_mode="l2",
        ),
    },
    "RMSprop": {
        "keras": dict(
            learning_rate=0.001,
            rho=0.9,
            momentum=0.0,
            epsilon=1e-7,
            centered=False,
            epsilon_in_sqrt=True,
            momentum_style="lr_inside",
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.01,
            rho=0.99,
            momentum=0.0,
            epsilon=1e-8,
            centered=False,
            epsilon_in_sqrt=False,
            momentum_style="lr_outside",
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            rho=0.9,
            momentum=0.0,
            epsilon=1e-8,
            centered=False,
            epsilon_in_sqrt=True,
            momentum_style="lr_inside",
            weight_decay_mode="l2",
        ),
    },
    "Adam": {
        "keras": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-7,
            amsgrad=False,
            bias_correction=True,
            epsilon_style="hat",
            amsgrad_max="raw",
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            amsgrad=False,
            bias_correction=True,
            epsilon_style="paper",
            amsgrad_max="raw",
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            amsgrad=False,
            bias_correction=True,
            epsilon_style="paper",
            amsgrad_max="corrected",
            weight_decay_mode="decoupled",
        ),
    },
    "Nadam": {
        "keras": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-7,
            momentum_decay=1.0,
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.002,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            momentum_decay=0.004,
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            momentum_decay=None,
            weight_decay_mode="decoupled",
        ),
    },
    "Adamax": {
        "keras": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-7,
            epsilon_in_max=False,
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.002,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            epsilon_in_max=True,
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            epsilon_in_max=True,
            weight_decay_mode="l2",
        ),
    },
    "Adadelta": {
        "keras": dict(learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay_mode="decoupled"),
        "torch": dict(learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay_mode="l2"),
        # optax.adadelta defaults to learning_rate=None, which skips the sign flip and
        # *ascends*; we do not reproduce that: the preset requires an explicit learning rate.
        "optax": dict(learning_rate=REQUIRED, rho=0.9, epsilon=1e-6, weight_decay_mode="l2"),
    },
    "Lion": {
        "keras": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay_mode="decoupled"),
        # torch.optim has no Lion (pytorch#94904): the preset follows the reference PyTorch
        # implementation of the paper's authors (lr 1e-4, decoupled weight decay).
        "torch": dict(learning_rate=0.0001, beta_1=0.9, beta_2=0.99, weight_decay_mode="decoupled"),
        "optax": dict(
            learning_rate=REQUIRED,
            beta_1=0.9,
            beta_2=0.99,
            weight_decay=0.001,
            weight_decay_mode="decoupled",
        ),
    },
    "RAdam": {
        # Keras has no RAdam: the preset is PyTorch's rule (the authors' epsilon-hat form,
        # rectified when rho_t > 5) under Keras's conventions: its epsilon 1e-7 (the fuzz
        # factor keras.config.epsilon() of every Keras optimizer that has an epsilon, Adam's
        # included, which takes the same epsilon-hat form) and its decoupled weight decay.
        "keras": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-7,
            epsilon_root=0.0,
            threshold=5.0,
            threshold_inclusive=False,
            nesterov=False,
            epsilon_style="hat",
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.001,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            epsilon_root=0.0,
            threshold=5.0,
            threshold_inclusive=False,
            nesterov=False,
            epsilon_style="hat",
            weight_decay_mode="l2",
        ),
        # optax.radam has no weight decay of its own: chain(add_decayed_weights, radam) is L2
        "optax": dict(
            learning_rate=REQUIRED,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            epsilon_root=0.0,
            threshold=5.0,
            threshold_inclusive=True,
            nesterov=False,
            epsilon_style="paper",
            weight_decay_mode="l2",
        ),
    },
    "Rprop": {
        # Keras has no Rprop: the preset takes torch.optim.Rprop's numbers and formulas, and
        # Keras's decoupled weight decay (torch.optim.Rprop and optax.rprop have no decay; with
        # the optax preset, weight_decay is optax.chain(add_decayed_weights(wd), rprop)).
        "keras": dict(
            learning_rate=0.01,
            eta_minus=0.5,
            eta_plus=1.2,
            min_step_size=1e-6,
            max_step_size=50.0,
            clamp_every_step=True,
            compare_with="gradient",
            delayed_update=False,
            weight_decay_mode="decoupled",
        ),
        "torch": dict(
            learning_rate=0.01,
            eta_minus=0.5,
            eta_plus=1.2,
            min_step_size=1e-6,
            max_step_size=50.0,
            clamp_every_step=True,
            compare_with="gradient",
            delayed_update=False,
            weight_decay_mode="l2",
        ),
        "optax": dict(
            learning_rate=REQUIRED,
            eta_minus=0.5,
            eta_plus=1.2,
            min_step_size=1e-6,
            max_step_size=50.0,
            clamp_every_step=False,
            compare_with="update",
            delayed_update=True,
            weight_decay_mode="l2",
        ),
    },
}

_MUON_KERAS = dict(
    learning_rate=0.001,
    adam_beta_1=0.9,
    adam_beta_2=0.999,
    adam_weight_decay=0.004,
    epsilon=1e-7,
    weight_decay=0.004,
    muon_a=3.4445,
    muon_b=-4.7750,
    muon_c=2.0315,
    adam_lr_ratio=1.0,
    momentum=0.95,
    ns_steps=5,
    nesterov=True,
    rms_rate=0.2,
    momentum_style="sum",
    ns_epsilon=1e-7,
    ns_epsilon_style="add",
    ns_dtype=None,
    ns_norm_dtype="float32",
    shape_scaling="rms",
    non_matrix="adamw",
    weight_decay_mode="decoupled",
)
DEFAULTS["Muon"] = {
    "keras": _MUON_KERAS,
    # torch.optim.Muon: lerp momentum, bfloat16 Newton-Schulz, max(norm, eps), adjust_lr_fn
    # "original" sqrt(max(1, A/B)) of its (out, in) weights; only 2-D parameters
    "torch": {
        **_MUON_KERAS,
        "weight_decay": 0.1,
        "momentum_style": "ema",
        "ns_epsilon_style": "clamp",
        "ns_dtype": "bfloat16",
        "ns_norm_dtype": None,
        "shape_scaling": "rows_over_cols",
        "non_matrix": "raise",
    },
    # optax.contrib.muon: beta 0.95 with a bias-corrected Nesterov term, eps 1e-8 for both
    # Newton-Schulz and the NAdamW of the other parameters, width scaling
    # sqrt(max(1, fan_out / fan_in)) of its (in, out) weights, no weight decay by default
    "optax": {
        **_MUON_KERAS,
        "learning_rate": REQUIRED,
        "adam_weight_decay": 0.0,
        "epsilon": 1e-8,
        "weight_decay": 0.0,
        "momentum_style": "ema_corrected",
        "ns_epsilon": None,
        "ns_norm_dtype": None,
        "shape_scaling": "cols_over_rows",
        "non_matrix": "nadamw",
    },
}

_LAMB_KERAS = dict(
    learning_rate=0.001,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-7,
    weight_decay_in_trust_ratio=False,
    nan_trust_ratio="one",
    weight_decay_mode="decoupled",
)
DEFAULTS["Lamb"] = {
    # keras.optimizers.Lamb: the base class's decoupled decay before the step (the trust
    # ratio then sees the decayed weights); ratio 1 unless both norms are > 0
    "keras": _LAMB_KERAS,
    # torch.optim has no Lamb: the paper's Algorithm 2 as optax writes it, with torch's
    # conventions (per-parameter steps, torch's clipping, weight decay 0 by default)
    "torch": {
        **_LAMB_KERAS,
        "epsilon": 1e-6,
        "weight_decay_in_trust_ratio": True,
        "nan_trust_ratio": "nan",
    },
    # optax.lamb: chain(scale_by_adam(eps=1e-6), add_decayed_weights, scale_by_trust_ratio,
    # scale_by_learning_rate): r + wd * p inside the ratio; ratio 1 only where a norm == 0
    "optax": {
        **_LAMB_KERAS,
        "learning_rate": REQUIRED,
        "epsilon": 1e-6,
        "weight_decay_in_trust_ratio": True,
        "nan_trust_ratio": "nan",
    },
}

_ADAFACTOR_KERAS = dict(
    learning_rate=0.001,
    beta_2_decay=-0.8,
    epsilon_1=1e-30,
    epsilon_2=1e-3,
    clip_threshold=1.0,
    relative_step=True,
    multiply_by_parameter_scale=True,
    epsilon_1_style="add",
    factored=True,
    factored_dims="last_two",
    min_dim_size_to_factor=0,
    beta_2_dtype=None,
    mean_dtype="float32",
    nan_in_max="propagate",
    momentum=None,
    momentum_dtype=None,
    weight_decay_style="before_rms",
    weight_decay_mode="decoupled",
)
DEFAULTS["Adafactor"] = {
    # keras.optimizers.Adafactor: g^2 + 1e-30, the last two axes factored, min(lr, 1/sqrt(t))
    # times max(1e-3, RMS(p)), the base class's decoupled decay before the step; ops.mean
    # computes in float32 for float64 variables too
    "keras": _ADAFACTOR_KERAS,
    # torch.optim.Adafactor: lr 1e-2, eps=(None, 1e-3) with eps1 a floor (None: the dtype's
    # machine epsilon), d=1.0; alpha from RMS(p) before param.mul_(1 - lr * weight_decay); its
    # two maxima are Python's max of floats, which passes over a NaN
    "torch": {
        **_ADAFACTOR_KERAS,
        "learning_rate": 0.01,
        "epsilon_1": None,
        "epsilon_1_style": "clamp",
        "mean_dtype": None,
        "nan_in_max": "ignore",
        "weight_decay_style": "after_rms",
    },
    # optax.adafactor: learning_rate None (no scale_by_learning_rate: 1.0), no relative step,
    # the two largest axes factored when the second largest has >= 128 entries, decay_rate 0.8
    # in float32 (_decay_rate_pow), scale_by_param_block_rms(1e-3), momentum None with a
    # float32 accumulator, weight_decay_rate added after the learning rate
    "optax": {
        **_ADAFACTOR_KERAS,
        "learning_rate": 1.0,
        "relative_step": False,
        "factored_dims": "two_largest",
        "min_dim_size_to_factor": 128,
        "beta_2_dtype": "float32",
        "mean_dtype": None,
        "momentum_dtype": "float32",
        "weight_decay_style": "unscaled",
    },
}

_FTRL_KERAS = dict(
    learning_rate=0.001,
    learning_rate_power=-0.5,
    initial_accumulator_value=0.1,
    l1_regularization_strength=0.0,
    l2_regularization_strength=0.0,
    l2_shrinkage_regularization_strength=0.0,
    beta=0.0,
    weight_decay_mode="decoupled",
)
DEFAULTS["Ftrl"] = {
    # keras.optimizers.Ftrl: FTRL-Proximal with Keras's (TensorFlow's) 2 * l2 and beta / lr in
    # the quadratic, the accumulator starting at 0.1; the base class's decoupled decay
    "keras": _FTRL_KERAS,
    # torch.optim has no FTRL: Keras's numbers with torch's conventions (per-parameter steps,
    # its clipping, weight_decay as L2 on the gradient)
    "torch": {**_FTRL_KERAS, "weight_decay_mode": "l2"},
    # optax has no FTRL: Keras's numbers with optax's conventions (no default learning rate,
    # weight decay as chain(add_decayed_weights, ...), its clipping)
    "optax": {**_FTRL_KERAS, "learning_rate": REQUIRED, "weight_decay_mode": "l2"},
}

_ASGD_TORCH = dict(learning_rate=0.01, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay_mode="l2")
DEFAULTS["ASGD"] = {
    # Keras has no ASGD: torch.optim.ASGD's numbers and formulas, Keras's decoupled decay
    "keras": {**_ASGD_TORCH, "weight_decay_mode": "decoupled"},
    # torch.optim.ASGD: lr 1e-2, lambd 1e-4, alpha 0.75, t0 1e6, weight_decay as L2
    "torch": _ASGD_TORCH,
    # optax has no ASGD: torch's rule, optax's required learning rate, and its decay
    # (add_decayed_weights before the step, as L2)
    "optax": {**_ASGD_TORCH, "learning_rate": REQUIRED},
}

_LBFGS_TORCH = dict(
    learning_rate=1.0,
    memory_size=100,
    max_iter=20,
    max_eval=None,
    tolerance_grad=1e-7,
    tolerance_change=1e-9,
    line_search=None,
    max_linesearch_steps=None,
    slope_rtol=1e-4,
    curv_rtol=0.9,
    wolfe_tolerance_change=1e-9,
    initial_guess_strategy="one",
    max_learning_rate=None,
    increase_factor=2.0,
    approx_dec_rtol=1e-6,
    stepsize_precision=1e-5,
    tol=0.0,
    scale_init_precond=True,
    learning_rate_role="step",
    first_step="l1",
    min_curvature=1e-10,
    secant="step",
    reuse_value=False,
    loss_dtype="float64",
    nan_policy="raise",
)
DEFAULTS["LBFGS"] = {
    # Keras has no L-BFGS: torch.optim.LBFGS's numbers and iteration (see optimlab.lbfgs)
    "keras": _LBFGS_TORCH,
    # torch.optim.LBFGS: lr=1 the initial step, max_iter=20 iterations per step, max_eval
    # None = max_iter * 5 // 4, history_size=100, line_search_fn=None (a fixed step) or
    # 'strong_wolfe' (c1=1e-4, c2=0.9, a 1e-9 bracket length, max_eval - evaluations made as
    # its budget); the first step min(1, 1/|g|_1) lr; pairs with y.s <= 1e-10 skipped
    "torch": _LBFGS_TORCH,
    # optax.lbfgs: one iteration per update, no stopping rules, memory_size=10, H_0 =
    # min(1, 1/|g|_2) I at first then (s.y)/(y.y) I, every pair kept, s = x - x_prev;
    # learning_rate None (scale -1) and scale_by_zoom_linesearch(max_linesearch_steps=20,
    # initial_guess_strategy='one'); value_and_grad_from_state reuses its last value, grad
    "optax": {
        **_LBFGS_TORCH,
        "memory_size": 10,
        "max_iter": 1,
        "tolerance_grad": None,
        "tolerance_change": None,
        "line_search": "zoom",
        "max_linesearch_steps": 20,
        "learning_rate_role": "direction",
        "first_step": "l2",
        "min_curvature": None,
        "secant": "difference",
        "reuse_value": True,
        "loss_dtype": "params",
    },
}

_SCHEDULE_FREE_KERAS = dict(
    learning_rate=0.0025,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    warmup_steps=0,
    warmup_from_zero=False,
    weight_lr_power=0.0,
    weight_decay_style="before_step",
    warmup_dtype=None,
    weight_sum_dtype="parameter",
    epsilon_style="paper",
    weight_decay_mode="decoupled",
)
DEFAULTS["ScheduleFreeAdamW"] = {
    # keras.optimizers.ScheduleFreeAdamW: c_t = 1 / t in the variable's dtype, lr * min(t / W,
    # 1), the base class's decay of y (with the learning rate before warmup) before the step
    "keras": _SCHEDULE_FREE_KERAS,
    # torch.optim has none: the authors' schedulefree.AdamWScheduleFree (facebookresearch/
    # schedule_free, as read at its commit 0083572; not run here, no peer test): lr_max^2
    # weights in Python floats, the decay at y in the z step, the epsilon-hat form
    # lr * sqrt(bc2) / (sqrt(v) + eps), under torch's conventions
    "torch": {
        **_SCHEDULE_FREE_KERAS,
        "weight_lr_power": 2.0,
        "weight_decay_style": "in_z_step",
        "weight_sum_dtype": "float64",
        "epsilon_style": "hat",
    },
    # optax.contrib.schedule_free_adamw: lr_max^2 weights in the parameters' dtype, its
    # warmup_constant_schedule at t - 1 for the z step and at t for lr_max (its fraction in
    # float32), weight_decay 0.0
    # added at y inside the z step (chain(scale_by_rms, add_decayed_weights, scale_by_lr))
    "optax": {
        **_SCHEDULE_FREE_KERAS,
        "warmup_from_zero": True,
        "warmup_dtype": "float32",
        "weight_lr_power": 2.0,
        "weight_decay_style": "in_z_step",
    },
}

# AdamW is Adam with decoupled weight decay on by default; only the default decay differs.
DEFAULTS["AdamW"] = {
    preset: {**values, "weight_decay": wd, "weight_decay_mode": "decoupled"}
    for (preset, values), wd in zip(DEFAULTS["Adam"].items(), (0.004, 0.01, 0.0001), strict=True)
}


def peer(optimizer: str, preset: str) -> str | None:
    """The peer function ``preset`` reproduces for ``optimizer`` (:data:`PEERS`), or None: that
    peer has no such optimizer, or the optimizer has no entry in :data:`PEERS` (an optimizer
    of optimlab's own, which every preset runs with its conventions only)."""
    return PEERS.get(optimizer, {}).get(preset)


def defaults(optimizer: str, preset: str) -> dict:
    """All defaults of ``optimizer`` under ``preset``: the common ones, then the optimizer's."""
    return {**COMMON, **DEFAULTS[optimizer][preset]}
