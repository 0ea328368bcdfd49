"""Momentum, Nesterov (NAG) and the lecture's Keras code, on the high-curvature ravine.

The lecture's momentum: v_t = beta * v_{t-1} + eta * grad(w_t), w_{t+1} = w_t - v_t (beta = 0
is plain SGD; 1 / (1 - beta) is how many past gradients it remembers); NAG evaluates the gradient
at the look-ahead point: w_la = w_t - beta * v_{t-1}, v_t = beta * v_{t-1} + eta * grad(w_la),
w_{t+1} = w_t - v_t, which dampens momentum's oscillation.
"""

from __future__ import annotations

import numpy as np

from ... import optimizers
from .. import surfaces
from . import Result, Table
from ._common import f_min_of, paths_of, runs_figure, steps_text, trajectory

TARGET = 1e-6  # steps to reach f - f_min <= TARGET


def _crossings(path: np.ndarray, minimum) -> int:
    """How often the path crosses the minimum along the ravine's flat direction (its u axis):
    a count of oscillations."""
    u = (path - np.asarray(minimum)) @ np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
    u = u[np.isfinite(u)]
    return int(np.count_nonzero(np.diff(np.sign(u[np.abs(u) > 1e-12])) != 0))


def _overshoot(path: np.ndarray, minimum) -> float:
    """The furthest the path goes past the minimum along the flat direction, relative to the
    start's distance: 0 for a path that never passes it."""
    u = (path - np.asarray(minimum)) @ np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
    u = u[np.isfinite(u)]
    side = np.sign(u[0])
    return float(max(0.0, -np.min(side * u)) / abs(u[0]))


def run_momentum(quick: bool = False) -> Result:
    """SGD against momentum (beta = 0.5, 0.9, 0.99) on the ravine: speed (steps to 1e-6) and
    oscillation (crossings of the minimum, overshoot); a final-loss map over (lr, beta)."""
    from ...viz import heatmap
    from ..sweep import sweep

    ravine = surfaces.get("ravine")
    minimum = ravine.global_minimum.point
    f_min = f_min_of(ravine)
    steps = 150 if quick else 400
    lr = 0.018  # just under GD's limit 2 / lambda_max = 0.02
    runs = [trajectory(ravine, "SGD", lr, steps, label=f"SGD lr={lr}")]
    for beta in (0.5, 0.9, 0.99):
        runs.append(trajectory(ravine, f"SGD:momentum={beta}", lr, steps, label=f"momentum {beta}"))
    rows, numbers = [], {}
    for r in runs:
        hit = r.steps_to(TARGET, f_min)
        rows.append([r.label, hit, _crossings(r.path, minimum), _overshoot(r.path, minimum)])
        numbers[f"steps to 1e-6: {r.label}"] = hit
    beta0 = trajectory(ravine, "SGD:momentum=0.0", lr, steps)
    numbers["max |momentum(beta=0) - SGD|"] = float(np.nanmax(np.abs(beta0.path - runs[0].path)))

    lrs = np.logspace(-4, -0.5, 8 if quick else 24)
    betas = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99] if not quick else [0.0, 0.9]
    grid = sweep(ravine, "SGD", steps=steps, learning_rate=lrs, momentum=betas)
    final = np.asarray(grid.final_loss).reshape(len(lrs), len(betas)) - f_min
    final = np.where(np.asarray(grid.diverged).reshape(final.shape), np.nan, final)
    best = np.unravel_index(np.nanargmin(final), final.shape)
    numbers["best (lr, beta) on the grid"] = f"({lrs[best[0]]:.3g}, {betas[best[1]]})"
    numbers["largest stable lr, beta=0 (theory 2/100)"] = float(
        lrs[np.flatnonzero(np.isfinite(final[:, 0]))[-1]]
    )
    if 0.9 in betas:
        numbers["largest stable lr, beta=0.9 (theory 2(1+beta)/100 = 0.038)"] = float(
            lrs[np.flatnonzero(np.isfinite(final[:, betas.index(0.9)]))[-1]]
        )

    figures = {
        "paths_on_the_ravine": runs_figure(
            ravine, runs, "Momentum on the ravine (condition number 100), lr = 0.018"
        ),
        "final_loss_over_lr_and_beta": heatmap(
            final.T,
            lrs,
            np.array(betas),
            xlabel="learning rate",
            ylabel="momentum beta",
            title=f"SGD with momentum on the ravine: f - f_min after {steps} steps",
            cbar_label="f - f_min (log)",
        ),
    }
    sgd_steps, m9_steps = rows[0][1], rows[2][1]
    summary = (
        "With the same learning rate, plain SGD gets within 1e-6 of the minimum in "
        f"{steps_text(sgd_steps, steps)}, momentum 0.9 in {steps_text(m9_steps, steps)}: the "
        "velocity keeps accumulating along the "
        f"flat direction. The price is oscillation: momentum 0.9 crosses the minimum "
        f"{rows[2][2]} times (SGD {rows[0][2]}), and beta = 0.99 overshoots by "
        f"{rows[3][3]:.0%} of the starting distance and is far from done after {steps} steps. "
        "beta = 0 gives SGD exactly. Momentum also raises the largest stable learning rate from "
        "2/lambda_max to 2(1 + beta)/lambda_max (the map's white cells diverged)."
    )
    return Result(
        key="momentum",
        title="Momentum: speed and oscillation",
        chapter="",
        summary=summary,
        equations=[
            "v_t = beta * v_{t-1} + eta * grad(w_t)",
            "w_{t+1} = w_t - v_t            (beta = 0: SGD; 1/(1-beta) gradients remembered)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Ravine f = 0.5 (u^2 + 100 v^2), lr = {lr}, {steps} steps",
                ["optimizer", "steps to 1e-6 (-1: not reached)", "crossings", "overshoot"],
                rows,
            )
        ],
        figures=figures,
    )


