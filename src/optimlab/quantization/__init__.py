"""Optimizer state in fewer bits (issue 16): the dynamic-exponent 8-bit code
(:mod:`~optimlab.quantization.codes`), blockwise quantization in NumPy
(:mod:`~optimlab.quantization.blockwise`, the reference) and in one fused numba pass per block
(:mod:`~optimlab.quantization.kernels`), and the narrow slot buffers an optimizer keeps with
``state_dtype="int8"`` or ``"bfloat16"`` (:mod:`~optimlab.quantization.state`)."""

from .blockwise import dequantize, quantize
from .codes import BLOCK_SIZE, MIN_QUANTIZED_SIZE, dynamic_code
from .state import STATE_DTYPES, Bfloat16State, Int8State, is_narrow, new_state

__all__ = [
    "BLOCK_SIZE",
    "MIN_QUANTIZED_SIZE",
    "STATE_DTYPES",
    "Bfloat16State",
    "Int8State",
    "dequantize",
    "dynamic_code",
    "is_narrow",
    "new_state",
    "quantize",
]
