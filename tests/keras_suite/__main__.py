"""Run Keras's tests against optimlab and print the count by outcome and reason:

python -m tests.keras_suite
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest


class Tally:
    """Outcomes of the ``test_keras`` cases (the collected Keras tests)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report) -> None:
        if "test_keras[" not in report.nodeid:
            return
        if report.when == "call" and report.passed:
            self.outcomes["passed"] += 1
        elif hasattr(report, "wasxfail"):
            self.outcomes["failed on a documented difference (xfail)"] += 1
            self.reasons[report.wasxfail.split(":")[0]] += 1
        elif report.skipped:
            self.outcomes["not applicable (skipped)"] += 1
            self.reasons[str(report.longrepr[2]).removeprefix("Skipped: ")] += 1
        elif report.failed:
            self.outcomes["FAILED"] += 1


def main() -> int:
    tally = Tally()
    here = Path(__file__).resolve().parent
    code = pytest.main([str(here / "test_keras_suite.py"), "-q", "-p", "no:cacheprovider"], [tally])
    total = sum(tally.outcomes.values())
    run = total - tally.outcomes["not applicable (skipped)"]
    print(f"\nKeras tests collected: {total}; run: {run}")
    for outcome, count in tally.outcomes.most_common():
        print(f"  {count:4d}  {outcome}")
    print("reasons:")
    for reason, count in tally.reasons.most_common():
        print(f"  {count:4d}  {reason}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
