"""Schedule-Free AdamW (Defazio et al. 2024, "The Road Less Scheduled", arXiv:2405.15682):
no learning-rate schedule, and no momentum buffer either; three sequences take their place::

    y = (1 - beta_1) z + beta_1 x                 (where the gradient g is taken: the parameter)
    v = beta_2 v + (1 - beta_2) g^2               (Adam's second moment, bc2 = 1 - beta_2^t)
    z = z - lr_t (g / (sqrt(v / bc2) + epsilon) + wd y)      (the base step, from y)
    x = (1 - c_t) x + c_t z                       (a weighted average of the z iterates)

with the averaging weight c_t = w_t / (w_1 + ... + w_t), w_t = lr_max,t ^ weight_lr_power
(lr_max,t the largest learning rate of the first t steps, warmup included); weight_lr_power
= 0 makes x the plain running mean of z_1 ... z_t (c_t = 1/t).

The parameter holds y and the state z and v, as in both peers; x is never stored: each step
recovers it as x = (y - (1 - beta_1) z) / beta_1 (which needs beta_1 > 0), and so do the
evaluation parameters (optax's ``schedule_free_eval_params``). With beta_1 = 0, y = z: the rule
then takes z = y (the same numbers, but any decay of y before the step reaches z too) and the
method is AdamW with beta_1 = 0 (Adam's RMS step, bias-corrected, with decoupled weight decay)
whose average x is not kept; both peers divide by beta_1 there and give NaN.

The peers (and the authors' code, the torch preset) differ in these details, each an option
(presets in :mod:`optimlab.presets`; Keras's betas are also rounded to the variables' dtype
before 1 - beta, as under its ``power_dtype``):

``weight_lr_power``
    Keras 3.15 averages with c_t = 1/t (0); optax and the authors' code weight by lr_max^2 (2.0).
``warmup_steps``, ``warmup_from_zero``
    a linear warmup: lr_t = lr * min(t / W, 1) (Keras, the authors: t counts from 1, the first
    step takes lr / W). optax builds ``warmup_constant_schedule(0, lr, W)`` and evaluates it at
    t - 1 in its base step (the count of ``scale_by_learning_rate`` starts at 0: the first z
    step is 0) but at t for lr_max (``step_count`` starts at 1): ``warmup_from_zero=True``;
    and that schedule computes in float32, also for float64 parameters (``warmup_dtype=
    "float32"``, a Python-float learning rate: lr_t = float32(lr) even after the warmup), or
    only its fraction 1 - t / W (``"float32_fraction"``: a float64 learning-rate array, as
    ``inject_hyperparams`` holds it); XLA fuses each into a multiply-add (:func:`warmed_up`).
    (Not reproduced: a schedule given to optax as its learning rate is evaluated the same way,
    at t - 1 in the z step and at t for lr_max; optimlab evaluates a schedule once per step, at
    t - 1 for both, as every optimlab optimizer does. A learning rate that changes from step to
    step by ``inject_hyperparams``, as the conformance grid drives optax, is the same in both.)
``weight_decay_style``
    ``"before_step"`` (Keras: its base class shrinks y by lr * wd before the step, with the
    learning rate before warmup; x = (y - (1 - beta_1) z) / beta_1 then absorbs it, z does not);
    ``"in_z_step"`` (optax, the authors: wd * y joins the normalized gradient of the z step).
``weight_sum_dtype``
    ``"parameter"``: lr_max, the weights, their sum and c_t are rounded to the parameters'
    dtype every step (Keras's ``1.0 / local_step`` in the variable's dtype, optax's float32
    state of float32 parameters); ``"float64"``: exact double precision (the authors'
    Python floats).
``epsilon_style``
    ``"paper"`` (Keras, optax): g / (sqrt(v / bc2) + epsilon); ``"hat"`` (the authors' code):
    lr_t is lr * warmup * sqrt(bc2) and the denominator sqrt(v) + epsilon, which also puts
    sqrt(bc2) into lr_max and so into the averaging weights, and into the decay of its z step.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ._scalar import number, where
from .adam import rounded

SLOTS = (("z", "required"), ("v", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: v only (>= 0). z is a parameter sequence (the base
#: iterates, and x is recovered from it): its steps lr * u are far below the narrow formats'
#: gaps (bfloat16's half gap at |z| = 1 is 2^-9, lr is 1e-3), so a rounded z would stop moving;
#: peers quantize moments only
QUANTIZED_SLOTS = {"v": "unsigned"}
#: slots that start as a copy of the parameter (z_1 = y_1 = x_1, as in both peers)
PARAMETER_SLOTS = ("z",)
#: lr_max (the largest learning rate so far) and the running sum of the averaging weights
STEP_STATE = (("lr_max", 0.0), ("weight_sum", 0.0))
#: the rule takes the decoupled weight decay itself (where it goes is an option)
DECAY = True


#: the warmup lengths below which the float32 schedule's products count * float32(1 / W) are
#: exact in double precision (24 + 29 bits), so that it is computed in doubles, traced too
_EXACT_WARMUP = 2**29


def warmed_up(lr, t, warmup_steps, dtype=None):
    """lr * min(t / W, 1) (lr itself without warmup, W = 0).

    With ``dtype`` ``"float32"`` or ``"float32_fraction"``, as optax's ``linear_schedule(0,
    lr, W)`` computes under ``jax.jit`` on a CPU with fused multiply-add: its int32 count makes
    the fraction f = 1 - min(t, W) / W a float32 number, which XLA computes as one fused
    operation, f = fma(-t, 1 / W, 1) rounded once to float32 (the division by a constant
    turned into a product by its float32 reciprocal), and then lr_t = fma(-lr, f, lr): in
    float32 for a Python-float learning rate (``"float32"``: JAX's weak float gives way to the
    float32 fraction, after the warmup too: lr_t = float32(lr)), in double precision for a
    learning rate held as a float64 array (``"float32_fraction"``: ``inject_hyperparams``).

    Each fused operation's exact value is rounded to a double, then to float32 where said.
    For W < 2^29 the doubles compute it: count * float32(1 / W) is exact (24 + 29 bits), and
    so is 1 - f of a float32 f in [0, 1], so lr * (1 - f) is lr - lr * f rounded once; the
    choices are ``where``s, so a traced step count and learning rate run it too. Longer
    warmups take exact fractions on the host."""
    if warmup_steps <= 0:
        return lr
    if dtype is None:
        return where(t < warmup_steps, lr * ((t + 0.0) / warmup_steps), lr)
    count = where(t < 0, 0, where(t > warmup_steps, warmup_steps, t))  # min(max(t, 0), W)
    inverse = number(np.float32(1.0 / warmup_steps))
    if warmup_steps >= _EXACT_WARMUP:
        inverse = Fraction(inverse)
        fraction = Fraction(float(np.float32(float(1 - count * inverse))))
        if dtype == "float32_fraction":
            return float(Fraction(-lr) * fraction + Fraction(lr))
        lr32 = Fraction(float(np.float32(lr)))
        return float(np.float32(float(-lr32 * fraction + lr32)))
    fraction = number(np.float32(1.0 - count * inverse))
    if dtype == "float32_fraction":
        return lr * (1.0 - fraction)
    return number(np.float32(number(np.float32(lr)) * (1.0 - fraction)))


def averaging_weight(t, lr_w, step_state, *, weight_lr_power, dtype=None):
    """``(c_t, 1 - c_t, new step state)``: lr_max = max(lr_max, lr_w), w_t = lr_max ^ power,
    S_t = S_{t-1} + w_t and c_t = w_t / S_t, each rounded to ``dtype`` when given (else in
    double precision). c_t is 0 where S_t is 0 (every learning rate 0 so far: x stays) or
    where the weights overflow (optax's ``nan_to_num`` of inf / inf). With power 0 every
    weight is 1 (0^0 = 1 too) and c_t = 1 / t, Keras's ``1.0 / local_step``, taken from t
    itself (a state written back with another ``iterations`` keeps it right). The choices
    are ``where``s: a traced step count and learning rate run it too."""
    kind = float if dtype is None else dtype

    def cast(value):  # a NumPy scalar of the dtype (its scalar power is the C library's)
        return np.asarray(value, kind)[()]

    lr_max, weight_sum = step_state
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        old, new = cast(lr_max), cast(lr_w)
        lr_max = where(new > old, new, old)  # max(old, new)
        weight = lr_max ** cast(weight_lr_power)
        weight_sum = cast(weight_sum) + weight
        if weight_lr_power == 0.0:
            c = cast(1.0) / cast(t)
        else:
            c = where(weight_sum != 0.0, weight / weight_sum, cast(0.0))
        c = where(np.isfinite(c), c, cast(0.0))
        one_minus_c = cast(1.0) - c
    return number(c), number(one_minus_c), (number(lr_max), number(weight_sum))


def scalars(
    t,
    lr,
    step_state,
    *,
    beta_1,
    beta_2,
    epsilon,
    warmup_steps,
    warmup_from_zero,
    weight_lr_power,
    weight_decay_style,
    epsilon_style,
    warmup_dtype=None,
    weight_sum_dtype=None,
    power_dtype=None,
):
    """Per-step numbers ``(beta_2, 1 - beta_2, v_scale, epsilon, lr_z, beta_1, 1 - beta_1,
    c_t, 1 - c_t, interpolate, decay_in_z, lr)`` and the advanced step state (lr_max,
    weight_sum). lr_z is the z step's learning rate (warmup at t - 1 with
    ``warmup_from_zero``, else at t; times sqrt(bc2) in the "hat" form); v_scale is bc2
    ("paper") or 1 ("hat"); the averaging weight takes lr_w = lr * min(t / W, 1) (times
    sqrt(bc2) in the "hat" form); ``interpolate`` is False for beta_1 = 0; the last number is
    the learning rate before warmup, which Keras's decay of y takes. With ``power_dtype``
    (Keras, which casts its betas to the variable's dtype first) the base of beta_2^t and
    the betas of 1 - beta_1 and 1 - beta_2 are rounded to that dtype (see ``adam.rounded``),
    and so are 1 - beta in it: float32(1 - float32(0.9)) = 0.10000002."""
    bc2 = 1.0 - rounded(beta_2, power_dtype) ** t
    one_minus_beta_1, one_minus_beta_2 = 1.0 - beta_1, 1.0 - beta_2
    if power_dtype is not None:
        cast = np.dtype(power_dtype).type
        beta_1, beta_2 = rounded(beta_1, power_dtype), rounded(beta_2, power_dtype)
        one_minus_beta_1 = float(cast(1.0) - cast(beta_1))
        one_minus_beta_2 = float(cast(1.0) - cast(beta_2))
    lag = 1 if warmup_from_zero else 0
    lr_z = warmed_up(lr, t - lag, warmup_steps, warmup_dtype)
    lr_w = warmed_up(lr, t, warmup_steps, warmup_dtype)
    v_scale = bc2
    if epsilon_style == "hat":
        lr_z = lr_z * math.sqrt(bc2)  # (not *=: lr may be a caller's array)
        lr_w = lr_w * math.sqrt(bc2)
        v_scale = 1.0
    c, one_minus_c, step_state = averaging_weight(
        t, lr_w, step_state, weight_lr_power=weight_lr_power, dtype=weight_sum_dtype
    )
    numbers = (
        beta_2,
        one_minus_beta_2,
        v_scale,
        epsilon,
        lr_z,
        beta_1,
        one_minus_beta_1,
        c,
        one_minus_c,
        beta_1 > 0.0,
        weight_decay_style == "in_z_step",
        lr,
    )
    return numbers, step_state


def update(
    p,
    g,
    z,
    v,
    beta_2,
    one_minus_beta_2,
    v_scale,
    epsilon,
    lr_z,
    beta_1,
    one_minus_beta_1,
    c,
    one_minus_c,
    interpolate,
    decay_in_z,
    lr,
    weight_decay,
):
    """One Schedule-Free AdamW update of y = ``p``; returns ``(y, z, v)``. ``weight_decay`` is
    the parameter's decoupled decay, or None."""
    if weight_decay is not None:
        if not decay_in_z:  # Keras: y shrinks first, as its base class does (y * wd * lr)
            p = p - p * weight_decay * lr
    v = beta_2 * v + one_minus_beta_2 * (g * g)
    u = g / (np.sqrt(v / v_scale) + epsilon)
    if weight_decay is not None:
        if decay_in_z:  # optax, the authors: the decay at y joins the z step
            u = u + weight_decay * p
    if interpolate:
        z_new = z - lr_z * u
        x = (p - one_minus_beta_1 * z) / beta_1
        x = one_minus_c * x + c * z_new
        return beta_1 * x + one_minus_beta_1 * z_new, z_new, v
    z_new = p - lr_z * u  # beta_1 = 0: y = z
    return z_new, z_new, v


def eval_params(y, z, beta_1):
    """x = (y - (1 - beta_1) z) / beta_1, the evaluation point (beta_1 > 0)."""
    return (y - (1.0 - beta_1) * z) / beta_1


def train_params(x, z, beta_1):
    """y = (1 - beta_1) z + beta_1 x, the training point (the inverse of :func:`eval_params`)."""
    return (1.0 - beta_1) * z + beta_1 * x
