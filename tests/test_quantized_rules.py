"""``state_dtype="int8"``, ``"int4"`` and ``"bfloat16"`` for every elementwise rule (issue 16,
item 1).

For each optimizer whose rule declares ``QUANTIZED_SLOTS`` and each narrow kind: the reference
and the fused engine agree bit for bit (both are optimlab's code on this machine), parameters
of fewer than 4096 elements keep float32 state and move exactly as in a float32 run, the
narrow run stays near the float32 one, state_dict and .npz files round-trip bit for bit, a
float32 state loads into a narrow optimizer and back, ``Params`` takes it, and nonsense is
refused without changing anything. Adam's own cases (AMSGrad, the peers' codes) are in
tests/test_quantization.py.

The kernels are compiled once per rule and kind and then cached on disk (numba's cache), so
a warm run of this file takes a few seconds.
"""

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import optimlab as ol
from optimlab import rules
from optimlab.quantization import blockwise
from optimlab.quantization.codes import MIN_QUANTIZED_SIZE, dynamic_code
from optimlab.quantization.state import (
    Bfloat16State,
    Int4State,
    Int8State,
    from_bfloat16_bits,
    is_narrow,
    to_bfloat16_bits,
)

#: case name -> (optimizer, options): one configuration per rule, every optional slot that
#: the rule quantizes switched on (each combination of slot kinds is its own compiled loop)
CASES = {
    "SGD": (ol.SGD, {"momentum": 0.9, "nesterov": True}),
    "Adagrad": (ol.Adagrad, {}),  # initial_accumulator_value 0.1: a nonzero start
    "RMSprop": (ol.RMSprop, {"momentum": 0.5}),
    "Adam": (ol.Adam, {}),
    "Nadam": (ol.Nadam, {}),
    "Adamax": (ol.Adamax, {}),
    "Adadelta": (ol.Adadelta, {"learning_rate": 1.0}),
    "Lion": (ol.Lion, {"learning_rate": 1e-3}),
    "RAdam": (ol.RAdam, {}),
    "Rprop": (ol.Rprop, {}),
    "Rprop-optax": (ol.Rprop, {"preset": "optax"}),  # the applied update is the stored prev
    "ScheduleFreeAdamW": (ol.ScheduleFreeAdamW, {"weight_decay": 0.01}),
}
KINDS = ("int8", "int4", "bfloat16")
GRID = [(case, kind) for case in CASES for kind in KINDS]
STEPS = 4
BIG, SMALL = 5000, 10  # 5000 >= 4096: narrow; 10: float32 whatever state_dtype says
REFUSING = {"ASGD": ol.ASGD, "Ftrl": ol.Ftrl}


def bits(x):
    return np.asarray(x, np.float32).view(np.uint32)


def bit_equal(a, b):
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    )


def start():
    """Two parameters: one narrow, one small (float32 state)."""
    return [
        np.random.default_rng(1).standard_normal(BIG).astype(np.float32),
        np.linspace(-1, 1, SMALL, dtype=np.float32),
    ]


def make(case, state_dtype, **more):
    cls, options = CASES[case]
    options = {"learning_rate": 1e-2, **options, **more}
    return cls(state_dtype=state_dtype, **options)


def steps(opt, params, n, seed=5):
    r = np.random.default_rng(seed)
    for _ in range(n):
        opt.apply([r.standard_normal(p.shape).astype(np.float32) for p in params], params)


@functools.cache
def run(case, state_dtype, engine):
    """``(optimizer, parameters)`` after STEPS updates (shared: read only)."""
    opt, params = make(case, state_dtype, engine=engine), start()
    steps(opt, params, STEPS)
    return opt, params


def slots_equal(a, b):
    a, b = a.state_dict()["slots"], b.state_dict()["slots"]
    return a.keys() == b.keys() and all(bit_equal(a[k], b[k]) for k in a)


def rule_of(case):
    return CASES[case][0].rule


# -- the declarations -----------------------------------------------------------------------


def test_declarations():
    """Every elementwise rule either declares narrow slots (real slots of the rule, each with
    a code) or says why not; the tensor-level rules declare none."""
    declared = set()
    for name, rule in rules.RULES.items():
        slots = getattr(rule, "QUANTIZED_SLOTS", None)
        if getattr(rule, "TENSOR", False):
            assert slots is None, name
            continue
        if slots is None:
            assert isinstance(getattr(rule, "FLOAT32_STATE", None), str), name
            continue
        declared.add(name)
        assert set(slots) <= {slot for slot, _ in rule.SLOTS}, name
        assert set(slots.values()) <= {"signed", "unsigned"}, name
        assert not set(slots) & set(getattr(rule, "PARAMETER_SLOTS", ())), name
    assert declared == {
        "sgd", "adagrad", "rmsprop", "adam", "nadam", "adamax", "adadelta", "lion", "radam",
        "rprop", "schedule_free_adamw",
    }  # fmt: skip
    assert {c.rule.__name__.rsplit(".", 1)[1] for c, _ in CASES.values()} == declared


