"""The lecture's challenges on 2-D surfaces: the learning rate, convex vs non-convex, local
minima, saddle points and high curvature. Grids of runs are one vectorized sweep each."""

from __future__ import annotations

import numpy as np

from .. import surfaces
from . import Result, Table
from ._common import f_min_of, paths_of, runs_figure, steps_text, trajectory


def _grid_starts(surface, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = surface.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=-1)


def run_learning_rate(quick: bool = False) -> Result:
    """Gradient descent on the ravine (curvatures 1 and 100) with a learning rate too small,
    about right and too large (just above 2 / lambda_max = 0.02), and the U-shaped sensitivity
    curve of the final loss over a log grid."""
    from ...viz import lines_figure
    from ..sweep import sweep

    ravine = surfaces.get("ravine")
    f_min = f_min_of(ravine)
    steps = 450 if quick else 600
    chosen = {"too small": 0.001, "about right": 0.018, "too large": 0.0205}
    runs, rows, numbers = [], [], {}
    for name, lr in chosen.items():
        r = trajectory(ravine, "SGD", lr, steps, label=f"lr={lr} ({name})")
        runs.append(r)
        final = float(r.losses[np.isfinite(r.losses)][-1] - f_min)
        rows.append([r.label, r.steps_to(1e-6, f_min), final])
        numbers[f"final f - f_min, {name} (lr={lr})"] = final
    lrs = np.logspace(-4, -1, 31 if quick else 61)
    result = sweep(ravine, "SGD", steps=steps, learning_rate=lrs, keep_paths=False)
    final = np.asarray(result.final_loss, float).reshape(len(lrs)) - f_min
    diverged = np.asarray(result.diverged).reshape(len(lrs))
    final = np.where(diverged | ~np.isfinite(final), np.inf, final)
    numbers["largest lr that converges (theory: below 2/lambda_max = 0.02)"] = float(
        lrs[np.flatnonzero(np.isfinite(final) & (final < 1.0))[-1]]
    )
    numbers["best lr on the grid (theory: 2/(1+100) = 0.0198)"] = float(lrs[np.argmin(final)])
    shown = np.where(np.isfinite(final), final, np.nan)
    figures = {
        "three_learning_rates": runs_figure(
            ravine,
            runs,
            "Gradient descent on the ravine: learning rate too small, right, too large",
        ),
        "sensitivity": lines_figure(
            {"SGD": (lrs, shown)},
            xlabel="learning rate",
            ylabel=f"f - f_min after {steps} steps",
            title="The learning rate decides everything: a cliff at 2 / lambda_max",
            log_x=True,
            log_y=True,
        ),
    }
    summary = (
        "w_new = w - eta * dL/dw: the step is the learning rate times the slope. Too small and "
        f"progress is slow (lr = 0.001 ends {rows[0][2]:.3g} above the minimum after {steps} "
        f"steps); about right and it converges (lr = 0.018 reaches 1e-6 in "
        f"{steps_text(rows[1][1], steps)}); "
        "too large and every step overshoots the steep direction by more than it corrects, so "
        f"it diverges (lr = 0.0205 ends at {rows[2][2]:.3g}). On a quadratic the limit is "
        "exactly 2 / lambda_max, here 2/100 = 0.02; the sweep finds "
        f"{numbers['largest lr that converges (theory: below 2/lambda_max = 0.02)']:.3g}."
    )
    return Result(
        key="learning_rate",
        title="The learning rate: too small, too large",
        chapter="",
        summary=summary,
        equations=[
            "w_n = w_0 - eta * dL/dw",
            "quadratic, curvatures lambda: stable iff 0 < eta < 2 / lambda_max",
        ],
        numbers=numbers,
        tables=[Table("Ravine 0.5 (u^2 + 100 v^2)", ["run", "steps to 1e-6", "final"], rows)],
        figures=figures,
    )


