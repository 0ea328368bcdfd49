"""Hostile input to optimlab.torch's public entry points, against torch.optim.

Property tests (hypothesis, derandomized by default; ``HYPOTHESIS_PROFILE=explore`` searches
further) throw hostile values at the constructors (every argument, ``engine`` and
``nan_policy`` included), ``add_param_group``, group values set between steps, gradients set
through ``.data`` or of the wrong kind, ``zero_grad``, and corrupted ``state_dict``s at
``load_state_dict``, running the same input through torch.optim (Lion: no torch namesake).
For every input:

- torch refuses it and optimlab does not: a failure (optimlab must refuse what torch refuses);
- optimlab refuses it: the exception is torch's type where torch refuses it too, with torch's
  exact message where torch raises it on purpose (a ``raise`` in torch.optim), else a message
  naming the argument (or parameter, or group), the value and the valid range; and the world
  is unchanged: a snapshot of every parameter and gradient, every state tensor (values,
  dtype, device), the param_groups, the defaults and the counters, taken before and compared
  after (for ``add_param_group`` and ``load_state_dict`` the dict passed in as well);
- both accept it: the next step gives torch's numbers (NaN where torch's are NaN).
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import traceback

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import optimlab.torch as ot  # noqa: E402

#: (SparseAdam takes sparse gradients only, and these tests step with dense ones: its
#: refusals, with torch's messages and snapshots, are in test_sparse_adam.py)
NAMES = sorted(n for n in ot.OPTIMIZERS if n != "SparseAdam")
SETTINGS = settings(
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    deadline=None,
)


def _reference(name):
    return getattr(torch.optim, name, None)


def _arguments(cls) -> list[str]:
    """The keyword arguments of a constructor (all but ``params``)."""
    return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "params")]


# -- hostile values -----------------------------------------------------------------------

_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_numbers = st.one_of(
    st.sampled_from([-1.0, -1e-12, 0.0, 1.0, 1.5, 2.0, 1e300, -0.0]),
    _floats,
    st.integers(-3, 3),
)
_tensors = st.one_of(
    st.builds(lambda x: torch.tensor(x, dtype=torch.float64), _floats),
    st.builds(lambda x: torch.tensor([x, x]), st.floats(-1, 2)),
    st.builds(lambda x: torch.tensor([[x]]), st.floats(-1, 2)),
    st.just(torch.tensor(True)),
    st.just(torch.tensor(1 + 1j)),
    st.builds(lambda x: torch.tensor(x), st.integers(-2, 2)),
)
_others = st.one_of(
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.complex_numbers(max_magnitude=2, allow_nan=False),
    st.lists(st.floats(-1, 2), max_size=3),
    st.tuples(st.floats(-1, 2)),
    st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
    st.tuples(st.floats(0, 0.99), st.floats(0, 0.99), st.floats(0, 0.99)),
    st.tuples(_tensors, _tensors),
    st.tuples(st.floats(0, 0.99), _tensors),
    st.sampled_from([object(), {}, "auto", "fused", "torch", "raise", "skip", "propagate"]),
)
HOSTILE = st.one_of(_numbers, _tensors, _others)


# -- the world, before and after ----------------------------------------------------------


def _tensor_record(t):
    if not isinstance(t, torch.Tensor):
        return ("value", repr(t))
    t = t.detach()
    layout = t.layout
    if t.is_sparse:
        t = t.to_dense()
    return ("tensor", t.clone(), t.dtype, t.device, tuple(t.shape), layout)


def snapshot(opt, params) -> dict:
    """Every parameter and gradient, every state tensor (values, dtype, device), the
    param_groups (parameters by position), the defaults and optimlab's counters."""
    position = {id(p): i for i, p in enumerate(params)}

    def group_record(group):
        return {
            k: [position.get(id(p), id(p)) for p in v] if k == "params" else _tensor_record(v)
            for k, v in group.items()
        }

    world = {
        "params": [(_tensor_record(p), _tensor_record(p.grad)) for p in params],
    }
    if opt is not None:
        world["state"] = {
            position.get(id(k), repr(k)): {key: _tensor_record(v) for key, v in s.items()}
            for k, s in opt.state.items()
        }
        world["param_groups"] = [group_record(g) for g in opt.param_groups]
        world["defaults"] = {k: _tensor_record(v) for k, v in opt.defaults.items()}
        world["counters"] = (
            getattr(opt, "skipped_steps", None),
            getattr(opt, "engine", None),
            getattr(opt, "nan_policy", None),
        )
    return world


