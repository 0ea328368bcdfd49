"""ASGD: the Polyak-Ruppert average, the step size one update late, the average accessors,
and the torch drop-in's state and capturable arithmetic against torch.optim.ASGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab.rules import asgd


def _gradients(seed, steps, shape=(3,)):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(steps)]


@settings(max_examples=25, deadline=None)
@given(
    t0=st.integers(0, 8),
    steps=st.integers(1, 20),
    lr=st.floats(1e-3, 0.2),
    lambd=st.floats(0.0, 0.5),
    alpha=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    engine=st.sampled_from(["fused", "reference"]),
)
def test_the_average_is_the_mean_of_the_iterates_from_update_t0_plus_2(
    t0, steps, lr, lambd, alpha, seed, engine
):
    """mu_t = 1 / max(1, t - 1 - t0): ax follows p up to update t0 + 2 (mu = 1), and from
    there on is the plain mean of the iterates p_{t0+2}, ..., p_t (Polyak-Ruppert)."""
    p = np.array([0.5, -1.0, 2.0])
    opt = ol.ASGD(learning_rate=lr, lambd=lambd, alpha=alpha, t0=float(t0), engine=engine)
    iterates = []
    for g in _gradients(seed, steps):
        opt.apply_gradients([(g, p)])
        iterates.append(p.copy())
    (ax,) = opt.average
    first = t0 + 2  # the 1-based update from which the mean runs
    expected = iterates[-1] if steps < first else np.mean(iterates[first - 1 :], axis=0)
    np.testing.assert_allclose(ax, expected, rtol=1e-12, atol=1e-12)


def test_the_step_size_decays_and_takes_a_new_learning_rate_one_update_late():
    """eta_1 = lr; eta_t = lr_{t-1} / (1 + lambd lr_{t-1} (t - 1))^alpha, written out; the
    parameter moves by p * (1 - lambd eta) - eta g; a learning-rate change at update 5 reaches
    eta at update 6 (torch computes eta after each step)."""
    lambd, alpha = 0.3, 0.75
    p = np.array([1.0, -2.0])
    ours = p.copy()
    opt = ol.ASGD(learning_rate=0.1, lambd=lambd, alpha=alpha, preset="torch")
    lrs = [0.1] * 4 + [0.02] * 4
    eta = lrs[0]
    for t, (lr, g) in enumerate(zip(lrs, _gradients(1, 8, (2,)), strict=True), start=1):
        opt.learning_rate = lr
        if t > 1:
            eta = lrs[t - 2] / (1.0 + lambd * lrs[t - 2] * (t - 1)) ** alpha
        p = p * (1.0 - lambd * eta) - eta * g
        opt.apply_gradients([(g, ours)])
        np.testing.assert_array_equal(ours, p)


def test_lambd_zero_and_alpha_zero_is_plain_sgd():
    p, q = np.array([1.0, 2.0]), np.array([1.0, 2.0])
    a = ol.ASGD(learning_rate=0.05, lambd=0.0, alpha=0.0)
    b = ol.SGD(learning_rate=0.05)
    for g in _gradients(2, 10, (2,)):
        a.apply_gradients([(g, p)])
        b.apply_gradients([(g, q)])
    np.testing.assert_array_equal(p, q)


def test_the_average_accessors():
    opt = ol.ASGD(learning_rate=0.1, t0=0.0)
    assert opt.average is None
    with pytest.raises(ValueError, match="assign_average needs a built optimizer"):
        opt.assign_average()
    p = np.array([1.0, 2.0])
    opt.build([p])
    np.testing.assert_array_equal(opt.average[0], 0.0)  # torch's zeros before the first step
    with pytest.raises(ValueError, match="read-only"):
        opt.average[0][0] = 1.0
    for g in _gradients(3, 5, (2,)):
        opt.apply_gradients([(g, p)])
    ax = opt.average[0].copy()
    assert not np.array_equal(ax, p)
    stranger = np.zeros(2)
    before = p.copy()
    with pytest.raises(ValueError, match="does not track; nothing was changed"):
        opt.assign_average([p, stranger])
    np.testing.assert_array_equal(p, before)
    opt.assign_average()
    np.testing.assert_array_equal(p, ax)


@pytest.mark.parametrize(
    "name, value, kind",
    [("lambd", -0.1, ValueError), ("alpha", math.nan, ValueError), ("t0", math.inf, ValueError)]
    + [("t0", "10", TypeError), ("lambd", True, TypeError)],
)
def test_refusals_name_the_argument_and_change_nothing(name, value, kind):
    opt = ol.ASGD(learning_rate=0.1, t0=1.0)
    p = np.array([1.0, 2.0])
    opt.apply_gradients([(np.ones(2), p)])
    state, config = opt.state_dict(), opt.get_config()
    with pytest.raises(kind, match=name):
        ol.ASGD(**{name: value})
    with pytest.raises(kind, match=name):
        setattr(opt, name, value)
    assert opt.get_config() == config
    after = opt.state_dict()
    assert after.keys() == state.keys()
    for key, value_ in state["slots"].items():
        np.testing.assert_array_equal(after["slots"][key], value_)
    assert after["step_state"] == state["step_state"]


@pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")
def test_steps_are_per_parameter_under_every_preset():
    """A parameter without a gradient keeps its eta and mu (torch's state), also under the
    Keras preset, which otherwise counts updates globally."""
    opt = ol.ASGD(learning_rate=0.1, lambd=0.5)
    a, b = np.array([1.0]), np.array([1.0])
    opt.apply_gradients([(np.ones(1), a), (np.ones(1), b)])
    opt.apply_gradients([(np.ones(1), a), (None, b)])
    steps = opt.state_dict()["step_state"]
    assert steps[0] != steps[1]
    alone = ol.ASGD(learning_rate=0.1, lambd=0.5)
    c = np.array([1.0])
    alone.apply_gradients([(np.ones(1), c)])
    opt.apply_gradients([(np.ones(1), a), (np.ones(1), b)])
    alone.apply_gradients([(np.ones(1), c)])
    np.testing.assert_array_equal(b, c)


def test_a_power_that_overflows_gives_a_step_size_of_zero():
    eta, mu = asgd.next_eta_mu(3, 1e10, lambd=1e300, alpha=2.0, t0=0.0)
    assert eta == 0.0 and mu == 1 / 3


# -- the torch drop-in ---------------------------------------------------------------------


torch = pytest.importorskip("torch")
import optimlab.torch as ot  # noqa: E402


def test_torch_state_is_step_eta_mu_ax_in_the_default_dtype():
    p = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    q = torch.nn.Parameter(p.detach().clone())
    ours, theirs = ot.ASGD([p], lr=0.05, t0=1.0), torch.optim.ASGD([q], lr=0.05, t0=1.0)
    for _ in range(4):
        p.grad = torch.ones(4, dtype=torch.float64)
        q.grad = p.grad.clone()
        ours.step()
        theirs.step()
    assert list(ours.state[p]) == ["step", "eta", "mu", "ax"]
    for key in ("step", "eta", "mu"):
        mine, torchs = ours.state[p][key], theirs.state[q][key]
        assert mine.dtype == torchs.dtype == torch.float32 and mine.shape == ()
        assert torch.equal(mine, torchs), key
    # the mu of the next step, 1 / max(1, step - t0) after step 4
    assert float(ours.state[p]["mu"]) == float(np.float32(1 / 3))
    assert torch.allclose(ours.state[p]["ax"], theirs.state[q]["ax"], rtol=0, atol=1e-15)


@pytest.mark.parametrize("lr_dtype", [torch.float32, torch.float64])
def test_torch_a_tensor_lr_computes_eta_in_its_dtype_as_torch(lr_dtype):
    """torch keeps a tensor lr a tensor (_to_scalar), so eta = lr / (1 + lambd lr t)^alpha is a
    tensor expression in lr's dtype: the same eta, bit for bit, and the same parameters."""
    p = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    q = torch.nn.Parameter(p.detach().clone())
    kwargs = dict(lambd=0.3, t0=2.0)
    ours = ot.ASGD([p], lr=torch.tensor(0.05, dtype=lr_dtype), **kwargs)
    theirs = torch.optim.ASGD([q], lr=torch.tensor(0.05, dtype=lr_dtype), **kwargs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):
        p.grad = torch.randn(5, generator=gen, dtype=torch.float64)
        q.grad = p.grad.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours.state[p]["eta"], theirs.state[q]["eta"])
    assert float((p - q).abs().max()) <= 1e-15
    assert float((ours.state[p]["ax"] - theirs.state[q]["ax"]).abs().max()) <= 1e-15


