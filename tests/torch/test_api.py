"""optimlab.torch keeps every torch.optim habit: signatures and defaults, parameter groups,
parameters without gradients, closures, every lr_scheduler, state dicts (round trip, files,
loading torch.optim's and being loaded by it), hooks, pickling and copying, other dtypes,
complex and strided tensors; and bad input gets torch's error where torch refuses it (else one
that names the argument and its range), with nothing lost.

Numbers are compared with torch.optim itself (torch 2.13) on small float64 problems, where the
two agree to rounding (1e-12 here; ``test_conformance.py`` has the full grid).
"""

from __future__ import annotations

import copy
import inspect
import io
import math
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402

import optimlab.torch as ot  # noqa: E402

from ._compare import assert_same_state, max_diff  # noqa: E402

NAMES = [
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "NAdam",
    "Adamax",
    "Adadelta",
    "RAdam",
    "Rprop",
    "ASGD",
]
TORCH_NAMES = NAMES  # Lion has no torch.optim namesake
#: arguments that make every optimizer take a visible step and use its state
ARGS = {
    "SGD": dict(lr=0.05, momentum=0.9),
    "Adagrad": dict(lr=0.1),
    "RMSprop": dict(lr=0.01, momentum=0.5),
    "Adam": dict(lr=0.01),
    "AdamW": dict(lr=0.01),
    "NAdam": dict(lr=0.01),
    "Adamax": dict(lr=0.01),
    "Adadelta": dict(lr=1.0),
    "RAdam": dict(lr=0.01),
    "Rprop": dict(lr=0.01),
    "ASGD": dict(lr=0.05, t0=3.0),  # averaging from the 6th step
    "Lion": dict(lr=1e-3),
}
TOL = 1e-12
#: state scalars kept in torch's default dtype, which torch's load_state_dict casts to the
#: parameter's (NAdam's mu_product, ASGD's eta and mu), and how far a run that computes them
#: in float64 after a load moves from one that keeps rounding them to float32 (after a round
#: trip, after a load from the other library): NAdam's product measured 1.2e-12 apart after 6
#: steps; ASGD's step size eta, rounded by 6e-8 relative, moves the parameters by 1.1e-8 after
#: 8 steps
SCALAR_STATE = {"NAdam": (("mu_product",), TOL, 1e-9), "ASGD": (("eta", "mu"), 1e-7, 1e-7)}
#: the optimizers without a weight_decay argument (torch's Rprop has none)
NO_DECAY = {"Rprop"}


def _decayed(name, wd):
    """ARGS[name] with ``weight_decay=wd`` where the optimizer takes one."""
    return dict(ARGS[name], **({} if name in NO_DECAY else {"weight_decay": wd}))


def _params(seed=0, dtype=torch.float64, shapes=((3, 4), (5,), ())):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype))
        for s in shapes
    ]


def _grads(params, gen, scale=1.0):
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale).to(p.dtype)


def _step_both(first, first_params, second, second_params, gen) -> None:
    """One step of two optimizers on the same fresh random gradients."""
    _grads(second_params, gen)
    for p, q in zip(first_params, second_params, strict=True):
        p.grad = q.grad.clone()
    first.step()
    second.step()


def _run(make, steps=20, seed=0, dtype=torch.float64, shapes=((3, 4), (5,), ()), every=None):
    """Train fresh parameters with ``make(params)`` on seeded random gradients."""
    params = _params(seed, dtype, shapes)
    opt = make(params)
    gen = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        _grads(params, gen)
        if every is not None:
            every(opt, step)
        opt.step()
    return params, opt


# -- signatures and defaults ---------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_signature_is_torchs_plus_engine_nan_policy_and_preset(name):
    """Every argument of torch.optim's class, in the same order, the same kind and default;
    plus the keyword-only ``engine="auto"``, ``nan_policy="propagate"``, ``preset="torch"``,
    ``state_dtype="float32"``, ``bf16_stochastic_round=False`` and ``seed=None`` at the end."""
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    ours = dict(inspect.signature(getattr(ot, name).__init__).parameters)
    engine = ours.pop("engine")
    assert engine.default == "auto" and engine.kind is inspect.Parameter.KEYWORD_ONLY
    nan_policy = ours.pop("nan_policy")
    assert nan_policy.default == "propagate"
    assert nan_policy.kind is inspect.Parameter.KEYWORD_ONLY
    preset = ours.pop("preset")
    assert preset.default == "torch" and preset.kind is inspect.Parameter.KEYWORD_ONLY
    # issue 16: narrow state and bfloat16 stochastic rounding (optimlab.torch._narrow)
    for key, default in (
        ("state_dtype", "float32"),
        ("bf16_stochastic_round", False),
        ("seed", None),
    ):
        extra = ours.pop(key)
        assert extra.default == default and extra.kind is inspect.Parameter.KEYWORD_ONLY
    assert list(ours) == list(theirs)
    for key, parameter in theirs.items():
        assert ours[key].kind == parameter.kind, key
        assert ours[key].default == parameter.default, key


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_defaults_and_group_keys_are_torchs(name):
    params = _params()
    ours = getattr(ot, name)(params)
    theirs = getattr(torch.optim, name)(_params())
    assert ours.defaults == theirs.defaults
    assert list(ours.param_groups[0]) == list(theirs.param_groups[0])


def test_lion_defaults():
    """Lion as its authors' reference: lr 1e-4, betas (0.9, 0.99), decoupled weight decay."""
    opt = ot.Lion(_params())
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"], group["maximize"]) == (
        1e-4,
        (0.9, 0.99),
        0.0,
        False,
    )


def test_every_optimizer_is_exported_and_is_a_torch_optimizer():
    assert sorted(ot.OPTIMIZERS) == sorted([*NAMES, "Lion", "Adafactor", "Muon", "SparseAdam"])
    for name in ot.OPTIMIZERS:
        assert issubclass(getattr(ot, name), torch.optim.Optimizer)
        assert issubclass(getattr(ot, name), ot.Optimizer)


