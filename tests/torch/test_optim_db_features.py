"""optimlab.torch against torch.optim on the features optim_db declares per optimizer.

Driven by torch's ``optim_db`` (see ``_optim_db.py``), for the optimizers optimlab.torch has:

- **sparse** (``supports_sparse``): torch's sparse test configurations
  (``metadata_for_sparse``, with and without its LR schedulers): a Rosenbrock function
  minimized by cyclic coordinate descent with uncoalesced sparse gradients (an index named
  twice), against torch.optim with the same sparse gradients (float64, 1e-9) and against
  optimlab with the dense equivalent (torch's own check, 5e-6); SGD also with momentum,
  dampening, Nesterov and maximize;
- **differentiable** (``supported_impls``): every configuration with ``differentiable=True``:
  ``torch.autograd.gradcheck`` of one step as a function of the parameter, its gradient and
  every state tensor (torch's own test of differentiable optimizers), and the gradients of
  the step's outputs equal torch.optim's; a tensor learning rate receives torch's gradient;
- **LR schedulers** (``scheduler_inputs``): each scheduler combination driving optimlab and
  torch.optim through 20 steps on torch's weight/bias problem (float64, 1e-9);
- **fused** (``supports_fused_on`` has "cpu"): GradScaler's protocol (``grad_scale`` divides the
  gradients, ``found_inf`` skips the step and leaves the step count), and torch's refusal of a
  parameter on the meta device, as torch.optim;
- **capturable** (``has_capturable_arg``): accepted, and on the CPU a step raises torch's
  AssertionError with torch's message, as torch.optim does.
"""

from __future__ import annotations

import copy
import functools

import pytest

torch = pytest.importorskip("torch")

from torch.optim.lr_scheduler import ReduceLROnPlateau  # noqa: E402

from .._records import RESULTS  # noqa: E402
from . import _optim_db as odb  # noqa: E402
from .test_optim_db import PEER, compare_states, deviation  # noqa: E402

pytestmark = pytest.mark.conformance


# -- sparse ---------------------------------------------------------------------------------


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _rosenbrock_gradient(x, w, sparse):
    """The x (w = 1) or y (w = 0) component of the Rosenbrock gradient at ``x``; sparse: as an
    uncoalesced COO tensor naming its one index twice (torch's torture test)."""
    with torch.no_grad():
        gx = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
        gy = 200 * (x[1] - x[0] ** 2)
    if not sparse:
        return torch.stack([gx, torch.zeros_like(gx)] if w else [torch.zeros_like(gy), gy])
    if w:
        indices, values = torch.tensor([[0, 0]]), torch.stack([gx / 4, gx - gx / 4])
    else:
        indices, values = torch.tensor([[1, 1]]), torch.stack([gy - gy / 4, gy / 4])
    return torch.sparse_coo_tensor(indices, values, (2,), check_invariants=True)


def _rosenbrock_run(cls, kwargs, schedulers, sparse, steps=120):
    x = torch.tensor([1.5, 1.5], dtype=torch.float64)
    opt = cls([x], **copy.deepcopy(kwargs))
    made = [make(opt) for make in schedulers]
    for i in range(steps):
        x.grad = _rosenbrock_gradient(x, i % 2, sparse)
        opt.step()
        for scheduler in made:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(rosenbrock(x))
            else:
                scheduler.step()
    return x, opt


