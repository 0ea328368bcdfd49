"""optimlab.keras on Keras's torch backend, in a fresh process (the backend is chosen when
keras is first imported; one process for every test here): the update gives the NumPy
dialect's numbers, model.fit trains as torch.optim.Adam does, and the fused kernel
(:mod:`optimlab.keras._torch_fused`) runs where it applies, to the bit of the dialect's fused
engine and to float rounding of the torch-op chain, which runs everywhere else."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

#: Lamb on both backends: preset, arguments, dtype (the decay decoupled before the trust ratio
#: in Keras's preset, inside it in optax's, with a clipnorm; float64 and float32)
LAMB_CASES = {
    "keras decay float64": ("keras", {"weight_decay": 0.1}, "float64"),
    "optax decay clipnorm float32": (
        "optax",
        {"learning_rate": 0.01, "weight_decay": 0.1, "clipnorm": 0.5},
        "float32",
    ),
}


def lamb_run(olk, keras, preset, arguments, dtype):
    """optimlab.keras.Lamb's variables after 6 updates from seeded weights and gradients."""
    import numpy as np

    rng = np.random.default_rng(11)
    shapes = [(4, 3), (3,)]
    start = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(6)]
    optimizer = olk.Lamb(preset=preset, **arguments)
    variables = [keras.Variable(p.astype(dtype), dtype=dtype) for p in start]
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(x.astype(dtype)) for x in g], variables)
    return variables


