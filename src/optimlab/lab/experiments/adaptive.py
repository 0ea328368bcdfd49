"""Per-parameter learning rates: Adagrad's vanishing rate, RMSprop's fix, Adam's bias correction.

Adagrad: G_t = G_{t-1} + g_t^2, w = w - eta / sqrt(G_t + eps) * g_t (the squares never leave G,
so the rate only shrinks). RMSprop: v_t = beta * v_{t-1} + (1 - beta) g_t^2, w = w - eta /
sqrt(v_t + eps) * g_t (an EWMA forgets old squares). Adam: m and v as EWMAs of g and g^2,
divided by 1 - beta_1^t and 1 - beta_2^t because both start at 0.
(The sparse-feature chapter, Adagrad's motivation, is in ``data_chapters``.)
"""

from __future__ import annotations

import numpy as np

from .. import surfaces
from . import Result, Table
from ._common import f_min_of, runs_figure, steps_text, trajectory


def effective_rates(surface, run) -> np.ndarray:
    """Per step and coordinate, |p_{t+1} - p_t| / |g_t|: the learning rate each coordinate
    actually got (for Adagrad and RMSprop exactly eta / (sqrt(G or v) + eps)); NaN where g = 0."""
    path = run.path
    grads = surface.gradient(path[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.abs(np.diff(path, axis=0)) / np.abs(grads)
    return np.where(np.abs(grads) > 0, rate, np.nan)


def run_adagrad_decay(quick: bool = False) -> Result:
    """Adagrad against RMSprop on Rosenbrock's valley, same learning rate: Adagrad's effective
    learning rate only falls, so it crawls once inside the valley."""
    from ...viz import lines_figure

    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    steps = 1000 if quick else 5000
    lr = 0.05
    start = (-1.2, 1.0)
    runs = [
        trajectory(surface, "Adagrad", lr, steps, start=start, label=f"Adagrad lr={lr}"),
        trajectory(surface, "RMSprop", lr / 50, steps, start=start, label=f"RMSprop lr={lr / 50}"),
    ]
    numbers, rows = {}, []
    rates = {}
    for r in runs:
        rate = np.nanmean(effective_rates(surface, r), axis=1)
        rates[r.label] = rate
        picks = [t for t in (1, 10, 100, 1000, steps) if t <= len(rate)]
        rows.append([r.label, *(float(rate[t - 1]) for t in picks), float(r.losses[-1] - f_min)])
        numbers[f"effective lr at step {picks[-1]}: {r.label}"] = float(rate[picks[-1] - 1])
    steps_axis = np.arange(1, steps + 1)
    figures = {
        "effective_learning_rate": lines_figure(
            {k: (steps_axis, v) for k, v in rates.items()},
            xlabel="step",
            ylabel="effective learning rate |dp| / |g| (mean of x and y)",
            title="Adagrad's rate only falls; RMSprop's follows the recent gradients",
            log_x=True,
            log_y=True,
        ),
        "paths": runs_figure(surface, runs, "Adagrad vs RMSprop on Rosenbrock from (-1.2, 1)"),
    }
    summary = (
        f"Adagrad adds every squared gradient to G, so its effective learning rate eta/sqrt(G) "
        f"can only fall: from {rows[0][1]:.3g} at the first step to {rows[0][-2]:.3g} after "
        f"{steps}. Inside Rosenbrock's curved valley the gradients are small, but the "
        "early, large ones stay in G for ever, and it crawls (final f - f_min "
        f"{rows[0][-1]:.3g}). RMSprop's EWMA forgets them: its rate recovers once the gradients "
        f"shrink (final {rows[1][-1]:.3g})."
    )
    picks = [t for t in (1, 10, 100, 1000, steps) if t <= steps]
    return Result(
        key="adagrad_decay",
        title="Adagrad's disadvantage: the vanishing learning rate",
        chapter="",
        summary=summary,
        equations=[
            "Adagrad: G_t = G_{t-1} + g_t^2,   w = w - eta / sqrt(G_t + eps) * g_t",
            "RMSprop: v_t = beta v_{t-1} + (1 - beta) g_t^2,   w = w - eta / sqrt(v_t + eps) * g_t",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Effective learning rate |dp|/|g| at step t, and f - f_min at the end",
                ["optimizer", *(f"t={t}" for t in picks), "final f - f_min"],
                rows,
            )
        ],
        figures=figures,
    )


def run_rmsprop(quick: bool = False) -> Result:
    """The lecture's RMSprop recurrence with beta = 0.95, worked on three gradients, and
    RMSprop's per-coordinate scaling on the ravine against SGD at the same speed limit."""

    beta = 0.95
    g = np.array([3.0, 1.0, 0.5])  # three gradients of one weight
    v, values = 0.0, []
    for gi in g:
        v = beta * v + (1 - beta) * gi**2
        values.append(v)
    numbers = {
        "v_1 = 0.05 g_1^2": values[0],
        "v_2 = 0.95*0.05 g_1^2 + 0.05 g_2^2": values[1],
        "v_3": values[2],
        "weight of g_1^2 in v_3 (0.95^2 * 0.05)": 0.95**2 * 0.05,
    }
    from ..sweep import tune_learning_rate

    steps = 300 if quick else 600
    lrs = np.logspace(-4, 0.5, 19 if quick else 37)
    rows, runs = [], []
    for angle, where in ((0.0, "axis-aligned"), (np.pi / 4, "rotated 45 degrees")):
        surface = surfaces.quadratic(condition_number=100.0, angle=angle, name=where)
        for name in ("SGD", "RMSprop", "Adagrad"):
            tuned = tune_learning_rate(
                surface, name, learning_rates=lrs, steps=steps, objective="mean_log_gap"
            )
            best = tuned.best
            hit = int(np.asarray(best.steps_to(1e-6)).ravel()[0])
            final = float(np.asarray(best.final_loss).ravel()[0])
            rows.append([where, name, tuned.learning_rate, hit, final])
            numbers[f"steps to 1e-6, {where}: {name}"] = hit
            if angle == 0.0:
                runs.append(
                    trajectory(
                        surface,
                        name,
                        tuned.learning_rate,
                        steps,
                        label=f"{name} lr={tuned.learning_rate:.3g}",
                    )
                )
    aligned = surfaces.quadratic(condition_number=100.0, angle=0.0, name="axis-aligned")
    figures = {
        "axis_aligned_ravine": runs_figure(
            aligned, runs, "Axis-aligned ravine (curvatures 1 and 100), learning rates tuned"
        )
    }

    def show(k):
        return steps_text(rows[k][3], steps)

    summary = (
        f"With beta = 0.95 the lecture's recurrence gives v_1 = {values[0]:.4g}, v_2 = "
        f"{values[1]:.4g}, v_3 = {values[2]:.4g} for gradients 3, 1, 0.5: the first square's "
        "weight shrinks by 0.95 every step, so old gradients fade instead of piling up as in "
        "Adagrad. Dividing by sqrt(v) gives each coordinate its own step size. Where the steep "
        "and flat directions are the coordinates themselves (the axis-aligned ravine, each "
        f"optimizer's learning rate tuned), SGD needs {show(0)} to reach 1e-6, RMSprop "
        f"{show(1)}, Adagrad {show(2)}. Rotate the same ravine by 45 degrees and every "
        f"coordinate sees both curvatures: SGD {show(3)}, RMSprop {show(4)}, Adagrad {show(5)}. "
        "A per-coordinate rate is a diagonal rescaling; it cannot undo a rotation."
    )
    return Result(
        key="rmsprop",
        title="RMSprop: an EWMA of squared gradients",
        chapter="",
        summary=summary,
        equations=[
            "v_t = beta * v_{t-1} + (1 - beta) * g_t^2        (beta = 0.95 in the lecture)",
            "w_{t+1} = w_t - eta / sqrt(v_t + eps) * g_t",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Quadratic with curvatures 1 and 100, {steps} steps, each lr tuned on a log grid",
                ["ravine", "optimizer", "lr", "steps to 1e-6 (-1: not reached)", "final f"],
                rows,
            )
        ],
        figures=figures,
    )


