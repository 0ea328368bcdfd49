"""Adam (Kingma & Ba 2015): momentum on the gradient plus RMSprop's per-parameter scale, with
bias correction for the zero start of both averages::

    m = beta_1 * m + (1 - beta_1) * g          (first moment: the lecture's momentum part)
    v = beta_2 * v + (1 - beta_2) * g^2        (second moment: the RMSprop part)
    m_hat = m / bc1,  v_hat = v / bc2          (bias correction; bc = 1 when switched off)

and then, by where epsilon goes,

    p = p - lr * m_hat / (sqrt(v_hat) + epsilon)              "paper": Algorithm 1 of the
                                                              paper; PyTorch and optax
    p = p - lr * sqrt(bc2) / bc1 * m / (sqrt(v) + epsilon)    "hat": the paper's epsilon-hat
                                                              form (end of section 2); Keras

The two are the same rule with epsilon_hat = epsilon * sqrt(bc2): at t=1, beta_2=0.999 the
Keras epsilon acts about 31.6 times larger than the same number in PyTorch.

Two options only change the rounding, for a peer that writes the same equations in another
order (torch.optim.SparseAdam, on the gathered rows of a sparse gradient)::

    moment_form="increment":  m = m + (1 - beta_1) * (g - m),  v = v + (1 - beta_2) * (g^2 - v)
    quotient_first=True:      p = p - alpha * (m / (sqrt(v) + epsilon))

AMSGrad (Reddi et al. 2018) replaces v by its running maximum v_max. PyTorch and Keras take the
maximum of the raw v and bias-correct it afterwards (``amsgrad_max="raw"``); optax takes the
maximum of the corrected v_hat (``"corrected"``), which is a different sequence.
"""

from __future__ import annotations

import functools
import math

import numpy as np

SLOTS = (("m", "required"), ("v", "required"), ("v_max", "optional"))
#: the slots ``state_dtype="int8"`` / ``"bfloat16"`` may store narrow, and the code each needs
#: (m takes both signs; v and its running maximum are >= 0)
QUANTIZED_SLOTS = {"m": "signed", "v": "unsigned", "v_max": "unsigned"}


@functools.lru_cache(maxsize=256)
def rounded(beta, power_dtype):
    """beta as the power's base: rounded to ``power_dtype`` (Keras casts it before
    ``ops.power``), or exact when ``power_dtype`` is None."""
    return beta if power_dtype is None else float(np.dtype(power_dtype).type(beta))


def scalars(
    t,
    lr,
    *,
    beta_1,
    beta_2,
    epsilon,
    amsgrad,
    bias_correction,
    epsilon_style,
    amsgrad_max,
    power_dtype=None,
    moment_form="weighted",
    quotient_first=False,
):
    """Per-step numbers: (alpha, beta_1, 1 - beta_1, beta_2, 1 - beta_2, root_scale, epsilon,
    amsgrad, corrected_max, bc2, increment, quotient_first), where the update is
    p - alpha * m / (sqrt(v_used) * root_scale + epsilon), with bc1 = 1 - beta_1^t and
    bc2 = 1 - beta_2^t (the bases rounded to ``power_dtype`` if given); ``increment``: the
    moments as m + (1 - beta_1) * (g - m) (``moment_form="increment"``), else
    beta_1 * m + (1 - beta_1) * g (``"weighted"``)."""
    bc1 = 1.0 - rounded(beta_1, power_dtype) ** t if bias_correction else 1.0
    bc2 = 1.0 - rounded(beta_2, power_dtype) ** t if bias_correction else 1.0
    corrected_max = bool(amsgrad) and amsgrad_max == "corrected"
    if epsilon_style == "paper":
        alpha = lr / bc1
        root_scale = 1.0 / math.sqrt(bc2)
    else:
        alpha = lr * math.sqrt(bc2) / bc1
        root_scale = 1.0
    if corrected_max:  # the stored maximum is already divided by bc2
        root_scale *= math.sqrt(bc2)
    return (
        alpha,
        beta_1,
        1.0 - beta_1,
        beta_2,
        1.0 - beta_2,
        root_scale,
        epsilon,
        bool(amsgrad),
        corrected_max,
        bc2,
        moment_form == "increment",
        bool(quotient_first),
    )


def update(
    p,
    g,
    m,
    v,
    v_max,
    alpha,
    beta_1,
    one_minus_beta_1,
    beta_2,
    one_minus_beta_2,
    root_scale,
    epsilon,
    amsgrad,
    corrected_max,
    bc2,
    increment=False,
    quotient_first=False,
):
    """One Adam update; returns ``(p, m, v, v_max)`` (v_max None without AMSGrad)."""
    if increment:
        m = m + one_minus_beta_1 * (g - m)
        v = v + one_minus_beta_2 * (g * g - v)
    else:
        m = beta_1 * m + one_minus_beta_1 * g
        v = beta_2 * v + one_minus_beta_2 * (g * g)
    v_used = v
    if amsgrad:
        v_max = np.maximum(v_max, v / bc2) if corrected_max else np.maximum(v_max, v)
        v_used = v_max
    denominator = np.sqrt(v_used) * root_scale + epsilon
    if quotient_first:
        return p - alpha * (m / denominator), m, v, v_max
    return p - alpha * m / denominator, m, v, v_max
