"""``python -m tests.cross_framework [--full]``: train the porting chapter's MLP in Keras,
PyTorch and JAX for the test suite's (optimizer, preset) cells (``--full``: all of them) and
print the largest relative deviation per cell and pair of frameworks, and of each framework's
own optimizer against the runs of its preset (run from the repository root with
``PYTHONPATH=src``)."""

import argparse
import itertools
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main() -> None:
    """Run the cells and print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.cross_framework")
    parser.add_argument("--full", action="store_true", help="every optimizer x preset")
    args = parser.parse_args()
    from . import _runs

    _runs.keras_float64()
    start = time.perf_counter()
    deviations = {}
    for optimizer, preset in _runs.cells(args.full):
        runs = {f: _runs.face_run(optimizer, preset, f) for f in _runs.frameworks_of(optimizer)}
        for a, b in itertools.combinations(runs, 2):
            deviations[optimizer, preset, f"{a} vs {b}"] = _runs.deviation(runs[a], runs[b])
        if optimizer in _runs.NATIVE[preset]:
            own = _runs.native_run(optimizer, preset)
            deviations[optimizer, preset, "own vs faces"] = max(
                _runs.deviation(run, own) for run in runs.values()
            )
    for line in _runs.format_table(deviations):
        print(line)
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
