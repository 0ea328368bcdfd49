"""Records the deviation of every optimlab.torch conformance case for the summary that
``tests/conftest.py`` prints at the end of the run (largest deviation per engine and dtype)."""

from __future__ import annotations

import os

import pytest

from .._records import RESULTS

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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module's tests (restored after): with pytest-xdist or
    a busy machine torch's spinning threads oversubscribe the cores and make a step on a small
    model 5 to 10 times slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_torch_thread_for_muon(request):
    """One intra-op thread for the Muon cases of the shared grids (optim_db, conformance):
    its bfloat16 products of small matrices are where torch's spinning OpenMP team
    costs most on a busy machine (measured: 28 ms for a 4 x 6 product with two threads, 3 us
    with one). Both libraries run in the same process, so they compare under the same
    setting."""
    if torch is None or "Muon" not in request.node.name:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def torch_conformance_record():
    """``record(optimizer, options, engine, dtype, deviation)``."""

    def record(optimizer: str, options: str, engine: str, dtype: str, deviation: float) -> None:
        RESULTS.append(
            {
                "peer": f"torch.optim vs optimlab.torch[{engine}]",
                "optimizer": optimizer,
                "options": options,
                "dtype": dtype,
                "deviation": deviation,
            }
        )

    return record
