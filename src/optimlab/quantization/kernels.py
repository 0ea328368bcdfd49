"""The fused engine for narrow state: one compiled pass per block of 256 elements.

For each block b, in registers and a scratch row of 256 float32 per int8 slot (allocated once
per chunk of 64 blocks, per thread, with one uint32 row of keys; no full-size temporary)::

    row_k = code_k[codes_k]                              (int8 slots: a gather)
    for each element i of the block:                     (vectorized)
        g, p = the pipeline of engines.fused (loss scale, sign, clipping, weight decay)
        s_k  = row_k[i] * scale_k[b]                     (int8 slots)
             | float32(bits_k[i] << 16)                  (bfloat16 slots)
             | s_k[i]                                    (float32 slots)
        p, s_0, s_1, ... = rule.update(p, g, s_0, s_1, ...)   (the float32 moments)
        p[i] = p;  ema[i] = ...                          (as engines.fused)
        bits_k[i] = bfloat16 nearest s_k;  row_k[i] = s_k;  m_k = max(m_k, bits(|s_k|))
    for each int8 slot k:
        scale_k[b] = max(absmax_k, 1e-12)                (absmax_k: the float of m_k)
        codes_k = nearest(row_k / scale_k[b])            (the table of quantization.lookup)

(Where no slot is int8 there is no absmax to find: the loop runs over the elements with no
blocks, as engines.fused's, the bfloat16 loads and stores in it.)

with every operation that of :mod:`optimlab.quantization.blockwise` and
:mod:`optimlab.quantization.state` (the reference), so that the two engines agree bit for bit
(the max of a block is exact in any order; the quotient is a true division: a product by the
reciprocal rounds differently). The two table loads (code_k[c] and the nearest-code table)
are gathers, which numba's LLVM does not emit by itself: where the CPU has AVX-512
(``VECTOR_GATHER``) they run 16 lanes at a time through ``llvm.masked.gather`` (intrinsics
below: ``vpgatherdd``, the whole requantization of 16 elements in one vector; the int8
Adam step at 1.6e7 parameters went from 20.8 to about 15 ms on a quiet 2-core Rocket Lake),
elsewhere element by element (an explicit AVX2 gather was measured no faster than the scalar
loads). Both paths give the same bits (tests/test_quantization_lookup.py). The element
function is generated
from the rule's ``SLOTS`` and the kind of each slot's buffer, as :mod:`optimlab.engines.fused`
generates its loops (and cached on disk the same way, by its ``_key`` and
``_load_generated``). A parameter under engines.fused's ``PARALLEL_THRESHOLD`` runs the same
blocks in a one-thread loop (waking the thread pool costs more than its step; same bits).
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding, ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ..engines import fused
from . import blockwise
from .blockwise import MIN_SCALE
from .codes import BLOCK_SIZE, BLOCK_SIZE_4, code4, dynamic_code
from .state import Bfloat16State, Int4State, Int8State

#: blocks per task of the parallel loop (one scratch allocation each)
CHUNK_BLOCKS = 64
_OPTS = fused._OPTS
#: lanes of :func:`_nearest_lanes` (one AVX-512 register of float32)
LANES = 16
#: whether requantize_row finds the codes LANES at a time with a vector gather: where the CPU
#: has AVX-512 (measured 2.2x faster than the scalar loads on an Intel Rocket Lake; AVX2
#: gathers were measured no faster than the scalar loads, so other CPUs keep those)
VECTOR_GATHER = False  # (set below, once the lane functions exist: _vector_gather())


@intrinsic
def _float_bits(typingctx, x):
    """The uint32 bit pattern of a float32."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _bits_float(typingctx, x):
    """The float32 of a uint32 bit pattern."""
    if x != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


class _VectorAddress(ir.instructions.Instruction):
    """``getelementptr inbounds T, ptr base, <N x i32> index``: the N addresses of base[index]
    for 4-byte elements T (llvmlite's ``gep`` takes no vector of indices)."""

    def __init__(self, parent, base, index, typ, element):
        super().__init__(parent, typ, "getelementptr", [base, index], name="")
        self.element = element

    def descr(self, buf):
        base, index = self.operands
        buf.append(
            f"getelementptr inbounds {self.element}, {base.type} {base.get_reference()}, "
            f"{index.type} {index.get_reference()}\n"
        )


