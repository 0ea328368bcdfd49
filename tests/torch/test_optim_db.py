"""optimlab.torch against torch.optim on torch's own optimizer database, ``optim_db``.

For every optim_db entry whose optimizer optimlab.torch has (see ``_optim_db.py``), every CPU
configuration, with the global flags the entry supports (``foreach``, ``fused``,
``differentiable``), as torch's own tests take them:

- **numerics**: float64, float32 and (where the entry supports complex) complex64 parameters,
  a 0-d one, a vector, a matrix and a transposed (non-contiguous, so the torch-ops path)
  matrix, trained by optimlab.torch and by torch.optim on the same gradients for 7 steps (one
  parameter without a gradient at step 2, all gradients zero at step 4): after every step
  every parameter and every state tensor within 1e-9 (float64) or 1e-5 (float32, complex64)
  of torch's, relative to the tensor's largest value; step counts, state keys in order,
  dtypes, devices, and the state_dict's structure and param_groups identical;
- **error inputs**: every ``ErrorOptimizerInput``: the same exception type (or warning), raised
  at the same moment (construction or step), with exactly torch's message (which matches
  optim_db's ``error_regex``);
- **hooks and state dicts**: step pre/post hooks (local and global, in torch's order),
  state_dict and load_state_dict pre/post hooks, a state_dict round trip that continues
  bit for bit, cross-loading both ways with torch.optim, and an older checkpoint (the flags
  optim_db lists as added later removed, steps as plain numbers) loaded by both.

``test_optim_db_features.py`` covers sparse gradients, differentiable steps, the LR
schedulers, ``fused`` and ``capturable``. The cases of each kind are counted by
``pytest tests/torch/test_optim_db.py -q`` (one test per case); the numerical deviations go to
the closing summary.
"""

from __future__ import annotations

