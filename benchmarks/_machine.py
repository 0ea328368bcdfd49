"""The machine a benchmark ran on, for the record each benchmark saves with its figures."""

from __future__ import annotations

import json
import os
import platform


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
