"""Adafactor (Shazeer & Stern 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory
Cost", Algorithms 4 and 5): an RMSprop whose second moment of a matrix is kept as one row
and one column of averages, so that an n x m weight costs n + m numbers of state, not n * m::

    beta_2 = 1 - t^beta_2_decay                          (Section 7.2; beta_2_decay = -0.8)
    g2     = g * g + epsilon_1                           (epsilon_1_style "add": Keras, optax)
    factored (two axes r, c of the parameter, see below):
        R = beta_2 * R + (1 - beta_2) * mean_c(g2)       one number per row
        C = beta_2 * C + (1 - beta_2) * mean_r(g2)       one number per column
        V = R C / mean_r(R)                              the rank-1 estimate of E[g^2]
    otherwise (a vector, a scalar):
        V = v = beta_2 * v + (1 - beta_2) * g2
    U  = g / sqrt(V)
    U  = U / max(1, RMS(U) / clip_threshold)             update clipping (Section 6)
    rho   = min(lr, 1 / sqrt(t))                         relative step (Section 8; else lr)
    alpha = rho * max(epsilon_2, RMS(p))                 multiply_by_parameter_scale
    p  = p - alpha * U

RMS(x) = sqrt(mean(x^2)) over the whole tensor. The identity behind the factoring (the paper's
Section 3): for the non-negative matrix A = E[g^2], R = mean_c(A) and C = mean_r(A), the
matrix R C / mean(R) is the rank-1 matrix with the same row and column sums as A that is
closest to A in generalized Kullback-Leibler divergence; using means instead of sums
changes nothing (the n and m cancel).

Where the peers differ, each an option of :class:`optimlab.Adafactor`:

``epsilon_1_style``
    "add": epsilon_1 (1e-30) is added to every g^2 (the paper, Keras, optax). "clamp"
    (PyTorch): g2 = g * g, and epsilon_1 (default the dtype's machine epsilon) is a floor:
    V = R C / max(mean_r(R), epsilon_1), U = g / max(sqrt(V), epsilon_1).
``factored_dims``
    "last_two" (Keras, PyTorch): r, c are the last two axes, every tensor of two or more
    dimensions is factored. "two_largest" (optax): r is the second largest axis, c the
    largest (ties in ``numpy.argsort``'s order), and only when the second largest has
    ``min_dim_size_to_factor`` (128) entries or more.
``beta_2_dtype``
    None: 1 - t^beta_2_decay in double precision (PyTorch), or in the parameters' dtype under
    Keras's ``power_precision``; "float32" (optax's ``_decay_rate_pow``, whatever the
    parameters' dtype).
``relative_step``, ``multiply_by_parameter_scale``, ``clip_threshold`` (None: no clipping)
    Keras and PyTorch always take rho = min(lr, 1/sqrt(t)) and scale by RMS(p); optax takes
    an absolute lr (no relative step) and scales by max(1e-3, RMS(p)) unless told not to.
``mean_dtype``
    None: every mean in the parameters' dtype. "float32" (Keras, whose ``ops.mean`` computes in
    float32 even for float64 tensors): the values rounded to float32, summed to a float32,
    times float32(1 / n) (XLA's form of the division by a constant), the result back in the
    parameters' dtype (:func:`mean`).
``nan_in_max``
    "propagate" (Keras, optax): a NaN in RMS(p) or RMS(U) makes the step all NaN. "ignore"
    (PyTorch, whose max(epsilon_2, RMS(p)) and max(1, RMS(U) / d) are Python's ``max`` of
    floats, and ``max(1.0, nan)`` is 1.0): only the NaN entries of the update are NaN.
``momentum``, ``momentum_dtype``
    optax's optional EMA of the scaled update, m = momentum * m + (1 - momentum) * alpha * U,
    which then replaces alpha * U; kept in float32 by default (``dtype_momentum``).
``weight_decay_style``
    "before_rms" (Keras: p = p - lr * wd * p first, so RMS(p) is of the decayed p);
    "after_rms" (PyTorch: alpha from the undecayed p, then p = p * (1 - lr * wd));
    "unscaled" (optax's ``weight_decay_rate``: p = p - (alpha * U + wd * p), the decay not
    multiplied by the learning rate). The runtime hands the decay to the rule (``DECAY``).

The rule is tensor-level (``TENSOR``): the means run over whole axes of a parameter.
"""

from __future__ import annotations

import math

import numpy as np

from ._scalar import number, rounded_to, where
from .adam import rounded

#: the update needs whole arrays (means over axes): no elementwise (fused) engine
TENSOR = True
#: the rule applies decoupled weight decay itself: the runtime passes wd (or None) after the
#: scalars instead of decaying p before the rule (where the decay goes changes RMS(p))
DECAY = True
SLOTS = (("v_row", "required"), ("v_col", "required"), ("v", "required"), ("m", "optional"))