CHILD = (
    inspect.getsource(lamb_run)  # (the same run in the child, on the torch backend)
    + f"LAMB_CASES = {LAMB_CASES!r}\n"
    + r"""
import json
import numpy as np, keras, torch
keras.config.set_floatx("float64")
import optimlab as ol, optimlab.keras as olk

rng = np.random.default_rng(5)
start = [rng.normal(size=(3, 2)), rng.normal(size=(3, 2))]
grads = [[rng.normal(size=(3, 2)) for _ in start] for _ in range(7)]
out = {"backend": keras.backend.backend(), "apply": {}}
cases = [("Adam", "torch", {"amsgrad": True, "weight_decay": 0.1}), ("Nadam", "keras", {}),
         ("RAdam", "optax", {"learning_rate": 0.01}), ("Rprop", "torch", {}),
         ("SGD", "keras", {"momentum": 0.9, "global_clipnorm": 0.5}),
         ("AdamW", "optax", {"learning_rate": 0.01, "clipnorm": 0.3}),
         ("Ftrl", "keras", {"l1_regularization_strength": 0.05}),
         ("ASGD", "torch", {"t0": 2.0, "lambd": 0.01}),
         ("ScheduleFreeAdamW", "optax", {"learning_rate": 0.01, "warmup_steps": 3}),
         ("Muon", "torch", {}), ("Muon", "optax", {"learning_rate": 0.01}),
         ("Adafactor", "keras", {"weight_decay": 0.1}), ("Adafactor", "torch", {}),
         ("Lamb", "keras", {"weight_decay": 0.1}),
         ("Lamb", "optax", {"learning_rate": 0.01, "weight_decay": 0.1})]
for name, preset, arguments in cases:
    optimizer = olk.CLASSES[name](preset=preset, **arguments)
    variables = [keras.Variable(p) for p in start]
    reference = getattr(ol, name)(preset=preset, engine="reference", **arguments)
    params = [p.copy() for p in start]
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
        reference.apply_gradients(zip([x.copy() for x in g], params))
    out["apply"][f"{name}-{preset}"] = max(
        float(np.max(np.abs(keras.ops.convert_to_numpy(v) - p) / np.abs(p)))
        for v, p in zip(variables, params))
out["lamb"] = {}
for label, (preset, arguments, dtype) in LAMB_CASES.items():
    out["lamb"][label] = [keras.ops.convert_to_numpy(v).tolist()
                          for v in lamb_run(olk, keras, preset, arguments, dtype)]

# the fused kernel against the dialect's fused engine (bits) and the torch-op chain (rounding)
def keras_run(name, preset, arguments, dtypes, start, grads, kernel=True, excluded=()):
    optimizer = olk.CLASSES[name](preset=preset, **arguments)
    optimizer._fused_kernel = kernel
    variables = [keras.Variable(p.astype(d), dtype=d) for p, d in zip(start, dtypes)]
    if excluded:
        optimizer.exclude_from_weight_decay([variables[k] for k in excluded])
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(x.astype(d)) for x, d in zip(g, dtypes)],
                        variables)
    slots = optimizer._slot_variables
    names = [n for n, _ in optimizer._optimlab.rule.SLOTS if n in slots]
    arrays = [keras.ops.convert_to_numpy(v) for v in variables]
    arrays += [keras.ops.convert_to_numpy(slots[n][i]) for n in names for i in range(len(start))]
    return arrays, len(optimizer.__dict__.get("_fused_views", {}))

def dialect_run(name, preset, arguments, dtype, start, grads, excluded=()):
    optimizer = getattr(ol, name)(preset=preset, engine="fused", nan_policy="propagate",
                                  **arguments)
    params = [p.astype(dtype) for p in start]
    if excluded:
        optimizer.exclude_from_weight_decay([params[k] for k in excluded])
    for g in grads:
        optimizer.apply_gradients(zip([x.astype(dtype) for x in g], params))
    slots = [[s for s in per if s is not None] for per in optimizer._slots]
    return params + [s[j] for j in range(len(slots[0])) for s in slots]

def compare(name, preset, arguments, dtype="float32", steps=3, excluded=(), nan=False):
    shapes = [(3, 2), (5,)]
    start = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(steps)]
    if nan:
        grads[1][0][1, 1] = np.nan
    dtypes = [dtype] * len(shapes)
    fast, views = keras_run(name, preset, arguments, dtypes, start, grads, excluded=excluded)
    chain, chain_views = keras_run(name, preset, arguments, dtypes, start, grads, False, excluded)
    exact = dialect_run(name, preset, arguments, dtype, start, grads, excluded)
    return {
        "views": views,
        "chain views": chain_views,
        "bits": len(fast) == len(exact) and all(
            a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
            for a, b in zip(fast, exact)),
        "rounding": max(float(np.nanmax(np.abs(a - b)) / max(1.0, np.nanmax(np.abs(b))))
                        for a, b in zip(fast, chain)),
        "same nan": all(np.array_equal(np.isnan(a), np.isnan(b)) for a, b in zip(fast, chain)),
        "nan": sum(int(np.isnan(a).sum()) for a in fast),
    }

out["fused"] = {}
for name, cls in olk.CLASSES.items():
    if getattr(cls.dialect.rule, "TENSOR", False):  # Lamb, Muon, Adafactor: no fused kernel
        continue
    for preset in ("keras", "torch", "optax"):
        arguments = {"learning_rate": 0.01} if preset == "optax" else {}
        out["fused"][f"{name}-{preset}"] = compare(name, preset, arguments, steps=2)
options = {
    "SGD maximize clipnorm": ("SGD", "keras", {"momentum": 0.9, "maximize": True,
                                                "clipnorm": 0.3}),
    "Adam global_clipnorm l2": ("Adam", "torch", {"global_clipnorm": 0.5, "weight_decay": 0.1}),
    "RMSprop clipvalue": ("RMSprop", "keras", {"clipvalue": 0.2, "centered": True,
                                               "momentum": 0.5}),
    "AdamW decoupled": ("AdamW", "keras", {"weight_decay": 0.1}),
    "ScheduleFreeAdamW decay": ("ScheduleFreeAdamW", "optax",
                                {"learning_rate": 0.01, "weight_decay": 0.1}),
    "Adam loss scale": ("Adam", "keras", {"loss_scale_factor": 8.0}),
}
for label, (name, preset, arguments) in options.items():
    out["fused"][label] = compare(name, preset, arguments, dtype="float64")
out["fused"]["AdamW excluded"] = compare("AdamW", "torch", {"weight_decay": 0.1}, excluded=(1,))
out["nan"] = {name: compare(name, "keras", {}, nan=True) for name in ("Adam", "Lion", "Rprop")}
# Keras's own options around the update: accumulation and the EMA (the chain's numbers)
shapes = [(3, 2), (5,)]
start = [rng.normal(size=s) for s in shapes]
grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
keras_options = {"gradient_accumulation_steps": 2, "use_ema": True}
fast, views = keras_run("Adam", "keras", keras_options, ["float32"] * 2, start, grads)
chain, _ = keras_run("Adam", "keras", keras_options, ["float32"] * 2, start, grads, False)
out["keras options"] = {"views": views,
                        "rounding": max(float(np.max(np.abs(a - b))) for a, b in zip(fast, chain))}
# where the kernel does not apply: a float16 variable beside a float32 one; Ftrl's general power
mixed, views = keras_run("Adam", "keras", {}, ["float16", "float32"], start, grads)
chain, _ = keras_run("Adam", "keras", {}, ["float16", "float32"], start, grads, False)
out["fallback"] = {
    "mixed views": views,
    "float16 moved": bool(np.any(mixed[0] != start[0].astype("float16"))),
    "float16 is the chain's": all(np.array_equal(a, b) for a, b in zip(mixed[::2], chain[::2])),
    "ftrl views": keras_run("Ftrl", "keras", {"learning_rate_power": -0.7}, ["float32"] * 2,
                            start, grads)[1],
}

x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
kernel, bias = rng.normal(size=(3, 2)), rng.normal(size=(2,))
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.layers[0].set_weights([kernel, bias])
model.compile(optimizer=olk.Adam(learning_rate=0.1, preset="torch", weight_decay=0.01), loss="mse")
model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)
linear = torch.nn.Linear(3, 2).double()
with torch.no_grad():
    linear.weight.copy_(torch.tensor(kernel.T))
    linear.bias.copy_(torch.tensor(bias))
adam = torch.optim.Adam(linear.parameters(), lr=0.1, weight_decay=0.01)
for _ in range(5):
    adam.zero_grad()
    ((linear(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
    adam.step()
k, b = model.layers[0].get_weights()
out["fit"] = float(np.max(np.abs(k.T - linear.weight.detach().numpy()) / np.abs(k.T)))
print("RESULT", json.dumps(out))
"""
)