# -- the step ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_parameter_groups_with_their_own_values(name):
    """Two groups, the second with its own learning rate and weight decay: torch's result."""

    def groups(cls):
        def make(params):
            return cls(
                [
                    {"params": params[:2]},
                    {"params": params[2:], "lr": ARGS[name]["lr"] * 3, "weight_decay": 0.1},
                ],
                **ARGS[name],
            )

        return make

    ours, our_opt = _run(groups(getattr(ot, name)))
    theirs, their_opt = _run(groups(getattr(torch.optim, name)))
    assert max_diff(ours, theirs) <= TOL
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), TOL)


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_parameters_without_gradient_are_skipped(name):
    params = _params()
    frozen = params[1].detach().clone()
    opt = getattr(ot, name)(params, **ARGS[name])
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        _grads(params, gen)
        params[1].grad = None
        opt.step()
    assert torch.equal(params[1].detach(), frozen)
    if name == "Adagrad":  # torch's Adagrad creates its state in __init__; it never counts
        assert float(opt.state[params[1]]["step"]) == 0.0
    else:
        assert params[1] not in opt.state
    assert not torch.equal(params[0].detach(), _params()[0].detach())  # the others moved


def test_zero_grad_and_closure():
    """``zero_grad()`` sets gradients to None (torch's default); ``step(closure)`` runs the
    closure with gradients enabled, steps on what it computed and returns its loss."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = ot.SGD([w], lr=0.1)
    w.grad = torch.ones_like(w)
    opt.zero_grad()
    assert w.grad is None

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) == 5.0
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6], dtype=torch.float64))
    assert opt.step() is None


def test_lbfgs_style_closure_is_called_once_per_step():
    calls = []
    w = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt = ot.Adam([w], lr=0.1)

    def closure():
        calls.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    assert calls == [True] * 4


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_maximize_is_minimizing_the_negated_objective(name):
    kwargs = _decayed(name, 0.05)
    up, _ = _run(lambda ps: getattr(ot, name)(ps, maximize=True, **kwargs))

    def negate(opt, step):
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad = -p.grad

    down, _ = _run(lambda ps: getattr(ot, name)(ps, **kwargs), every=negate)
    assert max_diff(up, down) <= TOL


def test_a_tensor_learning_rate_is_accepted():
    """A one-element tensor learning rate is read as its value. A float64 tensor gives torch's
    numbers; with a float32 tensor torch computes lr / (1 - beta_1^t) in float32 (a tensor
    operation), where optimlab uses the float32 value in float64: 1e-7 relative apart."""
    lr64 = torch.tensor(0.01, dtype=torch.float64)
    ours, _ = _run(lambda ps: ot.Adam(ps, lr=lr64))
    theirs, _ = _run(lambda ps: torch.optim.Adam(ps, lr=lr64))
    assert max_diff(ours, theirs) <= TOL
    ours, _ = _run(lambda ps: ot.Adam(ps, lr=torch.tensor(0.01)))
    theirs, _ = _run(lambda ps: torch.optim.Adam(ps, lr=torch.tensor(0.01)))
    assert max_diff(ours, theirs) <= 1e-8
    with pytest.raises(ValueError, match="lr"):
        ot.Adam(_params(), lr=torch.tensor([0.01, 0.02]))


# -- every lr_scheduler --------------------------------------------------------------------

SCHEDULERS = {
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 0.95**e),
    "MultiplicativeLR": lambda o: torch.optim.lr_scheduler.MultiplicativeLR(o, lambda e: 0.9),
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 9], gamma=0.2),
    "ConstantLR": lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=5),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, total_iters=8),
    "ExponentialLR": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "PolynomialLR": lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=12, power=2),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7),
    "CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2
    ),
    "CyclicLR": lambda o: torch.optim.lr_scheduler.CyclicLR(
        o, base_lr=0.001, max_lr=0.02, step_size_up=4
    ),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=20),
    "SequentialLR": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o,
        [
            torch.optim.lr_scheduler.LinearLR(o, 0.2, 1.0, total_iters=5),
            torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8),
        ],
        milestones=[5],
    ),
    "ChainedScheduler": lambda o: torch.optim.lr_scheduler.ChainedScheduler(
        [
            torch.optim.lr_scheduler.ConstantLR(o, factor=0.3, total_iters=4),
            torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95),
        ]
    ),
    "ReduceLROnPlateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1),
}


def test_every_scheduler_in_torch_is_covered():
    base = torch.optim.lr_scheduler.LRScheduler
    public = {
        name
        for name, cls in vars(torch.optim.lr_scheduler).items()
        if isinstance(cls, type)
        and not name.startswith("_")
        and (issubclass(cls, base) or name == "ReduceLROnPlateau")
        and cls is not base
        and name != "LRScheduler"
    }
    assert public <= set(SCHEDULERS), public - set(SCHEDULERS)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_every_lr_scheduler_drives_optimlab_as_it_drives_torch(name, scheduler):
    """The learning rate of every step (and, for CyclicLR and OneCycleLR, the momentum or beta_1
    they cycle) reaches optimlab's update: the parameters equal torch.optim's at every step."""
    make_scheduler = SCHEDULERS[scheduler]
    kwargs = dict(ARGS[name])
    if name == "SGD":
        kwargs["nesterov"] = True  # momentum 0.9 with nesterov: what CyclicLR cycles

    def train(cls):
        params = _params(5)
        opt = cls(params, **kwargs)
        sched = make_scheduler(opt)
        gen = torch.Generator().manual_seed(6)
        trace = []
        for _ in range(20):
            _grads(params, gen)
            opt.step()
            loss = float(sum((p.detach() ** 2).sum() for p in params))
            if scheduler == "ReduceLROnPlateau":
                sched.step(loss)
            else:
                sched.step()
            trace.append((opt.param_groups[0]["lr"], [p.detach().clone() for p in params]))
        return trace, sched

    ours, our_sched = train(getattr(ot, name))
    theirs, their_sched = train(getattr(torch.optim, name))
    lrs = [lr for lr, _ in theirs]
    assert len(set(lrs)) > 1, f"{scheduler} never changed the learning rate: {lrs}"
    for step, ((lr_a, a), (lr_b, b)) in enumerate(zip(ours, theirs, strict=True)):
        assert lr_a == lr_b, step
        assert max_diff(a, b) <= TOL, step
    assert our_sched.state_dict().keys() == their_sched.state_dict().keys()


# -- state dicts ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_state_dict_round_trip_continues_exactly(name):
    """Save after 7 steps (through a file, ``torch.load(weights_only=True)``), load into a new
    optimizer over a copy of the parameters, take 8 more steps: bit for bit the uninterrupted
    run."""
    cls = getattr(ot, name)
    kwargs = _decayed(name, 0.01)
    params = _params(2)
    opt = cls(params, **kwargs)
    gen = torch.Generator().manual_seed(9)
    for _ in range(7):
        _grads(params, gen)
        opt.step()
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = cls(copies, **kwargs)
    resumed.load_state_dict(saved)
    for _ in range(8):
        _step_both(resumed, copies, opt, params, gen)
    if name in SCALAR_STATE:
        # torch's load_state_dict casts every state tensor but "step" to the parameter's dtype:
        # NAdam's float32 mu_product (ASGD's eta and mu) comes back float64 (torch.optim does
        # the same), so the resumed run computes it in float64 from there on: rounding apart,
        # no more
        loose, tol, _ = SCALAR_STATE[name]
        assert resumed.state[copies[0]][loose[0]].dtype == torch.float64
        assert max_diff(copies, params) <= tol
        assert_same_state(resumed.state_dict(), opt.state_dict(), tol, loose)
    else:
        assert max_diff(copies, params) == 0.0
        assert_same_state(resumed.state_dict(), opt.state_dict(), 0.0)


@pytest.mark.parametrize("name", TORCH_NAMES)
@pytest.mark.parametrize("direction", ["torch to optimlab", "optimlab to torch"])
def test_checkpoints_move_between_torch_optim_and_optimlab(name, direction):
    """A state dict written by one library loads into the other, which continues as the
    writer would have."""
    first, second = (torch.optim, ot) if direction == "torch to optimlab" else (ot, torch.optim)
    kwargs = _decayed(name, 0.01)
    params = _params(4)
    writer = getattr(first, name)(params, **kwargs)
    gen = torch.Generator().manual_seed(5)
    for _ in range(6):
        _grads(params, gen)
        writer.step()
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    reader = getattr(second, name)(copies, **kwargs)
    saved = copy.deepcopy(writer.state_dict())
    reader.load_state_dict(saved)
    # what torch.optim itself makes of the same dict (its load casts NAdam's mu_product to
    # the parameter's dtype): the reader's state must have the same dtypes
    twin = getattr(torch.optim, name)([torch.nn.Parameter(p.detach().clone()) for p in params])
    twin.load_state_dict(copy.deepcopy(saved))
    for index, state in twin.state_dict()["state"].items():
        for key, value in state.items():
            assert reader.state_dict()["state"][index][key].dtype == value.dtype, (index, key)
    loose, _, tol = SCALAR_STATE.get(name, ((), TOL, TOL))
    assert_same_state(reader.state_dict(), writer.state_dict(), 0.0, loose)
    for _ in range(6):
        _step_both(reader, copies, writer, params, gen)
    # NAdam: the writer multiplies mu_product in float32, the reader in float64 (measured
    # 1.2e-12 apart after 6 steps, either direction); ASGD: eta and mu rounded or not
    assert max_diff(copies, params) <= tol
    assert_same_state(reader.state_dict(), writer.state_dict(), tol, loose)


def test_adagrad_starts_every_sum_at_the_optimizers_initial_value_as_torch():
    """torch.optim.Adagrad reads ``initial_accumulator_value`` from the optimizer's defaults,
    for the groups given at construction and for those added later (a group's own value is
    stored, never read): the same sums and steps in optimlab."""
    runs = []
    for library in (ot, torch.optim):
        params = _params(4)
        opt = library.Adagrad(
            [{"params": params[:1], "initial_accumulator_value": 5.0}, {"params": params[1:2]}],
            lr=0.1,
            initial_accumulator_value=0.5,
        )
        opt.add_param_group({"params": params[2:], "initial_accumulator_value": 2.0})
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            _grads(params, gen)
            opt.step()
        runs.append((params, [opt.state[p]["sum"] for p in params]))
    (mine, my_sums), (theirs, their_sums) = runs
    assert max_diff(mine, theirs) <= TOL and max_diff(my_sums, their_sums) <= TOL


@pytest.mark.parametrize("value", [0j, False, torch.tensor(False)])
def test_a_value_set_to_an_equal_one_of_another_type_is_checked_again(value):
    """0j, False and a boolean tensor equal 0, but are no valid hyperparameter: setting one
    between steps is refused before the step, as a new value."""
    params = _params()
    opt = ot.Adagrad(params, lr=0.1)
    _grads(params, torch.Generator().manual_seed(0))
    opt.step()
    before = [p.detach().clone() for p in params]
    opt.param_groups[0]["lr_decay"] = value
    with pytest.raises(TypeError, match="lr_decay must be a float >= 0"):
        opt.step()
    assert max_diff(params, before) == 0.0


@pytest.mark.parametrize("how", ["list betas", "tensor lr"])
def test_a_value_changed_in_place_between_steps_is_checked_again(how):
    """A list's element or a tensor's value changed in place (the group holds the same
    object) is checked before the next step like a new value."""
    params = _params()
    if how == "list betas":
        opt = ot.NAdam(params, betas=[0.9, 0.999])
    else:
        opt = ot.Adam(params, lr=torch.tensor(0.01))
    _grads(params, torch.Generator().manual_seed(0))
    opt.step()
    before = [p.detach().clone() for p in params]
    if how == "list betas":
        opt.param_groups[0]["betas"][1] = 1.5
        words = r"betas\[1\] must be a finite float in \[0, 1\)"
    else:
        opt.param_groups[0]["lr"].fill_(-1.0)
        words = "lr must be a finite float >= 0"
    with pytest.raises(ValueError, match=words):
        opt.step()
    assert max_diff(params, before) == 0.0


def test_a_boolean_tensor_beta_gets_torchs_message():
    """torch compares a boolean tensor beta and refuses True with its words; optimlab too
    (its own TypeError comes only where torch's test lets the value through)."""
    kwargs = dict(betas=(torch.tensor(True), 0.9))
    for library in (ot, torch.optim):
        with pytest.raises(ValueError, match=r"^Invalid beta parameter at index 0: True$"):
            library.Adam(_params(), **kwargs)
    with pytest.raises(TypeError, match=r"betas\[0\] must be a float in \[0, 1\)"):
        ot.NAdam(_params(), betas=(torch.tensor(False), 0.9))


@pytest.mark.parametrize("source", ["Adam", "AdamW"])
def test_adamw_loads_any_adam_state_with_decoupled_decay_as_torch(source):
    """torch's AdamW decays decoupled whatever it loads (an Adam state dict, an old AdamW one
    without the key); its Adam keeps the key it loads."""
    for library in (ot, torch.optim):
        saved = copy.deepcopy(getattr(library, source)(_params(), weight_decay=0.1).state_dict())
        saved_without = copy.deepcopy(saved)
        del saved_without["param_groups"][0]["decoupled_weight_decay"]
        for state_dict in (saved, saved_without):
            adamw = library.AdamW(_params())
            adamw.load_state_dict(copy.deepcopy(state_dict))
            assert adamw.param_groups[0]["decoupled_weight_decay"] is True
        adam = library.Adam(_params())
        adam.load_state_dict(copy.deepcopy(saved))
        assert adam.param_groups[0]["decoupled_weight_decay"] is (source == "AdamW")
    # and the numbers: ours as torch's after loading an Adam state into AdamW
    runs = []
    for library in (ot, torch.optim):
        params = _params(3)
        adam = library.Adam(params, lr=0.01, weight_decay=0.1)
        _step_both(adam, params, adam, params, torch.Generator().manual_seed(0))
        twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
        adamw = library.AdamW(twin, lr=0.01)
        adamw.load_state_dict(copy.deepcopy(adam.state_dict()))
        gen = torch.Generator().manual_seed(1)
        for _ in range(3):
            _grads(twin, gen)
            adamw.step()
        runs.append(twin)
    assert max_diff(*runs) <= TOL


def test_loading_replaces_the_buffers_the_fused_kernel_had_cached():
    """After ``load_state_dict`` the step reads the loaded moments, not the old buffers."""
    params = _params(1)
    opt = ot.Adam(params, lr=0.01)
    gen = torch.Generator().manual_seed(2)
    _grads(params, gen)
    opt.step()  # caches views of the first buffers
    other = _params(1)
    donor = torch.optim.Adam(other, lr=0.01)
    for _ in range(5):
        _grads(other, gen)
        donor.step()
    # a copy: torch's state_dict() hands out the live buffers, and so does loading it
    opt.load_state_dict(copy.deepcopy(donor.state_dict()))
    for p, q in zip(params, other, strict=True):
        p.data.copy_(q.detach())
    _step_both(opt, params, donor, other, gen)
    assert max_diff(params, other) <= TOL


def test_replacing_parameter_data_is_seen_by_the_fused_path():
    """``p.data = new tensor`` (a common idiom) moves the parameter's memory; the next step
    updates the new memory, as torch.optim does."""
    ours, theirs = _params(3), _params(3)
    our_opt, their_opt = (
        ot.SGD(ours, lr=0.1, momentum=0.9),
        torch.optim.SGD(theirs, lr=0.1, momentum=0.9),
    )
    gen = torch.Generator().manual_seed(4)
    for step in range(6):
        if step == 3:
            for p, q in zip(ours, theirs, strict=True):
                p.data = p.data.clone() * 0.5
                q.data = q.data.clone() * 0.5
        _step_both(our_opt, ours, their_opt, theirs, gen)
    assert max_diff(ours, theirs) <= TOL


def test_a_state_buffer_replaced_by_hand_is_the_one_updated():
    """Resetting a moment by assigning a new tensor to ``opt.state[p][key]`` (a common way to
    restart Adam's moments) is seen by the fused path, as by torch.optim."""
    ours, theirs = _params(6), _params(6)
    our_opt, their_opt = ot.Adam(ours, lr=0.02), torch.optim.Adam(theirs, lr=0.02)
    gen = torch.Generator().manual_seed(6)
    for step in range(8):
        if step == 4:
            for opt, params in ((our_opt, ours), (their_opt, theirs)):
                for p in params:
                    opt.state[p]["exp_avg"] = torch.zeros_like(p)
                    opt.state[p]["exp_avg_sq"] = torch.zeros_like(p)
        _step_both(our_opt, ours, their_opt, theirs, gen)
    assert max_diff(ours, theirs) <= TOL
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), TOL)


