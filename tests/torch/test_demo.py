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


def test_demo_plot_is_written(tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert (
        demo.main(["--models", "MLP", "--optimizers", "Adam", "--epochs", "1", "--plot", str(out)])
        == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_figure_has_the_curves_and_the_gaps():
    run = {"losses": [2.0, 1.0, 0.5], "accuracy": 0.5, "ms_per_step": 1.0}
    other = dict(run, losses=[2.0, 1.0 + 1e-7, 0.5])
    rows = [("MLP", "SGD", {"torch": run, "optimlab": other, "max_loss_gap": 1e-7})]
    fig = demo.figure(rows, "title")
    top, bottom = fig.axes
    assert len(top.lines) == 2 and len(bottom.lines) == 1
    gap = bottom.lines[0].get_ydata()
    assert gap[0] == 1e-17 and abs(gap[-1] - 1e-7) < 1e-12  # the running maximum
