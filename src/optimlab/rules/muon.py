"""Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers"; Liu et al. 2025, "Muon is
scalable for LLM training"): momentum whose matrix is orthogonalised before it is applied, so
that every direction of a weight matrix moves by about the same amount::

    m = momentum * m + g                        momentum_style "sum" (Keras)
    m = momentum * m + (1 - momentum) * g       "ema" (PyTorch, as its lerp; optax)
    u = g + momentum * m                        Nesterov, "sum" (Keras)
    u = (1 - momentum) * g + momentum * m       Nesterov, "ema" (PyTorch)
    u = momentum * m / (1 - momentum^(t+1)) + (1 - momentum) * g / (1 - momentum^t)
                                                Nesterov, "ema_corrected" (optax)
    u = m  (m / (1 - momentum^t) for "ema_corrected") without Nesterov
    O = NewtonSchulz(u)                         see :mod:`optimlab.rules.newton_schulz`
    p = p - lr * s * O

with the shape factor s of a (rows, cols) matrix (``shape_scaling``):

    "rms"             rms_rate * sqrt(max(rows, cols))   Keras (rms_rate 0.2), Moonlight
    "rows_over_cols"  sqrt(max(1, rows / cols))          PyTorch ("original"; torch's weights
                                                         are (out, in): fan_out / fan_in)
    "cols_over_rows"  sqrt(max(1, cols / rows))          optax (its weights are (in, out))
    "none"            1

Only matrices are orthogonalised. Every other parameter (a bias, a scalar) takes the fallback
step of ``non_matrix``: "adamw" (Keras: Adam with epsilon-hat, lr * adam_lr_ratio), "nadamw"
(optax: Adam with a Nesterov first moment, optax.adamw(nesterov=True), or without it when
``nesterov=False``); "raise" (PyTorch)
refuses such parameters when the optimizer is built. The rule is tensor-level: it runs on
whole arrays (NumPy, BLAS for the products), never elementwise.
"""

from __future__ import annotations

import math

import numpy as np

from . import adam, nadam
from .newton_schulz import orthogonalize

#: the update needs whole arrays (matrix products): no elementwise (fused) engine
TENSOR = True
SLOTS = (("m", "required"), ("v", "optional"))


def slot_shape(name, shape, **_):
    """The second moment ``v`` exists only for the parameters that take the fallback step."""
    if name == "v" and len(shape) == 2:
        return None
    return shape


def scalars(
    t,
    lr,
    *,
    momentum,
    nesterov,
    momentum_style,
    muon_a,
    muon_b,
    muon_c,
    ns_steps,
    ns_epsilon,
    ns_epsilon_style,
    ns_dtype,
    ns_norm_dtype,
    shape_scaling,
    rms_rate,
    non_matrix,
    adam_beta_1,
    adam_beta_2,
    epsilon,
    adam_lr_ratio,
    power_dtype=None,
):
    """Per-step numbers: the Muon part (lr, the momentum coefficients, Newton-Schulz's
    settings, the shape factor's rule) and the fallback's (an Adam or NAdam tuple)."""
    corrected = momentum_style == "ema_corrected"
    blend = 1.0 if momentum_style == "sum" else 1.0 - momentum
    # u = c_g * g + c_m * m (Nesterov) or c_m * m
    if nesterov:
        c_g = blend / (1.0 - momentum**t) if corrected else blend
        c_m = momentum / (1.0 - momentum ** (t + 1)) if corrected else momentum
    else:
        c_g, c_m = 0.0, (1.0 / (1.0 - momentum**t) if corrected else 1.0)
    muon = (lr, momentum, blend, bool(nesterov), c_g, c_m, momentum_style)
    ns_eps = epsilon if ns_epsilon is None else ns_epsilon  # optax: one eps for both
    ns = (muon_a, muon_b, muon_c, int(ns_steps), ns_eps, ns_epsilon_style, ns_dtype, ns_norm_dtype)
    shape = (shape_scaling, rms_rate)
    lr_adam = lr * adam_lr_ratio
    if non_matrix == "nadamw" and not nesterov:  # optax.adamw(nesterov=False): plain Adam
        non_matrix = "adam_optax"
    if non_matrix == "nadamw":  # optax.adamw(nesterov=True), exact double-precision powers
        bc2 = 1.0 - adam_beta_2**t
        fallback = (
            lr_adam * (1.0 - adam_beta_1) / (1.0 - adam_beta_1**t),
            lr_adam * adam_beta_1 / (1.0 - adam_beta_1 ** (t + 1)),
            1.0 / bc2,
        )
    else:
        fallback = adam.scalars(
            t,
            lr_adam,
            beta_1=adam_beta_1,
            beta_2=adam_beta_2,
            epsilon=epsilon,
            amsgrad=False,
            bias_correction=True,
            epsilon_style="paper" if non_matrix == "adam_optax" else "hat",
            amsgrad_max="raw",
            power_dtype=None if non_matrix == "adam_optax" else power_dtype,
        )
    adam_moments = (adam_beta_1, 1.0 - adam_beta_1, adam_beta_2, 1.0 - adam_beta_2, epsilon)
    return (muon, ns, shape, non_matrix, fallback, adam_moments)


