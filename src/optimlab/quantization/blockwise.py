"""Blockwise 8-bit quantization of optimizer state, the reference (NumPy) definition.

A float32 tensor is cut into blocks of ``BLOCK_SIZE`` = 256 consecutive elements (the last one
may be shorter, as bitsandbytes allows; torchao keeps such a tensor in float32). Per block b::

    absmax_b = max |x_i|                          over the block
    s_b      = max(absmax_b, 1e-12)              (the stored scale: torchao's ``clip(1e-12)``)
    y_i      = x_i / s_b                          float32 division, y in [-1, 1]
    k_i      = the largest k with code[k] <= y_i  (0 where y_i < code[0], or is NaN)
    code_i   = k_i + 1  if  y_i - code[k_i] >= (code[k_i + 1] - code[k_i]) * 0.5  else  k_i

that is round-to-nearest with ties to the upper code value, every difference rounded to
float32: torchao's ``scale_tensor`` and ``quantize_8bit_with_qmap`` (torchao/optim/
quant_utils.py). Dequantization is ``code[code_i] * s_b`` in float32 (both peers).

bitsandbytes' CPU kernel (``quantize_blockwise``: csrc/common.cpp ``quantize_block``) has the
same code, blocks, absmax and dequantization, but finds k with an approximate bucketed search
(BinSearch's ``Direct2``) and then compares only k and k + 1, moving up where
|y - code[k+1]| < |y - code[k]| (ties down): on small |y| its k can be several codes off, so
about 0.1% (signed, normal data) to 3% (unsigned, squares) of its codes are not the nearest
value. ``tests/test_quantization.py`` checks that every code where the two differ is at least
as near in optimlab as in bitsandbytes, and that dequantization is bit-equal.

The search is the branchless binary search of torchao (eight steps of ``k += 2^j where
y >= code[k + 2^j]``), so NaN lands on code 0: :func:`nearest` is that definition. Both
engines get the same answer in O(1) from a table of its 255 steps (:func:`nearest_table`,
:mod:`optimlab.quantization.lookup`): :func:`quantize` here, the fused kernels
(:mod:`optimlab.quantization.kernels`) element by element; tests/test_quantization_lookup.py
checks the table against the definition for every float32 pattern.
"""

from __future__ import annotations

import functools

import numpy as np

from . import lookup
from .codes import BLOCK_SIZE, BLOCK_SIZE_4, code4, dynamic_code

#: the least scale of a block (torchao's ``clip(1e-12)``), float32
MIN_SCALE = np.float32(1e-12)


def block_count(size: int, block_size: int = BLOCK_SIZE) -> int:
    """The number of blocks of a tensor of ``size`` elements (the last may be partial)."""
    return -(-size // block_size)


def _blocks(x: np.ndarray, block_size: int) -> np.ndarray:
    """``x`` flat, zero-padded to whole blocks, shape (blocks, block_size), float32."""
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
    pad = block_count(flat.size, block_size) * block_size - flat.size
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, np.float32)])
    return flat.reshape(-1, block_size)


