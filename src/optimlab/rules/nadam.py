"""Nadam (Dozat 2016): Adam with Nesterov momentum, i.e. the first moment is looked ahead one
step. With a momentum schedule mu_t and the running product P_t = mu_1 * ... * mu_t::

    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g^2
    m_hat = mu_{t+1} * m / (1 - P_{t+1}) + (1 - mu_t) * g / (1 - P_t)
    p = p - lr * m_hat / (sqrt(v / bc2) + epsilon)

The schedule is mu_t = beta_1 * (1 - 0.5 * 0.96^(t * momentum_decay)):
Keras uses momentum_decay = 1 (mu_t reaches beta_1 within about 100 steps), PyTorch 0.004
(mu_t is still far below beta_1 after thousands of steps), and optax a constant mu_t = beta_1
(``momentum_decay=None``), which turns m_hat into beta_1 * m / (1 - beta_1^(t+1)) +
(1 - beta_1) * g / (1 - beta_1^t).
"""

from __future__ import annotations

import numpy as np

from .adam import rounded

SLOTS = (("m", "required"), ("v", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: m takes both signs, v is >= 0 (Adam's); mu_product
#: is a step number (``STEP_STATE``), one per optimizer, never stored narrow
QUANTIZED_SLOTS = {"m": "signed", "v": "unsigned"}
STEP_STATE = (("mu_product", 1.0),)


def momentum_at(t, beta_1, momentum_decay, base=0.96):
    """mu_t = beta_1 * (1 - 0.5 * 0.96^(t * momentum_decay)); beta_1 when momentum_decay is None."""
    if momentum_decay is None:
        return beta_1
    return beta_1 * (1.0 - 0.5 * base ** (t * momentum_decay))


def scalars(
    t,
    lr,
    step_state,
    *,
    beta_1,
    beta_2,
    epsilon,
    momentum_decay,
    power_dtype=None,
    product_dtype=None,
):
    """Per-step numbers ``(c_g, c_m, beta_1, beta_2, inv_bc2, epsilon)`` with
    p = p - (c_g * g + c_m * m) / (sqrt(v * inv_bc2) + epsilon), and the advanced step state;
    bc2 = 1 - beta_2^t. With ``power_dtype`` (Keras), beta_1, beta_2 and 0.96 are first rounded
    to that dtype, everywhere: Keras casts all three before use (see ``adam.rounded``). With
    ``product_dtype`` (PyTorch, whose mu_product is a tensor of its default dtype), the
    product is computed in that dtype: mu_product = dtype(mu_product) * dtype(mu_t)."""
    (mu_product,) = step_state
    beta_1, beta_2 = rounded(beta_1, power_dtype), rounded(beta_2, power_dtype)
    base = rounded(0.96, power_dtype)
    mu_t = momentum_at(t, beta_1, momentum_decay, base)
    mu_next = momentum_at(t + 1, beta_1, momentum_decay, base)
    if product_dtype is None:
        mu_product = mu_product * mu_t
    else:
        cast = np.dtype(product_dtype).type
        mu_product = float(cast(mu_product) * cast(mu_t))
    c_g = lr * (1.0 - mu_t) / (1.0 - mu_product)
    c_m = lr * mu_next / (1.0 - mu_product * mu_next)
    inv_bc2 = 1.0 / (1.0 - beta_2**t)
    scalars = (c_g, c_m, beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2, inv_bc2, epsilon)
    return scalars, (mu_product,)


def update(
    p, g, m, v, c_g, c_m, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, inv_bc2, epsilon
):
    """One Nadam update; returns ``(p, m, v)``."""
    m = beta_1 * m + one_minus_beta_1 * g
    v = beta_2 * v + one_minus_beta_2 * (g * g)
    return p - (c_g * g + c_m * m) / (np.sqrt(v * inv_bc2) + epsilon), m, v
