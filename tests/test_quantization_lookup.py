"""The O(1) nearest-code table (optimlab.quantization.lookup) against the definition
(blockwise.nearest: search, then one rounding step), the kernels' requantization of hostile
blocks against blockwise.quantize, both engines on NaN/inf moments, and the generated-module
loader the two fused engines share.

Every float32 pattern (2^32, both codes) is compared under HYPOTHESIS_PROFILE=explore or
OPTIMLAB_EXHAUSTIVE=1 (numba, all threads; see test_every_float32); by default every step of
the rounding, its neighbours and every bucket's ends.
"""

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, prange

import optimlab as ol
from optimlab.engines import fused
from optimlab.quantization import blockwise, kernels, lookup
from optimlab.quantization.codes import dynamic_code

EXHAUSTIVE = (
    os.environ.get("HYPOTHESIS_PROFILE") == "explore"
    or os.environ.get("OPTIMLAB_EXHAUSTIVE") == "1"
)
SIGNED = [True, False]


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


def definition(signed):
    code = dynamic_code(signed)
    return lambda y: blockwise.nearest(np.asarray(y, np.float32), code)


def special_floats():
    """NaNs of both signs and payloads, infinities, zeros, subnormals, the ends of the normal
    range, 1 and just above, -1 and just below."""
    patterns = [
        0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF,  # NaNs
        0x7F800000, 0xFF800000, 0x00000000, 0x80000000,  # infinities, zeros
        0x00000001, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF,
        0x3F800000, 0x3F800001, 0xBF800000, 0xBF800001,
    ]  # fmt: skip
    return np.array(patterns, np.uint32).view(np.float32)


@pytest.mark.parametrize("signed", SIGNED)
def test_table_is_the_definition_at_every_step(signed):
    nearest, table = definition(signed), blockwise.nearest_table(signed)
    steps = lookup.steps(nearest)
    assert steps.size == 255 and np.all(np.diff(steps) > 0)
    around = (steps[:, None] + np.arange(-3, 4)[None, :]).reshape(-1)
    buckets = np.arange(65536, dtype=np.int64) << 16
    keys = np.concatenate([around, buckets, buckets + 65535])
    y = np.concatenate([lookup.key_floats(keys), special_floats()])
    expected = nearest(y)
    assert np.array_equal(lookup.nearest_by_table(y, table), expected)
    assert np.array_equal(kernels.nearest_codes(y, table), expected)
    # each step really is one: the float below it rounds lower
    below = nearest(lookup.key_floats(steps - 1)).astype(int)
    assert np.array_equal(nearest(lookup.key_floats(steps)).astype(int), below + 1)
    # about 240 buckets hold a step (the rest answer by their base alone)
    holds = (table & 0xFFFF) != 0
    assert 200 <= holds.sum() <= 255


def test_keys_order_the_floats():
    y = np.sort(np.random.default_rng(3).standard_normal(10_000).astype(np.float32) * 1e3)
    y = np.concatenate([[-np.inf], y, [np.inf]]).astype(np.float32)
    keys = lookup.float_keys(y)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0)
    assert np.array_equal(bits(lookup.key_floats(keys)), bits(y))
    assert lookup.float_keys(np.float32(-0.0)) + 1 == lookup.float_keys(np.float32(0.0))
    assert lookup.float_keys(np.float32(-np.inf)) == lookup.LOWEST_KEY
    assert lookup.float_keys(np.float32(np.inf)) == lookup.HIGHEST_KEY


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64),
    st.booleans(),
)
def test_lookup_is_the_definition_on_any_bits(patterns, signed):
    """Any float32 patterns, and the monotonicity the table rests on: for non-NaN a, b with
    key(a) <= key(b), nearest(a) <= nearest(b)."""
    y = np.array(patterns, np.uint32).view(np.float32)
    nearest, table = definition(signed), blockwise.nearest_table(signed)
    expected = nearest(y)
    assert np.array_equal(lookup.nearest_by_table(y, table), expected)
    assert np.array_equal(kernels.nearest_codes(y, table), expected)
    finite = y[~np.isnan(y)]
    ordered = finite[np.argsort(lookup.float_keys(finite), kind="stable")]
    assert np.all(np.diff(nearest(ordered).astype(int)) >= 0)


@njit(error_model="numpy", boundscheck=False)
def _by_search(y, code):
    """blockwise.nearest for one float32, transcribed operation for operation."""
    k = 128 if y >= code[128] else 0
    step = 64
    while step >= 1:
        k += step if y >= code[k + step] else 0
        step //= 2
    up = min(k + 1, 255)
    low = code[k]
    return up if (y - low) >= (code[up] - low) * np.float32(0.5) else k


@njit(error_model="numpy", boundscheck=False)
def _by_search_codes(y, code):
    out = np.empty(y.size, np.uint8)
    for i in range(y.size):
        out[i] = _by_search(y[i], code)
    return out