def _basin_fractions(surface, spec_runs, n):
    """Per (label, base, kwargs, lr): the basin index of every start of an n x n grid."""
    from ..sweep import sweep

    xs, ys, starts = _grid_starts(surface, n)
    maps = {}
    for label, base, kwargs, lr, steps in spec_runs:
        result = sweep(
            surface, base, steps=steps, starts=starts, learning_rate=lr, keep_paths=False, **kwargs
        )
        maps[label] = np.asarray(result.basin()).reshape(n, n)
    return xs, ys, maps


def run_convexity(quick: bool = False) -> Result:
    """Where gradient descent ends from every start of a grid: one basin on the convex Booth
    surface, four on non-convex Himmelblau (a basin-of-attraction map)."""
    from ...viz import basin_map

    n = 15 if quick else 41
    runs = [("SGD", "SGD", {}, 0.01, 400)]
    figures, rows, numbers = {}, [], {}
    for name in ("booth", "himmelblau"):
        surface = surfaces.get(name)
        xs, ys, maps = _basin_fractions(surface, runs, n)
        basins = maps["SGD"]
        reached = sorted({int(b) for b in basins.ravel() if b >= 0})
        share = [float(np.mean(basins == k)) for k in range(len(surface.minima))]
        rows.append(
            [
                surface.title,
                len(surface.minima),
                len(reached),
                float(np.mean(basins < 0)),
                ", ".join(f"{s:.2f}" for s in share),
            ]
        )
        numbers[f"distinct minima reached from {n}x{n} starts: {surface.title}"] = len(reached)
        figures[f"basins_{name}"] = basin_map(
            surface,
            xs,
            ys,
            basins,
            title=f"{surface.title}: where gradient descent (lr=0.01) ends from each start",
        )
    summary = (
        "A convex function has one basin: every start ends at the same minimum (Booth: "
        f"{rows[0][2]} minimum reached from all {n * n} starts). A non-convex one has several: "
        f"on Himmelblau the same optimizer reaches {rows[1][2]} different minima depending only "
        "on where it starts. For a linear model (convex loss) the starting point does not "
        "matter; for a neural network (non-convex) it does."
    )
    return Result(
        key="convexity",
        title="Convex vs non-convex",
        chapter="",
        summary=summary,
        equations=[
            "convex: f(a x + (1-a) y) <= a f(x) + (1-a) f(y): every local minimum is global"
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Gradient descent from a {n}x{n} grid of starts",
                ["surface", "minima", "reached", "share not converged", "share per minimum"],
                rows,
            )
        ],
        figures=figures,
    )


