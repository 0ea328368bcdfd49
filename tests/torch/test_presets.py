"""``preset="keras" | "optax"`` on the optimlab.torch drop-ins: the NumPy dialect's numbers.

Each drop-in under each preset its peer has, on float64 tensors, against
``optimlab.<Class>(preset=...)`` on float64 NumPy arrays with the same hyperparameters: 40
steps of seeded gradients, a learning-rate change at step 20, and a parameter that misses
every third gradient (so the step counts of the two counting conventions part). The fused
engine runs the same compiled kernel as the dialect's (bit for bit); the torch-ops engine
runs the rule's own code in torch operations (within 1e-12, relative). Then the defaults
("explicit arguments win, the others the preset's"), the refusals and the state dict.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import optimlab as ol  # noqa: E402
import optimlab.torch as ot  # noqa: E402

#: drop-in -> (the dialect's class, torch's arguments; the dialect gets the same under its names)
CASES = {
    "SGD": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    "Adagrad": ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    "RMSprop": ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    "Adam": ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    "AdamW": ("AdamW", dict(lr=0.01, betas=(0.8, 0.99))),
    "NAdam": ("Nadam", dict(lr=0.01, weight_decay=0.01)),
    "Adamax": ("Adamax", dict(lr=0.01, weight_decay=0.01)),
    "Adadelta": ("Adadelta", dict(lr=0.5, weight_decay=0.01)),
    "Lion": ("Lion", dict(lr=0.001, weight_decay=0.1)),
    "RAdam": ("RAdam", dict(lr=0.01, weight_decay=0.01)),
    "Rprop": ("Rprop", dict(lr=0.01, etas=(0.4, 1.3))),
    "ASGD": ("ASGD", dict(lr=0.01, t0=10.0, weight_decay=0.01)),
}

_NAMES = {
    "lr": "learning_rate",
    "eps": "epsilon",
    "alpha": "rho",
    "betas": ("beta_1", "beta_2"),
    "etas": ("eta_minus", "eta_plus"),
}


def _dialect_arguments(name: str, torch_args: dict) -> dict:
    out = {}
    for key, value in torch_args.items():
        if name == "ASGD" and key == "alpha":
            out[key] = value
            continue
        target = _NAMES.get(key, key)
        if isinstance(target, tuple):
            out.update(zip(target, value, strict=True))
        else:
            out[target] = value
    return out


def _available(name: str) -> list[str]:
    return [p for p in ("keras", "optax") if p in ot.OPTIMIZERS[name].presets_available]


PAIRS = [(name, preset) for name in CASES for preset in _available(name)]
SHAPES = ((5,), (2, 3), (4,))
STEPS = 40


def _gradients(seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for step in range(STEPS):
        grads = [rng.standard_normal(shape) for shape in SHAPES]
        if step % 3 == 1:
            grads[2] = None  # the last parameter misses a gradient
        out.append(grads)
    return out


def _initial(seed: int):
    rng = np.random.default_rng(seed + 100)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _run_dialect(name, preset, seed):
    kind, args = CASES[name]
    params = [p.copy() for p in _initial(seed)]
    opt = getattr(ol, kind)(**_dialect_arguments(name, args), preset=preset)
    lr = args["lr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras's warning of a None gradient
        for step, grads in enumerate(_gradients(seed)):
            if step == 20:
                opt.learning_rate = lr * 0.5
            opt.apply_gradients(zip(grads, params, strict=True))
    return params


def _run_torch(name, preset, seed, engine):
    _, args = CASES[name]
    params = [torch.tensor(p, requires_grad=True) for p in _initial(seed)]
    opt = getattr(ot, name)(params, **args, preset=preset, engine=engine)
    for step, grads in enumerate(_gradients(seed)):
        if step == 20:
            for group in opt.param_groups:
                group["lr"] = args["lr"] * 0.5
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(("name", "preset"), PAIRS)
def test_drop_in_computes_the_dialects_numbers(name, preset):
    expected = _run_dialect(name, preset, seed=len(name))
    fused = _run_torch(name, preset, len(name), "fused")
    for ours, theirs in zip(fused, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # the same compiled kernel
    ops = _run_torch(name, preset, len(name), "torch")
    for ours, theirs in zip(ops, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


# -- defaults: the explicit arguments win, the others are the preset's -----------------------


def _param():
    return [torch.zeros(3, dtype=torch.float64, requires_grad=True)]


def test_torch_is_the_default_preset_and_keeps_torchs_layout():
    params = _param()
    params[0].grad = torch.ones(3, dtype=torch.float64)
    default, explicit = ot.Adam(params), ot.Adam(_param(), preset="torch")
    assert default.preset == explicit.preset == "torch"
    assert default.defaults == explicit.defaults == torch.optim.Adam(_param()).defaults
    default.step()
    assert "preset" not in default.state_dict()["param_groups"][0]


def test_left_out_arguments_take_the_presets_defaults_and_explicit_ones_win():
    keras = ot.Adam(_param(), preset="keras").defaults
    assert (keras["lr"], keras["eps"], keras["decoupled_weight_decay"]) == (1e-3, 1e-7, True)
    assert keras["preset"] == "keras"
    mine = ot.Adam(_param(), eps=1e-8, decoupled_weight_decay=False, preset="keras").defaults
    assert (mine["eps"], mine["decoupled_weight_decay"]) == (1e-8, False)
    assert ot.AdamW(_param(), preset="keras").defaults["weight_decay"] == 0.004
    assert ot.AdamW(_param(), lr=1.0, preset="optax").defaults["weight_decay"] == 1e-4
    assert ot.RMSprop(_param(), preset="keras").defaults["alpha"] == 0.9
    assert ot.NAdam(_param(), lr=1.0, preset="optax").defaults["momentum_decay"] is None
    assert ot.Lion(_param(), preset="keras").defaults["lr"] == 1e-3
    with pytest.raises(TypeError, match="lr is required with preset='optax'"):
        ot.Adam(_param(), preset="optax")


def test_an_explicit_l2_decay_under_keras_is_the_dialects_l2():
    """decoupled_weight_decay=False under preset="keras": weight_decay_mode="l2"."""
    grads = [np.random.default_rng(0).standard_normal(3) for _ in range(5)]
    p = np.ones(3)
    ref = ol.Adam(learning_rate=0.1, weight_decay=0.1, weight_decay_mode="l2", preset="keras")
    q = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = ot.Adam([q], lr=0.1, weight_decay=0.1, decoupled_weight_decay=False, preset="keras")
    for g in grads:
        ref.apply_gradients([(g, p)])
        q.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_array_equal(q.detach().numpy(), p)


def _rosenbrock_numpy(params):
    x = params[0]
    r = x[1] - x[0] ** 2
    return (1 - x[0]) ** 2 + 10 * r**2, [np.array([-2 * (1 - x[0]) - 40 * x[0] * r, 20 * r])]


def _lbfgs_torch(preset, steps, **kwargs):
    x = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    opt = ot.LBFGS([x], preset=preset, **kwargs)

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 10 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return x.detach().numpy(), opt


def test_lbfgs_keras_preset_is_torchs_iteration():
    """Keras has no L-BFGS: optimlab's preset is torch's numbers, so the same bits."""
    torchs, _ = _lbfgs_torch("torch", 2, line_search_fn="strong_wolfe")
    keras, opt = _lbfgs_torch("keras", 2, line_search_fn="strong_wolfe")
    np.testing.assert_array_equal(torchs, keras)
    assert opt.state_dict()["param_groups"][0]["preset"] == "keras"


def test_lbfgs_optax_preset_is_the_dialects_iteration():
    """optax.lbfgs (one iteration per step, history 10, the zoom line search), left-out
    arguments its defaults: optimlab.LBFGS(preset="optax")'s iterates within 1e-12."""
    ours, opt = _lbfgs_torch("optax", 12)
    group = opt.param_groups[0]
    assert (group["max_iter"], group["history_size"], group["line_search_fn"]) == (1, 10, "zoom")
    params = [np.array([1.5, -0.5])]
    ref = ol.LBFGS(preset="optax")
    for _ in range(12):
        ref.step(_rosenbrock_numpy, params)
    np.testing.assert_allclose(ours, params[0], rtol=1e-12)
    assert not np.allclose(ours, [1.5, -0.5])


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["jax", 3, None, "Torch"])
def test_an_unknown_preset_is_refused_naming_the_argument(value):
    for name in ("Adam", "SGD", "SparseAdam", "Muon", "Adafactor", "NAdam"):
        with pytest.raises(ValueError, match=r"preset must be one of 'keras', 'torch', 'optax'"):
            ot.OPTIMIZERS[name]([torch.zeros(2, 2)], preset=value)
    with pytest.raises(ValueError, match="preset must be one of"):
        ot.LBFGS([torch.zeros(2)], preset=value)


