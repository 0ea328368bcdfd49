"""The lecture's experiments outside the tour: the registry, the animation, and the lab's
command-line commands. The chapters' claims, the page and the report's determinism are tested
on one shared quick tour in tests/tour."""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.cli import main
from optimlab.lab import experiments


def test_unknown_experiment_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown experiment 'nope'; valid: network_speed"):
        experiments.run("nope")


def test_every_chapter_has_a_module_function_and_a_heading():
    for key, (_, heading) in experiments.CHAPTERS.items():
        assert callable(experiments.get(key)) and heading
    assert len(set(experiments.EXPERIMENTS)) == len(experiments.EXPERIMENTS)


def test_the_tour_writes_the_animation(tmp_path):
    from PIL import Image

    assert (
        main(["tour", "--quick", "--no-progress", "--out", str(tmp_path), "--only", "keras_code"])
        == 0
    )
    with Image.open(tmp_path / "figures" / "keras_code-race.gif") as image:
        assert image.n_frames == 30
    assert 'src="figures/keras_code-race.gif"' in (tmp_path / "index.html").read_text()


def test_cli_reports_unknown_names_clearly(capsys):
    cases = [
        (["tour", "--quick", "--only", "nope"], "argument --only: unknown experiment 'nope'"),
        (["compare", "--on", "moon"], "unknown surface or problem 'moon'; surfaces: bowl"),
        (["compare", "--on", "bowl", "--optimizers", "Adamm"], "unknown optimizer 'Adamm'"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2  # argparse's error: usage, the message, exit code 2
        assert message in capsys.readouterr().err


def test_cli_compare_fit_and_sweep(tmp_path, capsys):
    out = tmp_path / "c.png"
    argv = ["compare", "--on", "rosenbrock", "--optimizers", "SGD", "Adam", "--steps", "100"]
    assert main([*argv, "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "Adam" in text and "learning rate" in text
    argv = ["fit", "--problem", "linear", "--optimizer", "SGD", "--lr", "0.1"]
    assert main([*argv, "--batch-size", "100", "--epochs", "10"]) == 0
    assert "50 updates, 5000 gradient evaluations" in capsys.readouterr().out
    sweep_png = tmp_path / "s.png"
    argv = ["sweep", "--surface", "bowl", "--optimizers", "SGD", "Momentum", "--lrs", "1e-3:1:7"]
    assert main([*argv, "--steps", "50", "--out", str(sweep_png)]) == 0
    assert sweep_png.exists()
    assert np.isfinite(float(capsys.readouterr().out.split("\n")[1].split()[-1]))