@njit(parallel=True, error_model="numpy", boundscheck=False)
def _mismatches(code, table):
    """The number of the 2^32 float32 patterns where the kernels' lookup and the definition
    disagree (chunks of 2^20 in parallel)."""
    bad = 0
    for c in prange(4096):
        for low in range(1 << 20):
            y = kernels._bits_float(np.uint32((c << 20) | low))
            if kernels.nearest_code(y, table) != _by_search(y, code):
                bad += 1
    return bad


@pytest.mark.parametrize("signed", SIGNED)
def test_transcription_is_the_definition(signed):
    """The numba transcription that test_every_float32 checks against is blockwise.nearest."""
    patterns = np.random.default_rng(8).integers(0, 2**32, 100_000, dtype=np.uint64)
    y = np.concatenate([patterns.astype(np.uint32).view(np.float32), special_floats()])
    code = dynamic_code(signed)
    assert np.array_equal(_by_search_codes(y, code), blockwise.nearest(y, code))


@pytest.mark.skipif(not EXHAUSTIVE, reason="2^32 patterns per code (43 s of CPU for both)")
@pytest.mark.parametrize("signed", SIGNED)
def test_every_float32(signed):  # pragma: no cover - explore runs
    assert _mismatches(dynamic_code(signed), blockwise.nearest_table(signed)) == 0


@njit(parallel=True, error_model="numpy", boundscheck=False)
def _lane_mismatches(code, table):
    """test_every_float32 for the vector path: the 2^32 patterns through codes_by_lanes
    (scale 1: y = x / 1 is x, a NaN stays a NaN), in chunks of 2^20."""
    bad = 0
    for c in prange(4096):
        y = (np.arange(1 << 20, dtype=np.int64) + (c << 20)).astype(np.uint32).view(np.float32)
        out = np.empty(y.size, np.uint8)
        kernels.codes_by_lanes(y, y.size, np.float32(1.0), out, table)
        for low in range(1 << 20):
            if out[low] != _by_search(y[low], code):
                bad += 1
    return bad


@pytest.mark.skipif(not EXHAUSTIVE, reason="2^32 patterns per code (about 20 s of CPU each)")
@pytest.mark.parametrize("signed", SIGNED)
def test_every_float32_by_lanes(signed):  # pragma: no cover - explore runs
    assert _lane_mismatches(dynamic_code(signed), blockwise.nearest_table(signed)) == 0


@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("scale", [1.0, 0.37, 3.0e38, 1e-12, np.inf, np.nan])
def test_both_code_paths_are_the_definition(signed, scale):
    """codes_by_lanes (vector gather) and codes_by_keys (scalar loads) give blockwise.nearest
    of row / scale for any bits, scales and a count that is no multiple of LANES."""
    patterns = np.random.default_rng(12).integers(0, 2**32, 4000, dtype=np.uint64)
    row = np.concatenate([patterns.astype(np.uint32).view(np.float32), special_floats()])
    n = row.size - 5  # the last five stay out
    assert n % kernels.LANES != 0
    scale = np.float32(scale)
    with np.errstate(all="ignore"):
        expected = definition(signed)(row[:n] / scale)
    table = blockwise.nearest_table(signed)
    # the lanes where this CPU uses them (kernels.decide_vector_gather: AVX-512, no GDS
    # mitigation, the intrinsics compile): elsewhere only the scalar loads run
    for path in ("lanes", "keys") if kernels.decide_vector_gather() else ("keys",):
        codes = np.full(row.size, 77, np.uint8)
        work = row.copy()
        if path == "lanes":
            kernels.codes_by_lanes(work, n, scale, codes, table)
        else:
            kernels.codes_by_keys(work, n, scale, codes, table, np.empty(row.size, np.uint32))
        assert np.array_equal(codes[:n], expected), path
        assert np.all(codes[n:] == 77), path  # nothing past n written


@pytest.mark.skipif(
    not kernels.decide_vector_gather(), reason="the vector gather runs where the CPU has AVX-512"
)
def test_dequantize_paths_agree():
    code = dynamic_code(True)
    codes = np.random.default_rng(13).integers(0, 256, 256 + 7, dtype=np.uint8)
    for size in (256, 250, 7):
        row = np.full(256 + 7, np.float32(5.0))
        kernels.dequantize_by_lanes(codes[:size], code, row)
        assert np.array_equal(bits(row[:size]), bits(code[codes[:size]]))
        assert np.all(row[size:] == 5.0)


def _kernel_quantize(x, signed):
    """blockwise.quantize as the kernels do it: per block, requantize_row."""
    x = np.asarray(x, np.float32)
    blocks = blockwise.block_count(x.size)
    codes = np.empty(x.size, np.uint8)
    scales = np.empty(blocks, np.float32)
    keys = np.empty(256, np.uint32)
    table = blockwise.nearest_table(signed)
    for b in range(blocks):
        row = np.zeros(256, np.float32)
        part = x[b * 256 : (b + 1) * 256]
        row[: part.size] = part
        m = np.uint32((bits(part) & np.uint32(0x7FFFFFFF)).max())
        cb = codes[b * 256 : b * 256 + part.size]
        kernels.requantize_row(row, part.size, m, cb, scales, b, table, keys)
    return codes, scales