import copy
import re
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch.optim.optimizer import (  # noqa: E402
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from .._records import RESULTS  # noqa: E402
from . import _optim_db as odb  # noqa: E402

pytestmark = pytest.mark.conformance

STEPS = 7
TOL = {torch.float64: 1e-9, torch.float32: 1e-5, torch.complex64: 1e-5}
#: a 0-d scalar, a vector, a matrix; and a transposed matrix (the torch-ops path)
SHAPES = ((), (7,), (4, 6))
#: for an optimizer of matrices only (Muon): a row, a tall and a wide matrix; and the
#: transposed one
MATRIX_SHAPES = ((1, 7), (7, 3), (4, 6))
PEER = "torch.optim vs optimlab.torch (optim_db)"


def _make_params(dtype, seed=0, info=None):
    """The parameters of a case (``info``: the optimizer's, for Muon's matrices)."""
    gen = torch.Generator().manual_seed(seed)
    matrices = info is not None and getattr(odb.ours(info), "matrices_only", False)
    params = [
        torch.randn(s, generator=gen, dtype=dtype) for s in (MATRIX_SHAPES if matrices else SHAPES)
    ]
    params.append(torch.randn(6, 4, generator=gen, dtype=dtype).t())
    return params


def _clone(params):
    return [p.detach().clone(memory_format=torch.preserve_format) for p in params]


def _set_grads(params, twins, gen, step, sparse=False):
    """The same gradients for two lists of parameters: step 2 leaves one without, step 4
    gives all zeros (``sparse``: as sparse COO tensors)."""
    for i, (p, q) in enumerate(zip(params, twins, strict=True)):
        if step == 2 and i == 1:
            p.grad = q.grad = None
            continue
        g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if step == 4:
            g = torch.zeros_like(g)
        p.grad, q.grad = _grad_like(p, g, sparse), _grad_like(q, g, sparse)


def _grad_like(p, g, sparse=False):
    """``g`` laid out like the parameter ``p``, as autograd's gradients are (torch's fused
    kernels read a transposed parameter and a contiguous gradient element by element in
    memory, pairing the wrong elements); ``sparse``: as a sparse COO tensor, as torch's own
    tests give an optimizer that ``only_supports_sparse_grads`` (SparseAdam)."""
    dense = torch.empty_like(p).copy_(g)
    return dense.to_sparse() if sparse else dense


def _sparse_only(config) -> bool:
    """Whether optim_db's entry takes sparse gradients only (SparseAdam)."""
    return bool(config.info.only_supports_sparse_grads)


def _real(t):
    return torch.view_as_real(t) if t.is_complex() else t


def deviation(ours, theirs) -> float:
    """max |ours - theirs| over the largest |theirs| of the tensor (0 when both are 0)."""
    # (torch.optim.SGD keeps the momentum of sparse gradients as a sparse tensor)
    ours, theirs = (t.to_dense() if t.is_sparse else t for t in (ours, theirs))
    a, b = _real(ours.detach()).double(), _real(theirs.detach()).double()
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    scale = float(b.abs().max()) if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


def compare_states(our_opt, their_opt, ours, theirs, tol) -> float:
    """Parameters and every state tensor within ``tol``; step counts equal; the same keys
    in the same order, dtypes and devices. Returns the largest deviation."""
    worst = 0.0
    for index, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        worst = max(worst, deviation(p, q))
        mine, torchs = our_opt.state.get(p, {}), their_opt.state.get(q, {})
        assert list(mine) == list(torchs), (index, list(mine), list(torchs))
        for key, value in torchs.items():
            assert isinstance(mine[key], torch.Tensor) == isinstance(value, torch.Tensor), key
            if not isinstance(value, torch.Tensor):
                assert mine[key] == value, key
                continue
            assert mine[key].dtype == value.dtype, (index, key, mine[key].dtype, value.dtype)
            assert mine[key].device == value.device, (index, key)
            assert mine[key].shape == value.shape, (index, key)
            if key == "step":
                assert torch.equal(mine[key], value), (index, mine[key], value)
            else:
                worst = max(worst, deviation(mine[key], value))
    assert worst <= tol, worst
    return worst


def _same_value(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    return type(a) is type(b) and a == b


def assert_same_layout(ours: dict, theirs: dict) -> None:
    """Two state dicts with the same structure: parameter indices and state keys in order,
    and equal param_groups (keys in order, values of the same type)."""
    assert list(ours["state"]) == list(theirs["state"])
    for index, state in theirs["state"].items():
        assert list(ours["state"][index]) == list(state), index
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for mine, torchs in zip(ours["param_groups"], theirs["param_groups"], strict=True):
        assert list(mine) == list(torchs)
        for key, value in torchs.items():
            assert _same_value(mine[key], value), (key, mine[key], value)


# -- numerics -------------------------------------------------------------------------------


def _numerics_cases():
    cases = []
    for dtype in (torch.float64, torch.float32):
        cases += [pytest.param(c, dtype, id=f"{c.id}-{dtype}") for c in odb.all_configs(dtype)]
    for info in odb.INFOS:
        if info.supports_complex:
            dtype = torch.complex64  # torch's fused kernels refuse complex parameters
            cases += [
                pytest.param(c, dtype, id=f"{c.id}-{dtype}")
                for c in odb.configs(info, dtype, skip=("fused",))
            ]
    return cases


@pytest.mark.parametrize(("config", "dtype"), _numerics_cases())
def test_numerics_match_torch_optim(config, dtype):
    theirs = _make_params(dtype, info=config.info)
    ours = _clone(theirs)
    their_opt = odb.theirs(config.info)(theirs, **config.kwargs())
    our_opt = odb.ours(config.info)(ours, **config.kwargs())
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    for step in range(STEPS):
        _set_grads(ours, theirs, gen, step, _sparse_only(config))
        their_opt.step()
        our_opt.step()
        worst = max(worst, compare_states(our_opt, their_opt, ours, theirs, TOL[dtype]))
    assert_same_layout(our_opt.state_dict(), their_opt.state_dict())
    RESULTS.append(
        {
            "peer": PEER,
            "optimizer": config.name,
            "options": config.desc,
            "dtype": str(dtype).replace("torch.", ""),
            "deviation": worst,
        }
    )


# -- error inputs ---------------------------------------------------------------------------


def _outcome(cls, error_input):
    """What ``cls`` does with an ErrorOptimizerInput: ``(moment, type, message)`` of the first
    exception or expected warning, moment ``"construction"`` or ``"step"``; None if nothing."""
    optim_input = error_input.optimizer_error_input
    expected = error_input.error_type
    moment = "construction"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt = cls(optim_input.params, **optim_input.kwargs)
            moment = "step"
            opt.step()
        except Exception as error:  # noqa: BLE001 - the exception is the result
            return moment, type(error), str(error)
    for w in caught:
        if issubclass(expected, Warning) and issubclass(w.category, expected):
            return "warning", w.category, str(w.message)
    return None


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in odb.error_cases()])
def test_error_inputs_raise_torchs_exception_and_message(case):
    error_input = case.make()
    expected_moment = (
        "step" if error_input.error_on == odb.db.OptimizerErrorEnum.STEP_ERROR else "construction"
    )
    torchs = _outcome(odb.theirs(case.info), case.make())
    mine = _outcome(odb.ours(case.info), error_input)
    assert torchs is not None
    assert mine == torchs
    moment, kind, message = mine
    assert issubclass(kind, error_input.error_type)
    assert re.search(error_input.error_regex, message)
    if moment != "warning":
        assert moment == expected_moment


