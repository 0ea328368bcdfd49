"""Optimizer state in fewer bits (issue 16): the dynamic-exponent 8-bit code
(:mod:`~optimlab.quantization.codes`), blockwise quantization in NumPy
(:mod:`~optimlab.quantization.blockwise`, the reference) and in one fused numba pass per block
(:mod:`~optimlab.quantization.kernels`), and the narrow slot buffers an optimizer keeps with
``state_dtype="int8"``, ``"int4"`` (torchao's 4-bit codes,
:func:`~optimlab.quantization.codes.code4`) or ``"bfloat16"``
(:mod:`~optimlab.quantization.state`)."""

from .blockwise import dequantize, dequantize4, quantize, quantize4
from .codes import BLOCK_SIZE, BLOCK_SIZE_4, MIN_QUANTIZED_SIZE, code4, dynamic_code
from .state import STATE_DTYPES, Bfloat16State, Int4State, Int8State, is_narrow, new_state

__all__ = [
    "BLOCK_SIZE",
    "BLOCK_SIZE_4",
    "MIN_QUANTIZED_SIZE",
    "STATE_DTYPES",
    "Bfloat16State",
    "Int4State",
    "Int8State",
    "code4",
    "dequantize",
    "dequantize4",
    "dynamic_code",
    "is_narrow",
    "new_state",
    "quantize",
    "quantize4",
]
