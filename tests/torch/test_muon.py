"""optimlab.torch.Muon against torch.optim.Muon: the same bits over 50 steps, torch's signature,
defaults, refusals (with snapshots: a refused call changes nothing), state layout and
state_dict both ways; its Newton-Schulz (the torch engine of rules.newton_schulz) against
torch's own function and the NumPy rule."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns  # noqa: E402

import optimlab.torch as ot  # noqa: E402
from optimlab.rules import newton_schulz as ns  # noqa: E402
from optimlab.torch import muon as torch_muon  # noqa: E402

from .test_hostile import assert_unchanged, snapshot  # noqa: E402

#: torch's spinning OpenMP threads on a busy machine make a bfloat16 product of a 4 x 6
#: matrix take milliseconds (measured: 28 ms with two threads, 3 us with one)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a row, a tall, a wide and a square matrix, and a transposed (non-contiguous) one
SHAPES = ((1, 5), (7, 3), (4, 6), (8, 8))
OPTIONS = [
    {},
    dict(lr=0.02, nesterov=False, momentum=0.8, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.01, weight_decay=0.3, ns_steps=3, ns_coefficients=(3.4, -4.7, 2.0), eps=1e-3),
]


def _params(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    params.append(torch.randn(5, 3, generator=gen, dtype=dtype).t())
    return params


def _train(opt, params, gen, steps):
    for _ in range(steps):
        for p in params:
            p.grad = torch.empty_like(p).copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        opt.step()


def _run(cls, dtype, steps, options, lr_tensor=False):
    params = _params(dtype)
    kwargs = dict(options)
    if lr_tensor:
        kwargs["lr"] = torch.tensor(kwargs.get("lr", 1e-3))
    opt = cls(params, **kwargs)
    _train(opt, params, torch.Generator().manual_seed(1), steps)
    return params, opt


def _assert_same_bits(mine, my_opt, theirs, their_opt):
    for p, q in zip(mine, theirs, strict=True):
        assert p.dtype == q.dtype and p.stride() == q.stride()
        assert torch.equal(p, q)
        a, b = my_opt.state[p], their_opt.state[q]
        assert list(a) == list(b) == ["momentum_buffer"]
        assert a["momentum_buffer"].stride() == b["momentum_buffer"].stride()
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("index", range(len(OPTIONS)))
def test_fifty_steps_give_torchs_bits(dtype, index):
    """Parameters and momentum buffers bit for bit equal to torch.optim.Muon's after 50
    steps, on every shape (the third set with a tensor learning rate, which torch keeps a
    tensor: its decay factor and step are computed in the lr's dtype)."""
    lr_tensor = index == 2
    mine, my_opt = _run(ot.Muon, dtype, 50, OPTIONS[index], lr_tensor)
    theirs, their_opt = _run(torch.optim.Muon, dtype, 50, OPTIONS[index], lr_tensor)
    assert not torch.equal(mine[0], _params(dtype)[0])  # it moved
    _assert_same_bits(mine, my_opt, theirs, their_opt)


def test_signature_defaults_and_group_keys_are_torchs():
    theirs = inspect.signature(torch.optim.Muon.__init__).parameters
    ours = dict(inspect.signature(ot.Muon.__init__).parameters)
    assert ours.pop("engine").default == "auto"
    assert ours.pop("nan_policy").default == "propagate"
    assert ours.pop("preset").default == "torch"
    assert list(ours) == list(theirs)
    for key, parameter in theirs.items():
        assert (ours[key].kind, ours[key].default) == (parameter.kind, parameter.default), key
    mine, torchs = ot.Muon(_params(torch.float32)), torch.optim.Muon(_params(torch.float32))
    assert mine.defaults == torchs.defaults
    assert list(mine.param_groups[0]) == list(torchs.param_groups[0])
    assert ot.OPTIMIZERS["Muon"] is ot.Muon and ot.Muon.engines == ("auto",)


# -- refusals -------------------------------------------------------------------------------


def _message(make):
    with pytest.raises(Exception) as error:  # noqa: PT011 - compared below
        make()
    return type(error.value), str(error.value)


@pytest.mark.parametrize(
    "kwargs",
    [dict(lr=-1.0), dict(momentum=-0.5), dict(weight_decay=-0.1), dict(adjust_lr_fn="cosine")],
    ids=lambda k: next(iter(k)),
)
def test_torchs_constructor_refusals_have_torchs_words(kwargs):
    params = [torch.zeros(2, 3)]
    mine = _message(lambda: ot.Muon(params, **kwargs))
    assert mine == _message(lambda: torch.optim.Muon(params, **kwargs))


def test_a_parameter_that_is_not_a_matrix_is_refused_as_torch_and_nothing_is_added():
    vector = torch.zeros(3, requires_grad=True)
    error = _message(lambda: torch.optim.Muon([torch.zeros(2, 2), vector]))
    assert _message(lambda: ot.Muon([torch.zeros(2, 2), vector])) == error
    assert error[1].endswith("torch.Size([3])")
    # torch.optim.Muon takes it in add_param_group and fails in the middle of a step;
    # optimlab refuses it there, and the group and the dict passed stay as they were
    params = _params(torch.float32)
    opt = ot.Muon(params)
    _train(opt, params, torch.Generator().manual_seed(0), 1)
    before = snapshot(opt, params)
    group = {"params": [vector], "lr": 0.5}
    assert _message(lambda: opt.add_param_group(group)) == error
    assert group == {"params": [vector], "lr": 0.5} and len(opt.param_groups) == 1
    assert_unchanged(before, snapshot(opt, params))


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("ns_steps", 100, r"ns_steps must be an integer in \[0, 99\]"),
        ("ns_steps", 2.0, r"ns_steps must be an integer in \[0, 99\], got 2.0"),
        ("ns_coefficients", (3.4, -4.7), r"ns_coefficients must be a tuple of three"),
        ("ns_coefficients", (3.4, float("nan"), 2.0), r"ns_coefficients\[1\] must be a finite"),
        ("momentum", 1.0, r"momentum must be a finite float in \[0, 1\), got 1.0"),
        ("eps", -1e-7, r"eps must be a finite float >= 0"),
        ("lr", float("inf"), r"lr must be a finite float >= 0, got inf"),
        ("nesterov", "yes", r"nesterov must be True or False"),
    ],
)
def test_what_torch_meets_mid_step_is_refused_first_and_changes_nothing(key, value, words):
    """At construction, and when a group's value is set between steps (a refused step moves
    no parameter and no buffer). torch refuses ns_steps >= 100 and a coefficient tuple of
    another length only inside its step, after the parameters before have moved."""
    with pytest.raises((ValueError, TypeError), match=words):
        ot.Muon(_params(torch.float32), **{key: value})
    params = _params(torch.float32)
    opt = ot.Muon(params)
    _train(opt, params, torch.Generator().manual_seed(0), 2)
    opt.param_groups[0][key] = value
    before = snapshot(opt, params)
    with pytest.raises((ValueError, TypeError), match=words):
        opt.step()
    assert_unchanged(before, snapshot(opt, params))


