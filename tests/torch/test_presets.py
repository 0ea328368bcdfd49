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

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import optimlab as ol  # noqa: E402
import optimlab.torch as ot  # noqa: E402

#: drop-in -> (the dialect's class, torch's arguments, the dialect's same arguments)
CASES = {
    "SGD": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), None),
    "Adagrad": ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01), None),
    "RMSprop": ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01), None),
    "Adam": ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01), None),
    "AdamW": ("AdamW", dict(lr=0.01, betas=(0.8, 0.99)), None),
    "NAdam": ("Nadam", dict(lr=0.01, weight_decay=0.01), None),
    "Adamax": ("Adamax", dict(lr=0.01, weight_decay=0.01), None),
    "Adadelta": ("Adadelta", dict(lr=0.5, weight_decay=0.01), None),
    "Lion": ("Lion", dict(lr=0.001, weight_decay=0.1), None),
    "RAdam": ("RAdam", dict(lr=0.01, weight_decay=0.01), None),
    "Rprop": ("Rprop", dict(lr=0.01, etas=(0.4, 1.3)), None),
    "ASGD": ("ASGD", dict(lr=0.01, t0=10.0, weight_decay=0.01), None),
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
    kind, args, _ = CASES[name]
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
    _, args, _ = CASES[name]
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
