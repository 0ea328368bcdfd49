"""Narrow optimizer state (issue 16): the 8-bit code and blockwise quantization against
bitsandbytes and torchao, bfloat16 rounding against torch, Adam/AdamW with
``state_dtype="int8"`` and ``"bfloat16"`` on both engines, hostile input and state round trips.

The peers' answers are stored in tests/quantization_peers.npz (tools/quant_peer_answers.py
writes them: importing torchao and bitsandbytes takes about 8 s); under
HYPOTHESIS_PROFILE=explore the peers run live on fresh inputs too.
"""

import os

import numpy as np
import pytest

import optimlab as ol
from optimlab.quantization import blockwise, kernels
from optimlab.quantization.codes import MIN_QUANTIZED_SIZE, code4, dynamic_code
from optimlab.quantization.state import Int4State, Int8State, from_bfloat16_bits, to_bfloat16_bits

PEERS = np.load(os.path.join(os.path.dirname(__file__), "quantization_peers.npz"))
EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
CASES = [(s, n) for s in ("signed", "unsigned") for n in ("random", "adversarial")]


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


@pytest.mark.parametrize("tag", ["signed", "unsigned"])
def test_code_is_bitsandbytes_and_torchao(tag):
    code = dynamic_code(tag == "signed")
    assert code.size == 256 and np.all(np.diff(code) > 0) and code[-1] == 1.0
    assert np.array_equal(bits(code), bits(PEERS[f"bnb_code_{tag}"]))
    assert np.array_equal(bits(code), bits(PEERS[f"torchao_code_{tag}"]))
    assert code[0] == (np.float32(-0.99296875) if tag == "signed" else 0.0)


@pytest.mark.parametrize(("tag", "name"), CASES)
def test_quantize_is_torchao(tag, name):
    key = f"{tag}_{name}"
    x = PEERS[f"input_{key}"]
    codes, scales = blockwise.quantize(x, tag == "signed")
    assert np.array_equal(codes, PEERS[f"torchao_codes_{key}"])
    assert np.array_equal(bits(scales), bits(PEERS[f"torchao_scales_{key}"]))
    back = blockwise.dequantize(codes, scales, tag == "signed")
    assert np.array_equal(bits(back), bits(PEERS[f"torchao_dequant_{key}"]))


@pytest.mark.parametrize(("tag", "name"), CASES)
def test_quantize_against_bitsandbytes(tag, name):
    """Same absmax and dequantization; where bitsandbytes' approximate search picks another
    code, optimlab's is at least as near (blocks whose absmax torchao clips to 1e-12 aside)."""
    key, signed = f"{tag}_{name}", tag == "signed"
    x = PEERS[f"input_{key}"]
    theirs, absmax = PEERS[f"bnb_codes_{key}"], PEERS[f"bnb_absmax_{key}"]
    assert np.array_equal(
        bits(blockwise.dequantize(theirs, absmax, signed)), bits(PEERS[f"bnb_dequant_{key}"])
    )
    codes, scales = blockwise.quantize(x, signed)
    kept = absmax >= blockwise.MIN_SCALE
    assert np.array_equal(bits(scales[kept]), bits(absmax[kept]))
    element = np.repeat(kept, 256)[: x.size]
    ours = np.abs(x - blockwise.dequantize(codes, scales, signed))[element]
    their_error = np.abs(x - blockwise.dequantize(theirs, absmax, signed))[element]
    assert np.all(ours <= their_error)
    if name == "random" and signed:
        assert np.mean(codes[element] == theirs[element]) > 0.99


def test_bfloat16_is_torch():
    x = PEERS["input_bf16"]
    assert np.array_equal(to_bfloat16_bits(x), PEERS["torch_bf16_bits"].view(np.uint16))
    nan = to_bfloat16_bits(np.array([np.nan, -np.nan], np.float32))
    assert np.all(np.isnan(from_bfloat16_bits(nan)))
    assert np.array_equal(bits(from_bfloat16_bits(to_bfloat16_bits(x[8:]))) & 0xFFFF, 0 * x[8:])


