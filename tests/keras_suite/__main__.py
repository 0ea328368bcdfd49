"""Run Keras's tests against optimlab and print the count by outcome and reason:

python -m tests.keras_suite               # against the NumPy dialect (optimlab.Adam, ...)
python -m tests.keras_suite --face keras  # against optimlab.keras, every test (the explore run)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

#: face -> (the test file, the parametrized test whose cases are the Keras tests)
FACES = {
    "numpy": ("test_keras_suite.py", "test_keras["),
    "keras": ("test_keras_face_suite.py", "test_keras_face["),
}


class Tally:
    """Outcomes of the cases of the parametrized test ``prefix`` (the collected Keras tests)."""

    def __init__(self, prefix: str = "test_keras[") -> None:
        self.prefix = prefix
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report) -> None:
        if f"::{self.prefix}" not in report.nodeid:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.keras_suite", description=__doc__)
    parser.add_argument(
        "--face",
        choices=("numpy", "keras"),
        default="numpy",
        help="numpy: the NumPy dialect (default); keras: optimlab.keras, every test",
    )
    args = parser.parse_args(argv)
    filename, prefix = FACES[args.face]
    if args.face == "keras":
        os.environ["HYPOTHESIS_PROFILE"] = "explore"  # the whole drive, not the default subset
    tally = Tally(prefix)
    here = Path(__file__).resolve().parent
    code = pytest.main([str(here / filename), "-q", "-p", "no:cacheprovider"], [tally])
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
