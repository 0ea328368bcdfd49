"""The nearest code of a float32 in O(1): one 65536-entry table indexed by the upper 16 bits of
the float's order key, one addition and one shift (no search).

Order key. For the bits b of a float32 (uint32), ``key = b ^ 0xFFFFFFFF`` where the sign bit is
set, ``b ^ 0x80000000`` where not: the keys of the non-NaN floats sort as the floats do (-inf
lowest, -0 just below +0, +inf highest; the NaNs lie below -inf and above +inf).

Steps. The rounding of :func:`optimlab.quantization.blockwise.nearest` (the definition: the
largest k with code[k] <= y, then up one where (y - code[k]) >= (code[k+1] - code[k]) * 0.5,
all in float32) is a non-decreasing step function of y: the search is monotone, and within
[code[k], code[k+1]) the float32 difference y - code[k] is monotone in y (a correctly rounded
subtraction is) against a fixed half gap. So it is fixed by its 255 steps U_1 < ... < U_255,
U_j the least key whose float rounds to j or more::

    nearest(y) = #{j : U_j <= key(y)}                   (0 for NaN)

Table. Bucket h holds the 65536 keys h * 65536 + l, l = 0..65535. Since neighbouring steps lie
further apart than a bucket spans (2^-7 relative; checked when the table is built), a bucket
holds at most one step, at l = t_h; with base_h = #{j : U_j <= h * 65536}::

    table[h] = base_h * 65536 + (65536 - t_h)            (t_h = 65536 where it holds none)
    nearest(y) = (table[key >> 16] + (key & 0xFFFF)) >> 16

the carry into the upper half being exactly "l >= t_h". About 240 of the 65536 buckets hold a
step (those where a plain per-bucket answer would be ambiguous). NaN is the caller's: the +inf
bucket holds NaNs too (the kernels and :func:`nearest_by_table` select 0 for NaN, as the
definition does).

bitsandbytes' CPU search (``BinSearch``, csrc/common.h) buckets the floats too, for an
approximate start; here the buckets carry the exact answer.
"""

from __future__ import annotations

import numpy as np

SIGN = np.uint32(0x80000000)
#: the key of -inf and of +inf: the keys of the non-NaN floats are this closed range
LOWEST_KEY = 0x007FFFFF
HIGHEST_KEY = 0xFF800000


def float_keys(y: np.ndarray) -> np.ndarray:
    """The order key (uint32) of each float32 of ``y`` (see the module's docstring)."""
    b = np.ascontiguousarray(y, dtype=np.float32).view(np.uint32)
    return b ^ np.where(b & SIGN, np.uint32(0xFFFFFFFF), SIGN)


def key_floats(keys: np.ndarray) -> np.ndarray:
    """The float32 of each order key (the inverse of :func:`float_keys`)."""
    k = np.asarray(keys, dtype=np.uint64).astype(np.uint32)
    return np.where(k & SIGN, k ^ SIGN, ~k).view(np.float32)


def steps(nearest, last: int = 255) -> np.ndarray:
    """The keys U_1..U_last (int64) of the steps of ``nearest`` (a function of a float32
    array giving code indices, non-decreasing on the non-NaN floats, 0 at -inf, ``last`` at
    +inf: 255 for the 8-bit codes, 15 for the 4-bit ones): U_j the least key of a float it
    rounds to j or more, by bisection over the keys, all at once (32 rounds). Monotonicity
    itself is the caller's to prove (for blockwise.nearest: the module's docstring and
    tests/test_quantization_lookup.py)."""
    j = np.arange(1, last + 1)
    lo = np.full(last, LOWEST_KEY, np.int64)
    hi = np.full(last, HIGHEST_KEY, np.int64)
    if np.any(nearest(key_floats(hi)) != last) or np.any(nearest(key_floats(lo)) != 0):
        raise ValueError(f"nearest={nearest!r} must give 0 at -inf and {last} at +inf")
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        reached = nearest(key_floats(mid)).astype(np.int64) >= j
        hi = np.where(reached, mid, hi)
        lo = np.where(reached, lo, mid + 1)
    return lo


def build_table(nearest) -> np.ndarray:
    """The 65536-entry uint32 table of ``nearest`` (see the module's docstring), read-only.
    Refused (ValueError): a function that skips a code index (two steps at one key), or
    whose steps lie so close that a bucket would hold two."""
    u = steps(nearest)
    if np.any(np.diff(u) <= 0):
        raise ValueError(
            f"nearest={nearest!r} must be non-decreasing and take every code index "
            "0..255 (two of its steps coincide)"
        )
    first = np.arange(65536, dtype=np.int64) << 16
    base = np.searchsorted(u, first, side="right")
    inside = np.searchsorted(u, first + 65535, side="right") - base
    if inside.max() > 1:
        raise ValueError(
            f"nearest={nearest!r}: a bucket of 2^16 floats holds {inside.max()} of its steps "
            "(at most 1 for an exact table)"
        )
    holds = inside == 1
    t = np.full(65536, 65536, np.int64)
    t[holds] = u[base[holds]] & 0xFFFF
    table = ((base << 16) + (65536 - t)).astype(np.uint32)
    table.setflags(write=False)
    return table


def nearest_by_table(y: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``(table[key >> 16] + (key & 0xFFFF)) >> 16`` of each float32 of ``y``, 0 for NaN,
    uint8 (NumPy; the kernels do the same per element)."""
    table = np.asarray(table)
    if table.shape != (65536,) or table.dtype != np.uint32:
        raise ValueError(
            f"table={type(table).__name__} of shape {table.shape} and dtype {table.dtype}: "
            "expected the 65536 uint32 entries of build_table"
        )
    y = np.ascontiguousarray(y, dtype=np.float32)
    key = float_keys(y)
    index = (table[key >> np.uint32(16)] + (key & np.uint32(0xFFFF))) >> np.uint32(16)
    return np.where(np.isnan(y), 0, index).astype(np.uint8)