@pytest.mark.parametrize(
    ("name", "preset"),
    [("SparseAdam", "keras"), ("SparseAdam", "optax")],
)
def test_a_preset_without_such_optimizer_is_refused(name, preset):
    with pytest.raises(ValueError, match=f"preset must be one of 'torch'.*got '{preset}'"):
        ot.OPTIMIZERS[name]([torch.zeros(2, 2)], preset=preset)


@pytest.mark.parametrize("flag", ["fused", "capturable", "differentiable"])
def test_torchs_own_options_are_refused_under_another_preset(flag):
    with pytest.raises(ValueError, match=f"{flag}=True .* with preset='keras' it must be False"):
        ot.Adam(_param(), preset="keras", **{flag: True})


def _trained(preset, steps=3, **kwargs):
    params = [torch.ones(4, dtype=torch.float64, requires_grad=True)]
    opt = ot.Adam(params, lr=0.1, preset=preset, **kwargs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        params[0].grad = torch.randn(4, dtype=torch.float64, generator=gen)
        opt.step()
    return params, opt


def _world(opt, params):
    return (
        [p.detach().clone() for p in params],
        {k: v.clone() for k, v in opt.state[params[0]].items()},
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
    )


def _same(a, b):
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert a[1].keys() == b[1].keys() and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
    assert a[2] == b[2]


def test_a_group_of_another_preset_is_refused_and_nothing_changes():
    params, opt = _trained("keras")
    before = _world(opt, params)
    extra = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="preset must be 'keras'.*got 'torch'"):
        opt.add_param_group({"params": [extra], "preset": "torch"})
    assert len(opt.param_groups) == 1
    opt.param_groups[0]["preset"] = "jax"  # between steps
    with pytest.raises(ValueError, match="param group 0: preset must be 'keras'.*got 'jax'"):
        opt.step()
    opt.param_groups[0]["preset"] = "keras"
    _same(before, _world(opt, params))


