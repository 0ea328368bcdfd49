"""The conformance records of this test process, written at its end for the summary that
``tests/conftest.py`` prints (one file per process: each xdist worker, or the only one)."""

from __future__ import annotations

import json
import os

#: every conformance case that ran here: {"peer", "optimizer", "options", "dtype", "deviation"}
RESULTS: list[dict] = []


def write() -> None:
    """Save ``RESULTS`` to ``$OPTIMLAB_CONFORMANCE_DIR/<worker>.json`` (nothing if empty)."""
    folder = os.environ.get("OPTIMLAB_CONFORMANCE_DIR")
    if folder and RESULTS:
        os.makedirs(folder, exist_ok=True)
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(folder, f"{name}.json"), "w") as f:
            json.dump(RESULTS, f)
