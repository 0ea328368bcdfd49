"""A toy elementwise rule for tests/test_registry.py (not an optimizer of optimlab): momentum
with a soft sign, a step of at most lr per coordinate::

    m = beta * m + (1 - beta) * g
    c = beta * m + (1 - beta) * g        (lookahead: the momentum one step ahead, as Nesterov's)
      = m                                (otherwise)
    p = p - lr * c / (|c| + gain)        (form "abs")
    p = p - lr * c / sqrt(c^2 + gain)    (form "root")

written to the contract of :mod:`optimlab.rules` (``SLOTS``, ``scalars``, ``update`` with no
float literal), so that the fused engine could compile it as it compiles the library's rules.
"""

from __future__ import annotations

import numpy as np

SLOTS = (("m", "required"),)


def scalars(t, lr, *, beta, gain, form, lookahead):
    """Per-step numbers: (lr, beta, 1 - beta, gain, form == "root", lookahead)."""
    return (lr, beta, 1.0 - beta, gain, form == "root", bool(lookahead))


def update(p, g, m, lr, beta, one_minus_beta, gain, root, lookahead):
    """One update; returns ``(p, m)``."""
    m = beta * m + one_minus_beta * g
    c = beta * m + one_minus_beta * g if lookahead else m
    if root:
        return p - lr * c / np.sqrt(c * c + gain), m
    return p - lr * c / (np.abs(c) + gain), m
