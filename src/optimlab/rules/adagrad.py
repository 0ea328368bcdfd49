"""Adagrad (Duchi, Hazan & Singer 2011): a per-parameter learning rate that shrinks with the
sum of the squared gradients seen so far, so rarely active (sparse) features keep large steps::

    G = G + g^2
    p = p - lr_t * g / sqrt(G + epsilon)       (epsilon inside the root: Keras, optax)
    p = p - lr_t * g / (sqrt(G) + epsilon)     (epsilon outside: PyTorch)

with lr_t = lr / (1 + (t - 1) * lr_decay) (PyTorch's lr_decay; 0 elsewhere). G starts at
``initial_accumulator_value`` (Keras, optax: 0.1; PyTorch: 0).

The accumulator only grows, so the effective learning rate lr/sqrt(G) only falls: the
"vanishing learning rate" the lecture names as Adagrad's weakness.
"""

from __future__ import annotations

import numpy as np

SLOTS = (("accumulator", "required"),)
#: ``state_dtype="int8"`` / ``"bfloat16"``: the sum of squares is >= 0. Its start, the initial
#: accumulator value, is stored as the narrow format holds it (0.1 in bfloat16 is 0.10009766;
#: a block of equal values is exact in int8, whose code holds 1 * scale). A g^2 below half a
#: gap of G is lost: in narrow state the sum stops growing where the gradient has become small
QUANTIZED_SLOTS = {"accumulator": "unsigned"}


def scalars(t, lr, *, epsilon, lr_decay, epsilon_in_sqrt):
    """Per-step numbers: (lr_t, epsilon, epsilon_in_sqrt)."""
    return (lr / (1.0 + (t - 1) * lr_decay), epsilon, bool(epsilon_in_sqrt))


def update(p, g, acc, lr_t, epsilon, epsilon_in_sqrt):
    """One Adagrad update; returns ``(p, acc)``."""
    acc = acc + g * g
    if epsilon_in_sqrt:
        return p - lr_t * g / np.sqrt(acc + epsilon), acc
    return p - lr_t * g / (np.sqrt(acc) + epsilon), acc