def run_local_minima(quick: bool = False) -> Result:
    """The two-well surface: gradient descent stops in the nearer, shallower well; momentum can
    carry over the ridge. On Rastrigin: the share of random starts that reach the global
    minimum, per optimizer."""
    from ..sweep import sweep

    well = surfaces.get("two_well")
    steps = 300 if quick else 1000
    runs = [
        trajectory(well, "SGD", 0.02, steps, label="SGD lr=0.02"),
        trajectory(well, "Momentum", 0.02, steps, label="Momentum 0.9 lr=0.02"),
        trajectory(well, "Adam", 0.05, steps, label="Adam lr=0.05"),
    ]
    numbers, rows = {}, []
    for r in runs:
        end = r.path[np.isfinite(r.path[:, 0])][-1]
        k = int(np.argmin([np.linalg.norm(end - np.array(m.point)) for m in well.minima]))
        kind = well.minima[k].kind
        numbers[f"two_well, ends in the {{global, local}} minimum: {r.label}"] = kind
        rows.append([r.label, kind, float(r.losses[np.isfinite(r.losses)][-1])])

    rastrigin = surfaces.get("rastrigin")
    rng = np.random.default_rng(0)
    (x0, x1), (y0, y1) = rastrigin.domain
    count = 30 if quick else 100
    starts = np.column_stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)])
    lrs = np.logspace(-4, 0, 9)
    share_rows = []
    for label, base, kwargs in [
        ("SGD", "SGD", {}),
        ("Momentum 0.9", "SGD", {"momentum": 0.9}),
        ("Momentum 0.99", "SGD", {"momentum": 0.99}),
        ("Adam", "Adam", {}),
    ]:
        result = sweep(
            rastrigin,
            base,
            steps=steps,
            starts=starts,
            learning_rate=lrs,
            keep_paths=False,
            **kwargs,
        )
        final = np.asarray(result.final_loss, float).reshape(count, len(lrs))
        final = np.where(np.asarray(result.diverged).reshape(final.shape), np.inf, final)
        k = int(np.argmin(np.median(final, axis=0)))  # the rate with the best median
        share = float(np.mean(np.asarray(result.basin()).reshape(count, len(lrs))[:, k] == 0))
        share_rows.append([label, float(lrs[k]), share, float(np.median(final[:, k]))])
        numbers[f"Rastrigin, {count} random starts, share at the global minimum: {label}"] = share
        numbers[f"Rastrigin, median final f: {label}"] = float(np.median(final[:, k]))
    figures = {
        "two_well": runs_figure(
            well, runs, "Two wells: the nearer, shallower one traps gradient descent"
        )
    }
    summary = (
        "Where the gradient is 0 gradient descent stops, whether or not that is the best "
        f"point. From the same start on the two-well surface SGD ends in the {rows[0][1]} "
        f"minimum, momentum in the {rows[1][1]} one, Adam in the {rows[2][1]} one: momentum "
        "carries it over the ridge. Rastrigin has a local minimum near every integer point: from "
        f"{count} random starts, with each optimizer's best learning rate, "
        + ", ".join(
            f"{r[0]} reaches the global minimum {r[2]:.0%} of the time (median final f {r[3]:.3g})"
            for r in share_rows
        )
        + ". Many local minima trap every first-order method; momentum only helps to roll over "
        "small bumps."
    )
    return Result(
        key="local_minima",
        title="Local minima",
        chapter="",
        summary=summary,
        equations=["dL/dw = 0 at every minimum, local or global: w_n = w_0 - eta * 0 = w_0"],
        numbers=numbers,
        tables=[
            Table("Two wells, from the default start", ["optimizer", "ends in", "final f"], rows),
            Table(
                f"Rastrigin, {count} random starts, {steps} steps",
                ["optimizer", "lr", "share at the global minimum"],
                share_rows,
            ),
        ],
        figures=figures,
    )


def run_saddle_points(quick: bool = False) -> Result:
    """x^2 - y^2 from (1, eps): how long each optimizer needs to leave the saddle, against eps
    (gradient descent needs about log(1/eps) / log(1 + 2 lr) steps; Adam's normalized step
    does not care how small the gradient is)."""
    from ...viz import contour_with_paths, lines_figure, surface_3d

    saddle = surfaces.get("saddle")
    steps = 400 if quick else 2000
    epsilons = np.logspace(-1, -8, 4 if quick else 8)
    specs = [("SGD", "SGD", 0.01), ("Momentum", "Momentum", 0.01), ("Adam", "Adam", 0.01)]
    curves, rows, numbers = {}, [], {}
    for label, spec, lr in specs:
        escape = []
        for eps in epsilons:
            r = trajectory(saddle, spec, lr, steps, start=(1.0, eps))
            out = np.flatnonzero(np.abs(r.path[:, 1]) > 1.0)
            escape.append(float(out[0]) if out.size else np.nan)
        curves[f"{label} lr={lr}"] = (epsilons, np.array(escape))
        rows.append([label, *escape])
        numbers[f"steps to leave the saddle from eps=1e-8: {label}"] = escape[-1]
    shown = [
        trajectory(saddle, spec, lr, 400, start=(1.0, 1e-3), label=f"{label} lr={lr}")
        for label, spec, lr in specs
    ]
    figures = {
        "escape_time": lines_figure(
            curves,
            xlabel="start offset eps from the saddle's ridge",
            ylabel="steps until |y| > 1",
            title="Leaving the saddle of x^2 - y^2",
            log_x=True,
            log_y=False,
        ),
        "paths": contour_with_paths(
            saddle, paths_of(shown), title="Paths from (1, 0.001) on x^2 - y^2"
        ),
        "saddle_in_3d": surface_3d(
            saddle,
            paths_of(shown),
            title="The saddle x^2 - y^2: a minimum along x, a maximum along y",
        ),
    }
    summary = (
        "At a saddle point the gradient is 0 although the function goes down in some "
        "direction. Started eps away from the ridge, gradient descent's distance from it grows "
        "by (1 + 2 lr) per step, so leaving takes about log(1/eps) / log(1 + 2 lr) steps: "
        f"{rows[0][-1]:.0f} steps from eps = 1e-8 with lr = 0.01. Momentum accelerates the "
        f"escape ({rows[1][-1]:.0f} steps); Adam divides by the gradient's own size, so a tiny "
        f"gradient still gives a full step ({rows[2][-1]:.0f} steps)."
    )
    return Result(
        key="saddle_points",
        title="Saddle points",
        chapter="",
        summary=summary,
        equations=["f = x^2 - y^2: grad = (2x, -2y) = 0 at (0, 0), a minimum in x, a maximum in y"],
        numbers=numbers,
        tables=[
            Table(
                "Steps until |y| > 1, by start offset eps",
                ["optimizer", *(f"eps={e:.0e}" for e in epsilons)],
                rows,
            )
        ],
        figures=figures,
    )