@pytest.fixture(scope="module")
def torch_run():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=str(root / "src"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [s for s in done.stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_the_rule_on_torch_tensors_matches_the_dialect(torch_run):
    assert torch_run["backend"] == "torch"
    assert len(torch_run["apply"]) == 15
    for case, error in torch_run["apply"].items():
        assert error <= 1e-12, case  # (0 where measured: the host's step numbers, IEEE ops)


def test_fit_on_the_torch_backend_is_torch_adam(torch_run):
    # Keras's torch backend computes the mse loss in float32: its gradients are float32-exact
    assert torch_run["fit"] <= 1e-6


def test_lamb_there_is_lamb_on_the_jax_backend(torch_run):
    """Lamb's tensor-level rule on the torch backend's host path: the parameters of the JAX
    backend's (this process) run, within the rounding of the norms (NumPy's sum there, XLA's
    here) and, in float32, of the traced step numbers (float32 here, float64 on the host)."""
    import keras
    import numpy as np

    import optimlab.keras as olk

    assert keras.backend.backend() == "jax"
    assert sorted(torch_run["lamb"]) == sorted(LAMB_CASES)
    for label, (preset, arguments, dtype) in LAMB_CASES.items():
        here = [
            keras.ops.convert_to_numpy(v) for v in lamb_run(olk, keras, preset, arguments, dtype)
        ]
        tolerance = 1e-14 if dtype == "float64" else 2e-6
        for ours, theirs in zip(here, torch_run["lamb"][label], strict=True):
            theirs = np.asarray(theirs)
            assert ours.shape == theirs.shape
            assert not np.array_equal(ours, np.zeros_like(ours))
            np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=0, err_msg=label)


def _every_case(torch_run):
    cases = {**torch_run["fused"], **{f"{k} nan": v for k, v in torch_run["nan"].items()}}
    # every elementwise optimizer of optimlab.keras (all but Lamb) under each preset, options
    assert len(cases) == 14 * 3 + 7 + 3
    return cases


def test_the_fused_kernel_runs_and_is_the_dialects_fused_engine_to_the_bit(torch_run):
    for case, result in _every_case(torch_run).items():
        assert result["views"] == 2 and result["chain views"] == 0, case  # both variables fused
        # the same loop on the same numbers: parameters and every slot, bit for bit
        assert result["bits"], case


def test_the_fused_kernel_is_the_torch_op_chain_to_float_rounding(torch_run):
    for case, result in _every_case(torch_run).items():
        assert result["same nan"], case
        assert result["rounding"] <= 1e-6, case  # (0 in most cases: the same IEEE operations)


def test_a_nan_gradient_goes_as_documented_on_the_fused_path(torch_run):
    # nan_policy="propagate" (optimlab.keras's only one): as in the dialect (bits) and the
    # torch-op chain, a NaN reaches the parameter it belongs to and the slots that read it
    # (Adam: p, m, v; Lion: p through NumPy's sign(NaN) = NaN, and m), and Rprop holds the
    # coordinate and its step size (rules/rprop.py: torch's sign of NaN is 0)
    nan = torch_run["nan"]
    assert (nan["Adam"]["nan"], nan["Lion"]["nan"], nan["Rprop"]["nan"]) == (3, 2, 0)
    for name, result in nan.items():
        assert result["bits"] and result["same nan"], name


def test_keras_accumulation_and_ema_around_the_fused_update(torch_run):
    assert torch_run["keras options"]["views"] == 2
    assert torch_run["keras options"]["rounding"] <= 1e-6


def test_the_torch_op_chain_runs_where_the_kernel_does_not_apply(torch_run):
    fallback = torch_run["fallback"]
    assert fallback["mixed views"] == 1 and fallback["float16 moved"]  # float16: the chain
    assert fallback["float16 is the chain's"]
    assert fallback["ftrl views"] == 0  # a general learning_rate_power: the dialect's choice
