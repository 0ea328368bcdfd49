"""Orthogonalisation by a Newton-Schulz iteration (Jordan et al. 2024, the core of Muon): a
matrix G = U S V^T is mapped to approximately U V^T, all singular values pushed towards 1,
with matrix products only (no SVD)::

    X = G / ||G||_F                      (so that every singular value is at most 1)
    repeat k times:
        A = X X^T
        B = b * A + c * A A
        X = a * X + B X

on the wide orientation of G (rows <= columns; a tall G is transposed before and after), with
the quintic coefficients (a, b, c) = (3.4445, -4.7750, 2.0315) that make the iteration's slope
at zero as steep as possible: it does not converge to U V^T but to U S' V^T with S' roughly in
[0.7, 1.2], which the Muon authors found trains as well.

How the norm is guarded differs between the peers (``epsilon_style``): Keras and optax divide by
``||G|| + epsilon`` ("add"), PyTorch by ``max(||G||, epsilon)`` ("clamp"). PyTorch runs the whole
iteration in bfloat16 (``dtype="bfloat16"``): every product is accumulated in float32 and then
rounded to bfloat16 once, as torch's CPU kernels do, which :func:`to_bfloat16` reproduces.
"""

from __future__ import annotations

import numpy as np

#: Keller Jordan's quintic coefficients (a, b, c), shared by torch, Keras and optax
COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """x rounded to bfloat16 (8 significant bits, round half to even), held in float32.

    Via float32, as torch converts a float64 tensor: round(x) = round_bf16(float32(x)).
    bfloat16 keeps float32's exponent, so only the 16 low bits of the float32 change."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    if nan.any():  # the bit trick would carry a NaN's payload into the exponent
        out = np.where(nan, np.float32(np.nan), out)
    return out


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float64 ``x`` rounded to bfloat16 directly (one rounding, half to even), in float32:
    how a result computed exactly, or nearly so, becomes bfloat16. Rounding through float32
    first can land on a tie that the exact value is not on."""
    x = np.asarray(x, dtype=np.float64)
    bits = x.view(np.uint64)
    half, low = np.uint64((1 << 44) - 1), np.uint64((1 << 45) - 1)
    rounded = (bits + half + ((bits >> np.uint64(45)) & np.uint64(1))) & ~low
    out = rounded.view(np.float64).astype(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), out) if np.isnan(x).any() else out


def orthogonalize(g, a, b, c, steps, epsilon, epsilon_style="add", dtype=None, norm_dtype=None):
    """The Newton-Schulz iterate of the 2-D array ``g`` (see the module docstring); ``dtype``
    None computes in ``g``'s dtype, ``"bfloat16"`` as torch.optim.Muon does. ``norm_dtype``
    ``"float32"``: the Frobenius norm is taken in float32 whatever g's dtype (Keras's
    ``ops.norm`` casts to its default float type)."""
    if dtype == "bfloat16":
        return _orthogonalize_bfloat16(g, a, b, c, steps, epsilon, epsilon_style)
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    if norm_dtype == "float32":
        wide = x.astype(np.float64)
        norm = g.dtype.type(np.float32(np.sqrt(np.sum(np.square(wide, out=wide)))))
        del wide
    else:
        norm = np.sqrt(np.sum(x * x))
    x = x / (np.maximum(norm, epsilon) if epsilon_style == "clamp" else norm + epsilon)
    # x = a * x + (b * gram + c * gram gram^T) x, each operation rounded as written (the same
    # bits), into buffers allocated once: a fresh array per operation, eight an iteration,
    # costs its page faults and a pass over memory each time (on a 4096 x 4096 float32 matrix
    # about a tenth of the whole iteration's time on a shared 2-core EPYC)
    rows = x.shape[0]
    gram = np.empty((rows, rows), dtype=x.dtype)
    update = np.empty((rows, rows), dtype=x.dtype)
    out = np.empty(x.shape, dtype=x.dtype)
    for _ in range(steps):
        # x x^T and gram gram^T (gram is symmetric): NumPy hands a product of an array with
        # its own transpose to BLAS's syrk, one triangle (half the flops of a product)
        np.matmul(x, x.T, out=gram)
        np.matmul(gram, gram.T, out=update)
        update *= c
        gram *= b
        update += gram
        np.matmul(update, x, out=out)
        x *= a  # x is this function's own array from the division on
        out += x
        # the next product goes into the old x, unless that is laid out as a tall g is
        # (x = g.T / norm: Fortran order, which BLAS could not write into)
        x, out = out, (x if x.flags.c_contiguous else np.empty_like(out))
    return np.ascontiguousarray(x.T) if tall else x


def _orthogonalize_bfloat16(g, a, b, c, steps, epsilon, epsilon_style):
    """``orthogonalize`` in bfloat16: every operation of bfloat16 operands (whose products
    are exact in float64) computed in float64 and rounded to bfloat16 once, which is what
    torch's CPU kernels give (their float32 accumulation with fused multiply-adds rounds to
    the same bfloat16 where a float32 sum would fall on a tie)."""
    bf = round_to_bfloat16
    tall = g.shape[0] > g.shape[1]
    x = to_bfloat16(g.T if tall else g).astype(np.float64)
    norm = bf(np.sqrt(np.sum(x * x))).astype(np.float64)
    floor = np.float64(to_bfloat16(np.float32(epsilon)))
    if epsilon_style == "clamp":
        x = bf(x / np.maximum(norm, floor)).astype(np.float64)
    else:
        x = bf(x / bf(norm + floor).astype(np.float64)).astype(np.float64)
    a, b, c = (np.float64(np.float32(k)) for k in (a, b, c))
    for _ in range(steps):
        gram = bf(x @ x.T).astype(np.float64)
        update = bf(b * gram + c * (gram @ gram)).astype(np.float64)
        x = bf(a * x + update @ x).astype(np.float64)
    x = x.astype(np.float32)
    return np.ascontiguousarray(x.T) if tall else x
