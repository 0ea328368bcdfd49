"""One quick tour of every chapter per test run, shared by the tour's tests (and by both
pytest-xdist workers: the first to need it builds it under a file lock, the other waits and
reads the same folder)."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from optimlab.report import write_tour


@pytest.fixture(scope="session")
def quick_tour(tmp_path_factory, worker_id) -> Path:
    """The folder of ``optimlab tour --quick`` over every chapter (index.html, figures/,
    numbers.json, claims.json, colors.json)."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # xdist: the run's root, shared by the workers
        root = root.parent
    out = root / "quick-tour"
    with open(root / "quick-tour.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (out / "done").exists():
                write_tour(out, quick=True, progress=False, dpi=60)
                (out / "done").write_text("ok")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out


@pytest.fixture(scope="session")
def tour_claims(quick_tour) -> dict:
    """claims.json of the quick tour: chapter -> [{text, holds, detail}]."""
    return json.loads((quick_tour / "claims.json").read_text())


@pytest.fixture(scope="session")
def tour_numbers(quick_tour) -> dict:
    """numbers.json of the quick tour: chapter -> {name: value}."""
    return json.loads((quick_tour / "numbers.json").read_text())
