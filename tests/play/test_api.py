"""The play API as pure functions: exactness against optimlab's optimizers stepped with
apply_gradients, the code snippets, the anatomy's identities, the maps, the lecture's
scenes and every refusal (status 400, the field and the valid range)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab.lab import contenders, surfaces
from optimlab.lab.experiments.quadratic import spectral_radius
from optimlab.play import api, catalog
from optimlab.play.errors import RequestError
from optimlab.play.jsonable import jsonable

SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = 25


def call(endpoint: str, body: dict):
    """The endpoint's answer as the client reads it (strict JSON, parsed back)."""
    out = getattr(api, endpoint)(body)
    return json.loads(json.dumps(jsonable(out), allow_nan=False))


def reference_path(surface, name, preset, hyper, schedule, start, steps, noise=0.0, seed=0):
    """optimlab's own optimizer fed surface.gradient(p) (+ noise) by apply_gradients."""
    base, fixed = contenders.CONTENDERS[name]
    kwargs = {**fixed, **hyper}
    lr = kwargs.pop("learning_rate", catalog.default_value(name, "learning_rate", preset))
    if schedule is not None:
        info = catalog.SCHEDULES[schedule["name"]]
        args = {s.name: d for s, d in info.arguments}
        args.update(schedule.get("arguments", {}))
        lr = info.cls(**{info.rate_argument: lr, **args})
    opt = ol.get(base, learning_rate=lr, preset=preset, **kwargs)
    z = noise * np.random.default_rng(seed).standard_normal((steps, 2))
    p = np.array(start, dtype=np.float64)
    path = [p.copy()]
    for t in range(steps):
        g = surface.gradient(p) + (z[t] if noise else 0.0)
        if not np.isfinite(g).all():
            break
        before = p.copy()
        opt.apply_gradients([(g, p)])
        if not np.abs(p).max() <= 1e6:
            p[...] = before
            break
        path.append(p.copy())
    return np.array(path)


def _variants():
    """Every optimizer x preset, with each offered slider moved off its default."""
    out = []
    for item in catalog.optimizers_json()["optimizers"]:
        for preset in ("keras", "torch", "optax"):
            out.append((item["name"], preset, {}))
            for slider in item["hyperparameters"]:
                default = slider["default"][preset]
                if slider["kind"] == "bool":
                    value = not default
                elif slider["log"]:
                    value = math.exp(
                        math.log(slider["low"]) + 0.3 * math.log(slider["high"] / slider["low"])
                    )
                    if slider["name"] == "learning_rate":
                        value = 3e-4
                else:
                    value = slider["low"] + 0.6 * (slider["high"] - slider["low"])
                out.append((item["name"], preset, {slider["name"]: value}))
    return out


def _compare(response_run, expected):
    path = np.array(response_run["path"], dtype=float)
    at = response_run["diverged_at"]
    if at is None:
        assert path.shape == (STEPS + 1, 2)
        assert np.array_equal(path, expected)
    else:
        assert np.array_equal(path[:at], expected[:at])
        assert (path[at:] == path[at - 1]).all()


def test_every_offered_option_is_bit_identical_to_apply_gradients():
    rosen = surfaces.get("rosenbrock")
    start = (-1.2, 1.0)
    variants = _variants()
    assert len(variants) > 150
    refused = 0
    for name, preset, hyper in variants:
        spec = {"name": name, "preset": preset, "hyperparameters": hyper}
        body = {"surface": "rosenbrock", "steps": STEPS, "optimizers": [spec]}
        try:
            expected = reference_path(rosen, name, preset, hyper, None, start, STEPS)
        except ValueError:  # optimlab refuses it (torch: Nesterov needs momentum): so must the API
            with pytest.raises(RequestError) as info:
                call("trajectories", body)
            assert info.value.field.startswith("optimizers[0].hyperparameters")
            refused += 1
            continue
        _compare(call("trajectories", body)["runs"][0], expected)
    assert refused >= 1  # torch's Nesterov without momentum


