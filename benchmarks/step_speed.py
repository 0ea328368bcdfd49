"""One optimizer step: optimlab against torch.optim and against the memory-bandwidth limit.

For each optimizer and problem size, one fresh process times, side by side:

* ``probe``: a numba kernel with the optimizer's own memory traffic (its read and write streams,
  trivial arithmetic): what the machine's bandwidth allows for that access pattern;
* ``optimlab fused``: ``opt.step(params)`` on a ``Params`` (the fused numba engine), with the
  default ``nan_policy="raise"`` (one extra read of the gradient checks it before anything
  changes) and with ``nan_policy="propagate"`` (no check: what torch does);
* ``optimlab reference``: the NumPy reference engine (skipped above 1.6e7 parameters, slow);
* ``torch for-loop``, ``torch foreach``, ``torch fused`` (CPU; fused only where torch has it).

Every figure is the median over trials of the time per step; the ratios come from the same
process, where the probe and optimlab's two fused columns take their trials in turn. Thread
counts: numba and torch both use all cores (printed).

    python benchmarks/step_speed.py            # the full table (minutes; needs about 2 GB)
    python benchmarks/step_speed.py --quick    # a smoke test: small sizes, one process
    python benchmarks/step_speed.py --json out.json --plot out.png
    python benchmarks/step_speed.py --only Rprop,ASGD --sizes 1.6e7,6.4e7 --repeat 3

``--repeat k`` runs every case in k fresh processes, one after the other, and keeps each
column's median over them (the figures of one noisy process move the result less).

The probe's streams are each optimizer's state traffic: SGD with momentum reads p, g, buf and
writes p, buf (3, 2); Adam reads p, g, m, v and writes p, m, v (4, 3); Rprop reads p, g, prev,
step_size and writes p, prev, step_size (4, 3); ASGD reads p, g, ax and writes p, ax (3, 2).
(Before its averaging starts, at update t0 + 3, ASGD sets ax = p without reading ax; the
write of ax still brings its cache lines in first, so the traffic is the probe's.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _machine import machine, save_json

SIZES = [
    ("2", [2]),  # a 2-D surface: the fixed cost of a step
    ("1e5", [100_000]),
    ("1e6", [1_000_000]),
    ("1.6e7", [16_000_000]),
    ("6.4e7", [64_000_000]),
    ("1000x100", [100] * 1000),
    ("1000x1000", [1000] * 1000),
]
QUICK_SIZES = [("2", [2]), ("1e5", [100_000]), ("100x100", [100] * 100)]

# optimizer: (optimlab kwargs, torch class and kwargs or None, (read streams, write streams))
OPTIMIZERS = {
    "SGD": ({"momentum": 0.9}, ("SGD", {"momentum": 0.9}), (3, 2)),
    "Adagrad": ({}, ("Adagrad", {}), (3, 2)),
    "RMSprop": ({}, ("RMSprop", {}), (3, 2)),
    "Adam": ({}, ("Adam", {}), (4, 3)),
    "AdamW": ({}, ("AdamW", {}), (4, 3)),
    "Nadam": ({}, ("NAdam", {}), (4, 3)),
    "Adamax": ({}, ("Adamax", {}), (4, 3)),
    "Adadelta": ({}, ("Adadelta", {}), (4, 3)),
    "RAdam": ({}, ("RAdam", {}), (4, 3)),
    "Rprop": ({}, ("Rprop", {}), (4, 3)),
    "ASGD": ({}, ("ASGD", {}), (3, 2)),
    # no torch.optim peer: the probe and optimlab only
    "Lion": ({}, None, (3, 2)),
    "Ftrl": ({}, None, (4, 3)),
    "ScheduleFreeAdamW": ({}, None, (4, 3)),
}
QUICK_OPTIMIZERS = ["SGD", "Adam"]
TORCH_FUSED = {"SGD", "Adagrad", "Adam", "AdamW"}


def _median_step_ms(step, min_time=0.2, trials=5):
    step()  # warm up: compile, first-touch
    start = time.perf_counter()
    step()
    once = max(time.perf_counter() - start, 1e-7)
    reps = max(1, int(min_time / once))
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            step()
        times.append((time.perf_counter() - start) / reps)
    times.sort()
    return 1e3 * times[len(times) // 2]


def _interleaved_step_ms(steps: dict, min_time=0.2, trials=5) -> dict:
    """``_median_step_ms`` of several steps whose trials take turns (probe, fused, unchecked,
    probe, ...): a change of the machine's load during the run moves all of them alike, so
    the ratios between them stay fair on a shared machine."""
    reps = {}
    for label, step in steps.items():
        step()  # warm up: compile, first-touch
        start = time.perf_counter()
        step()
        reps[label] = max(1, int(min_time / max(time.perf_counter() - start, 1e-7)))
    times: dict = {label: [] for label in steps}
    for _ in range(trials):
        for label, step in steps.items():
            start = time.perf_counter()
            for _ in range(reps[label]):
                step()
            times[label].append((time.perf_counter() - start) / reps[label])
    return {label: 1e3 * sorted(t)[len(t) // 2] for label, t in times.items()}


def run_case(name: str, sizes: list[int], quick: bool) -> dict:
    """Time every implementation of one optimizer on one problem (in this process)."""
    import numpy as np

    import optimlab as ol

    ol_kwargs, torch_spec, (reads, writes) = OPTIMIZERS[name]
    n = sum(sizes)
    trials = 3 if quick else 5
    min_time = 0.02 if quick else 0.3
    rng = np.random.default_rng(0)
    arrays = {f"t{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(sizes)}
    import numba

    out = {
        "optimizer": name,
        "parameters": n,
        "tensors": len(sizes),
        "numba_threads": numba.get_num_threads(),
        "machine": machine(),
    }

    # the probe: the optimizer's streams, trivial math, one parallel pass
    streams = [np.ones(n, np.float32) for _ in range(reads)]
    probe = _probe(reads, writes)

    params = ol.Params(arrays)
    for k, v in arrays.items():
        params.grads[k][...] = rng.standard_normal(v.shape).astype(np.float32) * 1e-3
    opt = ol.get(name, learning_rate=1e-4, engine="fused", **ol_kwargs)
    unchecked = ol.get(
        name, learning_rate=1e-4, engine="fused", nan_policy="propagate", **ol_kwargs
    )
    steps = {
        "probe": lambda: probe(*streams, np.float32(1e-9)),
        "optimlab fused": lambda: opt.step(params),
        "optimlab fused, no NaN check": lambda: unchecked.step(params),
    }
    out.update(_interleaved_step_ms(steps, min_time, trials))
    streams.clear()
    if n <= 16_000_000 and (quick or len(sizes) == 1):
        ref = ol.get(name, learning_rate=1e-4, engine="reference", **ol_kwargs)
        out["optimlab reference"] = _median_step_ms(lambda: ref.step(params), min_time, trials)

    try:
        import torch
    except ImportError:
        return out
    if torch_spec is None:  # torch.optim has no such optimizer
        return out
    torch_name, torch_kwargs = torch_spec
    out["torch_threads"] = torch.get_num_threads()
    tensors = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays.values()]
    for t in tensors:
        t.grad = torch.randn_like(t) * 1e-3
    cls = getattr(torch.optim, torch_name)
    modes = {"torch for-loop": {"foreach": False}, "torch foreach": {"foreach": True}}
    if name in TORCH_FUSED:
        modes["torch fused"] = {"fused": True}
    for label, mode in modes.items():
        topt = cls(tensors, lr=1e-4, **torch_kwargs, **mode)
        with torch.no_grad():
            out[label] = _median_step_ms(topt.step, min_time, trials)
        del topt
    return out


def _selected(values) -> list[str]:
    """The names of ``--only``/``--sizes``: space- or comma-separated, in the order given."""
    return [name for value in values or () for name in value.split(",") if name]


def _median_row(runs: list[dict]) -> dict:
    """One row from the same case run in several processes: each time the median over them
    (the upper median of an even count), the rest from the first run; ``repeats`` counts them."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            times = sorted(r[key] for r in runs if key in r)
            row[key] = times[len(times) // 2]
    if len(runs) > 1:
        row["repeats"] = len(runs)
    return row


def _probe_3_2(njit, prange):
    @njit(parallel=True, fastmath=True, error_model="numpy")
    def probe(p, g, a, s):
        for i in prange(p.shape[0]):
            gi = g[i]
            a[i] = a[i] + gi
            p[i] = p[i] + s * a[i]

    return probe


def _probe_4_3(njit, prange):
    @njit(parallel=True, fastmath=True, error_model="numpy")
    def probe(p, g, a, b, s):
        for i in prange(p.shape[0]):
            gi = g[i]
            a[i] = a[i] + gi
            b[i] = b[i] + s * gi
            p[i] = p[i] + s

    return probe


_PROBES = {(3, 2): _probe_3_2, (4, 3): _probe_4_3}
_COMPILED_PROBES: dict = {}


def _probe(reads: int, writes: int):
    """The probe kernel of an access pattern, compiled once per process."""
    if (reads, writes) not in _COMPILED_PROBES:
        from numba import njit, prange

        _COMPILED_PROBES[reads, writes] = _PROBES[(reads, writes)](njit, prange)
    return _COMPILED_PROBES[reads, writes]


def table(rows: list[dict]) -> str:
    """Markdown: ms per step and every time as a ratio to optimlab fused (bigger: slower)."""
    cols = [
        "probe",
        "optimlab fused",
        "optimlab fused, no NaN check",
        "optimlab reference",
        "torch for-loop",
        "torch foreach",
        "torch fused",
    ]
    lines = [
        "| optimizer | problem | optimlab fused ms | probe / fused | "
        + " | ".join(f"{c} / fused" for c in cols[2:])
        + " |",
        "|---|---|---:|---:|" + "---:|" * (len(cols) - 2),
    ]
    for r in rows:
        fused = r["optimlab fused"]
        cells = [f"{r[c] / fused:.3g}" if c in r else "-" for c in cols[2:]]
        lines.append(
            f"| {r['optimizer']} | {r['problem']} | {fused:.4g} | {r['probe'] / fused:.3g} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


TORCH_PATHS = ("torch for-loop", "torch foreach", "torch fused")


def targets(rows: list[dict]) -> str:
    """Markdown: the figures the fused engine is judged by, from a saved run.

    For every optimizer and problem: torch's fastest path / optimlab (above 1: optimlab is
    faster), with the default NaN check and without it (what torch does), and optimlab / probe
    (the fraction of the pattern's bandwidth limit reached; 1 = at the limit)."""
    lines = [
        "| optimizer | problem | fastest torch path | torch / optimlab | torch / optimlab, "
        "no NaN check | probe / optimlab, no NaN check |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        paths = [p for p in TORCH_PATHS if p in r]
        unchecked = r["optimlab fused, no NaN check"]
        if not paths:  # no torch.optim peer: the bandwidth figure only
            lines.append(
                f"| {r['optimizer']} | {r['problem']} | none | - | - | "
                f"{r['probe'] / unchecked:.3g} |"
            )
            continue
        best = min(paths, key=lambda p: r[p])
        lines.append(
            f"| {r['optimizer']} | {r['problem']} | {best.removeprefix('torch ')} | "
            f"{r[best] / r['optimlab fused']:.3g} | {r[best] / unchecked:.3g} | "
            f"{r['probe'] / unchecked:.3g} |"
        )
    by = {(r["optimizer"], r["problem"]): r for r in rows}
    checked, unchecked = "optimlab fused", "optimlab fused, no NaN check"
    many, one, tiny = by.get(("Adam", "1000x100")), by.get(("Adam", "1e5")), by.get(("Adam", "2"))
    if many and one:
        lines.append("")
        lines.append(
            f"Adam on 1000 arrays of 100 in one Params takes {many[checked] / one[checked]:.3g}x "
            f"the time of one array of 1e5 ({many[unchecked] / one[unchecked]:.3g}x without "
            "the NaN check)."
        )
    if tiny:
        torch_us = 1e3 * tiny.get("torch fused", float("nan"))
        lines.append(
            f"The fixed cost of an Adam step on a 2-D surface: {1e3 * tiny[checked]:.3g} us "
            f"({1e3 * tiny[unchecked]:.3g} us without the NaN check); torch fused: "
            f"{torch_us:.3g} us."
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """The machine and thread counts of a run."""
    first = rows[0]
    return (
        f"{first.get('machine', 'unknown machine')}; numba threads {first.get('numba_threads')}, "
        f"torch threads {first.get('torch_threads')}"
    )


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adam = [r for r in rows if r["optimizer"] == "Adam"]
    labels = [r["problem"] for r in adam]
    series = [
        "probe",
        "optimlab fused, no NaN check",
        "optimlab fused",
        "torch fused",
        "torch foreach",
        "torch for-loop",
    ]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(series)
    for k, s in enumerate(series):
        xs = [i + k * width for i in range(len(adam))]
        ax.bar(xs, [r.get(s, float("nan")) for r in adam], width, label=s)
    ax.set_yscale("log")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(adam))], labels)
    ax.set_ylabel("ms per Adam step (log scale, lower is better)")
    ax.set_xlabel("parameters (float32): one tensor, or tensors x size")
    ax.set_title("One Adam step: optimlab fused vs torch.optim (CPU) and the bandwidth probe")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument(
        "--optimizers",
        "--only",
        nargs="*",
        help="a subset, e.g. Adam SGD or Rprop,ASGD (default: all, or SGD and Adam with --quick)",
    )
    parser.add_argument(
        "--sizes", help="the problems to run, comma-separated, e.g. 1.6e7,6.4e7 (default: all)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fresh processes per case; each column is the median over them (default 1)",
    )
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--plot", help="write the Adam figure to this PNG")
    parser.add_argument("--table-from", help="print the table of a saved --json run")
    parser.add_argument(
        "--targets-from", help="print the judged figures (torch / optimlab) of a saved run"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, JSON out
    args = parser.parse_args(argv)

    if args.table_from:
        with open(args.table_from) as f:
            saved = json.load(f)
        print(summary(saved))
        print(table(saved))
        return 0

    if args.targets_from:
        with open(args.targets_from) as f:
            print(targets(json.load(f)))
        return 0

    if args.case:
        name, problem = args.case.split(":")
        sizes = dict(SIZES + QUICK_SIZES)[problem]
        result = run_case(name, sizes, args.quick)
        result["problem"] = problem
        print(json.dumps(result))
        return 0

    names = _selected(args.optimizers) or (QUICK_OPTIMIZERS if args.quick else list(OPTIMIZERS))
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown:
        parser.error(f"unknown optimizer(s) {unknown}; choose from {list(OPTIMIZERS)}")
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        known = dict(SIZES + QUICK_SIZES)
        wanted = _selected([args.sizes])
        unknown = [p for p in wanted if p not in known]
        if unknown:
            parser.error(f"unknown size(s) {unknown}; choose from {list(known)}")
        sizes = [(p, known[p]) for p in wanted]
    if args.repeat < 1:
        parser.error(f"--repeat must be a whole number >= 1, got {args.repeat}")
    import numba

    print(f"# threads: numba {numba.get_num_threads()}, cores {os.cpu_count()}")
    rows = []
    for name in names:
        for problem, case_sizes in sizes:
            if args.quick:  # a smoke test: one process for all cases (no clean measurement)
                row = dict(run_case(name, case_sizes, quick=True), problem=problem)
            else:
                cmd = [sys.executable, __file__, "--case", f"{name}:{problem}"]
                runs = []
                for _ in range(args.repeat):
                    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                row = _median_row(runs)
            rows.append(row)
            print(
                f"  {name:9s} {problem:10s} fused {row['optimlab fused']:9.3f} ms  "
                f"probe/fused {row['probe'] / row['optimlab fused']:.2f}  "
                + "  ".join(
                    f"{k}/fused {row[k] / row['optimlab fused']:.2f}"
                    for k in ("torch fused", "torch foreach", "torch for-loop")
                    if k in row
                ),
                flush=True,
            )
    if rows and "torch_threads" in rows[0]:
        print(f"# torch threads: {rows[0]['torch_threads']}")
    print(table(rows))
    if args.json:
        save_json(args.json, rows)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
