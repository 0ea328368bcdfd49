"""``python -m optimlab.torch.demo``: both libraries side by side, as its table says."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from optimlab.torch import demo  # noqa: E402


def _rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


def test_demo_shows_the_same_training_in_float64(capsys):
    assert (
        demo.main(
            [
                "--models",
                "MLP",
                "--optimizers",
                "SGD",
                "Adam",
                "--dtype",
                "float64",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("digits (1348 training, 449 test images), float64, 1 epochs")
    rows = _rows(out)
    assert [r[:2] for r in rows] == [["MLP", "SGD"], ["MLP", "Adam"]]
    for _, _, loss_t, loss_o, gap, acc_t, acc_o, ms_t, ms_o in rows:
        assert loss_t == loss_o and acc_t == acc_o
        assert float(gap) <= 1e-12  # measured 4.4e-16
        assert float(ms_t) > 0 and float(ms_o) > 0


def test_demo_refuses_zero_epochs(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--epochs", "0"])
    assert "--epochs must be >= 1, got 0" in capsys.readouterr().err
