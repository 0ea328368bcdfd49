"""Records the deviation of every optimlab.torch conformance case for the summary that
``tests/conftest.py`` prints at the end of the run (largest deviation per engine and dtype)."""

from __future__ import annotations

import json
import os

import pytest

try:
    import torch
except ImportError:  # pragma: no cover - the tests here skip without torch
    torch = None

if torch is not None and os.environ.get("PYTEST_XDIST_WORKER"):
    # Several xdist workers, each with an OpenMP team of one thread per core, spin-wait for
    # each other's cores: a step on a 40,000-element tensor then takes ~100x longer. One
    # intra-op thread per worker (the numerics of the elementwise updates do not depend on it).
    torch.set_num_threads(1)
    import numba

    numba.set_num_threads(1)

_RESULTS: list[dict] = []


@pytest.fixture
def torch_conformance_record():
    """``record(optimizer, options, engine, dtype, deviation)``."""

    def record(optimizer: str, options: str, engine: str, dtype: str, deviation: float) -> None:
        _RESULTS.append(
            {
                "peer": f"torch.optim vs optimlab.torch[{engine}]",
                "optimizer": optimizer,
                "options": options,
                "dtype": dtype,
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
        with open(os.path.join(folder, f"torch-{name}.json"), "w") as f:
            json.dump(_RESULTS, f)