@pytest.mark.parametrize("signed", [True, False])
def test_kernel_nearest_is_the_reference(signed):
    code = dynamic_code(signed)
    tag = "signed" if signed else "unsigned"
    y = np.concatenate([PEERS[f"input_{tag}_adversarial"], [np.nan, -1.0, -2.0, 2.0]])
    y = y.astype(np.float32)
    table = blockwise.nearest_table(signed)
    assert np.array_equal(kernels.nearest_codes(y, table), blockwise.nearest(y, code))
    # every kind of float32: random bit patterns (NaN, infinities, subnormals, |y| > 1)
    patterns = np.random.default_rng(16).integers(0, 2**32, 200_000, dtype=np.uint64)
    y = patterns.astype(np.uint32).view(np.float32)
    assert np.array_equal(kernels.nearest_codes(y, table), blockwise.nearest(y, code))
    y = np.random.default_rng(17).uniform(-1, 1, 200_000).astype(np.float32)
    assert np.array_equal(kernels.nearest_codes(y, table), blockwise.nearest(y, code))


def _run(state_dtype, engine, steps=3, **options):
    r = np.random.default_rng(5)
    params = [
        np.random.default_rng(1).standard_normal(5000).astype(np.float32),
        np.linspace(-1, 1, 10, dtype=np.float32),
    ]
    opt = ol.AdamW(learning_rate=1e-2, state_dtype=state_dtype, engine=engine, **options)
    for _ in range(steps):
        opt.apply([r.standard_normal(p.shape).astype(np.float32) for p in params], params)
    return opt, params


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_engines_bit_equal(state_dtype, amsgrad):
    ref, p_ref = _run(state_dtype, "reference", amsgrad=amsgrad)
    fus, p_fus = _run(state_dtype, "fused", amsgrad=amsgrad)
    for a, b in zip(p_ref, p_fus, strict=True):
        assert np.array_equal(bits(a), bits(b))
    a, b = ref.state_dict()["slots"], fus.state_dict()["slots"]
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    kind = Int8State if state_dtype == "int8" else ol.quantization.Bfloat16State
    assert isinstance(fus._slots[0][0], kind)  # 5000 elements: narrow
    assert isinstance(fus._slots[1][0], np.ndarray)  # 10 < 4096: float32
    assert MIN_QUANTIZED_SIZE == 4096


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_step_uses_the_float32_moments(state_dtype):
    """The first step from zero state moves the parameters exactly as float32 Adam (the new
    moments are requantized only afterwards); the stored moments are the quantized ones."""
    narrow, p_narrow = _run(state_dtype, "fused", steps=1)
    full, p_full = _run("float32", "fused", steps=1)
    assert np.array_equal(bits(p_narrow[0]), bits(p_full[0]))
    m = narrow._slots[0][0]
    if state_dtype == "int8":
        codes, scales = blockwise.quantize(full._slots[0][0], signed=True)
        assert np.array_equal(m.codes, codes) and np.array_equal(m.scales, scales)
    else:
        assert np.array_equal(m.bits, to_bfloat16_bits(full._slots[0][0]))
    two, _ = _run(state_dtype, "fused", steps=2)
    again, _ = _run("float32", "fused", steps=2)
    assert not np.array_equal(two.params[0], again.params[0])


def test_state_memory():
    opt, _ = _run("int8", "fused", steps=1)
    nbytes = opt._slots[0][0].nbytes + opt._slots[0][1].nbytes
    assert nbytes == 2 * (5000 + 4 * 20)  # codes + one float32 scale per 256: ~4x less


