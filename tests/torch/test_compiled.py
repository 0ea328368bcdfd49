"""engine="compiled" (the rule's update through torch.compile) and the delegation of
engine="auto" to torch.optim's own kernels (issue 15).

Inductor compiles a graph per rule, dtype, shape set and flag set (seconds each): the
compiled cases share four graphs (Adam float32, Lion float64, Adam bfloat16, SGD float16),
each on the same two (4, 3) tensors.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import optimlab.torch as ot  # noqa: E402
from optimlab.torch import _compiled, _delegate  # noqa: E402

SHAPES = ((4, 3), (4, 3))


def _params(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]


def _grads(step, dtype):
    gen = torch.Generator().manual_seed(100 + step)
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]


def _run(make, dtype, steps=4, schedule=None):
    """Parameters after ``steps`` steps of ``make(params)`` from the same start and gradients;
    ``schedule(optimizer, step)`` may change the groups before each step."""
    params = [p.requires_grad_() for p in _params(dtype)]
    optimizer = make(params)
    for step in range(steps):
        if schedule is not None:
            schedule(optimizer, step)
        for p, g in zip(params, _grads(step, dtype), strict=True):
            p.grad = g
        optimizer.step()
    return [p.detach() for p in params], optimizer


def _schedule(optimizer, step):
    """A learning rate, betas and weight decay that change at every step."""
    for group in optimizer.param_groups:
        group["lr"] = 1e-2 * (1 + step)
        if "betas" in group:
            group["betas"] = (0.9 - 0.01 * step, 0.999 - 0.001 * step)
        if group.get("weight_decay"):
            group["weight_decay"] = 0.1 + 0.01 * step


def _graphs():
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


# -- delegation: torch.optim's bits -------------------------------------------------------------

DELEGATED = [
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("AdamW", {}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1}),
    ("Adagrad", {"lr_decay": 0.01}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("NAdam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("RAdam", {}),
    ("Adamax", {}),
    ("Adadelta", {"weight_decay": 0.1}),
]


def _spy(monkeypatch, name):
    calls = []
    original = _delegate.STEPS[name]

    def spy(*args, **kwargs):
        calls.append(len(args[2]))
        return original(*args, **kwargs)

    monkeypatch.setitem(_delegate.STEPS, name, spy)
    return calls


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize(("name", "kwargs"), DELEGATED, ids=lambda x: str(x))
def test_delegation_is_torch_optim_to_the_bit(monkeypatch, name, kwargs, dtype):
    """CPU float16/bfloat16 under torch's numerics: torch.optim's functional kernels run the
    step (the spy sees every tensor), parameters and state equal torch.optim's (torch.equal),
    and the state dict loads into torch.optim."""
    calls = _spy(monkeypatch, name)
    steps = 7  # RAdam rectifies from its sixth step
    ours, mine = _run(lambda p: getattr(ot, name)(p, **kwargs), dtype, steps)
    theirs, reference = _run(lambda p: getattr(torch.optim, name)(p, **kwargs), dtype, steps)
    assert calls == [len(SHAPES)] * steps
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    for p_mine, p_ref in zip(mine.state, reference.state, strict=True):
        a, b = mine.state[p_mine], reference.state[p_ref]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype, (k, a[k], b[k])
    reference.load_state_dict(mine.state_dict())  # the same layout, torch accepts it


@settings(max_examples=8)
@given(
    name=st.sampled_from(["Adam", "AdamW", "SGD", "RMSprop", "Adagrad"]),
    lr=st.floats(1e-4, 1.0),
    weight_decay=st.sampled_from([0.0, 0.1]),
    momentum=st.floats(0.0, 0.99),
    maximize=st.booleans(),
)
def test_delegation_identity_over_hyperparameters(name, lr, weight_decay, momentum, maximize):
    """For any hyperparameters, a bfloat16 step of optimlab.torch's default is torch.optim's
    (torch.equal): the same kernels, called with the same arguments."""
    kwargs = {"lr": lr, "weight_decay": weight_decay, "maximize": maximize}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = momentum
    ours, _ = _run(lambda p: getattr(ot, name)(p, **kwargs), torch.bfloat16, steps=2)
    theirs, _ = _run(lambda p: getattr(torch.optim, name)(p, **kwargs), torch.bfloat16, steps=2)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize(
    "kwargs", [{"foreach": True}, {"fused": True}, {"foreach": True, "capturable": False}]
)
@pytest.mark.parametrize("name", ["Adam", "SGD", "Adagrad"])
def test_delegation_of_float32_when_torchs_kernel_is_asked_for(monkeypatch, name, kwargs):
    """CPU float32 with ``foreach=True`` or ``fused=True``: torch's kernel of that name, to the
    bit; without them the numba kernel (no delegation)."""
    if name != "Adam" and "capturable" in kwargs:
        kwargs = {"foreach": True}
    kwargs = {"lr": 0.05, **kwargs, **({"momentum": 0.9} if name == "SGD" else {})}
    calls = _spy(monkeypatch, name)
    ours, _ = _run(lambda p: getattr(ot, name)(p, **kwargs), torch.float32)
    theirs, _ = _run(lambda p: getattr(torch.optim, name)(p, **kwargs), torch.float32)
    assert calls and all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    calls.clear()
    plain = {k: v for k, v in kwargs.items() if k not in ("foreach", "fused", "capturable")}
    _, optimizer = _run(lambda p: getattr(ot, name)(p, **plain), torch.float32, steps=1)
    assert not calls and optimizer._views  # the numba kernel's views


def test_no_delegation_outside_torchs_numerics(monkeypatch):
    """A Keras preset and engine="torch" are not delegated."""
    calls = _spy(monkeypatch, "SGD")
    make = [
        lambda p: ot.SGD(p, lr=0.1, momentum=0.9, preset="keras", engine="torch"),
        lambda p: ot.SGD(p, lr=0.1, momentum=0.9, engine="torch"),
    ]
    for m in make:
        _run(m, torch.bfloat16, steps=2)
    assert not calls


# -- the compiled engine ----------------------------------------------------------------------

COMPILED = [
    # (name, kwargs, dtype, rtol): against engine="torch", the same rule's op chain
    ("Adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, torch.float32, 1e-6),
    ("Lion", {"lr": 1e-2, "weight_decay": 0.1}, torch.float64, 1e-14),
]


@pytest.mark.parametrize(("name", "kwargs", "dtype", "rtol"), COMPILED, ids=lambda x: str(x))
def test_compiled_is_the_op_chain(name, kwargs, dtype, rtol):
    """float32/float64: engine="compiled" (one graph) equals engine="torch" to rtol (1e-6 in
    float32, 1e-14 in float64; the same operations, inductor may contract a multiply-add),
    under a learning rate, betas and weight decay that change at every step."""
    make = getattr(ot, name)
    ours, _ = _run(lambda p: make(p, **kwargs, engine="compiled"), dtype, schedule=_schedule)
    chain, _ = _run(lambda p: make(p, **kwargs, engine="torch"), dtype, schedule=_schedule)
    for a, b in zip(ours, chain, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol)
    assert any(key[0].endswith(name.lower()) for key in _compiled.COMPILE_SECONDS)


def test_no_recompilation_when_hyperparameters_change():
    """A schedule of lr, betas and weight decay compiles nothing after the first step (the
    numbers travel in a tensor; torch issues 107076, 130467)."""
    kwargs = {"weight_decay": 0.1, "decoupled_weight_decay": True, "engine": "compiled"}
    params = [p.requires_grad_() for p in _params(torch.float32)]
    optimizer = ot.Adam(params, **kwargs)
    counts = []
    for step in range(6):
        _schedule(optimizer, step)
        for p, g in zip(params, _grads(step, torch.float32), strict=True):
            p.grad = g
        optimizer.step()
        counts.append(_graphs())
    assert counts[1:] == [counts[0]] * 5
    assert all(graph is not None for graph in _compiled._GRAPHS.values())


@pytest.mark.parametrize(
    ("name", "kwargs", "dtype", "tolerance"),
    [
        ("Adam", {"lr": 1e-2}, torch.bfloat16, 2e-2),
        ("SGD", {"lr": 0.1, "momentum": 0.9}, torch.float16, 4e-3),
    ],
    ids=lambda x: str(x),
)
def test_compiled_low_precision_against_torch_optim(name, kwargs, dtype, tolerance):
    """bfloat16/float16 on the CPU: engine="compiled" within a few units of the dtype's last
    place of torch.optim (inductor keeps the chain's intermediates in float32, torch rounds
    each operation's result)."""
    ours, _ = _run(lambda p: getattr(ot, name)(p, **kwargs, engine="compiled"), dtype)
    theirs, _ = _run(lambda p: getattr(torch.optim, name)(p, **kwargs), dtype)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=tolerance, atol=tolerance)