@pytest.mark.parametrize("engine", ["auto", "torch"])
def test_options_switched_on_between_steps(engine):
    """Momentum switched on after 3 steps (its buffer starts then, from the gradient), then
    Nesterov, then weight decay: torch.optim's result at every step."""
    ours, theirs = _params(9), _params(9)
    our_opt = ot.SGD(ours, lr=0.05, engine=engine)
    their_opt = torch.optim.SGD(theirs, lr=0.05)
    gen = torch.Generator().manual_seed(9)
    changes = {3: {"momentum": 0.9}, 6: {"nesterov": True}, 8: {"weight_decay": 0.1}}
    for step in range(10):
        for opt in (our_opt, their_opt):
            opt.param_groups[0].update(changes.get(step, {}))
        _step_both(our_opt, ours, their_opt, theirs, gen)
        assert max_diff(ours, theirs) <= TOL, step
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), TOL)


# -- bad input: a clear error, nothing lost ------------------------------------------------


#: (optimizer, arguments, exception, message); ``torch``: torch.optim refuses them too, with
#: the same exception and message
BAD_ARGUMENTS = [
    ("SGD", dict(lr=-0.1), ValueError, "Invalid learning rate: -0.1", True),
    ("SGD", dict(lr=0.1, momentum=-1.5), ValueError, "Invalid momentum value: -1.5", True),
    (
        "SGD",
        dict(lr=0.1, nesterov=True),
        ValueError,
        "Nesterov momentum requires a momentum and zero dampening",
        True,
    ),
    (
        "SGD",
        dict(lr=0.1, momentum=0.9, dampening=0.5, nesterov=True),
        ValueError,
        "Nesterov momentum requires a momentum and zero dampening",
        True,
    ),
    ("Adam", dict(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0", True),
    ("Adam", dict(betas=(-0.1, 0.9)), ValueError, "Invalid beta parameter at index 0: -0.1", True),
    ("Adam", dict(eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08", True),
    ("AdamW", dict(weight_decay=-0.01), ValueError, "Invalid weight_decay value: -0.01", True),
    ("RMSprop", dict(alpha=-0.5), ValueError, "Invalid alpha value: -0.5", True),
    ("Adagrad", dict(lr_decay=-1.0), ValueError, "Invalid lr_decay value: -1.0", True),
    (
        "Adagrad",
        dict(initial_accumulator_value=-1.0),
        ValueError,
        "Invalid initial_accumulator_value value: -1.0",
        True,
    ),
    ("Adadelta", dict(rho=1.5), ValueError, "Invalid rho value: 1.5", True),
    ("NAdam", dict(momentum_decay=-0.1), ValueError, "Invalid momentum_decay value: -0.1", True),
    (
        "Lion",
        dict(betas=(0.9, 1.2)),
        ValueError,
        "betas[1] must be a finite float in [0, 1), got 1.2",
        False,
    ),
    # optimlab's own, where torch lets the value through (to fail later, or silently)
    ("SGD", dict(lr=float("nan")), ValueError, "lr must be a finite float >= 0, got nan", False),
    ("Adam", dict(lr=float("inf")), ValueError, "lr must be a finite float >= 0, got inf", False),
    ("SGD", dict(lr=True), TypeError, "lr must be a float >= 0, got True of type bool", False),
    ("Adam", dict(amsgrad="yes"), TypeError, "amsgrad must be True or False, got 'yes'", False),
    (
        "NAdam",
        dict(betas=(0.9, 0.99, 0.5)),
        ValueError,
        "betas must be a pair (beta_1, beta_2), each in [0, 1), got (0.9, 0.99, 0.5)",
        False,
    ),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "message", "torch_too"), BAD_ARGUMENTS)
def test_bad_hyperparameters_are_refused_with_torchs_words_or_the_argument_named(
    name, kwargs, error, message, torch_too
):
    with pytest.raises(error) as ours:
        getattr(ot, name)(_params(), **kwargs)
    assert str(ours.value) == message
    if torch_too:
        with pytest.raises(error) as theirs:
            getattr(torch.optim, name)(_params(), **kwargs)
        assert str(theirs.value) == message


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", dict(lr=0.1, momentum=1.5, dampening=-0.5)),
        ("RMSprop", dict(alpha=1.5, momentum=2.0)),
        ("Adam", dict(differentiable=True, capturable=True)),
        ("Adam", dict(betas=(torch.tensor(0.9), torch.tensor(0.99)))),
    ],
)
def test_values_torch_accepts_are_accepted(name, kwargs):
    """torch.optim's ranges, not stricter ones (above 1 a momentum or alpha diverges, but
    torch lets the user try)."""
    opt = getattr(ot, name)(_params(), **kwargs)
    reference = getattr(torch.optim, name)(_params(), **kwargs)
    assert opt.param_groups[0].keys() == reference.param_groups[0].keys()


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        ot.Adam(_params(), engine="cuda-graphs")


def test_a_value_set_between_steps_is_checked_before_the_step():
    """A group value set by hand (or a scheduler) out of range stops the step before any
    parameter moves; set back, training continues."""
    params = _params()
    opt = ot.Adam(params, lr=0.01)
    gen = torch.Generator().manual_seed(0)
    _grads(params, gen)
    opt.step()
    before = [p.detach().clone() for p in params]
    opt.param_groups[0]["betas"] = (0.9, 1.0)
    _grads(params, gen)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        opt.step()
    assert max_diff(params, before) == 0.0
    opt.param_groups[0]["betas"] = (0.9, 0.999)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    opt.param_groups[0]["lr"] = 0.01
    opt.step()
    assert max_diff(params, before) > 0


def test_a_bad_value_in_a_later_group_stops_the_step_before_the_first_group_moves():
    params = _params()
    opt = ot.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.01)
    _grads(params, torch.Generator().manual_seed(0))
    opt.param_groups[1]["eps"] = -1.0
    before = [p.detach().clone() for p in params]
    with pytest.raises(ValueError, match="eps"):
        opt.step()
    assert max_diff(params, before) == 0.0 and not opt.state


