"""optimlab.keras on Keras's torch backend, in a fresh process (the backend is chosen when
keras is first imported): the rule on the variables' torch tensors gives the NumPy dialect's
numbers, and model.fit trains as torch.optim.Adam does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

CHILD = r"""
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
         ("Adafactor", "keras", {"weight_decay": 0.1}), ("Adafactor", "torch", {})]
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
try:
    olk.Lamb()
except NotImplementedError as error:
    out["lamb"] = str(error)

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
    assert len(torch_run["apply"]) == 13
    for case, error in torch_run["apply"].items():
        assert error <= 1e-12, case  # (0 where measured: the host's step numbers, IEEE ops)


def test_fit_on_the_torch_backend_is_torch_adam(torch_run):
    # Keras's torch backend computes the mse loss in float32: its gradients are float32-exact
    assert torch_run["fit"] <= 1e-6


def test_lamb_is_refused_there(torch_run):
    assert "not available on Keras's torch backend yet" in torch_run["lamb"]
