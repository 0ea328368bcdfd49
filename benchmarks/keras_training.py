"""Training in Keras 3 on its JAX backend: ``optimlab.keras`` against ``keras.optimizers``.

For each optimizer Keras has, two copies of the same model (the same weights) are compiled,
one with ``optimlab.keras.<Optimizer>()`` and one with ``keras.optimizers.<Optimizer>()``
(both ``preset="keras"`` numerics, Keras's defaults), and a whole training step
(``model.train_on_batch``: forward, loss, gradients, the optimizer, all in Keras's one jitted
function) is timed on the same batch. The models: an MLP 784-512-512-10 (670 thousand
parameters) on batches of 128 random inputs from a seeded generator, float32.

The machine is noisy, so the two variants are measured alternately: after warm-up steps (the
first compiles the train function), each round times a few steps of each in turn, the order
alternating; a variant's figure is the median over rounds of its per-round median. The ratio
is ``keras / optimlab``: above 1, optimlab's step is faster; 1 means the same compiled cost.
At the end the two models' weights are compared (they trained on the same batches).

    python benchmarks/keras_training.py                  # the table (about a minute)
    python benchmarks/keras_training.py --quick          # a smoke test: seconds, no clean timing
    python benchmarks/keras_training.py --json docs/keras_training.json
    python benchmarks/keras_training.py --table-from docs/keras_training.json   # the README's
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

from _machine import machine  # noqa: E402

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Nadam", "Lion")
BATCH = 128


def _model(keras, weights=None):
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    if weights is not None:
        model.set_weights(weights)
    return model


def measure(name: str, rounds: int, steps: int) -> dict:
    import keras
    import numpy as np

    import optimlab.keras as olk

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 784)).astype("float32")
    y = rng.integers(0, 10, size=(BATCH,))
    first = _model(keras)
    weights = first.get_weights()
    models = {}
    for variant, optimizer in (
        ("optimlab", olk.CLASSES[name]()),
        ("keras", getattr(keras.optimizers, name)()),
    ):
        model = _model(keras, weights)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss)
        for _ in range(3):  # compile and warm up
            model.train_on_batch(x, y)
        models[variant] = model
    times = {variant: [] for variant in models}
    order = list(models)
    for r in range(rounds):
        for variant in order if r % 2 == 0 else order[::-1]:
            model = models[variant]
            per_step = []
            for _ in range(steps):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                per_step.append(time.perf_counter() - start)
            times[variant].append(statistics.median(per_step))
    ms = {variant: 1e3 * statistics.median(values) for variant, values in times.items()}
    difference = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(
            models["optimlab"].get_weights(), models["keras"].get_weights(), strict=True
        )
    )
    return {
        "optimizer": name,
        "optimlab ms": round(ms["optimlab"], 3),
        "keras ms": round(ms["keras"], 3),
        "keras / optimlab": round(ms["keras"] / ms["optimlab"], 3),
        "largest weight difference": difference,
    }


def table(record: dict) -> str:
    """The Markdown table of a saved ``--json`` run (the README's)."""
    lines = [
        f"A training step (`train_on_batch`) of an MLP 784-512-512-10 on batches of "
        f"{record['batch']}, Keras {record['keras']} on {record['backend']}, float32; median "
        f"of {record['rounds']} rounds of {record['steps per round']} steps ({record['machine']})",
        "",
        "| optimizer | optimlab.keras ms | keras.optimizers ms | keras / optimlab "
        "| largest weight difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in record["rows"]:
        lines.append(
            f"| {row['optimizer']} | {row['optimlab ms']:.3f} | {row['keras ms']:.3f} | "
            f"{row['keras / optimlab']:.2f} | {row['largest weight difference']:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 rounds of 2 steps")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--only", nargs="*", help="these optimizers only")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            print(table(json.load(f)))
        return 0
    rounds, steps = (2, 2) if args.quick else (15, 5)
    import keras

    rows = [measure(name, rounds, steps) for name in (args.only or OPTIMIZERS)]
    print(f"{'optimizer':10s} {'optimlab ms':>12s} {'keras ms':>10s} {'keras/optimlab':>15s}")
    for row in rows:
        print(
            f"{row['optimizer']:10s} {row['optimlab ms']:12.3f} {row['keras ms']:10.3f} "
            f"{row['keras / optimlab']:15.3f}   (weights differ by at most "
            f"{row['largest weight difference']:.1e})"
        )
    if args.json:
        record = {
            "machine": machine(),
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "batch": BATCH,
            "rounds": rounds,
            "steps per round": steps,
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