def lecture_nag(surface, eta: float, beta: float, steps: int, start) -> np.ndarray:
    """The lecture's NAG, literally: w_la = w - beta * v; v = beta * v + eta * grad(w_la);
    w = w - v. Returns the look-ahead points w_la of steps 1..steps+1 (where the gradients are
    taken), which is the sequence Keras and PyTorch store as their parameter."""
    w = np.array(start, float)
    v = np.zeros(2)
    lookahead = []
    for _ in range(steps + 1):
        w_la = w - beta * v
        lookahead.append(w_la)
        v = beta * v + eta * surface.gradient(w_la)
        w = w - v
    return np.array(lookahead)


def run_nesterov(quick: bool = False) -> Result:
    """Momentum vs NAG at beta = 0.9 and 0.99 on the ravine (NAG's smaller oscillation), and
    the lecture's look-ahead formulation against Keras's ``SGD(nesterov=True)``."""

    ravine = surfaces.get("ravine")
    minimum = ravine.global_minimum.point
    f_min = f_min_of(ravine)
    steps = 150 if quick else 400
    lr = 0.01
    runs, rows, numbers = [], [], {}
    for beta in (0.9, 0.99):
        for nesterov in (False, True):
            label = f"{'NAG' if nesterov else 'momentum'} {beta}"
            spec = f"SGD:momentum={beta},nesterov={nesterov}"
            r = trajectory(ravine, spec, lr, steps, label=label)
            runs.append(r)
            crossings, overshoot = _crossings(r.path, minimum), _overshoot(r.path, minimum)
            rows.append([label, r.steps_to(TARGET, f_min), crossings, overshoot])
            numbers[f"overshoot: {label}"] = rows[-1][3]

    # the lecture's form vs Keras's: the same points under the change of variables w_keras = w_la
    start = ravine.default_start
    ours = lecture_nag(ravine, lr, 0.9, steps, start)
    keras = trajectory(ravine, "SGD:momentum=0.9,nesterov=true", lr, steps, start=start).path
    # Keras's iterate p_t is the lecture's look-ahead point w_la of the same step, but Keras
    # starts at p_0 = w_0 = w_la(0); compare whole sequences
    numbers["max |lecture NAG look-ahead - Keras SGD(nesterov=True)|"] = float(
        np.max(np.abs(ours - keras))
    )
    figures = {
        "momentum_vs_nag": runs_figure(ravine, runs, f"Momentum vs NAG on the ravine, lr = {lr}")
    }
    summary = (
        "NAG looks ahead before it steps: the gradient at w - beta*v already feels the slope "
        "on the far side of the minimum and brakes. At beta = 0.9 the overshoot falls from "
        f"{rows[0][3]:.0%} (momentum) to {rows[1][3]:.0%} (NAG), at beta = 0.99 from "
        f"{rows[2][3]:.0%} to {rows[3][3]:.0%}. The lecture's look-ahead equations and Keras's "
        "SGD(momentum=0.9, nesterov=True), which needs only the gradient at its stored point, "
        "produce the same points once Keras's parameter is read as the look-ahead point: the "
        f"largest difference over {steps} steps is "
        f"{numbers['max |lecture NAG look-ahead - Keras SGD(nesterov=True)|']:.2g}."
    )
    return Result(
        key="nesterov",
        title="Nesterov accelerated gradient: the dampened oscillation",
        chapter="",
        summary=summary,
        equations=[
            "w_la = w_t - beta * v_{t-1}",
            "v_t = beta * v_{t-1} + eta * grad(w_la)",
            "w_{t+1} = w_t - v_t",
            "Keras stores p = w_la:  u = beta*u - eta*grad(p);  p = p + beta*u - eta*grad(p)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Ravine, lr = {lr}, {steps} steps",
                ["optimizer", "steps to 1e-6", "crossings", "overshoot"],
                rows,
            )
        ],
        figures=figures,
    )


