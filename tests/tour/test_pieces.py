"""The pieces the tour is built from: the formatter and its marks, steps-to-target that
holds to the horizon, the tuning grid that widens at its edge, shared ranks, the report's
rendering of cells and MathML."""

from __future__ import annotations

import numpy as np
import pytest

from optimlab.lab.experiments import _text, claims
from optimlab.lab.experiments._tuning import pick, tune
from optimlab.lab.experiments.verdict import competition_ranks
from optimlab.report import render


def test_steps_to_target_counts_only_a_target_held_to_the_horizon():
    losses = np.array([1.0, 1e-7, 0.5, 1e-7, 1e-8, 1e-9])
    assert _text.settled_step(losses, 1e-6) == 3  # not 1: f rose again at step 2
    assert _text.settled_step(np.array([1.0, 1e-7, 0.5]), 1e-6) == -1
    assert _text.settled_step(np.array([1e-9, 1e-9]), 1e-6) == 0
    assert _text.settled_step(np.array([1.0, 1e-9, np.nan]), 1e-6) == -1
    both = np.array([[1.0, 1.0], [1e-9, 1.0], [1e-9, 1e-9]])
    assert _text.settled_step(both, 1e-6).tolist() == [1, 2]


def test_sweep_and_trajectory_use_the_same_definition():
    from optimlab.lab import surfaces
    from optimlab.lab.experiments._common import swept, trajectory
    from optimlab.lab.sweep import sweep

    ravine = surfaces.get("ravine")
    result = sweep(ravine, "SGD", steps=300, learning_rate=0.01, momentum=0.95)
    t = trajectory(ravine, "SGD:momentum=0.95", 0.01, 300)
    first = int(result.steps_to(1e-2, stay=False).ravel()[0])
    held = int(result.steps_to(1e-2).ravel()[0])
    assert 0 <= first < held  # the momentary dip is not counted
    assert held == t.steps_to(1e-2)
    assert np.array_equal(swept(ravine, "SGD:momentum=0.95", 0.01, 300).path, t.path)


def test_numbers_read_the_same_everywhere():
    assert _text.fmt(5000) == "5,000" and _text.fmt(2.0) == "2" and _text.fmt(0.0199526) == "0.02"
    assert _text.fmt(-1.693e-15) == "-1.69e-15" and _text.fmt(2508.3) == "2,508"
    assert _text.fmt(_text.NOT_REACHED) == "not reached"
    assert _text.plural(1, "step") == "1 step" and _text.plural(2, "step") == "2 steps"
    assert _text.plural(1, "minimum", "minima") == "1 minimum"
    assert _text.pct(4.1e-10) == "4.1e-8%" and _text.pct(0.374) == "37%" and _text.pct(0) == "0%"
    assert _text.gap(-1.7e-15) == 0.0
    assert _text.steps_cell(-1) is _text.NOT_REACHED and _text.steps_cell(12) == 12
    assert _text.steps_phrase(-1, 400) == "not within 400 steps"
    assert _text.steps_phrase(1, 400) == "in 1 step"


def test_a_tuned_rate_on_the_edge_widens_the_grid():
    calls = []

    def score(lrs):  # best at lr = 1e-6, below the first grid
        calls.append(len(lrs))
        return (np.log10(lrs) + 6.0) ** 2

    tuned = tune(score, np.logspace(-4, 0, 9))
    assert tuned.widened >= 1 and not tuned.on_edge
    assert tuned.learning_rate == pytest.approx(1e-6)
    flat = tune(lambda lrs: np.zeros(len(lrs)), np.logspace(-3, 0, 4))
    assert flat.widened == 0 and flat.index == 3  # ties go to the largest rate, no widening
    stuck = tune(lambda lrs: -np.log10(lrs), np.logspace(-3, 0, 4), widen=1)
    assert stuck.on_edge and stuck.widened == 1


def test_ties_share_a_rank_and_the_rule_is_lexicographic():
    assert competition_ranks([(0,), (0,), (1,)]) == [1, 1, 3]
    # more runs reaching the target beats a lower median loss
    keys = [(-4, 10.0, 0.0), (-5, 200.0, 1e-5), (-5, 11.0, 0.0)]
    assert competition_ranks(keys) == [3, 2, 1]
    assert pick(np.array([[0.0, 2.0], [0.0, 1.0], [1.0, 0.0]])) == 1


def test_claims_check_what_they_say():
    assert claims.close("x", 1.0, 1.0 + 1e-10, rel=1e-9).holds
    assert not claims.close("x", 1.0, 1.1, rel=1e-3).holds
    assert not claims.close("x", float("nan"), 1.0, rel=1.0).holds
    assert claims.at_least("x", 3, 2).holds and not claims.at_most("x", 3, 2).holds
    q = claims.quoted("same", "0.02", figure="title 0.02", text="it is 0.03")
    assert not q.holds and "missing from text" in q.detail


def test_cells_and_equations_render_without_computing():
    assert render.cell(_text.NOT_REACHED) == '<em class="mark">not reached</em>'
    assert render.cell(0.00272465) == "0.00272"
    assert render.cell("a<b") == "a&lt;b"
    m = render.math_ml(r"\frac{\eta}{\sqrt{v_t}} \lambda_{max}")
    assert m.startswith("<math") and "<mfrac>" in m and "<msqrt>" in m
    assert "<mtext>max</mtext>" in m  # word subscripts upright
    p = render.prose("a $\\beta$ and **b** `c`\n\nnext")
    assert p.count("<p>") == 2 and "<math" in p and "<strong>b</strong>" in p
    assert "<code>c</code>" in p
    with pytest.raises(ValueError, match="is not valid LaTeX"):
        render.math_ml(r"\frac{")
    with pytest.raises(ValueError, match=r"uses \\arg, which MathML cannot show"):
        render.math_ml(r"\arg\min_x f")
    assert "<mo>argmin</mo>" in render.math_ml(r"\operatorname{argmin}_x f")
    with pytest.raises(ValueError, match=r"operatorname takes letters only"):
        render.math_ml(r"\operatorname{arg\,min}_x f")  # spelled out as italic a r g m i n


def test_the_tour_refuses_a_bad_folder_or_setting_before_any_work(tmp_path):
    from optimlab.report import write_tour

    a_file = tmp_path / "report"
    a_file.write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir .* is a file"):
        write_tour(a_file, ["ewma"], progress=False)
    with pytest.raises(ValueError, match="cannot be created"):
        write_tour(a_file / "sub", ["ewma"], progress=False)
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        write_tour(tmp_path / "x", ["nope"], progress=False)
    with pytest.raises(ValueError, match=r"dpi must be an integer in \[10, 600\], got 0"):
        write_tour(tmp_path / "x", ["ewma"], dpi=0, progress=False)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        write_tour(tmp_path / "x", ["ewma"], workers=0, progress=False)
    assert a_file.read_text() == "not a folder" and not (tmp_path / "x").exists()
