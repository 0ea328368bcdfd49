"""``benchmarks/torch_training.py --quick`` runs end to end and prints every row and column (a
smoke test: no timing is asserted), and ``--table-from`` reprints the saved run."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "torch_training.py"
QUICK_MODELS = {"digits MLP (17,226)", "digits CNN (9,930)"}
QUICK_OPTIMIZERS = {"SGD", "Adam", "AdamW", "RMSprop"}
TIMED = {"training step", "optimizer.step"}
HEADER = (
    "| model | optimizer | timed | optimlab ms | torch default / optimlab "
    "| torch foreach / optimlab | torch fused / optimlab |"
)


def _table(stdout: str) -> list[list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert lines[0] == HEADER
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


def test_quick_torch_benchmark_prints_every_variant_for_every_case(tmp_path):
    saved = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "# threads: torch " in done.stdout and ", numba " in done.stdout

    rows = _table(done.stdout)
    assert len(rows) == len(QUICK_MODELS) * len(QUICK_OPTIMIZERS) * len(TIMED)
    assert {tuple(r[:3]) for r in rows} == set(product(QUICK_MODELS, QUICK_OPTIMIZERS, TIMED))
    for _, optimizer, _, optimlab_ms, default, foreach, fused in rows:
        assert float(optimlab_ms) > 0  # a time was measured
        assert float(default) > 0 and float(foreach) > 0
        # torch has fused=True on CPU for SGD, Adagrad, Adam and AdamW only
        assert (fused == "-") == (optimizer == "RMSprop")
        assert fused == "-" or float(fused) > 0

    run = json.loads(saved.read_text())
    assert run["quick"] is True
    assert run["environment"]["torch_threads"] >= 1 and run["environment"]["numba_threads"] >= 1
    for row in run["rows"]:  # every variant has one median per round
        for by_variant in row["per_round_ms"].values():
            assert all(len(times) == row["rounds"] for times in by_variant.values())

    reprinted = subprocess.run(
        [sys.executable, str(SCRIPT), "--table-from", str(saved)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    summary, *table = reprinted.rstrip("\n").splitlines()
    assert "threads" in summary and "variants alternated" in summary
    assert "\n".join(table) in done.stdout  # the saved run prints the table it printed
