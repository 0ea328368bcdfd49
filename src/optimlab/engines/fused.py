"""The fused engine: one compiled, in-place pass over memory per parameter and step.

For each element i, in registers, with no temporary arrays::

    g = g[i] / loss_scale                      (if loss scaling)
    g = g * gscale                             (gscale = -1 for maximize, times the clip scale)
    g = min(max(g, -clipvalue), clipvalue)     (if clipvalue)
    g = g + wd * p[i]                          (L2 weight decay)
    p = p[i] - p[i] * (wd * lr)                (decoupled weight decay, unless the rule
                                               takes it: DECAY, the decay after the scalars)
    p, s1[i], s2[i], ... = rule.update(p, g, s1[i], s2[i], ..., *scalars)
    ema[i] = mu * ema[i] + (1 - mu) * p        (if an EMA of the weights is kept)

``rule.update`` is the very function the reference engine runs on whole arrays: numba compiles
it for single numbers. All scalars arrive in the parameter's dtype and the rules have no float
literals, so a float32 step computes in float32 throughout, like NumPy does, and both engines
give bit-identical parameters and state (the norm used by norm clipping is summed in a different
order, which can change its last bit).

Kernels are compiled on first use (``cache=True`` keeps them on disk for the next process);
importing optimlab compiles nothing. Arrays at or above ``PARALLEL_THRESHOLD`` elements run on
all numba threads (``prange``), smaller ones serially, which costs about 1.5 microseconds.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..rules import (
    adadelta,
    adagrad,
    adam,
    adamax,
    asgd,
    ftrl,
    lion,
    nadam,
    radam,
    rmsprop,
    rprop,
    schedule_free_adamw,
    sgd,
)

PARALLEL_THRESHOLD = 32768
_OPTS = dict(error_model="numpy", boundscheck=False, nogil=True, cache=True)


# -- the per-element pipeline -------------------------------------------------------------------


@njit(**_OPTS)
def _prepare_args(gi, pi, loss_scale, gscale, clipvalue, wd, wdlr, factor):
    # An option that is off arrives as None: numba then compiles this function without its
    # branch (a runtime flag per option would keep the loop from vectorizing).
    if loss_scale is not None:
        gi = gi / loss_scale
    if gscale is not None:
        gi = gi * gscale
    if clipvalue is not None:
        if gi > clipvalue:
            gi = clipvalue
        elif gi < -clipvalue:
            gi = -clipvalue
    if wd is not None:
        gi = gi + wd * pi
    if wdlr is not None:
        pi = pi - pi * wdlr
    if factor is not None:
        pi = pi * factor
    return gi, pi


@njit(**_OPTS)
def _prepare(gi, pi, pipe):
    """The gradient and parameter the rule sees: loss scale, sign and clipping, weight decay."""
    return _prepare_args(gi, pi, pipe[0], pipe[1], pipe[2], pipe[3], pipe[4], pipe[7])


@njit(**_OPTS)
def _average(i, ema, pi, pipe):
    if ema is not None:
        ema[i] = pipe[5] * ema[i] + pipe[6] * pi


# -- one element function per rule (slots that are switched off arrive as None) ----------------

_sgd = njit(**_OPTS)(sgd.update)
_adagrad = njit(**_OPTS)(adagrad.update)
_rmsprop = njit(**_OPTS)(rmsprop.update)
_adam = njit(**_OPTS)(adam.update)
_nadam = njit(**_OPTS)(nadam.update)
_adamax = njit(**_OPTS)(adamax.update)
_adadelta = njit(**_OPTS)(adadelta.update)
_lion = njit(**_OPTS)(lion.update)
_radam = njit(**_OPTS)(radam.update)
_rprop = njit(**_OPTS)(rprop.update)
_ftrl = njit(**_OPTS)(ftrl.update)
_asgd = njit(**_OPTS)(asgd.update)
_schedule_free_adamw = njit(**_OPTS)(schedule_free_adamw.update)


@njit(**_OPTS)
def _sgd_element(i, p, g, buf, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    if buf is None:
        pi, _ = _sgd(pi, gi, gi, *s)
    else:
        pi, buf[i] = _sgd(pi, gi, buf[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _adagrad_element(i, p, g, acc, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, acc[i] = _adagrad(pi, gi, acc[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _rmsprop_element(i, p, g, v, gbar, buf, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    gb = gi if gbar is None else gbar[i]
    bu = gi if buf is None else buf[i]
    pi, v[i], gb, bu = _rmsprop(pi, gi, v[i], gb, bu, *s)
    p[i] = pi
    if gbar is not None:
        gbar[i] = gb
    if buf is not None:
        buf[i] = bu
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _adam_element(i, p, g, m, v, v_max, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    vm = gi if v_max is None else v_max[i]
    pi, m[i], v[i], vm = _adam(pi, gi, m[i], v[i], vm, *s)
    p[i] = pi
    if v_max is not None:
        v_max[i] = vm
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _nadam_element(i, p, g, m, v, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, m[i], v[i] = _nadam(pi, gi, m[i], v[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _adamax_element(i, p, g, m, u, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, m[i], u[i] = _adamax(pi, gi, m[i], u[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _adadelta_element(i, p, g, v, a, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, v[i], a[i] = _adadelta(pi, gi, v[i], a[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _lion_element(i, p, g, m, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, m[i] = _lion(pi, gi, m[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _radam_element(i, p, g, m, v, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, m[i], v[i] = _radam(pi, gi, m[i], v[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _rprop_element(i, p, g, prev, step_size, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, prev[i], step_size[i] = _rprop(pi, gi, prev[i], step_size[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _ftrl_element(i, p, g, n, z, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, n[i], z[i] = _ftrl(pi, gi, n[i], z[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _asgd_element(i, p, g, ax, ema, s, pipe):
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, ax[i] = _asgd(pi, gi, ax[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


@njit(**_OPTS)
def _schedule_free_adamw_element(i, p, g, z, v, ema, s, pipe):
    # s ends with the parameter's decoupled weight decay (None when off): the rule applies it
    gi, pi = _prepare(g[i], p[i], pipe)
    pi, z[i], v[i] = _schedule_free_adamw(pi, gi, z[i], v[i], *s)
    p[i] = pi
    _average(i, ema, pi, pipe)


# -- the loops: parallel and serial, one pair per rule -----------------------------------------
# (explicit defs: numba caches a compiled function by its source location, and a loop that took
# the element function as an argument would pay for resolving its type on every call)


@njit(parallel=True, **_OPTS)
def _sgd_parallel(p, g, buf, ema, s, pipe):
    for i in prange(p.size):
        _sgd_element(i, p, g, buf, ema, s, pipe)


@njit(**_OPTS)
def _sgd_serial(p, g, buf, ema, s, pipe):
    for i in range(p.size):
        _sgd_element(i, p, g, buf, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _adagrad_parallel(p, g, acc, ema, s, pipe):
    for i in prange(p.size):
        _adagrad_element(i, p, g, acc, ema, s, pipe)


@njit(**_OPTS)
def _adagrad_serial(p, g, acc, ema, s, pipe):
    for i in range(p.size):
        _adagrad_element(i, p, g, acc, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _rmsprop_parallel(p, g, v, gbar, buf, ema, s, pipe):
    for i in prange(p.size):
        _rmsprop_element(i, p, g, v, gbar, buf, ema, s, pipe)


@njit(**_OPTS)
def _rmsprop_serial(p, g, v, gbar, buf, ema, s, pipe):
    for i in range(p.size):
        _rmsprop_element(i, p, g, v, gbar, buf, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _adam_parallel(p, g, m, v, v_max, ema, s, pipe):
    for i in prange(p.size):
        _adam_element(i, p, g, m, v, v_max, ema, s, pipe)


@njit(**_OPTS)
def _adam_serial(p, g, m, v, v_max, ema, s, pipe):
    for i in range(p.size):
        _adam_element(i, p, g, m, v, v_max, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _nadam_parallel(p, g, m, v, ema, s, pipe):
    for i in prange(p.size):
        _nadam_element(i, p, g, m, v, ema, s, pipe)


@njit(**_OPTS)
def _nadam_serial(p, g, m, v, ema, s, pipe):
    for i in range(p.size):
        _nadam_element(i, p, g, m, v, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _adamax_parallel(p, g, m, u, ema, s, pipe):
    for i in prange(p.size):
        _adamax_element(i, p, g, m, u, ema, s, pipe)


@njit(**_OPTS)
def _adamax_serial(p, g, m, u, ema, s, pipe):
    for i in range(p.size):
        _adamax_element(i, p, g, m, u, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _adadelta_parallel(p, g, v, a, ema, s, pipe):
    for i in prange(p.size):
        _adadelta_element(i, p, g, v, a, ema, s, pipe)


@njit(**_OPTS)
def _adadelta_serial(p, g, v, a, ema, s, pipe):
    for i in range(p.size):
        _adadelta_element(i, p, g, v, a, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _lion_parallel(p, g, m, ema, s, pipe):
    for i in prange(p.size):
        _lion_element(i, p, g, m, ema, s, pipe)


@njit(**_OPTS)
def _lion_serial(p, g, m, ema, s, pipe):
    for i in range(p.size):
        _lion_element(i, p, g, m, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _radam_parallel(p, g, m, v, ema, s, pipe):
    for i in prange(p.size):
        _radam_element(i, p, g, m, v, ema, s, pipe)


@njit(**_OPTS)
def _radam_serial(p, g, m, v, ema, s, pipe):
    for i in range(p.size):
        _radam_element(i, p, g, m, v, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _rprop_parallel(p, g, prev, step_size, ema, s, pipe):
    for i in prange(p.size):
        _rprop_element(i, p, g, prev, step_size, ema, s, pipe)


@njit(**_OPTS)
def _rprop_serial(p, g, prev, step_size, ema, s, pipe):
    for i in range(p.size):
        _rprop_element(i, p, g, prev, step_size, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _ftrl_parallel(p, g, n, z, ema, s, pipe):
    for i in prange(p.size):
        _ftrl_element(i, p, g, n, z, ema, s, pipe)


@njit(**_OPTS)
def _ftrl_serial(p, g, n, z, ema, s, pipe):
    for i in range(p.size):
        _ftrl_element(i, p, g, n, z, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _asgd_parallel(p, g, ax, ema, s, pipe):
    for i in prange(p.size):
        _asgd_element(i, p, g, ax, ema, s, pipe)


@njit(**_OPTS)
def _asgd_serial(p, g, ax, ema, s, pipe):
    for i in range(p.size):
        _asgd_element(i, p, g, ax, ema, s, pipe)


@njit(parallel=True, **_OPTS)
def _schedule_free_adamw_parallel(p, g, z, v, ema, s, pipe):
    for i in prange(p.size):
        _schedule_free_adamw_element(i, p, g, z, v, ema, s, pipe)


@njit(**_OPTS)
def _schedule_free_adamw_serial(p, g, z, v, ema, s, pipe):
    for i in range(p.size):
        _schedule_free_adamw_element(i, p, g, z, v, ema, s, pipe)


_LOOPS = {
    sgd: (_sgd_parallel, _sgd_serial),
    adagrad: (_adagrad_parallel, _adagrad_serial),
    rmsprop: (_rmsprop_parallel, _rmsprop_serial),
    adam: (_adam_parallel, _adam_serial),
    nadam: (_nadam_parallel, _nadam_serial),
    adamax: (_adamax_parallel, _adamax_serial),
    adadelta: (_adadelta_parallel, _adadelta_serial),
    lion: (_lion_parallel, _lion_serial),
    radam: (_radam_parallel, _radam_serial),
    rprop: (_rprop_parallel, _rprop_serial),
    ftrl: (_ftrl_parallel, _ftrl_serial),
    asgd: (_asgd_parallel, _asgd_serial),
    schedule_free_adamw: (_schedule_free_adamw_parallel, _schedule_free_adamw_serial),
}


# -- reductions ---------------------------------------------------------------------------------


@njit(parallel=True, **_OPTS)
def _sum_of_squares(g, loss_scale):
    total = 0.0
    for i in prange(g.size):
        x = np.float64(g[i]) / loss_scale
        total += x * x
    return total


def _zero_sum(g):
    # sum(g * 0): 0 when every g is finite, NaN otherwise (Inf * 0 and NaN * 0 are NaN). Only
    # reassociation is allowed (so the loop vectorizes): without "no signed zeros" LLVM may not
    # factor the sum into sum(g) * 0, which would overflow (tests/test_fused.py checks).
    total = g.dtype.type(0)
    zero = g.dtype.type(0)
    for i in prange(g.size):
        total += g[i] * zero
    return total


_REDUCE_OPTS = dict(_OPTS, fastmath={"reassoc"})
_zero_sum_parallel = njit(parallel=True, **_REDUCE_OPTS)(_zero_sum)
_zero_sum_serial = njit(**_REDUCE_OPTS)(_zero_sum)


def all_finite(g: np.ndarray, loss_scale: float | None = None) -> bool:
    """Whether every ``g / loss_scale`` (in ``g``'s dtype) is finite: one vectorized read of
    ``g``, parallel for large arrays."""
    g = g.reshape(-1)
    if loss_scale is not None:  # g / s can overflow where g does not: count exactly
        return count_non_finite(g, loss_scale) == 0
    kernel = _zero_sum_parallel if g.size >= PARALLEL_THRESHOLD else _zero_sum_serial
    return kernel(g) == 0


@njit(parallel=True, **_OPTS)
def _count_non_finite(g, loss_scale):
    count = 0
    for i in prange(g.size):
        if not np.isfinite(g[i] / loss_scale):
            count += 1
    return count


def sum_of_squares(g: np.ndarray, loss_scale: float = 1.0) -> float:
    """sum((g / loss_scale)^2) in float64, one parallel read of ``g``."""
    return float(_sum_of_squares(g.reshape(-1), float(loss_scale)))


def count_non_finite(g: np.ndarray, loss_scale: float = 1.0) -> int:
    """The number of NaN/Inf in ``g / loss_scale`` (computed in ``g``'s dtype): one parallel
    read of ``g``."""
    return int(_count_non_finite(g.reshape(-1), g.dtype.type(loss_scale)))


def l2_norm(arrays, loss_scale: float = 1.0) -> float:
    """sqrt of the summed squares of all ``arrays``, as ``clipping.l2_norm`` (including its
    rescaled second pass where the squares overflow)."""
    total = sum(sum_of_squares(a, loss_scale) for a in arrays)
    if math.isinf(total):
        from ..clipping import scaled_l2_norm

        return scaled_l2_norm(arrays, loss_scale)
    return math.sqrt(total)


# -- the engine ---------------------------------------------------------------------------------

NO_PIPELINE = (None, None, None, None, None, 0.0, 1.0, None)


def pipeline(
    *,
    loss_scale=None,
    gscale=1.0,
    clipvalue=None,
    l2=None,
    decoupled_wdlr=None,
    ema_momentum=None,
    decay_factor=None,
):
    """The pipeline tuple of the kernels: (loss scale, gradient scale, clip value, L2 weight
    decay, decoupled wd * lr, EMA momentum, 1 - EMA momentum, decay factor), None for what is
    off; Python floats (``apply`` casts them to the parameter's dtype).

    Decoupled weight decay has two forms: ``p = p - p * (lr * wd)`` (``decoupled_wdlr``: Keras,
    the reference engine) and ``p = p * (1 - lr * wd)`` (``decay_factor``: PyTorch's
    ``param.mul_(1 - lr * wd)``, with the factor rounded to the parameter's dtype)."""

    def opt(x):
        return None if x is None else float(x)

    return (
        opt(loss_scale),
        None if gscale == 1.0 else float(gscale),
        opt(clipvalue),
        opt(l2),
        opt(decoupled_wdlr),
        0.0 if ema_momentum is None else float(ema_momentum),
        1.0 if ema_momentum is None else 1.0 - float(ema_momentum),
        opt(decay_factor),
    )


def supports(*arrays) -> bool:
    """Whether the fused engine can run on these arrays: float32/float64, C-contiguous, writable
    (the gradient only needs to be readable)."""
    dtype = arrays[0].dtype
    if dtype not in (np.float32, np.float64):
        return False
    return all(
        isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous for a in arrays
    )


def _cast(values, dtype):
    """Floats to numpy scalars of ``dtype`` (what keeps a float32 kernel in float32)."""
    cast = dtype.type
    return tuple([v if v is None or v.__class__ is bool else cast(v) for v in values])


def apply(rule, p, g, slots, scalars, pipe=NO_PIPELINE, ema=None) -> None:
    """One fused step of ``rule`` on ``p`` (in place), with its ``slots`` (None where off)."""
    dtype = p.dtype
    if p.ndim != 1:
        p, g = p.reshape(-1), g.reshape(-1)
        slots = [None if s is None else s.reshape(-1) for s in slots]
        ema = None if ema is None else ema.reshape(-1)
    elif g.ndim != 1:
        g = g.reshape(-1)
    loops = _LOOPS[rule]
    loop = loops[0] if p.size >= PARALLEL_THRESHOLD else loops[1]
    loop(
        p,
        g,
        *slots,
        ema,
        _cast(scalars, dtype),
        _cast_pipeline(pipe, dtype),
    )


class Kernel:
    """``apply`` for arrays that stay the same from step to step (the ranges of a ``Params``):
    the loop is chosen once, and after the first call the compiled machine code is called
    directly, without numba's type dispatch (about 5 microseconds less per call).

    ``kernel(scalars, pipe)`` takes Python floats: numba converts them to the parameter's dtype
    as ``_cast`` does. The arrays must not be swapped for others afterwards."""

    def __init__(self, rule, p, g, slots, ema=None):
        self.dtype = p.dtype
        flat = [a if a is None else a.reshape(-1) for a in (p, g, *slots, ema)]
        self.arrays = tuple(flat)
        loops = _LOOPS[rule]
        self.loop = loops[0] if p.size >= PARALLEL_THRESHOLD else loops[1]
        self.entry = None

    def __call__(self, scalars, pipe) -> None:
        if self.entry is not None:
            self.entry(*self.arrays, scalars, pipe)
            return
        args = (*self.arrays, _cast(scalars, self.dtype), _cast_pipeline(pipe, self.dtype))
        self.loop(*args)
        self.entry = compiled_entry(self.loop, args)


class FiniteCheck:
    """``all_finite`` for one array that stays the same (a ``Params`` gradient buffer), called
    without type dispatch after the first call."""

    def __init__(self, g):
        self.g = g.reshape(-1)
        self.kernel = _zero_sum_parallel if g.size >= PARALLEL_THRESHOLD else _zero_sum_serial
        self.kernel(self.g)  # compile (or load) for this type
        self.entry = compiled_entry(self.kernel, (self.g,))

    def __call__(self) -> bool:
        return self.entry(self.g) == 0


def compiled_entry(dispatcher, args):
    """The compiled function of ``dispatcher`` for the types of ``args`` (already compiled):
    calling it skips the type dispatch, so later arguments must have the same types."""
    types = tuple(dispatcher.typeof_pyval(a) for a in args)
    return dispatcher.overloads[types].entry_point


_PIPELINES: dict = {}


def _cast_pipeline(pipe, dtype):
    """``_cast`` for the pipeline tuple, which rarely changes between steps: memoized."""
    key = (pipe, dtype)
    cast = _PIPELINES.get(key)
    if cast is None:
        if len(_PIPELINES) > 256:
            _PIPELINES.clear()
        cast = _PIPELINES[key] = _cast(pipe, dtype)
    return cast
