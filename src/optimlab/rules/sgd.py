"""Stochastic gradient descent, with momentum and Nesterov momentum.

Plain (the lecture's first equation)::

    p = p - lr * g

Momentum, "lr inside the buffer" (the lecture, Keras, Sutskever et al. 2013)::

    v = momentum * v - lr * g
    p = p + v                                  (nesterov=False)
    p = p + momentum * v - lr * g              (nesterov=True)

Momentum, "lr outside the buffer" (PyTorch, optax.sgd)::

    b = momentum * b + (1 - dampening') * g    (dampening' = 0 on a parameter's first update)
    p = p - lr * b                             (nesterov=False)
    p = p - lr * (g + momentum * b)            (nesterov=True)

The lecture writes the velocity with the opposite sign, v = beta*v + lr*g and w = w - v; the
Keras buffer above is its negative. For a constant lr the two conventions give identical
trajectories (v = -lr * b); after a learning-rate change they differ, because the Keras buffer
still holds gradients scaled by the old lr.
"""

from __future__ import annotations

from ._scalar import where

SLOTS = (("momentum", "optional"),)
#: ``state_dtype="int8"`` / ``"bfloat16"``: the momentum buffer takes both signs (bitsandbytes'
#: SGD8bit stores the same buffer in 8 bits)
QUANTIZED_SLOTS = {"momentum": "signed"}


def scalars(t, lr, *, momentum, nesterov, dampening, lr_outside):
    """Per-step numbers: (lr, momentum, 1 - dampening', nesterov, lr_outside, use_momentum)."""
    one_minus_damp = where(t == 1, 1.0, 1.0 - dampening)
    return (lr, momentum, one_minus_damp, bool(nesterov), bool(lr_outside), momentum > 0.0)


def update(p, g, buf, lr, momentum, one_minus_damp, nesterov, lr_outside, use_momentum):
    """One SGD update; returns ``(p, buf)`` (``buf`` is None without momentum)."""
    if not use_momentum:
        return p - lr * g, buf
    if lr_outside:
        buf = momentum * buf + one_minus_damp * g
        if nesterov:
            return p - lr * (g + momentum * buf), buf
        return p - lr * buf, buf
    buf = momentum * buf - lr * g
    if nesterov:
        return p + momentum * buf - lr * g, buf
    return p + buf, buf


def lecture_momentum_step(w, v, grad, lr, beta):
    """The lecture's momentum, with its signs: ``v = beta * v + lr * grad; w = w - v``.

    The same sequence of parameters as :func:`update` with lr inside the buffer (Keras), whose
    buffer is ``-v``.
    """
    v = beta * v + lr * grad
    return w - v, v


def lecture_nesterov_step(w, v, grad_at, lr, beta):
    """The lecture's Nesterov accelerated gradient, evaluated at the look-ahead point::

        w_la = w - beta * v
        v = beta * v + lr * grad(w_la)
        w = w - v

    ``grad_at`` is a function returning the gradient at a point. Keras and PyTorch store the
    look-ahead point instead of w (``p = w - beta * v``), which lets them take the gradient at
    the stored parameter: the two give the same points (see ``tests/test_identities.py``).
    Returns ``(w, v)``.
    """
    w_la = w - beta * v
    v = beta * v + lr * grad_at(w_la)
    return w - v, v
