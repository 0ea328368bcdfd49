"""Momentum, Nesterov (NAG), NAG's disadvantage and the lecture's Keras code.

The lecture's momentum: v_t = beta * v_{t-1} + eta * grad(w_t), w_{t+1} = w_t - v_t (beta = 0
is plain SGD; 1 / (1 - beta) is how many past gradients it remembers); NAG evaluates the gradient
at the look-ahead point: w_la = w_t - beta * v_{t-1}, v_t = beta * v_{t-1} + eta * grad(w_la),
w_{t+1} = w_t - v_t, which dampens momentum's oscillation, and can leave it in a local minimum
that momentum escapes.
"""

from __future__ import annotations

import numpy as np

from .. import surfaces
from . import Animation, Plot, Result, Table
from . import claims as C
from ._common import f_min_of, paths_of, runs_figure, trajectory
from ._text import fmt, gap, pct, plural, steps_cell, steps_phrase

TARGET = 1e-6  # steps until f - f_min stays <= TARGET


def _along_floor(path: np.ndarray, minimum) -> np.ndarray:
    """The coordinate u of each finite point along the ravine's flat direction (45 degrees)."""
    u = (path - np.asarray(minimum)) @ np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
    return u[np.isfinite(u)]


def crossings(path: np.ndarray, minimum) -> int:
    """How often the path crosses the minimum along the ravine's flat direction (its u axis):
    a count of oscillations."""
    u = _along_floor(path, minimum)
    return int(np.count_nonzero(np.diff(np.sign(u[np.abs(u) > 1e-12])) != 0))


def overshoot(path: np.ndarray, minimum) -> float:
    """The furthest the path goes past the minimum along the flat direction, relative to the
    start's distance: 0 for a path that never passes it."""
    u = _along_floor(path, minimum)
    side = np.sign(u[0])
    return float(max(0.0, -np.min(side * u)) / abs(u[0]))


def reach_phrase(step, horizon: int) -> str:
    """``"gets there in 168 steps"`` or ``"does not get there within 400 steps"``."""
    cell = steps_cell(step)
    if isinstance(cell, int):
        return f"gets there {steps_phrase(cell, horizon)}"
    return f"does not get there within {plural(horizon, 'step')}"


def crossing_phrase(n: int) -> str:
    """``"never crosses the minimum"``, ``"crosses the minimum 16 times"``."""
    return "never crosses the minimum" if n == 0 else f"crosses the minimum {plural(n, 'time')}"


