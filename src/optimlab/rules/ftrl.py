"""FTRL-Proximal (McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches",
Algorithm 1): "Follow The (Proximally) Regularized Leader". Per coordinate it keeps the sum of
squared gradients n and a linear term z, and the parameter is not moved by a step but
*solved for* from them: the minimizer of z * w + l1 * |w| + (quadratic) w^2 / 2, which is
exactly 0 wherever |z| <= l1 (the sparsity that L1 buys)::

    g_s = g + 2 * l2_shrinkage * p                    (the shrinkage penalty's gradient)
    n'  = n + g^2
    sigma = (n'^(-lr_power) - n^(-lr_power)) / lr     (the paper: (sqrt(n') - sqrt(n)) / alpha)
    z   = z + g_s - sigma * p
    quadratic = n'^(-lr_power) / lr + 2 * l2 + beta / lr
    p   = (clip(z, -l1, l1) - z) / quadratic          (0 where |z| <= l1, else
                                                       -(z - sign(z) * l1) / quadratic)
    n   = n'

with lr_power = ``learning_rate_power`` (-0.5 is the paper's per-coordinate rate
alpha / (beta + sqrt(n)); 0 a fixed rate, n^0 = 1, so sigma = 0 and quadratic = (1 + beta) / lr
+ 2 * l2), l1, l2, l2_shrinkage the three regularization strengths and beta the paper's
beta. n starts at ``initial_accumulator_value``, z at 0. This is Keras 3's
``keras.optimizers.Ftrl`` term for term (as TensorFlow's FTRL before it): its l2 enters the
quadratic as 2 * l2, where the paper writes lambda_2 (Keras's l2 is half the paper's), and its
beta as beta / lr, i.e. the paper's (beta + sqrt(n)) / alpha. Keras reads the learning rate of
the current step in sigma and in the quadratic, so after a change of the learning rate the sum
of the sigmas is no longer n^(-lr_power) / lr (the paper assumes a fixed alpha); the rule does
the same.

The power n^(-lr_power) is taken three ways, by ``learning_rate_power``: -0.5 with ``np.sqrt``
(correctly rounded, so the fused kernel and NumPy agree to the bit), 0 as the number 1 (the
accumulator then plays no part, n^0 = 1 for any n), anything else with ``**``, whose NumPy
(SIMD) and C-library implementations differ in the last bit: such an Ftrl runs on the
reference engine only (``optimlab.Ftrl``'s ``_rule_fusable``).
"""

from __future__ import annotations

import numpy as np

from ._scalar import divide

SLOTS = (("accumulator", "required"), ("linear", "required"))
#: why ``state_dtype`` stays "float32": p is solved from z (p = -(z - sign(z) l1) / quadratic),
#: so a rounded z is a rounded parameter, and its exact zeros (|z| <= l1) move; the sigmas add
#: up to n^(-lr_power) / lr only while n is kept exactly
FLOAT32_STATE = (
    "the parameter is solved from the linear term z (a rounded z is a rounded weight, its "
    "sparsity |z| <= l1 moves), and the sigmas telescope only with an exact accumulator"
)
#: the new parameter is solved for from n and z, not the old one minus a step: an additive
#: update (optax's p + u) reproduces it to the last bit only where p' - p is exact (at the
#: zeros of l1, p + (-p) = 0 is)
SOLVED = True

#: how n^(-learning_rate_power) is taken: the square root, the constant 1, or ``**``
#: (``scalars`` hands the kind to ``update`` as two flags, which the kernels keep as booleans)
ROOT, FIXED, GENERAL = 0, 1, 2


def power_kind(learning_rate_power: float) -> int:
    """ROOT for -0.5, FIXED for 0, GENERAL otherwise."""
    if learning_rate_power == -0.5:
        return ROOT
    if learning_rate_power == 0.0:
        return FIXED
    return GENERAL


def scalars(
    t,
    lr,
    *,
    learning_rate_power,
    l1_regularization_strength,
    l2_regularization_strength,
    l2_shrinkage_regularization_strength,
    beta,
):
    """Per-step numbers: (lr, -lr_power, root, fixed, sigma and quadratic of a fixed rate, l1,
    -l1, 2 * l2 + beta / lr, 2 * l2_shrinkage), where root and fixed are the power's kind as
    flags (-0.5 and 0) and Keras's quadratic adds 2 * (l2 + beta / (2 lr)).

    With a fixed rate (learning_rate_power = 0) sigma = (1 - 1) / lr and the quadratic
    1 / lr + 2 * l2 + beta / lr do not depend on the element: they are taken here, once (on
    the reference engine a sum of two scalars would be a double, in the kernel a float32)."""
    kind = power_kind(learning_rate_power)
    l2_total = 2.0 * (l2_regularization_strength + divide(beta, 2.0 * lr))
    l1 = l1_regularization_strength
    return (
        lr,
        -learning_rate_power,
        kind == ROOT,
        kind == FIXED,
        divide(0.0, lr),
        divide(1.0, lr) + l2_total,
        l1,
        -l1,
        l2_total,
        2.0 * l2_shrinkage_regularization_strength,
    )


def update(
    p,
    g,
    n,
    z,
    lr,
    exponent,
    root,
    fixed,
    fixed_sigma,
    fixed_quadratic,
    l1,
    minus_l1,
    l2_total,
    shrinkage,
):
    """One FTRL-Proximal update; returns ``(p, n, z)``."""
    g_shrunk = g + shrinkage * p
    n_new = n + g * g
    if fixed:  # learning_rate_power = 0, n^0 = 1
        z = z + (g_shrunk - fixed_sigma * p)
        quadratic = fixed_quadratic
    else:
        if root:  # learning_rate_power = -0.5
            new_power = np.sqrt(n_new)
            old_power = np.sqrt(n)
        else:
            new_power = n_new**exponent
            old_power = n**exponent
        z = z + (g_shrunk - (new_power - old_power) / lr * p)
        quadratic = new_power / lr + l2_total
    clipped = -np.maximum(-np.maximum(z, minus_l1), minus_l1)  # min(max(z, -l1), l1)
    p = (clipped - z) / quadratic
    return p, n_new, z
