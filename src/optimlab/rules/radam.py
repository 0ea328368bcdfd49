"""RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond"): Adam
whose adaptive learning rate is switched off while its variance is intractable (the first steps,
when v averages too few squares) and scaled down by a rectification term afterwards::

    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g^2
    m_hat = m / bc1
    rho_inf = 2 / (1 - beta_2) - 1               (the length of the approximated simple
    rho_t = rho_inf - 2 t beta_2^t / bc2          moving average, at the limit and at step t)

    if rho_t > threshold:                          (the variance is tractable)
        r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        p = p - lr * r * m_hat / (sqrt(v / bc2 + epsilon_root) + epsilon)      "paper": optax
        p = p - lr * r * sqrt(bc2) * m_hat / (sqrt(v) + epsilon)               "hat": PyTorch,
                                                                               the authors' code
    else:
        p = p - lr * m_hat                         (SGD with bias-corrected momentum)

The paper's Algorithm 2 rectifies when rho_t > 4; the authors' implementation when rho_t >= 5,
PyTorch when rho_t > 5 (``threshold_inclusive=False``), optax when rho_t >= threshold, 5 by
default (``threshold_inclusive=True``). With beta_2 = 0.999, rho_t is about 4.996 at t = 5 and
5.994 at t = 6: the first five updates are momentum SGD, the rectified ones start at the sixth.
The threshold is at least 4, where r is a real number (for rho_t in (2, 4) the product under
the root is negative); with beta_2 < 0.6, rho_inf < 4 and RAdam never rectifies.

As in Adam, the two epsilon placements are one rule: the hat form with epsilon is the paper form
with epsilon / sqrt(bc2), so torch's epsilon acts 1 / sqrt(bc2) larger than optax's (12.9x at
t = 6, beta_2 = 0.999). torch's own Adam takes the paper's form; its RAdam takes the authors'.
``epsilon_root`` is optax's ``eps_root`` (inside the root of the bias-corrected v; 0 by default
and in torch).

Nesterov momentum (optax's ``nesterov=True``, as its Nadam) looks the first moment ahead:
m_hat = beta_1 * m / (1 - beta_1^(t+1)) + (1 - beta_1) * g / bc1.
"""

from __future__ import annotations

import math

import numpy as np

from ._scalar import where
from .adam import rounded

SLOTS = (("m", "required"), ("v", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: m takes both signs, v is >= 0 (Adam's moments)
QUANTIZED_SLOTS = {"m": "signed", "v": "unsigned"}


def rectification(t, *, beta_2, threshold, threshold_inclusive, power_dtype=None):
    """``(rho_t, r)``: the length of the approximated SMA at step ``t`` and the rectification
    term r, None where the variance is intractable (rho_t below the threshold, or equal to it
    with ``threshold_inclusive=False``). The base of beta_2^t is rounded to ``power_dtype``
    if given (see ``adam.rounded``)."""
    rho_t, r, tractable = rectification_terms(
        t,
        beta_2=beta_2,
        threshold=threshold,
        threshold_inclusive=threshold_inclusive,
        power_dtype=power_dtype,
    )
    return rho_t, (r if tractable else None)


def rectification_terms(t, *, beta_2, threshold, threshold_inclusive, power_dtype=None):
    """``(rho_t, r, tractable)``: :func:`rectification` without an ``if`` on the step (each
    choice a ``where``, so that a traced step count runs it too, see ``rules._scalar``); r is
    1 where the variance is intractable, and ``tractable`` says whether it is not."""
    rho_inf = 2.0 / (1.0 - beta_2) - 1.0
    power = rounded(beta_2, power_dtype) ** t
    bc2 = 1.0 - power
    # (bc2 is 0 only where Keras's float32 rounding turns beta_2 into 1: v has no weight yet)
    weighted = bc2 > 0.0
    rho_t = where(weighted, rho_inf - 2.0 * t * power / where(weighted, bc2, 1.0), -math.inf)
    tractable = (rho_t > threshold) | ((rho_t == threshold) & bool(threshold_inclusive))
    # where beta_2^t underflowed, rho_t = rho_inf and r = 1 (also where rho_inf = 4 makes the
    # ratio 0 / 0); the ratio only where it is a number (rho_t >= threshold >= 4 > 0)
    computed = tractable & (rho_t != rho_inf)
    numerator = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
    denominator = where(computed, (rho_inf - 4.0) * (rho_inf - 2.0) * rho_t, 1.0)
    ratio = where(computed, numerator / denominator, 1.0)
    return rho_t, where(computed, math.sqrt(ratio), 1.0), tractable


def scalars(
    t,
    lr,
    *,
    beta_1,
    beta_2,
    epsilon,
    epsilon_root,
    threshold,
    threshold_inclusive,
    nesterov,
    epsilon_style,
    power_dtype=None,
):
    """Per-step numbers ``(beta_1, 1 - beta_1, beta_2, 1 - beta_2, c_m, c_g, v_scale,
    epsilon_root, epsilon, rectified, nesterov)``. The update is p = p - d with d = c_m * m
    (+ c_g * g with Nesterov), divided by (sqrt(v / v_scale + epsilon_root) + epsilon) when
    ``rectified``: c_m = lr / bc1 and c_g = 0; with Nesterov c_m = lr * beta_1 /
    (1 - beta_1^(t+1)) and c_g = lr * (1 - beta_1) / bc1; both times r (paper) or
    r * sqrt(bc2) (hat) when rectified; v_scale = bc2 (paper) or 1 (hat). The bases of the
    powers are rounded to ``power_dtype`` if given."""
    b1 = rounded(beta_1, power_dtype)
    bc1 = 1.0 - b1**t
    bc2 = 1.0 - rounded(beta_2, power_dtype) ** t
    if nesterov:
        c_m = lr * beta_1 / (1.0 - b1 ** (t + 1))
        c_g = lr * (1.0 - beta_1) / bc1
    else:
        c_m = lr / bc1
        c_g = 0.0
    _, r, rectified = rectification_terms(
        t,
        beta_2=beta_2,
        threshold=threshold,
        threshold_inclusive=threshold_inclusive,
        power_dtype=power_dtype,
    )
    v_scale = 1.0
    if epsilon_style == "paper":
        scale = r
        v_scale = where(rectified, bc2, 1.0)
    else:
        scale = r * math.sqrt(bc2)
    c_m = where(rectified, c_m * scale, c_m)
    c_g = where(rectified, c_g * scale, c_g)
    return (
        beta_1,
        1.0 - beta_1,
        beta_2,
        1.0 - beta_2,
        c_m,
        c_g,
        v_scale,
        epsilon_root,
        epsilon,
        rectified,
        bool(nesterov),
    )


def update(
    p,
    g,
    m,
    v,
    beta_1,
    one_minus_beta_1,
    beta_2,
    one_minus_beta_2,
    c_m,
    c_g,
    v_scale,
    epsilon_root,
    epsilon,
    rectified,
    nesterov,
):
    """One RAdam update; returns ``(p, m, v)``."""
    m = beta_1 * m + one_minus_beta_1 * g
    v = beta_2 * v + one_minus_beta_2 * (g * g)
    d = c_m * m
    if nesterov:  # the look-ahead term only then (0 * g would turn an infinite g into NaN)
        d = d + c_g * g
    if rectified:
        d = d / (np.sqrt(v / v_scale + epsilon_root) + epsilon)
    return p - d, m, v
