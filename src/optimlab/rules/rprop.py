"""Rprop (Riedmiller & Braun 1993, "A Direct Adaptive Method for Faster Backpropagation
Learning: The RPROP Algorithm"): every coordinate keeps its own step size, which grows while
the gradient keeps its sign and shrinks when it flips; only the sign of the gradient moves the
parameter, never its size::

    s = g * prev                                  (the sign of s is what matters)
    step = step * eta_plus    where s > 0         (same sign again: larger steps)
    step = step * eta_minus   where s < 0         (the sign flipped: a minimum was jumped over)
    step = clip(step, min_step_size, max_step_size)
    g = 0                     where s < 0         (no move, and the next s is 0)
    p = p - sign(g) * step
    prev = g                                      (compare_with="gradient": PyTorch)
    prev = sign(g) * step                         (compare_with="update": optax, the update)

This is the variant without weight backtracking (Rprop-; Igel & Huesken 2003 call it so), as
torch.optim.Rprop and optax.rprop implement it. They differ in three details, each an option:

``clamp_every_step``
    True (PyTorch): the clip to [min_step_size, max_step_size] runs on every step, also where
    s = 0, so a learning rate outside the range is brought into it by the first update.
    False (optax): a step size whose s is 0 is left as it is (the first update uses the
    learning rate as given).
``compare_with``
    what ``prev`` holds: the previous gradient (``"gradient"``: PyTorch's ``prev``) or the
    previous update (``"update"``: optax's ``prev_updates``). The sign of s is the same either
    way; the products differ where they underflow or overflow, and the state holds other
    numbers.
``delayed_update``
    True (optax 0.2.8): the update applied is the one computed at the *previous* step (the
    ``prev`` that comes in, zeroed where s < 0), so the first update moves nothing and every
    later one lags a step behind: ``p = p - prev_before`` where s >= 0. This is a bug of
    ``optax.scale_by_rprop`` (its update is built from ``state.prev_updates`` instead of the
    value just computed; reported in google-deepmind/optax pull request 1725, not merged in
    0.2.8); the optax preset reproduces it, as its purpose is optax's numbers. It needs
    ``compare_with="update"`` (only then does ``prev`` hold the previous update).

The learning rate is only the initial step size: a parameter's first update starts its step
sizes at the learning rate of that update (the slot holds 0 until then), and later values of
the learning rate (a change, a schedule) are ignored, as in both peers (torch reads
``group["lr"]`` when it creates a parameter's state, optax when it initializes its state).

Non-finite gradients (with ``nan_policy="propagate"``) go as in PyTorch, whose ``sign`` of
NaN is 0: where s is NaN (a NaN gradient, or an infinite one meeting a zero ``prev``) the step
size is held, and a NaN gradient does not move its coordinate (an infinite one moves it by
the step size). optax, whose sign of NaN is NaN, would shrink the step size there and make the
coordinate NaN; its preset does not copy that.
"""

from __future__ import annotations

from ._scalar import where

SLOTS = (("prev", "required"), ("step_size", "required"))
#: ``state_dtype="int8"`` / ``"bfloat16"``: prev only, which takes both signs and whose sign is
#: what s = g * prev reads (a value rounded to 0 holds its step size, as a zero gradient does;
#: under ``delayed_update`` the applied update is the rounded one). The step sizes stay float32:
#: 0 marks one not yet started, and int8 rounds sizes under about 1.6e-7 of their block's largest
#: to 0 (min_step_size / max_step_size is 2e-8 by default), which would restart them at lr
QUANTIZED_SLOTS = {"prev": "signed"}


def scalars(
    t,
    lr,
    *,
    eta_minus,
    eta_plus,
    min_step_size,
    max_step_size,
    clamp_every_step,
    compare_with,
    delayed_update,
):
    """Per-step numbers: (lr, eta_minus, eta_plus, min_step_size, max_step_size, 1, 0,
    clamp_every_step, whether prev holds the update, delayed_update)."""
    return (
        lr,
        eta_minus,
        eta_plus,
        min_step_size,
        max_step_size,
        1.0,
        0.0,
        bool(clamp_every_step),
        compare_with == "update",
        bool(delayed_update),
    )


def update(
    p,
    g,
    prev,
    step_size,
    lr,
    eta_minus,
    eta_plus,
    min_step,
    max_step,
    one,
    zero,
    clamp_every_step,
    prev_is_update,
    delayed_update,
):
    """One Rprop update; returns ``(p, prev, step_size)``.

    The three cases of s = g * prev are the comparisons ``grow`` (s > 0), ``shrink`` (s < 0)
    and ``hold`` (the rest: s = 0, or NaN as torch.sign takes it), and every choice between
    them is a ``where`` (``rules._scalar``: ``np.where`` on arrays, one vector select in the
    compiled kernel), so that the same code runs on arrays and on single numbers alike. (Its
    earlier form, products with 0/1 masks and NaN-propagating maxima, gave the same numbers
    at about six times the instructions per element, which made the fused step compute-bound.)
    The values chosen among are of the parameter's dtype: ``unit``, a 1 of that dtype (a
    Python float 1 would make NumPy's choice float64), and products of it. A step size is
    never NaN: ``unit`` is always 1.
    """
    unit = step_size * zero + one
    step_size = where(step_size > zero, step_size, step_size + unit * lr)  # 0: not started
    s = g * prev
    grow = s > zero
    shrink = s < zero
    step = step_size * where(grow, unit * eta_plus, where(shrink, unit * eta_minus, unit))
    if clamp_every_step:
        low, high = min_step, max_step
    else:  # optax: where s = 0 the bounds open up to [0, max_step + step_size]
        hold = where(grow | shrink, zero, unit)
        low = min_step - hold * min_step
        high = max_step + hold * step_size
    step = where(step < low, low, step)  # clip(step, low, high)
    step_size = where(step > high, high, step)
    g = where(shrink, zero, g + zero)  # g = 0 where s < 0 (+ 0: no -0 left)
    direction = where(g > zero, unit, where(g < zero, -unit, zero))  # sign(g), 0 for NaN
    if delayed_update:  # optax 0.2.8: the previous update (finite), where s >= 0
        p = p - prev * where(shrink, zero, unit)
    else:
        p = p - direction * step_size
    prev = direction * step_size if prev_is_update else g
    return p, prev, step_size
