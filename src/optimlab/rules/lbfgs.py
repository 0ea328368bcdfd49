"""L-BFGS (Nocedal 1980, "Updating Quasi-Newton Matrices with Limited Storage"; Liu & Nocedal
1989; Algorithms 7.4 and 7.5 of Nocedal & Wright, "Numerical Optimization", 2006): the
direction is the gradient multiplied by an approximation H of the inverse Hessian built from
the last m secant pairs (s_i, y_i) = (x_{i+1} - x_i, g_{i+1} - g_i), never stored as a matrix::

    rho_i = 1 / (y_i . s_i)
    q = v                                      (v: the vector to precondition)
    for i = newest .. oldest:                  (the first loop)
        a_i = rho_i * (s_i . q)
        q = q - a_i * y_i
    r = gamma * q                              (H_0 = gamma I, gamma = (s . y) / (y . y))
    for i = oldest .. newest:                  (the second loop)
        b_i = rho_i * (y_i . r)
        r = r + (a_i - b_i) * s_i
    H v = r

The rule is whole-vector math (dot products), so it is a tensor-level rule: this module is
the one place of the two-loop recursion and of the memory update; the iteration around it
(line search, stopping rules, first step) is :mod:`optimlab.lbfgs`, the line searches
:mod:`optimlab.line_search`. Each function takes and returns flat NumPy vectors of one dtype
and never writes into its arguments.

The peers differ in how a pair enters the memory (an option of :func:`remember`):

``min_curvature=1e-10`` (torch.optim.LBFGS)
    a pair is kept only where y . s > 1e-10 (so H stays positive definite); gamma moves only
    with a kept pair.
``min_curvature=None`` (optax.scale_by_lbfgs)
    every pair is kept, with rho = 0 where y . s == 0 (optax's circular buffer of zeros holds
    the pairs not made yet, each with rho = 0, which changes nothing); gamma comes from the
    newest pair (1 where y . y == 0).
"""

from __future__ import annotations

import numpy as np

TENSOR = True

__all__ = ["TENSOR", "axpy", "two_loop", "remember"]


def axpy(x, a, y):
    """x + a y (torch's face passes ``torch.add(x, y, alpha=a)``, torch's own arithmetic)."""
    return x + a * y


def two_loop(v, old_dirs, old_stps, ro, gamma, axpy=axpy):
    """H v by the two-loop recursion above (Nocedal & Wright, Algorithm 7.4).

    ``old_dirs`` are the y_i, ``old_stps`` the s_i and ``ro`` the rho_i, oldest first (torch's
    names and order); ``gamma`` the scale of H_0. Returns ``(H v, a)`` with ``a`` the list of
    the a_i (torch keeps them in its state as ``al``). H(-v) = -(H v) exactly, so torch's
    descent direction is ``two_loop(-g, ...)`` and optax's ``-two_loop(g, ...)``, the same
    numbers. ``axpy(x, a, y) = x + a y`` is the one vector update.
    """
    m = len(old_dirs)
    al = [None] * m
    q = v
    for i in range(m - 1, -1, -1):
        al[i] = old_stps[i].dot(q) * ro[i]
        q = axpy(q, -al[i], old_dirs[i])
    r = q * gamma
    for i in range(m):
        be_i = old_dirs[i].dot(r) * ro[i]
        r = axpy(r, al[i] - be_i, old_stps[i])
    return r, al


def remember(old_dirs, old_stps, ro, gamma, y, s, memory_size, min_curvature, scale_init=True):
    """The memory after the secant pair (s, y): ``(old_dirs, old_stps, ro, gamma)``, new lists.

    With ``min_curvature`` a float (torch), the pair is kept only where ys = y . s exceeds it,
    with rho = 1 / ys and gamma = ys / (y . y); otherwise the memory and gamma stay as they
    were. With ``min_curvature=None`` (optax) the pair is always kept, rho = 1 / ys (0 where
    ys == 0), and gamma = ys / (y . y) (1 where y . y == 0; 1 always when ``scale_init`` is
    False). The oldest pair leaves once ``memory_size`` pairs are held.
    """
    ys = y.dot(s)
    if min_curvature is not None:
        if not ys > min_curvature:
            return list(old_dirs), list(old_stps), list(ro), gamma
        rho = 1.0 / ys
        gamma = ys / y.dot(y)
    else:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rho = ys * 0 if ys == 0 else 1.0 / ys
            if scale_init:
                yy = y.dot(y)
                gamma = ys / yy if yy > 0 else np.ones((), ys.dtype)[()]
            else:
                gamma = 1.0
    keep = len(old_dirs) == memory_size
    old_dirs = list(old_dirs[keep:]) + [y]
    old_stps = list(old_stps[keep:]) + [s]
    ro = list(ro[keep:]) + [rho]
    return old_dirs, old_stps, ro, gamma