def _sparse_cases():
    cases = []
    for config in odb.sparse_configs():
        _, schedulers = config.info.metadata_for_sparse
        for with_schedulers in (False, True) if schedulers else (False,):
            label = "with_lrsched" if with_schedulers else "no_lrsched"
            cases.append(pytest.param(config, with_schedulers, id=f"{config.id}-{label}"))
    sgd = next(info for info in odb.INFOS if info.name == "SGD")
    for extra in (
        dict(lr=1e-3, momentum=0.9),
        dict(lr=1e-3, momentum=0.9, dampening=0.5),
        dict(lr=1e-3, momentum=0.9, nesterov=True),
    ):
        desc = ",".join(f"{k}={v}" for k, v in extra.items())
        cases.append(pytest.param(odb.Config(sgd, desc, extra), False, id=f"SGD-{desc}"))
    return cases


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
@pytest.mark.parametrize(("config", "with_schedulers"), _sparse_cases())
def test_sparse_gradients_as_torch_optim(config, with_schedulers):
    schedulers = config.info.metadata_for_sparse[1] if with_schedulers else []
    kwargs = config.kwargs()
    mine, opt = _rosenbrock_run(odb.ours(config.info), kwargs, schedulers, sparse=True)
    torchs, reference = _rosenbrock_run(odb.theirs(config.info), kwargs, schedulers, sparse=True)
    dense, _ = _rosenbrock_run(odb.ours(config.info), kwargs, schedulers, sparse=False)
    worst = compare_states(opt, reference, [mine], [torchs], 1e-9)
    assert float((mine - dense).abs().max()) <= 5e-6
    assert float((mine - torch.tensor([1.5, 1.5], dtype=torch.float64)).abs().max()) > 0
    RESULTS.append(
        {
            "peer": PEER + " sparse",
            "optimizer": config.name,
            "options": config.desc,
            "dtype": "float64",
            "deviation": worst,
        }
    )


# -- differentiable -------------------------------------------------------------------------


def _differentiable_configs():
    return [
        pytest.param(c, id=c.id)
        for c in odb.all_configs(torch.float64)
        if c.kwargs_.get("differentiable")
    ]


