"""Fixtures of the cross-framework tests: Keras in float64 for this package only (restored
afterwards), and the table of measured deviations printed at the end of the session."""

import pytest

from . import _runs

#: (optimizer, preset, "framework a vs b") -> the largest relative deviation measured
DEVIATIONS: dict[tuple[str, str, str], float] = {}


@pytest.fixture(scope="package", autouse=True)
def keras_float64():
    import keras

    previous = _runs.keras_float64()
    yield
    keras.config.set_floatx(previous)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The matrix optimizer x preset x framework pair -> max relative deviation."""
    if not DEVIATIONS:
        return
    terminalreporter.section("cross-framework deviations (relative, float64)")
    for line in _runs.format_table(DEVIATIONS):
        terminalreporter.write_line(line)
