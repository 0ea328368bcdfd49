"""Records the deviation of every conformance case (see ``tests/conftest.py`` for the summary)."""

from __future__ import annotations

import pytest

from .._records import RESULTS


@pytest.fixture
def conformance_record():
    def record(case, deviation: float, source=None, perturbed_source=None) -> None:
        RESULTS.append(
            {
                "peer": case.peer,
                "optimizer": case.optimizer,
                "options": case.options,
                "dtype": case.dtype,
                "deviation": deviation,
                "source": source,
                "perturbed_source": perturbed_source,
            }
        )

    return record
