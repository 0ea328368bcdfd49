"""``benchmarks/step_speed.py --quick`` runs end to end (a smoke test: no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "step_speed.py"


def test_quick_benchmark_prints_every_column_for_every_case(tmp_path):
    saved = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| optimizer | problem | optimlab fused ms | probe / fused |")
    rows = table[1:]
    assert {r.split("|")[1].strip() for r in rows} == {"SGD", "Adam"}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[2]) > 0  # a time was measured
        assert all(c == "-" or float(c) > 0 for c in cells[3:])
    assert "# threads: numba" in done.stdout and "# torch threads" in done.stdout

    targets = subprocess.run(
        [sys.executable, str(SCRIPT), "--targets-from", str(saved)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    judged = [line for line in targets.splitlines() if line.startswith("| Adam | ")]
    assert len(judged) == 3  # one row per quick problem, each with three ratios
    assert all(float(c) > 0 for line in judged for c in line.strip("|").split("|")[3:])
    assert "fixed cost of an Adam step on a 2-D surface" in targets


def test_quick_sweep_benchmark_times_every_optimizer():
    script = SCRIPT.parent / "sweep_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "total: median" in done.stdout and "for 360 runs of 500 steps" in done.stdout
    for label in ("SGD", "Momentum 0.9", "Adam", "Lion"):
        assert any(line.startswith(label) for line in done.stdout.splitlines()), label


def test_muon_benchmark_times_every_contender_on_one_matrix(tmp_path):
    """``benchmarks/muon_speed.py`` at n = 64 (a smoke test: the ratio is printed, never
    asserted): one row per contender, each with a time, a rate and its ratio to torch; the
    saved run prints the same table again."""
    script = SCRIPT.with_name("muon_speed.py")
    saved = tmp_path / "muon.json"
    done = subprocess.run(
        [sys.executable, str(script), "--n", "64", "--repeats", "1", "--bfloat16"]
        + ["--json", str(saved)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    cells = {r.strip("|").split("|")[0].strip(): r.strip("|").split("|")[1:] for r in rows}
    assert len(cells) == 4
    assert cells["torch.optim.Muon (bfloat16 Newton-Schulz)"][2].strip() == "1.00"
    assert "optimlab.torch.Muon (its torch engine: bfloat16 Newton-Schulz)" in cells
    assert "optimlab.torch.Muon's matrix equals torch.optim.Muon's bit for bit: True" in done.stdout
    assert all(float(c) > 0 for row in cells.values() for c in row)
    again = subprocess.run(
        [sys.executable, str(script), "--table-from", str(saved)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout == done.stdout