def test_add_param_group_refuses_a_bad_group_and_keeps_the_others():
    params = _params()
    opt = ot.SGD(params[:1], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": params[1:], "lr": -0.5})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": params[1:], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": params[:1]})


def _trained_adam():
    params = _params(8)
    opt = ot.Adam(params, lr=0.01, amsgrad=True)
    gen = torch.Generator().manual_seed(8)
    for _ in range(3):
        _grads(params, gen)
        opt.step()
    return params, opt


def _corrupt(state_dict, how):
    sd = copy.deepcopy(state_dict)
    if how == "shape":
        sd["state"][0]["exp_avg"] = torch.zeros(2, 2, dtype=torch.float64)
    elif how == "negative step":
        sd["state"][1]["step"] = torch.tensor(-3.0)
    elif how == "nan step":
        sd["state"][1]["step"] = torch.tensor(float("nan"))
    elif how == "not a tensor":
        sd["state"][2]["exp_avg_sq"] = [1.0, 2.0]
    elif how == "bad hyperparameter":
        sd["param_groups"][0]["betas"] = (0.9, 1.5)
    elif how == "wrong group size":
        sd["param_groups"][0]["params"] = [0, 1]
    return sd


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("shape", ["parameter 0", "exp_avg", "shape"]),
        ("negative step", ["parameter 1", "step"]),
        ("nan step", ["parameter 1", "step"]),
        ("not a tensor", ["parameter 2", "exp_avg_sq", "tensor"]),
        ("bad hyperparameter", ["betas[1]"]),
        ("wrong group size", ["size"]),
    ],
)
def test_a_corrupt_state_dict_is_refused_and_nothing_is_lost(how, words):
    params, opt = _trained_adam()
    good = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError) as error:
        opt.load_state_dict(_corrupt(good, how))
    for word in words:
        assert word in str(error.value), (word, str(error.value))
    assert_same_state(opt.state_dict(), good, 0.0)
    # and it still trains as if nothing had happened
    twin_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    twin = ot.Adam(twin_params, lr=0.01, amsgrad=True)
    twin.load_state_dict(good)
    _step_both(twin, twin_params, opt, params, torch.Generator().manual_seed(1))
    assert max_diff(params, twin_params) == 0.0


