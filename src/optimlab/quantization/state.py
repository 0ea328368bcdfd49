"""Optimizer state stored in fewer bits: one slot buffer (a moment of one parameter) held as
blockwise 8-bit codes (:class:`Int8State`) or as bfloat16 (:class:`Bfloat16State`), and
read and written as float32.

``state_dtype`` of an optimizer picks the storage of the slots its rule declares in
``QUANTIZED_SLOTS`` (slot name -> ``"signed"`` or ``"unsigned"``, the code a slot's values
need: a first moment takes both signs, a second moment is >= 0)::

    "float32"   the parameter's own dtype (the default; no conversion)
    "bfloat16"  x -> the bfloat16 nearest x (ties to even; NaN stays NaN), 2 bytes an element
    "int8"      blockwise dynamic 8-bit (:mod:`optimlab.quantization.blockwise`): 1 byte an
                element plus a float32 scale per 256, about 4x smaller than float32
    "int4"      blockwise 4-bit (torchao's AdamW4bit): half a byte an element plus a float32
                scale per 128, about 7x smaller than float32

A parameter of fewer than ``MIN_QUANTIZED_SIZE`` = 4096 elements keeps float32 state (both
peers do: what it saves is nothing, and small tensors such as biases and norms are where 8 bits
cost the most precision). Each step dequantizes the state to float32, computes the update from
those float32 moments (the parameter moves by the unrounded new moments), and only then stores
the new moments in the narrow format: bitsandbytes' and torchao's order.

The buffers start at 0; a slot that starts elsewhere (Adagrad's ``initial_accumulator_value``)
is assigned its start right after creation, so it holds the start as its format stores it
(a block of equal values is exact in int8: the code's 1 times the scale; 0.1 is 0.10009766 in
bfloat16). Which slots of which rules may be narrow, and why the others are not:
:mod:`optimlab.rules` (``QUANTIZED_SLOTS``, ``FLOAT32_STATE``, ``narrow_state_refusal``).

Rounding to nearest after every step, a value whose change in one step is below half its
format's gap there holds still: a decay by beta_2 = 0.999 (0.1% a step) is below bfloat16's
half gap (2^-9 to 2^-8 relative) and int8's near the top of a block (up to 0.7%), so without
gradients Adam's v and Adamax's u keep their value instead of decaying (they err large, the
step errs small), and Adagrad's sum stops growing where g^2 is below half a gap of it.
The peers' blockwise codes round to nearest as well (:mod:`~optimlab.quantization.blockwise`).
"""

from __future__ import annotations

import numpy as np

from . import blockwise
from .codes import BLOCK_SIZE, BLOCK_SIZE_4, MIN_QUANTIZED_SIZE, zero_index, zero_index4

STATE_DTYPES = ("float32", "bfloat16", "int8", "int4")