def test_state_dtype_refused():
    p = np.zeros(5000, np.float32)
    for bad in ("int2", "float16", 8, 4, None):
        with pytest.raises(ValueError, match=r"state_dtype.*'float32', 'bfloat16', 'int8', 'int4'"):
            ol.Adam(state_dtype=bad)
    with pytest.raises(ValueError, match=r"state_dtype='int8' is not available for Ftrl"):
        ol.Ftrl(state_dtype="int8")
    assert ol.Ftrl(state_dtype="float32").get_config()["state_dtype"] == "float32"
    opt = ol.Adam(state_dtype="int8")
    with pytest.raises(TypeError, match=r"state_dtype='int8'.*parameter 0 must be float32"):
        opt.apply([np.ones(5000)], [np.zeros(5000)])
    assert not opt.built and opt.iterations == 0
    opt.apply([np.ones_like(p)], [p])
    assert opt.built and opt.state_dtype == "int8"
    with pytest.raises(AttributeError):
        opt.state_dtype = "float32"


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_resume_and_file_round_trip(state_dtype, tmp_path):
    opt, params = _run(state_dtype, "fused", amsgrad=True)
    state = opt.state_dict()
    copy = [p.copy() for p in params]
    other = ol.AdamW(learning_rate=1e-2, state_dtype=state_dtype, amsgrad=True)
    other.load_state_dict(state, copy)
    path = tmp_path / "state.npz"
    opt.save(path, params)
    filed = ol.AdamW(state_dtype=state_dtype, amsgrad=True)
    filed_params = [p.copy() for p in params]
    filed.load(path, filed_params)
    saved = filed.state_dict()["slots"]
    assert all(np.array_equal(saved[k], state["slots"][k]) for k in state["slots"])
    for o, ps in ((opt, params), (other, copy), (filed, filed_params)):
        r = np.random.default_rng(3)
        for _ in range(2):
            o.apply([r.standard_normal(p.shape).astype(np.float32) for p in ps], ps)
    for ps in (copy, filed_params):
        assert all(np.array_equal(a, b) for a, b in zip(params, ps, strict=True))


def test_float32_state_loads_into_int8_and_back():
    full, params = _run("float32", "fused", amsgrad=True)
    narrow = ol.AdamW(state_dtype="int8", amsgrad=True)
    narrow.load_state_dict(full.state_dict(), [p.copy() for p in params])
    m = narrow._slots[0][0]
    codes, scales = blockwise.quantize(full._slots[0][0], signed=True)
    assert np.array_equal(m.codes, codes) and np.array_equal(m.scales, scales)
    assert np.array_equal(narrow._slots[1][0], full._slots[1][0])  # small: float32 as saved
    back = ol.AdamW(amsgrad=True)
    back.load_state_dict(narrow.state_dict(), [p.copy() for p in params])
    assert back.state_dtype == "float32"
    assert np.array_equal(back._slots[0][0], m.dequantize())  # exact: the stored values
    assert np.array_equal(back._slots[0][1], narrow._slots[0][1].dequantize())


def test_refused_state_changes_nothing():
    opt, params = _run("int8", "fused")
    before = opt.state_dict()
    state = opt.state_dict()
    state["slots"]["m.scales/0"] = state["slots"]["m.scales/0"][:3]
    with pytest.raises(ValueError, match=r"m\.scales/0"):
        opt.load_state_dict(state)
    after = opt.state_dict()["slots"]
    assert all(np.array_equal(after[k], before["slots"][k]) for k in after)


@pytest.mark.skipif(not EXPLORE, reason="imports torchao and bitsandbytes (8 s)")
def test_live_peers_on_fresh_inputs():  # pragma: no cover - explore runs
    torch = pytest.importorskip("torch")
    quant_utils = pytest.importorskip("torchao.optim.quant_utils")
    functional = pytest.importorskip("bitsandbytes.functional")
    rng = np.random.default_rng()
    for signed in (True, False):
        code = dynamic_code(signed)
        assert np.array_equal(bits(code), bits(functional.create_dynamic_map(signed).numpy()))
        x = (rng.standard_normal(256 * 64) * 10.0 ** rng.uniform(-6, 3)).astype(np.float32)
        x = x if signed else x * x
        scaled, scale = quant_utils.scale_tensor(torch.from_numpy(x), 256)
        theirs = quant_utils.quantize_8bit_with_qmap(scaled, torch.tensor(code)).numpy()
        codes, scales = blockwise.quantize(x, signed)
        assert np.array_equal(codes, theirs) and np.array_equal(scales, scale.numpy())