def _sparse_run(library, dtype, steps=30, sparse_dims=1, **kwargs):
    """An embedding table (50 x 8) trained on random index batches (repeated indices
    included; never the last fifth of the rows) with ``library.Adagrad``; ``sparse_dims=2``:
    a (10, 5, 8) table indexed by pairs. Returns (the table, its ``sum`` state)."""
    torch.manual_seed(0)
    shape = (50, 8) if sparse_dims == 1 else (10, 5, 8)
    table = torch.nn.Parameter(torch.randn(shape, dtype=dtype))
    opt = library.Adagrad([table], **kwargs)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        # the last fifth of the first dimension is never named
        highs = [shape[0] - shape[0] // 5, *shape[1:-1]]
        rows = torch.stack([torch.randint(0, n, (20,), generator=gen) for n in highs])
        values = torch.randn(20, shape[-1], generator=gen, dtype=torch.float64).to(dtype)
        table.grad = torch.sparse_coo_tensor(
            rows, values, shape, check_invariants=True
        )  # not coalesced
        opt.step()
    return table.detach(), opt.state[table]["sum"]


def _relative(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")  # torch.optim's own warning
@pytest.mark.parametrize("sparse_dims", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "kwargs",
    [dict(lr=0.1), dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.3, maximize=True)],
    ids=["defaults", "lr_decay,initial,maximize"],
)
def test_sparse_gradients_update_adagrad_like_torch(kwargs, dtype, sparse_dims):
    """The lecture's sparse features: an embedding's sparse gradient updates only the rows it
    names (summing an index named twice), as torch.optim.Adagrad does; untouched rows keep
    their values and sums."""
    ours, our_sum = _sparse_run(ot, dtype, sparse_dims=sparse_dims, **kwargs)
    theirs, their_sum = _sparse_run(torch.optim, dtype, sparse_dims=sparse_dims, **kwargs)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert _relative(ours, theirs) <= tol
    assert _relative(our_sum, their_sum) <= tol
    start, _ = _sparse_run(ot, dtype, steps=0, sparse_dims=sparse_dims, **kwargs)
    untouched = our_sum == kwargs.get("initial_accumulator_value", 0)
    assert untouched.any() and (~untouched).any()
    assert torch.equal(ours[untouched], start[untouched])


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_sparse_embedding_beside_dense_layers():
    """A model with a sparse embedding and dense layers: one optimizer, both kinds of gradient,
    torch's result."""

    def run(library):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Embedding(30, 6, sparse=True), torch.nn.Flatten(), torch.nn.Linear(18, 2)
        ).double()
        opt = library.Adagrad(model.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(2)
        for _ in range(20):
            x = torch.randint(0, 30, (16, 3), generator=gen)
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
        return list(model.parameters())

    assert max_diff(run(ot), run(torch.optim)) <= TOL


@pytest.mark.parametrize(
    ("optimizer", "kwargs", "words"),
    [
        ("Adagrad", dict(lr=0.1, weight_decay=0.1), "weight_decay"),
        ("Adam", dict(lr=0.1), "Adam does not support sparse gradients"),
        ("SGD", dict(lr=0.1, weight_decay=0.1), r"add\(sparse, dense\) is not supported"),
        ("RMSprop", dict(lr=0.1), "RMSprop does not support sparse gradients"),
    ],
)
def test_a_sparse_gradient_that_cannot_be_applied_is_refused_before_anything_moves(
    optimizer, kwargs, words
):
    """A dense parameter first, then a table with a sparse gradient: the error comes before the
    dense one has moved (raised from the update loop it would come after)."""
    dense = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    table = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
    opt = getattr(ot, optimizer)([dense, table], **kwargs)
    dense.grad = torch.ones(3, dtype=torch.float64)
    table.grad = torch.sparse_coo_tensor(
        torch.tensor([[1]]), torch.ones(1, 2, dtype=torch.float64), (4, 2), check_invariants=True
    )
    with pytest.raises(RuntimeError, match=words):
        opt.step()
    assert torch.equal(dense.detach(), torch.ones(3, dtype=torch.float64))
    assert torch.equal(table.detach(), torch.ones(4, 2, dtype=torch.float64))


@pytest.mark.parametrize("case", ["float16", "non-contiguous gradient"])
def test_forcing_the_fused_engine_where_it_cannot_run_says_why_before_anything_moves(case):
    first = torch.nn.Parameter(torch.ones(3))
    dtype = torch.float16 if case == "float16" else torch.float32
    second = torch.nn.Parameter(torch.ones(4, 2, dtype=dtype))
    opt = ot.Adam([first, second], engine="fused")
    first.grad = torch.ones(3)
    if case == "float16":
        second.grad = torch.ones_like(second)
    else:
        second.grad = torch.ones(2, 4).t()
    with pytest.raises(TypeError, match="float16" if case == "float16" else "contiguous: False"):
        opt.step()
    assert torch.equal(first.detach(), torch.ones(3)) and not opt.state


# -- other dtypes, complex, strided, engines -----------------------------------------------


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_both_engines_take_the_same_steps(name):
    kwargs = _decayed(name, 0.02)
    fused, fused_opt = _run(lambda ps: getattr(ot, name)(ps, engine="fused", **kwargs))
    ops, ops_opt = _run(lambda ps: getattr(ot, name)(ps, engine="torch", **kwargs))
    assert max_diff(fused, ops) <= TOL
    assert_same_state(fused_opt.state_dict(), ops_opt.state_dict(), TOL)


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_the_fused_step_updates_the_tensors_own_memory(name):
    """engine="fused" runs on the parameter's and the state's own storage: the same memory
    before and after the step, the values changed in place, no tensor replaced."""
    params = _params(7)
    opt = getattr(ot, name)(params, engine="fused", **ARGS[name])
    gen = torch.Generator().manual_seed(7)
    _grads(params, gen)
    opt.step()
    where = {id(p): p.data_ptr() for p in params}
    buffers = {(id(p), key): (t, t.data_ptr()) for p in params for key, t in opt.state[p].items()}
    before = [p.detach().clone() for p in params]
    _grads(params, gen)
    opt.step()
    assert all(p.data_ptr() == where[id(p)] for p in params)
    for p in params:
        for key, t in opt.state[p].items():
            assert buffers[id(p), key][0] is t and t.data_ptr() == buffers[id(p), key][1]
    assert max_diff(params, before) > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", TORCH_NAMES)
def test_half_precision_takes_the_torch_path_and_matches_torch(name, dtype):
    """float16/bfloat16 parameters: the torch-ops path, the state in the parameter's dtype as
    in torch.optim, and the same values within a few units of the last place (the two may
    round an intermediate differently): deviation <= 8 ulps of the magnitude over 10 steps."""
    kwargs = ARGS[name]
    ours, our_opt = _run(lambda ps: getattr(ot, name)(ps, **kwargs), steps=10, dtype=dtype)
    theirs, their_opt = _run(
        lambda ps: getattr(torch.optim, name)(ps, **kwargs), steps=10, dtype=dtype
    )
    for p in ours:
        assert p.dtype == dtype
    eps = torch.finfo(dtype).eps
    for x, y in zip(ours, theirs, strict=True):
        scale = max(float(y.detach().abs().max()), 1.0)
        assert float((x.detach().double() - y.detach().double()).abs().max()) <= 8 * eps * scale
    a, b = our_opt.state_dict()["state"], their_opt.state_dict()["state"]
    for index, state in b.items():
        for key, value in state.items():
            assert a[index][key].dtype == value.dtype, (index, key)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("name", TORCH_NAMES)
def test_complex_parameters_as_torch_updates_them(name, dtype):
    """Complex parameters are updated as pairs of reals (torch.view_as_real), as in torch."""
    tol = 1e-5 if dtype == torch.complex64 else TOL

    def run(cls):
        gen = torch.Generator().manual_seed(11)
        params = [torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=dtype))]
        opt = cls(params, **ARGS[name])
        for _ in range(10):
            params[0].grad = torch.randn(4, 3, generator=gen, dtype=dtype)
            opt.step()
        return params, opt

    ours, our_opt = run(getattr(ot, name))
    theirs, their_opt = run(getattr(torch.optim, name))
    assert ours[0].dtype == dtype
    scale = float(theirs[0].detach().abs().max())
    assert max_diff(ours, theirs) <= tol * scale
    assert_same_state(our_opt.state_dict(), their_opt.state_dict(), tol * 100)


