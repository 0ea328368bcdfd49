"""The README is a contract: its commands, code and numbers must be the repository's own."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "tools"))
import update_readme  # noqa: E402

PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)


def test_the_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert len(BASH_BLOCKS) >= 2
    assert BASH_BLOCKS[1].strip() == ci


def test_the_main_command_installs_and_runs_optimlab():
    main = BASH_BLOCKS[0].strip()
    assert main.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert ".venv/bin/optimlab " in main


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_code_blocks_run(index, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PYTHON_BLOCKS[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_generated_sections_are_current():
    blocks = update_readme.blocks(README)
    assert {c for c, _ in blocks} == {
        "optimlab presets --markdown",
        "optimlab differences --markdown",
        "python benchmarks/step_speed.py --table-from docs/step_speed.json",
        "python benchmarks/step_speed.py --targets-from docs/step_speed.json",
        "python benchmarks/torch_training.py --table-from docs/torch_training.json",
    }
    for command, content in blocks:
        assert content == update_readme.command_output(command), (
            f"README section of `{command}` is stale: run python tools/update_readme.py"
        )


def test_conformance_case_counts_match_the_grid():
    from tests.conformance.cases import all_cases

    counts = Counter((c.peer, c.dtype) for c in all_cases())
    names = {"Keras 3": "keras", "torch.optim": "torch", "optax": "optax"}
    rows = re.findall(r"^\| (Keras 3|torch\.optim|optax) \| (float\d\d) \| (\d+) \|", README, re.M)
    assert len(rows) == 6
    for peer, dtype, count in rows:
        assert counts[(names[peer], dtype)] == int(count)
    assert f"{sum(counts.values())} cases" in README
