"""Training a real model: ``optimlab.torch`` against ``torch.optim`` on CPU, step for step.

For each model and optimizer, one process builds a copy of the same model (the same weights,
through ``state_dict``) for every variant:

* ``optimlab``: ``optimlab.torch.<Optimizer>`` (the fused numba kernel on the tensors' memory);
* ``torch default``: ``torch.optim.<Optimizer>`` as constructed by default (``foreach=None,
  fused=None``), which on CPU is the for-loop over tensors;
* ``torch foreach``: ``foreach=True``;
* ``torch fused``: ``fused=True``, where torch has it on CPU (SGD, Adagrad, Adam, AdamW).

Two times per variant: a whole ``training step`` (``zero_grad()``, forward, cross-entropy,
``backward()``, ``optimizer.step()``) and ``optimizer.step`` alone (repeated on the gradients
of the last backward). Models: the digits MLP and CNN of :mod:`optimlab.torch.examples` on
batches of 64 real images, and ``wide_mlp()`` (9.45 million parameters) on batches of 64 random
inputs from a seeded generator. All in float32.

The machine is noisy, so the variants are measured alternately: after warm-up steps (the first
optimlab step loads or compiles the numba kernels), each round times a few steps of every
variant in turn, the order rotating from round to round; a variant's figure is the median over
rounds of its per-round median. Ratios are ``torch variant / optimlab`` from the same rounds:
above 1, optimlab is faster.

    python benchmarks/torch_training.py                     # the full table (a few minutes)
    python benchmarks/torch_training.py --quick             # a smoke test: seconds, no clean timing
    python benchmarks/torch_training.py --json docs/torch_training.json
    python benchmarks/torch_training.py --table-from docs/torch_training.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import time

from _machine import machine, save_json

VARIANTS = ("optimlab", "torch default", "torch foreach", "torch fused")
# the torch.optim arguments of each torch variant ("torch default": foreach=None, fused=None)
TORCH_ONLY = {
    "torch default": {},
    "torch foreach": {"foreach": True},
    "torch fused": {"fused": True},
}
TORCH_FUSED = {"SGD", "Adagrad", "Adam", "AdamW"}
TIMED = ("training step", "optimizer.step")
BATCH = 64

# optimizer: its arguments (the same for optimlab.torch and torch.optim)
OPTIMIZERS = {
    "SGD": {"lr": 1e-2, "momentum": 0.9},
    "Adam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3},
    "Adagrad": {"lr": 1e-2},
    "RMSprop": {"lr": 1e-3},
    "NAdam": {"lr": 2e-3},
}
QUICK_OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop"]

# model: (rounds, timed steps per round and variant, warm-up steps) of the full run
MODELS = {
    "digits MLP": (9, 30, 10),
    "digits CNN": (9, 30, 10),
    "wide MLP": (9, 5, 2),
}
QUICK_MODELS = ["digits MLP", "digits CNN"]
QUICK_PLAN = (2, 2, 1)


def _optimlab_torch():
    """``optimlab.torch`` and its examples, imported on first use (``--table-from`` needs
    neither torch nor numba)."""
    import optimlab.torch
    from optimlab.torch import examples

    return optimlab.torch, examples


def build_model(name: str):
    """The model ``name`` with the weights of ``torch.manual_seed(0)``, and a function that
    returns the i-th (inputs, labels) batch, the same for every variant."""
    import torch

    _, examples = _optimlab_torch()
    torch.manual_seed(0)
    if name == "wide MLP":
        model = examples.wide_mlp()
        generator = torch.Generator().manual_seed(0)
        batches = [
            (
                torch.randn(BATCH, 1024, generator=generator),
                torch.randint(0, 10, (BATCH,), generator=generator),
            )
            for _ in range(4)
        ]
    else:
        model = examples.DigitsMLP() if name == "digits MLP" else examples.DigitsCNN()
        data = examples.digits(seed=0)
        order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(0))
        batches = [
            (data.x_train[idx], data.y_train[idx])
            for idx in order.split(BATCH)
            if len(idx) == BATCH
        ]
    return model, lambda i: batches[i % len(batches)]


def build_variants(model_name: str, optimizer: str) -> tuple[dict, object, int]:
    """Every variant of one optimizer on its own copy of the same model (same weights)."""
    import torch

    olt, _ = _optimlab_torch()
    base, batch = build_model(model_name)
    weights = {k: v.clone() for k, v in base.state_dict().items()}
    arguments = OPTIMIZERS[optimizer]
    variants = {}
    for label in VARIANTS:
        if label == "torch fused" and optimizer not in TORCH_FUSED:
            continue
        model = copy.deepcopy(base)
        model.load_state_dict(weights)
        if label == "optimlab":
            opt = getattr(olt, optimizer)(model.parameters(), **arguments)
        else:
            cls = getattr(torch.optim, optimizer)
            opt = cls(model.parameters(), **arguments, **TORCH_ONLY[label])
        variants[label] = (model, opt)
    count = sum(p.numel() for p in base.parameters())
    return variants, batch, count


class Runner:
    """The training loop of one variant: the same batches, in the same order, for each."""

    def __init__(self, model, opt, batch) -> None:
        import torch

        self.model, self.opt, self.batch = model, opt, batch
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.i = 0

    def train_step(self) -> None:
        x, y = self.batch(self.i)
        self.i += 1
        self.opt.zero_grad()
        self.loss_fn(self.model(x), y).backward()
        self.opt.step()

    def optimizer_step(self) -> None:
        self.opt.step()


def _median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run_case(model_name: str, optimizer: str, plan: tuple[int, int, int]) -> dict:
    """Time every variant of ``optimizer`` on ``model_name``, alternately, in rounds."""
    rounds, steps, warmup = plan
    variants, batch, count = build_variants(model_name, optimizer)
    runners = {label: Runner(model, opt, batch) for label, (model, opt) in variants.items()}
    for runner in runners.values():
        for _ in range(warmup):
            runner.train_step()
        runner.optimizer_step()
    labels = list(runners)
    per_round = {timed: {label: [] for label in labels} for timed in TIMED}
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        gc.collect()
        gc.disable()
        try:
            for label in order:
                runner = runners[label]
                per_round["training step"][label].append(_median_ms(runner.train_step, steps))
                per_round["optimizer.step"][label].append(_median_ms(runner.optimizer_step, steps))
        finally:
            gc.enable()
    return {
        "model": model_name,
        "parameters": count,
        "batch": BATCH,
        "optimizer": optimizer,
        "arguments": OPTIMIZERS[optimizer],
        "rounds": rounds,
        "steps_per_round": steps,
        "warmup_steps": warmup,
        "ms": {
            timed: {label: statistics.median(v) for label, v in by_label.items()}
            for timed, by_label in per_round.items()
        },
        "per_round_ms": per_round,
    }


def _numba_environment() -> dict:
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        layer = "not started"
    return {
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
    }


def environment() -> dict:
    """Versions and thread counts (numba's threading layer once a parallel kernel ran)."""
    import torch

    return {
        "machine": machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        **_numba_environment(),
    }


def summary(run: dict) -> str:
    env = run["environment"]
    plans = sorted({(r["rounds"], r["steps_per_round"]) for r in run["rows"]}, reverse=True)
    rounds = ", ".join(f"{r} rounds of {s} steps" for r, s in plans)
    return (
        f"{env['machine']}; torch {env['torch']} threads {env['torch_threads']}, numba "
        f"{env['numba']} threads {env['numba_threads']}; float32, batch {BATCH}; median of "
        f"per-round medians ({rounds}), variants alternated"
    )


def _fmt(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def table(run: dict) -> str:
    """Markdown: optimlab's time and each torch variant's time as a ratio to it (above 1:
    optimlab is faster), for the training step and for the optimizer step alone."""
    others = VARIANTS[1:]
    lines = [
        "| model | optimizer | timed | optimlab ms | "
        + " | ".join(f"{v} / optimlab" for v in others)
        + " |",
        "|---|---|---|---:|" + "---:|" * len(others),
    ]
    for row in run["rows"]:
        model = f"{row['model']} ({row['parameters']:,})"
        for timed in TIMED:
            ms = row["ms"][timed]
            own = ms["optimlab"]
            cells = [f"{ms[v] / own:.3g}" if v in ms else "-" for v in others]
            lines.append(
                f"| {model} | {row['optimizer']} | {timed} | {_fmt(own)} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: small, few steps")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), help="a subset")
    parser.add_argument("--optimizers", nargs="*", choices=list(OPTIMIZERS), help="a subset")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)

    if args.table_from:
        with open(args.table_from) as f:
            saved = json.load(f)
        print(summary(saved))
        print(table(saved))
        return 0

    start = time.perf_counter()
    load = os.getloadavg()[0]
    env = environment()
    models = args.models or (QUICK_MODELS if args.quick else list(MODELS))
    optimizers = args.optimizers or (QUICK_OPTIMIZERS if args.quick else list(OPTIMIZERS))
    print(
        f"# threads: torch {env['torch_threads']}, numba {env['numba_threads']}, "
        f"cores {os.cpu_count()}; load average {load:.2f}",
        flush=True,
    )
    rows = []
    for model in models:
        plan = QUICK_PLAN if args.quick else MODELS[model]
        for optimizer in optimizers:
            row = run_case(model, optimizer, plan)
            rows.append(row)
            for timed in TIMED:
                ms = row["ms"][timed]
                print(
                    f"  {model:10s} {optimizer:8s} {timed:14s} optimlab {ms['optimlab']:9.3f} ms  "
                    + "  ".join(
                        f"{v.removeprefix('torch ')} {ms[v] / ms['optimlab']:.2f}x"
                        for v in VARIANTS[1:]
                        if v in ms
                    ),
                    flush=True,
                )
    env = dict(environment(), load_average_before=load, load_average_after=os.getloadavg()[0])
    run = {"environment": env, "quick": args.quick, "rows": rows}
    print(summary(run))
    print(table(run))
    print(f"# wall time: {time.perf_counter() - start:.1f} s")
    if args.json:
        save_json(args.json, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
