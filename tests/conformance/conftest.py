"""Collects the deviation of every conformance case and prints a summary per peer and dtype."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest

_RESULTS: list[dict] = []


@pytest.fixture
def conformance_record():
    def record(case, deviation: float) -> None:
        _RESULTS.append(
            {"peer": case.peer, "optimizer": case.optimizer, "options": case.options,
             "dtype": case.dtype, "deviation": deviation}
        )

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = list(_RESULTS)
    # with pytest-xdist the workers write their records to files (see below)
    folder = os.environ.get("OPTIMLAB_CONFORMANCE_DIR")
    if folder and os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as f:
                results.extend(json.load(f))
    if not results:
        return
    table = defaultdict(lambda: [0, 0.0, ""])
    for r in results:
        row = table[(r["peer"], r["dtype"])]
        row[0] += 1
        if r["deviation"] >= row[1]:
            row[1] = r["deviation"]
            row[2] = f"{r['optimizer']} {r['options'] or ''}"
    terminalreporter.section("conformance: largest deviation per peer")
    for (peer, dtype), (count, worst, where) in sorted(table.items()):
        terminalreporter.write_line(
            f"{peer:6s} {dtype:8s} {count:4d} cases  max deviation {worst:.2e}  ({where})"
        )
    terminalreporter.write_line(f"total {len(results)} conformance cases")


def pytest_sessionfinish(session, exitstatus):
    folder = os.environ.get("OPTIMLAB_CONFORMANCE_DIR")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if folder and worker and _RESULTS:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{worker}.json"), "w") as f:
            json.dump(_RESULTS, f)
