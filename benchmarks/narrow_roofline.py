"""What bounds Adam's step with narrow state here: its arithmetic or its bytes (issue 16).

Fewer bytes make a step faster only while the step waits on memory. For each state dtype of
``ol.Adam`` (float32, bfloat16, int8, int4) this measures, in one run, beside
``torch.optim.Adam(fused=True)``:

* ``step``: the step of a parameter of ``n`` elements (1.6e7: far over the caches), median;
* ``arithmetic``: the same step's computation with no DRAM traffic to wait on. The
  optimizer steps parameters of 65536 and 196608 elements (both held in the caches, at most
  5.5 MB; both run by the parallel loop of the real step); the difference of the two
  medians over the 131072 elements between them is the cost of an element with the call's
  fixed overhead taken out, scaled to ``n`` elements;
* ``bytes``: a parallel loop that reads and writes what the step does (the parameter and
  gradient in float32, each moment in its stored width, for int8 and int4 with their scales
  per block) and computes nothing but an addition per element: the memory floor of that
  access pattern.

A step can be no faster than the larger of its arithmetic and its bytes. A target ratio r
against torch fused (1.6x for int8, 1.3x for bfloat16) needs the step within torch's time / r;
where ``arithmetic`` alone exceeds that, no pass doing this arithmetic on these cores meets it.

    python benchmarks/narrow_roofline.py
    python benchmarks/narrow_roofline.py --json docs/narrow_roofline.json
    python benchmarks/narrow_roofline.py --table-from docs/narrow_roofline.json   # README
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
from _machine import load_span, machine, save_json  # noqa: E402

KINDS = ("float32", "bfloat16", "int8", "int4")
#: the speed against torch fused each narrow dtype aims at (issue 16)
TARGETS = {"bfloat16": 1.3, "int8": 1.6}
#: the two cached sizes whose difference prices an element (both over
#: engines.fused.PARALLEL_THRESHOLD: the parallel loop of the real step; the one-thread loop
#: of smaller parameters priced int4 20% above its own step at 1.6e7 here)
SMALL, LARGE = 65536, 196608
#: per state dtype: the dtype a moment is stored in, elements per stored item, block size
STORAGE = {
    "float32": (np.float32, 1, None),
    "bfloat16": (np.uint16, 1, None),
    "int8": (np.uint8, 1, 256),
    "int4": (np.uint8, 2, 128),
}


def _adam(state_dtype):
    import optimlab as ol

    return ol.Adam(learning_rate=1e-3, nan_policy="propagate", state_dtype=state_dtype)


def _median_s(step, trials: int) -> float:
    step()
    step()
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def arithmetic_ns(state_dtype: str, calls: int) -> float:
    """Nanoseconds of one element of the step on the numba threads, its operands in cache:
    the difference of the medians at LARGE and SMALL elements over LARGE - SMALL."""
    rng = np.random.default_rng(16)
    medians = {}
    for n in (SMALL, LARGE):
        p = rng.standard_normal(n, dtype=np.float32)
        g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)
        opt = _adam(state_dtype)
        medians[n] = _median_s(lambda opt=opt, g=g, p=p: opt.apply([g], [p]), calls)
    return (medians[LARGE] - medians[SMALL]) / (LARGE - SMALL) * 1e9


def _bytes_loop():
    from numba import njit, prange

    @njit(parallel=True, cache=False)
    def touch(p, g, m, v, scales):
        """p += g, m += 1, v += 1 (each stored in its own dtype and size: int4 packs two
        a byte), the blocks' scales += 1."""
        if m.size == p.size:
            for i in prange(p.size):
                p[i] = p[i] + g[i]
                m[i] = m[i] + 1
                v[i] = v[i] + 1
        else:  # (two loops: each runs over its own elements, vectorized)
            for i in prange(p.size):
                p[i] = p[i] + g[i]
            for i in prange(m.size):
                m[i] = m[i] + 1
                v[i] = v[i] + 1
        for j in prange(scales.size):
            scales[j] = scales[j] + np.float32(1)

    return touch