@pytest.mark.parametrize("schedule", list(catalog.SCHEDULES))
def test_every_schedule_with_noise_is_bit_identical(schedule):
    rosen = surfaces.get("rosenbrock")
    for name in ("Momentum", "AdamW"):
        sched = {"name": schedule, "arguments": {}}
        hyper = {"learning_rate": 2e-4}
        body = {
            "surface": "rosenbrock",
            "steps": STEPS,
            "gradient_noise": 0.5,
            "seed": 7,
            "optimizers": [{"name": name, "hyperparameters": hyper, "schedule": sched}],
        }
        run = call("trajectories", body)["runs"][0]
        expected = reference_path(rosen, name, "keras", hyper, sched, (-1.2, 1.0), STEPS, 0.5, 7)
        _compare(run, expected)


def test_loss_grad_norm_and_metadata():
    body = {"surface": "himmelblau", "start": [0.5, -1.0], "steps": 40}
    body["optimizers"] = [{"name": "Adam", "hyperparameters": {"learning_rate": 0.05}}]
    body["optimizers"].append({"name": "NAG", "preset": "torch", "label": "mine"})
    out = call("trajectories", body)
    s = surfaces.get("himmelblau")
    assert out["f_min"] == pytest.approx(0.0, abs=1e-12)
    for run in out["runs"]:
        path = np.array(run["path"])
        assert path[0].tolist() == [0.5, -1.0]
        assert np.array_equal(np.array(run["loss"]), s.value(path))
        assert np.allclose(run["grad_norm"], np.linalg.norm(s.gradient(path), axis=1))
    assert [r["label"] for r in out["runs"]] == ["Adam", "mine"]
    assert out["runs"][0]["color"] == "#D55E00"
    assert out["runs"][1]["optimizer"] == "SGD"


def test_divergence_is_reported_and_frozen():
    body = {"surface": "rosenbrock", "steps": 60, "optimizers": [{"name": "SGD"}]}
    body["optimizers"][0]["hyperparameters"] = {"learning_rate": 0.5}
    run = call("trajectories", body)["runs"][0]
    k = run["diverged_at"]
    assert isinstance(k, int) and 1 <= k <= 60
    assert len(run["path"]) == 61 and run["path"][-1] == run["path"][k - 1]


def test_code_snippet_reproduces_the_paths_in_a_subprocess(tmp_path):
    body = {
        "surface": "rosenbrock",
        "steps": 60,
        "gradient_noise": 0.2,
        "seed": 3,
        "optimizers": [
            {"name": "Momentum", "hyperparameters": {"learning_rate": 1e-3}},
            {"name": "Adam", "preset": "torch", "hyperparameters": {"learning_rate": 0.02}},
            {
                "name": "RMSprop",
                "preset": "optax",
                "hyperparameters": {"learning_rate": 0.01, "centered": True},
                "schedule": {"name": "CosineDecay", "arguments": {"decay_steps": 30}},
            },
            {"name": "SGD", "hyperparameters": {"learning_rate": 0.5}},  # diverges
        ],
    }
    out = call("trajectories", body)
    script = tmp_path / "snippet.py"
    script.write_text(
        out["code"]
        + "\nimport json\nprint(json.dumps({k: v.tolist() for k, v in paths.items()}))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    )
    paths = json.loads(done.stdout)
    for run in out["runs"]:
        got = paths[run["label"]]
        end = len(run["path"]) if run["diverged_at"] is None else run["diverged_at"]
        assert got == run["path"][:end]
    assert out["runs"][3]["diverged_at"] is not None


def test_expression_surfaces_run_like_the_parsed_surface():
    from optimlab.lab.sweep import sweep
    from optimlab.play.expression import parse_surface

    body = {"expression": "x^2 + 10*y^2", "start": [2.0, 1.0], "steps": 50}
    body["optimizers"] = [{"name": "Adam", "hyperparameters": {"learning_rate": 0.1}}]
    run = call("trajectories", body)["runs"][0]
    s = parse_surface("x^2 + 10*y^2")
    expected = sweep(s, "Adam", steps=50, starts=[(2.0, 1.0)], learning_rate=0.1).paths[:, 0, 0, 0]
    assert np.array_equal(np.array(run["path"]), expected)
    with pytest.raises(RequestError) as info:
        call("trajectories", {**body, "expression": "x + __import__('os')"})
    assert info.value.field == "expression"
    with pytest.raises(RequestError) as info:
        call("grid", {"expression": "x * z"})
    assert info.value.field == "expression" and info.value.position == 4


# -- anatomy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Adagrad", "RMSprop", "Adam", "Nadam", "Adamax", "Adadelta", "RAdam", "Rprop", "Ftrl", "ASGD"],
)
@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
def test_anatomy_effective_rate_reproduces_the_step(name, preset):
    # RAdam's first five updates are momentum SGD, lr * m_hat: on Rosenbrock's walls (|g| ~
    # 200) lr 0.01 leaves the region, as SGD does
    # (ASGD is SGD with a slowly decaying step: as SGD, it leaves the region at lr 0.01)
    hyper = {"learning_rate": 0.0005 if name in ("RAdam", "ASGD") else 0.01}
    common = {"surface": "rosenbrock", "steps": 30, "gradient_noise": 0.1, "seed": 1}
    trajectory = call(
        "trajectories",
        {**common, "optimizers": [{"name": name, "preset": preset, "hyperparameters": hyper}]},
    )["runs"][0]["path"]
    for k in (0, 1, 17, 30):
        out = call(
            "anatomy",
            {**common, "optimizer": {"name": name, "preset": preset, "hyperparameters": hyper}}
            | {"step": k},
        )
        p, nxt = np.array(out["point"]), np.array(out["next_point"])
        assert np.array_equal(p, trajectory[k])
        if k < 30:
            assert np.array_equal(nxt, trajectory[k + 1])
        eff, pre = np.array(out["effective_lr"]), np.array(out["preconditioned"])
        assert eff.shape == (2,) and (eff > 0).all()
        np.testing.assert_allclose(nxt, p - eff * pre, rtol=1e-12, atol=1e-300)
        assert out["velocity"] is None and out["lookahead"] is None


