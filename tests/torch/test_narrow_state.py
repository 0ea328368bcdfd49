"""optimlab.torch's ``state_dtype`` (narrow optimizer state as torch tensors) and
``bf16_stochastic_round`` (issue 16, items 1 and 6): storage, both engines against the NumPy
reference, checkpoints in and out of every storage, refusals that change nothing, and the drift
that stochastic rounding keeps where round-to-nearest stalls."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import optimlab.torch as ot  # noqa: E402
from optimlab import rules  # noqa: E402
from optimlab.engines import reference  # noqa: E402
from optimlab.quantization import blockwise, stochastic  # noqa: E402
from optimlab.quantization.state import (  # noqa: E402
    Bfloat16State,
    Int4State,
    Int8State,
    from_bfloat16_bits,
    to_bfloat16_bits,
)
from optimlab.torch import _narrow  # noqa: E402

N = 5000  # >= 4096: stored narrow; 20 blocks, the last one partial
SPECIAL = np.array(
    [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e-30,
        -1e-30,
        3.4e38,
        -3.4e38,
        np.inf,
        -np.inf,
        np.nan,
        -np.nan,
        1.00390625,
        1.01171875,
        1e-45,
        65504.0,
    ],
    dtype=np.float32,
)


def _grads(n, steps, seed=1, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=gen).to(dtype) for _ in range(steps)]


def _train(
    steps,
    state_dtype="float32",
    engine="auto",
    dtype=torch.float32,
    opt=None,
    p=None,
    grads=None,
    cls=ot.Adam,
    **kw,
):
    """An Adam of a large and a small parameter, ``steps`` steps of seeded gradients."""
    if p is None:
        gen = torch.Generator().manual_seed(0)
        p = [
            torch.nn.Parameter(torch.randn(N, generator=gen).to(dtype)),
            torch.nn.Parameter(torch.randn(7, generator=gen).to(dtype)),
        ]
    if opt is None:
        opt = cls(p, lr=1e-2, engine=engine, state_dtype=state_dtype, **kw)
    grads = grads or list(
        zip(_grads(N, steps, dtype=dtype), _grads(7, steps, 2, dtype), strict=True)
    )
    for g0, g1 in grads[:steps]:
        p[0].grad, p[1].grad = g0.clone(), g1.clone()
        opt.step()
    return p, opt


def _snapshot(opt, params):
    return (copy.deepcopy(opt.state_dict()), [q.detach().clone() for q in params])


def _same(a, b):
    (sa, pa), (sb, pb) = a, b
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert sa["state"][k].keys() == sb["state"][k].keys(), k
        for key in sa["state"][k]:
            x, y = sa["state"][k][key], sb["state"][k][key]
            assert x.dtype == y.dtype and torch.equal(x, y), (k, key)


# -- storage ------------------------------------------------------------------------------------


def test_layout_of_each_state_dtype():
    for state_dtype, dtype in (
        ("float32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("int8", torch.uint8),
    ):
        (big, small), opt = _train(1, state_dtype)
        assert opt.state_dtype == state_dtype
        state = opt.state[big]
        assert state["exp_avg"].dtype == dtype and state["exp_avg"].shape == big.shape
        assert state["exp_avg_sq"].dtype == dtype
        scales = {k for k in state if k.endswith(".scales")}
        if state_dtype == "int8":
            assert scales == {"exp_avg.scales", "exp_avg_sq.scales"}
            assert state["exp_avg.scales"].dtype == torch.float32
            assert state["exp_avg.scales"].shape == (20,)
        else:
            assert not scales
        # fewer than 4096 elements: float32 state, as the core and both peers
        assert {k: v.dtype for k, v in opt.state[small].items()} == {
            "step": torch.float32,
            "exp_avg": torch.float32,
            "exp_avg_sq": torch.float32,
        }


def _numpy_reference(state_dtype, steps, amsgrad=False):
    """The core's reference engine on the same numbers: the slots as Int8State /
    Bfloat16State, the rule in NumPy float32."""
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(N, generator=gen).numpy().copy()
    make = {"int8": Int8State, "int4": Int4State, "bfloat16": Bfloat16State}[state_dtype]
    slots = [make((N,), True), make((N,), False), make((N,), False) if amsgrad else None]
    for t, g in enumerate(_grads(N, steps), start=1):
        scalars = rules.adam.scalars(
            t,
            1e-2,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            amsgrad=amsgrad,
            bias_correction=True,
            epsilon_style="paper",
            amsgrad_max="raw",
        )
        scalars = tuple(np.float32(x) if type(x) is float else x for x in scalars)
        reference.apply(rules.adam, p, g.numpy(), slots, scalars)
    return p, slots


def _stored(state, key):
    t = state[key]
    if t.dtype == torch.bfloat16:
        return {"": t.view(torch.int16).numpy().view(np.uint16)}
    return {"": t.numpy(), ".scales": state[key + ".scales"].numpy()}


@pytest.mark.parametrize("state_dtype", ["int8", "int4", "bfloat16"])
def test_cpu_kernel_is_the_numpy_reference_bit_for_bit(state_dtype):
    """The fused block kernel on the tensors' memory: parameter and stored slots equal the
    reference engine's (both ours, same machine), AMSGrad's third slot included."""
    p_ref, slots = _numpy_reference(state_dtype, 3, amsgrad=True)
    (big, _), opt = _train(3, state_dtype, amsgrad=True)
    assert np.array_equal(big.detach().numpy(), p_ref)
    for key, buffer in zip(("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), slots, strict=True):
        stored = _stored(opt.state[big], key)
        for suffix, array in buffer.arrays().items():
            assert np.array_equal(stored[suffix], array), (key, suffix)


@pytest.mark.parametrize("state_dtype", ["int8", "int4", "bfloat16"])
def test_torch_ops_path_stores_the_same_state(state_dtype):
    """engine="torch" (what another device runs): dequantize, the torch-ops rule, requantize.
    The moments' updates are products and sums, which IEEE fixes: the stored state is the
    kernel's bit for bit; the parameter goes through torch.sqrt, whose vectorized CPU kernel
    is not correctly rounded (one ulp apart from np.sqrt on some elements, which ones depends
    on the CPU), so it is compared to what a few ulps of each step allow: a step of Adam is
    at most about 2 lr here, a sqrt one ulp off moves it by a few ulps (2 lr 2^-21 at most),
    and the subtraction from p may then round the other way (an ulp of p): over 3 steps
    |a - b| <= 2^-22 |b| + 3 lr 2^-19. (A relative bound alone failed on an EPYC, 8 ulps on a
    parameter of 9e-5, whose steps are far larger than itself.)"""
    (a, _), fast = _train(3, state_dtype)
    (b, _), slow = _train(3, state_dtype, engine="torch")
    for key in fast.state[a]:
        assert torch.equal(fast.state[a][key], slow.state[b][key]), key
    assert torch.allclose(a, b, rtol=2.0**-22, atol=3 * 1e-2 * 2.0**-19)


def _sqrt_correctly_rounded(x):
    """float32 sqrt through float64 (correctly rounded: 53 >= 2 * 24 + 2 bits)."""
    return torch.sqrt(x.double()).to(x.dtype) if isinstance(x, torch.Tensor) else np.sqrt(x)


@pytest.mark.parametrize("state_dtype", ["int8", "int4", "bfloat16"])
def test_torch_ops_path_is_the_numpy_reference_with_an_ieee_sqrt(state_dtype, monkeypatch):
    """With torch.sqrt replaced by a correctly rounded one, every operation of the torch path
    is fixed by IEEE: parameter and stored state equal the NumPy reference bit for bit."""
    from optimlab.torch import _ops

    monkeypatch.setattr(_ops._TorchMath, "sqrt", staticmethod(_sqrt_correctly_rounded))
    p_ref, slots = _numpy_reference(state_dtype, 3, amsgrad=True)
    (big, _), opt = _train(3, state_dtype, engine="torch", amsgrad=True)
    assert np.array_equal(big.detach().numpy(), p_ref)
    for key, buffer in zip(("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), slots, strict=True):
        stored = _stored(opt.state[big], key)
        for suffix, array in buffer.arrays().items():
            assert np.array_equal(stored[suffix], array), (key, suffix)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("state_dtype", ["int8", "int4", "bfloat16"])
def test_cuda_state_is_the_cpu_kernels(state_dtype):
    """On a GPU the torch-ops path runs (CUDA's sqrt is correctly rounded): parameter and
    state equal the CPU kernel's bit for bit; a bfloat16 parameter with stochastic rounding
    draws the same bits (CPU generators) and lands on the same values."""
    (a, _), cpu = _train(3, state_dtype, amsgrad=True)
    gen = torch.Generator().manual_seed(0)
    p = [
        torch.nn.Parameter(torch.randn(N, generator=gen).cuda()),
        torch.nn.Parameter(torch.randn(7, generator=gen).cuda()),
    ]
    grads = [(x.cuda(), y.cuda()) for x, y in zip(_grads(N, 3), _grads(7, 3, 2), strict=True)]
    (b, _), gpu = _train(3, state_dtype, p=p, grads=grads, amsgrad=True)
    assert torch.equal(a, b.cpu())
    for key in cpu.state[a]:
        assert torch.equal(cpu.state[a][key], gpu.state[b][key].cpu()), key
    kw = dict(bf16_stochastic_round=True, seed=1)
    (c, _), _ = _train(3, state_dtype, dtype=torch.bfloat16, **kw)
    gen = torch.Generator().manual_seed(0)
    q = [
        torch.nn.Parameter(torch.randn(N, generator=gen).to(torch.bfloat16).cuda()),
        torch.nn.Parameter(torch.randn(7, generator=gen).to(torch.bfloat16).cuda()),
    ]
    grads = [
        (x.cuda(), y.cuda())
        for x, y in zip(
            _grads(N, 3, dtype=torch.bfloat16), _grads(7, 3, 2, torch.bfloat16), strict=True
        )
    ]
    (d, _), _ = _train(3, state_dtype, p=q, grads=grads, **kw)
    assert torch.equal(c, d.cpu())


_F32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(_F32, min_size=1, max_size=600), signed=st.booleans())
def test_torch_quantization_is_the_numpy_reference(values, signed):
    x = np.array(values, dtype=np.float32)
    x = np.concatenate([x, SPECIAL])
    codes, scales = blockwise.quantize(x, signed)
    t_codes, t_scales = _narrow.quantize(torch.from_numpy(x), signed)
    assert np.array_equal(t_codes.numpy(), codes)
    assert np.array_equal(t_scales.numpy().view(np.uint32), scales.view(np.uint32))
    back = _narrow.dequantize(t_codes, t_scales, signed).numpy()
    expected = blockwise.dequantize(codes, scales, signed)
    assert np.array_equal(back.view(np.uint32), expected.view(np.uint32))
    bits = _narrow.to_bfloat16(torch.from_numpy(x)).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bits, to_bfloat16_bits(x))
    packed, scales4 = blockwise.quantize4(x, signed)
    t_packed, t_scales4 = _narrow.quantize4(torch.from_numpy(x), signed)
    assert np.array_equal(t_packed.numpy(), packed)
    assert np.array_equal(t_scales4.numpy().view(np.uint32), scales4.view(np.uint32))
    back4 = _narrow.dequantize4(t_packed, t_scales4, signed, x.shape).numpy()
    expected4 = blockwise.dequantize4(packed, scales4, signed, x.shape)
    assert np.array_equal(back4.view(np.uint32), expected4.view(np.uint32))


@pytest.mark.parametrize("signed", [True, False])
def test_torch_int4_quantization_is_the_numpy_reference_on_ties(signed):
    """quantize4 in torch operations on the stored adversarial inputs (every code, every
    midpoint of two neighbours and the floats next to it): the NumPy reference's codes."""
    peers = np.load(Path(__file__).resolve().parents[1] / "quantization_peers.npz")
    x = peers[f"input4_{'signed' if signed else 'unsigned'}_adversarial"]
    packed, scales = blockwise.quantize4(x, signed)
    t_packed, t_scales = _narrow.quantize4(torch.from_numpy(x.copy()), signed)
    assert np.array_equal(t_packed.numpy(), packed) and np.array_equal(t_scales.numpy(), scales)


# -- stochastic rounding: the core function -----------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(values=st.lists(_F32, min_size=1, max_size=300), seed=st.integers(0, 2**32 - 1))
def test_stochastic_rounding_three_implementations_agree(values, seed):
    x = np.concatenate([np.array(values, dtype=np.float32), SPECIAL])
    r = np.random.default_rng(seed).integers(0, 1 << 16, x.size).astype(np.int32)
    expected = stochastic.round_bits(x, r)
    assert np.array_equal(stochastic.round_bits_numba(x, r), expected)
    t = _narrow.round_stochastic(torch.from_numpy(x), torch.from_numpy(r))
    assert np.array_equal(t.view(torch.int16).numpy().view(np.uint16), expected)
    # one of the two bfloat16 neighbours of x (towards or away from zero); NaN stays NaN
    finite = np.isfinite(x)
    low = (x.view(np.uint32) >> 16).astype(np.uint16)
    assert np.all((expected[finite] == low[finite]) | (expected[finite] == low[finite] + 1))
    assert np.array_equal(np.isnan(from_bfloat16_bits(expected)), np.isnan(x))


def test_stochastic_rounding_is_unbiased():
    """Each draw rounds up with probability (low 16 bits) / 2^16: the mean of many draws is x
    (round-to-nearest would give 1.0 for every one of these)."""
    x = np.full(200_000, 1.0 + 2**-7 * 0.3, dtype=np.float32)  # 30% of the way to the next
    r = np.random.default_rng(0).integers(0, 1 << 16, x.size)
    mean = from_bfloat16_bits(stochastic.round_bits(x, r)).astype(np.float64).mean()
    assert abs(mean - float(x[0])) < 2e-5  # (the standard error is 1.3e-5 / 4 here)
    assert np.all(to_bfloat16_bits(x) == to_bfloat16_bits(np.float32(1.0)))


def test_stochastic_rounding_refuses_nonsense():
    with pytest.raises(TypeError, match="x must be float32"):
        stochastic.round_bits(np.zeros(3), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="random must have x's shape"):
        stochastic.round_bits(np.zeros(3, np.float32), np.zeros(4, np.int32))
    with pytest.raises(TypeError, match="random must hold integers"):
        stochastic.round_bits(np.zeros(3, np.float32), np.zeros(3))


# -- stochastic rounding in the optimizers -------------------------------------------------------


def test_tiny_steps_drift_with_stochastic_rounding_and_stall_without():
    """SGD on a bfloat16 parameter at 1.0 (ulp 2^-7), 120 steps of +2.5e-4 (0.032 ulp each):
    round-to-nearest never moves it; stochastic rounding moves it by 0.03 on average, the
    float32 answer (the spread of the mean over 4096 elements is about 2.5e-4)."""
    steps, lr = 120, 2.5e-4
    results = {}
    for sr in (False, True):
        p = torch.nn.Parameter(torch.ones(4096, dtype=torch.bfloat16))
        opt = ot.SGD([p], lr=lr, bf16_stochastic_round=sr, seed=0 if sr else None)
        for _ in range(steps):
            p.grad = torch.full_like(p, -1.0)
            opt.step()
        results[sr] = p.detach().float()
    assert torch.all(results[False] == 1.0)
    expected = 1.0 + steps * lr
    assert abs(results[True].mean().item() - expected) < 2e-3
    assert results[True].std().item() > 0  # the elements took different draws


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")  # (torch, coalescing)
def test_sparse_gradient_with_stochastic_rounding_moves_only_its_rows():
    """SGD on a bfloat16 embedding with a sparse gradient: made dense (a zero gradient changes
    nothing in SGD), only the rows named move, by stochastically rounded amounts."""
    weight = torch.nn.Parameter(torch.ones(1024, 4, dtype=torch.bfloat16))
    opt = ot.SGD([weight], lr=1e-3, bf16_stochastic_round=True)
    rows = torch.tensor([[3, 3, 700]])
    for _ in range(40):
        weight.grad = torch.sparse_coo_tensor(
            rows, -torch.ones(3, 4, dtype=torch.bfloat16), (1024, 4)
        )
        opt.step()
    moved = (weight.detach() != 1).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 700]
    mean = weight.detach().float()[[3, 700]].mean(dim=1)
    assert abs(mean[0].item() - 1.08) < 0.03 and abs(mean[1].item() - 1.04) < 0.03