def test_torch_an_older_checkpoint_with_plain_numbers_loads_as_torchs_tensors():
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = ot.ASGD([p], lr=0.05)
    p.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    saved = opt.state_dict()
    for key in ("step", "eta", "mu"):
        saved["state"][0][key] = float(saved["state"][0][key])
    fresh = ot.ASGD([p], lr=0.05)
    fresh.load_state_dict(saved)
    twin = torch.optim.ASGD([torch.nn.Parameter(p.detach().clone())], lr=0.05)
    twin.load_state_dict(saved)
    for key in ("step", "eta", "mu"):
        mine, torchs = fresh.state[p][key], next(iter(twin.state.values()))[key]
        assert isinstance(mine, torch.Tensor) and mine.dtype == torchs.dtype, key
        assert float(mine) == float(torchs)
    bad = opt.state_dict()
    bad["state"][0]["eta"] = "fast"
    with pytest.raises(TypeError, match="'eta' must be a number"):
        ot.ASGD([p], lr=0.05).load_state_dict(bad)


def test_torch_capturable_on_the_cpu_is_refused_as_torch_refuses_it():
    messages = []
    for library in (torch.optim, ot):
        p = torch.nn.Parameter(torch.randn(3))
        opt = library.ASGD([p], capturable=True)
        p.grad = torch.ones(3)
        before = p.detach().clone()
        with pytest.raises(AssertionError) as info:
            opt.step()
        messages.append(str(info.value))
        assert torch.equal(p.detach(), before)
    assert messages[0] == messages[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_capturable_arithmetic_is_torchs_tensor_expressions(dtype):
    """Under capturable=True torch computes eta and mu with tensor operations on the step
    tensor (here run on CPU tensors, the same expressions as torch.optim.ASGD's): the rule's
    capturable numbers agree bit for bit."""
    lr, lambd, alpha, t0 = 0.05, 0.3, 0.75, 2.0
    state_dtype = np.float32 if dtype == torch.float32 else np.float64
    for t in (1, 2, 5, 40):
        step_t = torch.tensor(float(t), dtype=dtype)
        eta = lr / ((1 + lambd * lr * step_t) ** alpha)
        mu = 1 / torch.maximum(step_t - t0, torch.ones_like(step_t))
        mine = asgd.next_eta_mu(
            t, lr, lambd=lambd, alpha=alpha, t0=t0, state_dtype=state_dtype, capturable=True
        )
        assert mine == (float(eta), float(mu)), t
        decay = 1 - lambd * eta
        (mine_decay, mine_eta, _, average), _ = asgd.scalars(
            t + 1,
            lr,
            mine,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            state_dtype=state_dtype,
            capturable=True,
        )
        assert (mine_decay, mine_eta, average) == (float(decay), float(eta), True)
