"""Line searches with a closure: along a direction d from x, find a step t for x + t d that
satisfies the strong Wolfe conditions (Nocedal & Wright, "Numerical Optimization", 2006,
equations 3.7a and 3.7c)::

    f(x + t d) <= f(x) + c1 t g.d           (sufficient decrease, Armijo)
    |g(x + t d).d| <= c2 |g.d|              (small curvature)

Two implementations, each the exact procedure of one peer:

:func:`strong_wolfe`
    torch.optim.LBFGS's ``_strong_wolfe`` (ported by torch from minFunc/torch7's
    ``lswolfe.lua``): a bracketing phase whose trials extrapolate by cubic interpolation
    within [t + 0.01 (t - t_prev), 10 t], then a zoom by cubic interpolation with a guard
    that keeps trials 0.1 of the bracket away from its ends.
:func:`zoom`
    optax's ``zoom_linesearch`` (Algorithms 3.5 and 3.6 of Nocedal & Wright, with Hager &
    Zhang's approximate decrease test, 2006): the step doubles until an interval is found,
    then cubic, quadratic or bisection trials zoom into it; a step with sufficient decrease
    is kept as a fallback ("safe") when the curvature test cannot be met.

Both take ``evaluate(t) -> (f, g)``, the value and flat gradient at x + t d (the caller owns
the parameters), and count their evaluations. Everything here is scalar arithmetic on the
values, slopes and steps; the only vector work is g.d.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NUMPY_OPS", "cubic_interpolate", "strong_wolfe", "zoom", "cubicmin", "quadmin"]


class NumpyOps:
    """The few vector operations of the L-BFGS iteration, on NumPy arrays. The torch face
    passes its own (torch's ``add(alpha=)``, ``abs().max()``, ...), so that the same iteration
    computes with torch's arithmetic on tensors."""

    @staticmethod
    def axpy(x, a, y):
        """x + a y"""
        return x + a * y

    @staticmethod
    def abs_max(v):
        """max |v_i|"""
        return np.abs(v).max()

    @staticmethod
    def abs_sum(v):
        """sum |v_i|"""
        return np.abs(v).sum()

    @staticmethod
    def sqrt(x):
        """the square root of a scalar"""
        return np.sqrt(x)


NUMPY_OPS = NumpyOps()


def _sqrt(x):
    return x.sqrt() if hasattr(x, "sqrt") else np.sqrt(x)


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clipped
    to ``bounds`` (default: the interval of x1 and x2); the middle of the bounds where the
    cubic has no minimizer (torch's ``_cubic_interpolate``, from torch7's ``polyinterp.lua``)::

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        t  = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)        (x1 <= x2)
    """
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = _sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def strong_wolfe(
    evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25, ops=NUMPY_OPS
):
    """torch's strong-Wolfe search from step ``t`` along ``d``, with f, g and gtd = g.d at t = 0.

    Phase 1 (bracketing): accept t when both conditions hold; a bracket [t_prev, t] is found
    when sufficient decrease fails, f stops falling (after two trials) or the slope turns
    non-negative; otherwise the next trial is the cubic step within [t + 0.01 (t - t_prev),
    10 t]. Phase 2 (zoom): cubic steps inside the bracket, moved to 0.1 of its length from the
    nearer end when they come too close twice (or land on an end), until the conditions hold,
    the bracket is shorter than ``tolerance_change`` (in units of max |d|) or ``max_ls``
    evaluations are spent. Returns ``(f, g, t, evaluations)`` of the best point found.
    ``ops.abs_max`` gives max |d| (:class:`NumpyOps`; the torch face passes torch's).
    """
    d_norm = ops.abs_max(d)
    f_new, g_new = evaluate(t)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = evaluate(t)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def cubicmin(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a
    (optax's ``_cubicmin``, after scipy's ``_cubicmin``); NaN where there is none::

        [A, B] = [[dc^2, -db^2], [-dc^3, db^3]] [fb - fa - fpa db, fc - fa - fpa dc]
                 / ((db dc)^2 (db - dc)),       db = b - a, dc = c - a
        x = a + (-B + sqrt(B^2 - 3 A fpa)) / (3 A)
    """
    C = fpa
    db = b - a
    dc = c - a
    denom = (db * dc) ** 2 * (db - dc)
    u = fb - fa - C * db
    v = fc - fa - C * dc
    A = (dc**2 * u + -(db**2) * v) / denom
    B = (-(dc**3) * u + db**3 * v) / denom
    radical = B * B - 3.0 * A * C
    return a + (-B + np.sqrt(radical)) / (3.0 * A)


def quadmin(a, fa, fpa, b, fb):
    """The critical point of the parabola through (a, fa), (b, fb) with slope fpa at a
    (optax's ``_quadmin``): x = a - fpa / (2 B), B = (fb - fa - fpa (b - a)) / (b - a)^2."""
    D = fa
    C = fpa
    db = b - a
    B = (fb - D - C * db) / (db**2)
    return a - C / (2.0 * B)


def _nan_to_inf(x):
    return math.inf if x != x else x


def zoom(
    evaluate,
    d,
    value,
    grad,
    stepsize_guess=1.0,
    max_linesearch_steps=20,
    max_stepsize=None,
    tol=0.0,
    increase_factor=2.0,
    slope_rtol=1e-4,
    curv_rtol=0.9,
    approx_dec_rtol=1e-6,
    interval_threshold=1e-5,
):
    """optax's zoom line search along ``d`` from the point of ``value`` and ``grad``.

    Errors (0 where a condition holds, NaN counted as infinite)::

        decrease  = max(0, f_t - f_0 - slope_rtol t s_0)         s = g.d, the slope
                    (with approx_dec_rtol: the minimum of that and
                     max(s_t - (2 slope_rtol - 1) s_0, f_t - f_0 - approx_dec_rtol |f_0|))
        curvature = max(0, |s_t| - curv_rtol |s_0|)

    Interval search: t = stepsize_guess, then t times increase_factor (at most
    ``max_stepsize``) until the errors are <= ``tol`` or an interval is found (Algorithm 3.5).
    Zoom: the cubic step if it lies 0.2 of the interval inside it, else the quadratic step
    0.1 inside, else the middle (Algorithm 3.6). After ``max_linesearch_steps`` evaluations, or
    once the interval is shorter than ``interval_threshold`` with a sufficient-decrease step in
    hand, it stops at the best such "safe" step (or the last one if there is none and the
    values are finite). Returns ``(t, f, g, evaluations, decrease_error, curvature_error)``.
    """
    slope_init = grad.dot(d)
    value_init = value

    def decrease_error(t, f_t, s_t):
        err = f_t - value_init - slope_rtol * t * slope_init
        if approx_dec_rtol is not None:
            approx = s_t - (2 * slope_rtol - 1.0) * slope_init
            delta = f_t - value_init - approx_dec_rtol * abs(value_init)
            approx = np.maximum(approx, delta)
            err = np.minimum(approx, err)
        return _nan_to_inf(np.maximum(err, 0.0))

    def curvature_error(s_t):
        return _nan_to_inf(np.maximum(abs(s_t) - curv_rtol * abs(slope_init), 0.0))

    count = 0
    stepsize, f_cur, g_cur, slope = 0.0, value, grad, slope_init
    dec_err = cur_err = math.inf
    interval_found = done = failed = False
    low = high = cubic_ref = 0.0
    value_low = value_high = value_cubic_ref = value
    slope_low = slope_init  # (optax's slope_high is never read)
    safe_stepsize, safe_value, safe_grad = 0.0, value, grad

    with np.errstate(all="ignore"):
        while not (done or failed):
            if not interval_found:
                # Algorithm 3.5: grow the step until an interval is bracketed
                new = stepsize_guess if count == 0 else increase_factor * stepsize
                if max_stepsize is not None:
                    max_reached = new >= max_stepsize
                    new = min(new, max_stepsize)
                else:
                    max_reached = False
                f_new, g_new = evaluate(new)
                s_new = g_new.dot(d)
                dec_err = decrease_error(new, f_new, s_new)
                cur_err = curvature_error(s_new)
                err = max(dec_err, cur_err)
                if dec_err <= tol:
                    safe_stepsize, safe_value, safe_grad = new, f_new, g_new
                set_high = (dec_err > 0.0) or (f_new >= f_cur and count > 0)
                set_low = (s_new >= 0.0) and not set_high
                if set_low:
                    low, value_low, slope_low = new, f_new, s_new
                    high, value_high = stepsize, f_cur
                else:
                    low, value_low, slope_low = stepsize, f_cur, slope
                    high, value_high = new, f_new
                interval_found = set_high or set_low or err <= tol
                done = err <= tol or (max_reached and not interval_found)
                failed = count + 1 >= max_linesearch_steps and not done
                cubic_ref, value_cubic_ref = low, value_low
                stepsize, f_cur, g_cur, slope = new, f_new, g_new, s_new
            else:
                # Algorithm 3.6: zoom into [low, high]
                delta = abs(high - low)
                left, right = min(high, low), max(high, low)
                too_small = delta <= interval_threshold
                mid_c = cubicmin(
                    low, value_low, slope_low, high, value_high, cubic_ref, value_cubic_ref
                )
                use_cubic = (mid_c > left + 0.2 * delta) and (mid_c < right - 0.2 * delta)
                mid_q = quadmin(low, value_low, slope_low, high, value_high)
                use_quad = not use_cubic and (
                    (mid_q > left + 0.1 * delta) and (mid_q < right - 0.1 * delta)
                )
                if use_cubic:
                    middle = mid_c
                elif use_quad:
                    middle = mid_q
                else:
                    middle = (low + high) / 2.0
                f_mid, g_mid = evaluate(middle)
                s_mid = g_mid.dot(d)
                dec_err = decrease_error(middle, f_mid, s_mid)
                cur_err = curvature_error(s_mid)
                err = max(dec_err, cur_err)
                if dec_err <= tol and f_mid < safe_value:
                    safe_stepsize, safe_value, safe_grad = middle, f_mid, g_mid
                done = err <= tol
                set_high_mid = (dec_err > 0.0) or (f_mid >= value_low)
                set_high_low = (s_mid * (high - low) >= 0.0) and not set_high_mid
                if set_high_mid or set_high_low:
                    cubic_ref, value_cubic_ref = high, value_high
                else:
                    cubic_ref, value_cubic_ref = low, value_low
                if set_high_low:
                    high, value_high = low, value_low
                elif set_high_mid:
                    high, value_high = middle, f_mid
                if not set_high_mid:
                    low, value_low, slope_low = middle, f_mid, s_mid
                failed = (
                    count + 1 >= max_linesearch_steps or (too_small and safe_stepsize > 0.0)
                ) and (not done)
                stepsize, f_cur, g_cur, slope = middle, f_mid, g_mid, s_mid
            count += 1
            if failed and (safe_stepsize > 0.0 or math.isinf(dec_err)):
                # optax's _try_safe_step: the best sufficient-decrease step, if any
                stepsize, f_cur, g_cur = safe_stepsize, safe_value, safe_grad
    return stepsize, f_cur, g_cur, count, dec_err, cur_err
