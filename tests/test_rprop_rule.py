"""Rprop's rule on the values that decide its cases: NaN, infinities, signed zeros, denormals.

``rules.rprop.update`` chooses between its cases with ``rules._scalar.where``: ``np.where`` on
the reference engine, a vector select in the fused kernel, ``torch.where`` and
``jax.numpy.where`` in those engines. Each engine must give, bit for bit (the sign of a zero
included; NaN where NaN), what a plain per-element transcription of the equations gives in
the parameter's dtype. Every operation is one IEEE operation, so the results are fixed.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from numba import njit

from optimlab import rules
from optimlab.engines import fused
from optimlab.rules._scalar import where

P = [0.0, -0.0, 1.5, np.nan]
G = [0.0, -0.0, 1e-3, -2.0, np.inf, -np.inf, np.nan, 1e-45]
STEP = [0.0, 1e-7, 0.01, 0.7, 60.0]
# (lr, eta_minus, eta_plus, min_step_size, max_step_size): the defaults but lr, and a case
# whose bounds bind (lr above max_step_size, min_step_size above some step sizes)
HYPERS = [(0.01, 0.5, 1.2, 1e-6, 50.0), (1.0, 0.3, 2.0, 0.05, 0.6)]
FLAGS = list(itertools.product((True, False), repeat=3))  # clamp, prev is update, delayed
JAX_FLAGS = [(True, False, False), (False, True, True)]  # the torch and the optax preset


def _grid(dtype, gradients=G):
    columns = np.array(list(itertools.product(P, gradients, gradients, STEP))).T
    return [c.astype(dtype) for c in columns]


def _scalars(hyper, flags):
    lr, eta_minus, eta_plus, low, high = hyper
    clamp, prev_is_update, delayed = flags
    return rules.rprop.scalars(
        1,
        lr,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=low,
        max_step_size=high,
        clamp_every_step=clamp,
        compare_with="update" if prev_is_update else "gradient",
        delayed_update=delayed,
    )


def _transcribed(arrays, hyper, flags):
    """The module docstring's equations, case by case (masked assignments), in the arrays'
    dtype: the expected (p, prev, step_size)."""
    p, g, prev, step = (a.copy() for a in arrays)
    f = p.dtype.type
    lr, eta_minus, eta_plus, low, high = (f(x) for x in hyper)
    clamp, prev_is_update, delayed = flags
    fresh = ~(step > 0)  # not started: the learning rate
    step[fresh] = step[fresh] + lr
    s = g * prev
    grow, shrink = s > 0, s < 0
    hold = ~grow & ~shrink
    new = step.copy()
    new[grow] = step[grow] * eta_plus
    new[shrink] = step[shrink] * eta_minus
    lows, highs = np.full_like(step, low), np.full_like(step, high)
    if not clamp:  # optax: where s = 0 the bounds open up to [0, max_step_size + step]
        lows[hold] = 0.0
        highs[hold] = high + step[hold]
    below, above = new < lows, new > highs
    new[below] = lows[below]
    new[above] = highs[above]
    g = g + f(0.0)  # no -0 left
    g[shrink] = 0.0
    direction = np.zeros_like(g)  # sign(g), 0 for NaN
    direction[g > 0] = 1.0
    direction[g < 0] = -1.0
    if delayed:
        keep = np.ones_like(p)
        keep[shrink] = 0.0
        p = p - prev * keep
    else:
        p = p - direction * new
    return p, direction * new if prev_is_update else g, new


def _assert_bits(got, want, label):
    got = np.asarray(got)
    assert got.dtype == want.dtype, label
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=label)
    np.testing.assert_array_equal(got[~nan], want[~nan], err_msg=label)
    np.testing.assert_array_equal(np.signbit(got[~nan]), np.signbit(want[~nan]), err_msg=label)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_and_fused_engines_give_the_transcribed_equations(dtype):
    base = _grid(dtype)
    with np.errstate(all="ignore"):
        for hyper, flags in itertools.product(HYPERS, FLAGS):
            want = _transcribed(base, hyper, flags)
            scalars = _scalars(hyper, flags)
            label = f"{dtype.__name__} {hyper} {flags}"
            reference = rules.rprop.update(*(a.copy() for a in base), *scalars)
            arrays = [a.copy() for a in base]
            fused.apply(rules.rprop, arrays[0], arrays[1], arrays[2:], scalars)
            for k in range(3):
                _assert_bits(reference[k], want[k], f"reference {k} {label}")
                _assert_bits(arrays[(0, 2, 3)[k]], want[k], f"fused {k} {label}")


def test_torch_and_jax_engines_give_the_transcribed_equations():
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    from optimlab.engines import jax_engine as _engine
    from optimlab.torch import _ops

    base = _grid(np.float32)
    normal = _grid(np.float32, [x for x in G if x != 1e-45])  # XLA's CPU flushes denormals
    update = _ops.torch_update(rules.rprop)
    with np.errstate(all="ignore"):
        for hyper, flags in itertools.product(HYPERS, FLAGS):
            scalars = _scalars(hyper, flags)
            label = f"{hyper} {flags}"
            want = _transcribed(base, hyper, flags)
            tensors = [torch.from_numpy(a.copy()) for a in base]
            for k, t in enumerate(update(*tensors, *scalars)):
                _assert_bits(t.numpy(), want[k], f"torch {k} {label}")
            if flags not in JAX_FLAGS:  # (each JAX operation costs a compilation)
                continue
            want = _transcribed(normal, hyper, flags)
            out = _engine.run_update(rules.rprop, normal[0], normal[1], normal[2:], scalars)
            for k, x in enumerate(out):
                _assert_bits(np.asarray(x), want[k], f"jax {k} {label}")


def test_where_chooses_element_by_element_on_arrays_and_whole_values_on_numbers():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    chosen = where(x > 1.5, x, 0.0)
    assert chosen.dtype == np.float32 and chosen.tolist() == [0.0, 2.0, 3.0]
    marker = object()
    assert where(True, marker, None) is marker and where(False, None, marker) is marker


def test_where_compiles_to_a_vector_select_without_an_allocation():
    # np.where would allocate an array per element in a numba kernel, and keep it scalar
    @njit(error_model="numpy", boundscheck=False)
    def clip_below(x, low, out):
        for i in range(x.size):
            out[i] = where(x[i] < low, low, x[i])

    x = np.linspace(-1.0, 1.0, 64).astype(np.float32)
    out = np.empty_like(x)
    clip_below(x, np.float32(0.25), out)
    np.testing.assert_array_equal(out, np.maximum(x, np.float32(0.25)))
    (ir,) = clip_below.inspect_llvm().values()
    assert "NRT_MemInfo_alloc" not in ir
    assert re.search(r"select <\d+ x i1>", ir), "the loop did not vectorize"
