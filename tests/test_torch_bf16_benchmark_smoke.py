"""``benchmarks/torch_bf16.py``: its table prints every optimizer with torch's time over
optimlab's (a dash where torch has no such optimizer), and (explore runs only: inductor
compiles a graph per optimizer, tens of seconds) ``--quick`` on tiny sizes runs end to end and
``--table-from`` reprints the saved run. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "torch_bf16.py"
sys.path.insert(0, str(SCRIPT.parent))
import torch_bf16  # noqa: E402

HEADER = (
    "| optimizer | optimlab compiled ms | optimlab auto ms | torch for-loop ms | torch foreach "
    "ms | for-loop / compiled | foreach / compiled | foreach / auto | first compiled step s |"
)


def _row(name: str, ms: dict) -> dict:
    ratios = {
        f"{t} / {o}": ms[t] / ms[o] for o in torch_bf16.OWN for t in torch_bf16.THEIRS if t in ms
    }
    return {
        "optimizer": name,
        "ms": ms,
        "ratios": ratios,
        "first_step_s": {"optimlab compiled": 12.34},
    }


def _run(rows) -> dict:
    return {
        "environment": {"machine": "a CPU, 2 cores", "torch": "2.13", "torch_threads": 2},
        "quick": False,
        "plan": dict(torch_bf16.FULL),
        "rows": rows,
    }


def _cells(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(HEADER) + 2
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:]]


def test_table_gives_torchs_time_over_optimlabs():
    """Ratios > 1 where optimlab is faster; Lion (no torch.optim.Lion) has dashes."""
    ms = {
        "optimlab compiled": 10.0,
        "optimlab auto": 20.0,
        "torch for-loop": 40.0,
        "torch foreach": 30.0,
    }
    lion = {"optimlab compiled": 5.0, "optimlab auto": 5.0}
    cells = _cells(torch_bf16.table(_run([_row("Adam", ms), _row("Lion", lion)])))
    assert cells[0] == ["Adam", "10.00", "20.00", "40.00", "30.00", "4.00", "3.00", "1.50", "12.3"]
    assert cells[1] == ["Lion", "5.00", "5.00", "—", "—", "—", "—", "—", "12.3"]


def test_every_optimizer_the_issue_names_is_timed():
    """Adam, AdamW, SGD with momentum, RMSprop, Adagrad and one rule torch lacks (Lion)."""
    assert set(torch_bf16.OPTIMIZERS) == {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Lion"}
    assert torch_bf16.OPTIMIZERS["SGD"]["momentum"] > 0
    assert torch_bf16.VARIANTS["torch for-loop"][1] == {"foreach": False}
    assert torch_bf16.VARIANTS["torch foreach"][1] == {"foreach": True}


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "explore",
    reason="compiles a graph per optimizer (tens of seconds): HYPOTHESIS_PROFILE=explore",
)
def test_quick_run_prints_the_table_and_reprints_it_from_its_json(tmp_path):
    out = tmp_path / "run.json"
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parent.parent / "src")}
    command = [sys.executable, str(SCRIPT), "--quick", "--tensors", "3", "--size", "8"]
    printed = subprocess.run(
        [*command, "--optimizers", "SGD", "Lion", "--json", str(out)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    run = json.loads(out.read_text())
    assert [r["optimizer"] for r in run["rows"]] == ["SGD", "Lion"]
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--table-from", str(out)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert torch_bf16.table(run) in printed and again.strip() == torch_bf16.table(run)