def search(y: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The largest k with code[k] <= y (0 below code[0] and for NaN), int64: branchless
    halvings over the 2^b codes (eight for 256, four for 16), as torchao's
    ``quantize_8bit_with_qmap`` and ``quantize_4bit_with_qmap``."""
    step = code.size // 2
    k = np.where(y >= code[step], step, 0)
    while step > 1:
        step //= 2
        k = k + np.where(y >= code[k + step], step, 0)
    return k


def nearest(y: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The code index nearest to each normalized ``y`` (float32), uint8; ties go up: the
    definition (search, then one rounding step; see the module's docstring)."""
    k = search(y, code)
    up = np.minimum(k + 1, code.size - 1)
    low, high = code[k], code[up]
    with np.errstate(invalid="ignore"):  # (inf - inf where y is infinite)
        go_up = (y - low) >= (high - low) * np.float32(0.5)
    return np.where(go_up, up, k).astype(np.uint8)


@functools.cache
def nearest_table(signed: bool) -> np.ndarray:
    """The 65536-entry uint32 table giving :func:`nearest` of the signed or unsigned code for
    every float32 (:func:`optimlab.quantization.lookup.build_table`), read-only."""
    code = dynamic_code(signed)
    return lookup.build_table(lambda y: nearest(y, code))


def quantize(
    x: np.ndarray, signed: bool, block_size: int = BLOCK_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, scales)`` of float32 ``x``: codes uint8 of x's shape, one float32 scale per
    block (see the module's docstring; the codes are :func:`nearest`'s, by the table)."""
    y, scale = scaled_blocks(x, block_size)
    codes = lookup.nearest_by_table(y, nearest_table(signed)).reshape(-1)[: np.size(x)]
    return codes.reshape(np.shape(x)), scale


def scaled_blocks(x: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y, scale)``: float32 ``x`` in blocks of ``block_size`` (zero-padded), each divided
    by its scale ``max(absmax, 1e-12)`` (float32 division), and the scales (float32)."""
    blocks = _blocks(x, block_size)
    scale = np.maximum(np.max(np.abs(blocks), axis=1), MIN_SCALE)
    with np.errstate(invalid="ignore"):
        y = blocks / scale[:, None]
    return y, scale.astype(np.float32)


def dequantize(
    codes: np.ndarray, scales: np.ndarray, signed: bool, block_size: int = BLOCK_SIZE
) -> np.ndarray:
    """``code[codes] * scale`` of each element's block, float32, of the codes' shape."""
    code = dynamic_code(signed)
    flat = codes.reshape(-1)
    per_element = np.repeat(scales.astype(np.float32), block_size)[: flat.size]
    return (code[flat] * per_element).reshape(codes.shape)


# -- 4 bits: torchao's AdamW4bit -----------------------------------------------------------------


def quantize4(x: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(packed, scales)`` of float32 ``x`` in 4 bits: blocks of ``BLOCK_SIZE_4`` = 128 with
    the scale and quotient of 8 bits, each code :func:`nearest` of the 16 values of
    :func:`~optimlab.quantization.codes.code4` (four halvings, then the rounding step: torchao's
    ``quantize_4bit_with_qmap``), two codes a byte, the first element in the high nibble
    (``codes[0::2] << 4 | codes[1::2]``, torchao's packing); an odd last element is paired with
    code 0. ``packed``: uint8 of ceil(x.size / 2); ``scales``: float32 of one per block."""
    y, scale = scaled_blocks(x, BLOCK_SIZE_4)
    return pack4(nearest(y, code4(signed)).reshape(-1)[: np.size(x)]), scale


@functools.cache
def thresholds4(signed: bool) -> np.ndarray:
    """The 15 float32 steps t_1 < ... < t_15 of :func:`nearest` among the 16 values of
    ``code4(signed)`` (:func:`optimlab.quantization.lookup.steps`: t_j the least float32
    that rounds to code j or above), read-only, so that for every float32 y::

        nearest(y, code4) = #{j : y >= t_j}        (0 for NaN: no comparison holds)

    (nearest is a non-decreasing step function of y, lookup's docstring; -0 and +0 round
    alike, so a step between them does not occur and the float comparison is the key's).
    The fused kernels count these 15 comparisons instead of searching (a loop with no table
    read); tests/test_quantization.py checks the count against :func:`nearest`."""
    code = code4(signed)
    keys = lookup.steps(lambda y: nearest(y, code), last=15)
    t = lookup.key_floats(keys).astype(np.float32)
    t.setflags(write=False)
    return t


def pack4(codes: np.ndarray) -> np.ndarray:
    """Codes 0..15 (uint8, flat) two a byte: ``codes[0::2] << 4 | codes[1::2]`` (an odd last
    one paired with 0)."""
    flat = np.asarray(codes, np.uint8).reshape(-1)
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.uint8)])
    return (flat[0::2] << np.uint8(4)) | flat[1::2]


def unpack4(packed: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` codes (uint8, flat) of :func:`pack4`'s bytes: high nibble first."""
    flat = np.asarray(packed, np.uint8).reshape(-1)
    return np.stack([flat >> np.uint8(4), flat & np.uint8(15)], axis=1).reshape(-1)[:size]


def dequantize4(packed: np.ndarray, scales: np.ndarray, signed: bool, shape: tuple) -> np.ndarray:
    """``code4[code] * scale`` of each element's block of 128, float32, of ``shape`` (torchao's
    ``dequant_with_qmap``)."""
    size = int(np.prod(shape, dtype=np.int64))
    codes = unpack4(packed, size)
    per_element = np.repeat(scales.astype(np.float32), BLOCK_SIZE_4)[:size]
    return (code4(signed)[codes] * per_element).reshape(shape)
