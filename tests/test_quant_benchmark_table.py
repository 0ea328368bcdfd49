"""``benchmarks/quant_speed.py --table-from``: the README's table states the saved figures (a
ratio is the saved ratio, a peer that did not run says why), with no timing asserted."""

from __future__ import annotations

from tests._benchmarks import load


def _module():
    return load("quant_speed")


def test_table_states_the_saved_ratios_and_errors():
    row = dict(first_step_s=0.1, state_bytes=32_000_000, median_ms=50.0)
    record = {
        "machine": "a CPU, 2 cores",
        "load_average": [0.5, 0.4, 0.3],
        "load_average_after": [1.5, 0.4, 0.3],
        "threads": {"numba": 2, "torch": 2},
        "trials": 15,
        "sizes": {
            "16000000": {
                "torch fused fp32": dict(row, speed_vs_torch_fused=1.0, state_vs_torch=1.0),
                "optimlab fused int8": dict(
                    row,
                    median_ms=31.25,
                    state_bytes=8_250_000,
                    speed_vs_torch_fused=1.6,
                    state_vs_torch=3.878787,
                ),
                "bitsandbytes Adam8bit": {"error": "ImportError: no module"},
            }
        },
    }
    lines = _module().table(record).splitlines()
    assert lines[2] == "| 1.6e+07 | torch fused fp32 | 50.0 | 1.00x | 32.0 | 1.00x |"
    assert lines[3] == "| 1.6e+07 | optimlab fused int8 | 31.2 | 1.60x | 8.2 | 3.88x |"
    assert "does not run: ImportError: no module" in lines[4]
    assert "median of 15 interleaved trials; load average 0.5, 1.5" in lines[-1]
