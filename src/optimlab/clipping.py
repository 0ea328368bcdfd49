"""Gradient clipping, in each peer's exact formula.

With n the L2 norm of a gradient (``clipnorm``: of each gradient on its own;
``global_clipnorm``: of all gradients of the update together) and c the threshold:

=========  ============================================  ===================================
style      scale applied to the gradient(s)              source
=========  ============================================  ===================================
keras      c * min(1/n, 1/c)  (= c / max(n, c))          keras ``clip_by_global_norm``,
                                                         ``Optimizer._clip_by_norm``
torch      min(1, c / (n + 1e-6))                        ``torch.nn.utils.clip_grad_norm_``
optax      1 if n < c else c / n                         ``optax.clip_by_global_norm``
=========  ============================================  ===================================

``clipvalue`` clips every element to [-c, c] (all three agree).

Note the ``1e-6`` in PyTorch: a gradient whose norm is exactly c is still scaled by
c / (c + 1e-6), and any gradient with n > c ends slightly *below* c.
"""

from __future__ import annotations

import math

import numpy as np

CLIP_STYLES = ("keras", "torch", "optax")


def norm_scale(norm: float, clip: float, style: str) -> float:
    """The factor that multiplies a gradient of L2 norm ``norm`` when clipping at ``clip``."""
    if style == "keras":
        return clip * min(1.0 / norm, 1.0 / clip) if norm > 0 else 1.0
    if style == "torch":
        return min(1.0, clip / (norm + 1e-6))
    if style == "optax":
        return 1.0 if norm < clip else clip / norm
    raise ValueError(f"clip_style must be one of {CLIP_STYLES}, got {style!r}")


def l2_norm(arrays) -> float:
    """sqrt(sum of squares) over a list of arrays, accumulated in float64.

    Where the squares overflow (float64 values beyond about 1e154) the norm is computed again
    as ``m * sqrt(sum((a / m)^2))`` with m the largest magnitude (:func:`scaled_l2_norm`), so
    that a finite gradient has a finite norm and is scaled, not zeroed, by norm clipping."""
    total = 0.0
    with np.errstate(over="ignore"):
        for a in arrays:
            flat = a.ravel().astype(np.float64)
            total += float(np.dot(flat, flat))
    if math.isinf(total):
        return scaled_l2_norm(arrays)
    return math.sqrt(total)


def scaled_l2_norm(arrays, loss_scale: float = 1.0) -> float:
    """The L2 norm of ``arrays / loss_scale`` without overflow of the squares: m * sqrt(sum(
    (a / m)^2)) with m = max |a / loss_scale| (Inf or NaN if an element is)."""
    with np.errstate(over="ignore", invalid="ignore"):
        parts = [np.abs(np.ravel(a).astype(np.float64) / loss_scale) for a in arrays]
        m = max((float(p.max()) for p in parts if p.size), default=0.0)
        if m == 0.0 or not math.isfinite(m):
            return m
        return m * math.sqrt(sum(float(np.dot(p / m, p / m)) for p in parts))


def clip_by_value(grads, clip: float):
    """Elementwise clip of every gradient to [-clip, clip]; returns new arrays."""
    return [np.clip(g, -clip, clip) for g in grads]


def clip_by_norm(grads, clip: float, style: str):
    """Rescale each gradient on its own so that its L2 norm is at most ``clip``."""
    out = []
    for g in grads:
        scale = norm_scale(l2_norm([g]), clip, style)
        out.append(g * g.dtype.type(scale) if scale != 1.0 else g)
    return out


def clip_by_global_norm(grads, clip: float, style: str):
    """Rescale all gradients together so that their joint L2 norm is at most ``clip``."""
    scale = norm_scale(l2_norm(grads), clip, style)
    if scale == 1.0:
        return list(grads)
    return [g * g.dtype.type(scale) for g in grads]
