"""The JAX forms of the tensor rules' helpers that are written for NumPy's memory model.

:mod:`optimlab.engines.jax_engine` runs a rule's own ``scalars`` and ``update`` with ``np``
bound to ``jax.numpy``. Three helpers of the tensor-level rules cannot run so: they write
into buffers in place, or reach for a type JAX lacks, to give NumPy its speed or one
rounding. Each has its JAX form here, the same equation term for term, and
:data:`KERNELS` maps the NumPy helper to it (the engine puts the JAX form in the helper's
place wherever a rule calls it)::

    rules.newton_schulz.orthogonalize   X = G / ||G||;  k times: A = X X^T, B = b A + c A A,
                                        X = a X + B X   (the wide orientation; bfloat16 with
                                        every product rounded once, as torch.optim.Muon;
                                        norm_dtype "float32": Keras's own norm, of G in
                                        float32 summed by XLA, its epsilon added there)
    rules.muon.lerp                     start + w (end - start), torch's lerp: one rounding
                                        (computed in float64 for float32 under x64)
    rules.adafactor.mean                the mean, or with mean_dtype "float32" Keras's
                                        ``ops.mean`` itself: jnp.mean(x, dtype=float32)

The products run at ``precision="highest"`` (full float32 on every device: a GPU's default
float32 matmul may take TF32's 10-bit mantissa). Under JAX's default 32-bit mode there is no
float64 to compute a rounding exactly in: the bfloat16 iteration then sums in float32 (a
result within float32 rounding of a bfloat16 tie may round to its neighbour, as torch's own
kernels may) and lerp rounds twice (an ulp of the momentum).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..rules import adafactor, muon, newton_schulz


def _wide(dtype):
    """The widest float JAX has now (float64 under ``jax_enable_x64``), at least ``dtype``."""
    wide = jnp.result_type(float)
    return wide if jnp.dtype(wide).itemsize >= jnp.dtype(dtype).itemsize else dtype


def _matmul(a, b):
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def round_to_bfloat16(x):
    """``x`` (float32 or float64) rounded to bfloat16 once, half to even, held in x's dtype:
    the bits of :func:`optimlab.rules.newton_schulz.round_to_bfloat16` (float64) and
    ``to_bfloat16`` (float32), by the same integer arithmetic (a convert to bfloat16 may be
    skipped by XLA, which allows itself excess precision)."""
    if x.dtype == jnp.float64:
        bits = jax.lax.bitcast_convert_type(x, jnp.uint64)
        half, low = np.uint64((1 << 44) - 1), np.uint64((1 << 45) - 1)
        odd = (bits >> np.uint64(45)) & np.uint64(1)
        out = jax.lax.bitcast_convert_type((bits + half + odd) & ~low, jnp.float64)
    else:
        bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
        odd = (bits >> np.uint32(16)) & np.uint32(1)
        rounded = (bits + np.uint32(0x7FFF) + odd) & np.uint32(0xFFFF0000)
        out = jax.lax.bitcast_convert_type(rounded, jnp.float32).astype(x.dtype)
    return jnp.where(jnp.isnan(x), jnp.asarray(jnp.nan, x.dtype), out)


def orthogonalize(g, a, b, c, steps, epsilon, epsilon_style="add", dtype=None, norm_dtype=None):
    """:func:`optimlab.rules.newton_schulz.orthogonalize` on a JAX array (the same arguments):
    ``dtype`` None in g's dtype, ``"bfloat16"`` as torch.optim.Muon; ``norm_dtype``
    ``"float32"``: Keras's norm, ``jnp.linalg.norm`` of g in float32 (the NumPy form rounds
    the exact norm to float32 and adds epsilon in g's dtype: within an ulp or so of this
    norm, whose value XLA's sum of the whole matrix decides)."""
    if dtype == "bfloat16":
        return _orthogonalize_bfloat16(g, a, b, c, steps, epsilon, epsilon_style)
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    if norm_dtype == "float32":  # Keras's ops.norm itself: of x in float32, in XLA's order
        norm = jnp.linalg.norm(x.astype(jnp.float32))
    else:
        norm = jnp.sqrt(jnp.sum(x * x))
    # (a float32 norm: its epsilon added in float32, then x / it in x's dtype, as Keras's)
    guard = jnp.maximum(norm, epsilon) if epsilon_style == "clamp" else norm + epsilon
    x = x / guard.astype(x.dtype)
    for _ in range(steps):
        gram = _matmul(x, x.T)
        update = _matmul(gram, gram.T) * c + gram * b
        x = _matmul(update, x) + x * a
    return x.T if tall else x


def _orthogonalize_bfloat16(g, a, b, c, steps, epsilon, epsilon_style):
    """The bfloat16 iteration: bfloat16 operands, each operation computed in the widest float
    (exact products) and rounded to bfloat16 once; float32 out."""
    wide = _wide(jnp.float32)
    bf = round_to_bfloat16
    tall = g.shape[0] > g.shape[1]
    x = bf((g.T if tall else g).astype(jnp.float32)).astype(wide)  # via float32, as torch
    norm = bf(jnp.sqrt(jnp.sum(x * x)))
    floor = float(newton_schulz.to_bfloat16(np.float32(epsilon)))
    if epsilon_style == "clamp":
        x = bf(x / jnp.maximum(norm, floor))
    else:
        x = bf(x / bf(norm + floor))
    a, b, c = (float(np.float32(k)) for k in (a, b, c))
    for _ in range(steps):
        gram = bf(_matmul(x, x.T))
        update = bf(b * gram + c * _matmul(gram, gram))
        x = bf(a * x + _matmul(update, x))
    x = x.astype(jnp.float32)
    return x.T if tall else x


def lerp(start, end, weight):
    """:func:`optimlab.rules.muon.lerp` on JAX arrays: torch's lerp from the nearer end,
    computed in the widest float and rounded once (``weight`` a Python float)."""
    dtype = start.dtype
    wide = _wide(dtype)
    kind = np.dtype(dtype).type
    w = kind(weight) if weight < 0.5 else kind(1) - kind(weight)  # (on the host)
    w = float(w)
    s, e = start.astype(wide), end.astype(wide)
    diff = (e - s).astype(dtype).astype(wide)
    return (s + w * diff if weight < 0.5 else e - diff * w).astype(dtype)


def mean(x, axis=None, keepdims=False, mean_dtype=None):
    """:func:`optimlab.rules.adafactor.mean` on a JAX array: ``jnp.mean``; with
    ``mean_dtype="float32"`` (a wider x) Keras's own: the values summed in float32 by XLA,
    divided by n there, back in x's dtype."""
    if mean_dtype is None or x.dtype == jnp.float32:
        return jnp.mean(x, axis=axis, keepdims=keepdims)
    return jnp.mean(x, axis=axis, keepdims=keepdims, dtype=jnp.float32).astype(x.dtype)


#: the NumPy helper -> its JAX form
KERNELS = {
    newton_schulz.orthogonalize: orthogonalize,
    muon.lerp: lerp,
    adafactor.mean: mean,
}
