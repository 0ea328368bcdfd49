"""RMSprop (Hinton, Coursera lecture 6e, 2012): Adagrad with the sum of squares replaced by an
exponentially weighted moving average, so the effective learning rate no longer vanishes::

    v = rho * v + (1 - rho) * g^2
    d = v                                      (plain)
    d = v - gbar^2,  gbar = rho * gbar + (1 - rho) * g      (centered: a variance estimate)
    s = g / sqrt(d + epsilon)                  (epsilon inside the root: Keras, optax)
    s = g / (sqrt(d) + epsilon)                (epsilon outside: PyTorch)

then, without momentum ``p = p - lr * s``; with momentum

    b = momentum * b + lr * s;  p = p - b      (lr inside the buffer: Keras, optax)
    b = momentum * b + s;       p = p - lr * b (lr outside: PyTorch)

The lecture writes p = p - lr * g / sqrt(v + epsilon) with rho = 0.95.
"""

from __future__ import annotations

import numpy as np

SLOTS = (("velocity", "required"), ("average_gradient", "optional"), ("momentum", "optional"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: v is >= 0; the momentum buffer takes both signs.
#: gbar is not among them: narrow state refuses ``centered=True`` (:func:`narrow_state_refusal`)
QUANTIZED_SLOTS = {"velocity": "unsigned", "momentum": "signed"}


def narrow_state_refusal(*, centered, **_):
    """Why these hyperparameters cannot take narrow state (None where they can): centered,
    d = v - gbar^2 is a small difference of two large numbers, and v and gbar rounded apart
    (int8: up to a few percent; bfloat16: up to 2^-8) make it negative where the gradient's
    variance is small against its mean, and sqrt(d + epsilon) NaN. bitsandbytes' RMSprop
    (8-bit and 32-bit) refuses centered altogether."""
    if centered:
        return "centered=True (v - gbar^2 of separately rounded moments falls below 0)"
    return None


def scalars(t, lr, *, rho, momentum, centered, epsilon, epsilon_in_sqrt, lr_outside):
    """Per-step numbers: (lr, rho, 1 - rho, momentum, epsilon, centered, epsilon_in_sqrt,
    lr_outside, use_momentum)."""
    return (
        lr,
        rho,
        1.0 - rho,
        momentum,
        epsilon,
        bool(centered),
        bool(epsilon_in_sqrt),
        bool(lr_outside),
        momentum > 0.0,
    )


def update(
    p,
    g,
    v,
    gbar,
    buf,
    lr,
    rho,
    one_minus_rho,
    momentum,
    epsilon,
    centered,
    epsilon_in_sqrt,
    lr_outside,
    use_momentum,
):
    """One RMSprop update; returns ``(p, v, gbar, buf)`` (None for absent buffers)."""
    v = rho * v + one_minus_rho * (g * g)
    d = v
    if centered:
        gbar = rho * gbar + one_minus_rho * g
        d = v - gbar * gbar
    if epsilon_in_sqrt:
        s = g / np.sqrt(d + epsilon)
    else:
        s = g / (np.sqrt(d) + epsilon)
    if not use_momentum:
        return p - lr * s, v, gbar, buf
    if lr_outside:
        buf = momentum * buf + s
        return p - lr * buf, v, gbar, buf
    buf = momentum * buf + lr * s
    return p - buf, v, gbar, buf
