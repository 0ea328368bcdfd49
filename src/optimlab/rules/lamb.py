"""Lamb (You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes", Algorithm 2): Adam's direction, rescaled per parameter so that every layer moves by
the same fraction of its own norm::

    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g^2
    r = (m / bc1) / (sqrt(v / bc2) + epsilon)       the Adam direction (epsilon outside the
                                                    root of the corrected v: Keras and optax)
    r = r + decay * p                               the weight decay inside the trust ratio
                                                    (optax, the paper; decay 0 in Keras, whose
                                                    decay p = p - lr * wd * p comes before)
    phi = ||p|| / ||r||                             the trust ratio, with the Euclidean norms
                                                    of the whole parameter and its direction
    p = p - lr * phi * r

so that ||p_new - p|| = lr * ||p|| whenever phi is the ratio. Where a norm is 0, phi = 1
(both peers: a zero parameter takes Adam's step, a zero direction moves nothing). Where a norm
is NaN, ``nan_trust_ratio`` decides: ``"one"`` (Keras tests ``||p|| > 0 and ||r|| > 0``, which
a NaN fails, so phi = 1 and the finite elements still move) or ``"nan"`` (optax tests
``||p|| == 0 or ||r|| == 0``, so phi = NaN and the whole parameter becomes NaN).

The rule is tensor-level (the norms need the whole parameter), so it runs on whole NumPy
arrays only; its elementwise part is Adam's moments and direction.
"""

from __future__ import annotations

import numpy as np

from ._scalar import where
from .adam import rounded

#: the trust ratio needs the norm of the whole parameter: no elementwise (fused) engine
TENSOR = True
SLOTS = (("m", "required"), ("v", "required"))


def scalars(t, lr, *, beta_1, beta_2, epsilon, nan_trust_ratio, power_dtype=None):
    """Per-step numbers: (lr, beta_1, 1 - beta_1, beta_2, 1 - beta_2, bc1, bc2, epsilon,
    nan_is_one), with bc = 1 - beta^t (the bases rounded to ``power_dtype`` if given, as Keras
    rounds them to the variable's dtype). When the decay sits inside the trust ratio the
    runtime appends the parameter's decay (``update``'s ``decay``)."""
    bc1 = 1.0 - rounded(beta_1, power_dtype) ** t
    bc2 = 1.0 - rounded(beta_2, power_dtype) ** t
    nan_is_one = nan_trust_ratio == "one"
    return (lr, beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2, bc1, bc2, epsilon, nan_is_one)


def trust_ratio(p_norm, r_norm, nan_is_one):
    """phi = ||p|| / ||r||, or 1 where a norm is 0 (and, with ``nan_is_one``, NaN). (A choice
    by ``where``, not ``if``, so that traced norms run it too: see ``rules._scalar``.)"""
    one = p_norm.dtype.type(1)
    if nan_is_one:  # Keras: the ratio only where both norms are > 0
        defined = (p_norm > 0) & (r_norm > 0)
    else:  # optax: 1 only where a norm is exactly 0
        defined = ~((p_norm == 0) | (r_norm == 0))
    return where(defined, p_norm / where(defined, r_norm, one), one)


def update(
    p,
    g,
    m,
    v,
    lr,
    beta_1,
    one_minus_beta_1,
    beta_2,
    one_minus_beta_2,
    bc1,
    bc2,
    epsilon,
    nan_is_one,
    decay=None,
):
    """One Lamb update of a whole parameter (``decay``: the weight decay added to the
    direction inside the trust ratio, None for none); returns ``(p, m, v)``."""
    dtype = p.dtype  # (the step numbers as 0-d arrays of it: a traced number casts too)
    m = beta_1 * m + one_minus_beta_1 * g
    v = beta_2 * v + one_minus_beta_2 * (g * g)
    r = (m / np.asarray(bc1, dtype)) / (np.sqrt(v / np.asarray(bc2, dtype)) + epsilon)
    if decay:
        r = r + decay * p
    phi = trust_ratio(np.linalg.norm(p), np.linalg.norm(r), nan_is_one)
    return p - (phi * np.asarray(lr, dtype)) * r, m, v