def test_serial_and_parallel_loops_bit_equal():
    """A parameter under engines.fused's PARALLEL_THRESHOLD runs the one-thread loop, a larger
    one the parallel loop: blocks are independent, so one parameter stepped by either loop
    ends with the same bits (parameter, codes and scales)."""
    from optimlab.engines import fused
    from optimlab.rules import adam

    n = fused.PARALLEL_THRESHOLD + 1000
    start = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    ends = []
    for which in (0, 1):
        p = start.copy()
        m, v = Int8State((n,), True), Int8State((n,), False)
        for t in (1, 2, 3):
            g = np.random.default_rng(t).standard_normal(n).astype(np.float32)
            kinds = kernels._kinds([m, v, None], None)
            loops = kernels._LOOPS.get((adam, kinds)) or kernels._make(adam, kinds)
            scalars = adam.scalars(
                t,
                1e-2,
                beta_1=0.9,
                beta_2=0.999,
                epsilon=1e-7,
                amsgrad=False,
                bias_correction=True,
                epsilon_style="hat",
                amsgrad_max="raw",
            )
            loops[which](
                p,
                g,
                *kernels._arguments([m, v, None], kinds),
                None,
                fused._cast(scalars, p.dtype),
                fused._cast_pipeline(fused.NO_PIPELINE, p.dtype),
            )
        ends.append((bits(p), m.codes.copy(), m.scales.copy(), v.codes.copy(), v.scales.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*ends, strict=True))
    assert not np.array_equal(ends[0][0], bits(start))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's NaN
@pytest.mark.parametrize("amsgrad", [False, True])
def test_bfloat16_flat_loops_bit_equal(amsgrad):
    """bfloat16 state runs engines.fused's flat loop (no blocks: no absmax to find), serial
    under PARALLEL_THRESHOLD and parallel above it: both give the reference's bits, with an
    EMA of the weights, AMSGrad's third slot, and NaN / inf in the gradient."""
    from optimlab.engines import fused

    def run(engine, n):
        p = np.random.default_rng(1).standard_normal(n).astype(np.float32)
        opt = ol.Adam(learning_rate=1e-2, state_dtype="bfloat16", engine=engine,
                      amsgrad=amsgrad, use_ema=True, nan_policy="propagate")  # fmt: skip
        r = np.random.default_rng(2)
        for step in range(3):
            g = r.standard_normal(n).astype(np.float32)
            if step == 1:
                g[10], g[700], g[n - 5] = np.nan, np.inf, -np.inf
            opt.apply([g], [p])
        return p, dict(opt.state_dict()["slots"], ema=opt._ema[0])

    for n in (5000, fused.PARALLEL_THRESHOLD + 777):
        p_ref, ref = run("reference", n)
        p_fus, fus = run("fused", n)
        assert np.array_equal(bits(p_ref), bits(p_fus))
        assert ref.keys() == fus.keys() and len(ref) >= (4 if amsgrad else 3)
        for k in ref:
            assert np.array_equal(bits(np.asarray(ref[k])), bits(np.asarray(fus[k]))), k
        loops = [key for key in kernels._LOOPS if key[1][0] == "bf16"]
        assert loops and all("BLOCK" not in kernels.loop_source(*key) for key in loops)


# -- 4 bits: torchao's AdamW4bit -------------------------------------------------------------


@pytest.mark.parametrize("tag", ["signed", "unsigned"])
def test_code4_is_torchao(tag):
    """The 16 values of 4-bit state are torchao's qmaps bit for bit (the signed dynamic code
    of three decades, the unsigned k / 16 without 0)."""
    code = code4(tag == "signed")
    assert code.size == 16 and np.all(np.diff(code) > 0) and code[-1] == 1.0
    assert np.array_equal(bits(code), bits(PEERS[f"torchao_code4_{tag}"]))
    assert (0.0 in code) == (tag == "signed")


@pytest.mark.parametrize(("tag", "name"), CASES)
def test_quantize4_is_torchao(tag, name):
    """Packed codes, scales and dequantized values of blocks of 128 equal torchao's
    quantize_4bit_with_qmap (packed as its OptimState4bit packs them) and dequant_with_qmap,
    ties and near-ties included; the kernels' codes4_of_row (the count of the 15 steps at or
    below y, no search) gives the reference's codes, NaN and beyond +-1 included."""
    key, signed = f"{tag}_{name}", tag == "signed"
    x = PEERS[f"input4_{key}"]
    packed, scales = blockwise.quantize4(x, signed)
    assert np.array_equal(packed, PEERS[f"torchao_packed4_{key}"])
    assert np.array_equal(bits(scales), bits(PEERS[f"torchao_scales4_{key}"]))
    back = blockwise.dequantize4(packed, scales, signed, x.shape)
    assert np.array_equal(bits(back), bits(PEERS[f"torchao_dequant4_{key}"]))
    y = np.concatenate([x / np.repeat(scales, 128), np.float32([np.nan, -2, 2, np.inf])])
    y = y.astype(np.float32)
    ours = np.empty(y.size, np.uint32)
    kernels.codes4_of_row(y, y.size, np.float32(1.0), ours, blockwise.thresholds4(signed))
    assert np.array_equal(ours, blockwise.nearest(y, code4(signed)))


