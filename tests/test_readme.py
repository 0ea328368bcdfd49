"""The README is a contract: its commands, code and numbers must be the repository's own."""

from __future__ import annotations

import json
import os
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
        "python benchmarks/adafactor_memory.py",
        "python benchmarks/muon_speed.py --table-from docs/muon_speed.json",
        "python benchmarks/keras_training.py --table-from docs/keras_training.json",
        "python benchmarks/faces_speed.py --table-from docs/faces_speed.json",
        "python -m optimlab.lab.experiments.quantized_state --table-from docs/quantized_state.json",
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


def test_the_chapter_count():
    from optimlab.lab import experiments

    assert f"({len(experiments.EXPERIMENTS)} chapters, in the lecture's" in README


def _run(*argv: str) -> str:
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    return result.stdout + result.stderr


def test_the_keras_suite_tally():
    out = _run("-m", "tests.keras_suite")
    collected, ran = map(int, re.search(r"Keras tests collected: (\d+); run: (\d+)", out).groups())
    passed = int(re.search(r"(\d+)  passed", out).group(1))
    xfailed = int(re.search(r"(\d+)  failed on a documented difference", out).group(1))
    skipped = int(re.search(r"(\d+)  not applicable \(skipped\)", out).group(1))
    assert (
        f"of {collected} Keras tests, {ran} apply to optimlab and {passed} of them pass; "
        f"{xfailed} fail" in " ".join(README.split())
    )
    assert f"The other {skipped} test" in README


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "explore",
    reason="runs all of Keras's tests against optimlab.keras (minutes): HYPOTHESIS_PROFILE=explore",
)
def test_the_keras_face_suite_tally():
    out = _run("-m", "tests.keras_suite", "--face", "keras")
    collected, ran = map(int, re.search(r"Keras tests collected: (\d+); run: (\d+)", out).groups())
    passed = int(re.search(r"(\d+)  passed", out).group(1))
    xfailed = int(re.search(r"(\d+)  failed on a documented difference", out).group(1))
    skipped = int(re.search(r"(\d+)  not applicable \(skipped\)", out).group(1))
    assert "FAILED" not in out.split("Keras tests collected")[-1]
    words = " ".join(README.split())
    assert f"counts, of {collected}, {ran} that apply and {passed} that pass" in words
    assert f"{xfailed} fail on documented differences" in words
    assert f"{skipped} do not apply" in words


def test_the_optim_db_case_count():
    out = _run(
        "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
        "tests/torch/test_optim_db.py", "tests/torch/test_optim_db_features.py",
    )  # fmt: skip
    count = int(re.search(r"(\d+) tests collected", out).group(1))
    assert f"`test_optim_db_features.py`: {count} cases, all passing)" in README


def test_cross_framework_figures_are_the_saved_matrix():
    """The README's cross-framework paragraph states docs/cross_framework.json: its cell and
    comparison counts, the largest gap between the faces (and but for Schedule-Free AdamW),
    the frameworks' own optimizers against their preset, and the one cell named apart."""

    def short(x):
        return f"{x:.3g}".replace("e-0", "e-")

    saved = json.loads((ROOT / "docs" / "cross_framework.json").read_text())
    deviations = saved["deviations"]
    apart = ("Adafactor", "keras")
    faces, own, others = [], [], []
    for optimizer, presets in deviations.items():
        for preset, pairs in presets.items():
            for pair, value in pairs.items():
                if (optimizer, preset) == apart:
                    continue
                (own if pair.startswith("own") else faces).append(value)
                if not pair.startswith("own") and optimizer != "ScheduleFreeAdamW":
                    others.append(value)
    cells = sum(len(p) for p in deviations.values())
    text = " ".join(README.split())
    assert f"{len(deviations)} optimizers (" in text
    assert f"({cells} cells, {saved['comparisons']} comparisons with" in text
    assert f"agree within {short(max(faces))} relative" in text
    assert f"{short(max(others))} but for Schedule-Free AdamW in Keras" in text
    assert f"equal their preset's run within {short(max(own))}." in text
    assert f"{short(max(deviations[apart[0]][apart[1]].values()))} from Keras's own" in text
    assert max(faces) < 1e-9 and max(deviations[apart[0]][apart[1]].values()) < 2e-7
