"""``python -m tests.cross_framework [--full]``: train the porting chapter's MLP in Keras,
PyTorch and JAX for the test suite's (optimizer, preset) cells (``--full``: all of them) and
print the largest relative deviation per cell and pair of frameworks, and of each framework's
own optimizer against the runs of its preset (run from the repository root with
``PYTHONPATH=src``); ``--json PATH`` also writes the matrix there (docs/cross_framework.json:
optimizer -> preset -> comparison -> deviation, with the libraries' versions).
``--matrix PATH`` prints a saved matrix as a Markdown table, optimizer x preset x framework
(:func:`matrix_lines`), and runs nothing."""

import argparse
import itertools
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main() -> None:
    """Run the cells and print the table."""
    parser = argparse.ArgumentParser(prog="python -m tests.cross_framework")
    parser.add_argument("--full", action="store_true", help="every optimizer x preset")
    parser.add_argument("--json", metavar="PATH", help="also write the matrix as JSON here")
    parser.add_argument(
        "--matrix", metavar="PATH", help="print the saved JSON matrix PATH as a table; no runs"
    )
    args = parser.parse_args()
    if args.matrix:
        with open(args.matrix) as f:
            print("\n".join(matrix_lines(json.load(f))))
        return
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
    seconds = time.perf_counter() - start
    print(f"({seconds:.1f} s)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(_as_json(deviations, seconds), out, indent=1)
            out.write("\n")


#: the frameworks of the matrix's columns: each face, and the preset's peer's own optimizer
MATRIX_FRAMEWORKS = ("keras", "torch", "jax", "own")


def _cell(comparisons: dict, framework: str) -> float | None:
    """The largest deviation of a comparison that involves ``framework``'s face ("own": the
    peer's own optimizer against the faces), None where there is none."""
    if framework == "own":
        values = [v for pair, v in comparisons.items() if pair.startswith("own")]
    else:
        values = [v for pair, v in comparisons.items() if framework in pair.split(" vs ")]
    return max(values) if values else None


def matrix_lines(saved: dict) -> list[str]:
    """A Markdown table of a saved matrix (``--json``'s document): one row per optimizer and
    preset, one column per framework (keras, torch, jax: the optimlab face there; own: the
    preset's peer's own optimizer), each cell the largest relative deviation,
    max|a - b| / max|b| over the weights, among the comparisons that involve it ("-": the
    face or the peer's optimizer does not exist). A pair's deviation shows in both its faces'
    cells: where one face stands apart (Adafactor's keras preset on the torch face, 1.4e-7),
    the other faces' cells show it too; the JSON has each pair."""
    deviations = saved["deviations"]
    head = [f"{f} face" if f != "own" else "peer's own" for f in MATRIX_FRAMEWORKS]
    lines = [
        f"{saved['model']}; {saved['measure']}; "
        + ", ".join(f"{k} {v}" for k, v in saved["versions"].items()),
        "",
        "| optimizer | preset | " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * len(head),
    ]
    for optimizer, by_preset in deviations.items():
        for preset, comparisons in by_preset.items():
            cells = [_cell(comparisons, f) for f in MATRIX_FRAMEWORKS]
            lines.append(
                f"| {optimizer} | {preset} | "
                + " | ".join("-" if v is None else f"{v:.1e}" for v in cells)
                + " |"
            )
    lines += [
        "",
        f"largest: {saved['largest']:.2e} over {saved['comparisons']} comparisons, "
        f"{len(deviations)} optimizers",
    ]
    return lines


def _as_json(deviations: dict, seconds: float) -> dict:
    import jax
    import keras
    import optax
    import torch

    matrix: dict = {}
    for (optimizer, preset, pair), value in deviations.items():
        matrix.setdefault(optimizer, {}).setdefault(preset, {})[pair] = value
    return {
        "model": "digits MLP 64-16-10 tanh, 24 updates of batch 32, lr x 0.3 after 12, float64",
        "measure": "max over W1, b1, W2, b2 of max|a - b| / max|b|",
        "versions": {
            "torch": torch.__version__,
            "keras": keras.__version__,
            "jax": jax.__version__,
            "optax": optax.__version__,
        },  # fmt: skip
        "largest": max(deviations.values()),
        "comparisons": len(deviations),
        "seconds": seconds,
        "load average": [round(x, 2) for x in os.getloadavg()[:2]],
        "deviations": matrix,
    }


if __name__ == "__main__":
    main()