KERAS_CODE = """import optimlab as ol   # the lecture's tf.keras.optimizers.SGD, same arguments
sgd      = ol.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)
momentum = ol.SGD(learning_rate=0.01, momentum=0.9, nesterov=False)
nag      = ol.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)
opt.apply_gradients(zip(grads, params))"""


def run_keras_code(quick: bool = False) -> Result:
    """The lecture's three Keras configurations of ``SGD(learning_rate, momentum, nesterov)``
    on Rosenbrock's curved valley from (-1.2, 1)."""

    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    steps = 300 if quick else 2000
    lr = 1e-3  # 0.01 diverges on Rosenbrock (curvature ~ 2500 at the minimum)
    configs = {
        "SGD(momentum=0.0)": {"momentum": 0.0, "nesterov": False},
        "SGD(momentum=0.9)": {"momentum": 0.9, "nesterov": False},
        "SGD(momentum=0.9, nesterov=True)": {"momentum": 0.9, "nesterov": True},
    }
    runs, rows, numbers = [], [], {}
    for label, kwargs in configs.items():
        r = trajectory(surface, "SGD", lr, steps, start=(-1.2, 1.0), label=label, **kwargs)
        runs.append(r)
        final = float(r.losses[np.isfinite(r.losses)][-1] - f_min)
        rows.append([label, r.steps_to(1e-3, f_min), final])
        numbers[f"final f - f_min: {label}"] = final
    assert optimizers.SGD(learning_rate=0.01).get_config()["momentum"] == 0.0
    figures = {
        "three_keras_configurations": runs_figure(
            surface, runs, f"Keras SGD configurations on Rosenbrock, lr = {lr}"
        )
    }
    summary = (
        "The lecture's Keras code, run as written with optimlab's identical signature (Keras's "
        "defaults: learning_rate=0.01, momentum=0.0, nesterov=False). On Rosenbrock's curved "
        f"valley the learning rate must be 1e-3 (0.01 diverges). After {steps} steps plain SGD "
        f"is still {rows[0][2]:.3g} above the minimum, momentum {rows[1][2]:.3g}, and NAG "
        f"{rows[2][2]:.3g}."
    )
    return Result(
        key="keras_code",
        title="The Keras code: SGD(learning_rate, momentum, nesterov)",
        chapter="",
        summary=summary,
        equations=["tf.keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)"],
        numbers=numbers,
        tables=[
            Table(
                f"Rosenbrock from (-1.2, 1), lr = {lr}, {steps} steps",
                ["configuration", "steps to f - f_min <= 1e-3", "final f - f_min"],
                rows,
            )
        ],
        figures=figures,
        code=KERAS_CODE,
        animations={"race": (surface, paths_of(runs))},
    )
