"""The ``optimlab`` command line."""

from __future__ import annotations

import pytest

from optimlab import OPTIMIZERS, differences
from optimlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_presets_lists_every_optimizer_with_its_three_peers(capsys):
    code, out = run(capsys, "presets")
    assert code == 0
    for name in OPTIMIZERS:
        assert f"== {name}" in out
    assert "torch.optim.Adam " in out and "keras.optimizers.Adam " in out
    # columns are aligned: the three preset names start at the same offsets in every header
    headers = [line for line in out.splitlines() if line.strip().startswith("keras")]
    assert headers and all("torch" in h and "optax" in h for h in headers)


def test_presets_markdown_lists_only_differing_defaults(capsys):
    code, out = run(capsys, "presets", "--markdown")
    assert code == 0
    adam = next(line for line in out.splitlines() if line.startswith("| Adam |"))
    assert "epsilon=1e-07" in adam and "epsilon=1e-08" in adam
    assert "beta_1" not in adam  # 0.9 in every preset


def test_differences_prints_every_difference(capsys):
    code, out = run(capsys, "differences")
    assert code == 0
    for d in differences.DIFFERENCES:
        assert d.title in out
    code, md = run(capsys, "differences", "--markdown")
    assert md.count("\n### ") + md.startswith("### ") == len(differences.DIFFERENCES)


def test_no_command_prints_help_and_fails(capsys):
    code, out = run(capsys)
    assert code == 2 and "differences" in out


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tour-de-france"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
