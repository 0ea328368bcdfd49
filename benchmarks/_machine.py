"""The machine a benchmark ran on, for the record each benchmark saves with its figures."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time


def machine() -> str:
    """The CPU model (from /proc/cpuinfo where there is one) and the number of cores."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores"


def save_json(path: str, record) -> None:
    """Write a benchmark's record to ``path`` as indented JSON ending in a newline (the form
    every saved run in docs/ has, so that a rerun diffs line by line)."""
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def load_span(record) -> str:
    """The one-minute load average before and after a saved run, as its table's footer says
    it: ``"0.7, 1.7"``."""
    return ", ".join(
        f"{x:.1f}" for x in record["load_average"][:1] + record["load_average_after"][:1]
    )


def time_interleaved(makers: dict, trials: int, base: str, optional=()) -> dict:
    """Median step time and state bytes of each contender, measured side by side.

    ``makers``: name -> a function returning ``(step, state_bytes)`` (two callables). Each
    contender's first step (state built, kernels compiled) is timed apart, then every trial
    times one step of each contender in turn. Per contender: ``first_step_s``,
    ``state_bytes``, ``median_ms``, ``speed_vs_torch_fused`` (``base``'s median over this
    one's) and ``state_vs_torch`` (``base``'s state bytes over this one's). A contender named
    in ``optional`` (a peer that may not install or run here) that raises gets
    ``{"error": ...}`` instead; any other error propagates."""
    steps, rows = {}, {}
    for name, make in makers.items():
        try:
            step, state_bytes = make()
            start = time.perf_counter()
            step()
            first = time.perf_counter() - start
            step()
        except Exception as error:
            if name not in optional:
                raise
            rows[name] = {"error": f"{type(error).__name__}: {str(error)[:160]}"}
            continue
        steps[name] = step
        rows[name] = {"first_step_s": first, "state_bytes": int(state_bytes()), "times": []}
    for _ in range(trials):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            rows[name]["times"].append(time.perf_counter() - start)
    if base not in steps:
        return rows
    base_time = statistics.median(rows[base]["times"])
    for name in steps:
        median = statistics.median(rows[name].pop("times"))
        rows[name].update(
            median_ms=median * 1e3,
            speed_vs_torch_fused=base_time / median,
            state_vs_torch=rows[base]["state_bytes"] / rows[name]["state_bytes"],
        )
    return rows