def run_momentum(quick: bool = False) -> Result:
    """SGD against momentum (beta = 0.5, 0.9, 0.99) on the ravine at one learning rate: speed
    (steps until f - f_min stays below 1e-6) and oscillation (crossings of the minimum,
    overshoot)."""
    ravine = surfaces.get("ravine")
    minimum = ravine.global_minimum.point
    f_min = f_min_of(ravine)
    steps = 250 if quick else 400
    lr = 0.018  # just under GD's limit 2 / lambda_max = 0.02
    runs = [trajectory(ravine, "SGD", lr, steps, label=f"SGD lr={lr}")]
    betas = (0.5, 0.9, 0.99)
    for beta in betas:
        spec = f"SGD:momentum={beta}"
        runs.append(trajectory(ravine, spec, lr, steps, label=f"Momentum β={beta}"))
    rows, numbers = [], {}
    for r in runs:
        hit = r.steps_to(TARGET, f_min)
        rows.append(
            [
                r.label,
                steps_cell(hit),
                crossings(r.path, minimum),
                overshoot(r.path, minimum),
                gap(r.final_gap(f_min)),
            ]
        )
        numbers[f"steps to 1e-6: {r.label}"] = steps_cell(hit)
    beta0 = trajectory(ravine, "SGD:momentum=0.0", lr, steps)
    same = float(np.nanmax(np.abs(beta0.path - runs[0].path)))
    numbers["max |momentum(beta=0) - SGD|"] = same
    sgd, m5, m9, m99 = rows
    summary = (
        "The target is $f - f_{min} \\le 10^{-6}$, held to the end. With the same learning "
        f"rate {fmt(lr)}, plain SGD {reach_phrase(sgd[1], steps)}; momentum with "
        f"$\\beta = 0.9$ {reach_phrase(m9[1], steps)}: the velocity keeps accumulating along "
        "the flat floor of the ravine, where SGD's steps are tiny.\n\n"
        f"The price is oscillation: with $\\beta = 0.9$ the path {crossing_phrase(m9[2])} "
        f"(SGD {crossing_phrase(sgd[2])}) and overshoots by {pct(m9[3])} of the starting "
        f"distance; with $\\beta = 0.99$ it overshoots by {pct(m99[3])} and after "
        f"{plural(steps, 'step')} is still {fmt(m99[4])} above the minimum. With "
        f"$\\beta = 0.5$ the path {crossing_phrase(m5[2])} and {reach_phrase(m5[1], steps)}. "
        "With $\\beta = 0$ the momentum update is SGD exactly (largest "
        f"difference {fmt(same)}). Why a larger β both speeds up and oscillates, eigenvalue by "
        "eigenvalue, is the next chapter."
    )
    claims = [
        C.check("Momentum with β = 0 is SGD, bit for bit", same == 0.0, f"largest gap {same}"),
        C.check(
            f"Momentum β = 0.9 reaches 1e-6 sooner than SGD at lr = {fmt(lr)}",
            isinstance(m9[1], int) and (not isinstance(sgd[1], int) or m9[1] < sgd[1]),
            f"{fmt(m9[1])} vs {fmt(sgd[1])}",
        ),
        C.check(
            "Momentum β = 0.9 oscillates: it crosses the minimum, SGD does not",
            m9[2] > 0 and sgd[2] == 0,
            f"{m9[2]} vs {sgd[2]} crossings",
        ),
        C.check(
            "A larger β overshoots more: 0.5 < 0.9 < 0.99",
            m5[3] < m9[3] < m99[3],
            ", ".join(pct(r[3]) for r in (m5, m9, m99)),
        ),
        C.check(
            f"β = 0.99 has not reached 1e-6 after {steps} steps",
            not isinstance(m99[1], int) and m99[4] > TARGET,
            f"f - f_min = {fmt(m99[4])}",
        ),
    ]
    return Result(
        key="momentum",
        title="Momentum: speed and oscillation",
        chapter="",
        summary=summary,
        equations=[
            r"v_t = \beta\, v_{t-1} + \eta\, \nabla_w L(w_t)",
            r"w_{t+1} = w_t - v_t \qquad (\beta = 0:\ \text{SGD})",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Ravine f = 0.5 (u² + 100 v²), lr = {fmt(lr)}, {steps} steps",
                ["optimizer", "steps to 1e-6", "crossings", "overshoot", "final f − f_min"],
                [[*r[:3], pct(r[3]), r[4]] for r in rows],
                note="Steps to 1e-6: from then on f − f_min stays ≤ 1e-6 to the horizon. "
                "Crossings: how often the path passes the minimum along the ravine's floor; "
                "overshoot: how far past it, as a share of the starting distance.",
            )
        ],
        figures={
            "paths_on_the_ravine": Plot(
                runs_figure(
                    ravine,
                    runs,
                    f"Momentum on the ravine (condition number 100), lr = {fmt(lr)}",
                ),
                "SGD (black) creeps along the floor; the orange momentum paths run ahead and "
                "swing past the minimum, the more the larger β (dashed 0.9, dotted 0.99); on "
                "the right, β = 0.9's loss falls fastest while 0.99's still waves.",
            )
        },
        claims=claims,
        settings={"surface": "ravine (κ = 100)", "lr": lr, "steps": steps, "target": TARGET},
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
            label = f"{'NAG' if nesterov else 'Momentum'} β={beta}"
            spec = f"SGD:momentum={beta},nesterov={nesterov}"
            r = trajectory(ravine, spec, lr, steps, label=label)
            runs.append(r)
            hit = steps_cell(r.steps_to(TARGET, f_min))
            rows.append(
                [
                    label,
                    hit,
                    crossings(r.path, minimum),
                    overshoot(r.path, minimum),
                    gap(r.final_gap(f_min)),
                ]
            )
            numbers[f"overshoot: {label}"] = rows[-1][3]
            numbers[f"steps to 1e-6: {label}"] = hit

    # the lecture's form vs Keras's: the same points under the change of variables w_keras = w_la
    start = ravine.default_start
    ours = lecture_nag(ravine, lr, 0.9, steps, start)
    keras = trajectory(ravine, "SGD:momentum=0.9,nesterov=true", lr, steps, start=start).path
    diff = float(np.max(np.abs(ours - keras)))
    numbers["max |lecture NAG look-ahead - Keras SGD(nesterov=True)|"] = diff
    m9, n9, m99, n99 = rows
    summary = (
        "NAG looks ahead before it steps: the gradient at $w_t - \\beta v_{t-1}$ already feels "
        "the slope on the far side of the minimum and brakes. At $\\beta = 0.9$ the overshoot "
        f"falls from {pct(m9[3])} (momentum) to {pct(n9[3])} (NAG); at $\\beta = 0.99$ from "
        f"{pct(m99[3])} to {pct(n99[3])}. With less swinging, NAG with $\\beta = 0.9$ "
        f"{reach_phrase(n9[1], steps)} ($f - f_{{min}} \\le 10^{{-6}}$ to the end), "
        f"momentum {reach_phrase(m9[1], steps)}.\n\n"
        "The lecture's look-ahead equations need the gradient at a point that is not the "
        "parameter; Keras's `SGD(momentum=0.9, nesterov=True)` stores the look-ahead point as "
        "its parameter instead, and then needs only the gradient there. Run from the same "
        f"start, the two give the same points: the largest difference over {steps} steps is "
        f"{fmt(diff, 2)}, rounding."
    )
    claims = [
        C.check(
            f"NAG overshoots less than momentum at β = {beta}",
            n[3] < m[3],
            f"{pct(n[3])} vs {pct(m[3])}",
        )
        for beta, m, n in ((0.9, m9, n9), (0.99, m99, n99))
    ]
    claims += [
        C.check(
            "NAG β = 0.9 crosses the minimum no more often than momentum β = 0.9",
            n9[2] <= m9[2],
            f"{n9[2]} vs {m9[2]}",
        ),
        C.at_most(
            "The lecture's look-ahead NAG and Keras's SGD(nesterov=True) give the same points "
            "(to rounding, 1e-12)",
            diff,
            1e-12,
        ),
    ]
    return Result(
        key="nesterov",
        title="Nesterov accelerated gradient: the dampened oscillation",
        chapter="",
        summary=summary,
        equations=[
            r"w_{\text{la}} = w_t - \beta\, v_{t-1}",
            r"v_t = \beta\, v_{t-1} + \eta\, \nabla_w L(w_{\text{la}})",
            r"w_{t+1} = w_t - v_t",
            r"\text{Keras stores } p = w_{\text{la}}:\quad u \leftarrow \beta u - \eta \nabla L(p),"
            r"\quad p \leftarrow p + \beta u - \eta \nabla L(p)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Ravine, lr = {fmt(lr)}, {steps} steps",
                ["optimizer", "steps to 1e-6", "crossings", "overshoot", "final f − f_min"],
                [[*r[:3], pct(r[3]), r[4]] for r in rows],
            )
        ],
        figures={
            "momentum_vs_nag": Plot(
                runs_figure(ravine, runs, f"Momentum vs NAG on the ravine, lr = {fmt(lr)}"),
                "the blue NAG paths turn back before the orange momentum paths do, and their "
                "losses on the right settle with fewer waves, at both β.",
            )
        },
        claims=claims,
        settings={"surface": "ravine (κ = 100)", "lr": lr, "steps": steps},
    )