def test_a_transposed_parameter_is_updated_in_place_like_torch():
    """A non-contiguous parameter (a transposed view) takes the torch path, in place."""
    base_ours = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base_theirs = base_ours.clone()
    ours = torch.nn.Parameter(base_ours.t())
    theirs = torch.nn.Parameter(base_theirs.t())
    assert not ours.is_contiguous()
    our_opt, their_opt = ot.Adam([ours], lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        g = torch.randn(4, 6, dtype=torch.float64, generator=gen)
        ours.grad, theirs.grad = g.clone(), g.clone()
        our_opt.step()
        their_opt.step()
    assert float((ours.detach() - theirs.detach()).abs().max()) <= TOL


def test_grad_scaler_and_swalr_as_with_torch_optim():
    """Mixed-precision habits: ``GradScaler`` unscales the gradients in place, skips the step
    whose gradients hold an Inf (step 3 here: no parameter moves, no step counted) and halves
    its scale; ``swa_utils.SWALR`` anneals the learning rate. Same as torch.optim.Adam."""

    def run(library):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 3)
        opt = library.Adam(model.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        swa = torch.optim.swa_utils.SWALR(opt, swa_lr=0.001, anneal_epochs=3)
        gen = torch.Generator().manual_seed(1)
        scales, lrs = [], []
        for step in range(8):
            x = torch.randn(4, 5, generator=gen)
            if step == 3:
                x[0, 0] = float("inf")
                before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad()
            scaler.scale((model(x) ** 2).mean()).backward()
            scaler.step(opt)
            scaler.update()
            if step == 3:
                assert max_diff(list(model.parameters()), before) == 0.0
            swa.step()
            scales.append(scaler.get_scale())
            lrs.append(opt.param_groups[0]["lr"])
        return list(model.parameters()), scales, lrs, opt.state_dict()

    ours, our_scales, our_lrs, our_state = run(ot)
    theirs, their_scales, their_lrs, their_state = run(torch.optim)
    assert our_scales == their_scales and our_scales[3] == 512.0
    assert our_lrs == their_lrs
    assert max_diff(ours, theirs) <= 1e-6
    assert float(our_state["state"][0]["step"]) == 7.0
    assert_same_state(our_state, their_state, 1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "maximize": True}])