def test_int4_state_memory_and_odd_sizes():
    """An Int4State of n elements holds ceil(n / 2) bytes of codes and a float32 scale per
    128; an odd n round-trips its last element (paired with code 0 in its byte)."""
    n = 4097
    state = Int4State((n,), signed=True)
    assert state.codes.size == 2049 and state.scales.size == 33
    assert state.nbytes == 2049 + 4 * 33 and not np.any(state.dequantize())
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    state.assign(x)
    packed, scales = blockwise.quantize4(x, True)
    assert np.array_equal(state.codes, packed) and state.codes[-1] & 15 == 0
    back = state.dequantize()
    assert back.shape == (n,) and np.array_equal(
        back, blockwise.dequantize4(packed, scales, True, (n,))
    )
    assert np.array_equal(
        blockwise.unpack4(blockwise.pack4(np.arange(15, dtype=np.uint8) % 16), 15),
        np.arange(15) % 16,
    )


def test_int4_checkpoint_loads_into_int8_and_float32():
    """An int4 state saved by state_dict loads into an int4 optimizer bit for bit, and into
    an int8 or float32 optimizer as the values it held (dequantized, then stored as theirs)."""
    p = np.random.default_rng(1).standard_normal((64, 100)).astype(np.float32)
    opt = ol.Adam(learning_rate=1e-2, state_dtype="int4")
    for seed in range(3):
        g = np.random.default_rng(seed).standard_normal(p.shape).astype(np.float32)
        opt.apply([g], [p])
    state = opt.state_dict()
    held = [buffer.dequantize() for buffer in opt._slots[0][:2]]  # m, v (no v_max)
    same = ol.Adam(learning_rate=1e-2, state_dtype="int4")
    same.load_state_dict(state, [p.copy()])
    reloaded = same.state_dict()["slots"]
    assert reloaded.keys() == state["slots"].keys()
    assert all(np.array_equal(state["slots"][k], reloaded[k]) for k in reloaded)
    full = ol.Adam(learning_rate=1e-2)
    full.load_state_dict(state, [p.copy()])
    assert all(
        bits(a).tolist() == bits(b).tolist() for a, b in zip(full._slots[0][:2], held, strict=True)
    )
    eight = ol.Adam(learning_rate=1e-2, state_dtype="int8")
    eight.load_state_dict(state, [p.copy()])
    for buffer, value, signed in zip(eight._slots[0][:2], held, (True, False), strict=True):
        codes, scales = blockwise.quantize(value, signed)
        assert np.array_equal(buffer.codes, codes) and np.array_equal(buffer.scales, scales)


@pytest.mark.parametrize("signed", [True, False])
def test_thresholds4_count_is_nearest(signed):
    """blockwise.thresholds4: for every float32 y, the number of the 15 steps at or below y
    is nearest(y, code4), checked on a million random bit patterns (NaN, infinities,
    subnormals, |y| > 1 among them), each step and the float just below it, and +-0."""
    steps = blockwise.thresholds4(signed)
    code = code4(signed)
    assert steps.size == 15 and np.all(np.diff(steps) > 0)
    patterns = np.random.default_rng(4 + signed).integers(0, 2**32, 10**6, dtype=np.uint64)
    below = np.nextafter(steps, np.float32(-np.inf))
    y = np.concatenate([patterns.astype(np.uint32).view(np.float32), steps, below])
    y = np.concatenate([y, np.float32([0.0, -0.0, np.inf, -np.inf, np.nan])])
    count = np.zeros(y.size, np.int64)
    for t in steps:
        count += y >= t
    assert np.array_equal(count, blockwise.nearest(y, code))
    assert np.array_equal(blockwise.nearest(steps, code), np.arange(1, 16))
    assert np.array_equal(blockwise.nearest(below, code), np.arange(0, 15))
