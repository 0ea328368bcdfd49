"""Muon's step on one n x n float32 matrix: optimlab against torch.optim.Muon, side by side.

Each timing is the median of ``--repeats`` steps after a warm-up step, in one process, the
contenders interleaved (in an order that rotates each round) so that a change in the
machine's load hits all of them; the load average is recorded with the figures:

* ``optimlab Muon``: the Keras-dialect default (Newton-Schulz in float32 on NumPy's BLAS);
* ``torch.optim.Muon``: torch 2.13 (Newton-Schulz in bfloat16 on torch's CPU kernels);
* ``optimlab.torch.Muon``: the drop-in, optimlab's rule run by its torch engine (the same
  bfloat16 torch operations, so the same bits as torch.optim.Muon's, checked here each run);
* ``optimlab Muon, ns_dtype="bfloat16"`` (``--bfloat16``): torch's bfloat16 arithmetic
  reproduced rounding by rounding (in float64 products: an exactness tool, not a fast path).

The work is five Newton-Schulz iterations of three n x n products each, about 30 n^3 flops
(2.1e12 for n = 4096; 20 n^3 with the two symmetric products as syrk, as NumPy does them);
the elementwise momentum and update are negligible beside them. The record names NumPy's
BLAS and the kernels it chose: on this AMD EPYC (Zen 5, family 26) NumPy's OpenBLAS 0.3.31
picks its AVX2 (Haswell) kernels, at about half the float32 rate of its AVX-512 (SkylakeX)
ones, which ``OPENBLAS_CORETYPE=SkylakeX`` in the environment selects.

    python benchmarks/muon_speed.py               # n = 4096, 3 repeats
    python benchmarks/muon_speed.py --n 1024 --repeats 5
    python benchmarks/muon_speed.py --json docs/muon_speed.json      # and save the figures
    python benchmarks/muon_speed.py --table-from docs/muon_speed.json   # the README's table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from _machine import machine, save_json  # noqa: E402

import optimlab as ol  # noqa: E402


def numpy_blas() -> str:
    """The BLAS that runs NumPy's products, its version and the kernels it chose for this
    CPU (threadpoolctl's report): OpenBLAS picks its kernels when it loads, from the CPU's
    model (``OPENBLAS_CORETYPE`` overrides the choice), and a CPU newer than the library may
    get an older family's kernels."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    mine = [i for i in blas if "numpy" in i.get("filepath", "")] or blas
    if not mine:
        return "unknown"
    info = mine[0]
    kernels = f", {info['architecture']} kernels" if info.get("architecture") else ""
    return f"{info.get('internal_api', '?')} {info.get('version', '?')}{kernels}"


def optimlab_step(n: int, rng, **options):
    """A function running one optimlab Muon step on an n x n float32 matrix."""
    w = rng.standard_normal((n, n)).astype(np.float32)
    g = rng.standard_normal((n, n)).astype(np.float32)
    opt = ol.Muon(learning_rate=0.02, **options)

    def step():
        opt.apply_gradients([(g, w)])

    return step


def torch_steps(n: int, rng):
    """Two functions running one step of torch.optim.Muon and of optimlab.torch.Muon, each on
    its own copy of the same n x n float32 matrix and gradient, and a function telling
    whether the two matrices are still equal bit for bit."""
    import torch

    import optimlab.torch as ot

    w = torch.from_numpy(rng.standard_normal((n, n)).astype(np.float32))
    g = torch.from_numpy(rng.standard_normal((n, n)).astype(np.float32))
    steps, weights = [], []
    for cls in (torch.optim.Muon, ot.Muon):
        p = torch.nn.Parameter(w.clone())
        p.grad = g.clone()
        steps.append(cls([p], lr=0.02).step)
        weights.append(p)
    return steps[0], steps[1], lambda: torch.equal(weights[0], weights[1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bfloat16", action="store_true", help="also time ns_dtype='bfloat16'")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            saved = json.load(f)
        print(table(saved))
        return saved["seconds"]
    rng = np.random.default_rng(0)
    theirs, ours, same_bits = torch_steps(args.n, rng)
    contenders = {
        "optimlab Muon (float32 Newton-Schulz)": optimlab_step(args.n, rng),
        TORCH: theirs,
        OURS_TORCH: ours,
    }
    if args.bfloat16:
        contenders["optimlab Muon, ns_dtype='bfloat16'"] = optimlab_step(
            args.n, rng, ns_dtype="bfloat16"
        )
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for step in contenders.values():
        step()  # warm-up: BLAS threads, torch's kernels
    names = list(contenders)
    load = [os.getloadavg()[0]]
    for round_ in range(args.repeats):
        # the order rotates each round: none always runs right after the same other (BLAS
        # threads still spinning after NumPy's products slow the next contender down)
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    saved = {
        "n": args.n,
        "repeats": args.repeats,
        "machine": machine(),
        "numpy BLAS": numpy_blas(),
        # the machine's 1-minute load average at the start and at the end of the timed rounds
        "load average": [round(x, 2) for x in load],
        "seconds": {name: statistics.median(ts) for name, ts in times.items()},
        # after the same steps from the same matrix and gradient
        "optimlab.torch equals torch.optim bit for bit": same_bits(),
    }
    print(table(saved))
    if args.json:
        save_json(args.json, saved)
    return saved["seconds"]


TORCH = "torch.optim.Muon (bfloat16 Newton-Schulz)"
OURS_TORCH = "optimlab.torch.Muon (its torch engine: bfloat16 Newton-Schulz)"


def table(saved: dict) -> str:
    """A Markdown table of a run: each contender's median time, its rate (30 n^3 flops a
    step) and torch's time over its own."""
    n = saved["n"]
    flops = 30 * n**3
    reference = saved["seconds"][TORCH]
    load = saved.get("load average")
    busy = f"; load average {load[0]:g} to {load[1]:g}" if load else ""
    blas = f"; NumPy's BLAS: {saved['numpy BLAS']}" if saved.get("numpy BLAS") else ""
    lines = [
        f"Muon step on a {n} x {n} float32 matrix, median of {saved['repeats']} "
        f"({saved['machine']}{busy}{blas})",
        "",
        "| contender | ms per step | GFLOP/s (30 n^3 a step) | torch time / this time |",
        "|---|---:|---:|---:|",
    ]
    for name, t in saved["seconds"].items():
        lines.append(f"| {name} | {t * 1e3:.5g} | {flops / t / 1e9:.4g} | {reference / t:.2f} |")
    same = saved.get("optimlab.torch equals torch.optim bit for bit")
    if same is not None:
        lines += ["", f"optimlab.torch.Muon's matrix equals torch.optim.Muon's bit for bit: {same}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
