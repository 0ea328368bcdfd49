"""The lecture's experiments (quick versions): each returns the chapter's numbers and figures,
the numbers say what the lecture says, and the same call gives the same numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from optimlab.cli import main
from optimlab.lab import experiments

_CACHE: dict = {}


def quick(key):
    """Each quick experiment once per test process."""
    if key not in _CACHE:
        _CACHE[key] = experiments.run(key, quick=True)
    return _CACHE[key]


@pytest.mark.parametrize("key", experiments.EXPERIMENTS)
def test_every_chapter_runs_and_reports(key):
    result = quick(key)
    assert result.key == key and result.chapter == experiments.CHAPTERS[key][1]
    assert result.summary and result.numbers and result.figures
    assert all(isinstance(fig, Figure) for fig in result.figures.values())
    for fig in result.figures.values():
        assert fig.axes and all(ax.get_title() or ax.get_xlabel() for ax in fig.axes[:1])


def test_unknown_experiment_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown experiment 'nope'; valid: gd_variants"):
        experiments.run("nope")


def test_the_lectures_numbers():
    ewma = quick("ewma").numbers
    assert math.isclose(ewma["V_1 (beta=0.9, V_0=0, theta_1=13)"], 1.3)
    assert math.isclose(ewma["V_2 (beta=0.9, theta_2=17)"], 2.87)
    assert math.isclose(ewma["V_1 (beta=0.9, V_0=theta_0=25)"], 23.8)
    gd = quick("gd_variants").numbers
    assert gd["updates: batch GD"] == 10
    assert gd["updates: mini-batch (100)"] == 50
    assert gd["updates: stochastic GD (1)"] == 5000
    assert gd["gradient evaluations per variant (10 epochs x 500 rows)"] == 5000
    rms = quick("rmsprop").numbers
    assert math.isclose(rms["v_1 = 0.05 g_1^2"], 0.05 * 9.0)


def test_momentum_with_beta_zero_is_sgd_and_nag_forms_agree():
    assert quick("momentum").numbers["max |momentum(beta=0) - SGD|"] == 0.0
    nag = quick("nesterov").numbers
    assert nag["max |lecture NAG look-ahead - Keras SGD(nesterov=True)|"] < 1e-12
    assert nag["overshoot: NAG 0.9"] < nag["overshoot: momentum 0.9"]


def test_learning_rate_limit_and_bias_correction():
    lr = quick("learning_rate").numbers
    assert 0.015 < lr["largest lr that converges (theory: below 2/lambda_max = 0.02)"] < 0.02
    adam = quick("adam").numbers
    assert math.isclose(
        adam["first step without / with correction, beta_2=0.999"], 0.1 / 0.001**0.5, rel_tol=1e-3
    )


def test_sparse_column_learns_slowly_with_one_rate_and_fast_with_adagrad():
    numbers = quick("sparse_adagrad").numbers
    sgd = [v for k, v in numbers.items() if "sparse weight" in k and "SGD" in k][0]
    ada = [v for k, v in numbers.items() if "sparse weight" in k and "Adagrad" in k][0]
    assert ada < 0.05 < sgd


def test_convexity_one_basin_versus_several():
    numbers = quick("convexity").numbers
    booth = [v for k, v in numbers.items() if "Booth" in k][0]
    himmelblau = [v for k, v in numbers.items() if "Himmelblau" in k][0]
    assert booth == 1 and himmelblau >= 3


def test_the_same_call_gives_the_same_numbers():
    again = experiments.run("momentum", quick=True).numbers
    first = quick("momentum").numbers
    assert json.dumps(again, sort_keys=True, default=str) == json.dumps(
        first, sort_keys=True, default=str
    )


def test_tour_writes_a_self_contained_deterministic_report(tmp_path):
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert (
            main(
                [
                    "tour",
                    "--quick",
                    "--no-progress",
                    "--out",
                    str(out),
                    "--only",
                    "ewma",
                    "nesterov",
                    "gd_variants",  # a table of fit() results: no wall times on the page
                ]
            )
            == 0
        )
        html = (out / "index.html").read_text()
        assert "EWMA and the effect of beta" in html and "Nesterov" in html
        images = sorted(p.name for p in (out / "figures").iterdir())
        assert images and all(f'src="figures/{name}"' in html for name in images)
        assert "http://" not in html and "https://" not in html  # opens offline
        outputs.append(
            (
                (out / "numbers.json").read_bytes(),
                html,
                [(out / "figures" / n).read_bytes() for n in images],
            )
        )
    assert outputs[0] == outputs[1]


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
    assert (
        main(
            [
                "compare",
                "--on",
                "rosenbrock",
                "--optimizers",
                "SGD",
                "Adam",
                "--steps",
                "100",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "Adam" in text and "learning rate" in text
    assert (
        main(
            [
                "fit",
                "--problem",
                "linear",
                "--optimizer",
                "SGD",
                "--lr",
                "0.1",
                "--batch-size",
                "100",
                "--epochs",
                "10",
            ]
        )
        == 0
    )
    assert "50 updates, 5000 gradient evaluations" in capsys.readouterr().out
    sweep_png = tmp_path / "s.png"
    assert (
        main(
            [
                "sweep",
                "--surface",
                "bowl",
                "--optimizers",
                "SGD",
                "Momentum",
                "--lrs",
                "1e-3:1:7",
                "--steps",
                "50",
                "--out",
                str(sweep_png),
            ]
        )
        == 0
    )
    assert sweep_png.exists()
    assert np.isfinite(float(capsys.readouterr().out.split("\n")[1].split()[-1]))


def test_tour_draws_the_animation_and_the_3d_figure(tmp_path):
    from PIL import Image

    assert (
        main(
            [
                "tour",
                "--quick",
                "--no-progress",
                "--out",
                str(tmp_path),
                "--only",
                "keras_code",
                "saddle_points",
            ]
        )
        == 0
    )
    gif = tmp_path / "figures" / "keras_code-race.gif"
    with Image.open(gif) as image:
        assert image.n_frames == 30
    assert (tmp_path / "figures" / "saddle_points-saddle_in_3d.png").exists()
    assert 'src="figures/keras_code-race.gif"' in (tmp_path / "index.html").read_text()