def run_nag_disadvantage(quick: bool = False) -> Result:
    """The lecture's disadvantage of NAG: its braking can leave it in a local minimum that
    momentum's larger swing escapes. On the tilted two-well surface, from every start on the
    local well's side and over a grid of learning rates: the share of runs that reach the
    global minimum, momentum against NAG (beta = 0.9)."""
    from ..sweep import sweep

    well = surfaces.get("two_well")
    steps = 400 if quick else 1000
    beta = 0.9
    n = 11 if quick else 21
    (x0, x1), (y0, y1) = well.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    grid = np.array([(x, y) for y in ys for x in xs])
    starts = grid[grid[:, 0] > 0.2]  # the local well's side of the ridge (x ~ 0.08)
    lrs = np.logspace(-3, -1.5, 7)
    share, numbers = {}, {}
    for name, nesterov in (("Momentum", False), ("NAG", True)):
        result = sweep(
            well,
            "SGD",
            steps=steps,
            starts=starts,
            learning_rate=lrs,
            momentum=beta,
            nesterov=nesterov,
            keep_paths=False,
        )
        basin = np.asarray(result.basin())[..., 0]  # (starts, lrs)
        share[name] = (basin == 0).mean(axis=0)
        numbers[f"share of starts reaching the global minimum: {name}"] = float((basin == 0).mean())
    lr_show = 0.005
    runs = [
        trajectory(well, f"SGD:momentum={beta}", lr_show, steps, label=f"Momentum β={beta}"),
        trajectory(
            well, f"SGD:momentum={beta},nesterov=true", lr_show, steps, label=f"NAG β={beta}"
        ),
    ]
    ends = []
    for r in runs:
        end = r.path[np.isfinite(r.path[:, 0])][-1]
        k = int(np.argmin([np.linalg.norm(end - np.array(m.point)) for m in well.minima]))
        ends.append(well.minima[k].kind)
    numbers["default start, lr=0.005: momentum ends in"] = ends[0]
    numbers["default start, lr=0.005: NAG ends in"] = ends[1]
    rows = [[fmt(lr), pct(share["Momentum"][j]), pct(share["NAG"][j])] for j, lr in enumerate(lrs)]
    total_m = numbers["share of starts reaching the global minimum: Momentum"]
    total_n = numbers["share of starts reaching the global minimum: NAG"]
    summary = (
        "The lecture lists NAG's disadvantage: the same look-ahead that damps the oscillation "
        "takes away the momentum that carries a run over a ridge, so NAG can settle in a local "
        f"minimum that momentum escapes. On the tilted double well, from the default start "
        f"with lr = {fmt(lr_show)} and $\\beta = {fmt(beta)}$, momentum ends in the "
        f"{ends[0]} minimum and NAG in the {ends[1]} one.\n\n"
        f"One start proves little, so the table counts: from the {len(starts)} grid starts on "
        f"the local well's side of the ridge, over {len(lrs)} learning rates, momentum reaches "
        f"the global minimum in {pct(total_m)} of the runs and NAG in {pct(total_n)}; at no "
        "learning rate does NAG escape more often. Mostly, though, both stay where they "
        "start: a ridge is a ridge."
    )
    claims = [
        C.check(
            f"From the default start at lr = {fmt(lr_show)}: momentum ends in the global "
            "minimum, NAG in the local one",
            ends == ["global", "local"],
            f"momentum {ends[0]}, NAG {ends[1]}",
        ),
        C.check(
            "At every learning rate of the grid NAG escapes from no more starts than momentum",
            np.all(share["NAG"] <= share["Momentum"]),
            "; ".join(f"{r[0]}: {r[2]} vs {r[1]}" for r in rows),
        ),
        C.check(
            "Over the whole grid NAG escapes less often than momentum",
            total_n < total_m,
            f"{pct(total_n)} vs {pct(total_m)}",
        ),
    ]
    return Result(
        key="nag_disadvantage",
        title="NAG's disadvantage: it can settle in a local minimum",
        chapter="",
        summary=summary,
        equations=[r"f(x, y) = (x^2 - 1)^2 + 0.3\,x + y^2"],
        numbers=numbers,
        tables=[
            Table(
                f"Share of the {len(starts)} starts with x > 0.2 that end in the global minimum, "
                f"β = {beta}, {steps} steps",
                ["learning rate", "momentum", "NAG"],
                rows,
            )
        ],
        figures={
            "two_wells": Plot(
                runs_figure(
                    well,
                    runs,
                    f"Momentum vs NAG on two wells, β = {beta}, lr = {fmt(lr_show)}",
                ),
                "both paths start at the circle on the right; the orange momentum path swings "
                "over the ridge to the global (gold) star, the blue NAG path brakes and "
                "settles in the local (white) star's well.",
            )
        },
        claims=claims,
        settings={"surface": "two_well", "beta": beta, "steps": steps, "starts": len(starts)},
    )