def test_complex_parameters_and_sparse_gradients_are_refused_with_torchs_words():
    p = torch.zeros(2, 3, dtype=torch.complex64)
    p.grad = torch.ones_like(p)
    real = torch.zeros(2, 3)
    real.grad = torch.ones(2, 3)
    for params in ([real, p], [p]):
        opt = ot.Muon(params)
        before = snapshot(opt, params)
        error = _message(opt.step)
        assert error == (RuntimeError, "Muon does not support complex parameters")
        assert_unchanged(before, snapshot(opt, params))  # the real one did not move either
    real.grad = torch.ones(2, 3).to_sparse()
    assert _message(ot.Muon([real]).step) == _message(torch.optim.Muon([real]).step)


def test_nan_policies():
    params = _params(torch.float32)
    opt = ot.Muon(params, nan_policy="skip")
    _train(opt, params, torch.Generator().manual_seed(0), 1)
    params[1].grad[0, 0] = float("nan")
    before = snapshot(opt, params)
    opt.step()
    assert opt.skipped_steps == 1
    assert_unchanged(before["params"], snapshot(opt, params)["params"])
    opt.nan_policy = "raise"
    with pytest.raises(FloatingPointError, match="gradient of parameter 1"):
        opt.step()


# -- state ----------------------------------------------------------------------------------


