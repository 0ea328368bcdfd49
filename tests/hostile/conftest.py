"""Counts the hostile cases each test executes (hypothesis examples included) and hands the
count to the controlling process with the test report (``user_properties``, which xdist
forwards), where tests/conftest.py prints the total of the run:
``hostile input: N cases (R refused, A accepted) in T tests``.

``OPTIMLAB_HOSTILE_NO_SHRINK=1`` skips hypothesis's shrinking (to list quickly which tests fail
on a tree without the fixes, e.g. ``PYTHONPATH=<old tree>/src``)."""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase, settings

from .world import CASES

if os.environ.get("OPTIMLAB_HOSTILE_NO_SHRINK"):
    # For checking that the suite fails on a tree without the fixes: report each failing test
    # at once instead of shrinking its example (every other setting as the loaded profile).
    settings.register_profile(
        "hostile-no-shrink",
        parent=settings.default,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        report_multiple_bugs=False,
    )
    settings.load_profile("hostile-no-shrink")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    before = CASES.copy()
    yield
    for kind in ("refused", "accepted"):
        item.user_properties.append((f"hostile_{kind}", CASES[kind] - before[kind]))
