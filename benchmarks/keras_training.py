"""Training in Keras 3, on its JAX and torch backends: ``optimlab.keras`` against
``keras.optimizers``.

For each optimizer Keras has, two copies of the same model (the same weights) are compiled,
one with ``optimlab.keras.<Optimizer>()`` and one with ``keras.optimizers.<Optimizer>()``
(both ``preset="keras"`` numerics, Keras's defaults), and a whole training step
(``model.train_on_batch``: forward, loss, gradients, the optimizer) is timed on the same
batch. The models: an MLP 784-512-512-10 (670 thousand parameters) on batches of 128 random
inputs from a seeded generator, float32.

``jax``
    the train step is one jitted function; optimlab's update is traced into it.
``torch``
    the train step runs eagerly; optimlab's update is the fused CPU kernel on the variables'
    tensors (:mod:`optimlab.keras._torch_fused`), Keras's own the ``torch._foreach`` ops of
    its torch optimizers. A third model runs optimlab's torch-op chain (the fallback, the
    fused kernel switched off) for the record: its figure is in the JSON, not in the table.

Keras's backend is chosen when keras is first imported, so each backend runs in a process of
its own (``--backend all``, the default, starts one per backend, one after the other; the
variants of a backend run side by side in its process). The machine is noisy, so the variants
are measured alternately: after warm-up steps (the first compiles the train function on JAX,
loads the fused loops on torch), each round times a few steps of each in turn, the order
alternating; a variant's figure is the median over rounds of its per-round median. The ratio
is ``keras / optimlab``: above 1, optimlab's step is faster. At the end the models' weights
are compared (they trained on the same batches).

    python benchmarks/keras_training.py                  # both backends (about two minutes)
    python benchmarks/keras_training.py --backend torch  # one backend, in this process
    python benchmarks/keras_training.py --quick          # a smoke test: seconds, no clean timing
    python benchmarks/keras_training.py --json docs/keras_training.json
    python benchmarks/keras_training.py --table-from docs/keras_training.json   # the README's
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import machine, save_json

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Nadam", "Lion")
BACKENDS = ("jax", "torch")
BATCH = 128
#: what optimlab's update is on each backend, for the table's caption
UPDATE = {
    "jax": "traced into the jitted train step",
    "torch": "the fused CPU kernel, the step eager",
}


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


def _variants(name: str, backend: str) -> dict:
    """variant -> the optimizer of its model: optimlab's and Keras's; on torch also optimlab's
    torch-op chain (the fused kernel off)."""
    import keras

    import optimlab.keras as olk

    variants = {"optimlab": olk.CLASSES[name](), "keras": getattr(keras.optimizers, name)()}
    if backend == "torch":
        chain = olk.CLASSES[name]()
        chain._fused_kernel = False  # (the switch the tests use: the fallback for every variable)
        variants["optimlab torch-ops"] = chain
    return variants


def measure(name: str, rounds: int, steps: int) -> dict:
    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 784)).astype("float32")
    y = rng.integers(0, 10, size=(BATCH,))
    first = _model(keras)
    weights = first.get_weights()
    models = {}
    for variant, optimizer in _variants(name, backend).items():
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
    row = {
        "optimizer": name,
        "optimlab ms": round(ms["optimlab"], 3),
        "keras ms": round(ms["keras"], 3),
        "keras / optimlab": round(ms["keras"] / ms["optimlab"], 3),
        "largest weight difference": difference,
    }
    if "optimlab torch-ops" in ms:
        row["optimlab torch-ops ms"] = round(ms["optimlab torch-ops"], 3)
    return row


def run_backend(rounds: int, steps: int, names) -> dict:
    """Every optimizer's row on this process's Keras backend."""
    import keras

    backend = keras.backend.backend()
    record = {"backend": backend, "keras": keras.__version__}
    if backend == "torch":
        import numba
        import torch

        record["threads"] = f"torch {torch.get_num_threads()}, numba {numba.get_num_threads()}"
    record["rows"] = [measure(name, rounds, steps) for name in names]
    return record


def _in_child(backend: str, argv: list[str]) -> dict:
    """``run_backend`` in a fresh process with ``KERAS_BACKEND=backend``."""
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "backend.json")
        env = dict(os.environ, KERAS_BACKEND=backend)
        command = [sys.executable, __file__, *argv, "--backend", backend, "--backend-json", out]
        subprocess.run(command, env=env, check=True)
        with open(out) as f:
            return json.load(f)


def table(record: dict) -> str:
    """The Markdown table of a saved ``--json`` run (the README's)."""
    keras_versions = sorted({b["keras"] for b in record["backends"]})
    how = "; ".join(f"{b['backend']}: {UPDATE[b['backend']]}" for b in record["backends"])
    lines = [
        f"A training step (`train_on_batch`) of an MLP 784-512-512-10 on batches of "
        f"{record['batch']}, float32, Keras {', '.join(keras_versions)} (optimlab's update on "
        f"{how}); median of {record['rounds']} rounds of {record['steps per round']} steps, "
        f"the variants alternating ({record['machine']})",
        "",
        "| backend | optimizer | optimlab.keras ms | keras.optimizers ms | keras / optimlab "
        "| largest weight difference |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend in record["backends"]:
        for row in backend["rows"]:
            lines.append(
                f"| {backend['backend']} | {row['optimizer']} | {row['optimlab ms']:.3f} | "
                f"{row['keras ms']:.3f} | {row['keras / optimlab']:.2f} | "
                f"{row['largest weight difference']:.1e} |"
            )
    return "\n".join(lines)


def _print(backend: dict) -> None:
    chain = backend["backend"] == "torch"
    print(
        f"# {backend['backend']}"
        + (f" (threads: {backend['threads']})" if "threads" in backend else "")
    )
    print(
        f"{'optimizer':10s} {'optimlab ms':>12s} {'keras ms':>10s} {'keras/optimlab':>15s}"
        + (f" {'torch-ops ms':>13s}" if chain else "")
    )
    for row in backend["rows"]:
        print(
            f"{row['optimizer']:10s} {row['optimlab ms']:12.3f} {row['keras ms']:10.3f} "
            f"{row['keras / optimlab']:15.3f}"
            + (f" {row['optimlab torch-ops ms']:13.3f}" if chain else "")
            + f"   (weights differ by at most {row['largest weight difference']:.1e})"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 rounds of 2 steps")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--only", nargs="*", help="these optimizers only")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    parser.add_argument(
        "--backend",
        choices=(*BACKENDS, "all"),
        default="all",
        help="Keras's backend; all (default): each in a process of its own",
    )
    parser.add_argument("--backend-json", help=argparse.SUPPRESS)  # (a child's record)
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            print(table(json.load(f)))
        return 0
    rounds, steps = (2, 2) if args.quick else (15, 5)
    names = args.only or OPTIMIZERS
    if args.backend == "all":
        passed = ["--quick"] if args.quick else []
        if args.only:
            passed += ["--only", *args.only]
        backends = [_in_child(backend, passed) for backend in BACKENDS]
    else:
        os.environ["KERAS_BACKEND"] = args.backend  # (before keras is imported)
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
            raise SystemExit(f"keras is already imported on another backend than {args.backend}")
        backends = [run_backend(rounds, steps, names)]
        if args.backend_json:
            with open(args.backend_json, "w") as f:
                json.dump(backends[0], f)
            return 0
    for backend in backends:
        _print(backend)
    if args.json:
        record = {
            "machine": machine(),
            "batch": BATCH,
            "rounds": rounds,
            "steps per round": steps,
            "backends": backends,
        }
        save_json(args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
