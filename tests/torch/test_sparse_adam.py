"""optimlab.torch.SparseAdam against torch.optim.SparseAdam on an ``nn.Embedding(sparse=True)``
model: the lazy update (only the rows a gradient names move), bit for bit, and the refusals
with torch's exceptions and messages, changing nothing."""

from __future__ import annotations

import copy
import inspect

import pytest

torch = pytest.importorskip("torch")

import optimlab.torch as ot  # noqa: E402

STEPS = 40
TOL = {torch.float64: 1e-12, torch.float32: 1e-6}


def _models(dtype, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Embedding(40, 6, sparse=True), torch.nn.Linear(6, 1))
    model = model.to(dtype)
    twin = copy.deepcopy(model)
    return model, twin


def _train(model, twin, make_ours, make_theirs, dtype, seed=1, steps=STEPS, every=None):
    """The same batches for both models; the embedding by SparseAdam, the linear layer by Adam
    (its gradients are dense). Returns the largest deviation of every parameter and state
    tensor over the run."""
    ours = make_ours(model[0].parameters())
    theirs = make_theirs(twin[0].parameters())
    dense = [torch.optim.Adam(m[1].parameters(), lr=1e-2) for m in (model, twin)]
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for step in range(steps):
        idx = torch.randint(0, 40, (8,), generator=gen)  # repeated indices: summed
        y = torch.randn(8, 1, generator=gen, dtype=dtype)
        for m, opts in ((model, (ours, dense[0])), (twin, (theirs, dense[1]))):
            for opt in opts:
                opt.zero_grad()
            torch.nn.functional.mse_loss(m(idx), y).backward()
            for opt in opts:
                opt.step()
        if every is not None:
            every(step, ours, theirs)
        worst = max(worst, _deviation(model[0].weight, twin[0].weight))
        a, b = ours.state[model[0].weight], theirs.state[twin[0].weight]
        assert list(a) == list(b) == ["step", "exp_avg", "exp_avg_sq"]
        assert a["step"] == b["step"] and type(a["step"]) is int
        for key in ("exp_avg", "exp_avg_sq"):
            assert a[key].dtype == b[key].dtype
            worst = max(worst, _deviation(a[key], b[key]))
    return worst, ours, theirs


def _deviation(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max()) / float(b.abs().max() or 1.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6}, {"lr": 0.01, "maximize": True}],
)
def test_matches_torch_on_a_sparse_embedding(dtype, kwargs):
    model, twin = _models(dtype)
    worst, ours, theirs = _train(
        model,
        twin,
        lambda p: ot.SparseAdam(p, **kwargs),
        lambda p: torch.optim.SparseAdam(p, **kwargs),
        dtype,
    )
    assert worst <= TOL[dtype]
    assert worst == 0.0  # torch's order of operations: the same numbers, bit for bit


def test_a_learning_rate_change_and_a_state_dict_round_trip():
    model, twin = _models(torch.float64)

    def every(step, ours, theirs):
        if step == 15:
            for opt in (ours, theirs):
                opt.param_groups[0]["lr"] = 3e-3
        if step == 30:  # reload our own state (through torch's layout) and go on
            saved = copy.deepcopy(ours.state_dict())
            ours.load_state_dict(saved)

    worst, ours, theirs = _train(
        model,
        twin,
        lambda p: ot.SparseAdam(p),
        lambda p: torch.optim.SparseAdam(p),
        torch.float64,
        every=every,
    )
    assert worst == 0.0
    saved = theirs.state_dict()
    assert ours.state_dict()["state"][0].keys() == saved["state"][0].keys()
    assert ours.state_dict()["param_groups"] == saved["param_groups"]


def test_only_the_rows_a_gradient_names_move():
    """Rows absent from every gradient keep their value and zero moments; a named row moves,
    with the moments of its own history (lazy: no decay while it is absent)."""
    weight = torch.nn.Parameter(torch.randn(6, 3, dtype=torch.float64))
    before = weight.detach().clone()
    opt = ot.SparseAdam([weight], lr=0.1)
    for rows in ([0, 2, 2], [2], [0]):
        index = torch.tensor([rows])
        values = torch.ones(len(rows), 3, dtype=torch.float64)
        weight.grad = torch.sparse_coo_tensor(index, values, (6, 3), check_invariants=True)
        opt.step()
    untouched = [1, 3, 4, 5]
    assert torch.equal(weight.detach()[untouched], before[untouched])
    assert torch.equal(opt.state[weight]["exp_avg"][untouched], torch.zeros(4, 3).double())
    assert (weight.detach()[[0, 2]] != before[[0, 2]]).all()
    # row 0 was named at steps 1 and 3 only: m = 0.1 * 1, then kept, then 0.9 * 0.1 + 0.1 * 1
    expected = torch.full((3,), 0.9 * 0.1 + 0.1, dtype=torch.float64)
    assert torch.allclose(opt.state[weight]["exp_avg"][0], expected, rtol=1e-15)
    # row 2 was named twice at step 1 (the values summed: 2) and once at step 2
    expected = torch.full((3,), 0.9 * (0.1 * 2) + 0.1 * 1, dtype=torch.float64)
    assert torch.allclose(opt.state[weight]["exp_avg"][2], expected, rtol=1e-15)
    assert opt.state[weight]["step"] == 3