@pytest.mark.parametrize(("saved", "loading"), [("keras", "torch"), ("torch", "optax")])
def test_a_state_dict_of_another_preset_is_refused_and_nothing_changes(saved, loading):
    _, source = _trained(saved)
    params, opt = _trained(loading)
    before = _world(opt, params)
    with pytest.raises(ValueError, match=f"saved with preset='{saved}'.*nothing was changed"):
        opt.load_state_dict(source.state_dict())
    _same(before, _world(opt, params))


@pytest.mark.parametrize("name", ["Adam", "NAdam"])
def test_a_state_dict_round_trip_continues_the_same_run(name):
    """Saved after 3 steps and loaded into a fresh optimizer of the preset, 3 more steps are
    those of the uninterrupted run (the global count and NAdam's product come back too)."""
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(4, dtype=torch.float64, generator=gen) for _ in range(6)]

    def run(split):
        p = torch.ones(4, dtype=torch.float64, requires_grad=True)
        opt = getattr(ot, name)([p], lr=0.1, preset="keras")
        for k, g in enumerate(grads):
            if split and k == 3:
                saved = opt.state_dict()
                opt = getattr(ot, name)([p], lr=0.1, preset="keras")
                opt.load_state_dict(saved)
            p.grad = g.clone()
            opt.step()
        return p.detach()

    assert torch.equal(run(False), run(True))