@pytest.mark.parametrize("case", list(CASES))
def test_codes_fit_the_values(case):
    """Each declared code fits what the float32 run holds in that slot: an unsigned slot is
    never negative (the unsigned code has no negative values), a signed one takes both signs
    (else the unsigned code, twice as fine, would do)."""
    full, _ = run(case, "float32", "fused")
    names = [name for name, _ in rule_of(case).SLOTS]
    for name, code in rule_of(case).QUANTIZED_SLOTS.items():
        values = full._slots[0][names.index(name)]
        if values is None:
            continue
        if code == "unsigned":
            assert np.min(values) >= 0, name
        else:
            assert np.min(values) < 0 < np.max(values), name


# -- engines, small parameters, closeness ----------------------------------------------------


@pytest.mark.parametrize(("case", "kind"), GRID)
def test_engines_bit_equal(case, kind):
    """Reference == fused, parameters and stored state bit for bit; the declared slots of the
    big parameter are narrow, the others and every slot of the small one float32."""
    ref, p_ref = run(case, kind, "reference")
    fus, p_fus = run(case, kind, "fused")
    for a, b in zip(p_ref, p_fus, strict=True):
        assert np.array_equal(bits(a), bits(b))
    assert slots_equal(ref, fus)
    declared = rule_of(case).QUANTIZED_SLOTS
    narrow = {"int8": Int8State, "int4": Int4State, "bfloat16": Bfloat16State}[kind]
    for (name, _), big, small in zip(rule_of(case).SLOTS, *fus._slots, strict=True):
        if big is None:
            continue
        assert isinstance(big, narrow) if name in declared else isinstance(big, np.ndarray)
        assert isinstance(small, np.ndarray) and small.dtype == np.float32
    assert SMALL < MIN_QUANTIZED_SIZE <= BIG


@pytest.mark.parametrize(("case", "kind"), GRID)
def test_small_parameter_is_the_float32_run(case, kind):
    _, narrow = run(case, kind, "fused")
    _, full = run(case, "float32", "fused")
    assert np.array_equal(bits(narrow[1]), bits(full[1]))
    assert not np.array_equal(bits(narrow[0]), bits(full[0])) or case == "Rprop"


#: the largest deviation from the float32 run allowed after STEPS updates, as a fraction of
#: how far the float32 run moved the parameter (its largest |p_t - p_0|). int8: the dynamic
#: code holds a value in the top decade of its block (the large moments, which make the
#: step) within half a gap, at most 0.7% of the block's largest, and a value at a tenth of it
#: within 7%; through sqrt(v) and over a few steps that stays well below 10% of the movement
#: (Adam, the worst, about 3%). bfloat16: each store rounds by at most 2^-9 relative: 2%.
#: int4: 16 codes, and v on the linear grid k / 16 of its block's absmax with no 0, so a v
#: far below its block's largest is stored as absmax / 16 and its step shrinks: after STEPS
#: updates up to about half the float32 run's movement (Adadelta 53%, Adam 50%, measured).
TOLERANCE = {"int8": 0.10, "int4": 0.60, "bfloat16": 0.02}


@pytest.mark.parametrize(("case", "kind"), GRID)
def test_close_to_the_float32_run(case, kind):
    _, narrow = run(case, kind, "fused")
    _, full = run(case, "float32", "fused")
    moved = np.max(np.abs(full[0] - start()[0]))
    deviation = np.abs(narrow[0] - full[0])
    if case == "Lion":  # every coordinate moves by +-lr: a rounded m flips a few signs of c
        assert np.mean(deviation > 0) < TOLERANCE[kind]
        assert np.max(deviation) <= 2 * STEPS * 1e-3 * (1 + 1e-5)
    else:
        assert np.max(deviation) <= TOLERANCE[kind] * moved
    assert moved > 0


def test_rprop_reads_only_the_sign():
    """Rprop's prev is only read for the sign of g * prev (torch's preset): the narrow run is
    the float32 run, as long as no prev rounds to 0 (none does here in int8 or bfloat16; in
    int4 many do: the signed code's least nonzero value is 0.0055 of its block's absmax)."""
    for kind in ("int8", "bfloat16"):
        _, narrow = run("Rprop", kind, "fused")
        _, full = run("Rprop", "float32", "fused")
        assert all(np.array_equal(bits(a), bits(b)) for a, b in zip(narrow, full, strict=True))


