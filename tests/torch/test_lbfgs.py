"""optimlab.torch.LBFGS against torch.optim.LBFGS: the same closures, bit for bit.

The shared iteration (:func:`optimlab.lbfgs.lbfgs_step`) runs on flat tensors with torch's own
operations, so the iterates, every state entry and the state_dict equal torch's exactly, in
float64 and float32, with and without strong Wolfe; on Rosenbrock, a convex quadratic,
logistic regression on scikit-learn's breast cancer data, mini-batch (noisy) closures, and
torch's own ``optim_db`` entry for LBFGS (its inputs and error inputs).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import optimlab.torch as olt  # noqa: E402

from .._records import RESULTS  # noqa: E402

pytestmark = [pytest.mark.conformance, pytest.mark.usefixtures("one_torch_thread")]


def _rosenbrock(n, dtype, seed=0):
    x0 = torch.tensor(np.random.default_rng(seed).uniform(-2, 2, n), dtype=dtype)

    def loss(params, batch=None):
        (x,) = params
        return torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    return [x0], loss


def _quadratic(n, dtype, seed=1):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = torch.tensor(m @ m.T / n + 0.1 * np.eye(n), dtype=dtype)
    b = torch.tensor(rng.standard_normal(n), dtype=dtype)
    x0 = torch.tensor(rng.standard_normal(n), dtype=dtype)

    def loss(params, batch=None):
        (x,) = params
        return 0.5 * x @ (a @ x) - b @ x

    return [x0], loss


def _logistic(dtype):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    xt = torch.tensor(x, dtype=dtype)
    yt = torch.tensor(data.target, dtype=dtype)
    params = [torch.zeros(x.shape[1], dtype=dtype), torch.zeros((), dtype=dtype)]

    def loss(params, batch=None):
        w, b = params
        rows = slice(None) if batch is None else batch
        z = xt[rows] @ w + b
        return torch.nn.functional.binary_cross_entropy_with_logits(z, yt[rows])

    return params, loss


PROBLEMS = {
    "rosenbrock2": lambda dt: _rosenbrock(2, dt),
    "rosenbrock6": lambda dt: _rosenbrock(6, dt),
    "quadratic8": lambda dt: _quadratic(8, dt),
    "logistic": _logistic,
}
CONFIGS = {
    "default": {},
    "strong_wolfe": {"line_search_fn": "strong_wolfe"},
    "sw_h3_it7": {"line_search_fn": "strong_wolfe", "history_size": 3, "max_iter": 7},
    "lr0.1_h2_it4": {"lr": 0.1, "history_size": 2, "max_iter": 4},
}


def _run(cls, params0, loss_fn, kwargs, steps, batches=None):
    params = [p.clone().requires_grad_(True) for p in params0]
    opt = cls(params, **kwargs)
    trajectory, losses = [], []
    for k in range(steps):
        batch = None if batches is None else batches[k]

        def closure(batch=batch):
            opt.zero_grad()
            loss = loss_fn(params, batch)
            loss.backward()
            return loss

        losses.append(float(opt.step(closure).detach()))
        trajectory.append([p.detach().clone() for p in params])
    return trajectory, losses, opt


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert list(sa["state"]) == list(sb["state"])
    for key in sa["state"]:
        ta, tb = sa["state"][key], sb["state"][key]
        assert sorted(ta) == sorted(tb)
        for name in ta:
            va, vb = ta[name], tb[name]
            if isinstance(va, list):
                assert len(va) == len(vb), name
                pairs = zip(va, vb, strict=True)
            else:
                pairs = [(va, vb)]
            for x, y in pairs:
                assert type(x) is type(y), name
                if isinstance(x, torch.Tensor):
                    assert x.dtype == y.dtype and torch.equal(x, y), name
                else:
                    assert x == y, name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_bit_identical_to_torch(problem, config, dtype):
    params0, loss_fn = PROBLEMS[problem](dtype)
    steps = 2 if problem == "logistic" else 4
    ours = _run(olt.LBFGS, params0, loss_fn, CONFIGS[config], steps)
    theirs = _run(torch.optim.LBFGS, params0, loss_fn, CONFIGS[config], steps)
    for pa, pb in zip(ours[0], theirs[0], strict=True):
        for a, b in zip(pa, pb, strict=True):
            assert torch.equal(a, b)
    assert ours[1] == theirs[1]
    _assert_same_state(ours[2], theirs[2])
    RESULTS.append(
        {
            "peer": "torch.optim vs optimlab.torch (LBFGS)",
            "optimizer": "LBFGS",
            "options": f"{problem} {config}",
            "dtype": str(dtype).removeprefix("torch."),
            "deviation": 0.0,
        }
    )


def test_noisy_minibatch_closure_as_torch():
    """Mini-batch closures (a new seeded batch each step, the same batch inside a step): the
    loss does not fall monotonically, the line search sees one batch's loss, and
    optimlab.torch follows torch's trajectory exactly."""
    params0, loss_fn = _logistic(torch.float64)
    rng = np.random.default_rng(7)
    batches = [torch.tensor(rng.choice(569, 32, replace=False)) for _ in range(12)]
    kw = {"line_search_fn": "strong_wolfe", "history_size": 5, "max_iter": 3}
    ours = _run(olt.LBFGS, params0, loss_fn, kw, 12, batches)
    theirs = _run(torch.optim.LBFGS, params0, loss_fn, kw, 12, batches)
    assert ours[1] == theirs[1]
    for pa, pb in zip(ours[0], theirs[0], strict=True):
        assert all(torch.equal(a, b) for a, b in zip(pa, pb, strict=True))
    assert any(b > a for a, b in zip(theirs[1], theirs[1][1:], strict=False))