@pytest.mark.parametrize("preset", ["keras", "optax"])
def test_adafactor_keras_and_optax_presets_are_the_dialects(preset):
    """Keras's Adafactor (g^2 + 1e-30, float32 means, the decay before RMS(p), the global
    count) and optax's (no relative step, its two largest axes factored when both have >= 128
    entries, the decay after the learning rate) on matrices and a vector, both run by the same
    NumPy rule: the same bits."""
    rng = np.random.default_rng(3)
    shapes = ((3, 4), (5,), (128, 2, 130))
    initial = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(30)]
    arrays = [p.copy() for p in initial]
    ref = ol.Adafactor(learning_rate=0.01, weight_decay=0.1, preset=preset)
    tensors = [torch.tensor(p, requires_grad=True) for p in initial]
    opt = ot.Adafactor(tensors, lr=0.01, weight_decay=0.1, preset=preset)
    for step, gs in enumerate(grads):
        if step == 15:
            ref.learning_rate = 0.005
            opt.param_groups[0]["lr"] = 0.005
        ref.apply_gradients(zip(gs, arrays, strict=True))
        for t, g in zip(tensors, gs, strict=True):
            t.grad = torch.tensor(g)
        opt.step()
    for t, p in zip(tensors, arrays, strict=True):
        np.testing.assert_array_equal(t.detach().numpy(), p)
    # torch's layout of the factors (the averaged axis kept as 1), on the preset's axes
    shapes = {k: tuple(v.shape) for k, v in opt.state[tensors[2]].items() if k != "step"}
    small = {k: tuple(v.shape) for k, v in opt.state[tensors[0]].items() if k != "step"}
    if preset == "keras":  # the last two axes, any size
        assert shapes == {"row_var": (128, 2, 1), "col_var": (128, 1, 130)}
        assert small == {"row_var": (3, 1), "col_var": (1, 4)}
    else:  # optax: the two largest axes (0 and 2), both >= 128; (3, 4) is not factored
        assert shapes == {"row_var": (128, 2, 1), "col_var": (1, 2, 130)}
        assert small == {"variance": (3, 4)}


@pytest.mark.parametrize("preset", ["keras", "optax"])
def test_muon_keras_and_optax_presets_are_the_dialects(preset):
    """Two matrices (one tall, one wide; the second misses a gradient now and then), 30 steps
    with a learning-rate change: the dialect's rule on the tensors' memory, the same bits."""
    rng = np.random.default_rng(4)
    shapes = ((4, 3), (2, 5))
    initial = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(30)]
    for step in range(2, 30, 4):
        grads[step][1] = None
    arrays = [p.copy() for p in initial]
    ref = ol.Muon(learning_rate=0.02, weight_decay=0.1, preset=preset)
    tensors = [torch.tensor(p, requires_grad=True) for p in initial]
    opt = ot.Muon(tensors, lr=0.02, weight_decay=0.1, preset=preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for step, gs in enumerate(grads):
            if step == 15:
                ref.learning_rate = 0.01
                opt.param_groups[0]["lr"] = 0.01
            ref.apply_gradients(zip(gs, arrays, strict=True))
            for t, g in zip(tensors, gs, strict=True):
                t.grad = None if g is None else torch.tensor(g)
            opt.step()
    for t, p in zip(tensors, arrays, strict=True):
        np.testing.assert_array_equal(t.detach().numpy(), p)


@pytest.mark.parametrize("name", ["Adam", "NAdam"])
def test_float32_keras_takes_the_powers_of_float32_betas(name):
    """Keras's power_precision: float32 parameters take 1 - float32(beta)^t, as the dialect
    (optimlab's fused kernel on both sides: the same bits)."""
    kind, args = CASES[name]
    rng = np.random.default_rng(7)
    initial = rng.standard_normal(6).astype(np.float32)
    grads = [rng.standard_normal(6).astype(np.float32) for _ in range(30)]
    p = initial.copy()
    ref = getattr(ol, kind)(**_dialect_arguments(name, args), preset="keras")
    q = torch.tensor(initial, requires_grad=True)
    opt = getattr(ot, name)([q], **args, preset="keras", engine="fused")
    for g in grads:
        ref.apply_gradients([(g, p)])
        q.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_array_equal(q.detach().numpy(), p)
    assert opt._arguments(opt.param_groups[0])["power_dtype"] == np.float32


def test_a_pickled_optimizer_keeps_its_preset():
    _, opt = _trained("optax")
    copy = pickle.loads(pickle.dumps(opt))
    assert copy.preset == "optax" and copy.param_groups[0]["preset"] == "optax"
    lbfgs = pickle.loads(pickle.dumps(ot.LBFGS([torch.ones(2)], preset="optax")))
    assert lbfgs.preset == "optax"