def keras_code(lr: float, steps: int) -> str:
    """The lecture's Keras code as optimlab runs it, with the learning rate and horizon the
    chapter uses (the test suite executes this very text)."""
    return f"""import numpy as np
import optimlab as ol   # the lecture's tf.keras.optimizers.SGD: same arguments
from optimlab.lab import surfaces

rosenbrock = surfaces.get("rosenbrock")
sgd      = ol.SGD(learning_rate={lr}, momentum=0.0, nesterov=False)
momentum = ol.SGD(learning_rate={lr}, momentum=0.9, nesterov=False)
nag      = ol.SGD(learning_rate={lr}, momentum=0.9, nesterov=True)
final = {{}}
for name, opt in (("SGD", sgd), ("Momentum", momentum), ("NAG", nag)):
    w = np.array([-1.2, 1.0])
    for step in range({steps}):
        grads = [rosenbrock.gradient(w)]
        opt.apply_gradients(zip(grads, [w]))   # updates w in place
    final[name] = float(rosenbrock.value(w))   # f_min = 0 at (1, 1)
print(final)"""


def run_keras_code(quick: bool = False) -> Result:
    """The lecture's three Keras configurations of ``SGD(learning_rate, momentum, nesterov)``
    on Rosenbrock's curved valley from (-1.2, 1)."""
    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    steps = 300 if quick else 2000
    lr = 1e-3
    keras_default = 0.01
    configs = {
        "SGD: SGD(momentum=0.0)": {"momentum": 0.0, "nesterov": False},
        "Momentum: SGD(momentum=0.9)": {"momentum": 0.9, "nesterov": False},
        "NAG: SGD(momentum=0.9, nesterov=True)": {"momentum": 0.9, "nesterov": True},
    }
    runs, rows, numbers = [], [], {}
    for label, kwargs in configs.items():
        r = trajectory(surface, "SGD", lr, steps, start=(-1.2, 1.0), label=label, **kwargs)
        runs.append(r)
        final = gap(r.final_gap(f_min))
        rows.append([label, steps_cell(r.steps_to(1e-3, f_min)), final])
        numbers[f"final f - f_min: {label}"] = final
    default = trajectory(surface, "SGD", keras_default, steps, start=(-1.2, 1.0))
    curvatures = np.linalg.eigvalsh(np.asarray(surface.hessian(np.array([1.0, 1.0]))))
    ratio = float(curvatures.max() / curvatures.min())
    numbers["SGD at Keras's default lr=0.01 diverged"] = bool(default.diverged)
    sgd, mom, nag = rows
    summary = (
        "The lecture's Keras code, run with optimlab's identical signature: "
        "`SGD(learning_rate, momentum, nesterov)` with Keras's defaults learning_rate=0.01, "
        "momentum=0.0, nesterov=False. On Rosenbrock's curved valley from (−1.2, 1) Keras's "
        f"default rate {'diverges' if default.diverged else 'does not diverge'} (at the minimum "
        f"the walls curve {fmt(ratio)} times more than the floor), so the code below uses "
        f"learning_rate={fmt(lr)}. After {plural(steps, 'step')} plain SGD is still "
        f"{fmt(sgd[2])} above the minimum, momentum {fmt(mom[2])} and NAG {fmt(nag[2])}: the "
        "velocity carries both along the curved floor."
    )
    claims = [
        C.check(
            f"SGD at Keras's default learning rate {keras_default} diverges on Rosenbrock",
            default.diverged,
        ),
        C.check(
            f"At lr = {fmt(lr)} none of the three diverges",
            not any(r.diverged for r in runs),
        ),
        C.check(
            "Momentum and NAG end closer to the minimum than plain SGD",
            mom[2] < sgd[2] and nag[2] < sgd[2],
            f"{fmt(mom[2])}, {fmt(nag[2])} vs {fmt(sgd[2])}",
        ),
    ]
    paths = paths_of(runs)
    return Result(
        key="keras_code",
        title="The Keras code: SGD(learning_rate, momentum, nesterov)",
        chapter="",
        summary=summary,
        equations=[
            r"\texttt{SGD(learning\_rate=0.01, momentum=0.0, nesterov=False)}",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Rosenbrock from (−1.2, 1), lr = {fmt(lr)}, {steps} steps",
                ["configuration", "steps to f − f_min ≤ 1e-3", "final f − f_min"],
                rows,
            )
        ],
        figures={
            "three_keras_configurations": Plot(
                runs_figure(
                    surface, runs, f"Keras SGD configurations on Rosenbrock, lr = {fmt(lr)}"
                ),
                "all three fall into the valley at once; then SGD (black) crawls along the "
                "banana while momentum (orange) and NAG (blue) run to the star at (1, 1).",
            )
        },
        code=keras_code(lr, steps),
        animations={
            "race": Animation(
                surface,
                paths,
                "the three dots start together; watch the black SGD dot fall behind in the "
                "curved valley.",
            )
        },
        claims=claims,
        settings={"surface": "rosenbrock", "start": "(−1.2, 1)", "lr": lr, "steps": steps},
    )