def test_signature_and_defaults_are_torchs():
    theirs = inspect.signature(torch.optim.SparseAdam.__init__).parameters
    ours = dict(inspect.signature(ot.SparseAdam.__init__).parameters)
    assert ours.pop("engine").default == "auto" and ours.pop("nan_policy").default == "propagate"
    assert ours.pop("preset").default == "torch"
    assert ours.pop("state_dtype").default == "float32"  # (refused narrow: sparse rows)
    assert ours.pop("bf16_stochastic_round").default is False and ours.pop("seed").default is None
    assert list(ours) == list(theirs)
    for key, parameter in theirs.items():
        assert ours[key].default == parameter.default and ours[key].kind == parameter.kind
    p = [torch.nn.Parameter(torch.randn(3))]
    assert ot.SparseAdam(p).defaults == torch.optim.SparseAdam(p).defaults


def _outcome(make):
    try:
        make()
    except Exception as error:  # noqa: BLE001 - the exception is the result
        return type(error), str(error)
    return None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.0},
        {"lr": -1.0},
        {"eps": 0.0},
        {"betas": (1.0, 0.9)},
        {"betas": (0.9, -0.1)},
        {"lr": torch.tensor([0.1, 0.2])},
    ],
)
def test_construction_refusals_are_torchs(kwargs):
    def make(library):
        return lambda: library.SparseAdam([torch.nn.Parameter(torch.randn(3))], **kwargs)

    theirs = _outcome(make(torch.optim))
    assert theirs is not None
    assert _outcome(make(ot)) == theirs


@pytest.mark.parametrize(
    "params",
    [
        lambda: [torch.zeros(3).to_sparse()],
        lambda: [{"params": [torch.randn(2)]}, {"params": [torch.zeros(3).to_sparse()]}],
        lambda: [torch.randn(3, dtype=torch.complex64)],
    ],
    ids=["sparse", "sparse in group 1", "complex"],
)
def test_sparse_and_complex_parameters_are_refused_as_torch(params):
    theirs = _outcome(lambda: torch.optim.SparseAdam(params()))
    assert theirs is not None and theirs[0] is ValueError
    assert _outcome(lambda: ot.SparseAdam(params())) == theirs


def test_a_dense_gradient_is_refused_before_anything_moves():
    """torch raises at the first dense gradient, after the groups before it have moved;
    optimlab raises the same RuntimeError before any parameter or state changes."""
    a = torch.nn.Parameter(torch.randn(4, 2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = ot.SparseAdam([{"params": [a]}, {"params": [b], "lr": 0.1}])
    a.grad = torch.sparse_coo_tensor(
        torch.tensor([[1]]), torch.ones(1, 2).double(), (4, 2), check_invariants=True
    )
    b.grad = torch.ones(3, dtype=torch.float64)
    snapshot = (a.detach().clone(), b.detach().clone(), copy.deepcopy(opt.state_dict()))
    torch_message = _outcome(_dense_step_of_torch)
    with pytest.raises(RuntimeError) as info:
        opt.step()
    assert (RuntimeError, str(info.value)) == torch_message
    assert torch.equal(a.detach(), snapshot[0]) and torch.equal(b.detach(), snapshot[1])
    assert opt.state_dict() == snapshot[2] and not opt.state


def _dense_step_of_torch():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.SparseAdam([p])
    p.grad = torch.ones(3)
    opt.step()


def test_a_loaded_step_must_be_a_count():
    p = torch.nn.Parameter(torch.randn(4, 2, dtype=torch.float64))
    opt = ot.SparseAdam([p])
    p.grad = torch.sparse_coo_tensor(
        torch.tensor([[0]]), torch.ones(1, 2).double(), (4, 2), check_invariants=True
    )
    opt.step()
    good = copy.deepcopy(opt.state_dict())
    for bad_step, kind in ((-1, ValueError), (1.5, ValueError), ("3", TypeError)):
        bad = copy.deepcopy(good)
        bad["state"][0]["step"] = bad_step
        with pytest.raises(kind, match="'step'"):
            opt.load_state_dict(bad)
        assert opt.state_dict()["state"][0]["step"] == 1
