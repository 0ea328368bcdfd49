"""ASGD, averaged stochastic gradient descent (Polyak & Juditsky 1992, "Acceleration of
Stochastic Approximation by Averaging"; Ruppert 1988), as torch.optim.ASGD implements it: SGD
with a decaying step size eta and a shrinking of the weights, plus a running average ``ax`` of
the iterates that starts after ``t0`` updates::

    p  = p * (1 - lambd * eta_t) - eta_t * g          (lambd: a decay of the weights)
    ax = ax + mu_t * (p - ax)        where mu_t != 1  (the mean of the iterates since t0)
    ax = p                           where mu_t == 1  (before t0: ax follows p)

with the step size and the averaging weight of update t computed *after* update t - 1, from
that update's learning rate (torch keeps both as state, ``eta`` and ``mu``)::

    eta_1 = lr_1,   eta_t = lr_{t-1} / (1 + lambd * lr_{t-1} * (t - 1))^alpha
    mu_1 = 1,       mu_t = 1 / max(1, t - 1 - t0)

So the averaging starts at the first t with t - 1 - t0 > 1 (t > t0 + 2), after which ax is
the plain mean of the iterates from there on (mu = 1/k: ax_k = ax_{k-1} + (p - ax_{k-1}) / k),
the Polyak-Ruppert average. A change of the learning rate (a schedule) reaches eta one update
late, as in torch: eta_t is computed from lr_{t-1}. ``ax`` is the parameter the theory
recommends using at the end (``ASGD.average``); the parameter itself is the SGD iterate.

PyTorch's ``weight_decay`` is L2 (g = g + weight_decay * p, before the rule: the runtime's
``weight_decay_mode="l2"``), distinct from ``lambd``, which shrinks p by 1 - lambd * eta.

Options that only change numbers:

``state_dtype``
    None (exact double precision), or the dtype eta and mu are stored in: torch keeps them as
    0-d tensors of its default dtype (float32 unless the default is float64), so every eta
    and mu it uses is rounded to float32, and averaging starts when the *rounded* mu != 1.
``capturable``
    torch's ``capturable=True`` (CUDA graphs): eta and mu are computed by float32 tensor
    operations (``lr / (1 + lambd * lr * step)^alpha`` and ``1 / max(step - t0, 1)`` with a
    float32 step), 1 - lambd * eta is a float32 product, and ax is always moved by
    ax + mu * (p - ax), also while mu = 1 (never copied from p).
"""

from __future__ import annotations

import numpy as np

from ._scalar import where

SLOTS = (("ax", "required"),)
#: why ``state_dtype`` stays "float32": ax is a parameter (the average of the iterates), not a
#: moment, and its increments mu * (p - ax) shrink as 1/k below the narrow formats' gaps, so a
#: rounded ax would stop moving (peers quantize moments only)
FLOAT32_STATE = (
    "ax is the average of the parameters, not a moment: its shrinking increments "
    "mu * (p - ax) fall below the narrow formats' gaps and a rounded ax stops moving"
)
#: eta and mu of the next update (eta 0 until a parameter's first update, which uses lr)
STEP_STATE = (("eta", 0.0), ("mu", 1.0))
#: a NumPy array of learning rates (a sweep's column): NumPy's, also where the JAX engine
#: rebinds ``np`` (a traced learning rate is a JAX array, and takes the plain formula)
_HOST_ARRAY = np.ndarray


def _eta(t, lr, lambd, alpha):
    """lr / (1 + lambd * lr * t)^alpha in Python floats (the C library's pow, as torch's
    Python expression), 0 where the power overflows."""
    try:
        return lr / ((1.0 + lambd * lr * t) ** alpha)
    except OverflowError:
        return 0.0


def next_eta_mu(t, lr, *, lambd, alpha, t0, state_dtype=None, capturable=False, lr_dtype=None):
    """eta and mu after update ``t`` (the numbers of update t + 1)::

        eta = lr / (1 + lambd * lr * t)^alpha,   mu = 1 / max(1, t - t0)

    in double precision and then rounded to ``state_dtype``; under ``capturable`` computed in
    ``state_dtype`` (default float64) operation by operation, as torch's tensor expressions
    on a step tensor of that dtype do; with ``lr_dtype`` (torch's tensor lr, which it keeps a
    tensor) eta is computed in that dtype, operation by operation, then rounded to
    ``state_dtype``. A power too large for a float (an overflow, which torch raises as
    OverflowError) gives eta = 0, its limit."""
    if capturable:
        f = np.dtype(state_dtype or np.float64).type
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            step = f(t)
            base = f(1.0) + step * f(lambd * lr)  # (lambd * lr): a Python product first
            eta = f(lr) / (base ** f(alpha))
            mu = f(1.0) / np.maximum(step - f(t0), f(1.0))
        return float(eta), float(mu)
    if isinstance(lr, _HOST_ARRAY):  # a sweep's column of rates: each as a Python float
        eta = np.vectorize(lambda x: _eta(t, x, lambd, alpha), otypes=[float])(lr)
    elif lr_dtype is not None:  # lr / ((1 + lambd * lr * step)^alpha) on a 0-d tensor lr
        f = np.dtype(lr_dtype).type
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            eta = float(f(lr) / ((f(1.0) + f(lambd) * f(lr) * f(t)) ** f(alpha)))
    else:
        eta = _eta(t, lr, lambd, alpha)
    mu = 1.0 / where(t - t0 > 1.0, t - t0, 1.0)  # 1 / max(1, t - t0)
    if state_dtype is not None:
        cast = np.dtype(state_dtype).type
        eta, mu = float(cast(eta)), float(cast(mu))
    return eta, mu


def scalars(
    t, lr, step_state, *, lambd, alpha, t0, state_dtype=None, capturable=False, lr_dtype=None
):
    """Per-step numbers ``(decay, eta, mu, average)`` with p = p * decay - eta * g, decay =
    1 - lambd * eta, and ax moved towards p by mu where ``average`` (mu != 1, or always under
    ``capturable``), else set to p; and the step state ``(eta, mu)`` of the next update.

    The choices the step decides are ``where``s (the first update, whether mu != 1), so a
    traced step count runs this too (:mod:`optimlab.engines.jax_engine`: ``average`` is
    then a traced flag); ``state_dtype``, ``capturable`` and ``lr_dtype`` (optimlab.torch's
    ASGD) compute on the host."""
    eta, mu = step_state
    first = t == 1  # a parameter's first update: torch creates eta = lr and mu = 1 then
    eta = where(first, lr if state_dtype is None else float(np.dtype(state_dtype).type(lr)), eta)
    mu = where(first, 1.0, mu)
    if capturable:  # 1 - lambd * eta of a 0-d tensor eta: in its dtype
        f = np.dtype(state_dtype or np.float64).type
        decay = float(f(1.0) - f(lambd) * f(eta))
    else:
        decay = 1.0 - lambd * eta
    average = where(capturable or mu != 1.0, True, False)  # a bool (or a traced flag)
    new_state = next_eta_mu(
        t,
        lr,
        lambd=lambd,
        alpha=alpha,
        t0=t0,
        state_dtype=state_dtype,
        capturable=capturable,
        lr_dtype=lr_dtype,
    )
    return (decay, eta, mu, average), new_state


def update(p, g, ax, decay, eta, mu, average):
    """One ASGD update; returns ``(p, ax)``."""
    p = p * decay - eta * g
    if average:
        ax = ax + (p - ax) * mu
    else:
        ax = p
    return p, ax