# -- bfloat16 -----------------------------------------------------------------------------------


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """The bfloat16 nearest each float32 of ``x``, as its uint16 bit pattern: the upper half
    of the float32 bits plus ``0x7FFF + (bit 16)`` before the shift (round to nearest, ties to
    even); NaN becomes the quiet NaN 0x7FC0 with x's sign. This is c10's
    ``round_to_nearest_even`` (torch's ``tensor.bfloat16()``)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) >> 16
    nan = np.isnan(bits.view(np.float32))
    quiet = (bits >> np.uint32(16)) & np.uint32(0x8000) | np.uint32(0x7FC0)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (exact: the bits shifted into the upper half)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


# -- the slot buffers ---------------------------------------------------------------------------


class Int8State:
    """A slot buffer of ``shape`` in blockwise 8-bit: ``codes`` (uint8, the shape) and
    ``scales`` (float32, one per block of 256); ``signed`` picks the code. It starts at 0
    (every code the code's 0, every scale 0)."""

    kind = "int8"

    def __init__(self, shape: tuple, signed: bool) -> None:
        self.signed = bool(signed)
        self.codes = np.full(shape, zero_index(self.signed), dtype=np.uint8)
        self.scales = np.zeros(blockwise.block_count(self.codes.size), dtype=np.float32)

    @property
    def shape(self) -> tuple:
        return self.codes.shape

    @property
    def size(self) -> int:
        return self.codes.size

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.scales.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by suffix: ``""`` the codes, ``".scales"`` the scales."""
        return {"": self.codes, ".scales": self.scales}

    def dequantize(self) -> np.ndarray:
        """The float32 values: ``code[codes] * scale`` of each block."""
        return blockwise.dequantize(self.codes, self.scales, self.signed)

    def assign(self, values: np.ndarray) -> None:
        """Store float32 ``values`` (of the buffer's shape), requantized."""
        codes, scales = blockwise.quantize(np.asarray(values, np.float32), self.signed)
        self.codes[...] = codes
        self.scales[...] = scales


class Int4State:
    """A slot buffer of ``shape`` in blockwise 4-bit (torchao's AdamW4bit): ``codes`` (uint8,
    two codes a byte, flat, ceil(size / 2)) and ``scales`` (float32, one per block of 128);
    ``signed`` picks the code (:func:`~optimlab.quantization.codes.code4`). It starts at 0:
    every code the signed code's 0 (the unsigned code has no 0: its least, 1/16, times the
    scale 0), every scale 0."""

    kind = "int4"

    def __init__(self, shape: tuple, signed: bool) -> None:
        self.signed = bool(signed)
        self._shape = tuple(int(n) for n in shape)
        size = int(np.prod(self._shape, dtype=np.int64))
        start = zero_index4(self.signed)
        self.codes = np.full(-(-size // 2), start << 4 | start, dtype=np.uint8)
        self.scales = np.zeros(blockwise.block_count(size, BLOCK_SIZE_4), dtype=np.float32)

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.scales.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by suffix: ``""`` the packed codes, ``".scales"`` the scales."""
        return {"": self.codes, ".scales": self.scales}

    def dequantize(self) -> np.ndarray:
        """The float32 values: ``code4[code] * scale`` of each block of 128."""
        return blockwise.dequantize4(self.codes, self.scales, self.signed, self._shape)

    def assign(self, values: np.ndarray) -> None:
        """Store float32 ``values`` (of the buffer's shape), requantized."""
        packed, scales = blockwise.quantize4(np.asarray(values, np.float32), self.signed)
        self.codes[...] = packed
        self.scales[...] = scales


class Bfloat16State:
    """A slot buffer of ``shape`` in bfloat16, as uint16 ``bits``; starts at 0."""

    kind = "bfloat16"

    def __init__(self, shape: tuple, signed: bool = True) -> None:
        self.signed = bool(signed)
        self.bits = np.zeros(shape, dtype=np.uint16)

    @property
    def shape(self) -> tuple:
        return self.bits.shape

    @property
    def size(self) -> int:
        return self.bits.size

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays by suffix: ``""`` the bfloat16 bits."""
        return {"": self.bits}

    def dequantize(self) -> np.ndarray:
        return from_bfloat16_bits(self.bits)

    def assign(self, values: np.ndarray) -> None:
        self.bits[...] = to_bfloat16_bits(values)


NARROW = (Int8State, Int4State, Bfloat16State)


def is_narrow(buffer) -> bool:
    """Whether a slot buffer is stored narrow (an :class:`Int8State`, :class:`Int4State` or
    :class:`Bfloat16State`), not as a plain array."""
    return isinstance(buffer, NARROW)


def new_state(state_dtype: str, shape: tuple, signed: bool):
    """An all-zero narrow slot buffer of ``shape`` for ``state_dtype`` ("bfloat16", "int8" or
    "int4")."""
    return {"int8": Int8State, "int4": Int4State}.get(state_dtype, Bfloat16State)(shape, signed)


def stays_float32(size: int) -> bool:
    """Whether a parameter of ``size`` elements keeps float32 state whatever ``state_dtype``
    says (fewer than ``MIN_QUANTIZED_SIZE`` elements)."""
    return size < MIN_QUANTIZED_SIZE


__all__ = [
    "BLOCK_SIZE",
    "MIN_QUANTIZED_SIZE",
    "STATE_DTYPES",
    "Bfloat16State",
    "Int4State",
    "Int8State",
    "from_bfloat16_bits",
    "is_narrow",
    "new_state",
    "stays_float32",
    "to_bfloat16_bits",
]
