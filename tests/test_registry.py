"""One rule, one preset entry, one registry line: an optimizer added to
``optimlab.optimizers.OPTIMIZERS`` (here a toy, :mod:`tests.toy_rule`, registered in-process with
monkeypatch) appears in every table derived from the registry: ``optimlab.get``, the lab's
contenders (a race runs it), the figures' colours, the page's sliders and anatomy, the hostile
tests' cases, and the configuration and state round trips. Nothing stays behind afterwards."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import optimlab as ol
from optimlab import naming, optimizers, presets, rules
from optimlab._validation import Constraint, check_bool, check_float, check_int, constraint_of
from optimlab.lab import contenders, surfaces
from optimlab.lab.race import Runner, race
from optimlab.optimizer import (
    choice,
    non_negative,
    optional_positive,
    unit_interval_open,
)
from optimlab.optimizer import preset_default as D
from optimlab.play import api, catalog
from optimlab.play.jsonable import jsonable
from optimlab.rule_optimizer import RuleOptimizer
from optimlab.viz import style

from . import toy_rule
from .hostile import registry as hostile

NAME = "SoftSign"


def _positive(name, value):
    return check_float(name, value, 0.0, low_open=True)


def _toy_class():
    """A new class each time (so that the fixture can drop it again): the toy rule plus its
    hyperparameters, as every class of optimlab.optimizers is written."""

    class SoftSign(RuleOptimizer):
        """Momentum with a soft sign, p = p - lr * c / (|c| + gain) (:mod:`tests.toy_rule`)."""

        rule = toy_rule
        hyperparameters = {
            "beta": unit_interval_open,
            "gain": _positive,
            "form": choice("abs", "root"),
            "lookahead": check_bool,
        }

        def __init__(
            self,
            learning_rate=D(0.01),
            beta=D(0.9),
            gain=D(1e-3),
            *,
            form=D("abs"),
            lookahead=D(False),
            name=None,
            preset="keras",
            **kwargs,
        ):
            super().__init__(
                learning_rate=learning_rate,
                beta=beta,
                gain=gain,
                form=form,
                lookahead=lookahead,
                name=name,
                preset=preset,
                **kwargs,
            )

    return SoftSign


#: the toy's one preset entry: each peer's conventions (it has no peer: no PEERS entry)
TOY_DEFAULTS = {
    "keras": dict(
        learning_rate=0.01,
        beta=0.9,
        gain=1e-3,
        form="abs",
        lookahead=False,
        weight_decay_mode="decoupled",
    ),
    "torch": dict(
        learning_rate=0.001,
        beta=0.9,
        gain=1e-3,
        form="root",
        lookahead=False,
        weight_decay_mode="l2",
    ),
    "optax": dict(
        learning_rate=presets.REQUIRED,
        beta=0.8,
        gain=1e-3,
        form="abs",
        lookahead=True,
        weight_decay_mode="l2",
    ),
}


@pytest.fixture
def toy(monkeypatch):
    """The toy registered by its registry line and its preset entry, and nothing else."""
    cls = _toy_class()
    monkeypatch.setitem(optimizers.OPTIMIZERS, NAME, cls)
    monkeypatch.setitem(presets.DEFAULTS, NAME, TOY_DEFAULTS)
    monkeypatch.setattr(naming, "_COUNTS", naming._COUNTS.copy())  # its default names
    yield cls
    monkeypatch.undo()
    assert NAME not in contenders.CONTENDERS and NAME not in style.OPTIMIZER_COLORS
    assert NAME not in catalog.SLIDERS and NAME not in catalog.lab_names()


def _steps(opt, p, grads):
    for g in grads:
        opt.apply_gradients([(g.copy(), p)])
    return p


GRADS = [np.array([0.5, -2.0, 0.0]), np.array([0.25, 1.0, -3.0]), np.array([-1.0, 0.1, 0.2])]


def test_get_and_the_registry_line(toy):
    opt = ol.get("softsign", learning_rate=0.1, engine="reference")
    assert type(opt) is toy and opt.name == "soft_sign"
    assert opt.beta == 0.9 and opt.form == "abs" and opt.gain == 1e-3
    torch_like = ol.get(NAME, preset="torch", engine="reference")
    assert torch_like.form == "root" and torch_like.weight_decay_mode == "l2"
    with pytest.raises(TypeError, match="learning_rate is required with preset='optax'"):
        ol.get(NAME, preset="optax")  # optax's convention, from the preset entry
    with pytest.raises(ValueError, match=r"beta must be a float in \[0, 1\), got 1.5"):
        toy(beta=1.5)
    # the step is the rule's: m = 0.1 g, p - lr * m / (|m| + gain)
    p = _steps(opt, np.ones(3), GRADS[:1])
    m = 0.1 * GRADS[0]
    np.testing.assert_allclose(p, 1.0 - 0.1 * m / (np.abs(m) + 1e-3), rtol=1e-15)


def test_config_and_state_round_trips(toy):
    opt = toy(learning_rate=0.05, beta=0.7, form="root", lookahead=True, engine="reference")
    config = opt.get_config()
    again = toy.from_config(config)
    assert again.get_config() == config
    rebuilt = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(rebuilt) is toy and rebuilt.get_config() == config
    p = _steps(opt, np.ones(3), GRADS[:2])
    state = opt.state_dict()
    q = p.copy()
    twin = toy.from_config(config)
    twin.build([q])
    twin.load_state_dict(state)
    assert twin.iterations == opt.iterations == 2
    _steps(opt, p, GRADS[2:])
    _steps(twin, q, GRADS[2:])
    assert p.tobytes() == q.tobytes()  # the same numbers through the same operations


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_engine_runs_it_with_no_engine_code(toy, dtype):
    """engines/fused.py generates the toy's loop from its SLOTS: engine="fused" (and "auto")
    give the reference engine's numbers bit for bit, parameters and state."""
    runs = {}
    for engine in ("reference", "fused", "auto"):
        opt = toy(learning_rate=0.05, beta=0.7, form="root", lookahead=True, engine=engine)
        p = np.linspace(-1.0, 1.0, 3).astype(dtype)
        _steps(opt, p, [g.astype(dtype) for g in GRADS])
        runs[engine] = (p.tobytes(), opt.state_dict())
    ref_p, ref_state = runs["reference"]
    for engine in ("fused", "auto"):
        p, state = runs[engine]
        assert p == ref_p, engine
        assert set(state["slots"]) == set(ref_state["slots"]) == {"m/0"}
        assert state["slots"]["m/0"].tobytes() == ref_state["slots"]["m/0"].tobytes(), engine