# -- hooks ----------------------------------------------------------------------------------


def _hook_params(sparse=False):
    params = [torch.rand(2, 3, dtype=torch.float32)]
    params[0].grad = torch.rand(2, 3).to_sparse() if sparse else torch.rand(2, 3)
    return params


@pytest.mark.parametrize("config", [pytest.param(c, id=c.id) for c in odb.all_configs()])
def test_hooks_run_as_in_torch(config):
    """Step hooks (global and local, torch's order: global pre, local pre, local post, global
    post), state_dict hooks and load_state_dict hooks (a pre hook may return a new dict; a
    prepended one runs first)."""
    calls = []
    params = _hook_params(_sparse_only(config))
    opt = odb.ours(config.info)(params, **config.kwargs())
    handles = [
        register_optimizer_step_pre_hook(lambda *a: calls.append("global pre")),
        register_optimizer_step_post_hook(lambda *a: calls.append("global post")),
        opt.register_step_pre_hook(lambda *a: calls.append("pre")),
        opt.register_step_post_hook(lambda *a: calls.append("post")),
    ]
    try:
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    opt.step()
    assert calls == ["global pre", "pre", "post", "global post"]

    def sd_pre(optimizer):
        optimizer.state["marker"] = 1

    def sd_post(optimizer, state_dict):
        state_dict["ran pre hook"] = state_dict["state"].pop("marker", None) == 1
        return state_dict

    opt.register_state_dict_pre_hook(sd_pre)
    opt.register_state_dict_post_hook(sd_post)
    saved = opt.state_dict()
    assert saved["ran pre hook"] and "marker" not in saved["state"]
    del opt.state["marker"]

    def load_pre_in_place(optimizer, state_dict):
        state_dict["param_groups"][0]["lr"] = 0.002

    def load_pre_new_dict(optimizer, state_dict):
        new = copy.deepcopy(state_dict)
        new["param_groups"][0]["lr"] = 0.003
        return new

    seen = []
    opt.register_load_state_dict_pre_hook(load_pre_in_place)
    opt.register_load_state_dict_post_hook(lambda o: seen.append(o.param_groups[0]["lr"]))
    opt.load_state_dict(copy.deepcopy(saved))
    assert opt.param_groups[0]["lr"] == 0.002
    opt.register_load_state_dict_pre_hook(load_pre_new_dict, prepend=True)
    opt.load_state_dict(copy.deepcopy(saved))
    assert opt.param_groups[0]["lr"] == 0.002 and seen == [0.002, 0.002]
    opt.step()


# -- state dicts ----------------------------------------------------------------------------


