"""Muon's pieces on their own: the Newton-Schulz iteration, torch's bfloat16 arithmetic, the
refusals of the tensor-level runtime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab.rules import newton_schulz as ns

A, B, C = ns.COEFFICIENTS


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_newton_schulz_pushes_every_singular_value_near_one(rows, cols, seed):
    """The quintic iteration maps G = U S V^T to about U S' V^T with S' in roughly [0.6, 1.2]
    (it is tuned for speed, not for convergence to exactly 1), in both orientations."""
    g = np.random.default_rng(seed).standard_normal((rows, cols))
    s = np.linalg.svd(ns.orthogonalize(g, A, B, C, 5, 1e-7), compute_uv=False)
    assert s.max() < 1.25 and s.min() > 0.55, s
    # f(X^T) = f(X)^T: the transposition of a tall matrix changes nothing but the work
    np.testing.assert_allclose(
        ns.orthogonalize(g.T, A, B, C, 5, 1e-7), ns.orthogonalize(g, A, B, C, 5, 1e-7).T, atol=1e-12
    )


def test_bfloat16_rounding_is_round_half_to_even_of_the_float32():
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -2.5, np.nan, np.inf])
    out = ns.to_bfloat16(x)
    assert out.dtype == np.float32
    assert list(out[:5]) == [1.0, 1.0, 1 + 4 * 2**-8, 1 + 2**-7, -2.5]
    assert np.isnan(out[5]) and out[6] == np.inf


def test_bfloat16_iteration_reproduces_torch_on_nearly_every_matrix():
    """torch.optim.Muon's own function on 300 random matrices of the conformance shapes: the
    emulation gives torch's bfloat16 iterate exactly on at least 99% of them (the rest differ
    where a sum falls near a bfloat16 tie, see tests/conformance/cases.KNOWN_LIMITS)."""
    torch = pytest.importorskip("torch")
    from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns

    rng = np.random.default_rng(0)
    same = 0
    for k in range(300):
        g = rng.standard_normal([(4, 3), (3, 5), (6, 2)][k % 3]) * np.exp(rng.standard_normal())
        g = g.astype(np.float32)
        theirs = torch_ns(torch.from_numpy(g), ns.COEFFICIENTS, 5, 1e-7).float().numpy()
        same += np.array_equal(theirs, ns.orthogonalize(g, A, B, C, 5, 1e-7, "clamp", "bfloat16"))
    assert same >= 297, same


def test_torch_preset_refuses_what_torch_refuses_and_changes_nothing():
    opt = ol.Muon(preset="torch")
    w, b = np.ones((2, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(3,\)"):
        opt.apply_gradients([(np.ones((2, 3)), w), (np.ones(3), b)])
    assert not opt.built and (w == 1).all() and (b == 1).all()
    with pytest.raises(ValueError, match="engine='fused' is not available for Muon"):
        ol.Muon(engine="fused")
    with pytest.raises(TypeError, match="updates whole matrices"):
        ol.Muon().step(ol.Params({"w": np.ones((2, 3))}))
    with pytest.raises(ValueError, match="weight_decay_mode must be 'decoupled'"):
        ol.Muon(weight_decay_mode="l2")


def test_matrices_and_the_rest_take_their_own_step_and_state():
    """Keras's layout: a momentum for every parameter, Adam's velocity only where the AdamW
    step is taken; a matrix moves by lr * 0.2 * sqrt(max(n, m)) * NS(u) exactly."""
    w, b = np.eye(3)[:2].copy(), np.zeros(3)
    g_w, g_b = np.arange(6.0).reshape(2, 3) + 1, np.ones(3)
    opt = ol.Muon(learning_rate=0.1, weight_decay=None)
    opt.apply_gradients([(g_w, w), (g_b, b)])
    assert opt._slots[0][1] is None and opt._slots[1][1].shape == (3,)
    u = g_w + 0.95 * g_w  # Nesterov on the first step: m = g
    norm = np.float32(np.linalg.norm(u))  # Keras takes the norm in float32
    x = u / (np.float64(norm) + 1e-7)
    for _ in range(5):
        gram = x @ x.T
        x = A * x + (B * gram + (C * gram) @ gram) @ x
    np.testing.assert_allclose(w, np.eye(3)[:2] - 0.1 * 0.2 * np.sqrt(3) * x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(b, -0.1 * np.ones(3) / (1 + 1e-7 / np.sqrt(0.001)), rtol=1e-12)


def test_the_muon_differences_table_shows_the_shape_factors():
    """``optimlab differences``: Newton-Schulz's output has the same size for each preset's
    momentum (it keeps only the direction), so step 1 differs by the shape factor alone:
    0.4 (Keras) : sqrt(2) (PyTorch, up to its bfloat16 rounding) : 1 (optax)."""
    from optimlab import differences

    _, rows = differences.muon_conventions()
    by = {row[0]: row for row in rows}
    keras, torch, optax = (float(by[p][3]) for p in ("keras", "torch", "optax"))
    assert keras / optax == pytest.approx(0.4, rel=1e-5)
    assert torch / optax == pytest.approx(np.sqrt(2), rel=1e-2)
    assert [by[p][5] for p in ("keras", "torch", "optax")] == ["AdamW", "refused", "NAdamW"]
    assert [by[p][6] for p in ("keras", "torch", "optax")] == ["0.004", "0.1", "0"]
    turns = [float(by[p][4]) for p in ("keras", "torch", "optax")]
    assert all(0.9 < t < 1.0 for t in turns) and len(set(turns)) == 3


def _newton_schulz_as_written(g, steps=5, epsilon=1e-7):
    """The module docstring's iteration, one new array per operation (the wide orientation;
    the norm in g's dtype, epsilon added)."""
    x = g / (np.sqrt(np.sum(g * g)) + epsilon)
    for _ in range(steps):
        gram = x @ x.T
        x = A * x + (B * gram + C * (gram @ gram.T)) @ x
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (40, 40), (33, 70)])
def test_newton_schulz_in_its_own_buffers_rounds_as_written(shape, dtype):
    """The iteration works in buffers it allocates once (in-place scaling and sums, products
    written into preallocated arrays): the same operations in the same order as the formula,
    so the same bits, and the caller's matrix untouched."""
    g = np.random.default_rng(shape[1]).standard_normal(shape).astype(dtype)
    before = g.copy()
    out = ns.orthogonalize(g, A, B, C, 5, 1e-7)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_array_equal(out, _newton_schulz_as_written(g))
    np.testing.assert_array_equal(g, before)
    # a tall matrix, and one in Fortran order: x is then laid out as g, not as the buffers
    tall = ns.orthogonalize(np.ascontiguousarray(g.T), A, B, C, 5, 1e-7)
    fortran = ns.orthogonalize(np.asfortranarray(g), A, B, C, 5, 1e-7)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(tall, out.T, rtol=0, atol=tolerance)
    np.testing.assert_allclose(fortran, out, rtol=0, atol=tolerance)