def test_contender_of_the_lab_and_its_race(toy):
    assert contenders.CONTENDERS[NAME] == (NAME, {})
    assert list(contenders.CONTENDERS)[: len(contenders.ORDER)] == list(contenders.ORDER)
    assert contenders.resolve("softsign:beta=0.5") == ("SoftSign (beta=0.5)", NAME, {"beta": 0.5})
    surface = surfaces.get("rosenbrock")
    start = surface.default_start
    runners = [Runner(NAME, learning_rate=0.01), Runner(NAME, "torch", 0.01, {"beta": 0.5})]
    result = race(surface, runners, start=start, steps=20)
    for i, r in enumerate(runners):  # each row is the optimizer stepped by apply_gradients
        # the race steps rows with the reference engine (the fused one: test below)
        opt = ol.get(
            NAME, learning_rate=0.01, preset=r.preset, engine="reference", **r.hyperparameters
        )
        p = np.array(start, dtype=np.float64)
        for t in range(20):
            opt.apply_gradients([(surface.gradient(p), p)])
            assert result.paths[t + 1, i].tobytes() == p.tobytes(), (i, t)


def test_a_distinct_colour_and_the_others_unchanged(toy):
    colors = style.OPTIMIZER_COLORS
    assert colors[NAME] == style.FALLBACK_COLORS[0]  # the first free one
    others = [colors[n] for n in contenders.CONTENDERS if n != NAME]
    assert colors[NAME] not in others and len(set(others)) == len(others)
    assert all(colors[n] == c for n, c in style.CHOSEN_COLORS.items())
    assert style.base_name("softsign lr=0.1") == NAME
    labelled = style.colors_for(["SoftSign lr=0.1", "mystery", "SoftSign lr=1"])
    assert labelled["SoftSign lr=0.1"] == labelled["SoftSign lr=1"] == colors[NAME]
    assert labelled["mystery"] not in set(colors.values())
    assert style.color_for("mystery") not in set(colors.values())


def test_more_optimizers_than_fallback_colours_stay_distinct(monkeypatch):
    for i in range(len(style.FALLBACK_COLORS) + 3):  # past the fallbacks: generated hues
        monkeypatch.setitem(optimizers.OPTIMIZERS, f"Extra{i}", ol.Adam)
    colors = [style.OPTIMIZER_COLORS[n] for n in contenders.CONTENDERS]
    assert len({c.upper() for c in colors}) == len(colors)