# -- nonzero initial values --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_nonzero_initial_accumulator(kind):
    """Adagrad's accumulator starts at 0.1 as the narrow format holds it: a block of equal
    values is exact in int8 (code 1.0 times the scale 0.1), bfloat16 holds 0.10009766; the
    first update is then the float32 update from that start, bit for bit."""
    opt = ol.Adagrad(learning_rate=0.1, initial_accumulator_value=0.1, state_dtype=kind)
    p = start()[0]
    opt.build([p])
    held = opt._slots[0][0].dequantize()
    expected = np.float32(0.1)
    if kind == "bfloat16":
        expected = from_bfloat16_bits(to_bfloat16_bits(np.array([0.1], np.float32)))[0]
    assert np.array_equal(held, np.full(BIG, expected, np.float32))
    steps(opt, [p], 1)
    q = start()[0]
    full = ol.Adagrad(learning_rate=0.1, initial_accumulator_value=float(expected))
    steps(full, [q], 1)
    assert np.array_equal(bits(p), bits(q))
    zero = ol.Adagrad(initial_accumulator_value=0.0, state_dtype=kind)
    zero.build([start()[0]])
    assert not np.any(zero._slots[0][0].dequantize())


def test_nonzero_initial_value_after_load():
    """A narrow state rebuilt by load_state_dict holds the saved values, not the start."""
    opt, params = run("Adagrad", "int8", "fused")
    other = make("Adagrad", "int8")
    other.load_state_dict(opt.state_dict(), [p.copy() for p in params])
    assert slots_equal(opt, other)


# -- state round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "kind"), GRID)
def test_state_dict_and_file_round_trip(case, kind, tmp_path):
    opt, params = run(case, kind, "fused")
    state = opt.state_dict()
    stored = [k for k, v in state["slots"].items() if v.dtype in (np.uint8, np.uint16)]
    assert stored  # the narrow arrays themselves are saved, not float32 copies
    path = tmp_path / "state.npz"
    opt.save(path, params)
    copies = {}
    for how in ("dict", "file"):
        ps = [p.copy() for p in params]
        other = make(case, kind)
        if how == "dict":
            other.load_state_dict(state, ps)
        else:
            other.load(path, ps)
        assert slots_equal(opt, other)
        copies[how] = (other, ps)
    mine = copy_of(opt, params)
    for o, ps in (mine, *copies.values()):
        steps(o, ps, 2, seed=9)
    for _, ps in copies.values():
        assert all(np.array_equal(bits(a), bits(b)) for a, b in zip(mine[1], ps, strict=True))
        assert slots_equal(mine[0], copies["dict"][0])


def copy_of(opt, params):
    """A fresh optimizer holding ``opt``'s state and a copy of ``params`` (the cached run
    stays as it is)."""
    ps = [p.copy() for p in params]
    other = type(opt).from_config(opt.get_config())
    other.load_state_dict(opt.state_dict(), ps)
    return other, ps


@pytest.mark.parametrize(("case", "kind"), GRID)
def test_float32_state_loads_narrow_and_back(case, kind):
    full, params = run(case, "float32", "fused")
    narrow = make(case, kind)
    narrow.load_state_dict(full.state_dict(), [p.copy() for p in params])
    declared = rule_of(case).QUANTIZED_SLOTS
    back = make(case, "float32")
    back.load_state_dict(narrow.state_dict(), [p.copy() for p in params])
    assert back.state_dtype == "float32"
    for k, (name, _) in enumerate(rule_of(case).SLOTS):
        f_big, n_big, b_big = full._slots[0][k], narrow._slots[0][k], back._slots[0][k]
        if f_big is None:
            assert n_big is None and b_big is None
            continue
        assert bit_equal(narrow._slots[1][k], full._slots[1][k])  # small: float32 as saved
        if name not in declared:
            assert bit_equal(n_big, f_big) and bit_equal(b_big, f_big)
            continue
        if kind == "int8":
            codes, scales = blockwise.quantize(f_big, signed=declared[name] == "signed")
            assert np.array_equal(n_big.codes, codes) and np.array_equal(n_big.scales, scales)
        elif kind == "int4":
            packed, scales = blockwise.quantize4(f_big, signed=declared[name] == "signed")
            assert np.array_equal(n_big.codes, packed) and np.array_equal(n_big.scales, scales)
        else:
            assert np.array_equal(n_big.bits, to_bfloat16_bits(f_big))
        assert bit_equal(b_big, n_big.dequantize())  # the values the narrow state held