# (not ASGD: torch.optim.ASGD reads mu.item(), which a meta tensor cannot give; its step,
# eta and mu live on the parameter's device, see tests/test_asgd.py)
@pytest.mark.parametrize("name", [n for n in [*NAMES, "Lion"] if n != "ASGD"])
def test_another_device_takes_the_torch_path_with_torchs_state_layout(name, kwargs):
    """Tensors on another device (here "meta", which runs every torch operation without
    values: the stand-in for a GPU on a machine without one) take the torch-ops path; the
    buffers live on the parameter's device and the step counts on the CPU, as torch.optim
    places them."""

    if name in NO_DECAY:
        kwargs = {k: v for k, v in kwargs.items() if k != "weight_decay"}

    def layout(library):
        p = torch.nn.Parameter(torch.empty(4, 3, device="meta"))
        opt = getattr(library, name)([p], **kwargs)
        for _ in range(2):
            p.grad = torch.empty(4, 3, device="meta")
            opt.step()
        return {key: (t.device.type, t.dtype, tuple(t.shape)) for key, t in opt.state[p].items()}

    ours = layout(ot)
    assert all(
        device == ("cpu" if key in ("step", "mu_product") else "meta")
        for key, (device, _, _) in ours.items()
    )
    if name != "Lion":
        assert ours == layout(torch.optim)


# -- hooks, pickling, copying --------------------------------------------------------------


def test_step_hooks_run_around_the_step():
    params = _params()
    opt = ot.Adam(params, lr=0.1)
    seen = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(("pre", len(o.state))))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(("post", len(o.state))))
    handle = register_optimizer_step_post_hook(
        lambda o, args, kwargs: seen.append(("global", type(o).__name__))
    )
    try:
        _grads(params, torch.Generator().manual_seed(0))
        opt.step()
    finally:
        handle.remove()
    assert seen == [("pre", 0), ("post", 3), ("global", "Adam")]


