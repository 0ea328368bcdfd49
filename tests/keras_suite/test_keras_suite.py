"""Keras 3's own optimizer and schedule tests, run against optimlab on NumPy arrays.

The tests are imported from the installed Keras wheel (never copied) and run with optimlab's
classes substituted in their modules (:mod:`tests.keras_suite.adapters`); their golden values
are Keras's. :mod:`tests.keras_suite.registry` says which ones cannot apply (skipped, with the
reason; so are all tests of the optimizers optimlab does not have yet, ``driver.FUTURE_MODULES``)
and which fail on a documented difference (xfail); all others must pass. The count::

    python -m pytest tests/keras_suite/test_keras_suite.py -q -rsx
"""

from __future__ import annotations

import pytest

from . import driver, registry

TESTS = driver.collect()
IDS = {t.id for t in TESTS}


def test_every_keras_test_module_is_driven_or_listed():
    known = set(driver.MODULES) | set(driver.FUTURE_MODULES)
    shipped = driver.keras_test_modules()
    assert shipped == known, (
        "Keras optimizer test modules neither driven (driver.MODULES) nor listed as not "
        f"applicable (driver.FUTURE_MODULES), or listed and gone: {sorted(shipped ^ known)}"
    )


def test_the_lists_name_only_collected_tests():
    listed = set(registry.NOT_APPLICABLE) | set(registry.DIFFERENCES)
    assert not set(registry.NOT_APPLICABLE) & set(registry.DIFFERENCES)
    stale = sorted(listed - IDS)
    assert not stale, f"listed Keras tests that the installed Keras no longer has: {stale}"


@pytest.mark.parametrize("test", TESTS, ids=[t.id for t in TESTS])
def test_keras(test, monkeypatch):
    reason = driver.FUTURE_MODULES.get(test.module) or registry.NOT_APPLICABLE.get(test.id)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")
    difference = registry.DIFFERENCES.get(test.id)
    driver.run_documented(
        lambda: driver.run(test, monkeypatch),
        test.id,
        difference and difference.failure,
        difference and f"documented difference ({difference.row})",
        "registry.DIFFERENCES",
    )