@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
def test_anatomy_of_schedule_free_reproduces_the_z_step(preset):
    """Schedule-Free's effective rate is its z step's: z_{k+1} = z_k - eff * g (no decay)."""
    hyper = {"learning_rate": 0.01, "warmup_steps": 5}
    common = {"surface": "rosenbrock", "steps": 12, "gradient_noise": 0.1, "seed": 1}
    spec = {"name": "ScheduleFreeAdamW", "preset": preset, "hyperparameters": hyper}
    for k in (0, 3, 11):
        out = call("anatomy", {**common, "optimizer": spec, "step": k})
        eff, pre = np.array(out["effective_lr"]), np.array(out["preconditioned"])
        z, z_next = np.array(out["state"]["z"]), np.array(out["next_state"]["z"])
        assert eff.shape == (2,) and ((eff > 0).all() or (preset == "optax" and k == 0))
        np.testing.assert_allclose(z_next, z - eff * pre, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("epsilon_style", ["hat", "paper"])
def test_anatomy_of_radam_with_nesterov_reproduces_the_step(epsilon_style):
    hyper = {"learning_rate": 0.0005, "nesterov": True, "epsilon_style": epsilon_style}
    common = {"surface": "rosenbrock", "steps": 20, "gradient_noise": 0.1, "seed": 2}
    spec = {"name": "RAdam", "preset": "optax", "hyperparameters": hyper}
    for k in (2, 12):  # momentum SGD, then rectified
        out = call("anatomy", {**common, "optimizer": spec, "step": k})
        p, nxt = np.array(out["point"]), np.array(out["next_point"])
        eff, pre = np.array(out["effective_lr"]), np.array(out["preconditioned"])
        assert (eff > 0).all() and ((eff == 0.0005).all() == (k == 2))
        np.testing.assert_allclose(nxt, p - eff * pre, rtol=1e-12, atol=1e-300)


def test_anatomy_of_momentum_and_nag():
    common = {"surface": "ravine", "steps": 20}
    spec = {"name": "NAG", "hyperparameters": {"learning_rate": 0.005}}
    out = call("anatomy", {**common, "optimizer": spec, "step": 5})
    p, v = np.array(out["point"]), np.array(out["velocity"])
    g = surfaces.get("ravine").gradient(p)
    assert np.array_equal(np.array(out["gradient"]), g)
    assert np.array_equal(np.array(out["lookahead"]), p + 0.9 * v)
    v_next = 0.9 * v - 0.005 * g  # Keras: v = momentum v - lr g; p = p + momentum v - lr g
    np.testing.assert_allclose(out["next_state"]["momentum"], v_next, rtol=1e-14)
    np.testing.assert_allclose(out["next_point"], p + 0.9 * v_next - 0.005 * g, rtol=1e-14)
    assert out["effective_lr"] is None
    plain = call("anatomy", {**common, "optimizer": {"name": "Momentum"}, "step": 0})
    assert plain["velocity"] == [0.0, 0.0]
    assert plain["lookahead"] is None


def test_anatomy_refuses_a_step_after_divergence():
    body = {"surface": "rosenbrock", "steps": 50, "step": 40}
    body["optimizer"] = {"name": "SGD", "hyperparameters": {"learning_rate": 0.5}}
    with pytest.raises(RequestError) as info:
        call("anatomy", body)
    assert info.value.field == "step" and "diverged" in info.value.message


# -- maps -------------------------------------------------------------------------------------


def test_grid_orientation_and_values():
    out = call("grid", {"surface": "rosenbrock", "n": 16, "domain": [[-2, 2], [-1, 3]]})
    s = surfaces.get("rosenbrock")
    x, y, z = np.array(out["x"]), np.array(out["y"]), np.array(out["z"])
    assert x[0] == -2 and x[-1] == 2 and y[0] == -1 and y[-1] == 3
    assert z[3, 7] == s.value([x[7], y[3]])
    assert out["log_levels"] is True and out["f_min"] == 0.0


def test_basins_of_himmelblau():
    opt = {"name": "SGD", "hyperparameters": {"learning_rate": 0.01}}
    out = call("sweep", {"kind": "basins", "surface": "himmelblau", "optimizer": opt, "grid": 16})
    basin = np.array(out["basin"])
    assert basin.shape == (16, 16)
    minima = np.array([m["point"] for m in out["minima"]])
    x, y = np.array(out["x"]), np.array(out["y"])
    for i, j in [(0, 0), (15, 15), (0, 15), (15, 0)]:  # corners go to the nearest minimum
        nearest = np.argmin(np.linalg.norm(minima - [x[j], y[i]], axis=1))
        assert basin[i, j] == nearest
    assert set(np.unique(basin)) == {0, 1, 2, 3}
    fast = {"name": "SGD", "hyperparameters": {"learning_rate": 1.0}}
    out = call("sweep", {"kind": "basins", "surface": "himmelblau", "optimizer": fast, "grid": 8})
    assert (np.array(out["basin"]) == -2).all()


@pytest.mark.parametrize("name", ["Momentum", "NAG"])
def test_lr_beta_map_agrees_with_the_theory_on_the_ravine(name):
    body = {
        "kind": "lr_beta",
        "surface": "ravine",
        "optimizer": {"name": name},
        "learning_rates": {"low": 1e-3, "high": 1.0, "count": 24},
        "betas": {"low": 0.0, "high": 0.98, "count": 20},
        "steps": 400,
    }
    out = call("sweep", body)
    theory = out["theory"]
    assert theory["where"] == "exact quadratic"
    assert np.allclose(sorted(theory["eigenvalues"]), [1.0, 100.0])
    converges = np.array(theory["converges"])
    assert converges.shape == (20, 24)
    final = np.array(out["final_loss"], dtype=float)
    f0 = surfaces.get("ravine").value(out["start"])
    measured = ~np.array(out["diverged"]) & (final < f0)  # shrinking: rho < 1
    assert (measured == converges).mean() > 0.95
    if name == "Momentum":  # the chapter's own spectral radius decides the heavy ball
        lrs, betas = np.array(out["learning_rates"]), np.array(out["betas"])
        rho = np.maximum(
            spectral_radius(lrs[None], betas[:, None], 1.0),
            spectral_radius(lrs[None], betas[:, None], 100.0),
        )
        assert np.array_equal(converges, rho < 1)


def test_lr_beta_theory_at_the_minimum_of_rosenbrock():
    body = {
        "kind": "lr_beta",
        "surface": "rosenbrock",
        "optimizer": {"name": "Momentum"},
        "learning_rates": {"low": 1e-4, "high": 1e-2, "count": 4},
        "betas": {"low": 0.0, "high": 0.9, "count": 3},
        "steps": 20,
    }
    theory = call("sweep", body)["theory"]
    assert theory["where"] == "the Hessian at the minimum"
    assert np.allclose(
        sorted(theory["eigenvalues"]), np.linalg.eigvalsh([[802, -400], [-400, 200]])
    )


# -- the lecture's scenes ---------------------------------------------------------------------


def test_regression_counts_and_path_match_fit():
    from optimlab.lab import problems, training

    out = call("regression", {"batch_size": 100, "epochs": 10, "learning_rate": 0.1})
    assert (out["rows"], out["updates"], out["gradient_evaluations"]) == (500, 50, 5000)
    assert len(out["path"]) == 51 and out["path"][0] == [0.0, 0.0]
    history = training.fit(
        problems.get("linear"), ol.SGD(learning_rate=0.1), epochs=10, batch_size=100, trace=True
    )
    expected = np.column_stack([history.trace.params["w"], history.trace.params["b"]])
    assert np.array_equal(np.array(out["path"]), expected)
    assert out["evaluations_per_update"][-1] == 5000
    contours = out["contours"]
    w, b = contours["w"][5], contours["b"][9]
    problem = problems.get("linear")
    loss = problem.loss({"w": np.array(w), "b": np.array(b)})
    assert contours["loss"][9][5] == pytest.approx(loss, rel=1e-9)
    full = call("regression", {"batch_size": None, "epochs": 3})
    assert (full["updates"], full["gradient_evaluations"]) == (3, 1500)
    namespace: dict = {}
    exec(compile(out["code"], "snippet", "exec"), namespace)  # our own generated code
    assert np.array_equal(np.array(namespace["path"], dtype=float), expected)


def test_ewma_lecture_numbers_and_noisy_year():
    out = call("ewma", {"beta": 0.9})
    assert out["average"][:3] == pytest.approx([0.0, 1.3, 2.87], rel=1e-12)
    assert out["window"] == pytest.approx(10.0)
    first = call("ewma", {"beta": 0.9, "initial": "first"})
    assert first["average"][:2] == pytest.approx([25.0, 23.8])
    noisy = call("ewma", {"beta": 0.98, "signal": "noisy", "bias_correction": True, "seed": 2})
    assert len(noisy["signal"]) == 365 and noisy["average"][0] is None
    assert noisy["average"][1] == pytest.approx(noisy["signal"][1])  # V_1 / (1 - beta) = theta_1
    namespace: dict = {}
    exec(compile(noisy["code"], "snippet", "exec"), namespace)
    assert np.array_equal(namespace["theta"], noisy["signal"])
    assert np.allclose(namespace["average"], noisy["average"][1:], rtol=0, atol=0)


# -- refusals ---------------------------------------------------------------------------------

_ADAM = [{"name": "Adam"}]
_TRAJ = {"surface": "rosenbrock", "optimizers": _ADAM}

REFUSALS = [
    ("trajectories", {"optimizers": _ADAM}, "surface", ["surface", "expression"]),
    ("trajectories", {"surface": "nope", "optimizers": _ADAM}, "surface", ["nope", "rosenbrock"]),
    ("trajectories", {**_TRAJ, "expression": "x"}, "surface", ["both"]),
    ("trajectories", {**_TRAJ, "steps": 5001}, "steps", ["5001", "[1, 5000]"]),
    ("trajectories", {**_TRAJ, "steps": 0}, "steps", ["0", "[1, 5000]"]),
    ("trajectories", {**_TRAJ, "steps": "many"}, "steps", ["many"]),
    ("trajectories", {**_TRAJ, "gradient_noise": -1}, "gradient_noise", ["-1", "[0, 1000000]"]),
    ("trajectories", {**_TRAJ, "seed": -3}, "seed", ["-3"]),
    ("trajectories", {**_TRAJ, "start": [1]}, "start", ["[x, y]"]),
    (
        "trajectories",
        {**_TRAJ, "start": [1, 2e7]},
        "start[1]",
        ["20000000.0", "[-1000000, 1000000]"],
    ),
    ("trajectories", {**_TRAJ, "domain": [[1, 0], [0, 1]]}, "domain[0]", ["xmin < xmax"]),
    ("trajectories", {**_TRAJ, "setps": 3}, "setps", ["unknown", "steps"]),
    ("trajectories", {"surface": "bowl", "optimizers": []}, "optimizers", ["1 to 8"]),
    ("trajectories", {"surface": "bowl", "optimizers": _ADAM * 9}, "optimizers", ["1 to 8"]),
    ("trajectories", {**_TRAJ, "steps": 5000, "optimizers": _ADAM * 5}, "steps", ["20000"]),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "Adamm"}]},
        "optimizers[0].name",
        ["Adamm", "Momentum", "NAG"],
    ),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "Adam", "preset": "jax"}]},
        "optimizers[0].preset",
        ["jax", "keras", "torch", "optax"],
    ),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "Adam", "hyperparameters": {"beta_1": 2.0}}]},
        "optimizers[0].hyperparameters.beta_1",
        ["beta_1 must be a float in [0, 1), got 2.0"],
    ),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "SGD", "hyperparameters": {"lr": 0.1}}]},
        "optimizers[0].hyperparameters.lr",
        ["unknown", "learning_rate"],
    ),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "Adam", "hyperparameters": {"use_ema": 1}}]},
        "optimizers[0].hyperparameters.use_ema",
        ["unknown"],
    ),
    (
        "trajectories",
        {
            "surface": "bowl",
            "optimizers": [{"name": "SGD", "hyperparameters": {"learning_rate": -1}}],
        },
        "optimizers[0].hyperparameters.learning_rate",
        ["-1", ">= 0"],
    ),
    (
        "trajectories",
        {
            "surface": "bowl",
            "optimizers": [{"name": "NAG", "preset": "torch", "hyperparameters": {"momentum": 0}}],
        },
        "optimizers[0].hyperparameters.momentum",
        ["momentum", "Nesterov"],
    ),
    (
        "trajectories",
        {"surface": "bowl", "optimizers": [{"name": "Adam", "schedule": {"name": "Warp"}}]},
        "optimizers[0].schedule.name",
        ["Warp", "ExponentialDecay"],
    ),
    (
        "trajectories",
        {
            "surface": "bowl",
            "optimizers": [
                {
                    "name": "Adam",
                    "schedule": {"name": "ExponentialDecay", "arguments": {"decay_steps": 0}},
                }
            ],
        },
        "optimizers[0].schedule.arguments.decay_steps",
        ["decay_steps", "0", ">= 1"],
    ),
    (
        "trajectories",
        {
            "surface": "bowl",
            "steps": 300,
            "optimizers": [
                {
                    "name": "Adam",
                    "schedule": {"name": "OneCycleLR", "arguments": {"total_steps": 100}},
                }
            ],
        },
        "optimizers[0].schedule",
        ["OneCycleLR"],
    ),
    ("anatomy", {"surface": "bowl", "optimizer": {"name": "Adam"}}, "step", ["step", "required"]),
    (
        "anatomy",
        {"surface": "bowl", "steps": 10, "optimizer": {"name": "Adam"}, "step": 11},
        "step",
        ["11", "[0, 10]"],
    ),
    ("grid", {"surface": "bowl", "n": 8}, "n", ["8", "[16, 256]"]),
    ("grid", {"surface": "bowl", "n": 300}, "n", ["300", "[16, 256]"]),
    ("sweep", {"kind": "map", "surface": "bowl"}, "kind", ["basins", "lr_beta"]),
    (
        "sweep",
        {"kind": "basins", "surface": "bowl", "optimizer": {"name": "SGD"}, "grid": 129},
        "grid",
        ["129", "[8, 128]"],
    ),
    (
        "sweep",
        {
            "kind": "basins",
            "surface": "bowl",
            "optimizer": {"name": "SGD"},
            "grid": 128,
            "steps": 500,
        },
        "grid",
        ["2100000"],
    ),
    (
        "sweep",
        {
            "kind": "lr_beta",
            "surface": "ravine",
            "optimizer": {"name": "Adam"},
            "learning_rates": {"low": 0.01, "high": 0.1, "count": 4},
            "betas": {"low": 0, "high": 0.9, "count": 4},
        },
        "optimizer.name",
        ["SGD, Momentum, NAG"],
    ),
    (
        "sweep",
        {
            "kind": "lr_beta",
            "surface": "ravine",
            "optimizer": {"name": "SGD"},
            "learning_rates": {"low": 0.01, "high": 0.1, "count": 65},
            "betas": {"low": 0, "high": 0.9, "count": 4},
        },
        "learning_rates.count",
        ["65", "[1, 64]"],
    ),
    (
        "sweep",
        {
            "kind": "lr_beta",
            "surface": "ravine",
            "optimizer": {"name": "SGD"},
            "learning_rates": {"low": 0.01, "high": 0.1, "count": 4},
            "betas": {"low": 0, "high": 1.0, "count": 4},
        },
        "betas.high",
        ["1.0", "1)"],
    ),
    (
        "sweep",
        {
            "kind": "lr_beta",
            "surface": "ravine",
            "optimizer": {"name": "SGD"},
            "learning_rates": {"low": 0.01, "high": 0.1, "count": 64},
            "betas": {"low": 0, "high": 0.9, "count": 64},
            "steps": 500,
        },
        "steps",
        ["1000000"],
    ),
    ("regression", {"batch_size": 0}, "batch_size", ["0", "[1, 500]"]),
    ("regression", {"batch_size": 1, "epochs": 20}, "batch_size", ["5000", "10000"]),
    ("regression", {"epochs": 51}, "epochs", ["51", "[1, 50]"]),
    ("regression", {"learning_rate": "big"}, "learning_rate", ["big"]),
    ("ewma", {"beta": 1.0}, "beta", ["beta", "1.0", "[0, 1)"]),
    ("ewma", {"initial": "one"}, "initial", ["zero", "first"]),
    ("ewma", {"signal": "loud"}, "signal", ["lecture", "noisy"]),
    ("ewma", {"initial": "first", "bias_correction": True}, "bias_correction", ["first"]),
    ("ewma", {"bias_correction": "yes"}, "bias_correction", ["yes"]),
]