# -- the Keras dialect and Params ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["SGD", "RMSprop", "Nadam", "Lion", "ScheduleFreeAdamW"])
def test_config_and_params(case, kind):
    """get_config/from_config keep state_dtype; ``step(Params)`` (one flat parameter per
    group) is ``apply`` on those flat buffers, bit for bit: the big group's slots narrow, the
    small group's (300 elements) float32."""
    opt = make(case, kind)
    assert opt.get_config()["state_dtype"] == kind
    assert type(opt).from_config(opt.get_config()).state_dtype == kind
    r = np.random.default_rng(2)
    arrays = {"w": r.standard_normal((64, 70)), "b": r.standard_normal(300)}
    params = ol.Params(arrays, dtype=np.float32, groups={"bias": {"params": ["b"]}})
    groups = params.group_arrays()
    flats = [data.copy() for _, data, _ in groups]
    other = make(case, kind)
    for k in range(3):
        for name in arrays:
            params.grads[name][...] = np.random.default_rng(k).standard_normal(arrays[name].shape)
        grads = [grad.copy() for _, _, grad in groups]
        opt.step(params)
        other.apply(grads, flats)
    for (_, data, _), flat in zip(groups, flats, strict=True):
        assert np.array_equal(bits(data), bits(flat))
    assert slots_equal(opt, other)
    big, small = (opt._slots[opt._index[id(data)]] for _, data, _ in groups)
    assert any(is_narrow(s) for s in big) and not any(is_narrow(s) for s in small)


# -- hostile input -----------------------------------------------------------------------------


def snapshot(opt, params=()):
    state = opt.state_dict()
    return state["config"], state["iterations"], state["slots"], [p.copy() for p in params]


def same(a, b):
    config_a, it_a, slots_a, params_a = a
    config_b, it_b, slots_b, params_b = b
    return (
        config_a == config_b
        and it_a == it_b
        and slots_a.keys() == slots_b.keys()
        and all(bit_equal(slots_a[k], slots_b[k]) for k in slots_a)
        and all(bit_equal(x, y) for x, y in zip(params_a, params_b, strict=True))
    )


@pytest.mark.parametrize("case", list(CASES))
def test_nonsense_state_dtype_refused(case):
    cls, options = CASES[case]
    for bad in ("int2", "float16", "INT8", "INT4", 8, 4, None, np.float32):
        with pytest.raises(ValueError, match=r"state_dtype.*'float32', 'bfloat16', 'int8', 'int4'"):
            cls(state_dtype=bad, **options)


@pytest.mark.parametrize("name", list(REFUSING))
def test_float32_only_rules_say_why(name):
    reason = REFUSING[name].rule.FLOAT32_STATE
    for kind in KINDS:
        with pytest.raises(ValueError) as error:
            REFUSING[name](state_dtype=kind)
        message = str(error.value)
        assert f"state_dtype={kind!r} is not available for {name}" in message
        assert reason in message and message.endswith("valid: 'float32'")
    assert REFUSING[name](state_dtype="float32").state_dtype == "float32"


@pytest.mark.parametrize("kind", KINDS)
def test_centered_rmsprop_refused(kind):
    with pytest.raises(ValueError, match=rf"state_dtype={kind!r}.*RMSprop with centered=True"):
        ol.RMSprop(centered=True, state_dtype=kind)
    assert ol.RMSprop(centered=True).get_config()["centered"] is True
    opt = ol.RMSprop(state_dtype=kind)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"centered=True"):
        opt.centered = True
    assert same(before, snapshot(opt)) and not opt.centered
    with pytest.raises(ValueError, match=r"centered=True"):
        ol.RMSprop.from_config({**opt.get_config(), "centered": True})
    p = [start()[0]]
    opt.build(p)  # (the uncentered one builds: gbar is off)
    assert opt._slots[0][1] is None


