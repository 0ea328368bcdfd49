"""How a narrow format stores a real optimizer state (for the chapter "what 8 bits do to
Adam's state", :mod:`.quantized_state`): a float32 moment stored as bfloat16 or as blockwise
int8 and read back (:func:`stored`), the relative error of every nonzero entry and where it
sits in its block (:func:`state_errors`), the blocks' largest entries (:func:`block_extremes`)
and one layer's moments measured at once (:func:`layer_state`).

With ``s_b = max_{i in b} |x_i|`` the scale of block b (256 entries) and ``q(x)`` the value
read back::

    relative error  = |q(x) - x| / |x|            over the entries x != 0
    position        = |x| / s_b                    (1 for the block's largest entry)
    flushed         = #{x != 0 : q(x) = 0}         int8: exactly position < code[1] / 2

the int8 storage being :func:`optimlab.quantization.quantize` then ``dequantize``
(bitsandbytes' and torchao's blockwise dynamic code), bfloat16 round to nearest even.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import quantization
from ..._validation import check_choice
from ...quantization import blockwise
from ...quantization.state import from_bfloat16_bits, to_bfloat16_bits


def stored(values: np.ndarray, state_dtype: str, signed: bool) -> np.ndarray:
    """float32 ``values`` as a slot of ``state_dtype`` holds them, read back as float32:
    bfloat16 rounding, or blockwise int8 (:func:`optimlab.quantization.quantize` then
    ``dequantize``) or int4 (``quantize4`` then ``dequantize4``); float32 unchanged."""
    state_dtype = check_choice("state_dtype", state_dtype, quantization.STATE_DTYPES)
    values = np.asarray(values, np.float32)
    if state_dtype == "bfloat16":
        return from_bfloat16_bits(to_bfloat16_bits(values))
    if state_dtype == "int8":
        codes, scales = quantization.quantize(values, signed)
        return quantization.dequantize(codes, scales, signed)
    if state_dtype == "int4":
        packed, scales = blockwise.quantize4(values, signed)
        return blockwise.dequantize4(packed, scales, signed, values.shape)
    return values.copy()


@dataclass
class FormatError:
    """How one format stores one moment, over its nonzero entries x (in the tensor's order):
    the relative error ``|q(x) - x| / |x|`` (``relative``), each entry's ``|x| / s_b``, its
    place in its block of 256 (``position``: 1 for the block's largest), how many became 0
    (``flushed``), how many entries are exactly 0 (``zeros``: they stay 0), and for int8 the
    per-block scales ``s_b``."""

    slot: str
    state_dtype: str
    relative: np.ndarray
    position: np.ndarray
    flushed: int
    zeros: int
    scales: np.ndarray | None

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the relative error."""
        return float(np.quantile(self.relative, q))

    @property
    def largest(self) -> float:
        return float(np.max(self.relative))


def state_errors(m: np.ndarray, v: np.ndarray) -> dict[tuple[str, str], FormatError]:
    """(slot, format) -> :class:`FormatError` of moments ``m`` (int8: the signed code) and
    ``v`` (the unsigned code) stored as bfloat16 and as int8 (:func:`stored`)."""
    out = {}
    for slot, values, signed in (("m", m, True), ("v", v, False)):
        x = np.asarray(values, np.float32).reshape(-1)
        nonzero = x != 0
        _, scales = quantization.quantize(x, signed)
        per_element = np.repeat(scales, quantization.BLOCK_SIZE)[: x.size]
        position = np.abs(x[nonzero]) / per_element[nonzero]
        for dtype in ("bfloat16", "int8"):
            q = stored(x, dtype, signed)[nonzero]
            rel = np.abs(q.astype(np.float64) - x[nonzero]) / np.abs(x[nonzero])
            out[slot, dtype] = FormatError(
                slot, dtype, rel, position, int(np.sum(q == 0)), int(np.sum(~nonzero)),
                scales if dtype == "int8" else None,
            )  # fmt: skip
    return out


def block_max_exact(values: np.ndarray, signed: bool) -> bool:
    """Whether int8 storage keeps the largest |x| of every block exactly (the code holds
    +-1 times the scale; the signed code's -1 is missing, so a negative maximum is checked
    too)."""
    x = np.asarray(values, np.float32).reshape(-1)
    q = stored(x, "int8", signed)
    pad = -x.size % quantization.BLOCK_SIZE
    xb = np.concatenate([x, np.zeros(pad, np.float32)]).reshape(-1, quantization.BLOCK_SIZE)
    qb = np.concatenate([q, np.zeros(pad, np.float32)]).reshape(-1, quantization.BLOCK_SIZE)
    at = np.argmax(np.abs(xb), axis=1)
    rows = np.arange(xb.shape[0])
    return bool(np.all(np.abs(qb[rows, at]) == np.abs(xb[rows, at])))


def block_extremes(m: np.ndarray) -> dict:
    """For int8 storage of a first moment ``m`` (signed code): the number of ``blocks``, of
    blocks whose largest |entry| is stored exactly (``exact``), of blocks whose largest
    |entry| is negative (``negative``), and whether each of those is stored as the signed
    code's least value times the scale (``negative_as_code_0``)."""
    x = np.asarray(m, np.float32).reshape(-1)
    q = stored(x, "int8", True)
    size = quantization.BLOCK_SIZE
    pad = -x.size % size
    xb = np.concatenate([x, np.zeros(pad, np.float32)]).reshape(-1, size)
    qb = np.concatenate([q, np.zeros(pad, np.float32)]).reshape(-1, size)
    rows = np.arange(xb.shape[0])
    at = np.argmax(np.abs(xb), axis=1)
    top, kept = xb[rows, at], qb[rows, at]
    scale = np.abs(top)
    negative = top < 0
    least = quantization.dynamic_code(True)[0]
    return {
        "blocks": int(xb.shape[0]),
        "exact": int(np.sum(kept == top)),
        "negative": int(np.sum(negative)),
        "negative_as_code_0": bool(np.all(kept[negative] == least * scale[negative])),
    }


def error_cdf(relative: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(relative error, share of entries at or below it) at ``points`` quantiles."""
    levels = np.linspace(0.0, 1.0, points + 1)[1:]
    return np.quantile(relative, levels), levels


def median_by_position(err: FormatError, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median relative error of the entries whose ``|x| / scale`` falls in each
    log-spaced bin (NaN where a bin is empty): (bin centre, median)."""
    centres = np.sqrt(edges[:-1] * edges[1:])
    which = np.digitize(err.position, edges) - 1
    medians = np.full(centres.size, np.nan)
    for b in range(centres.size):
        inside = err.relative[which == b]
        if inside.size:
            medians[b] = np.median(inside)
    return centres, medians


@dataclass
class LayerState:
    """One layer's first and second moments ``m``, ``v`` measured as bfloat16 and int8 store
    them: ``errors`` (:func:`state_errors`), the int8 blocks of m (:func:`block_extremes`),
    v's median int8 error within a decade of its block's scale (``near_top``: position >=
    0.1) and more than three decades below it (``far_below``: position < 1e-3), the v
    entries below half the unsigned code's least positive value (``below``), and the
    largest over the smallest block scale of each moment (``spread``)."""

    m: np.ndarray
    v: np.ndarray
    errors: dict
    extremes: dict
    near_top: float
    far_below: float
    below: int
    spread: dict

    def median_error(self, slot: str, state_dtype: str, low: float, high: float) -> float:
        """The median relative error of ``slot`` in ``state_dtype`` over the entries with
        ``low <= position < high`` (NaN where there are none)."""
        err = self.errors[slot, state_dtype]
        inside = err.relative[(err.position >= low) & (err.position < high)]
        return float(np.median(inside)) if inside.size else float("nan")

    @property
    def size(self) -> int:
        return int(self.m.size)

    @property
    def zeros(self) -> int:
        """Entries of m that are exactly 0."""
        return self.errors["m", "int8"].zeros


def layer_state(m: np.ndarray, v: np.ndarray) -> LayerState:
    """:class:`LayerState` of moments ``m`` and ``v`` (float32)."""
    errors = state_errors(m, v)
    v8 = errors["v", "int8"]
    least = quantization.dynamic_code(False)[1]
    return LayerState(
        m=np.asarray(m, np.float32),
        v=np.asarray(v, np.float32),
        errors=errors,
        extremes=block_extremes(m),
        near_top=float(np.median(v8.relative[v8.position >= 0.1])),
        far_below=float(np.median(v8.relative[v8.position < 1e-3])),
        below=int(np.sum(v8.position < least * np.float32(0.5))),
        spread={
            slot: float(errors[slot, "int8"].scales.max() / errors[slot, "int8"].scales.min())
            for slot in ("m", "v")
        },
    )