def test_state_dict_round_trip_continues_bit_for_bit():
    params0, loss_fn = _rosenbrock(5, torch.float64)
    kw = {"line_search_fn": "strong_wolfe", "history_size": 4, "max_iter": 5}
    _, _, opt = _run(olt.LBFGS, params0, loss_fn, kw, 2)
    saved = copy.deepcopy(opt.state_dict())
    params = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    a_params = [p.clone().detach().requires_grad_(True) for p in params]
    b_params = [p.clone().detach().requires_grad_(True) for p in params]
    a = olt.LBFGS(a_params, **kw)
    b = torch.optim.LBFGS(b_params, **kw)
    a.load_state_dict(copy.deepcopy(saved))
    b.load_state_dict(copy.deepcopy(saved))  # torch.optim loads optimlab's state dict
    for opt_, ps in ((a, a_params), (b, b_params)):

        def closure(opt_=opt_, ps=ps):
            opt_.zero_grad()
            loss = loss_fn(ps)
            loss.backward()
            return loss

        opt_.step(closure)
    assert all(torch.equal(x, y) for x, y in zip(a_params, b_params, strict=True))
    _assert_same_state(a, b)


def _lbfgs_db_entry():
    common = pytest.importorskip("torch.testing._internal.common_optimizers")
    return next(e for e in common.optim_db if e.optim_cls is torch.optim.LBFGS)


def test_optim_db_inputs():
    """torch's optim_db LBFGS inputs (default, lr 0.01, a Tensor lr, tolerance_grad, strong
    Wolfe) on a small linear model: the same losses, parameters and state as torch's."""
    entry = _lbfgs_db_entry()
    inputs = entry.optim_inputs_func(device="cpu")
    assert len(inputs) == 5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(16, generator=gen, dtype=torch.float64)
    params0 = [
        torch.randn(5, generator=gen, dtype=torch.float64),
        torch.zeros((), dtype=torch.float64),
    ]

    def loss_fn(params, batch=None):
        w, b = params
        return ((x @ w + b - y) ** 2).mean() + (w**4).sum() * 0.01

    for optim_input in inputs:
        kw = optim_input.kwargs
        ours = _run(olt.LBFGS, params0, loss_fn, dict(kw), 3)
        theirs = _run(torch.optim.LBFGS, params0, loss_fn, dict(kw), 3)
        assert ours[1] == theirs[1], optim_input.desc
        for pa, pb in zip(ours[0], theirs[0], strict=True):
            assert all(torch.equal(a, b) for a, b in zip(pa, pb, strict=True))
        _assert_same_state(ours[2], theirs[2])


def test_optim_db_error_inputs():
    """optim_db's error inputs for LBFGS: the same exception type and message as torch."""
    entry = _lbfgs_db_entry()
    errors = entry.optim_error_inputs_func(device="cpu", dtype=torch.float32)
    assert errors
    for error_input in errors:
        oi = error_input.optimizer_error_input
        raised = []
        for cls in (torch.optim.LBFGS, olt.LBFGS):
            params = oi.params
            try:
                with (
                    pytest.warns()
                    if error_input.error_type is not Exception
                    and issubclass(error_input.error_type, Warning)
                    else _nullcontext()
                ):
                    cls(params, **oi.kwargs)
            except Exception as e:  # noqa: BLE001 - compared below
                raised.append((type(e), str(e)))
            else:
                raised.append(None)
        assert raised[0] == raised[1], (oi.desc, raised)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_refusals():
    """Beyond torch: history_size and max_iter must be integers >= 1; parameters must be CPU
    float32/float64 tensors of one dtype (refused at the step, before anything moves)."""
    p = torch.zeros(3, requires_grad=True)
    in_range = r"must be an integer in \[1, 2\*\*63 - 1\], got 0"
    with pytest.raises(ValueError, match="history_size " + in_range):
        olt.LBFGS([p], history_size=0)
    with pytest.raises(ValueError, match="max_iter " + in_range):
        olt.LBFGS([p], max_iter=0)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        olt.LBFGS([p], lr=-1)
    h = torch.ones(3, dtype=torch.float16, requires_grad=True)
    opt = olt.LBFGS([h])
    with pytest.raises(TypeError, match="float32/float64"):
        opt.step(lambda: h.sum())
    assert torch.equal(h, torch.ones(3, dtype=torch.float16)) and not opt.state
    for cls in (torch.optim.LBFGS, olt.LBFGS):
        q = torch.ones(2, requires_grad=True)
        opt = cls([q], line_search_fn="bogus")

        def closure(q=q, opt=opt):
            opt.zero_grad()
            loss = (q**2).sum()
            loss.backward()
            return loss

        with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
            opt.step(closure)
