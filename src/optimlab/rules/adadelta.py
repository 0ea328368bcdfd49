"""Adadelta (Zeiler 2012): RMSprop whose step is rescaled by the RMS of the past updates, so
that the update has the units of the parameter::

    v = rho * v + (1 - rho) * g^2
    delta = sqrt(a + epsilon) / sqrt(v + epsilon) * g
    a = rho * a + (1 - rho) * delta^2
    p = p - lr * delta

The paper has no learning rate (lr = 1, PyTorch's default); Keras defaults to lr = 0.001.
"""

from __future__ import annotations

import numpy as np

SLOTS = (("accumulated_grad", "required"), ("accumulated_delta", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: both are averages of squares, >= 0
QUANTIZED_SLOTS = {"accumulated_grad": "unsigned", "accumulated_delta": "unsigned"}


def scalars(t, lr, *, rho, epsilon):
    """Per-step numbers: (lr, rho, 1 - rho, epsilon)."""
    return (lr, rho, 1.0 - rho, epsilon)


def update(p, g, v, a, lr, rho, one_minus_rho, epsilon):
    """One Adadelta update; returns ``(p, v, a)``."""
    v = rho * v + one_minus_rho * (g * g)
    delta = np.sqrt(a + epsilon) / np.sqrt(v + epsilon) * g
    a = rho * a + one_minus_rho * (delta * delta)
    return p - lr * delta, v, a
