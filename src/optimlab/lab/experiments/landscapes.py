"""The lecture's challenges on 2-D surfaces: the learning rate, convex vs non-convex, local
minima, saddle points and high curvature. Grids of runs are one vectorized sweep each."""

from __future__ import annotations

import numpy as np

from .. import surfaces
from . import Plot, Result, Table
from . import claims as C
from ._common import f_min_of, paths_of, runs_figure, trajectory
from ._text import DIVERGED, NOT_REACHED, fmt, gap, pct, plural, steps_cell, steps_phrase


def _grid_starts(surface, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = surface.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=-1)


def run_reading_graphs(quick: bool = False) -> Result:
    """How to read the tour's figures, on one run whose numbers are known in closed form:
    gradient descent on the ravine (curvatures 1 and 100). Contours: lines close together
    are steep; the loss on a log axis: a straight line is a constant factor per step, and its
    slope is that factor; the gradient norm: it shrinks by the square root of the loss's factor;
    a wavy curve: oscillation."""
    ravine = surfaces.get("ravine")
    f_min = f_min_of(ravine)
    kappa, lr = 100.0, 0.018
    steps = 400
    runs = [
        trajectory(ravine, "SGD", lr, steps, label=f"SGD lr={lr}"),
        trajectory(ravine, "SGD:momentum=0.9", lr, steps, label=f"Momentum β=0.9 lr={lr}"),
    ]
    sgd = runs[0]
    a, b = 300, steps  # late steps: the steep direction has died out, the floor remains
    factor = float((sgd.losses[b] - f_min) / (sgd.losses[a] - f_min)) ** (1.0 / (b - a))
    grad_factor = float(sgd.grad_norms[b] / sgd.grad_norms[a]) ** (1.0 / (b - a))
    theory = (1.0 - lr * 1.0) ** 2  # the floor's curvature is 1: error x (1 - lr) per step
    per_decade = float(np.log(10.0) / -np.log(factor))
    # steepness: the points of the level f = 1 along the floor (u) and across it (v)
    c, s_ = np.cos(np.pi / 4), np.sin(np.pi / 4)
    on_floor = np.sqrt(2.0) * np.array([c, s_])
    on_wall = np.sqrt(2.0 / kappa) * np.array([-s_, c])
    steep = float(
        np.linalg.norm(ravine.gradient(on_wall)) / np.linalg.norm(ravine.gradient(on_floor))
    )
    numbers = {
        "loss factor per step, SGD, steps 300-400": factor,
        "theory (1 - lr * lambda_min)^2": theory,
        "gradient-norm factor per step": grad_factor,
        "steps per tenfold fall of the loss": per_decade,
        "|grad f| across / along the floor, at f = 1": steep,
    }
    summary = (
        "Every chapter shows the same kind of figure; here is how to read it, on a run whose "
        f"numbers are known exactly: gradient descent with lr = {fmt(lr)} on the ravine "
        "$f = \\tfrac12 (u^2 + 100 v^2)$.\n\n"
        "**Left, the contours.** Each line is one height of $f$, log-spaced, so the lines bunch "
        "where the surface is steep: across the ravine they are "
        f"{fmt(np.sqrt(kappa))} times closer than along its floor, and the slope there is "
        f"{fmt(steep)} times larger ($\\sqrt{{100}}$). The path starts at the circle and ends "
        "at the square; the gold star is the global minimum.\n\n"
        "**Top right, the loss above the minimum, on a log axis.** Each gridline is a factor "
        "of 10. A straight stretch means the loss shrinks by the same factor every step, and "
        f"its slope is that factor: SGD's late straight line falls by a factor of "
        f"{fmt(factor, 6)} per step, one gridline every {fmt(per_decade)} steps, which is "
        f"$(1 - \\eta \\lambda_{{min}})^2 = {fmt(theory, 6)}$. A wavy curve (momentum, "
        "orange) is a path that swings back and forth across the minimum; read its envelope.\n\n"
        "**Bottom right, the gradient norm** $\\lVert \\nabla f \\rVert$, how steep the "
        "ground is under the current point. It goes to 0 at any stationary point, a minimum "
        'or a saddle, so a small gradient alone does not say "done". For SGD here it shrinks '
        f"by {fmt(grad_factor, 6)} per step, the square root of the loss's factor, because "
        "the loss is quadratic in the distance and the gradient linear."
    )
    claims = [
        C.close(
            "The late loss curve's slope is (1 − η λ_min)² per step (relative 1e-6)",
            factor,
            theory,
            rel=1e-6,
        ),
        C.close(
            "The gradient norm shrinks by the square root of the loss's factor (relative 1e-6)",
            grad_factor,
            np.sqrt(theory),
            rel=1e-6,
        ),
        C.close(
            "At the same height the slope across the ravine is √κ = 10 times the slope along it",
            steep,
            np.sqrt(kappa),
            rel=1e-9,
        ),
        C.check(
            "Momentum's loss curve is wavy: it rises again at some steps, SGD's never does",
            np.any(np.diff(runs[1].losses) > 0) and not np.any(np.diff(sgd.losses) > 0),
        ),
    ]
    fig = runs_figure(ravine, runs, "How to read the figures: gradient descent on the ravine")
    return Result(
        key="reading_graphs",
        title="How to read the graphs",
        chapter="",
        summary=summary,
        equations=[
            r"f - f_{min} \approx C\, q^t \;\Rightarrow\; \log_{10}(f - f_{min}) "
            r"\approx \log_{10} C + t \log_{10} q",
            r"\text{gradient descent on a quadratic: } q = (1 - \eta \lambda_{min})^2",
        ],
        numbers=numbers,
        figures={
            "anatomy_of_a_figure": Plot(
                fig,
                "left: the contours crowd across the ravine (steep) and spread along it "
                "(flat); top right: SGD's black line turns straight once the steep direction "
                "has settled, the orange momentum curve waves; bottom right: the gradient "
                "norm falls with half the loss's slope.",
            )
        },
        claims=claims,
        settings={"surface": "ravine (κ = 100)", "lr": lr, "steps": steps},
    )