@pytest.mark.parametrize("endpoint, body, field, words", REFUSALS)
def test_refusals_name_the_field_and_the_range(endpoint, body, field, words):
    with pytest.raises(RequestError) as info:
        call(endpoint, body)
    error = info.value
    assert error.status == 400
    assert error.field == field, error.message
    for word in words:
        assert word in error.message, (word, error.message)


def test_get_endpoints_describe_everything():
    doc = api.documentation()
    paths = {e["path"] for e in doc["endpoints"]}
    assert {"/api/trajectories", "/api/sweep", "/api/anatomy", "/api/surfaces"} <= paths
    assert doc["limits"]["steps"] == 5000
    names = [s["name"] for s in api.surfaces()["surfaces"]]
    assert names == list(surfaces.SURFACES)
    rosen = next(s for s in api.surfaces()["surfaces"] if s["name"] == "rosenbrock")
    assert rosen["default_start"] == [-1.2, 1.0] and rosen["minima"][0]["kind"] == "global"
    opts = api.optimizers()
    # every lab optimizer whose rule is elementwise (the page races rows of one array)
    tensor = {"Muon", "Lamb", "Adafactor"}
    assert [o["name"] for o in opts["optimizers"]] == [
        n for n in contenders.CONTENDERS if n not in tensor
    ]
    adam = next(o for o in opts["optimizers"] if o["name"] == "Adam")
    eps = next(h for h in adam["hyperparameters"] if h["name"] == "epsilon")
    assert eps["default"] == {"keras": 1e-7, "torch": 1e-8, "optax": 1e-8} and eps["log"]
    json.dumps(opts, allow_nan=False)