def _gather(builder, base, index, element):
    """``base[index]`` for a vector of LANES int32 ``index`` (``llvm.masked.gather``, every lane
    on) from the data pointer ``base`` of 4-byte ``element`` s (an llvmlite type)."""
    vector = ir.VectorType
    pointer = ir.PointerType(element)
    address = _VectorAddress(
        builder.block, builder.bitcast(base, pointer), index, vector(pointer, LANES), element
    )
    builder._insert(address)
    i1, i32 = ir.IntType(1), ir.IntType(32)
    kind = "f32" if element == ir.FloatType() else "i32"
    name = f"llvm.masked.gather.v{LANES}{kind}.v{LANES}p0"
    values = vector(element, LANES)
    gather = builder.module.globals.get(name) or ir.Function(
        builder.module,
        ir.FunctionType(values, [vector(pointer, LANES), i32, vector(i1, LANES), values]),
        name=name,
    )
    on = ir.Constant(vector(i1, LANES), [1] * LANES)
    return builder.call(gather, [address, i32(4), on, ir.Constant(values, ir.Undefined)])


@intrinsic
def _dequantize_lanes(typingctx, codes, code, row, j):
    """``row[j + l] = code[codes[j + l]]`` for the LANES lanes l, one vector gather (the
    caller keeps j + LANES <= the arrays' sizes)."""
    if not (
        isinstance(codes, types.Array)
        and codes.dtype == types.uint8
        and isinstance(code, types.Array)
        and code.dtype == types.float32
        and isinstance(row, types.Array)
        and row.dtype == types.float32
    ):
        return None
    signature = types.void(codes, code, row, types.intp)

    def codegen(context, builder, signature, args):
        indices, values, out = (
            context.make_array(signature.args[k])(context, builder, args[k]) for k in range(3)
        )
        i8, i32, f32 = ir.IntType(8), ir.IntType(32), ir.FloatType()
        place = builder.gep(indices.data, [args[3]])
        c = builder.load(builder.bitcast(place, ir.VectorType(i8, LANES).as_pointer()), align=1)
        v = _gather(builder, values.data, builder.zext(c, ir.VectorType(i32, LANES)), f32)
        place = builder.gep(out.data, [args[3]])
        builder.store(v, builder.bitcast(place, v.type.as_pointer()), align=4)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _nearest_lanes(typingctx, row, codes, table, j, scale):
    """``codes[j + l] = nearest_code(row[j + l] / scale, table)`` for the LANES lanes l, as one
    vector: the division, the order key, ``table[key >> 16]`` by ``llvm.masked.gather`` (one
    ``vpgatherdd`` with AVX-512), the addition, the shift and the NaN select, with
    :func:`nearest_code`'s operations. The caller keeps j + LANES <= the arrays' sizes."""
    if not (
        isinstance(row, types.Array)
        and row.dtype == types.float32
        and isinstance(codes, types.Array)
        and codes.dtype == types.uint8
        and isinstance(table, types.Array)
        and table.dtype == types.uint32
        and scale == types.float32
    ):
        return None
    signature = types.void(row, codes, table, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        rows, out, entries = (
            context.make_array(signature.args[k])(context, builder, args[k]) for k in range(3)
        )
        i8, i32, f32 = ir.IntType(8), ir.IntType(32), ir.FloatType()

        def vector(t):
            return ir.VectorType(t, LANES)

        def splat(t, c):
            return ir.Constant(vector(t), [c] * LANES)

        place = builder.gep(rows.data, [args[3]])
        x = builder.load(builder.bitcast(place, vector(f32).as_pointer()), align=4)
        s = builder.insert_element(ir.Constant(vector(f32), ir.Undefined), args[4], i32(0))
        s = builder.shuffle_vector(s, ir.Constant(vector(f32), ir.Undefined), splat(i32, 0))
        y = builder.fdiv(x, s)
        b = builder.bitcast(y, vector(i32))
        key = builder.xor(b, builder.or_(builder.ashr(b, splat(i32, 31)), splat(i32, 1 << 31)))
        entry = _gather(builder, entries.data, builder.lshr(key, splat(i32, 16)), i32)
        index = builder.lshr(
            builder.add(entry, builder.and_(key, splat(i32, 0xFFFF))), splat(i32, 16)
        )
        index = builder.select(builder.fcmp_ordered("ord", y, y), index, splat(i32, 0))
        place = builder.gep(out.data, [args[3]])
        builder.store(
            builder.trunc(index, vector(i8)),
            builder.bitcast(place, vector(i8).as_pointer()),
            align=1,
        )
        return context.get_dummy_value()

    return signature, codegen


@njit(**_OPTS)
def bf16_load(bits):
    """float32 of bfloat16 bits (exact)."""
    return _bits_float(np.uint32(np.uint32(bits) << np.uint32(16)))


@njit(**_OPTS)
def bf16_store(x):
    """The bfloat16 bits nearest float32 ``x`` (ties to even; NaN -> 0x7FC0 with x's sign)."""
    b = np.uint32(_float_bits(x))
    high = b >> np.uint32(16)
    quiet = (high & np.uint32(0x8000)) | np.uint32(0x7FC0)
    rounded = np.uint32(b + (np.uint32(0x7FFF) + (high & np.uint32(1)))) >> np.uint32(16)
    return np.uint16(quiet if x != x else rounded)  # (a select: the loop stays branch-free)


@njit(**_OPTS)
def order_key(y):
    """The order key of float32 ``y`` (uint32, :func:`optimlab.quantization.lookup.float_keys`):
    its bits xor 0xFFFFFFFF where the sign is set, xor 0x80000000 where not."""
    b = _float_bits(y)
    return np.uint32(b ^ (np.uint32(np.int32(b) >> np.int32(31)) | np.uint32(0x80000000)))


@njit(**_OPTS)
def nearest_code(y, table):
    """blockwise.nearest for one float32 ``y`` in O(1) (:mod:`optimlab.quantization.lookup`):
    ``(table[key >> 16] + (key & 0xFFFF)) >> 16`` of y's order key ``key``, 0 for NaN; no
    branch."""
    key = order_key(y)
    index = (table[key >> np.uint32(16)] + (key & np.uint32(0xFFFF))) >> np.uint32(16)
    return np.uint8(index if y == y else 0)


@njit(**_OPTS)
def nearest_codes(y, table):
    """:func:`nearest_code` of every float32 of ``y`` (uint8): the kernels' lookup on an
    array, for tests against ``blockwise.nearest``."""
    out = np.empty(y.size, np.uint8)
    for i in range(y.size):
        out[i] = nearest_code(y[i], table)
    return out


@njit(**_OPTS)
def dequantize_row(codes, code, row):
    """``row[i] = code[codes[i]]`` for the ``codes`` of one block (float32; the kernel's
    update loop multiplies by the block's scale, vectorized): by :func:`dequantize_by_lanes`
    (defined below) where VECTOR_GATHER, else one scalar load each."""
    if VECTOR_GATHER:
        dequantize_by_lanes(codes, code, row)
    else:
        for i in range(codes.size):
            row[i] = code[codes[i]]


@njit(**_OPTS)
def abs_bits(x):
    """The bits of |x| (uint32): for non-NaN floats their order is that of |x|, so the max of
    a block is an integer max (a reduction LLVM vectorizes, unlike a float max that must keep
    NaN); a NaN's are above 0x7F800000 (+inf's)."""
    return np.uint32(_float_bits(x) & np.uint32(0x7FFFFFFF))


@njit(**_OPTS)
def absmax_from_bits(row, n, m):
    """max |row[:n]| as ``np.max(np.abs(.))`` gives it, from ``m``, the max of
    :func:`abs_bits` over the row (0 for n = 0); with a NaN, the first NaN met, its sign
    cleared (as a running float max that keeps its first NaN)."""
    if m > np.uint32(0x7F800000):
        for i in range(n):
            a = abs_bits(row[i])
            if a > np.uint32(0x7F800000):
                return _bits_float(a)
    return _bits_float(np.uint32(m))


@njit(inline="always", **_OPTS)
def codes_by_lanes(row, n, scale, codes, table):
    """``codes[j] = nearest_code(row[j] / scale, table)`` for j < n: LANES at a time by
    :func:`_nearest_lanes` (a vector gather), the last n % LANES one by one."""
    full = n - n % LANES
    for j in range(0, full, LANES):
        _nearest_lanes(row, codes, table, j, scale)
    for j in range(full, n):
        codes[j] = nearest_code(row[j] / scale, table)


@njit(inline="always", **_OPTS)
def codes_by_keys(row, n, scale, codes, table, keys):
    """:func:`codes_by_lanes` with scalar table loads, split in three loops so that only the
    table load runs element by element (LLVM does not gather here): the quotients and their
    order keys (vectorized; ``row`` and the uint32 scratch ``keys`` are overwritten),
    ``table[key >> 16] + (key & 0xFFFF)`` (scalar), the shift and the NaN select
    (vectorized)."""
    for j in range(n):
        y = row[j] / scale
        row[j] = y
        keys[j] = order_key(y)
    for j in range(n):
        key = keys[j]
        keys[j] = table[key >> np.uint32(16)] + (key & np.uint32(0xFFFF))
    for j in range(n):
        y = row[j]
        codes[j] = np.uint8((keys[j] >> np.uint32(16)) if y == y else 0)


@njit(**_OPTS)
def requantize_row(row, n, m, codes, scales, b, table, keys):
    """Store ``row[:n]`` (float32; ``m`` the max of its :func:`abs_bits`) as block ``b`` of an
    int8 buffer: its scale ``s = max(absmax, 1e-12)``, then its codes ``nearest(row / s)`` by
    :func:`nearest_code`'s lookup: :func:`codes_by_lanes` where VECTOR_GATHER, else
    :func:`codes_by_keys` (``row`` and the scratch ``keys`` may be overwritten)."""
    absmax = block_scale(row, n, m, scales, b)
    if VECTOR_GATHER:
        codes_by_lanes(row, n, absmax, codes, table)
    else:
        codes_by_keys(row, n, absmax, codes, table, keys)


@njit(**_OPTS)
def dequantize4_row(packed, n, code, row):
    """``row[i] = code[code i]`` for the ``n`` codes of one block of 4-bit state, two a byte
    of ``packed``, high nibble first."""
    for j in range(n // 2):
        c = packed[j]
        row[2 * j] = code[c >> np.uint8(4)]
        row[2 * j + 1] = code[c & np.uint8(15)]
    if n % 2:
        row[n - 1] = code[packed[n // 2] >> np.uint8(4)]


def codes4_source() -> str:
    """The source of ``codes4_of_row(row, n, scale, out, steps)``: ``out[i]`` (uint32) the
    code of blockwise.nearest for ``row[i] / scale`` among the 16 values of a 4-bit code, for
    i < n, as the count of its 15 steps at or below the quotient
    (:func:`~optimlab.quantization.blockwise.thresholds4`; NaN counts none): no table read,
    a loop LLVM vectorizes, written out so that numba holds the 15 steps in registers. The
    narrow loops of int4 state include it (so it is cached with them); :data:`codes4_of_row`
    is the same source compiled alone, for the tests."""
    names = [f"t{j}" for j in range(15)]
    count = " + ".join(f"np.uint32(y >= {t})" for t in names)
    return (
        "@njit(**_OPTS)\n"
        "def codes4_of_row(row, n, scale, out, steps):\n"
        f"    {', '.join(names)} = {', '.join(f'steps[{j}]' for j in range(15))}\n"
        "    for i in range(n):\n"
        "        y = row[i] / scale\n"
        f"        out[i] = {count}\n"
    )


def _compile_codes4():
    namespace = {"np": np, "njit": njit, "_OPTS": dict(_OPTS, cache=False)}
    exec(codes4_source(), namespace)  # (the loops' own copy is cached with them)
    return namespace["codes4_of_row"]


codes4_of_row = _compile_codes4()


@njit(**_OPTS)
def block_scale(row, n, m, scales, b):
    """The scale of block ``b``, ``max(absmax, 1e-12)`` of ``row[:n]`` (``m``: the max of
    its :func:`abs_bits`; NaN stays NaN, as np.maximum), stored in ``scales[b]`` and
    returned."""
    absmax = absmax_from_bits(row, n, m)
    if absmax < MIN_SCALE:
        absmax = MIN_SCALE
    scales[b] = absmax
    return absmax


@njit(**_OPTS)
def pack4_row(codes, n, packed):
    """The ``n`` codes (0..15) two a byte into ``packed``, high nibble first (an odd last
    one with 0): blockwise.pack4."""
    for j in range(n // 2):
        packed[j] = np.uint8((codes[2 * j] << np.uint32(4)) | codes[2 * j + 1])
    if n % 2:
        packed[n // 2] = np.uint8(codes[n - 1] << np.uint32(4))


@njit(inline="always", **_OPTS)
def dequantize_by_lanes(codes, code, row):
    """``row[i] = code[codes[i]]``, LANES at a time by :func:`_dequantize_lanes`."""
    start = codes.size - codes.size % LANES
    for i in range(0, start, LANES):
        _dequantize_lanes(codes, code, row, i)
    for i in range(start, codes.size):
        row[i] = code[codes[i]]


def _gather_mitigated() -> bool:
    """Whether the kernel slows vector gathers down on this CPU (the Downfall / GDS
    microcode mitigation of Skylake-SP to Ice Lake: a gather then costs several times the
    scalar loads), as Linux reports it."""
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/gather_data_sampling") as f:
            return f.read().startswith("Mitigation")
    except OSError:
        return False


def _vector_gather() -> bool:
    """Whether to find codes with vector gathers: the CPU has AVX-512, the gathers are not
    slowed by a mitigation, and the lane functions compile and agree with the scalar lookup
    here (llvmlite's gather intrinsic and its private address builder are checked once per
    process, so a llvmlite that stopped taking them falls back to the scalar loads instead of
    failing a step). numba freezes this global into the kernels it compiles and caches them
    per CPU, so it is decided once, here, from the machine alone."""
    if _gather_mitigated():
        return False
    if not binding.get_host_cpu_features().get("avx512f", False):
        return False
    try:
        table = blockwise.nearest_table(True)
        row = np.linspace(-1.0, 1.0, 3 * LANES + 5, dtype=np.float32)
        lanes, keys = np.empty(row.size, np.uint8), np.empty(row.size, np.uint8)  # codes
        codes_by_lanes_probe(row.copy(), row.size, np.float32(1.0), lanes, table)
        scratch = np.empty(row.size, np.uint32)
        codes_by_keys_probe(row.copy(), row.size, np.float32(1.0), keys, table, scratch)
        return bool(np.array_equal(lanes, keys))
    except Exception:  # a compile error of the intrinsics: the scalar loads
        return False


@njit(**_OPTS)
def codes_by_lanes_probe(row, n, scale, codes, table):
    codes_by_lanes(row, n, scale, codes, table)


@njit(**_OPTS)
def codes_by_keys_probe(row, n, scale, codes, table, keys):
    codes_by_keys(row, n, scale, codes, table, keys)


_GATHER_DECIDED = False


def decide_vector_gather() -> bool:
    """Decide :data:`VECTOR_GATHER` once per process, before the first narrow loop is made
    (not at import: the probe compiles, and ``import optimlab`` should not wait for it). A
    kernel compiled before the decision keeps the scalar loads: the same bits."""
    global VECTOR_GATHER, _GATHER_DECIDED
    if not _GATHER_DECIDED:
        VECTOR_GATHER = _vector_gather()
        _GATHER_DECIDED = True
    return VECTOR_GATHER


_TEMPLATE = """

@njit(inline="always", **_OPTS)
def block(b, p, g, {args}, ema, s, pipe, rows, keys):
    # each array sliced to the block first: indexing the whole arrays from ``start`` kept
    # LLVM from vectorizing the loop (8 ns an element instead of 1, numba 0.68)
    start = b * BLOCK
    end = min(start + BLOCK, p.size)
    n = end - start
    pb = p[start:end]
    gb = g[start:end]
{slices}    for i in range(n):
        gi, pi = _prepare(gb[i], pb[i], pipe)
{reads}        pi, {values} = update(pi, gi, {values}, *s)
        pb[i] = pi
{writes}{average}{requantize}

@njit(parallel=True, **_OPTS)
def parallel(p, g, {args}, ema, s, pipe):
    blocks = (p.size + BLOCK - 1) // BLOCK
    chunks = (blocks + CHUNK - 1) // CHUNK
    for c in prange(chunks):
        rows = np.empty(({rows}, BLOCK), dtype=np.float32)
        keys = np.empty(BLOCK, dtype=np.uint32)
        for b in range(c * CHUNK, min(blocks, (c + 1) * CHUNK)):
            block(b, p, g, {args}, ema, s, pipe, rows, keys)


@njit(**_OPTS)
def serial(p, g, {args}, ema, s, pipe):
    rows = np.empty(({rows}, BLOCK), dtype=np.float32)
    keys = np.empty(BLOCK, dtype=np.uint32)
    for b in range((p.size + BLOCK - 1) // BLOCK):
        block(b, p, g, {args}, ema, s, pipe, rows, keys)
"""

_LOOPS: dict = {}


def _kinds(slots, ema) -> tuple[str, ...]:
    """The key of a loop: per slot its buffer's kind, then whether an EMA is kept."""
    kinds = []
    for buffer in slots:
        if buffer is None:
            kinds.append("off")
        elif isinstance(buffer, Int8State):
            kinds.append("int8")
        elif isinstance(buffer, Int4State):
            kinds.append("int4")
        elif isinstance(buffer, Bfloat16State):
            kinds.append("bf16")
        else:
            kinds.append("plain")
    return (*kinds, "ema" if ema is not None else "no ema")


def loop_source(rule, kinds: tuple[str, ...]) -> str:
    """The generated source of ``rule``'s loop for slot buffers of ``kinds`` (per slot:
    ``"int8"``, ``"int4"``, ``"bf16"``, ``"plain"`` float32, or ``"off"``; last ``"ema"`` or
    ``"no ema"``)."""
    *slots, ema = kinds
    if "int8" not in slots and "int4" not in slots:
        return _flat_source(slots)
    args, slices, reads, writes, requantize = [], [], [], [], []
    row = 0
    for k, kind in enumerate(slots):
        if kind == "int8":
            args += [f"c{k}", f"a{k}", f"q{k}", f"t{k}"]
            slices.append(
                f"    c{k}b = c{k}[start:end]\n    r{k} = rows[{row}]\n"
                f"    scale{k} = a{k}[b]\n    m{k} = np.uint32(0)\n"
                f"    dequantize_row(c{k}b, q{k}, r{k})\n"
            )
            reads.append(f"        v{k} = r{k}[i] * scale{k}\n")
            writes.append(f"        r{k}[i] = v{k}\n        m{k} = max(m{k}, abs_bits(v{k}))\n")
            requantize.append(f"    requantize_row(r{k}, n, m{k}, c{k}b, a{k}, b, t{k}, keys)\n")
            row += 1
        elif kind == "int4":  # (blocks of 128: start is even, two codes a byte)
            args += [f"c{k}", f"a{k}", f"q{k}", f"t{k}"]
            slices.append(
                f"    c{k}b = c{k}[start // 2 : (end + 1) // 2]\n    r{k} = rows[{row}]\n"
                f"    scale{k} = a{k}[b]\n    m{k} = np.uint32(0)\n"
                f"    dequantize4_row(c{k}b, n, q{k}, r{k})\n"
            )
            reads.append(f"        v{k} = r{k}[i] * scale{k}\n")
            writes.append(f"        r{k}[i] = v{k}\n        m{k} = max(m{k}, abs_bits(v{k}))\n")
            requantize.append(
                f"    scale{k} = block_scale(r{k}, n, m{k}, a{k}, b)\n"
                f"    codes4_of_row(r{k}, n, scale{k}, keys, t{k})\n"
                f"    pack4_row(keys, n, c{k}b)\n"
            )
            row += 1
        elif kind == "bf16":
            args.append(f"h{k}")
            slices.append(f"    h{k}b = h{k}[start:end]\n")
            reads.append(f"        v{k} = bf16_load(h{k}b[i])\n")
            writes.append(f"        h{k}b[i] = bf16_store(v{k})\n")
        elif kind == "plain":
            args.append(f"s{k}")
            slices.append(f"    s{k}b = s{k}[start:end]\n")
            reads.append(f"        v{k} = s{k}b[i]\n")
            writes.append(f"        s{k}b[i] = v{k}\n")
        else:
            args.append(f"n{k}")
            reads.append(f"        v{k} = gi\n")
    if ema == "ema":
        slices.append("    eb = ema[start:end]\n")
        average = "        _average(i, eb, pi, pipe)\n"
    else:
        average = ""
    return ("\n\n" + codes4_source() if "int4" in slots else "") + _TEMPLATE.format(
        args=", ".join(args),
        values=", ".join(f"v{k}" for k in range(len(slots))),
        slices="".join(slices),
        reads="".join(reads),
        writes="".join(writes),
        average=average,
        requantize="".join(requantize),
        rows=max(row, 1),
    )


def _flat_source(slots) -> str:
    """The loop where no slot is int8 (float32 and bfloat16 buffers only): no block needs its
    absmax, so it is engines.fused's flat loop over the elements (its ``_TEMPLATE``), with the
    bfloat16 loads and stores in it (Adam with bfloat16 state at 1.6e7 parameters on a 2-core
    EPYC: 6.5 ms, against 7.8 ms in blocks of 256, a slice, a loop setup and LLVM's remainder
    loop per block). Its ``element`` is left to LLVM's inliner: with ``inline="always"``
    numba's inlining kept the loop from being vectorized (one vsqrtss per element)."""
    args, reads, writes = [], [], []
    for k, kind in enumerate(slots):
        if kind == "bf16":
            args.append(f"h{k}")
            reads.append(f"    v{k} = bf16_load(h{k}[i])\n")
            writes.append(f"    h{k}[i] = bf16_store(v{k})\n")
        elif kind == "plain":
            args.append(f"s{k}")
            reads.append(f"    v{k} = s{k}[i]\n")
            writes.append(f"    s{k}[i] = v{k}\n")
        else:
            args.append(f"n{k}")
            reads.append(f"    v{k} = gi\n")
    return fused._TEMPLATE.format(
        args=", ".join(args),
        values=", ".join(f"v{k}" for k in range(len(slots))),
        reads="".join(reads),
        writes="".join(writes),
    )


def _make(rule, kinds):
    """Generate, write and run ``rule``'s loop for ``kinds`` (engines.fused's machinery: the
    key also digests this module), remember it and return it."""
    decide_vector_gather()
    text = loop_source(rule, kinds)
    with open(__file__, "rb") as f:
        key = fused._key(text, rule, f.read())
    stem = "narrow_" + "".join(c if c.isalnum() else "_" for c in fused._name(rule))
    stem += "_" + "".join("4" if kind == "int4" else kind[0] for kind in kinds)
    header = f"# Generated by optimlab.quantization.kernels for {fused._name(rule)}, {kinds}.\n"
    text = header + f"# Key {key}. Do not edit.\n" + text
    path = fused._write(stem, key, text) if fused._source_file(rule.update) else None
    opts = _OPTS if path is not None else dict(_OPTS, cache=False)
    namespace = dict(
        njit=njit,
        prange=prange,
        np=np,
        _OPTS=opts,
        BLOCK=BLOCK_SIZE_4 if "int4" in kinds else BLOCK_SIZE,
        CHUNK=CHUNK_BLOCKS,
        _prepare=fused._prepare,
        _average=fused._average,
        bf16_load=bf16_load,
        bf16_store=bf16_store,
        dequantize_row=dequantize_row,
        abs_bits=abs_bits,
        requantize_row=requantize_row,
        dequantize4_row=dequantize4_row,
        block_scale=block_scale,
        pack4_row=pack4_row,
        update=fused._compiled_update(rule, opts),
    )
    module = fused._load_generated(f"optimlab_narrow_loops_{stem}_{key}", text, path, namespace)
    _LOOPS[(rule, kinds)] = loops = (module.parallel, module.serial)
    return loops


def _arguments(slots, kinds):
    out = []
    for buffer, kind in zip(slots, kinds[:-1], strict=True):
        if kind == "int8":
            code, table = dynamic_code(buffer.signed), blockwise.nearest_table(buffer.signed)
            out += [buffer.codes.reshape(-1), buffer.scales, code, table]
        elif kind == "int4":
            signed = buffer.signed
            out += [buffer.codes, buffer.scales, code4(signed), blockwise.thresholds4(signed)]
        elif kind == "bf16":
            out.append(buffer.bits.reshape(-1))
        elif kind == "plain":
            out.append(buffer.reshape(-1))
        else:
            out.append(None)
    return out


def apply(rule, p, g, slots, scalars, pipe=fused.NO_PIPELINE, ema=None) -> None:
    """One fused step of ``rule`` on float32 ``p`` (in place) whose ``slots`` hold narrow
    buffers (:class:`Int8State`, :class:`Int4State`, :class:`Bfloat16State`), float32 arrays
    or None."""
    kinds = _kinds(slots, ema)
    loops = _LOOPS.get((rule, kinds)) or _make(rule, kinds)
    # below engines.fused's threshold one thread: waking the pool costs more than the step
    loop = loops[0] if p.size >= fused.PARALLEL_THRESHOLD else loops[1]
    dtype = p.dtype
    loop(
        p.reshape(-1),
        g.reshape(-1),
        *_arguments(slots, kinds),
        None if ema is None else ema.reshape(-1),
        fused._cast(scalars, dtype),
        fused._cast_pipeline(pipe, dtype),
    )
