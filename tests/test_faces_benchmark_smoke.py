"""``benchmarks/faces_speed.py``: its rounds alternate the variants, its tables print every
optimizer x preset with the framework's own time as a ratio to optimlab's, and (explore runs
only: importing torch, jax and numba and compiling takes longer than a test may) ``--quick``
runs end to end and ``--table-from`` reprints the saved run. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "faces_speed.py"
sys.path.insert(0, str(SCRIPT.parent))
import faces_speed  # noqa: E402

TORCH_HEADER = (
    "| optimizer | preset | training step ms | torch default / optimlab | torch foreach / "
    "optimlab | torch fused / optimlab | optimizer.step ms | torch default / optimlab | torch "
    "foreach / optimlab | torch fused / optimlab |"
)
OPTAX_HEADER = (
    "| optimizer | training step: optimlab.optax ms | optax ms | optax / optimlab | update: "
    "optimlab.optax ms | optax ms | optax / optimlab | largest weight difference |"
)
#: a run with faces_speed.agreement()'s figures: the gap after a few steps instead
AGREED_HEADER = OPTAX_HEADER.replace(
    "largest weight difference |",
    "float32 ulps after 1, 5 steps | float64 difference after 5 |",
)


def _rows(text: str, header: str) -> list[list[str]]:
    """The cells of the table under ``header`` in ``text``."""
    lines = text.splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _row(optimizer: str, ms: dict, own: tuple, theirs: tuple) -> dict:
    per_round = {t: {v: [x, x] for v, x in by.items()} for t, by in ms.items()}
    return {
        "model": "wide MLP",
        "parameters": 9453578,
        "optimizer": optimizer,
        "rounds": 2,
        "steps_per_round": 3,
        "load_average": [0.5, 1.5],
        "ms": ms,
        "ratios": faces_speed.paired_ratios(per_round, own, theirs),
        "per_round_ms": per_round,
    }


def _torch_row(optimizer: str, ms: dict) -> dict:
    own = faces_speed.TORCH_VARIANTS[: len(faces_speed.PRESETS)]
    return _row(optimizer, ms, own, faces_speed.TORCH_OWN)


def test_tables_give_the_frameworks_time_over_optimlabs_for_every_preset():
    own = {"optimlab torch": 1.0, "optimlab keras": 2.0, "optimlab optax": 4.0}
    adam = {t: {**own, "torch default": 8.0, "torch foreach": 4.0, "torch fused": 2.0} for t in
            faces_speed.TORCH_TIMED}  # fmt: skip
    rprop = {
        t: {**own, "torch default": 3.0, "torch foreach": 6.0} for t in faces_speed.TORCH_TIMED
    }
    optax_ms = {
        "training step": {"optimlab": 2.0, "optax": 3.0},
        "update": {"optimlab": 0.5, "optax": 0.25},
    }
    run = {
        "environment": {
            "machine": "a CPU, 2 cores",
            "torch": "2.13",
            "torch_threads": 2,
            "numba": "0.68",
            "numba_threads": 2,
            "jax": "0.10",
            "optax": "0.2.8",
        },
        "torch": [_torch_row("Adam", adam), _torch_row("Rprop", rprop)],
        "optax": [
            {
                **_row("adam", optax_ms, ("optimlab",), ("optax",)),
                "model": "MLP 4-2",
                "parameters": 10,
                "largest weight difference": 3e-8,
            }
        ],  # fmt: skip
    }
    text = faces_speed.tables(run)
    assert "load average 0.5 to 1.5" in text and "2 rounds of 3 steps" in text
    torch_rows = _rows(text, TORCH_HEADER)
    assert [r[:2] for r in torch_rows] == [
        [o, p] for o in ("Adam", "Rprop") for p in ("torch", "keras", "optax")
    ]
    by = {(r[0], r[1]): r[2:] for r in torch_rows}
    # training step and optimizer.step: optimlab's ms, then default, foreach, fused over it
    assert by["Adam", "torch"] == ["1", "8.00", "4.00", "2.00"] * 2
    assert by["Adam", "optax"] == ["4", "2.00", "1.00", "0.50"] * 2
    assert by["Rprop", "keras"] == ["2", "1.50", "3.00", "-"] * 2  # torch has no fused Rprop
    assert _rows(text, OPTAX_HEADER) == [
        ["adam", "2", "3", "1.50", "0.5", "0.25", "0.50", "3.0e-08"]
    ]
    # with agreement(): the gap after its steps, in float32 ulps and in float64
    agreement = {"steps": 5, "float32 ulps": [1.0, 2.0, 3.0, 2.0, 7.0], "float64": [1e-17] * 4}
    agreement["float64"].append(2.5e-15)
    agreed = {**run, "optax": [{**run["optax"][0], "agreement": agreement}]}
    assert _rows(faces_speed.tables(agreed), AGREED_HEADER) == [
        ["adam", "2", "3", "1.50", "0.5", "0.25", "0.50", "1, 7", "2.5e-15"]
    ]
    # a part the run does not hold prints no table
    assert OPTAX_HEADER not in faces_speed.tables({**run, "optax": []})
    assert TORCH_HEADER not in faces_speed.tables({**run, "torch": []})


def test_a_ratio_pairs_the_two_times_of_each_round():
    # the load doubles every time in the second round and triples them in the third
    per_round = {"step": {"optimlab": [1.0, 2.0, 3.0], "optax": [2.0, 4.0, 6.0], "x": [1, 1, 1]}}
    assert faces_speed.paired_ratios(per_round, ("optimlab",), ("optax", "y")) == {
        "step": {"optax / optimlab": 2.0}  # a variant that did not run has no ratio
    }
    per_round = {"step": {"optimlab": [1.0, 1.0, 10.0], "optax": [3.0, 2.0, 1.0]}}
    assert faces_speed.paired_ratios(per_round, ("optimlab",), ("optax",)) == {
        "step": {"optax / optimlab": 2.0}  # the median of 3, 2 and 0.1
    }


def test_rounds_rotate_the_variants_and_time_each_function_of_each():
    calls = []
    runners = {v: {t: (lambda v=v, t=t: calls.append((v, t))) for t in ("a", "b")} for v in "xyz"}
    per_round = faces_speed.alternate(runners, ("a", "b"), (3, 2, 1))
    warmup, timed = calls[:6], calls[6:]
    assert sorted(warmup) == sorted((v, t) for v in "xyz" for t in "ab")
    assert len(timed) == 3 * 3 * 2 * 2  # rounds x variants x functions x steps
    firsts = [timed[i * 12][0] for i in range(3)]
    assert firsts == ["x", "y", "z"]  # each round starts one variant later
    assert all(len(ms) == 3 and min(ms) >= 0 for by in per_round.values() for ms in by.values())


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "explore",
    reason="imports torch, jax and numba, compiles steps (over 10 s): HYPOTHESIS_PROFILE=explore",
)
def test_quick_run_prints_both_tables_and_reprints_them_from_its_json(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("optax")
    saved = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(saved)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    torch_rows = _rows(done.stdout, TORCH_HEADER)
    assert [r[:2] for r in torch_rows] == [
        [o, p] for o in ("SGD", "Adam") for p in ("torch", "keras", "optax")
    ]
    assert all(float(c) > 0 for r in torch_rows for c in r[2:])  # both have torch's fused
    optax_rows = _rows(done.stdout, AGREED_HEADER.replace("5", "2"))
    assert [r[0] for r in optax_rows] == ["sgd", "adam"]
    assert all(float(c) > 0 for r in optax_rows for c in r[1:7])
    # the same 2 steps: float32 a few ulps apart, float64 within 1e-14
    ulps = [[float(x) for x in r[7].split(", ")] for r in optax_rows]
    assert all(u[0] <= 2 for u in ulps) and all(float(r[8]) < 1e-14 for r in optax_rows)

    run = json.loads(saved.read_text())
    assert run["quick"] is True and len(run["environment"]["load_average_after"]) == 3
    for row in run["torch"] + run["optax"]:  # one median per round of every variant
        assert len(row["load_average"]) == 2
        for by_variant in row["per_round_ms"].values():
            assert all(len(ms) == row["rounds"] for ms in by_variant.values())
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--table-from", str(saved)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert again.rstrip("\n") in done.stdout