def shape_factor(shape, shape_scaling, rms_rate):
    """s of the module docstring for a (rows, cols) matrix."""
    rows, cols = shape
    if shape_scaling == "rms":
        return rms_rate * math.sqrt(max(rows, cols))
    if shape_scaling == "rows_over_cols":
        return math.sqrt(max(1.0, rows / cols))
    if shape_scaling == "cols_over_rows":
        return math.sqrt(max(1.0, cols / rows))
    return 1.0


def lerp(start, end, weight):
    """start + weight * (end - start) evaluated as torch's ``lerp`` is: a fused multiply-add,
    from the nearer end (``end - (end - start) * (1 - weight)`` for weight >= 0.5). One
    rounding instead of two matters here: the bfloat16 Newton-Schulz rounds its input to 8
    bits, so a last-bit difference in the momentum can move the update by 2^-8. The fused
    operation is computed in a wider type and rounded once (float64 for float32; the
    platform's long double for float64)."""
    dtype = start.dtype
    wide = np.float64 if dtype == np.float32 else np.longdouble
    s, e = start.astype(wide), end.astype(wide)
    w = dtype.type(weight) if weight < 0.5 else dtype.type(1) - dtype.type(weight)
    w = wide(w)
    diff = (e - s).astype(dtype).astype(wide)
    return (s + w * diff if weight < 0.5 else e - diff * w).astype(dtype)


def update(p, g, m, v, muon, ns, shape, non_matrix, fallback, adam_moments):
    """One Muon update of a whole parameter; returns ``(p, m, v)``. Each step number meets
    the arrays as a 0-d array of the parameter's dtype (``np.asarray(x, dtype)``, the same
    rounding as NumPy's of a Python float against the array), so that a traced one
    (:mod:`optimlab.engines.jax_engine`) casts the same way."""
    if p.ndim != 2:
        return _fallback(p, g, m, v, non_matrix, fallback, adam_moments)
    lr, momentum, blend, nesterov, c_g, c_m, style = muon
    dtype = p.dtype
    if style == "ema":  # torch: buf.lerp_(g, 1 - momentum); g.lerp(buf, momentum)
        m = lerp(m, g, 1.0 - momentum)
        u = lerp(g, m, momentum) if nesterov else m
    else:
        m = np.asarray(momentum, dtype) * m + (g if blend == 1.0 else np.asarray(blend, dtype) * g)
        if nesterov:
            u = np.asarray(c_g, dtype) * g + np.asarray(c_m, dtype) * m
        else:  # (c_m is 1 but for "ema_corrected")
            u = np.asarray(c_m, dtype) * m if style == "ema_corrected" else m
    o = orthogonalize(u, *ns).astype(p.dtype, copy=False)
    step = lr * shape_factor(p.shape, *shape)
    return p - np.asarray(step, dtype) * o, m, v


def _fallback(p, g, m, v, non_matrix, fallback, adam_moments):
    """The step of a parameter that is not a matrix: AdamW (Keras) or NAdamW (optax), their
    step numbers as 0-d arrays of the parameter's dtype (the flags as they are)."""
    cast = [x if isinstance(x, bool) else np.asarray(x, p.dtype) for x in fallback]
    beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon = (
        np.asarray(x, p.dtype) for x in adam_moments
    )
    if non_matrix == "nadamw":
        c_g, c_m, inv_bc2 = cast
        moments = (beta_1, one_minus_beta_1, beta_2, one_minus_beta_2)
        return nadam.update(p, g, m, v, c_g, c_m, *moments, inv_bc2, epsilon)
    p, m, v, _ = adam.update(p, g, m, v, None, *cast)
    return p, m, v
