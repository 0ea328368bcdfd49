"""Every claim the tour makes is a check, and every check holds: the quick tour's claims.json
per chapter, the lecture's own numbers read from numbers.json, and the Keras code the page
shows, executed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimlab.lab import experiments
from optimlab.lab.experiments import momentum


@pytest.mark.parametrize("key", experiments.EXPERIMENTS)
def test_every_claim_of_the_chapter_holds(tour_claims, key):
    claims = tour_claims[key]
    assert len(claims) >= 2, f"{key} states fewer than two claims"
    failed = [f"{c['text']} ({c['detail']})" for c in claims if not c["holds"]]
    assert not failed, f"{key}: claims that do not hold: {failed}"
    assert all(c["text"] for c in claims)


def test_the_lectures_numbers(tour_numbers):
    ewma = tour_numbers["ewma"]
    assert math.isclose(ewma["V_1 (beta=0.9, V_0=0, theta_1=13)"], 1.3)
    assert math.isclose(ewma["V_2 (beta=0.9, theta_2=17)"], 2.87)
    assert math.isclose(ewma["V_1 (beta=0.9, V_0=theta_0=25)"], 23.8)
    assert all(ewma[f"lag behind the data (days), beta={b}"] >= 0 for b in (0.5, 0.9, 0.98))
    gd = tour_numbers["gd_variants"]
    assert [gd["updates: batch GD"], gd["updates: mini-batch (100)"]] == [10, 50]
    assert gd["updates: stochastic GD (1)"] == 5000
    rms = tour_numbers["rmsprop"]
    assert math.isclose(rms["v_1 = 0.05 g_1^2"], 0.05 * 9.0)
    assert tour_numbers["momentum"]["max |momentum(beta=0) - SGD|"] == 0.0
    adam = tour_numbers["adam"]
    assert math.isclose(
        adam["first step without / with correction, beta_2=0.999"], 0.1 / 0.001**0.5, rel_tol=1e-9
    )


def test_not_reached_is_written_as_such(tour_numbers):
    values = [v for chapter in tour_numbers.values() for v in chapter.values()]
    assert "not reached" in values
    steps = [v for chapter in tour_numbers.values() for k, v in chapter.items() if "steps" in k]
    assert not any(isinstance(v, int | float) and v < 0 for v in steps), "a -1 step count"


def test_the_keras_code_on_the_page_is_the_code_that_ran(capsys):
    result = experiments.run("keras_code", quick=True)
    scope: dict = {}
    exec(compile(result.code, "<keras_code>", "exec"), scope)  # the text the page shows
    capsys.readouterr()
    ran = {row[0].split(":")[0]: row[2] for row in result.tables[0].rows}
    for name, final in scope["final"].items():
        assert final == pytest.approx(ran[name], rel=1e-9, abs=1e-15), name
    assert "learning_rate=0.001" in result.code and "opt.apply_gradients" in result.code


def test_crossings_and_overshoot_count_what_they_say():
    minimum = (0.0, 0.0)
    d = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
    path = np.array([-3.0, 1.0, -0.5, 0.25, 0.1])[:, None] * d  # along the floor
    assert momentum.crossings(path, minimum) == 3
    assert momentum.overshoot(path, minimum) == pytest.approx(1.0 / 3.0)
    assert momentum.overshoot(np.array([-3.0, -1.0, -0.1])[:, None] * d, minimum) == 0.0


def test_the_readme_states_the_claim_count(tour_claims):
    """The quick tour declares the same claims as the full one; the README quotes their
    number."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    total = sum(len(claims) for claims in tour_claims.values())
    assert f"The full tour states {total} claims and all {total} hold." in readme


def test_the_quantized_state_numbers(tour_numbers):
    """What 8 bits do to Adam's state: the page's numbers are the runs' own (the float32 run
    has no gap to itself; the narrow share is W1's 8192 of the MLP's 9610, the CNN's W's 4320
    of 4810; v's flushed entries are the ones below the line)."""
    q = tour_numbers["quantized_state"]
    assert q["mlp: share of parameters with narrow state"] == 8192 / 9610
    assert q["cnn: share of parameters with narrow state"] == 4320 / 4810
    for name in ("mlp", "cnn"):
        assert q[f"{name} float32: max loss gap"] == 0.0
        assert q[f"{name} int8: max loss gap"] > q[f"{name} bfloat16: max loss gap"] > 0
    assert (
        q["v int8: nonzero entries flushed to 0"]
        == q["v int8: entries below half the least code times the scale"]
    )
    assert q["m bfloat16: nonzero entries flushed to 0"] == 0
