"""Adam with narrow state (issue 16): int8 and bfloat16 moments against float32, in one run.

Contenders, each stepping the same float32 parameters with the same gradient, timed in turn
(interleaved trials, the median of each):

* ``torch fused fp32``: ``torch.optim.Adam(fused=True)`` on CPU, the reference of the ratios;
* ``optimlab fused fp32``: ``ol.Adam`` (the fused numba engine, ``nan_policy="propagate"`` as
  torch checks nothing);
* ``optimlab fused int8`` / ``optimlab fused bf16`` / ``optimlab fused int4``:
  ``ol.Adam(state_dtype="int8" | "bfloat16" | "int4")``: one pass per block (of 256, of 128
  for int4: dequantize, update, requantize; bfloat16 needs no blocks);
* ``bitsandbytes Adam8bit`` (its CPU backend: dequantize all, update, requantize: several
  passes), ``torchao AdamW8bit`` and ``torchao AdamW4bit`` (torch.compile on CPU) where
  they install and run.

State bytes are those of the moments (m and v) as each optimizer holds them. Every ratio is a
time of torch fused fp32 over the contender's (above 1: faster than torch), from the same
process.

    python benchmarks/quant_speed.py                      # 1.6e7 and 6.4e7 (about 3 GB)
    python benchmarks/quant_speed.py --quick              # a smoke test: 1e5, few trials
    python benchmarks/quant_speed.py --json docs/quant_speed.json
    python benchmarks/quant_speed.py --table-from docs/quant_speed.json   # the README's table
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _machine import load_span, machine, save_json, time_interleaved  # noqa: E402


def _optimlab(p, g, state_dtype):
    import optimlab as ol

    opt = ol.Adam(learning_rate=1e-3, nan_policy="propagate", state_dtype=state_dtype)
    grads, params = [g], [p]

    def step():
        opt.apply(grads, params)

    def state_bytes():
        return sum(s.nbytes for s in opt._slots[0] if s is not None)

    return step, state_bytes


def _torch(p, g):
    import torch

    tp = torch.from_numpy(p)
    tp.grad = torch.from_numpy(g)
    opt = torch.optim.Adam([tp], lr=1e-3, fused=True)

    def state_bytes():
        state = opt.state[tp]
        return sum(state[k].nbytes for k in ("exp_avg", "exp_avg_sq"))

    return opt.step, state_bytes


def _bitsandbytes(p, g):
    import bitsandbytes as bnb
    import torch

    tp = torch.from_numpy(p)
    tp.grad = torch.from_numpy(g)
    opt = bnb.optim.Adam8bit([tp], lr=1e-3)

    def state_bytes():
        state = opt.state[tp]
        return sum(v.nbytes for k, v in state.items() if torch.is_tensor(v) and k != "step")

    return opt.step, state_bytes


def _torchao(p, g, bits=8):
    import torch
    from torchao.optim import AdamW4bit, AdamW8bit

    tp = torch.from_numpy(p)
    tp.grad = torch.from_numpy(g)
    opt = (AdamW8bit if bits == 8 else AdamW4bit)([tp], lr=1e-3, weight_decay=0.0)

    def state_bytes():
        state = opt.state[tp]
        total = 0
        for k in ("exp_avg", "exp_avg_sq"):
            s = state[k]
            total += s.codes.nbytes + s.scale.nbytes if hasattr(s, "codes") else s.nbytes
        return total

    return opt.step, state_bytes


CONTENDERS = {
    "torch fused fp32": lambda p, g: _torch(p, g),
    "optimlab fused fp32": lambda p, g: _optimlab(p, g, "float32"),
    "optimlab fused int8": lambda p, g: _optimlab(p, g, "int8"),
    "optimlab fused bf16": lambda p, g: _optimlab(p, g, "bfloat16"),
    "optimlab fused int4": lambda p, g: _optimlab(p, g, "int4"),
    "bitsandbytes Adam8bit": _bitsandbytes,
    "torchao AdamW8bit": _torchao,
    "torchao AdamW4bit": lambda p, g: _torchao(p, g, bits=4),
}
#: the contenders that may not install or run on this CPU (their error is recorded)
PEERS = ("bitsandbytes Adam8bit", "torchao AdamW8bit", "torchao AdamW4bit")


def measure(n: int, trials: int, skip: set[str]) -> dict:
    """Median step time (ms) and state bytes of each contender at ``n`` parameters."""
    rng = np.random.default_rng(16)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)
    makers = {
        name: functools.partial(make, p, g) for name, make in CONTENDERS.items() if name not in skip
    }
    return time_interleaved(makers, trials, "torch fused fp32", optional=PEERS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e5 parameters, 3 trials")
    parser.add_argument("--sizes", default="1.6e7,6.4e7")
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--skip", default="", help="comma-separated contenders to leave out")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            print(table(json.load(f)))
        return
    sizes = [100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    trials = 3 if args.quick else args.trials
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.quick:
        skip |= set(PEERS)
    import numba
    import torch

    record = {
        "machine": machine(),
        "load_average": list(os.getloadavg()),
        "threads": {"numba": numba.get_num_threads(), "torch": torch.get_num_threads()},
        "trials": trials,
        "sizes": {},
    }
    print(f"{record['machine']}; load average {record['load_average']}; {trials} trials")
    header = f"{'params':>8}  {'contender':<22} {'ms/step':>9} {'vs torch':>9} {'state MB':>9}"
    print(header)
    for n in sizes:
        rows = measure(n, trials, skip)
        record["sizes"][str(n)] = rows
        for name, row in rows.items():
            if "error" in row:
                print(f"{n:>8.2g}  {name:<22} {'-':>9} {'-':>9} {'-':>9}  ({row['error']})")
                continue
            print(
                f"{n:>8.2g}  {name:<22} {row['median_ms']:>9.2f} "
                f"{row['speed_vs_torch_fused']:>8.2f}x {row['state_bytes'] / 1e6:>9.1f}"
            )
    record["load_average_after"] = list(os.getloadavg())
    print(table(record))
    if args.json:
        save_json(args.json, record)


def table(record) -> str:
    """The Markdown table of a saved run: per size and contender the median step, the speed
    against torch fused fp32 (its time over the contender's) and the state's bytes."""
    lines = [
        "| parameters | contender | ms / step | speed vs torch fused fp32 | state MB "
        "| fp32 state / this |",
        "|---|---|---|---|---|---|",
    ]
    for n, rows in record["sizes"].items():
        for name, row in rows.items():
            if "error" in row:
                lines.append(f"| {float(n):.2g} | {name} | does not run: {row['error']} | | | |")
                continue
            lines.append(
                f"| {float(n):.2g} | {name} | {row['median_ms']:.1f} | "
                f"{row['speed_vs_torch_fused']:.2f}x | {row['state_bytes'] / 1e6:.1f} | "
                f"{row['state_vs_torch']:.2f}x |"
            )
    load = load_span(record)
    threads = record["threads"]
    lines += [
        "",
        f"{record['machine']}; {threads['numba']} numba and {threads['torch']} torch threads; "
        f"median of {record['trials']} interleaved trials; load average {load} (before, after).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