def _nan_equal(a, b) -> bool:
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.is_sparse:
        return b.is_sparse and _same(a.to_dense(), b.to_dense())
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and (torch.equal(a, b) or (a.is_floating_point() and _nan_equal(a, b)))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


def assert_unchanged(before, after) -> None:
    assert _same(before, after), "a refused call changed the optimizer or its parameters"


# -- outcomes -----------------------------------------------------------------------------


def _run(fn):
    """``("ok", value)`` or ``("error", exception)``."""
    try:
        return "ok", fn()
    except Exception as error:  # noqa: BLE001 - the exception is the outcome
        return "error", error


def deliberate(error) -> bool:
    """Whether torch.optim raised ``error`` on purpose: the last frame of its traceback is a
    ``raise`` statement in torch/optim (not a comparison or a kernel failing on the value)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return os.sep + "optim" + os.sep in last.filename and (last.line or "").lstrip().startswith(
        "raise"
    )


def assert_names(error, words) -> None:
    """optimlab's own refusal: the message names the argument (and says what it must be)."""
    message = str(error)
    assert any(w in message for w in words), (words, message)
    range_words = ("must", "nothing was changed", "not support", "needs", "requires")
    assert any(s in message for s in range_words), message


def check_refusal(mine, torchs, words, same_moment_exact=False) -> None:
    """optimlab refused (``mine`` an exception); torch's outcome is ``torchs``.

    torch's exception and message are always right. Where torch refuses on purpose (a
    ``raise`` in torch.optim) at the same moment (``same_moment_exact``: both refuse a
    constructor argument), nothing else is. Otherwise optimlab may refuse earlier or for a
    reason torch does not check (a flag that is not a bool, a string where a number is meant,
    which torch meets only in a comparison or a kernel), with its own words: torch's type, or
    a TypeError or ValueError, naming the argument and what it must be."""
    if torchs is not None and torchs[0] == "error":
        theirs = torchs[1]
        if type(mine) is type(theirs) and str(mine) == str(theirs):
            return
        assert not (same_moment_exact and deliberate(theirs)), (mine, theirs)
        assert isinstance(mine, type(theirs) | TypeError | ValueError), (mine, theirs)
    assert_names(mine, words)


def torch_refuses(torchs) -> bool:
    """Whether torch refused, other than in the two ways optimlab deliberately does not:
    overflowing a scalar it derived from the hyperparameters (an lr near the float32 limit
    divided by Adam's bias correction: torch fails in the middle of its step, optimlab
    computes the update; a hyperparameter that itself overflows the parameters' dtype
    optimlab refuses up front), and a KeyError for the state buffer of an option switched on
    between steps (RMSprop's momentum, Adam's amsgrad: optimlab creates the buffer, see
    test_api's test_options_switched_on_between_steps)."""
    if torchs is None or torchs[0] != "error":
        return False
    error = torchs[1]
    if isinstance(error, KeyError) and error.args and error.args[0] in _BUFFERS:
        return False
    return "cannot be converted to type" not in str(error)


#: the state buffers of every optimizer
_BUFFERS = {key for cls in ot.OPTIMIZERS.values() for key in cls.slot_keys}


def _close(a, b, tol=1e-5) -> bool:
    a, b = a.detach().double(), b.detach().double()
    if a.shape != b.shape:
        return False
    both_nan = a.isnan() & b.isnan()
    same = (a == b) | both_nan | ((a - b).abs() <= tol * (1 + b.abs()))
    return bool(same.all())


# -- the cases ----------------------------------------------------------------------------


def _matrices(name) -> bool:
    """Whether the optimizer takes matrices only (Muon): its cases' vector is a (1, n) row."""
    return getattr(ot.OPTIMIZERS[name], "matrices_only", False)