def run_learning_rate(quick: bool = False) -> Result:
    """Gradient descent on the ravine (curvatures 1 and 100) with a learning rate too small,
    about right and too large (just above 2 / lambda_max = 0.02), and the U-shaped sensitivity
    curve of the final loss over a log grid, against its closed form."""
    from ...viz import lines_figure
    from ..sweep import sweep

    ravine = surfaces.get("ravine")
    f_min = f_min_of(ravine)
    kappa = 100.0
    steps = 450 if quick else 600
    chosen = {"too small": 0.001, "about right": 0.018, "too large": 0.0205}
    runs, rows, numbers = [], [], {}
    for name, lr in chosen.items():
        r = trajectory(ravine, "SGD", lr, steps, label=f"SGD lr={lr} ({name})")
        runs.append(r)
        final = gap(r.final_gap(f_min))
        rows.append(
            [r.label, steps_cell(r.steps_to(1e-6, f_min)), final, DIVERGED if r.diverged else "no"]
        )
        numbers[f"final f - f_min, {name} (lr={lr})"] = final
    lrs = np.logspace(-4, -1, 31 if quick else 61)
    result = sweep(ravine, "SGD", steps=steps, learning_rate=lrs, keep_paths=False)
    final = np.asarray(result.final_loss, float).reshape(len(lrs)) - f_min
    diverged = np.asarray(result.diverged).reshape(len(lrs))
    # the closed form: each eigen-direction shrinks by (1 - lr * lambda) per step
    x0 = np.asarray(ravine.default_start, float)
    u0 = (x0[0] + x0[1]) / np.sqrt(2.0)
    v0 = (-x0[0] + x0[1]) / np.sqrt(2.0)
    with np.errstate(over="ignore"):
        exact = 0.5 * (
            u0**2 * (1 - lrs) ** (2 * steps) + kappa * v0**2 * (1 - kappa * lrs) ** (2 * steps)
        )
    stable = ~diverged & (final < ravine.value(x0) - f_min)  # ended below its start
    largest = float(lrs[np.flatnonzero(stable)[-1]])
    above = lrs[lrs > largest]
    limit = 2.0 / kappa
    best = int(np.argmin(np.where(diverged, np.inf, final)))
    best_exact = int(np.argmin(exact))
    both = stable & np.isfinite(exact)
    worst_rel = float(np.max(np.abs(final[both] - exact[both]) / np.maximum(exact[both], 1e-300)))
    numbers["largest lr on the grid that converges"] = largest
    numbers["best lr on the grid"] = float(lrs[best])
    numbers["largest relative gap, measured vs closed-form final loss"] = worst_rel
    shown = np.where(diverged, np.nan, np.maximum(final, 1e-16))
    ceiling = 1e3 * float(ravine.value(x0) - f_min)
    figures = {
        "three_learning_rates": Plot(
            runs_figure(
                ravine,
                runs,
                "Gradient descent on the ravine: learning rate too small, right, too large",
            ),
            "the small rate's path (solid) stops short of the star; the right one (dashed) "
            "zig-zags once and runs down the floor; the large one (dotted) zig-zags ever wider "
            "across the ravine until it leaves the plot.",
        ),
        "sensitivity": Plot(
            lines_figure(
                {  # the closed form past the cliff, above 1000x the start, is not drawn
                    "SGD": (lrs, shown),
                    "closed form": (
                        lrs,
                        np.where(exact <= ceiling, np.maximum(exact, 1e-16), np.nan),
                    ),
                },
                xlabel="learning rate",
                ylabel=f"f - f_min after {steps} steps (floor 1e-16)",
                title=f"The cliff at 2 / λ_max = {fmt(limit)}: largest stable rate on the grid "
                f"{fmt(largest, 4)}",
                log_x=True,
                log_y=True,
            ),
            "the loss falls as the rate grows, then jumps up a cliff just past 2/λ_max; the "
            "measured points sit on the closed-form curve.",
        ),
    }
    small, right, large = rows
    summary = (
        "$w_{n} = w_0 - \\eta\\, \\partial L/\\partial w$: the step is the learning rate "
        f"times the slope. Too small and progress is slow: lr = {fmt(chosen['too small'])} ends "
        f"{fmt(small[2])} above the minimum after {plural(steps, 'step')}. About right and it "
        f"converges: lr = {fmt(chosen['about right'])} gets within 1e-6 "
        f"{steps_phrase(right[1], steps)}. Too large and every step overshoots the steep "
        "direction by more than it corrects: lr = "
        f"{fmt(chosen['too large'])} "
        f"{'diverges' if runs[2].diverged else 'ends at ' + fmt(large[2])}."
        "\n\n"
        "On a quadratic each eigen-direction of curvature $\\lambda$ shrinks by "
        "$1 - \\eta\\lambda$ per step, so the limit is $\\eta < 2/\\lambda_{max}$ = "
        f"{fmt(limit)}; the largest rate of the grid that converges is {fmt(largest, 4)}"
        + (f", the next one, {fmt(above[0], 4)}, diverges." if above.size else ".")
        + f" The best rate for this horizon is {fmt(lrs[best])}: not the rate "
        "$2/(\\lambda_{min} + \\lambda_{max})$ that is fastest in the long run, because "
        f"after {steps} steps the steep direction, nearly at its limit, has not yet settled. "
        "The closed form $f_T = \\tfrac12 \\sum_i \\lambda_i (1 - \\eta\\lambda_i)^{2T} "
        "x_{i,0}^2$ predicts every point of the curve."
    )
    claims = [
        C.check(
            f"The largest converging rate of the grid is below 2/λ_max = {fmt(limit)}, and "
            "the next rate of the grid is above it",
            largest < limit and (above.size == 0 or above[0] > limit),
            f"{fmt(largest, 4)} < {fmt(limit)}" + (f" < {fmt(above[0], 4)}" if above.size else ""),
        ),
        C.check(
            "The measured best rate of the grid is the closed form's best",
            best == best_exact,
            f"{fmt(lrs[best])} vs {fmt(lrs[best_exact])}",
        ),
        C.at_most(
            "Every converging run's final loss matches the closed form (relative 1e-6)",
            worst_rel,
            1e-6,
        ),
        C.check(f"lr = {chosen['too large']} diverges", runs[2].diverged),
        C.check(
            f"lr = {chosen['about right']} reaches 1e-6 and lr = {chosen['too small']} does not",
            isinstance(right[1], int) and not isinstance(small[1], int),
        ),
        C.quoted(
            "The sensitivity figure's title and the text quote the same largest stable rate",
            fmt(largest, 4),
            figure=C.figure_text(figures["sensitivity"].figure),
            text=summary,
        ),
    ]
    return Result(
        key="learning_rate",
        title="The learning rate: too small, too large",
        chapter="",
        summary=summary,
        equations=[
            r"w_n = w_0 - \eta \frac{\partial L}{\partial w}",
            r"\text{quadratic: } x_{i,t+1} = (1 - \eta \lambda_i)\, x_{i,t}"
            r" \quad\Rightarrow\quad \text{stable iff } 0 < \eta < 2/\lambda_{max}",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Ravine f = 0.5 (u² + 100 v²), gradient descent",
                ["run", "steps to 1e-6", "final f − f_min", "diverged"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"surface": "ravine (κ = 100)", "steps": steps, "grid": f"{len(lrs)} rates"},
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
    lr, steps = 0.01, 400
    runs = [("SGD", "SGD", {}, lr, steps)]
    figures, rows, numbers = {}, [], {}
    shares = {}
    for name in ("booth", "himmelblau"):
        surface = surfaces.get(name)
        xs, ys, maps = _basin_fractions(surface, runs, n)
        basins = maps["SGD"]
        reached = sorted({int(b) for b in basins.ravel() if b >= 0})
        share = [float(np.mean(basins == k)) for k in range(len(surface.minima))]
        shares[name] = share
        rows.append(
            [
                surface.title,
                len(surface.minima),
                len(reached),
                pct(float(np.mean(basins < 0))),
                ", ".join(pct(s) for s in share),
            ]
        )
        numbers[f"distinct minima reached from {n}x{n} starts: {surface.title}"] = len(reached)
        figures[f"basins_{name}"] = Plot(
            basin_map(
                surface,
                xs,
                ys,
                basins,
                title=f"{surface.title}: where gradient descent (lr={fmt(lr)}) ends from each "
                "start",
            ),
            "each cell is a starting point, coloured by the minimum gradient descent ends in: "
            + (
                "one colour everywhere on the convex surface."
                if name == "booth"
                else "four regions, one per minimum, with borders along the ridges between them."
            ),
        )
    booth, himmel = rows
    summary = (
        "A convex function has one basin: every start ends at the same minimum. On Booth's "
        f"function gradient descent reaches {plural(booth[2], 'minimum', 'minima')} from all "
        f"{fmt(n * n)} starts of the grid. A non-convex one can have several: on Himmelblau's "
        "function the same optimizer reaches "
        f"{plural(himmel[2], 'different minimum', 'different minima')} "
        f"({himmel[4]} of the starts), depending only on where it starts. For a linear model "
        "(a convex loss) the starting point does not matter; for a neural network "
        "(non-convex) it does."
    )
    claims = [
        C.check(
            "Convex Booth: every start of the grid ends in its one minimum",
            shares["booth"] == [1.0],
            f"{booth[4]}",
        ),
        C.check(
            "Non-convex Himmelblau: gradient descent reaches all four minima from the grid",
            himmel[2] == 4 and himmel[1] == 4,
            f"{himmel[2]} of {himmel[1]} minima",
        ),
    ]
    return Result(
        key="convexity",
        title="Convex vs non-convex",
        chapter="",
        summary=summary,
        equations=[
            r"\text{convex: } f(a x + (1-a) y) \le a f(x) + (1-a) f(y),\ 0 \le a \le 1"
            r" \;\Rightarrow\; \text{every local minimum is global}"
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Gradient descent from a {n}×{n} grid of starts, lr = {fmt(lr)}, {steps} steps",
                ["surface", "minima", "reached", "share not converged", "share per minimum"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"lr": lr, "steps": steps, "grid": f"{n}×{n}"},
    )


RASTRIGIN_OPTIMIZERS = [
    ("SGD", "SGD", {}),
    ("Momentum β=0.9", "SGD", {"momentum": 0.9}),
    ("Momentum β=0.99", "SGD", {"momentum": 0.99}),
    ("Adam", "Adam", {}),
]


def run_local_minima(quick: bool = False) -> Result:
    """The two-well surface: gradient descent stops in the nearer, shallower well; momentum can
    carry over the ridge. On Rastrigin: the share of random starts that reach the global
    minimum, per optimizer, at its tuned learning rate."""
    from ..sweep import sweep
    from ._tuning import tune

    well = surfaces.get("two_well")
    steps = 300 if quick else 1000
    runs = [
        trajectory(well, "SGD", 0.02, steps, label="SGD lr=0.02"),
        trajectory(well, "Momentum", 0.02, steps, label="Momentum β=0.9 lr=0.02"),
        trajectory(well, "Adam", 0.05, steps, label="Adam lr=0.05"),
    ]
    numbers, rows = {}, []
    for r in runs:
        end = r.path[np.isfinite(r.path[:, 0])][-1]
        k = int(np.argmin([np.linalg.norm(end - np.array(m.point)) for m in well.minima]))
        kind = well.minima[k].kind
        numbers[f"two_well, ends in the minimum: {r.label}"] = kind
        rows.append([r.label, kind, float(r.losses[np.isfinite(r.losses)][-1])])

    rastrigin = surfaces.get("rastrigin")
    rng = np.random.default_rng(0)
    (x0, x1), (y0, y1) = rastrigin.domain
    count = 100  # cheap: quick keeps them (30 starts cannot tell momentum from SGD)
    starts = np.column_stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)])
    share_rows = []
    for label, base, kwargs in RASTRIGIN_OPTIMIZERS:
        kept = {}

        def score(lrs, base=base, kwargs=kwargs, kept=kept):
            result = sweep(
                rastrigin, base, steps=steps, starts=starts, learning_rate=lrs,
                keep_paths=False, **kwargs,
            )  # fmt: skip
            final = np.asarray(result.final_loss, float).reshape(count, len(lrs))
            final = np.where(np.asarray(result.diverged).reshape(final.shape), np.inf, final)
            basin = np.asarray(result.basin()).reshape(count, len(lrs))
            for j, lr in enumerate(lrs):
                kept[float(lr)] = (final[:, j], basin[:, j])
            return np.median(final, axis=0)

        tuned = tune(score, np.logspace(-4, 0, 9))
        final, basin = kept[tuned.learning_rate]
        share = float(np.mean(basin == 0))
        share_rows.append(
            [label, tuned.learning_rate, pct(share), float(np.median(final)), tuned.on_edge]
        )
        numbers[f"Rastrigin, {count} random starts, share at the global minimum: {label}"] = share
        numbers[f"Rastrigin, median final f: {label}"] = float(np.median(final))
    figures = {
        "two_well": Plot(
            runs_figure(well, runs, "Two wells: the nearer, shallower one traps gradient descent"),
            "all three start at the circle on the right: black SGD and vermillion Adam stop "
            "in the local well (white star), orange momentum swings over the ridge to the "
            "global one (gold star).",
        )
    }
    sgd, mom, adam = rows
    medians = {r[0]: r[3] for r in share_rows}
    summary = (
        "Where the gradient is 0 gradient descent stops, whether or not that is the best "
        f"point. From the same start on the two-well surface SGD ends in the {sgd[1]} "
        f"minimum, momentum in the {mom[1]} one and Adam in the {adam[1]} one: momentum's "
        "velocity carries it over the ridge.\n\n"
        f"Rastrigin's function has a local minimum near every integer point. From {count} "
        "random starts, each optimizer at the learning rate with the best median final f "
        "(grid 1e-4 .. 1, widened at its edge): "
        + "the share that reaches the global minimum is "
        + ", ".join(f"{r[2]} for {r[0]}" for r in share_rows)
        + ". So many local minima trap every first-order method; momentum only rolls over the "
        f"smallest bumps (median final f {fmt(medians['Momentum β=0.9'])} against SGD's "
        f"{fmt(medians['SGD'])})."
    )
    claims = [
        C.check(
            "Two wells: SGD stops in the local minimum, momentum reaches the global one",
            sgd[1] == "local" and mom[1] == "global",
        ),
        C.check(
            "Rastrigin: no optimizer reaches the global minimum from more than 5% of the starts",
            all(
                numbers[f"Rastrigin, {count} random starts, share at the global minimum: {r[0]}"]
                <= 0.05
                for r in share_rows
            ),
            ", ".join(f"{r[0]} {r[2]}" for r in share_rows),
        ),
        C.check(
            "Rastrigin: momentum β = 0.9 ends lower than SGD (median final f)",
            medians["Momentum β=0.9"] < medians["SGD"],
            f"{fmt(medians['Momentum β=0.9'])} vs {fmt(medians['SGD'])}",
        ),
        C.check(
            "No tuned learning rate is left on the edge of its grid",
            not any(r[4] for r in share_rows),
        ),
    ]
    return Result(
        key="local_minima",
        title="Local minima",
        chapter="",
        summary=summary,
        equations=[
            r"\frac{\partial L}{\partial w} = 0 \;\Rightarrow\; w_{n} = w_0 - \eta \cdot 0 = w_0"
        ],
        numbers=numbers,
        tables=[
            Table("Two wells, from the default start", ["optimizer", "ends in", "final f"], rows),
            Table(
                f"Rastrigin, {count} random starts, {steps} steps",
                [
                    "optimizer",
                    "tuned lr",
                    "share at the global minimum",
                    "median final f",
                    "lr on the grid's edge",
                ],
                [[*r[:4], "yes" if r[4] else "no"] for r in share_rows],
                note="Tuned: the learning rate with the lowest median final f over the starts; "
                "among equal medians the largest rate.",
            ),
        ],
        figures=figures,
        claims=claims,
        settings={"steps": steps, "Rastrigin starts": count, "seed": 0},
    )


