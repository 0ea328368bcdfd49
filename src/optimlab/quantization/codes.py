"""The dynamic-exponent code of 8-bit optimizer state: 256 float32 values in [-1, 1] (signed,
for a first moment) or [0, 1] (unsigned, for a second moment), dense near 0 and sparse near 1.

Dettmers, "8-Bit Approximations for Parallelism in Deep Learning" (2016), as bitsandbytes'
``create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`` (bitsandbytes/functional.py)
builds it, and torchao's copy (torchao/optim/quant_utils.py) with the same arguments. For each
decade i = 0..6 (scale 10^(i-6)), n_i points split [0.1, 1] evenly and the code takes the
midpoints of neighbouring points, times the scale::

    signed:    n_i = 2^i + 1        (2^i midpoints, each with both signs: 254 values)
    unsigned:  n_i = 2^(i+1) + 1    (2^(i+1) midpoints: 254 values)
    both:      plus 0 and 1, sorted ascending (the signed code has no -1: its least is -0.99297)

Every operation is in float32, as the peers do it with torch: ``torch.linspace(0.1, 1, n)``
(start + step * k in the lower half, end - step * (n - 1 - k) in the upper, one FMA each,
step = (end - start) / (n - 1)), the midpoint (a + b) / 2, the product with the scale
rounded to float32.
``tests/test_quantization.py`` checks both codes bit for bit against both peers.
"""

from __future__ import annotations

import functools

import numpy as np

#: elements per block of 8-bit state, each block with its own absmax (both peers' default)
BLOCK_SIZE = 256
#: parameters with fewer elements keep float32 state (bitsandbytes' ``min_8bit_size``,
#: torchao's ``numel() >= 4096``)
MIN_QUANTIZED_SIZE = 4096


def _linspace32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32: the lower half counts up from
    ``start``, the upper half down from ``end``, each point one fused multiply-add (ATen's
    vectorized RangeFactories kernel): float32 step * k + start rounded once. The product
    and sum are exact in float64 (a 24-bit step times k < 2^9), so rounding that to float32
    is the single rounding of the FMA."""
    f = np.float32
    a, b = f(start), f(end)
    step = np.float64((b - a) / f(steps - 1))
    k = np.arange(steps, dtype=np.float64)
    half = steps // 2
    low = np.float64(a) + step * k[:half]
    high = np.float64(b) - step * (steps - 1 - k[half:])
    return np.concatenate([low, high]).astype(np.float32)


def _dynamic(signed: bool, decades: int) -> np.ndarray:
    """The dynamic-exponent code of ``decades`` decades (``create_dynamic_map(signed,
    max_exponent_bits=decades, total_bits=decades + 1)``), ascending, float32, read-only."""
    values = []
    for i in range(decades):
        n = 2**i + 1 if signed else 2 ** (i + 1) + 1
        points = _linspace32(0.1, 1.0, n)
        means = (points[:-1] + points[1:]) / np.float32(2.0)
        scale = np.float32(10.0 ** (i - (decades - 1)))
        values.append(scale * means)
        if signed:
            values.append(-scale * means)
    values.append(np.array([0.0, 1.0], dtype=np.float32))
    code = np.sort(np.concatenate(values).astype(np.float32))
    if code.size != 2 ** (decades + 1):  # pragma: no cover - the construction above
        raise AssertionError(code.size)
    code.setflags(write=False)
    return code


@functools.cache
def dynamic_code(signed: bool) -> np.ndarray:
    """The 256 values of the dynamic-exponent code, ascending, float32 (read-only): signed
    (first moments) or unsigned (second moments). See the module's docstring."""
    return _dynamic(signed, 7)


@functools.cache
def code4(signed: bool) -> np.ndarray:
    """The 16 values of 4-bit state, ascending, float32 (read-only), as torchao's AdamW4bit
    (torchao/optim/subclass_4bit.py, after Li et al., "Memory Efficient Optimizers with 4-bit
    States", 2023) defines them. Signed (first moments): the dynamic-exponent code of three
    decades, ``create_dynamic_map(True, 3, 4)``: 0, 1 and +-(0.55; 0.0325, 0.0775; 0.00211 to
    0.00886 scaled as above). Unsigned (second moments): ``linspace(0, 1, 17)[1:]``, k / 16 for
    k = 1..16, no zero: a block's smallest v is stored as 1/16 of its absmax, never as 0 (the
    paper's zero-point problem: a v stored as 0 makes the step m / (0 + eps))."""
    if signed:
        return _dynamic(True, 3)
    code = _linspace32(0.0, 1.0, 17)[1:].copy()
    code.setflags(write=False)
    return code


#: elements per block of 4-bit state (torchao's AdamW4bit ``block_size``)
BLOCK_SIZE_4 = 128


def zero_index(signed: bool) -> int:
    """The index of the code's 0: what an all-zero block of state holds."""
    return int(np.flatnonzero(dynamic_code(signed) == 0.0)[0])


def zero_index4(signed: bool) -> int:
    """The index a 4-bit buffer starts at: the signed code's 0; the unsigned code has none,
    so its least (times the starting scale 0, still 0)."""
    return int(np.flatnonzero(code4(True) == 0.0)[0]) if signed else 0