def _params(seed=0, matrices=False):
    gen = torch.Generator().manual_seed(seed)
    first = torch.randn((1, 3) if matrices else (3,), generator=gen)
    params = [first, torch.randn(2, 2, generator=gen)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _fresh_value(value):
    return copy.deepcopy(value)


@SETTINGS
@given(name=st.sampled_from(NAMES), data=st.data(), value=HOSTILE)
def test_constructor_arguments(name, data, value):
    """One hostile argument to a constructor, then a step."""
    cls = ot.OPTIMIZERS[name]
    key = data.draw(st.sampled_from(_arguments(cls)), label="argument")
    reference = _reference(name)

    def attempt(factory):
        params = _params(matrices=_matrices(name))
        before = snapshot(None, params)
        made = _run(lambda: factory(params, **{key: _fresh_value(value)}))
        if made[0] == "error":
            return "construction", made[1], params, before, None
        opt = made[1]
        world = snapshot(opt, params)
        stepped = _run(opt.step)
        if stepped[0] == "error":
            return "step", stepped[1], params, world, opt
        return "ok", None, params, None, opt

    moment, mine, my_params, before, opt = attempt(cls)
    torchs, t_moment = None, None
    if reference is not None and key in _arguments(reference):
        t_moment, t_error, t_params, _, _ = attempt(reference)
        torchs = ("error", t_error) if t_error is not None else ("ok", t_params)
    if mine is not None:
        check_refusal(mine, torchs, [key], moment == t_moment == "construction")
        assert_unchanged(before, snapshot(opt, my_params))
    else:
        assert not torch_refuses(torchs), ("torch refuses", torchs)
        if torchs is not None and torchs[0] == "ok":
            assert all(_close(p, q) for p, q in zip(my_params, torchs[1], strict=True))


def _group_keys(cls):
    return [k for k in _arguments(cls) if k not in ("engine", "nan_policy")]


@pytest.mark.filterwarnings(  # torch.optim's own warning, on the reference side
    "ignore:optimizer contains a parameter group with duplicate parameters:UserWarning"
)
@SETTINGS
@given(name=st.sampled_from(NAMES), data=st.data(), value=HOSTILE)
def test_add_param_group(name, data, value):
    """A group with one hostile value (torch checks none of them), or hostile ``params``."""
    cls = ot.OPTIMIZERS[name]
    reference = _reference(name)
    kind = data.draw(st.sampled_from(["value", "params"]), label="kind")
    if kind == "value":
        key = data.draw(st.sampled_from(_group_keys(cls)), label="key")
    else:
        key = "params"
        choice = data.draw(
            st.sampled_from(
                ["duplicate", "non-leaf", "int", "set", "None", "named-mix", "tensor-list"]
            ),
            label="params",
        )

    def attempt(factory):
        params = _params(matrices=_matrices(name))
        gen = torch.Generator().manual_seed(5)
        shape = (1, 4) if _matrices(name) else (4,)
        extra = torch.randn(shape, generator=gen)
        extra.grad = torch.randn(shape, generator=gen)
        opt = factory(params[:1])
        opt.step()
        if kind == "value":
            group = {"params": [extra], key: _fresh_value(value)}
        else:
            leaf = torch.randn(2, generator=gen).requires_grad_(True)
            group = {
                "params": {
                    "duplicate": [params[0]],
                    "non-leaf": [leaf * 2],
                    "int": [extra, 3],
                    "set": {extra},
                    "None": None,
                    "named-mix": [("w", extra), params[1]],
                    "tensor-list": [extra, extra],
                }[choice]
            }
        world = snapshot(opt, [*params, extra])
        passed = dict(group)
        outcome = _run(lambda: opt.add_param_group(group))
        added = outcome[0] == "ok"
        if added:
            world = snapshot(opt, [*params, extra])
            outcome = _run(opt.step)
        return outcome, opt, [*params, extra], world, group, passed, added

    (status, mine), opt, my_params, world, group, passed, added = attempt(cls)
    torchs = None
    stand_in = reference is None and kind == "params"
    if stand_in:  # torch.optim.Optimizer's own checks (its numbers are SGD's, not Lion's)
        reference = torch.optim.SGD
    if reference is not None:
        torchs, _, t_params, _, _, _, _ = attempt(reference)
        torchs = torchs if torchs[0] == "error" else ("ok", t_params)
    if status == "error":
        words = [key, "param group", "params", "parameter"]
        check_refusal(mine, torchs, words)
        assert_unchanged(world, snapshot(opt, my_params))
        if not added:  # the dict passed in keeps its items
            assert group.keys() == passed.keys(), (mine, group.keys(), passed.keys())
            assert all(group[k] is passed[k] for k in group), mine
    else:
        assert not torch_refuses(torchs), ("torch refuses", torchs)
        if torchs is not None and torchs[0] == "ok" and not stand_in:
            assert all(_close(p, q) for p, q in zip(my_params, torchs[1], strict=True))


@SETTINGS
@given(name=st.sampled_from(NAMES), data=st.data(), value=HOSTILE)
def test_group_value_set_between_steps(name, data, value):
    """A scheduler or a user sets a hostile value in a group between two steps."""
    cls = ot.OPTIMIZERS[name]
    key = data.draw(st.sampled_from(_group_keys(cls)), label="key")
    reference = _reference(name)

    def attempt(factory):
        params = _params(matrices=_matrices(name))
        opt = factory(params)
        opt.step()
        opt.param_groups[0][key] = _fresh_value(value)
        world = snapshot(opt, params)
        return _run(opt.step), opt, params, world

    (status, mine), opt, my_params, world = attempt(cls)
    torchs = None
    if reference is not None:
        torchs, _, t_params, _ = attempt(reference)
        torchs = torchs if torchs[0] == "error" else ("ok", t_params)
    if status == "error":
        check_refusal(mine, torchs, [key])
        assert_unchanged(world, snapshot(opt, my_params))
    else:
        assert not torch_refuses(torchs), ("torch refuses", torchs)
        if torchs is not None and torchs[0] == "ok":
            assert all(_close(p, q) for p, q in zip(my_params, torchs[1], strict=True))


_GRADIENTS = [
    "wrong shape",
    "broadcastable shape",
    "float64",
    "float16",
    "int",
    "sparse",
    "nan",
    "inf",
    "requires grad",
    "non-contiguous",
    "zero-size",
    "complex",
]


def _hostile_gradient(kind, p):
    gen = torch.Generator().manual_seed(7)

    def randn(*shape, **kwargs):
        return torch.randn(*shape, generator=gen, **kwargs)

    g = randn(p.shape)
    if kind == "wrong shape":
        return randn(p.numel() + 1)
    if kind == "broadcastable shape":
        return randn(1)
    if kind == "float64":
        return g.double()
    if kind == "float16":
        return g.half()
    if kind == "int":
        return torch.ones(p.shape, dtype=torch.int64)
    if kind == "sparse":
        return g.to_sparse()
    if kind == "nan":
        return g.index_fill(0, torch.tensor([0]), float("nan"))
    if kind == "inf":
        return g.index_fill(0, torch.tensor([0]), float("inf"))
    if kind == "requires grad":
        return g.requires_grad_(True)
    if kind == "non-contiguous":
        return randn(*reversed(p.shape)).t() if p.dim() == 2 else g[::1]
    if kind == "zero-size":
        return randn(0)
    if kind == "complex":
        return randn(p.shape, dtype=torch.complex64)
    raise AssertionError(kind)


@SETTINGS
@given(
    name=st.sampled_from(NAMES),
    kind=st.sampled_from(_GRADIENTS),
    which=st.sampled_from([0, 1]),
    engine=st.sampled_from(["auto", "torch", "fused"]),
    nan_policy=st.sampled_from(["propagate", "raise", "skip"]),
)
def test_hostile_gradients(name, kind, which, engine, nan_policy):
    """A gradient set through ``.data`` (skipping the checks of ``p.grad = ...``) or of a kind
    the optimizer cannot take, on the first or the second parameter."""
    reference = _reference(name)

    def attempt(factory, **extra):
        params = _params(matrices=_matrices(name))
        opt = factory(params, **extra)
        opt.step()
        g = _hostile_gradient(kind, params[which])
        try:  # through .data, which skips the checks of ``p.grad = ...``
            params[which].grad.data = g
        except RuntimeError:  # a layout .data cannot take
            params[which].grad = g
        world = snapshot(opt, params)
        return _run(opt.step), opt, params, world

    cls = ot.OPTIMIZERS[name]
    if engine not in cls.engines:  # Adafactor's tensor-level rule has only "auto"
        engine = "auto"
    (status, mine), opt, my_params, world = attempt(cls, engine=engine, nan_policy=nan_policy)
    torchs = None
    if reference is not None:
        torchs, _, t_params, _ = attempt(reference)
        torchs = torchs if torchs[0] == "error" else ("ok", t_params)
    if status == "error":
        check_refusal(mine, torchs, [f"parameter {which}", "gradient", "engine", "sparse"])
        assert_unchanged(world, snapshot(opt, my_params))
        return
    assert not torch_refuses(torchs), ("torch refuses", torchs)
    if nan_policy == "skip" and kind in ("nan", "inf"):
        assert opt.skipped_steps == 1
        assert_unchanged(world["params"], snapshot(opt, my_params)["params"])
    elif torchs is not None and torchs[0] == "ok" and nan_policy == "propagate":
        assert all(_close(p, q) for p, q in zip(my_params, torchs[1], strict=True))


@SETTINGS
@given(name=st.sampled_from(NAMES), value=HOSTILE)
def test_zero_grad(name, value):
    """``zero_grad(set_to_none=...)`` touches the gradients only, as torch's."""
    results = []
    for factory in (ot.OPTIMIZERS[name], _reference(name) or ot.OPTIMIZERS[name]):
        params = _params(matrices=_matrices(name))
        opt = factory(params)
        opt.step()
        world = snapshot(opt, params)
        outcome = _run(lambda opt=opt, value=value: opt.zero_grad(set_to_none=value))
        after = snapshot(opt, params)
        results.append((outcome[0], [p.grad for p in params]))
        world.pop("params")
        after.pop("params")
        assert_unchanged(world, after)
    (mine, my_grads), (torchs, torch_grads) = results
    assert mine == torchs
    for g, h in zip(my_grads, torch_grads, strict=True):
        assert (g is None) == (h is None)
        assert g is None or torch.equal(g, h)


_CORRUPTIONS = [
    "buffer shape",
    "buffer not a tensor",
    "buffer complex",
    "step nan",
    "step negative",
    "step inf",
    "step vector",
    "step none",
    "step string",
    "step plain number",
    "state of a missing parameter",
    "no state key",
    "no param_groups key",
    "group count",
    "group size",
    "group value",
    "not a dict",
    "param_groups not a list",
    "state not a dict",
    "buffer sparse",
    "buffer other dtype",
]


def _copy_tree(x):
    """A copy of nested dicts, lists and tuples with their tensors cloned and every other leaf
    the same object (to tell whether a call changed a dict passed to it)."""
    if isinstance(x, dict):
        return {k: _copy_tree(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_copy_tree(v) for v in x)
    if isinstance(x, torch.Tensor):
        return x.clone()
    return x


#: corruptions that torch.optim.Optimizer's load_state_dict itself meets, in any optimizer
_STRUCTURAL = (
    "no state key",
    "no param_groups key",
    "group count",
    "group size",
    "not a dict",
    "param_groups not a list",
    "state not a dict",
)


def _corrupt(state_dict, how, value, key):
    sd = copy.deepcopy(state_dict)
    state = sd["state"][0] if sd["state"] else {}
    buffers = [k for k, v in state.items() if isinstance(v, torch.Tensor) and k != "step"]
    first = buffers[0] if buffers else None
    if how == "buffer shape" and first:
        state[first] = torch.zeros(7)
    elif how == "buffer not a tensor" and first:
        state[first] = [1.0, 2.0, 3.0]
    elif how == "buffer complex" and first:
        state[first] = state[first].to(torch.complex64)
    elif how == "buffer sparse" and first:
        state[first] = state[first].to_sparse()
    elif how == "buffer other dtype" and first:
        state[first] = state[first].double()
    elif how.startswith("step") and "step" in state:
        state["step"] = {
            "step nan": torch.tensor(float("nan")),
            "step negative": torch.tensor(-2.0),
            "step inf": torch.tensor(float("inf")),
            "step vector": torch.tensor([1.0, 2.0]),
            "step none": None,
            "step string": "2",
            "step plain number": 2.0,
        }[how]
    elif how == "state of a missing parameter":
        sd["state"][9] = {"step": torch.tensor(1.0)}
    elif how == "no state key":
        del sd["state"]
    elif how == "no param_groups key":
        del sd["param_groups"]
    elif how == "group count":
        sd["param_groups"].append(copy.deepcopy(sd["param_groups"][0]))
    elif how == "group size":
        sd["param_groups"][0]["params"] = [0]
    elif how == "group value":
        sd["param_groups"][0][key] = value
    elif how == "not a dict":
        return [sd]
    elif how == "param_groups not a list":
        sd["param_groups"] = "groups"
    elif how == "state not a dict":
        sd["state"] = [1, 2]
    return sd


@SETTINGS
@pytest.mark.filterwarnings(  # torch.optim loading a complex value into a real state
    "ignore:Casting complex values to real discards the imaginary part:UserWarning"
)
@given(
    name=st.sampled_from(NAMES),
    how=st.sampled_from(_CORRUPTIONS),
    data=st.data(),
    value=HOSTILE,
)
def test_load_state_dict(name, how, data, value):
    """A corrupted state dict, loaded, then a step."""
    cls = ot.OPTIMIZERS[name]
    key = data.draw(st.sampled_from(_group_keys(cls)), label="key")
    reference = _reference(name)

    def attempt(factory):
        params = _params(matrices=_matrices(name))
        opt = factory(params)
        for _ in range(2):
            opt.step()
        corrupted = _corrupt(opt.state_dict(), how, _fresh_value(value), key)
        passed = _copy_tree(corrupted)
        world = snapshot(opt, params)
        outcome = _run(lambda: opt.load_state_dict(corrupted))
        loaded = outcome[0] == "ok"
        if loaded:
            outcome = _run(opt.step)
        return outcome, loaded, opt, params, world, corrupted, passed

    (status, mine), loaded, opt, my_params, world, corrupted, passed = attempt(cls)
    torchs, t_loaded = None, False
    stand_in = reference is None and how in _STRUCTURAL
    if stand_in:  # torch.optim.Optimizer's own checks (its numbers are SGD's, not Lion's)
        reference = torch.optim.SGD
    if reference is not None:
        torchs, t_loaded, _, t_params, _, _, _ = attempt(reference)
        torchs = torchs if torchs[0] == "error" else ("ok", t_params)
    if status == "error":
        words = [key, "state", "step", "param", "group", "size"]
        check_refusal(mine, torchs, words, same_moment_exact=not loaded and not t_loaded)
        if not loaded:
            assert_unchanged(world, snapshot(opt, my_params))
            assert _same(corrupted, passed), "load_state_dict changed the dict passed in"
    else:
        assert not torch_refuses(torchs), ("torch refuses", torchs)
        if torchs is not None and torchs[0] == "ok" and not stand_in:
            assert all(_close(p, q) for p, q in zip(my_params, torchs[1], strict=True))


def test_the_suite_can_tell_a_changed_world():
    """The snapshot sees a change of one element of one state tensor, of a dtype, of a group
    value and of a counter (so that the comparisons above are not vacuous)."""
    params = _params()
    opt = ot.Adam(params)
    opt.step()
    before = snapshot(opt, params)
    state = opt.state[params[0]]
    state["exp_avg"][0] += 1e-6
    assert not _same(before, snapshot(opt, params))
    state["exp_avg"][0] -= 1e-6
    assert _same(before, snapshot(opt, params)) or math.isclose(
        float(state["exp_avg"][0]), float(before["state"][0]["exp_avg"][1][0]), rel_tol=1e-6
    )
    state["exp_avg_sq"] = state["exp_avg_sq"].double()
    assert not _same(before, snapshot(opt, params))
    state["exp_avg_sq"] = state["exp_avg_sq"].float()
    opt.param_groups[0]["lr"] = 0.5
    assert not _same(before, snapshot(opt, params))
    opt.param_groups[0]["lr"] = 1e-3
    opt.skipped_steps = 1
    assert not _same(before, snapshot(opt, params))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("name", ["SGD", "Adam", "Adadelta"])
def test_a_hyperparameter_that_overflows_the_parameters_dtype_is_refused(name, dtype):
    """torch.optim passes lr to its float32 kernels as a float and fails (RuntimeError: ...
    without overflow) in the middle of its step (in float16 it computes infinities);
    optimlab refuses the value before anything moves, naming it and the dtype's limit, at
    construction as at a step."""
    lr = float(torch.finfo(dtype).max) * 4
    torch_params = [p.to(dtype) for p in _params()]
    for p, q in zip(torch_params, _params(), strict=True):
        p.grad = q.grad.to(dtype)
    if dtype == torch.float32:
        with pytest.raises(RuntimeError, match="without overflow"):
            getattr(torch.optim, name)(torch_params, lr=lr).step()
    params = [p.detach().clone() for p in torch_params]
    for p, q in zip(params, torch_params, strict=True):
        p.grad = q.grad.clone()
    with pytest.raises(RuntimeError, match="without overflow") as error:
        ot.OPTIMIZERS[name](params, lr=lr)
    assert "lr" in str(error.value) and str(torch.finfo(dtype).max)[:4] in str(error.value)
    opt = ot.OPTIMIZERS[name](params, lr=1e-3)
    opt.step()
    opt.param_groups[0]["lr"] = lr
    before = snapshot(opt, params)
    with pytest.raises(RuntimeError, match="without overflow"):
        opt.step()
    assert_unchanged(before, snapshot(opt, params))
