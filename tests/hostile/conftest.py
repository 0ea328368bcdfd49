"""Counts the hostile cases each test executes (hypothesis examples included) and hands the
count to the controlling process with the test report (``user_properties``, which xdist
forwards), where tests/conftest.py prints the total of the run:
``hostile input: N cases (R refused, A accepted) in T tests``."""

from __future__ import annotations

import pytest

from .world import CASES


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    before = CASES.copy()
    yield
    for kind in ("refused", "accepted"):
        item.user_properties.append((f"hostile_{kind}", CASES[kind] - before[kind]))