def _hostile(signed):
    r = np.random.default_rng(11)
    blocks = [
        r.standard_normal(256) * 1e-3,
        np.zeros(256),  # all zero: scale 1e-12
        r.standard_normal(256) * 1e-14,  # below the least scale
        np.full(256, 1.4e-45),  # subnormals
        np.where(np.arange(256) == 7, np.inf, r.standard_normal(256)),  # inf: x / inf
        np.where(np.arange(256) == 9, -np.inf, r.standard_normal(256)),
        np.where(np.arange(256) == 3, np.nan, r.standard_normal(256)),  # NaN: all NaN
        np.where(np.arange(256) % 2 == 0, -np.nan, 1.0),
        r.uniform(-3e38, 3e38, 256),  # near the largest float32
        r.standard_normal(100),  # a partial last block
    ]
    x = np.concatenate(blocks).astype(np.float32)
    return x if signed else np.where(np.isnan(x), x, np.abs(x)).astype(np.float32)


@pytest.mark.parametrize("signed", SIGNED)
def test_kernel_requantization_is_blockwise_quantize(signed):
    x = _hostile(signed)
    codes, scales = _kernel_quantize(x, signed)
    ref_codes, ref_scales = blockwise.quantize(x, signed)
    assert np.array_equal(codes, ref_codes)
    nan = np.isnan(ref_scales)
    assert np.array_equal(np.isnan(scales), nan) and nan.sum() == 2
    assert np.array_equal(bits(scales[~nan]), bits(ref_scales[~nan]))
    assert np.all(codes[6 * 256 : 8 * 256] == 0)  # NaN blocks: every code 0
    assert scales[1] == blockwise.MIN_SCALE and scales[4] == np.inf


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
def test_engines_bit_equal_on_nan_and_inf_moments():
    """A gradient with NaN and inf in different blocks (nan_policy="propagate"): NaN and
    infinite moments, quantized the same by both engines."""

    def run(engine):
        p = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
        opt = ol.Adam(learning_rate=1e-2, state_dtype="int8", engine=engine,
                      nan_policy="propagate")  # fmt: skip
        r = np.random.default_rng(2)
        for step in range(3):
            g = r.standard_normal(5000).astype(np.float32)
            if step == 1:
                g[10], g[700], g[1500] = np.nan, np.inf, -np.inf
            opt.apply([g], [p])
        return p, opt.state_dict()["slots"]

    p_ref, ref = run("reference")
    p_fus, fus = run("fused")
    assert np.array_equal(bits(p_ref), bits(p_fus))
    assert ref.keys() == fus.keys()
    for k in ref:
        a, b = np.asarray(ref[k]), np.asarray(fus[k])
        if a.dtype == np.float32:
            assert np.array_equal(np.isnan(a), np.isnan(b))
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        assert np.array_equal(a, b), k
    assert np.isnan(np.asarray(fus["m.scales/0"])).any()


def test_refusals():
    table = blockwise.nearest_table(True)
    y = np.zeros(4, np.float32)
    for bad in (table[:10], table.astype(np.int64), table.reshape(256, 256)):
        with pytest.raises(ValueError, match=r"table=ndarray of shape .* 65536 uint32"):
            lookup.nearest_by_table(y, bad)
    skips = lambda v: np.where(definition(True)(v) == 100, 101, definition(True)(v))  # noqa: E731
    with pytest.raises(ValueError, match=r"nearest=.*non-decreasing and take every code"):
        lookup.build_table(skips)
    with pytest.raises(ValueError, match=r"nearest=.*0 at -inf and 255 at \+inf"):
        lookup.build_table(lambda v: np.zeros(np.shape(v), np.uint8))
    assert not table.flags.writeable


def test_both_engines_load_through_one_helper(monkeypatch):
    names = []
    real = fused._load_generated

    def spy(name, text, path, namespace):
        names.append(name)
        return real(name, text, path, namespace)

    monkeypatch.setattr(fused, "_load_generated", spy)
    monkeypatch.setattr(fused, "_LOOPS", {})
    monkeypatch.setattr(kernels, "_LOOPS", {})
    p = np.ones(5000, np.float32)
    for state_dtype in ("float32", "int8"):
        ol.Adam(state_dtype=state_dtype).apply([p * np.float32(0.5)], [p])
    assert [n.split("_")[1] for n in names] == ["fused", "narrow"]
    for name in names:
        module = sys.modules[name]
        assert module.__name__ == name and callable(module.parallel)
        assert module.__file__ is None or os.path.isfile(module.__file__)