def test_auto_compiles_bfloat16_outside_torchs_numerics(monkeypatch):
    """engine="auto" with a Keras preset: bfloat16 through the compiled engine (the op chain
    never runs), float32 through the numba kernel."""
    ran = []
    monkeypatch.setattr(ot.Adam, "_apply_torch", lambda self, p, *a: ran.append(p))
    seen = []
    run = _compiled.Batch._run
    monkeypatch.setattr(
        _compiled.Batch, "_run", lambda self, k, c: seen.append(len(c)) or run(self, k, c)
    )
    _run(lambda p: ot.Adam(p, lr=1e-2, preset="keras"), torch.bfloat16, steps=2)
    assert seen == [len(SHAPES)] * 2 and not ran
    seen.clear()
    _, optimizer = _run(lambda p: ot.Adam(p, lr=1e-2, preset="keras"), torch.float32, steps=1)
    assert not seen and not ran and optimizer._views


def test_fallback_when_torch_compile_fails(monkeypatch):
    """No working compiler: one RuntimeWarning, and the op chain's numbers."""

    def broken(function, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(_compiled, "_GRAPHS", {})
    monkeypatch.setattr(_compiled, "COMPILE_SECONDS", {})
    monkeypatch.setattr(_compiled, "_warned", [False])
    make = lambda engine: lambda p: ot.RMSprop(p, lr=1e-2, engine=engine)  # noqa: E731
    with pytest.warns(RuntimeWarning, match="torch.compile failed") as record:
        ours, _ = _run(make("compiled"), torch.float32, steps=3)
    assert len([w for w in record if "torch.compile" in str(w.message)]) == 1
    chain, _ = _run(make("torch"), torch.float32, steps=3)
    assert all(torch.equal(a, b) for a, b in zip(ours, chain, strict=True))


def test_inductor_disk_cache_is_on():
    """Compiled graphs are kept on disk between processes (inductor's FX graph cache)."""
    import torch._inductor.config as config

    assert config.fx_graph_cache


@pytest.mark.parametrize("engine", ["compiledd", "COMPILED", 3, None, ""])
def test_bad_engine_is_refused(engine):
    """An engine outside the set: ValueError/TypeError naming ``engine``, the value and the
    choices; the parameters are untouched."""
    params = [p.requires_grad_() for p in _params(torch.float32)]
    before = [p.detach().clone() for p in params]
    with pytest.raises((ValueError, TypeError), match="engine") as error:
        ot.Adam(params, engine=engine)
    assert "compiled" in str(error.value)
    assert all(torch.equal(a, b) for a, b in zip(params, before, strict=True))


def test_sparse_adam_refuses_compiled():
    """SparseAdam (row updates, no elementwise kernel) takes only engine="auto"."""
    with pytest.raises(ValueError, match="engine"):
        ot.SparseAdam([torch.zeros(3, requires_grad=True)], engine="compiled")


def test_engine_is_kept_by_pickle_and_state_dict():
    """engine="compiled" travels with the optimizer (pickle) and a state dict of a compiled
    run loads into engine="auto" and torch.optim (the same layout)."""
    import pickle

    _, optimizer = _run(
        lambda p: ot.Adam(p, engine="compiled", weight_decay=0.1, decoupled_weight_decay=True),
        torch.float32,
        steps=1,
    )
    assert pickle.loads(pickle.dumps(optimizer)).engine == "compiled"
    torch.optim.Adam(_params(torch.float32)).load_state_dict(optimizer.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ot.Adam(_params(torch.float32)).load_state_dict(optimizer.state_dict())