def measure(n: int, trials: int, calls: int) -> dict:
    """The step, arithmetic and bytes of each state dtype, and torch fused's step."""
    import numba
    import torch

    rng = np.random.default_rng(16)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)
    threads = numba.get_num_threads()
    touch = _bytes_loop()
    tp = torch.from_numpy(p.copy())
    tp.grad = torch.from_numpy(g)
    torch_opt = torch.optim.Adam([tp], lr=1e-3, fused=True)
    steps = {"torch fused fp32": torch_opt.step}
    for kind in KINDS:
        opt, q = _adam(kind), p.copy()
        steps[f"optimlab {kind}"] = lambda opt=opt, q=q: opt.apply([g], [q])
        dtype, per_item, block = STORAGE[kind]
        items = -(-n // per_item)
        m, v = np.zeros(items, dtype), np.zeros(items, dtype)
        scales = np.zeros(2 * -(-n // block) if block else 0, np.float32)
        q2 = p.copy()
        steps[f"bytes {kind}"] = lambda q2=q2, m=m, v=v, s=scales: touch(q2, g, m, v, s)
    for step in steps.values():  # compile, build state
        step()
        step()
    times = {name: [] for name in steps}
    for _ in range(trials):  # interleaved
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    torch_ms = ms["torch fused fp32"]
    rows = {}
    for kind in KINDS:
        per_element = arithmetic_ns(kind, calls)
        arithmetic = per_element * n / 1e6
        bytes_ms = ms[f"bytes {kind}"]
        row = {
            "step_ms": ms[f"optimlab {kind}"],
            "speed_vs_torch_fused": torch_ms / ms[f"optimlab {kind}"],
            "arithmetic_ns_per_element": per_element,
            "arithmetic_ms": arithmetic,
            "bytes_ms": bytes_ms,
            "bound": "arithmetic" if arithmetic > bytes_ms else "bytes",
            "best_speed_vs_torch_fused": torch_ms / max(arithmetic, bytes_ms),
        }
        if kind in TARGETS:
            row["target"] = TARGETS[kind]
            row["target_ms"] = torch_ms / TARGETS[kind]
        rows[kind] = row
    return {"torch_fused_ms": torch_ms, "threads": threads, "kinds": rows}


def table(record) -> str:
    """The Markdown table of a saved run."""
    lines = [
        "| state | step ms | vs torch fused | arithmetic alone ms | bytes alone ms | bound "
        "| at best vs torch | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    run = record["run"]
    for kind, row in run["kinds"].items():
        target = f"{row['target']:.1f}x ({row['target_ms']:.1f} ms)" if "target" in row else "-"
        lines.append(
            f"| {kind} | {row['step_ms']:.1f} | {row['speed_vs_torch_fused']:.2f}x | "
            f"{row['arithmetic_ms']:.1f} | {row['bytes_ms']:.1f} | {row['bound']} | "
            f"{row['best_speed_vs_torch_fused']:.2f}x | {target} |"
        )
    load = load_span(record)
    lines += [
        "",
        f"{float(record['n']):.2g} parameters; torch fused fp32 {run['torch_fused_ms']:.1f} ms; "
        f"{record['machine']}; {run['threads']} numba threads; median of {record['trials']} "
        f"interleaved trials; load average {load} (before, after).",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1.6e7)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--calls", type=int, default=301, help="in-cache calls per size")
    parser.add_argument("--quick", action="store_true", help="1e5 parameters, few trials")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.table_from:
        with open(args.table_from) as f:
            print(table(json.load(f)))
        return
    n, trials, calls = (100_000, 3, 21) if args.quick else (int(args.n), args.trials, args.calls)
    record = {
        "machine": machine(),
        "load_average": list(os.getloadavg()),
        "n": n,
        "trials": trials,
        "calls": calls,
    }
    record["run"] = measure(n, trials, calls)
    record["load_average_after"] = list(os.getloadavg())
    print(table(record))
    if args.json:
        save_json(args.json, record)


if __name__ == "__main__":
    main()
