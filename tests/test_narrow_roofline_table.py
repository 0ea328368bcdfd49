"""``benchmarks/narrow_roofline.py --table-from``: the README's table states the saved figures
(the bound named is the larger of arithmetic and bytes), with no timing asserted."""

from __future__ import annotations

from tests._benchmarks import BENCHMARKS, load


def _module():
    return load("narrow_roofline")


def test_table_states_the_saved_figures():
    row = dict(
        step_ms=20.0,
        speed_vs_torch_fused=0.5,
        arithmetic_ns_per_element=2.5,
        arithmetic_ms=20.0,
        bytes_ms=5.0,
        bound="arithmetic",
        best_speed_vs_torch_fused=0.5,
        target=1.6,
        target_ms=6.25,
    )
    record = {
        "machine": "a CPU, 2 cores",
        "load_average": [0.5, 0.4, 0.3],
        "load_average_after": [1.5, 0.4, 0.3],
        "n": 16_000_000,
        "trials": 15,
        "calls": 301,
        "run": {"torch_fused_ms": 10.0, "threads": 2, "kinds": {"int8": row}},
    }
    lines = _module().table(record).splitlines()
    assert lines[2] == "| int8 | 20.0 | 0.50x | 20.0 | 5.0 | arithmetic | 0.50x | 1.6x (6.2 ms) |"
    assert lines[-1].startswith("1.6e+07 parameters; torch fused fp32 10.0 ms; a CPU, 2 cores")
    assert "median of 15 interleaved trials; load average 0.5, 1.5" in lines[-1]


def test_saved_run_names_the_larger_floor():
    """In docs/narrow_roofline.json each row's bound is the larger of its two floors and its
    best ratio is torch's time over that floor; a narrow state's step is never faster than
    that best (a step cannot beat its own floors, up to 10% of timing noise)."""
    import json

    saved = json.loads((BENCHMARKS.parent / "docs" / "narrow_roofline.json").read_text())
    torch_ms = saved["run"]["torch_fused_ms"]
    for row in saved["run"]["kinds"].values():
        floor = max(row["arithmetic_ms"], row["bytes_ms"])
        assert row["bound"] == ("arithmetic" if row["arithmetic_ms"] > row["bytes_ms"] else "bytes")
        assert abs(row["best_speed_vs_torch_fused"] - torch_ms / floor) < 1e-9
        assert row["step_ms"] > 0.9 * floor
