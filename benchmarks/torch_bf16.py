"""Step time of optimlab.torch on CPU bfloat16 tensors: the compiled engine and engine="auto"
against torch.optim's for-loop (foreach=False) and foreach paths, in one run.

1000 bfloat16 tensors of 10,000 elements (``--tensors``, ``--size``), their gradients set once;
for each optimizer (Adam, AdamW, SGD with momentum, RMSprop, Adagrad, and Lion, which torch
lacks) the variants run in alternating rounds (each round: a few steps of every variant), and
the median step time of each is printed with the ratios torch / optimlab. The first step of
``engine="compiled"`` (tracing and compiling its graphs, or loading them from inductor's disk
cache) is timed apart and reported as "first step s"; it is not in the medians.

``engine="auto"`` under torch's numerics runs torch's own kernels with the group's
``foreach`` (None: torch's choice, its for-loop on the CPU), so its numbers are torch.optim's
to the bit; Lion (no torch kernel) runs compiled under ``auto``.

Usage::

    python benchmarks/torch_bf16.py                  # the full run (a few minutes)
    python benchmarks/torch_bf16.py --quick          # a smoke test: small, few steps
    python benchmarks/torch_bf16.py --json docs/torch_bf16.json
    python benchmarks/torch_bf16.py --table-from docs/torch_bf16.json   # the README's table

On a busy machine pass ``--threads 1``: torch's OpenMP team spin-waits for cores other jobs
hold, and the steps then take 10 to 100 times longer, at random (measured here: a 2-thread
run at load 4 timed SGD's compiled step at 3.5 s instead of 40 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from _machine import machine, save_json

#: optimizer -> its arguments (the same for every variant)
OPTIMIZERS = {
    "Adam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3},
    "SGD": {"lr": 1e-2, "momentum": 0.9},
    "RMSprop": {"lr": 1e-3},
    "Adagrad": {"lr": 1e-2},
    "Lion": {"lr": 1e-4},
}
#: variant -> (library, the extra arguments)
VARIANTS = {
    "optimlab compiled": ("optimlab", {"engine": "compiled"}),
    "optimlab auto": ("optimlab", {"engine": "auto"}),
    "torch for-loop": ("torch", {"foreach": False}),
    "torch foreach": ("torch", {"foreach": True}),
}
OWN = ("optimlab compiled", "optimlab auto")
THEIRS = ("torch for-loop", "torch foreach")
FULL = {"tensors": 1000, "size": 10_000, "rounds": 7, "steps": 3}
QUICK = {"tensors": 40, "size": 1000, "rounds": 2, "steps": 2}


def _tensors(count: int, size: int, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(size, generator=gen).to(torch.bfloat16) for _ in range(count)]
    grads = [torch.randn(size, generator=gen).to(torch.bfloat16) for _ in range(count)]
    return params, grads


def _make(name: str, variant: str, params, grads):
    """The optimizer of ``variant`` on fresh copies of ``params`` with ``grads`` set, or None
    where the library has no such optimizer (torch.optim's Lion)."""
    import torch

    import optimlab.torch as ot

    library, extra = VARIANTS[variant]
    module = ot if library == "optimlab" else torch.optim
    cls = getattr(module, name, None)
    if cls is None:
        return None
    copies = []
    for p, g in zip(params, grads, strict=True):
        c = p.clone().requires_grad_()
        c.grad = g.clone()
        copies.append(c)
    return cls(copies, **OPTIMIZERS[name], **extra)


def case(name: str, plan: dict) -> dict:
    """Median step ms of every variant of ``name`` (alternating rounds) and the ratios."""
    import torch

    params, grads = _tensors(plan["tensors"], plan["size"])
    optimizers = {v: _make(name, v, params, grads) for v in VARIANTS}
    optimizers = {v: o for v, o in optimizers.items() if o is not None}
    first = {}
    with torch.no_grad():
        for variant, optimizer in optimizers.items():  # warm-up; the compiled one compiles
            start = time.perf_counter()
            optimizer.step()
            first[variant] = time.perf_counter() - start
        per_round: dict = {v: [] for v in optimizers}
        for _ in range(plan["rounds"]):
            for variant, optimizer in optimizers.items():
                times = []
                for _ in range(plan["steps"]):
                    start = time.perf_counter()
                    optimizer.step()
                    times.append(time.perf_counter() - start)
                per_round[variant].append(1e3 * statistics.median(times))
    ms = {v: statistics.median(r) for v, r in per_round.items()}
    ratios = {
        f"{theirs} / {own}": ms[theirs] / ms[own]
        for own in OWN
        for theirs in THEIRS
        if theirs in ms
    }
    return {
        "optimizer": name,
        "arguments": OPTIMIZERS[name],
        "ms": ms,
        "ratios": ratios,
        "first_step_s": first,
        "per_round_ms": per_round,
        "load_average": list(os.getloadavg()),
    }


def environment() -> dict:
    import torch

    return {
        "machine": machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "inductor_fx_graph_cache": bool(torch._inductor.config.fx_graph_cache),
    }


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.2f}"


