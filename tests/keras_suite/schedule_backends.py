"""In which precision Keras 3 computes its six schedules, backend by backend, against optimlab.

    python -m tests.keras_suite.schedule_backends        # a few minutes

For each configuration (a fresh process each: JAX with 64-bit mode and floatx float32 or
float64, as optimlab's conformance tests run Keras; JAX, PyTorch and NumPy in their default
float32) and each Keras schedule class, it prints the dtype Keras returns, the largest relative
difference from optimlab's float64 value, the number of steps where Keras's value differs
from optimlab's rounded to float32, and, for the float32 configurations, the largest
difference in float32 ulps from the first float32 configuration (JAX): how far Keras's own
backends disagree. Not part of the test run (it starts several Keras processes); the numbers
it prints back the explanation of "Keras's schedules in float32" in ``optimlab differences``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

CONFIGS = [  # (label, KERAS_BACKEND, JAX_ENABLE_X64, floatx)
    ("jax, x64, floatx float32", "jax", "1", "float32"),
    ("jax, x64, floatx float64", "jax", "1", "float64"),
    ("jax (default)", "jax", "0", "float32"),
    ("torch (default)", "torch", "0", "float32"),
    ("numpy (default)", "numpy", "0", "float32"),
]

# (label, class name, args, kwargs, steps)
NEAR_END = [*range(0, 960, 50), *range(960, 1001)]  # the cosines' last steps cancel
RESTARTS_15 = sorted({*range(0, 200, 9), 7, 8, 19, 20, 21, 37, 38, 39, 64, 65, 66, 105, 106})
CASES = [
    ("ExponentialDecay", "ExponentialDecay", (0.1, 10, 0.5), {}, range(0, 300, 10)),
    (
        "ExponentialDecay staircase",
        "ExponentialDecay",
        (0.1, 7, 0.9),
        {"staircase": True},
        range(0, 300, 10),
    ),
    (
        "PiecewiseConstantDecay",
        "PiecewiseConstantDecay",
        ([10, 20], [1.0, 0.5, 0.1]),
        {},
        range(0, 40, 3),
    ),
    (
        "PolynomialDecay power 2",
        "PolynomialDecay",
        (0.1, 100, 0.001),
        {"power": 2.0},
        range(0, 120, 5),
    ),
    (
        "PolynomialDecay cycle",
        "PolynomialDecay",
        (0.1, 10),
        {"power": 0.5, "cycle": True},
        range(0, 100, 3),
    ),
    ("InverseTimeDecay", "InverseTimeDecay", (0.1, 10, 0.5), {}, range(0, 300, 10)),
    ("CosineDecay", "CosineDecay", (0.1, 1000), {}, NEAR_END),
    (
        "CosineDecay warmup",
        "CosineDecay",
        (0.0, 900),
        {"warmup_target": 1e-2, "warmup_steps": 100},
        NEAR_END,
    ),
    (
        "CosineDecayRestarts t_mul 2",
        "CosineDecayRestarts",
        (0.1, 10),
        {"t_mul": 2.0, "m_mul": 0.5, "alpha": 0.1},
        range(0, 320, 7),
    ),
    (
        "CosineDecayRestarts t_mul 1.5",
        "CosineDecayRestarts",
        (0.1, 8),
        {"t_mul": 1.5, "alpha": 0.05},
        RESTARTS_15,
    ),
]

CHILD = r"""
import json, sys
import numpy as np
import keras
keras.config.set_floatx(sys.argv[1])
KS = keras.optimizers.schedules
cases = json.loads(sys.argv[2])
step = keras.Variable(0, dtype="int", trainable=False)  # as the optimizer's counter
out = []
for name, args, kwargs, steps in cases:
    s = getattr(KS, name)(*args, **kwargs)
    values, dtype = [], None
    for k in steps:
        step.assign(k)
        v = np.asarray(keras.ops.convert_to_numpy(s(step)))
        dtype = str(v.dtype)
        values.append(float(v))
    out.append({"dtype": dtype, "values": values})
print(json.dumps(out))
"""


def keras_values(backend: str, x64: str, floatx: str) -> list[dict]:
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_ENABLE_X64=x64, JAX_PLATFORMS="cpu")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    cases = [[cls, list(args), kwargs, list(steps)] for _, cls, args, kwargs, steps in CASES]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, floatx, json.dumps(cases)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def ulps(a: np.ndarray, b: np.ndarray) -> int:
    a, b = a.astype(np.float32).view(np.int32), b.astype(np.float32).view(np.int32)
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.size else 0


def main() -> None:
    from optimlab import schedules

    ours = [
        np.array([getattr(schedules, cls)(*args, **kwargs)(k) for k in steps])
        for _, cls, args, kwargs, steps in CASES
    ]
    reference32 = None
    for label, backend, x64, floatx in CONFIGS:
        results = keras_values(backend, x64, floatx)
        print(f"== Keras 3, {label}")
        for (name, *_), mine, got in zip(CASES, ours, results, strict=True):
            keras = np.array(got["values"])
            rel = np.max(np.abs(keras - mine) / np.maximum(np.abs(mine), 1e-300))
            off32 = int(np.sum(keras.astype(np.float32) != mine.astype(np.float32)))
            line = (
                f"  {name:30s} {got['dtype']:8s} max rel diff from optimlab {rel:.1e}, "
                f"{off32}/{len(mine)} steps differ in float32"
            )
            if x64 == "0" and reference32 is not None:
                line += f", at most {ulps(keras, reference32[name]):d} ulp from jax's"
            print(line)
        if x64 == "0" and reference32 is None:
            reference32 = {
                name: np.array(got["values"])
                for (name, *_), got in zip(CASES, results, strict=True)
            }


if __name__ == "__main__":
    main()