def _initial_state(cls, kwargs, seed):
    """A parameter, a gradient and a state, as float64 leaves that require grad: the state's
    keys from a step of torch.optim, its buffers random in [0.1, 1.1) (``grad_avg`` in [0,
    0.01), below the root of ``square_avg``), away from the kinks of sqrt and max where finite
    differences mislead (torch's differentiable tests draw them alike), the step count 10."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(10, generator=gen, dtype=torch.float64)
    opt = cls([p], **{**copy.deepcopy(kwargs), "differentiable": False})
    p.grad = torch.randn(10, generator=gen, dtype=torch.float64)
    opt.step()
    tensors, others = {}, {}
    for key, value in opt.state[p].items():
        if isinstance(value, torch.Tensor) and value.shape == p.shape:
            scale, low = (0.01, 0.0) if key == "grad_avg" else (1.0, 0.1)
            buffer = torch.rand(10, generator=gen, dtype=torch.float64) * scale + low
            tensors[key] = buffer.requires_grad_(True)
        elif key == "step":
            others[key] = torch.full_like(value, 10.0)
        else:
            others[key] = value.clone()
    p = p.detach().clone().requires_grad_(True)
    grad = torch.randn(10, generator=gen, dtype=torch.float64).requires_grad_(True)
    return p, grad, tensors, others


def _step_function(cls, kwargs, keys, others):
    """One step as a function of (parameter, gradient, *state tensors), returning the new
    parameter and the new state tensors (torch's ``_diff_fn``)."""

    def step(p, grad, *values):
        p = p.clone()
        p.grad = grad
        opt = cls([p], **copy.deepcopy(kwargs))
        opt.state[p].update({k: v.clone() for k, v in others.items()})
        opt.state[p].update({k: v.clone() for k, v in zip(keys, values, strict=True)})
        opt.step()
        return (p, *(opt.state[p][k] for k in keys))

    return step


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("config", _differentiable_configs())
def test_a_differentiable_step_passes_gradcheck_and_matches_torch(config):
    kwargs = config.kwargs()
    p, grad, tensors, others = _initial_state(odb.theirs(config.info), kwargs, seed=0)
    keys = tuple(tensors)
    inputs = (p, grad, *tensors.values())
    mine = _step_function(odb.ours(config.info), kwargs, keys, others)
    torchs = _step_function(odb.theirs(config.info), kwargs, keys, others)
    assert torch.autograd.gradcheck(mine, inputs, fast_mode=True)
    outputs, reference = mine(*inputs), torchs(*inputs)
    weights = [torch.linspace(-1, 1, o.numel(), dtype=torch.float64) for o in outputs]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
    torch_loss = sum((o * w).sum() for o, w in zip(reference, weights, strict=True))
    worst = max(deviation(o, r) for o, r in zip(outputs, reference, strict=True))
    for g, h in zip(
        torch.autograd.grad(loss, inputs), torch.autograd.grad(torch_loss, inputs), strict=True
    ):
        worst = max(worst, deviation(g, h))
    assert worst <= 1e-9, worst
    RESULTS.append(
        {
            "peer": PEER + " differentiable step",
            "optimizer": config.name,
            "options": config.desc,
            "dtype": "float64",
            "deviation": worst,
        }
    )


def _three_steps(cls, lr, p):
    """Three differentiable steps of ``cls`` from a copy of ``p`` with learning rate ``lr``."""
    gen = torch.Generator().manual_seed(0)
    q = p.clone()
    opt = cls([q], lr=lr, differentiable=True)
    for _ in range(3):
        q.grad = torch.randn(10, generator=gen, dtype=torch.float64)
        opt.step()
    return q


@pytest.mark.parametrize(
    "info",
    # (optim_db's entries that support differentiable=True: not Adafactor, which has no such
    # argument in torch, nor in optimlab.torch; not ASGD, which reads lr as a number, as
    # torch.optim.ASGD does: its step size eta is state computed from float(lr))
    [
        pytest.param(i, id=i.name)
        for i in odb.INFOS
        if "differentiable" in i.supported_impls and i.name != "ASGD"
    ],
)
def test_a_tensor_learning_rate_is_differentiated_through(info):
    """differentiable=True with a learning rate that requires grad: gradcheck of three steps
    as a function of (lr, parameter), and torch.optim's gradients where torch.optim can take
    a tensor lr there (its Adadelta, Adagrad, Adamax, NAdam and RMSprop cannot: they pass lr
    as a number to an in-place op, or overwrite a tensor autograd saved)."""
    lr = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    p = torch.randn(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p.requires_grad_(True)
    mine = functools.partial(_three_steps, odb.ours(info))
    assert torch.autograd.gradcheck(mine, (lr, p), fast_mode=True)
    my_lr, my_p = torch.autograd.grad(mine(lr, p).sum(), (lr, p))
    assert float(my_lr.abs()) > 0
    try:
        torch_lr, torch_p = torch.autograd.grad(_three_steps(info.optim_cls, lr, p).sum(), (lr, p))
    except (TypeError, RuntimeError):
        return
    assert deviation(my_lr, torch_lr) <= 1e-9 and deviation(my_p, torch_p) <= 1e-9


# -- LR schedulers --------------------------------------------------------------------------


def _scheduled_run(cls, info, index):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    bias = torch.randn(10, generator=gen, dtype=torch.float64)
    if getattr(odb.ours(info), "matrices_only", False):  # Muon: the bias as a (1, 10) matrix
        bias = bias.reshape(1, 10)
    x = torch.randn(5, generator=gen, dtype=torch.float64)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    opt = cls([weight, bias], **info.optim_inputs_func(device=odb.DEVICE)[0].kwargs)
    schedulers = [make(opt) for make in info.scheduler_inputs[index]]
    for _ in range(20):
        opt.zero_grad()
        loss = (weight.mv(x) + bias).pow(2).sum()
        loss.backward()
        if info.only_supports_sparse_grads:  # SparseAdam: as torch's own tests give them
            for p in (weight, bias):
                p.grad = p.grad.to_sparse()
        opt.step()
        for scheduler in schedulers:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(loss.item())
            else:
                scheduler.step()
    return [weight, bias], opt


@pytest.mark.parametrize(
    ("info", "index"),
    [pytest.param(i, n, id=f"{i.name}-{n}") for i, n in odb.scheduler_cases()],
)
def test_lr_schedulers_drive_optimlab_as_torch_optim(info, index):
    mine, opt = _scheduled_run(odb.ours(info), info, index)
    torchs, reference = _scheduled_run(odb.theirs(info), info, index)
    worst = compare_states(opt, reference, mine, torchs, 1e-9)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in reference.param_groups]
    RESULTS.append(
        {
            "peer": PEER + " LR schedulers",
            "optimizer": info.name,
            "options": f"scheduler_inputs[{index}]",
            "dtype": "float64",
            "deviation": worst,
        }
    )


# -- fused ----------------------------------------------------------------------------------


def _fused_configs():
    return [
        pytest.param(c, id=c.id)
        for c in odb.all_configs()
        if c.kwargs_.get("fused") and odb.DEVICE in c.info.supports_fused_on
    ]


@pytest.mark.parametrize("found_inf", [False, True], ids=["scaled", "found_inf"])
@pytest.mark.parametrize("config", _fused_configs())
def test_fused_takes_grad_scalers_scale_and_inf_flag_as_torch(config, found_inf):
    """GradScaler hands a fused optimizer ``grad_scale`` and ``found_inf`` instead of unscaling
    the gradients: the gradients are divided by the scale, and a found inf leaves parameters,
    buffers and step counts as they were (torch's test_fused_does_not_step_if_foundinf)."""
    results = []
    for cls in (odb.ours(config.info), odb.theirs(config.info)):
        gen = torch.Generator().manual_seed(0)
        params = [torch.randn(3, generator=gen) for _ in range(3)]
        opt = cls(params, **config.kwargs())
        assert opt._step_supports_amp_scaling
        for step in range(3):
            for p in params:
                p.grad = torch.randn(3, generator=gen) * 4.0
            opt.grad_scale = torch.tensor(4.0)
            opt.found_inf = torch.tensor(1.0 if found_inf and step == 2 else 0.0)
            opt.step()
        results.append((params, opt))
    (mine, opt), (torchs, reference) = results
    compare_states(opt, reference, mine, torchs, 1e-5)


@pytest.mark.parametrize("config", _fused_configs())
def test_fused_refuses_a_parameter_on_the_meta_device_as_torch(config):
    messages = []
    for cls in (odb.ours(config.info), odb.theirs(config.info)):
        with torch.device("meta"):
            model = torch.nn.Linear(2, 3)
        opt = cls(model.parameters(), **config.kwargs())
        for p in model.parameters():
            p.grad = torch.rand_like(p)
        before = {p: dict(s) for p, s in opt.state.items()}  # Adagrad's, made at construction
        with pytest.raises(RuntimeError) as error:
            opt.step()
        messages.append(str(error.value))
        if cls is odb.ours(config.info):  # refused before anything moved
            assert {p: dict(s) for p, s in opt.state.items()} == before
        opt.zero_grad(set_to_none=True)
        model.to_empty(device=odb.DEVICE)
        for p in model.parameters():
            p.grad = torch.rand_like(p)
        opt.step()
    assert messages[0] == messages[1]
    assert "`fused=True` requires all the params to be floating point Tensors" in messages[0]


# -- capturable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "info", [pytest.param(i, id=i.name) for i in odb.INFOS if i.has_capturable_arg]
)
@pytest.mark.parametrize("foreach", [False, True])
def test_capturable_on_the_cpu_fails_at_the_step_as_in_torch(info, foreach):
    """torch accepts capturable=True and refuses the step of a CPU parameter (a graph cannot
    be captured there) with an AssertionError; optimlab the same, before anything moves."""
    outcomes = []
    for cls in (odb.ours(info), odb.theirs(info)):
        p = torch.ones(3)
        opt = cls([p], capturable=True, foreach=foreach)
        p.grad = torch.ones(3)
        with pytest.raises(AssertionError) as error:
            opt.step()
        outcomes.append((str(error.value), p.clone()))
    (my_message, my_p), (torch_message, _) = outcomes
    assert my_message == torch_message
    assert torch.equal(my_p, torch.ones(3))