def _load(env: dict) -> str:
    """The 1-minute load average before and after the run, where recorded."""
    if "load_average_before" not in env:
        return ""
    before, after = env["load_average_before"][0], env["load_average_after"][0]
    return f"; load average {before:.1f} before, {after:.1f} after"


def table(run: dict) -> str:
    """The Markdown table of a run: each variant's median step ms, torch / optimlab ratios
    (> 1: optimlab faster) and the compiled engine's first step."""
    plan = run["plan"]
    env = run["environment"]
    head = (
        f"CPU bfloat16, {plan['tensors']} tensors of {plan['size']:,} elements; "
        f"{env['machine']}, torch {env['torch']}, {env['torch_threads']} threads; median of "
        f"{plan['rounds']} alternating rounds of {plan['steps']} steps"
        + _load(env)
        + (" (--quick)" if run.get("quick") else "")
        + "."
    )
    lines = [
        head,
        "",
        "| optimizer | optimlab compiled ms | optimlab auto ms | torch for-loop ms | torch "
        "foreach ms | for-loop / compiled | foreach / compiled | foreach / auto | first "
        "compiled step s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in run["rows"]:
        ms, ratios = row["ms"], row["ratios"]
        lines.append(
            f"| {row['optimizer']} | {_fmt(ms['optimlab compiled'])} | "
            f"{_fmt(ms['optimlab auto'])} | {_fmt(ms.get('torch for-loop'))} | "
            f"{_fmt(ms.get('torch foreach'))} | "
            f"{_fmt(ratios.get('torch for-loop / optimlab compiled'))} | "
            f"{_fmt(ratios.get('torch foreach / optimlab compiled'))} | "
            f"{_fmt(ratios.get('torch foreach / optimlab auto'))} | "
            f"{row['first_step_s']['optimlab compiled']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: small, few steps")
    parser.add_argument("--tensors", type=int, help="the number of tensors")
    parser.add_argument("--size", type=int, help="the elements of each tensor")
    parser.add_argument("--optimizers", nargs="*", choices=list(OPTIMIZERS))
    parser.add_argument("--threads", type=int, help="torch's thread count")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            print(table(json.load(f)))
        return 0
    plan = dict(QUICK if args.quick else FULL)
    for key in ("tensors", "size"):
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                parser.error(f"--{key} must be >= 1, got {value}")
            plan[key] = value
    import torch

    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    load = os.getloadavg()
    run = {"environment": environment(), "quick": args.quick, "plan": plan, "rows": []}
    print(f"# {run['environment']['machine']}; load average {load[0]:.2f}", flush=True)
    for name in args.optimizers or list(OPTIMIZERS):
        row = case(name, plan)
        run["rows"].append(row)
        print(
            f"  {name:8s} "
            + "  ".join(f"{v} {x:8.3f}" for v, x in row["ms"].items())
            + f" ms; first compiled step {row['first_step_s']['optimlab compiled']:.1f} s",
            flush=True,
        )
    run["environment"].update(
        load_average_before=list(load), load_average_after=list(os.getloadavg())
    )
    print(table(run))
    print(f"# wall time: {time.perf_counter() - start:.1f} s")
    if args.json:
        save_json(args.json, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