@pytest.mark.parametrize("kind", KINDS)
def test_refused_calls_change_nothing(kind):
    opt, params = copy_of(*run("Adadelta", kind, "fused"))
    before = snapshot(opt, params)
    bad_params = [p.astype(np.float64) for p in params]
    fresh = make("Adadelta", kind)
    with pytest.raises(TypeError, match=rf"state_dtype={kind!r}.*parameter 0 must be float32"):
        fresh.build(bad_params)
    assert not fresh.built
    state = opt.state_dict()
    key = next(k for k, v in state["slots"].items() if v.dtype in (np.uint8, np.uint16))
    other_dtype = np.int16 if kind == "bfloat16" else np.float32  # (float32: a float32 state)
    for broken in (state["slots"][key][:-1], state["slots"][key].astype(other_dtype)):
        tampered = {**state, "slots": {**state["slots"], key: broken}}
        with pytest.raises(ValueError, match=rf"state\['slots'\]\[{key!r}\]"):
            opt.load_state_dict(tampered)
        assert same(before, snapshot(opt, params))
    weights = opt.variables
    k = next(i for i, (name, *_) in enumerate(opt._keras_variables()) if name.endswith("/0"))
    weights[k] = np.full_like(weights[k], np.inf)[:-1]  # a wrong shape: refused
    with pytest.raises(ValueError, match=r"not compatible"):
        opt.set_weights(weights)
    assert same(before, snapshot(opt, params))
    weights = opt.variables
    weights[k] = np.full(weights[k].shape, 1e300)  # beyond float32: refused
    with pytest.raises(ValueError, match=r"float32 cannot hold"):
        opt.set_weights(weights)
    assert same(before, snapshot(opt, params))
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(3,\)"):
        opt.apply([np.zeros(3, np.float32), np.zeros(SMALL, np.float32)], params)
    assert same(before, snapshot(opt, params))
    nan = np.ones(BIG, np.float32)
    nan[4321] = np.nan  # nan_policy="raise": the narrow state is not touched either
    with pytest.raises(FloatingPointError, match=r"gradient 0 has 1 non-finite"):
        opt.apply([nan, np.ones(SMALL, np.float32)], params)
    assert same(before, snapshot(opt, params))


# -- the codes: round-trip error ---------------------------------------------------------------


def _half_gaps(y, code):
    """Half the gap of the code interval holding each y (the end intervals outside)."""
    k = np.clip(np.searchsorted(code, y, side="right") - 1, 0, code.size - 2)
    return (code[k + 1] - code[k]) * np.float32(0.5)


@given(
    x=hnp.arrays(
        np.float32,
        st.integers(1, 700),
        elements=st.floats(-(2.0**100), 2.0**100, width=32, allow_subnormal=True),
    ),
    signed=st.booleans(),
)
def test_round_trip_error_is_at_most_half_a_gap(x, signed):
    """|dequantize(quantize(x)) - x| <= (half the code gap at x / s) * s for each element,
    s its block's scale (max |x| over the block, at least 1e-12), plus the float32 roundings
    of x / s and of code * s (a few ulps of s); x >= 0 for the unsigned code. bfloat16:
    within half its ulp (8 bits of significand)."""
    if not signed:
        x = np.abs(x)
    code = dynamic_code(signed)
    codes, scales = blockwise.quantize(x, signed)
    back = blockwise.dequantize(codes, scales, signed)
    s = np.repeat(scales, 256)[: x.size].astype(np.float64)
    y = (x / s).astype(np.float32)
    bound = _half_gaps(y, code).astype(np.float64) * s + 4 * np.spacing(s.astype(np.float32))
    assert np.all(np.abs(back.astype(np.float64) - x) <= bound)
    state = Int8State(x.shape, signed)
    state.assign(x)
    assert np.array_equal(state.dequantize(), back)
    half = (
        np.bitwise_and(x.view(np.uint32), np.uint32(0x7F800000)).view(np.float32).astype(np.float64)
        * 2.0**-8
    )
    rounded = from_bfloat16_bits(to_bfloat16_bits(x)).astype(np.float64)
    assert np.all(np.abs(rounded - x) <= np.maximum(half, 2.0**-134))


def test_a_decay_below_half_a_gap_holds():
    """The documented limit of rounding to nearest (:mod:`optimlab.quantization.state`):
    Adamax's u = max(beta_2 * u, |g|) of a coordinate without gradient decays by 0.1% a
    step in float32, and holds still in bfloat16 (half a gap at 0.5 is 0.2%)."""
    held = {}
    for kind in ("float32", "bfloat16"):
        p, g = np.zeros(BIG, np.float32), np.full(BIG, 0.5, np.float32)
        opt = ol.Adamax(state_dtype=kind)
        opt.apply([g], [p])
        for _ in range(20):
            opt.apply([np.zeros_like(g)], [p])
        u = opt._slots[0][1]
        held[kind] = u if kind == "float32" else u.dequantize()
    assert np.all(held["bfloat16"] == np.float32(0.5))
    assert np.allclose(held["float32"], 0.5 * 0.999**20, rtol=1e-5)
