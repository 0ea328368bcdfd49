"""Records the deviation of every conformance case (see ``tests/conftest.py`` for the summary)."""

from __future__ import annotations

import json
import os

import pytest

_RESULTS: list[dict] = []


@pytest.fixture
def conformance_record():
    def record(case, deviation: float) -> None:
        _RESULTS.append(
            {
                "peer": case.peer,
                "optimizer": case.optimizer,
                "options": case.options,
                "dtype": case.dtype,
                "deviation": deviation,
            }
        )

    return record


def pytest_sessionfinish(session, exitstatus):
    """Every process (each xdist worker, or the only one) writes its records for the summary."""
    folder = os.environ.get("OPTIMLAB_CONFORMANCE_DIR")
    if folder and _RESULTS:
        os.makedirs(folder, exist_ok=True)
        name = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(folder, f"{name}.json"), "w") as f:
            json.dump(_RESULTS, f)