def test_sliders_of_the_page(toy):
    assert NAME in catalog.LAB_NAMES and NAME in catalog.lab_names()
    entry = next(o for o in catalog.optimizers_json()["optimizers"] if o["name"] == NAME)
    assert entry["optimizer"] == NAME and entry["fixed"] == {}
    assert entry["color"] == style.OPTIMIZER_COLORS[NAME]
    assert entry["accepted"] == ["learning_rate", "weight_decay", *toy.hyperparameters]
    sliders = {s["name"]: s for s in entry["hyperparameters"]}
    assert list(sliders) == ["learning_rate", "beta", "gain", "form", "lookahead"]
    beta, gain = sliders["beta"], sliders["gain"]
    assert (beta["kind"], beta["low"], beta["high"], beta["log"]) == ("float", 0.0, 0.999, False)
    assert beta["default"] == {"keras": 0.9, "torch": 0.9, "optax": 0.8}
    assert gain["kind"] == "float" and gain["log"] and gain["low"] == pytest.approx(1e-8)
    assert gain["high"] == 1.0
    assert sliders["form"]["choices"] == ["abs", "root"]
    assert sliders["form"]["default"] == {"keras": "abs", "torch": "root", "optax": "abs"}
    assert sliders["lookahead"]["kind"] == "bool"
    assert sliders["learning_rate"]["default"]["optax"] == 0.01  # optax's required: Keras's
    json.dumps(catalog.optimizers_json(), allow_nan=False)


def test_anatomy_of_the_page(toy):
    common = {"surface": "rosenbrock", "steps": 12, "gradient_noise": 0.1, "seed": 1}
    for preset in ("keras", "optax"):
        spec = {"name": NAME, "preset": preset, "hyperparameters": {"learning_rate": 0.01}}
        out = json.loads(
            json.dumps(jsonable(api.anatomy({**common, "optimizer": spec} | {"step": 7})))
        )
        p, nxt = np.array(out["point"]), np.array(out["next_point"])
        eff, pre = np.array(out["effective_lr"]), np.array(out["preconditioned"])
        assert (eff == 0.01).all() and out["velocity"] is None
        np.testing.assert_allclose(nxt, p - eff * pre, rtol=1e-12)
        assert set(out["state"]) == {"m"} and len(out["next_state"]["m"]) == 2


def test_hostile_cases_pick_it_up(toy):
    cases = {(name, kind) for cls, name, kind in hostile.cases() if cls is toy}
    assert ("beta", hostile.Real(0.0, 1.0, high_open=True)) in cases
    assert ("lookahead", hostile.Bool()) in cases
    assert {name for name, _ in cases} == {
        "learning_rate",
        *toy.hyperparameters,
        *ol.optimizer.COMMON_HYPERPARAMETERS,
    } - {"learning_rate"}
    for value in (-0.5, 0.0, 0.5, 1.0, math.nan, True, "0.5", None):  # the oracle's verdicts
        verdict, _ = hostile.Real(0.0, 1.0, high_open=True).verdict(value)
        try:
            toy(beta=value)
        except (TypeError, ValueError) as error:
            assert verdict == "refuse" and "beta" in str(error)
        else:
            assert verdict == "accept"


def test_every_registered_optimizer_has_its_tables():
    """What a registry line needs next to it: a rule of optimlab.rules (found by discovery),
    one preset entry with every hyperparameter, and its name in optimlab's namespace."""
    for name, cls in optimizers.OPTIMIZERS.items():
        assert cls.rule in rules.RULES.values(), name
        assert getattr(ol, name) is cls and name in ol.__all__
        allowed = {"learning_rate", *cls.hyperparameters, "weight_decay_mode"}
        for preset in presets.PRESETS:
            assert allowed <= set(presets.defaults(name, preset)), (name, preset)
    from optimlab.rules import adam

    assert rules.RULES["adam"] is adam and "newton_schulz" not in rules.RULES


@pytest.mark.parametrize(
    "validator, expected",
    [
        (unit_interval_open, Constraint("float", 0.0, 1.0, high_open=True)),
        (non_negative, Constraint("float", 0.0)),
        (optional_positive, Constraint("float", 0.0, low_open=True, optional=True)),
        (lambda n, v: check_float(n, v, None, 0.0), Constraint("float", high=0.0)),
        (lambda n, v: check_float(n, v), Constraint("float")),
        (lambda n, v: check_int(n, v, 1, 99), Constraint("int", 1.0, 99.0)),
        (check_bool, Constraint("bool")),
        (choice("hat", "paper"), Constraint("choice", choices=("hat", "paper"))),
        (choice(None, "float32"), Constraint("choice", choices=(None, "float32"), optional=True)),
        (lambda n, v: v, Constraint("unknown", optional=True)),
    ],
)
def test_constraint_read_from_the_refusal(validator, expected):
    assert constraint_of(validator) == expected