def run_high_curvature(quick: bool = False) -> Result:
    """Rotated quadratics with condition number kappa = 1 .. 1000: the steps each optimizer
    needs to reach f < 1e-6 at its best learning rate (gradient descent: about proportional to
    kappa)."""
    from ...viz import lines_figure
    from ..sweep import sweep

    kappas = [1, 10, 100, 1000] if not quick else [1, 10, 100]
    steps = 6000 if not quick else 1500
    target = 1e-6
    rows, curves, numbers = [], {}, {}
    configs = [
        ("SGD", "SGD", {}),
        ("Momentum 0.9", "SGD", {"momentum": 0.9}),
        ("Adam", "Adam", {}),
    ]
    lrs = np.logspace(-4, 0, 17 if quick else 33)
    for label, base, kwargs in configs:
        needed = []
        for kappa in kappas:
            surface = surfaces.quadratic(condition_number=kappa, name=f"quadratic_{kappa}")
            result = sweep(surface, base, steps=steps, learning_rate=lrs, **kwargs)
            hits = np.asarray(result.steps_to(target)).reshape(len(lrs))
            hits = np.where(hits < 0, np.iinfo(np.int64).max, hits)
            needed.append(float(hits.min()) if hits.min() < np.iinfo(np.int64).max else np.nan)
        curves[label] = (np.array(kappas, float), np.array(needed))
        rows.append([label, *needed])
        numbers[f"steps to 1e-6 at kappa={kappas[-1]} (best lr): {label}"] = needed[-1]
    figures = {
        "steps_vs_condition_number": lines_figure(
            curves,
            xlabel="condition number kappa = lambda_max / lambda_min",
            ylabel="steps to f < 1e-6 (best learning rate on a grid)",
            title="High curvature: the ravine's condition number sets the pace",
            log_x=True,
            log_y=True,
        )
    }
    summary = (
        "In a ravine the curvature across is much larger than along. The learning rate must "
        "stay below 2/lambda_max for the steep direction, so the flat direction moves by only "
        "about lambda_min/lambda_max per step: gradient descent needs about kappa times more "
        f"steps. Measured at the best learning rate: SGD {rows[0][1]:.0f} steps at kappa=1 and "
        f"{rows[0][-1]:.0f} at kappa={kappas[-1]}; momentum {rows[1][-1]:.0f}, Adam "
        f"{rows[2][-1]:.0f}."
    )
    return Result(
        key="high_curvature",
        title="High curvature: ravines",
        chapter="",
        summary=summary,
        equations=["f = 0.5 (u^2 + kappa v^2) rotated by 45 degrees; eta < 2/kappa"],
        numbers=numbers,
        tables=[
            Table(
                "Steps to f < 1e-6 at each optimizer's best learning rate",
                ["optimizer", *(f"kappa={k}" for k in kappas)],
                rows,
            )
        ],
        figures=figures,
    )