def test_state_dict_round_trip_and_torchs_own_state_dict():
    """optimlab -> optimlab continues bit for bit; torch.optim.Muon's state_dict loaded here
    (and ours loaded by torch) continues with torch's bits; the layouts are torch's."""
    for source, target in (
        (ot.Muon, ot.Muon),
        (torch.optim.Muon, ot.Muon),
        (ot.Muon, torch.optim.Muon),
    ):
        params = _params(torch.float32)
        first = source(params, lr=0.02)
        _train(first, params, torch.Generator().manual_seed(0), 3)
        saved = copy.deepcopy(first.state_dict())
        twin_params = [p.detach().clone() for p in params]
        second = target(twin_params, lr=0.5)
        second.load_state_dict(saved)
        assert second.param_groups[0]["lr"] == 0.02
        _train(first, params, torch.Generator().manual_seed(1), 3)
        _train(second, twin_params, torch.Generator().manual_seed(1), 3)
        _assert_same_bits(params, first, twin_params, second)
        mine, torchs = second.state_dict(), first.state_dict()
        assert list(mine["state"]) == list(torchs["state"]) == list(range(len(params)))
        assert mine["param_groups"] == torchs["param_groups"]


def test_a_loaded_buffer_of_another_shape_is_refused_and_changes_nothing():
    params = _params(torch.float32)
    opt = ot.Muon(params)
    _train(opt, params, torch.Generator().manual_seed(0), 1)
    saved = copy.deepcopy(opt.state_dict())
    saved["state"][1]["momentum_buffer"] = torch.zeros(3, 7)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match="'momentum_buffer' must have the parameter's shape"):
        opt.load_state_dict(saved)
    assert_unchanged(before, snapshot(opt, params))


def test_a_bfloat16_buffer_is_not_normalised_in_place():
    """torch 2.13's ``grad.bfloat16()`` is the buffer itself for a bfloat16 parameter without
    Nesterov, and its ``div_`` then divides the momentum buffer by its norm
    (pytorch/pytorch#194664); optimlab's iterate starts from a copy, so the buffer is the
    EMA of the gradients. Everything else (Nesterov, float32) is torch's to the bit."""
    results = {}
    for cls in (ot.Muon, torch.optim.Muon):
        for nesterov in (False, True):
            p = torch.zeros(4, 6, dtype=torch.bfloat16)
            p.grad = torch.full_like(p, 2.0)
            opt = cls([p], lr=0.0, weight_decay=0.0, momentum=0.5, nesterov=nesterov)
            opt.step()
            results[cls, nesterov] = opt.state[p]["momentum_buffer"].float()
    ema = torch.full((4, 6), 1.0)  # lerp(0, 2, 0.5)
    assert torch.equal(results[ot.Muon, False], ema) and torch.equal(results[ot.Muon, True], ema)
    assert torch.equal(results[torch.optim.Muon, True], ema)
    assert not torch.equal(results[torch.optim.Muon, False], ema)  # torch's aliasing


# -- the Newton-Schulz engine ---------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_the_torch_engine_is_torchs_iteration_and_the_rules_equation(rows, cols, seed):
    """In bfloat16 with the norm clamped: torch's own function, bit for bit, never writing its
    input. In float64 (``dtype=None``): the NumPy rule's iterate, to rounding, in both
    orientations (f(G^T) = f(G)^T exactly)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((rows, cols)) * np.exp(rng.standard_normal())
    a, b, c = ns.COEFFICIENTS
    for dtype in (torch.float32, torch.bfloat16):
        t = torch.from_numpy(g).to(dtype)
        kept = t.clone()
        mine = torch_muon.orthogonalize(t, a, b, c, 5, 1e-7, "clamp", "bfloat16")
        assert mine.dtype == torch.bfloat16 and torch.equal(t, kept)
        assert torch.equal(mine, torch_ns(t.clone(), ns.COEFFICIENTS, 5, 1e-7))
    t = torch.from_numpy(g)
    for style in ("add", "clamp"):
        mine = torch_muon.orthogonalize(t, a, b, c, 5, 1e-7, style).numpy()
        np.testing.assert_allclose(mine, ns.orthogonalize(g, a, b, c, 5, 1e-7, style), atol=1e-12)
        if rows != cols:  # the tall one is transposed to the wide one and back
            transposed = torch_muon.orthogonalize(t.T, a, b, c, 5, 1e-7, style)
            assert torch.equal(transposed, torch_muon.orthogonalize(t, a, b, c, 5, 1e-7, style).T)
    keras = torch_muon.orthogonalize(t, a, b, c, 5, 1e-7, "add", None, "float32").numpy()
    np.testing.assert_allclose(
        keras, ns.orthogonalize(g, a, b, c, 5, 1e-7, "add", None, "float32"), atol=1e-12
    )
