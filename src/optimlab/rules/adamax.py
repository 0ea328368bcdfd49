"""Adamax (Kingma & Ba 2015, section 7.1): Adam with the L2 norm of past gradients replaced by
the infinity norm, an exponentially weighted maximum::

    m = beta_1 * m + (1 - beta_1) * g
    u = max(beta_2 * u, |g| + epsilon);  p = p - lr / bc1 * m / u           (PyTorch, optax)
    u = max(beta_2 * u, |g|);            p = p - lr / bc1 * m / (u + epsilon) (Keras)

No bias correction is needed for u (the maximum is not biased towards zero).
"""

from __future__ import annotations

import numpy as np

from .adam import rounded

SLOTS = (("m", "required"), ("u", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: m takes both signs; the infinity norm u is a maximum
#: of |g| values, >= 0, so the unsigned code (fine near 0, where small coordinates are). Its
#: decay by beta_2 (0.1% a step) is below half a narrow gap: without a new |g| a narrow u holds
#: instead of decaying (:mod:`optimlab.quantization.state`), which only makes steps smaller
QUANTIZED_SLOTS = {"m": "signed", "u": "unsigned"}


def scalars(t, lr, *, beta_1, beta_2, epsilon, epsilon_in_max, power_dtype=None):
    """Per-step numbers: (lr / bc1, beta_1, beta_2, epsilon, epsilon_in_max), bc1 = 1 - beta_1^t
    (the base rounded to ``power_dtype`` if given, see ``adam.rounded``)."""
    bc1 = 1.0 - rounded(beta_1, power_dtype) ** t
    return (lr / bc1, beta_1, 1.0 - beta_1, beta_2, epsilon, bool(epsilon_in_max))


def update(p, g, m, u, step_size, beta_1, one_minus_beta_1, beta_2, epsilon, epsilon_in_max):
    """One Adamax update; returns ``(p, m, u)``."""
    m = beta_1 * m + one_minus_beta_1 * g
    if epsilon_in_max:
        u = np.maximum(beta_2 * u, np.abs(g) + epsilon)
        return p - step_size * m / u, m, u
    u = np.maximum(beta_2 * u, np.abs(g))
    return p - step_size * m / (u + epsilon), m, u