def run_saddle_points(quick: bool = False) -> Result:
    """x^2 - y^2 from (1, eps): how long each optimizer needs to leave the saddle, against eps
    (gradient descent needs exactly ceil(log(1/eps) / log(1 + 2 lr)) steps; Adam's
    normalized step hardly cares how small the gradient is)."""
    from ...viz import contour_with_paths, lines_figure, surface_3d
    from ..contenders import resolve
    from ..sweep import sweep

    saddle = surfaces.get("saddle")
    steps = 1000  # SGD needs 931 from eps = 1e-8; one vectorized sweep per optimizer
    epsilons = np.logspace(-1, -8, 8)
    lr = 0.01
    specs = [("SGD", "SGD"), ("Momentum", "Momentum"), ("Adam", "Adam")]
    curves, rows, numbers = {}, [], {}
    escapes = {}
    starts = np.column_stack([np.ones_like(epsilons), epsilons])
    for label, spec in specs:
        _, base, kwargs = resolve(spec)
        result = sweep(saddle, base, steps=steps, starts=starts, learning_rate=lr, **kwargs)
        ys = np.abs(result.paths[:, :, 0, 0, 1])  # (steps + 1, starts)
        out = ys > 1.0
        escape = [int(np.argmax(out[:, i])) if out[:, i].any() else NOT_REACHED
                  for i in range(len(epsilons))]  # fmt: skip
        escapes[label] = escape
        curves[f"{label} lr={lr}"] = (
            epsilons,
            np.array([e if isinstance(e, int) else np.nan for e in escape], float),
        )
        rows.append([label, *escape])
        numbers[f"steps to leave the saddle from eps=1e-8: {label}"] = escape[-1]
    theory = [int(np.ceil(np.log(1 / e) / np.log(1 + 2 * lr))) for e in epsilons]
    rows.append(["SGD, theory ⌈log(1/ε) / log(1 + 2η)⌉", *theory])
    shown = [
        trajectory(saddle, spec, lr, 400, start=(1.0, 1e-3), label=f"{label} lr={lr}")
        for label, spec in specs
    ]
    figures = {
        "escape_time": Plot(
            lines_figure(
                curves,
                xlabel="start offset ε from the saddle's ridge",
                ylabel="steps until |y| > 1",
                title="Leaving the saddle of x² − y²",
                log_x=True,
                log_y=False,
            ),
            "SGD's line climbs by the same number of steps per decade of ε (a straight "
            "line on this log axis), momentum's more gently, Adam's stays flat.",
        ),
        "paths": Plot(
            contour_with_paths(saddle, paths_of(shown), title="Paths from (1, 0.001) on x² − y²"),
            "all three first slide towards the saddle point at the centre along x, then "
            "turn away along y; Adam turns first.",
        ),
        "saddle_in_3d": Plot(
            surface_3d(
                saddle,
                paths_of(shown),
                title="The saddle x² − y²: a minimum along x, a maximum along y",
            ),
            "the surface curves up along x and down along y; the paths run down into the "
            "saddle and leave down the slope.",
        ),
    }
    sgd, mom, adam = (escapes[k] for k in ("SGD", "Momentum", "Adam"))
    summary = (
        "At a saddle point the gradient is 0 although the function goes down in some "
        "direction. Started $\\varepsilon$ away from the ridge, gradient descent's distance "
        "from it grows by $1 + 2\\eta$ per step, so leaving takes "
        "$\\lceil \\log(1/\\varepsilon) / \\log(1 + 2\\eta) \\rceil$ steps: "
        f"{fmt(sgd[-1])} from $\\varepsilon = 10^{{-8}}$ with lr = {fmt(lr)}, exactly the "
        f"theory. Momentum accelerates the escape ({fmt(mom[-1])} steps); Adam divides by the "
        "gradient's own size, so a tiny gradient still gives a full step "
        f"({fmt(adam[-1])} steps, {fmt(adam[0])} from $\\varepsilon = 0.1$)."
    )
    claims = [
        C.check(
            "SGD's escape time is the theory's ⌈log(1/ε)/log(1 + 2η)⌉ at every ε",
            sgd == theory,
            ", ".join(map(str, sgd)),
        ),
        C.check(
            "Momentum leaves sooner than SGD at every ε",
            all(
                isinstance(m, int) and isinstance(g, int) and m < g
                for m, g in zip(mom, sgd, strict=True)
            ),
        ),
        C.check(
            "Adam's escape time changes by less than 10% from ε = 0.1 to the smallest ε, "
            "SGD's grows more than fivefold",
            all(isinstance(a, int) for a in adam)
            and (max(adam) - min(adam)) < 0.1 * max(adam)
            and sgd[-1] > 5 * sgd[0],
            f"Adam {min(adam)}..{max(adam)}, SGD {sgd[0]}..{sgd[-1]}",
        ),
    ]
    return Result(
        key="saddle_points",
        title="Saddle points",
        chapter="",
        summary=summary,
        equations=[
            r"f = x^2 - y^2,\quad \nabla f = (2x, -2y) = 0 \text{ at } (0, 0)",
            r"\text{SGD: } y_t = (1 + 2\eta)^t\, \varepsilon",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Steps until |y| > 1, by start offset ε",
                ["optimizer", *(f"ε = {e:.0e}" for e in epsilons)],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"lr": lr, "steps": steps, "start": "(1, ε)"},
    )