# -- garbage never escapes as anything but a RequestError -------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_hyper_keys = st.sampled_from(
    [
        "learning_rate",
        "beta_1",
        "beta_2",
        "epsilon",
        "momentum",
        "nesterov",
        "rho",
        "centered",
        "amsgrad",
        "weight_decay",
        "epsilon_style",
        "momentum_decay",
        "dampening",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(list(contenders.CONTENDERS) + ["adam", "x", 3]),
    preset=st.sampled_from(["keras", "torch", "optax", "jax", None]),
    hyper=st.dictionaries(_hyper_keys, _json, max_size=3),
    extra=st.dictionaries(
        st.sampled_from(["steps", "start", "seed", "gradient_noise", "domain", "schedule"]),
        _json,
        max_size=2,
    ),
)
def test_hostile_optimizer_requests_get_a_request_error_or_an_answer(name, preset, hyper, extra):
    spec = {"name": name, "hyperparameters": hyper}
    if preset is not None:
        spec["preset"] = preset
    body = {"surface": "bowl", "steps": 5, **extra, "optimizers": [spec]}
    if "schedule" in body:
        spec["schedule"] = body.pop("schedule")
    try:
        out = call("trajectories", body)
    except RequestError as error:
        assert error.status == 400 and error.field and error.message
    else:
        assert len(out["runs"][0]["path"]) == out["steps"] + 1
