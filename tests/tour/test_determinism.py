"""The same command writes the same tour: two chapters run again here, in this process,
give byte for byte the numbers, claims and figures that the shared quick tour's worker
processes wrote."""

from __future__ import annotations

import json

from optimlab.report import write_tour

KEYS = ["ewma", "adagrad_square"]


def test_the_tour_is_deterministic_and_independent_of_the_worker_processes(quick_tour, tmp_path):
    write_tour(tmp_path, KEYS, quick=True, progress=False, dpi=60, workers=1)
    for name in ("numbers.json", "claims.json"):
        again = json.loads((tmp_path / name).read_text())
        shared = json.loads((quick_tour / name).read_text())
        assert again == {k: shared[k] for k in KEYS}, name
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert figures and all(name.split("-")[0] in KEYS for name in figures)
    for name in figures:
        assert (tmp_path / "figures" / name).read_bytes() == (
            quick_tour / "figures" / name
        ).read_bytes(), name