def _train(opt, params, gen, steps, sparse=False):
    for _ in range(steps):
        for p in params:
            p.grad = _grad_like(p, torch.randn(p.shape, generator=gen, dtype=p.dtype), sparse)
        opt.step()


def _continue_both(first, first_params, second, second_params, seed, steps=3, sparse=False):
    """Train two optimizers ``steps`` more steps on the same gradients."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p, q in zip(first_params, second_params, strict=True):
            g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            p.grad, q.grad = _grad_like(p, g, sparse), _grad_like(q, g, sparse)
        first.step()
        second.step()


@pytest.mark.parametrize("config", [pytest.param(c, id=c.id) for c in odb.all_configs()])
def test_state_dict_round_trip_and_cross_loading(config):
    """optimlab -> optimlab continues bit for bit; torch.optim -> optimlab and optimlab ->
    torch.optim continue within 1e-5 (float32)."""
    cls, torch_cls = odb.ours(config.info), odb.theirs(config.info)
    sparse = _sparse_only(config)
    params = _make_params(torch.float32, info=config.info)
    opt = cls(params, **config.kwargs())
    _train(opt, params, torch.Generator().manual_seed(0), 3, sparse)
    twin_params = _clone(params)
    twin = cls(twin_params, **config.kwargs())
    saved = copy.deepcopy(opt.state_dict())
    twin.load_state_dict(copy.deepcopy(saved))
    _continue_both(opt, params, twin, twin_params, seed=1, sparse=sparse)
    compare_states(twin, opt, twin_params, params, 0.0)
    assert_same_layout(twin.state_dict(), opt.state_dict())

    worst = 0.0
    for source, target in ((torch_cls, cls), (cls, torch_cls)):
        params = _make_params(torch.float32, seed=2, info=config.info)
        first = source(params, **config.kwargs())
        _train(first, params, torch.Generator().manual_seed(3), 3, sparse)
        loaded_params = _clone(params)
        loaded = target(loaded_params, **config.kwargs())
        loaded.load_state_dict(copy.deepcopy(first.state_dict()))
        _continue_both(first, params, loaded, loaded_params, seed=4, sparse=sparse)
        mine, torchs = (loaded, first) if target is cls else (first, loaded)
        my_params, torch_params = (
            (loaded_params, params) if target is cls else (params, loaded_params)
        )
        worst = max(worst, compare_states(mine, torchs, my_params, torch_params, 1e-5))
        assert_same_layout(mine.state_dict(), torchs.state_dict())
    RESULTS.append(
        {
            "peer": PEER + " state_dict cross-loading",
            "optimizer": config.name,
            "options": config.desc,
            "dtype": "float32",
            "deviation": worst,
        }
    )


@pytest.mark.parametrize("config", [pytest.param(c, id=c.id) for c in odb.all_configs()])
def test_an_older_checkpoint_loads_as_in_torch(config):
    """A state dict without the flags optim_db lists as added later
    (``not_og_supported_flags``) and with plain-number steps (older torch versions): both
    libraries load it and take the same next step."""
    cls, torch_cls = odb.ours(config.info), odb.theirs(config.info)
    sparse = _sparse_only(config)
    params = _make_params(torch.float32, info=config.info)
    opt = cls(params, **config.kwargs())
    _train(opt, params, torch.Generator().manual_seed(0), 3, sparse)
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        for key in config.info.not_og_supported_flags:
            group.pop(key, None)
    for state in old["state"].values():
        if isinstance(state.get("step"), torch.Tensor):
            state["step"] = state["step"].item()
    torch_params = _clone(params)
    reference = torch_cls(torch_params, **config.kwargs())
    reference.load_state_dict(copy.deepcopy(old))
    opt.load_state_dict(copy.deepcopy(old))
    _continue_both(opt, params, reference, torch_params, seed=1, steps=1, sparse=sparse)
    compare_states(opt, reference, params, torch_params, 1e-5)
    assert_same_layout(opt.state_dict(), reference.state_dict())
