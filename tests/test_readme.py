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
        "python benchmarks/torch_bf16.py --table-from docs/torch_bf16.json",
        "python benchmarks/quant_speed.py --table-from docs/quant_speed.json",
        "python benchmarks/quant_speed.py --table-from docs/quant_speed_epyc.json",
        "python benchmarks/narrow_roofline.py --table-from docs/narrow_roofline.json",
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


def test_quantized_state_quality_words_are_the_saved_run():
    """The words under the quality table are docs/quantized_state.json's: no test accuracy
    lost with bfloat16 or int8 state, int4's CNN run the points and gap quoted."""
    saved = json.loads((ROOT / "docs" / "quantized_state.json").read_text())
    rows = {(row[0].split()[0], row[1]): row for row in saved["rows"]}
    text = " ".join(README.split())
    for model in ("MLP", "CNN"):
        base = rows[model, "float32"][3]
        assert all(rows[model, d][3] >= base for d in ("bfloat16", "int8"))
    cnn, base = rows["CNN", "int4"], rows["CNN", "float32"]
    points = 100 * (base[3] - cnn[3])
    assert (
        f"int4 state costs the CNN {points:.1f} points ({100 * cnn[3]:.2f}% against "
        f"{100 * base[3]:.2f}%), its loss curve up to {100 * cnn[5]:.0f}% above float32's" in text
    )
    assert "bfloat16 and int8 state cost these models no test accuracy" in text


def test_quantized_state_speed_claims_are_the_saved_run():
    """The words under the 8-bit speed table are docs/quant_speed.json's ratios: bfloat16
    about 1.3x of torch fused fp32, int8 about 0.7x (the 1.6x target missed, as stated),
    state 4x and 2x smaller, int8 over 14x bitsandbytes' CPU Adam8bit and over 25x
    torchao's AdamW8bit; the 1.6x would need int8 faster than bfloat16 is."""
    saved = json.loads((ROOT / "docs" / "quant_speed.json").read_text())
    text = " ".join(README.split())
    for rows in saved["sizes"].values():
        int8, bf16 = rows["optimlab fused int8"], rows["optimlab fused bf16"]
        assert round(bf16["speed_vs_torch_fused"], 1) == 1.3
        assert round(int8["speed_vs_torch_fused"], 1) == 0.7
        assert rows["torch fused fp32"]["median_ms"] / 1.6 < bf16["median_ms"]  # (the 1.6x)
        assert round(bf16["state_vs_torch"]) == 2 and round(int8["state_vs_torch"]) == 4
        bnb, ao = rows["bitsandbytes Adam8bit"], rows["torchao AdamW8bit"]
        assert bnb["median_ms"] / int8["median_ms"] > 14
        assert ao["median_ms"] / int8["median_ms"] > 25
    assert "bfloat16 state is about 1.3x faster than torch's fused float32 Adam" in text
    assert "int8 state is 4x smaller but about 0.7x of torch fused's speed" in text
    assert "over 14x faster than bitsandbytes' CPU 8-bit Adam" in text
    assert "over 25x faster than torchao's AdamW8bit on the CPU" in text


def test_narrow_state_bounds_are_the_saved_runs():
    """The words under the EPYC tables are docs/quant_speed_epyc.json's and
    docs/narrow_roofline.json's: neither target holds there, and each narrow step's arithmetic
    alone is over the time its target allows (so no pass of that arithmetic meets it); float32
    is bound by its bytes, the narrow steps by their arithmetic; int8 over 7x bitsandbytes and
    10x torchao; int4 faster than int8 with 7.5x less state, over 13x torchao's AdamW4bit."""
    runs = json.loads((ROOT / "docs" / "quant_speed_epyc.json").read_text())
    roof = json.loads((ROOT / "docs" / "narrow_roofline.json").read_text())["run"]["kinds"]
    text = " ".join(README.split())
    for rows in runs["sizes"].values():
        assert rows["optimlab fused bf16"]["speed_vs_torch_fused"] < 1.3
        assert rows["optimlab fused int8"]["speed_vs_torch_fused"] < 1.6
        int8 = rows["optimlab fused int8"]["median_ms"]
        assert rows["bitsandbytes Adam8bit"]["median_ms"] / int8 > 7
        assert rows["torchao AdamW8bit"]["median_ms"] / int8 > 10
        int4 = rows["optimlab fused int4"]
        assert int4["median_ms"] < int8 and round(int4["state_vs_torch"], 1) == 7.5
        assert rows["torchao AdamW4bit"]["median_ms"] / int4["median_ms"] > 13
    assert roof["float32"]["bound"] == "bytes"
    for kind in ("bfloat16", "int8"):
        row = roof[kind]
        assert row["bound"] == "arithmetic" and row["arithmetic_ms"] > row["target_ms"]
    bf16, int8 = roof["bfloat16"], roof["int8"]
    assert bf16["arithmetic_ms"] > 1.5 * roof["float32"]["arithmetic_ms"]  # "as much again"
    assert (
        f"bfloat16's arithmetic alone takes {bf16['arithmetic_ms']:.1f} ms, over the "
        f"{bf16['target_ms']:.1f} ms the 1.3x allows" in text
    )
    assert (
        f"int8's takes {int8['arithmetic_ms']:.1f} ms, "
        f"{int8['arithmetic_ms'] / int8['target_ms']:.1f}x the {int8['target_ms']:.1f} ms the "
        "1.6x allows" in text
    )
    assert "float32's step is bound by its bytes; the narrow ones by their arithmetic" in text
    assert "7x faster than bitsandbytes' CPU 8-bit Adam and 10x faster than torchao's" in text
    assert roof["int4"]["bound"] == "arithmetic"
    assert (
        "int4 state, with 7.5x less state than float32, steps faster than int8 here (its "
        f"arithmetic alone {roof['int4']['arithmetic_ms']:.1f} ms)" in text
    )
    assert "13x faster than torchao's AdamW4bit" in text


def test_faces_speed_claims_are_the_saved_run():
    """The words under the step-time tables are docs/faces_speed.json's ratio ranges."""
    saved = json.loads((ROOT / "docs" / "faces_speed.json").read_text())
    fused, slow, whole = [], [], []
    for row in saved["torch"]:
        for name, value in row["ratios"]["optimizer.step"].items():
            (fused if name.startswith("torch fused") else slow).append(value)
        whole += [v for n, v in row["ratios"]["training step"].items() if "default" in n]
    update = {r["optimizer"]: r["ratios"]["update"]["optax / optimlab"] for r in saved["optax"]}
    rest = [v for name, v in update.items() if name not in ("lamb", "rprop")]
    text = " ".join(README.split())
    assert f"level with torch fused ({min(fused):.2f} to {max(fused):.2f})" in text
    assert f"{min(slow):.2f} to {max(slow):.1f} times faster than torch's default" in text
    assert f"training step {min(whole):.2f} to {max(whole):.2f} times faster" in text
    assert f"costs what optax's does ({min(rest):.2f} to {max(rest):.2f})" in text
    assert (
        f"Lamb's is faster ({update['lamb']:.2f}) and Rprop's slower ({update['rprop']:.2f})"
        in text
    )
    assert max(r["agreement"]["float64"][-1] for r in saved["optax"]) < 2e-14
    assert max(r["agreement"]["float32 ulps"][0] for r in saved["optax"]) <= 2