def factored_axes(shape, factored, factored_dims, min_dim_size_to_factor):
    """(r, c): the axes whose means are kept (R averages over c, C over r), or None for a
    parameter whose second moment is not factored (fewer than two axes, ``factored`` off, or
    an axis shorter than ``min_dim_size_to_factor``)."""
    if not factored or len(shape) < 2:
        return None
    if factored_dims == "last_two":
        r, c = len(shape) - 2, len(shape) - 1
    else:  # "two_largest": optax's _factored_dims (d1, d0), np.argsort's order (a stable
        # sort for fewer than 17 axes: its insertion sort), in Python (the shape is static)
        order = sorted(range(len(shape)), key=lambda k: shape[k])
        r, c = order[-2], order[-1]
    if min(shape[r], shape[c]) < min_dim_size_to_factor:
        return None
    return r, c


def slot_shape(name, shape, *, factored, factored_dims, min_dim_size_to_factor, **_):
    """The shape of state ``name`` of a parameter of ``shape``: ``v_row`` the shape without
    axis c, ``v_col`` without axis r (factored parameters only), ``v`` the parameter's shape
    (the others only), ``m`` the parameter's shape; None where the buffer does not exist."""
    axes = factored_axes(shape, factored, factored_dims, min_dim_size_to_factor)
    if name == "v_row":
        return None if axes is None else tuple(n for k, n in enumerate(shape) if k != axes[1])
    if name == "v_col":
        return None if axes is None else tuple(n for k, n in enumerate(shape) if k != axes[0])
    if name == "v":
        return tuple(shape) if axes is None else None
    return tuple(shape)


def scalars(
    t,
    lr,
    *,
    beta_2_decay,
    epsilon_1,
    epsilon_2,
    clip_threshold,
    relative_step,
    multiply_by_parameter_scale,
    epsilon_1_style,
    factored,
    factored_dims,
    min_dim_size_to_factor,
    beta_2_dtype,
    mean_dtype,
    nan_in_max,
    momentum,
    momentum_dtype,
    weight_decay_style,
    power_dtype=None,
):
    """Per-step numbers: ``step`` (lr, rho, the step-size options), ``moment`` (beta_2 and
    1 - beta_2, epsilon_1, the factoring); see the module docstring. Written for a step count
    and a learning rate that may be traced (:mod:`optimlab.engines.jax_engine`): the powers
    of ``number(t)``, the float32 ones on ``rounded_to(..., "float32")``, the minimum a
    ``where``."""
    float32_power = power_dtype is not None and np.dtype(power_dtype) == np.float32
    if beta_2_dtype == "float32" or float32_power:  # Keras: ops.power in the variables' dtype
        # 1 - t^decay with float32 operands: the power correctly rounded (XLA's float32 pow,
        # which optax and Keras use, is, for every t tested), then float32 subtractions
        one = rounded_to(1.0, "float32")
        w = rounded_to(number(t) ** rounded(beta_2_decay, "float32"), "float32")
        beta = one - w
        beta, one_minus_beta = number(beta), number(one - beta)
    else:
        one_minus_beta = number(t) ** beta_2_decay  # torch's lerp weight
        beta = 1.0 - one_minus_beta
    rho = lr
    if relative_step:  # rho = min(lr, 1 / sqrt(t)), Python's min: lr unless the root is less
        if float32_power:
            lr32 = rounded_to(lr, "float32")
            root = rounded_to(1.0, "float32") / np.sqrt(rounded_to(t, "float32"))
            rho = number(where(root < lr32, root, lr32))
        else:
            root = 1.0 / math.sqrt(number(t))
            rho = where(root < lr, root, lr)
    one_minus_momentum = None if momentum is None else 1.0 - momentum
    step = (
        lr,
        rho,
        epsilon_2 if multiply_by_parameter_scale else None,
        clip_threshold,
        momentum,
        one_minus_momentum,
        momentum_dtype,
        weight_decay_style,
        np.fmax if nan_in_max == "ignore" else np.maximum,
    )
    moment = (
        beta,
        one_minus_beta,
        epsilon_1,
        epsilon_1_style,
        (factored, factored_dims, min_dim_size_to_factor),
        mean_dtype,
    )
    return (step, moment)


#: XLA's CPU reductions of up to this many float32 values add them in index order (measured,
#: jax 0.8: every sum of 3 to 30 values of a vector or along an axis); longer ones in a tree
SEQUENTIAL_SUM = 32


def mean(x, axis=None, keepdims=False, mean_dtype=None):
    """The mean of ``x`` (over ``axis``, all axes for None), in x's dtype; ``mean_dtype``
    "float32" as Keras takes it of a float64 tensor: x rounded to float32, summed in float32
    (in index order up to :data:`SEQUENTIAL_SUM` values, as XLA's CPU reduction; beyond, the
    exact sum rounded to float32, within XLA's tree sum's rounding), times float32(1 / n)."""
    if mean_dtype is None or x.dtype == np.float32:
        return np.mean(x, axis=axis, keepdims=keepdims)
    axes = tuple(range(x.ndim)) if axis is None else (axis,)
    n = int(np.prod([x.shape[k] for k in axes]))
    x32 = np.moveaxis(x.astype(np.float32), axes, tuple(range(-len(axes), 0)))
    x32 = x32.reshape(x32.shape[: x32.ndim - len(axes)] + (n,))
    if 0 < n <= SEQUENTIAL_SUM:
        total = np.cumsum(x32, axis=-1, dtype=np.float32)[..., -1]
    else:
        total = np.sum(x32.astype(np.float64), axis=-1).astype(np.float32)
    out = (total * np.float32(1.0 / n) if n else total / np.float32(0)).astype(x.dtype)
    return np.expand_dims(out, axes) if keepdims else out


