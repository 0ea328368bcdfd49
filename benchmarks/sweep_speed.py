"""How fast is a learning-rate sweep? 36 learning rates x 10 optimizers x 500 steps on Rosenbrock.

The workload of a fair comparison (``optimlab compare``): every optimizer's learning rate tuned
on DeepOBS's log grid (36 points, 1e-5 to 1e2) over the plotted horizon of 500 steps, from the
classic start (-1.2, 1). With :func:`optimlab.lab.sweep.sweep` each optimizer is one vectorized
computation on (36, 2) arrays; the target is under 1 s for all ten on a 2-core machine.

For scale, the same runs as separate Optimizers (one ``apply_gradients`` per step and rate)
are timed on one learning rate per optimizer and multiplied by 36 (the full run takes
seconds; skipped with ``--quick``).

    python benchmarks/sweep_speed.py            # median of 7 repeats, per optimizer, baseline
    python benchmarks/sweep_speed.py --quick    # median of 3 repeats, no baseline
    python benchmarks/sweep_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import optimlab
from optimlab.lab import surfaces
from optimlab.lab.sweep import sweep

# (label, optimizer, hyperparameters): the lecture's optimizers and the other usual ones
SPECS = [
    ("SGD", "SGD", {}),
    ("Momentum 0.9", "SGD", {"momentum": 0.9}),
    ("Nesterov 0.9", "SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adagrad", "Adagrad", {}),
    ("RMSprop", "RMSprop", {}),
    ("Adam", "Adam", {}),
    ("AdamW", "AdamW", {}),
    ("Nadam", "Nadam", {}),
    ("Adamax", "Adamax", {}),
    ("Lion", "Lion", {}),
]
LEARNING_RATES = np.logspace(-5, 2, 36)
STEPS = 500
TARGET_S = 1.0


def time_sweeps(surface, steps: int, repeats: int) -> tuple[list[float], dict[str, float]]:
    """Wall time of the whole workload per repeat, and the median per optimizer (seconds)."""
    totals, per_spec = [], {label: [] for label, _, _ in SPECS}
    for _ in range(repeats):
        start_all = time.perf_counter()
        for label, name, hyper in SPECS:
            start = time.perf_counter()
            sweep(surface, name, steps=steps, learning_rate=LEARNING_RATES, **hyper)
            per_spec[label].append(time.perf_counter() - start)
        totals.append(time.perf_counter() - start_all)
    return totals, {label: statistics.median(ts) for label, ts in per_spec.items()}


def time_separate(surface, steps: int) -> dict[str, float]:
    """Seconds for one run of ``steps`` separate ``apply_gradients`` calls per optimizer
    (engine "auto", the default) at learning rate 1e-4, where none of them diverges (the cost
    of a step does not depend on the rate)."""
    out = {}
    for label, name, hyper in SPECS:
        warm = optimlab.get(name, learning_rate=1e-4, **hyper)
        p = np.array(surface.default_start, float)
        for _ in range(3):  # build, compile the kernels
            warm.apply_gradients([(surface.gradient(p), p)])
        opt = optimlab.get(name, learning_rate=1e-4, **hyper)
        p = np.array(surface.default_start, float)
        start = time.perf_counter()
        for _ in range(steps):
            opt.apply_gradients([(surface.gradient(p), p)])
        out[label] = time.perf_counter() - start
    return out


def main(argv=None) -> int:
    """Run the benchmark and print the table; exit status 1 if the median of a full run (not
    ``--quick``) misses the target of 1 s."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, no baseline")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 7, quick 3)")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per run (default 500)")
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if repeats < 1 or args.steps < 1:
        parser.error(f"--repeats and --steps must be >= 1, got {repeats} and {args.steps}")

    surface = surfaces.get("rosenbrock")
    runs = len(LEARNING_RATES) * len(SPECS)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}"
    )
    print(
        f"Rosenbrock from {surface.default_start.tolist()}: {len(SPECS)} optimizers "
        f"x {len(LEARNING_RATES)} learning rates x {args.steps} steps = {runs} runs, float64, "
        f"paths kept; median of {repeats} repeats"
    )
    sweep(surface, "Adam", steps=5, learning_rate=LEARNING_RATES)  # warm imports and caches
    totals, per_spec = time_sweeps(surface, args.steps, repeats)
    separate = None if args.quick else time_separate(surface, args.steps)

    header = f"{'optimizer':14s} {'sweep ms':>9s} {'us/step':>8s}"
    if separate:
        header += f" {'separate runs ms (x36)':>23s} {'speed-up':>9s}"
    print(header)
    for label, seconds in per_spec.items():
        line = f"{label:14s} {seconds * 1e3:9.1f} {seconds / args.steps * 1e6:8.1f}"
        if separate:
            alone = separate[label] * len(LEARNING_RATES)
            line += f" {alone * 1e3:23.0f} {alone / seconds:8.0f}x"
        print(line)
    median = statistics.median(totals)
    verdict = "meets" if median < TARGET_S else "MISSES"
    print(
        f"total: median {median:.3f} s (min {min(totals):.3f}, max {max(totals):.3f}) for "
        f"{runs} runs of {args.steps} steps; {verdict} the target of {TARGET_S:.0f} s"
    )
    if args.json:
        record = {
            "surface": "rosenbrock",
            "steps": args.steps,
            "learning_rates": len(LEARNING_RATES),
            "optimizers": [label for label, _, _ in SPECS],
            "repeats": repeats,
            "total_s": totals,
            "median_total_s": median,
            "per_optimizer_s": per_spec,
            "separate_runs_s_estimate": None
            if separate is None
            else {k: v * len(LEARNING_RATES) for k, v in separate.items()},
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
        }
        with open(args.json, "w") as fh:
            json.dump(record, fh, indent=2)
    # the exit status judges the full measurement only (a smoke test must not fail on load)
    return 0 if median < TARGET_S or args.quick or args.steps != STEPS else 1


if __name__ == "__main__":
    sys.exit(main())