def test_state_dict_hooks():
    params = _params()
    opt = ot.SGD(params, lr=0.1, momentum=0.9)
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "note": "optimlab"})
    assert opt.state_dict()["note"] == "optimlab"
    loaded = []
    opt.register_load_state_dict_post_hook(lambda o: loaded.append(True))
    opt.load_state_dict({k: v for k, v in opt.state_dict().items() if k != "note"})
    assert loaded == [True]


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_pickled_or_copied_optimizer_continues_exactly(how):
    """The copy keeps the engine choice and the state; the fused views are rebuilt for the
    copied tensors (the original's memory is left alone)."""
    model = torch.nn.Linear(4, 3).double()
    opt = ot.RMSprop(model.parameters(), lr=0.01, momentum=0.5, engine="fused")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, dtype=torch.float64, generator=gen)

    def train(m, o, steps):
        for _ in range(steps):
            o.zero_grad()
            (m(x) ** 2).mean().backward()
            o.step()

    train(model, opt, 3)
    pair = {"model": model, "opt": opt}
    if how == "pickle":
        copied = pickle.loads(pickle.dumps(pair))
    else:
        copied = copy.deepcopy(pair)
    model2, opt2 = copied["model"], copied["opt"]
    assert opt2.engine == "fused" and type(opt2) is ot.RMSprop
    before = [p.detach().clone() for p in model.parameters()]
    train(model2, opt2, 4)
    assert max_diff(list(model.parameters()), before) == 0.0  # the original did not move
    train(model, opt, 4)
    assert max_diff(list(model2.parameters()), list(model.parameters())) == 0.0


# -- importing -----------------------------------------------------------------------------


def test_without_torch_the_import_error_says_how_to_install_it():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n"
        "    import optimlab.torch\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'optimlab[torch]'" in out


def test_importing_optimlab_does_not_import_torch():
    code = "import sys, optimlab; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_nan_gradient_propagates_like_torch_by_default():
    """By default optimlab.torch, like torch.optim, does not check gradients (a NaN reaches
    the parameter); ``nan_policy`` opts in (below)."""
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = ot.SGD([p], lr=0.1)
    p.grad = torch.tensor([1.0, math.nan, 0.0], dtype=torch.float64)
    opt.step()
    assert math.isnan(float(p.detach()[1])) and float(p.detach()[0]) == pytest.approx(0.9)


# -- nan_policy: optimlab's own opt-in check -------------------------------------------------


def _bad_gradient(params, gen, where, value):
    _grads(params, gen)
    params[where].grad.view(-1)[0] = value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_nan_policy_raise_names_the_parameter_and_changes_nothing(name, value):
    """A non-finite gradient (in the second of three parameters, so the first would have been
    updated by a check made on the way): FloatingPointError naming parameter 1 and the count,
    no parameter, state or step count changed; training then goes on as if the bad step had
    never been asked for."""
    kwargs = ARGS[name]
    params = _params(12)
    twin_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = getattr(ot, name)(params, nan_policy="raise", **kwargs)
    twin = getattr(ot, name)(twin_params, **kwargs)
    gen = torch.Generator().manual_seed(12)
    for _ in range(3):
        _step_both(opt, params, twin, twin_params, gen)
    before = [p.detach().clone() for p in params]
    state = copy.deepcopy(opt.state_dict())
    _bad_gradient(params, gen, 1, value)
    with pytest.raises(FloatingPointError, match=r"parameter 1 \(shape \(5,\)\) has 1 non-fin"):
        opt.step()
    assert max_diff(params, before) == 0.0
    assert_same_state(opt.state_dict(), state, 0.0)
    for _ in range(3):
        _step_both(opt, params, twin, twin_params, gen)
    assert max_diff(params, twin_params) == 0.0


@pytest.mark.parametrize("name", [*NAMES, "Lion"])
def test_nan_policy_skip_skips_the_step_and_counts_it(name):
    params = _params(13)
    twin_params = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = getattr(ot, name)(params, nan_policy="skip", **ARGS[name])
    twin = getattr(ot, name)(twin_params, **ARGS[name])
    gen = torch.Generator().manual_seed(13)
    for step in range(6):
        if step == 2:
            _bad_gradient(params, gen, 2, math.nan)
            opt.step()
            continue
        _step_both(opt, params, twin, twin_params, gen)
    assert opt.skipped_steps == 1
    assert max_diff(params, twin_params) == 0.0
    assert_same_state(opt.state_dict(), twin.state_dict(), 0.0)


@pytest.mark.parametrize(
    "kind", ["float16", "complex128", "transposed", "sparse", "torch engine", "large"]
)
def test_nan_policy_checks_every_kind_of_gradient(kind):
    """The check on every path: the fused one's vectorized read (a 40,000-element gradient:
    the parallel loop), and torch's for half, complex, strided and sparse gradients."""
    dtype = {"float16": torch.float16, "complex128": torch.complex128}.get(kind, torch.float64)
    shape = (200, 200) if kind == "large" else (4, 3)
    p = torch.nn.Parameter(torch.zeros(shape, dtype=dtype))
    cls = ot.Adagrad if kind == "sparse" else ot.Adam
    engine = "torch" if kind == "torch engine" else "auto"
    opt = cls([p], nan_policy="raise", engine=engine)
    if kind == "sparse":
        values = torch.tensor([[1.0, math.nan, 2.0]], dtype=dtype)
        p.grad = torch.sparse_coo_tensor(torch.tensor([[2]]), values, shape, check_invariants=True)
    elif kind == "transposed":
        p.grad = torch.ones(shape[::-1], dtype=dtype).t()
        p.grad[-1, -1] = math.nan
    else:
        p.grad = torch.ones(shape, dtype=dtype)
        p.grad.view(-1)[-1] = math.inf
    with pytest.raises(FloatingPointError, match="parameter 0"):
        opt.step()
    assert not p.detach().abs().sum()
    p.grad = torch.ones(shape, dtype=dtype) if kind != "transposed" else p.grad.nan_to_num()
    if kind == "sparse":
        p.grad = torch.sparse_coo_tensor(
            torch.tensor([[2]]), torch.ones(1, 3, dtype=dtype), shape, check_invariants=True
        )
    opt.step()
    assert p.detach().abs().sum() > 0


def test_nan_policy_is_validated_and_survives_pickling():
    with pytest.raises(ValueError, match="nan_policy"):
        ot.SGD(_params(), lr=0.1, nan_policy="ignore")
    opt = ot.SGD(_params(), lr=0.1, nan_policy="skip")
    copied = pickle.loads(pickle.dumps(opt))
    assert copied.nan_policy == "skip" and copied.skipped_steps == 0
    # and it is not a group key: state dicts keep torch's structure
    assert "nan_policy" not in opt.state_dict()["param_groups"][0]