def rms(x, mean_dtype=None):
    """sqrt(mean(x^2)) over the whole array, in its dtype."""
    return np.sqrt(mean(x * x, mean_dtype=mean_dtype))


def factored_second_moment(
    g2, v_row, v_col, axes, beta, one_minus_beta, floor=None, mean_dtype=None
):
    """The factored update of R and C from g2 = g^2 (+ epsilon_1) and the estimate
    V = R C / mean_r(R) (``floor``: PyTorch's max(mean_r(R), epsilon_1)); returns
    ``(V, R, C)``."""
    r, c = axes
    dtype = g2.dtype
    v_row = np.asarray(beta, dtype) * v_row + np.asarray(one_minus_beta, dtype) * mean(
        g2, c, mean_dtype=mean_dtype
    )
    v_col = np.asarray(beta, dtype) * v_col + np.asarray(one_minus_beta, dtype) * mean(
        g2, r, mean_dtype=mean_dtype
    )
    # R has lost axis c: r keeps its index if it comes first, else moves down by one
    row_mean = mean(v_row, r if r < c else r - 1, keepdims=True, mean_dtype=mean_dtype)
    if floor is not None:
        row_mean = np.maximum(row_mean, np.asarray(floor, dtype))
    estimate = np.expand_dims(v_row / row_mean, c) * np.expand_dims(v_col, r)
    return estimate, v_row, v_col


def update(p, g, v_row, v_col, v, m, step, moment, decay):
    """One Adafactor update of a whole parameter; ``decay`` is the weight decay (None: off)
    the runtime hands over. Returns ``(p, v_row, v_col, v, m)``; a parameter of no elements
    is left as it is (its means would be 0 / 0)."""
    if p.size == 0:
        return p, v_row, v_col, v, m
    (
        lr,
        rho,
        epsilon_2,
        clip,
        momentum,
        one_minus_momentum,
        momentum_dtype,
        decay_style,
        at_least,
    ) = step
    beta, one_minus_beta, epsilon_1, epsilon_1_style, factoring, mean_dtype = moment
    dtype = p.dtype
    if epsilon_1 is None:  # PyTorch's default: the machine epsilon of the parameter's dtype
        epsilon_1 = float(np.finfo(p.dtype).eps)
    clamp = epsilon_1_style == "clamp"
    if decay is not None and decay_style == "before_rms":
        p = p - p * np.asarray(decay * lr, dtype)
    alpha = np.asarray(rho, dtype)
    if epsilon_2 is not None:
        alpha = alpha * at_least(np.asarray(epsilon_2, dtype), rms(p, mean_dtype))
    p_before = p
    if decay is not None and decay_style == "after_rms":
        p = p * np.asarray(1.0 - lr * decay, dtype)

    g2 = g * g if clamp else g * g + np.asarray(epsilon_1, dtype)
    axes = factored_axes(p.shape, *factoring)
    if axes is None:
        v = np.asarray(beta, dtype) * v + np.asarray(one_minus_beta, dtype) * g2
        estimate = v
    else:
        floor = epsilon_1 if clamp else None
        estimate, v_row, v_col = factored_second_moment(
            g2, v_row, v_col, axes, beta, one_minus_beta, floor, mean_dtype
        )
    if clamp:  # max(sqrt(V), epsilon_1), as PyTorch's clamp of V at epsilon_1^2
        estimate = np.maximum(estimate, np.asarray(epsilon_1 * epsilon_1, dtype))
    u = g / np.sqrt(estimate)
    if clip is not None:
        u = u / at_least(np.asarray(1, dtype), rms(u, mean_dtype) / np.asarray(clip, dtype))
    u = alpha * u
    if momentum is not None:
        u, m = _momentum(u, m, momentum, one_minus_momentum, momentum_dtype)
    if decay is not None and decay_style == "unscaled":
        return p - (u + np.asarray(decay, dtype) * p_before), v_row, v_col, v, m
    return p - u, v_row, v_col, v, m


def _momentum(u, m, momentum, one_minus_momentum, momentum_dtype):
    """optax's ``ema(momentum, debias=False, accumulator_dtype)``: the new average is the
    step; the buffer keeps it rounded to ``momentum_dtype`` ("float32": a float32 buffer,
    whose product with momentum is taken in float32, as JAX promotes it)."""
    dtype = u.dtype
    if momentum_dtype == "float32" and u.dtype != np.float32:
        kept = m.astype(np.float32)
        new = np.asarray(one_minus_momentum, dtype) * u + (np.float32(momentum) * kept).astype(
            u.dtype
        )
        return new, new.astype(np.float32).astype(u.dtype)
    new = np.asarray(one_minus_momentum, dtype) * u + np.asarray(momentum, dtype) * m
    return new, new
