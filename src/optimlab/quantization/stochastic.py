"""Stochastic rounding of float32 to bfloat16, given the random bits (issue 16, item 6).

A bfloat16 is the upper 16 bits of a float32. Round-to-nearest drops an update smaller than
half a bfloat16 ulp every time (1.0 + 1e-4 rounds back to 1.0), so many tiny steps move a
bfloat16 parameter nowhere. Stochastic rounding rounds away from zero with probability
(the dropped 16 bits) / 2^16, so the rounded value is the float32 value in expectation::

    bits = the float32 bits of x                (uint32)
    out  = (bits + r) >> 16                     r uniform in [0, 2^16), one per element

(the carry into bit 16 happens exactly when r >= 2^16 - (bits & 0xFFFF), that is with
probability (bits & 0xFFFF) / 2^16; the sign bit is above the carry, so the rounding is
away from zero for either sign). This is the "alternative" form written in torchao's
``_fp32_to_bf16_sr`` (torchao/optim/quant_utils.py), whose main form picks the same two
candidates with ``r < (bits & 0xFFFF)`` instead: the same distribution, another map from r to
the outcome. +-Inf stays +-Inf, the largest finite float32 values may round to Inf (as
torchao), NaN becomes the quiet NaN 0x7FC0 with x's sign (as round-to-nearest,
:func:`optimlab.quantization.state.to_bfloat16_bits`: the sum could otherwise carry a NaN's
payload into the sign bit).

Three implementations, bit-identical given the same ``r``: :func:`round_bits` (NumPy, the
reference), :func:`round_bits_numba` (one parallel numba pass, writing into a bfloat16
buffer's bits) and ``optimlab.torch._narrow.round_stochastic`` (torch operations on any
device; only integer operations, so the device cannot change the result; it lives with the
torch face because the core imports no torch). Where the random bits come from is the
caller's: optimlab.torch draws them from a seeded ``torch.Generator`` per parameter, so that a
run and its resume are reproducible.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_LOW = np.uint32(0xFFFF)


def _check(x: np.ndarray, random: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    random = np.asarray(random)
    if x.dtype != np.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    if random.shape != x.shape:
        raise ValueError(f"random must have x's shape {x.shape}, got shape {random.shape}")
    if random.dtype.kind not in "iu":
        raise TypeError(f"random must hold integers (its low 16 bits are used), got {random.dtype}")
    return x, random


def round_bits(x: np.ndarray, random: np.ndarray) -> np.ndarray:
    """The bfloat16 bits (uint16) of float32 ``x`` rounded stochastically with the random
    integers ``random`` (x's shape; their low 16 bits are r): ``(bits(x) + r) >> 16``, NaN to
    the quiet NaN with x's sign (see the module's docstring). The NumPy reference."""
    x, random = _check(x, random)
    bits = np.ascontiguousarray(x).view(np.uint32)
    r = random.astype(np.uint32) & _LOW
    with np.errstate(over="ignore"):
        rounded = (bits + r) >> np.uint32(16)
    quiet = ((bits >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
    return np.where(np.isnan(x), quiet, rounded).astype(np.uint16)


@njit(parallel=True, error_model="numpy", boundscheck=False, nogil=True, cache=True)
def _round_into(x, random, out):
    for i in prange(x.size):
        b = x[i]
        high = b >> np.uint32(16)
        quiet = (high & np.uint32(0x8000)) | np.uint32(0x7FC0)
        carried = np.uint32(b + (np.uint32(random[i]) & np.uint32(0xFFFF))) >> np.uint32(16)
        # NaN: exponent all ones and a nonzero fraction
        nan = (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        out[i] = np.uint16(quiet if nan else carried)


def round_bits_numba(x: np.ndarray, random: np.ndarray, out: np.ndarray | None = None):
    """:func:`round_bits` in one parallel numba pass: ``x`` float32 C-contiguous, ``random``
    integers of x's size (low 16 bits used), written into ``out`` (uint16 or int16 of x's
    size: e.g. a bfloat16 tensor's memory) or a new uint16 array of x's shape."""
    x, random = _check(x, random)
    if out is None:
        out = np.empty(x.shape, np.uint16)
    if out.size != x.size or out.dtype not in (np.uint16, np.int16) or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous uint16/int16 array of x's size {x.size}, got "
            f"{out.dtype} of shape {out.shape}"
        )
    flat_out = out.reshape(-1).view(np.uint16)
    _round_into(np.ascontiguousarray(x).reshape(-1).view(np.uint32), random.reshape(-1), flat_out)
    return out


__all__ = ["round_bits", "round_bits_numba"]