def run_high_curvature(quick: bool = False) -> Result:
    """Rotated quadratics with condition number kappa = 1 .. 1000: the steps each optimizer
    needs until f stays below 1e-6 at its best learning rate (gradient descent: about
    proportional to kappa)."""
    from ...viz import lines_figure
    from ..sweep import sweep
    from ._tuning import tune

    kappas = [1, 10, 100, 1000] if not quick else [1, 10, 100]
    steps = 6000 if not quick else 1500
    target = 1e-6
    rows, curves, numbers = [], {}, {}
    configs = [
        ("SGD", "SGD", {}),
        ("Momentum β=0.9", "SGD", {"momentum": 0.9}),
        ("Adam", "Adam", {}),
    ]
    edges = []
    for label, base, kwargs in configs:
        needed = []
        for kappa in kappas:
            surface = surfaces.quadratic(condition_number=kappa, name=f"quadratic_{kappa}")

            def score(lrs, surface=surface, base=base, kwargs=kwargs):
                result = sweep(surface, base, steps=steps, learning_rate=lrs, **kwargs)
                hits = np.asarray(result.steps_to(target)).reshape(len(lrs)).astype(float)
                return np.where(hits < 0, np.inf, hits)

            tuned = tune(score, np.logspace(-4, 0, 17 if quick else 33))
            edges.append(tuned.on_edge)
            best = tuned.scores[tuned.index]
            needed.append(int(best) if np.isfinite(best) else NOT_REACHED)
        curves[label] = (
            np.array(kappas, float),
            np.array([n if isinstance(n, int) else np.nan for n in needed], float),
        )
        rows.append([label, *needed])
        numbers[f"steps to 1e-6 at kappa={kappas[-1]} (best lr): {label}"] = needed[-1]
    figures = {
        "steps_vs_condition_number": Plot(
            lines_figure(
                curves,
                xlabel="condition number κ = λ_max / λ_min",
                ylabel="steps until f stays below 1e-6 (best learning rate on a grid)",
                title="High curvature: the ravine's condition number sets the pace",
                log_x=True,
                log_y=True,
            ),
            "SGD's black line rises with slope 1 on these log axes (steps ∝ κ); momentum's "
            "and Adam's rise far more slowly.",
        )
    }
    sgd, mom, adam = rows
    summary = (
        "In a ravine the curvature across is much larger than along. The learning rate must "
        "stay below $2/\\lambda_{max}$ for the steep direction, so the flat direction moves "
        "by only about $\\lambda_{min}/\\lambda_{max} = 1/\\kappa$ of the way per step: "
        "gradient descent needs about $\\kappa$ times more steps. Measured at each "
        f"optimizer's best learning rate: SGD needs {plural(sgd[1], 'step')} at "
        f"$\\kappa = 1$ and {fmt(sgd[-1])} at $\\kappa = {kappas[-1]}$, "
        f"{fmt(sgd[-1] / sgd[-2])} times its count at $\\kappa = {kappas[-2]}$; momentum "
        f"{fmt(mom[-1])} and Adam {fmt(adam[-1])}. With a fixed $\\beta = 0.9$ momentum "
        f"is slower than SGD on a round bowl ({fmt(mom[1])} steps at $\\kappa = 1$): it "
        "overshoots where no speed-up is needed; the chapter on why momentum works tunes "
        "$\\beta$ to $\\kappa$."
    )
    claims = [
        C.check(
            f"SGD's steps grow about like κ: from κ = {kappas[-2]} to {kappas[-1]} they grow "
            "by a factor between 7 and 13",
            isinstance(sgd[-1], int) and 7 <= sgd[-1] / sgd[-2] <= 13,
            f"factor {fmt(sgd[-1] / sgd[-2])}",
        ),
        C.check(
            f"At κ = {kappas[-1]} momentum and Adam need fewer steps than SGD",
            mom[-1] < sgd[-1] and adam[-1] < sgd[-1],
        ),
        C.check("No tuned learning rate is left on the edge of its grid", not any(edges)),
    ]
    return Result(
        key="high_curvature",
        title="High curvature: ravines",
        chapter="",
        summary=summary,
        equations=[
            r"f = \tfrac12 (u^2 + \kappa v^2) \text{ rotated by } 45^\circ,\quad"
            r" \eta < 2/\kappa"
        ],
        numbers=numbers,
        tables=[
            Table(
                "Steps until f stays below 1e-6, at each optimizer's best learning rate",
                ["optimizer", *(f"κ = {k}" for k in kappas)],
                rows,
                note="Best learning rate: the fewest steps on a log grid from 1e-4 to 1 "
                "(widened at its edge); ties go to the largest rate.",
            )
        ],
        figures=figures,
        claims=claims,
        settings={"steps": steps, "target": target},
    )