def test_stochastic_rounding_is_seeded_and_both_engines_agree():
    def run(seed, engine="auto", state_dtype="float32"):
        (p, _), opt = _train(
            3, state_dtype, engine, torch.bfloat16, bf16_stochastic_round=True, seed=seed
        )
        return p.detach().clone(), opt

    a, opt = run(5)
    assert torch.equal(a, run(5)[0])
    assert not torch.equal(a, run(6)[0])
    assert (
        opt.bf16_stochastic_round
        and opt.state[opt.param_groups[0]["params"][0]]["bf16_sr_generator"].dtype == torch.uint8
    )
    for state_dtype in ("float32", "int8"):
        x, fast = run(5, state_dtype=state_dtype)
        y, slow = run(5, "torch", state_dtype)
        assert (x != y).sum() <= 2  # (torch.sqrt's ulp can move a draw across the threshold)
        big = fast.param_groups[0]["params"][0]
        assert fast.state[big]["exp_avg"].dtype == (
            torch.uint8 if state_dtype == "int8" else torch.float32
        )


# -- state dicts --------------------------------------------------------------------------------


@pytest.mark.parametrize("state_dtype", ["int8", "int4", "bfloat16"])
@pytest.mark.parametrize("sr", [False, True])
def test_torch_save_round_trip_and_resume_are_bit_exact(state_dtype, sr):
    dtype = torch.bfloat16 if sr else torch.float32
    kw = dict(bf16_stochastic_round=True, seed=3) if sr else {}
    grads = list(zip(_grads(N, 5, dtype=dtype), _grads(7, 5, 2, dtype), strict=True))
    whole, whole_opt = _train(5, state_dtype, dtype=dtype, grads=grads, **kw)
    p, opt = _train(2, state_dtype, dtype=dtype, grads=grads, **kw)
    buffer = io.BytesIO()
    torch.save({"params": [q.detach() for q in p], "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    q = [torch.nn.Parameter(t.clone()) for t in saved["params"]]
    fresh = ot.Adam(q, lr=1e-2, state_dtype=state_dtype, **kw)
    fresh.load_state_dict(saved["opt"])
    _same(_snapshot(fresh, q), _snapshot(opt, p))
    for g0, g1 in grads[2:]:
        q[0].grad, q[1].grad = g0.clone(), g1.clone()
        fresh.step()
    _same(_snapshot(fresh, q), _snapshot(whole_opt, whole))


def test_float32_checkpoint_into_int8_and_back():
    """float32 -> int8: the codes of the float32 moments (the loss: the quantization);
    int8 -> float32: the dequantized values exactly. A torch.optim.Adam checkpoint loads the
    same way."""
    (p, _), fp32 = _train(2)
    m = fp32.state[p]["exp_avg"].clone()
    q = [torch.nn.Parameter(t.detach().clone()) for t in fp32.param_groups[0]["params"]]
    int8 = ot.Adam(q, lr=1e-2, state_dtype="int8")
    int8.load_state_dict(fp32.state_dict())
    codes, scales = blockwise.quantize(m.numpy(), True)
    assert np.array_equal(int8.state[q[0]]["exp_avg"].numpy(), codes)
    assert np.array_equal(int8.state[q[0]]["exp_avg.scales"].numpy(), scales)
    assert int8.state[q[1]]["exp_avg"].dtype == torch.float32  # small: stays float32
    values = blockwise.dequantize(codes, scales, True)
    blockmax = np.repeat(scales, 256)[:N]
    # the precision lost: half the largest gap of the signed code, 0.70% of the block's max
    assert np.all(np.abs(values - m.numpy()) <= 0.00704 * blockmax)
    back = ot.Adam([torch.nn.Parameter(t.detach().clone()) for t in q], lr=1e-2)
    back.load_state_dict(int8.state_dict())
    b = back.param_groups[0]["params"][0]
    assert back.state[b]["exp_avg"].dtype == torch.float32
    assert np.array_equal(back.state[b]["exp_avg"].numpy(), values)
    assert not any(k.endswith(".scales") for k in back.state[b])
    # torch.optim's own checkpoint
    theirs = torch.optim.Adam([torch.nn.Parameter(t.detach().clone()) for t in q], lr=1e-2)
    theirs.load_state_dict(fp32.state_dict())
    again = ot.Adam(
        [torch.nn.Parameter(t.detach().clone()) for t in q], lr=1e-2, state_dtype="bfloat16"
    )
    again.load_state_dict(theirs.state_dict())
    a = again.param_groups[0]["params"][0]
    assert np.array_equal(
        again.state[a]["exp_avg"].view(torch.int16).numpy().view(np.uint16),
        to_bfloat16_bits(m.numpy()),
    )


def test_float32_state_dict_is_what_torch_optim_loads():
    (p, _), opt = _train(2, "int8")
    theirs = torch.optim.Adam(
        [torch.nn.Parameter(q.detach().clone()) for q in opt.param_groups[0]["params"]], lr=1e-2
    )
    theirs.load_state_dict(_narrow.float32_state_dict(opt))
    t = theirs.param_groups[0]["params"][0]
    state = opt.state[p]
    for key in ("exp_avg", "exp_avg_sq"):
        expected = blockwise.dequantize(
            state[key].numpy(), state[key + ".scales"].numpy(), key == "exp_avg"
        )
        assert np.array_equal(theirs.state[t][key].numpy(), expected)
    assert set(theirs.state[t]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["exp_avg"].dtype == torch.uint8  # the optimizer's own state is untouched


def _corrupt(state_dict, how):
    sd = copy.deepcopy(state_dict)
    entry = sd["state"][0]
    if how == "scales shape":
        entry["exp_avg.scales"] = entry["exp_avg.scales"][:-1]
    elif how == "scales dtype":
        entry["exp_avg.scales"] = entry["exp_avg.scales"].double()
    elif how == "no scales":
        del entry["exp_avg.scales"]
    elif how == "orphan scales":
        entry["exp_avg"] = entry["exp_avg"].float()
    elif how == "int codes":
        entry["exp_avg"] = entry["exp_avg"].int()
    elif how == "generator":
        entry["bf16_sr_generator"] = torch.zeros(3, dtype=torch.uint8)
    return sd


@pytest.mark.parametrize(
    "how", ["scales shape", "scales dtype", "no scales", "orphan scales", "int codes", "generator"]
)
def test_a_broken_narrow_checkpoint_is_refused_and_changes_nothing(how):
    p, opt = _train(2, "int8")
    saved = opt.state_dict()
    p2, target = _train(1, "int8", dtype=torch.float32)
    before = _snapshot(target, p2)
    message = {
        "generator": "bf16_sr_generator",
        "orphan scales": "scales",
        "no scales": "scales",
        "int codes": "exp_avg",
    }.get(how, "exp_avg.scales")
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(_corrupt(saved, how))
    _same(_snapshot(target, p2), before)
    target.step()  # and it still steps


# -- refusals -----------------------------------------------------------------------------------


def _params():
    return [torch.nn.Parameter(torch.zeros(N))]


@pytest.mark.parametrize(
    "make, error, words",
    [
        (
            lambda: ot.Adam(_params(), state_dtype="int2"),
            ValueError,
            r"state_dtype must be one of 'float32', 'bfloat16', 'int8', 'int4', got 'int2'",
        ),
        (lambda: ot.Adam(_params(), state_dtype=8), ValueError, "got 8"),
        (lambda: ot.Adam(_params(), state_dtype="float16"), ValueError, "'int8'"),
        (
            lambda: ot.ASGD(_params(), state_dtype="int8"),
            ValueError,
            "must be 'float32' for ASGD",
        ),
        (lambda: ot.SparseAdam(_params(), state_dtype="int8"), ValueError, "sparse rows"),
        (lambda: ot.Adam(_params(), bf16_stochastic_round=1), TypeError, "True or False"),
        (lambda: ot.SparseAdam(_params(), bf16_stochastic_round=True), ValueError, "sparse rows"),
        (lambda: ot.Adam(_params(), seed=3), ValueError, "unless bf16_stochastic_round=True"),
        (lambda: ot.Adam(_params(), bf16_stochastic_round=True, seed=-1), ValueError, "2\\*\\*63"),
        (lambda: ot.Adam(_params(), bf16_stochastic_round=True, seed=1.5), TypeError, "seed"),
        (
            lambda: ot.Adam(_params(), state_dtype="int8", differentiable=True),
            ValueError,
            "differentiable",
        ),
        (
            lambda: ot.Adam(
                [torch.nn.Parameter(torch.zeros(N, dtype=torch.float64))], state_dtype="int8"
            ),
            TypeError,
            "parameter 0 must be float32 or bfloat16",
        ),
    ],
)
def test_refusals_name_the_argument(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_a_refused_group_changes_nothing():
    p = _params()
    opt = ot.AdamW(p, state_dtype="int8")
    before = copy.deepcopy(opt.state_dict())
    group = {"params": [torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))]}
    with pytest.raises(TypeError, match="parameter 1 must be float32 or bfloat16"):
        opt.add_param_group(group)
    assert opt.state_dict() == before and len(opt.param_groups) == 1
    assert ot.Adam(_params()).state_dtype == "float32"


def test_pickled_optimizer_keeps_its_storage():
    (p, _), opt = _train(2, "int8")
    again = copy.deepcopy(opt)
    assert again.state_dtype == "int8"
    q = again.param_groups[0]["params"][0]
    assert again.state[q]["exp_avg"].dtype == torch.uint8


def test_rule_refusals_hold_in_torch():
    """The rules' own refusals of narrow state hold in the drop-ins: RMSprop's centered (at
    construction, and when a group is switched to it between steps: refused, nothing moved),
    ASGD's FLOAT32_STATE reason (its averaged parameter)."""
    p = torch.nn.Parameter(torch.randn(5000))
    with pytest.raises(ValueError, match="cannot take centered=True"):
        ot.RMSprop([p], state_dtype="int8", centered=True)
    opt = ot.RMSprop([p], state_dtype="int8")
    p.grad = torch.randn(5000)
    opt.step()
    before = p.detach().clone()
    state = {k: v.clone() for k, v in opt.state[p].items() if torch.is_tensor(v)}
    opt.param_groups[0]["centered"] = True
    with pytest.raises(ValueError, match="param group 0: state_dtype='int8' cannot take centered"):
        opt.step()
    assert torch.equal(p, before)
    assert all(torch.equal(opt.state[p][k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="state_dtype must be 'float32' for ASGD"):
        ot.ASGD([p], state_dtype="int8")


DROP_INS = {
    "SGD": dict(lr=1e-2, momentum=0.9),
    "Adagrad": dict(lr=1e-2),
    "RMSprop": dict(lr=1e-3, momentum=0.5),
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3),
    "NAdam": dict(lr=1e-3),
    "RAdam": dict(lr=1e-3),
    "Adamax": dict(lr=1e-3),
    "Adadelta": dict(lr=1.0),
    "Lion": dict(lr=1e-4),
    "Rprop": dict(lr=1e-3),
}


@pytest.mark.parametrize("name", list(DROP_INS))
def test_every_elementwise_drop_in_takes_int8_state(name):
    """Every drop-in whose rule declares QUANTIZED_SLOTS stores those slots of a parameter
    >= 4096 elements as uint8 codes with float32 scales, keeps the rest float32, and moves
    its parameter as the float32 run does (within 10% of the float32 movement, RMS: the
    bound tests/test_quantized_rules.py justifies for the core)."""
    cls = getattr(ot, name)
    start = torch.randn(N, generator=torch.Generator().manual_seed(4))
    ends = []
    for state_dtype in ("float32", "int8"):
        p = torch.nn.Parameter(start.clone())
        opt = cls([p], state_dtype=state_dtype, **DROP_INS[name])
        for g in _grads(N, 4, seed=6):
            p.grad = g
            opt.step()
        ends.append(p.detach().clone())
    quantized = {
        k for k, v in opt.state[p].items() if torch.is_tensor(v) and v.dtype == torch.uint8
    }
    names = dict(zip(opt.slot_keys, (n for n, _ in cls.rule.SLOTS), strict=False))
    assert quantized and {names[k] for k in quantized} <= set(cls.rule.QUANTIZED_SLOTS)
    assert all(opt.state[p][k + ".scales"].dtype == torch.float32 for k in quantized)
    moved = (ends[0] - start).norm()
    assert moved > 0 and (ends[1] - ends[0]).norm() <= 0.1 * moved


# -- int4 -----------------------------------------------------------------------------------------


def test_int4_layout_and_checkpoints_convert():
    """int4 slots are two codes a byte (flat, ceil(N / 2)) with a float32 scale per 128, the
    core's Int4State bit for bit; an int4 checkpoint loads into int8 and float32 optimizers as
    the values it held, a float32 one into int4 as blockwise.quantize4 of its moments, and
    float32_state_dict gives torch.optim the dequantized values."""
    (p, small), four = _train(2, "int4")
    state = four.state[p]
    assert state["exp_avg"].dtype == torch.uint8 and tuple(state["exp_avg"].shape) == (2500,)
    assert tuple(state["exp_avg.scales"].shape) == (40,) and state["exp_avg.scales"].dtype == (
        torch.float32
    )
    assert four.state[small]["exp_avg"].dtype == torch.float32
    held = {
        key: blockwise.dequantize4(
            state[key].numpy(), state[key + ".scales"].numpy(), key == "exp_avg", (N,)
        )
        for key in ("exp_avg", "exp_avg_sq")
    }

    def fresh(state_dtype):
        q = [torch.nn.Parameter(t.detach().clone()) for t in four.param_groups[0]["params"]]
        return ot.Adam(q, lr=1e-2, state_dtype=state_dtype), q

    same, q = fresh("int4")
    same.load_state_dict(four.state_dict())
    for key in ("exp_avg", "exp_avg.scales", "exp_avg_sq", "exp_avg_sq.scales"):
        assert torch.equal(same.state[q[0]][key], state[key]), key
    full, q = fresh("float32")
    full.load_state_dict(four.state_dict())
    eight, q8 = fresh("int8")
    eight.load_state_dict(four.state_dict())
    for key, values in held.items():
        assert np.array_equal(full.state[q[0]][key].numpy(), values)
        codes, scales = blockwise.quantize(values, key == "exp_avg")
        assert np.array_equal(eight.state[q8[0]][key].numpy(), codes)
        assert np.array_equal(eight.state[q8[0]][key + ".scales"].numpy(), scales)
    back, q = fresh("int4")
    back.load_state_dict(full.state_dict())
    for key, values in held.items():
        packed, scales = blockwise.quantize4(values, key == "exp_avg")
        assert np.array_equal(back.state[q[0]][key].numpy(), packed)
        assert np.array_equal(back.state[q[0]][key + ".scales"].numpy(), scales)
    theirs = torch.optim.Adam([torch.nn.Parameter(t.detach().clone()) for t in q], lr=1e-2)
    theirs.load_state_dict(_narrow.float32_state_dict(four))
    t = theirs.param_groups[0]["params"][0]
    for key, values in held.items():
        assert np.array_equal(theirs.state[t][key].numpy(), values)


@pytest.mark.parametrize("how", ["codes size", "scales shape"])
def test_a_broken_int4_checkpoint_is_refused_and_changes_nothing(how):
    _, opt = _train(2, "int4")
    saved = copy.deepcopy(opt.state_dict())
    entry = saved["state"][0]
    if how == "codes size":
        entry["exp_avg"] = entry["exp_avg"][:-1]
    else:
        entry["exp_avg.scales"] = entry["exp_avg.scales"][:-1]
    p2, target = _train(1, "int4")
    before = _snapshot(target, p2)
    words = {
        "codes size": r"'exp_avg' must hold 5000 int8 codes .* or 2500 bytes of int4 codes",
        "scales shape": r"'exp_avg.scales' must be a float32 tensor of shape \(40,\) \(one "
        r"scale per block of 128\)",
    }[how]
    with pytest.raises(ValueError, match=words):
        target.load_state_dict(saved)
    _same(_snapshot(target, p2), before)
    target.step()


@pytest.mark.parametrize("name", list(DROP_INS))
def test_every_elementwise_drop_in_takes_int4_state(name):
    """Every drop-in whose rule declares QUANTIZED_SLOTS stores those slots as int4 (packed
    codes, a scale per 128); the torch-ops path (engine="torch", what another device runs)
    stores the same bits as the CPU kernel, where the stored state is products and sums.
    RMSprop's momentum buffer and Adadelta's accumulated update go through a square root,
    and torch.sqrt's vectorized kernel is one ulp off np.sqrt on some elements (which ones
    depends on the CPU): there a code may move to its neighbour, on at most 0.1% of them."""
    cls = getattr(ot, name)
    start = torch.randn(N, generator=torch.Generator().manual_seed(4))
    runs = []
    for engine in ("auto", "torch"):
        p = torch.nn.Parameter(start.clone())
        opt = cls([p], state_dtype="int4", engine=engine, **DROP_INS[name])
        for g in _grads(N, 3, seed=6):
            p.grad = g
            opt.step()
        runs.append((p, opt))
    (p, opt), (p2, opt2) = runs
    quantized = {
        k for k, v in opt.state[p].items() if torch.is_tensor(v) and v.dtype == torch.uint8
    }
    assert quantized and all(tuple(opt.state[p][k].shape) == (2500,) for k in quantized)
    assert all(tuple(opt.state[p][k + ".scales"].shape) == (40,) for k in quantized)
    for k in quantized:
        if name not in ("RMSprop", "Adadelta"):
            assert torch.equal(opt.state[p][k], opt2.state[p2][k]), k
            continue
        a, b = (blockwise.unpack4(o.state[q][k].numpy(), N).astype(int) for q, o in runs)
        assert np.max(np.abs(a - b)) <= 1 and np.count_nonzero(a != b) <= N // 1000, k
    assert torch.isfinite(p).all() and not torch.equal(p.detach(), start)