def run_adam(quick: bool = False) -> Result:
    """Adam's first steps with and without bias correction, for beta_2 = 0.999 (Keras's default)
    and 0.99 (the lecture's), and Adam against momentum and RMSprop on Rosenbrock."""
    from ...viz import lines_figure

    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    start = (-1.2, 1.0)
    lr = 0.01
    first = 50
    curves, numbers, rows = {}, {}, []
    for beta_2 in (0.999, 0.99):
        sizes = {}
        for corrected in (True, False):
            spec = f"Adam:beta_2={beta_2},bias_correction={corrected}"
            r = trajectory(surface, spec, lr, first, start=start)
            step = np.linalg.norm(np.diff(r.path, axis=0), axis=1)
            sizes[corrected] = step
            label = f"beta_2={beta_2}, {'with' if corrected else 'without'} bias correction"
            curves[label] = (np.arange(1, first + 1), step)
        ratio = sizes[False] / sizes[True]
        rows.append([beta_2, sizes[True][0], sizes[False][0], ratio[0], ratio[9], ratio[-1]])
        numbers[f"first step without / with correction, beta_2={beta_2}"] = float(ratio[0])
    numbers["theory at t=1: (1-beta_1)/sqrt(1-beta_2) for beta_2=0.999"] = 0.1 / np.sqrt(0.001)

    steps = 500 if quick else 3000
    runs = [
        trajectory(surface, "Momentum", 1e-3, steps, start=start, label="Momentum lr=1e-3"),
        trajectory(surface, "RMSprop", 1e-3, steps, start=start, label="RMSprop lr=1e-3"),
        trajectory(surface, "Adam", 0.02, steps, start=start, label="Adam lr=0.02"),
    ]
    for r in runs:
        numbers[f"final f - f_min on Rosenbrock: {r.label}"] = float(r.losses[-1] - f_min)
    figures = {
        "first_steps": lines_figure(
            curves,
            xlabel="step t",
            ylabel="step length |w_{t+1} - w_t|",
            title=f"Adam's first {first} steps on Rosenbrock, lr = {lr}",
            log_y=True,
        ),
        "adam_vs_its_parts": runs_figure(
            surface, runs, "Adam = momentum (m) + RMSprop (v) on Rosenbrock"
        ),
    }
    summary = (
        "m and v start at 0, so early on both are too small, by 1 - beta_1^t and 1 - beta_2^t. "
        "Their ratio m/sqrt(v) is then off by sqrt(1 - beta_2^t)/(1 - beta_1^t): with Keras's "
        f"beta_2 = 0.999 the first step without correction is {rows[0][3]:.3g}x the corrected "
        f"one (theory 0.1/sqrt(0.001) = 3.16), still {rows[0][4]:.3g}x at step 10; with the "
        f"lecture's beta_2 = 0.99 it is {rows[1][3]:.3g}x at step 1 and {rows[1][4]:.3g}x at "
        "step 10. With the correction the first step has length lr (per coordinate, lr times "
        "the sign of the gradient) whatever the gradient's scale."
    )
    return Result(
        key="adam",
        title="Adam: momentum plus RMSprop, with bias correction",
        chapter="",
        summary=summary,
        equations=[
            "m_t = beta_1 m_{t-1} + (1 - beta_1) g_t          (momentum)",
            "v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2        (RMSprop / Adagrad part)",
            "m_hat = m_t / (1 - beta_1^t),  v_hat = v_t / (1 - beta_2^t)",
            "w_{t+1} = w_t - eta * m_hat / (sqrt(v_hat) + eps)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Step lengths on Rosenbrock from (-1.2, 1), lr = {lr}",
                [
                    "beta_2",
                    "step 1 corrected",
                    "step 1 uncorrected",
                    "ratio t=1",
                    "ratio t=10",
                    f"ratio t={first}",
                ],
                rows,
            )
        ],
        figures=figures,
    )
