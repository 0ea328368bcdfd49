"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of an
interpolation between the momentum and the gradient, so every coordinate moves by exactly lr::

    c = beta_1 * m + (1 - beta_1) * g
    p = p - lr * sign(c)
    m = beta_2 * m + (1 - beta_2) * g
"""

from __future__ import annotations

import numpy as np

SLOTS = (("m", "required"),)
#: ``state_dtype="int8"`` / ``"bfloat16"``: m takes both signs (bitsandbytes' Lion8bit); only
#: sign(c) moves p, so rounding m only matters where c is near 0
QUANTIZED_SLOTS = {"m": "signed"}


def scalars(t, lr, *, beta_1, beta_2):
    """Per-step numbers: (lr, beta_1, 1 - beta_1, beta_2, 1 - beta_2)."""
    return (lr, beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2)


def update(p, g, m, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2):
    """One Lion update; returns ``(p, m)``."""
    c = beta_1 * m + one_minus_beta_1 * g
    p = p - lr * np.sign(c)
    m = beta_2 * m + one_minus_beta_2 * g
    return p, m
