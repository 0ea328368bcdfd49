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
from . import Plot, Result, Table
from . import claims as C
from ._common import f_min_of, runs_figure, swept
from ._text import fmt, gap, plural, steps_cell, steps_phrase


def effective_rates(surface, run) -> np.ndarray:
    """Per step and coordinate, |p_{t+1} - p_t| / |g_t|: the learning rate each coordinate
    actually got (for Adagrad and RMSprop exactly eta / (sqrt(G or v) + eps)); NaN where g = 0."""
    path = run.path
    grads = surface.gradient(path[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.abs(np.diff(path, axis=0)) / np.abs(grads)
    return np.where(np.abs(grads) > 0, rate, np.nan)


def accumulate(grads: np.ndarray, eta: float, kind: str, eps: float = 1e-12) -> np.ndarray:
    """The steps of Adagrad's update for a given gradient sequence, with its accumulator as
    the lecture writes it (``"square"``: G_t = sum g^2, step eta g / sqrt(G_t)) or with the
    absolute value instead (``"abs"``: A_t = sum |g|, step eta g / A_t)."""
    grads = np.asarray(grads, float)
    if kind == "square":
        return eta * grads / (np.sqrt(np.cumsum(grads**2)) + eps)
    return eta * grads / (np.cumsum(np.abs(grads)) + eps)


def _descend(kind: str, eta: float, x0: float, curvature: float, steps: int) -> np.ndarray:
    """x_0..x_T of the update on f = curvature x^2 / 2 (gradient curvature * x) with the
    accumulator ``kind`` (see :func:`accumulate`)."""
    x = np.empty(steps + 1)
    x[0] = x0
    total = 0.0
    for t in range(steps):
        g = curvature * x[t]
        total += g * g if kind == "square" else abs(g)
        scale = np.sqrt(total) if kind == "square" else total
        x[t + 1] = x[t] - eta * g / (scale + 1e-12)
    return x


def run_adagrad_square(quick: bool = False) -> Result:
    """Why Adagrad accumulates squared gradients rather than their absolute values: both give
    a size without a sign, but sqrt(sum g^2) grows like sqrt(t) for steady gradients while
    sum |g| grows like t, so the absolute-value version's steps shrink like 1/t and its total
    travel is bounded by eta (1 + ln T): it can stop short of a minimum it would need to walk to.
    """
    from ...viz import lines_figure

    steps = 1000
    eta = 1.0
    t = np.arange(1, steps + 1)
    constant = np.full(steps, 3.0)  # a steady slope: the same gradient every step
    square = np.cumsum(accumulate(constant, eta, "square"))
    absolute = np.cumsum(accumulate(constant, eta, "abs"))
    theory_square = eta * np.cumsum(1.0 / np.sqrt(t))
    theory_abs = eta * np.cumsum(1.0 / t)
    scaled = np.cumsum(accumulate(100 * constant, eta, "square"))
    scaled_abs = np.cumsum(accumulate(100 * constant, eta, "abs"))
    x0, curvature = 10.0, 1.0
    walk = {kind: _descend(kind, eta, x0, curvature, steps) for kind in ("square", "abs")}
    final = {kind: abs(float(path[-1])) for kind, path in walk.items()}
    bound = eta * (1.0 + np.log(steps))
    numbers = {
        "travel after T steps, square": float(square[-1]),
        "travel after T steps, abs": float(absolute[-1]),
        "|x_T| on x^2/2 from x_0 = 10, square": final["square"],
        "|x_T| on x^2/2 from x_0 = 10, abs": final["abs"],
    }
    rows = [
        [f"steady gradient, distance after {steps} steps", float(square[-1]),
         float(absolute[-1])],
        [f"f = x²/2 from x₀ = {fmt(x0)}: |x| after {steps} steps", final["square"],
         final["abs"]],
    ]  # fmt: skip
    figures = {
        "travel": Plot(
            lines_figure(
                {
                    "G = Σ g², step η g/√G": (t, square),
                    "A = Σ |g|, step η g/A": (t, absolute),
                },
                xlabel="step t",
                ylabel="distance travelled Σ |step|",
                title=f"Steady gradient: √t against ln t (after {steps} steps: "
                f"{fmt(square[-1])} vs {fmt(absolute[-1])})",
                log_x=True,
                log_y=True,
            ),
            "the square's line keeps rising with slope 1/2 on these log axes; the absolute "
            "value's bends over: it covers barely more ground at step 1,000 than at step 100.",
        ),
        "walk_to_the_minimum": Plot(
            lines_figure(
                {
                    "G = Σ g²": (np.arange(steps + 1), np.abs(walk["square"]) + 1e-16),
                    "A = Σ |g|": (np.arange(steps + 1), np.abs(walk["abs"]) + 1e-16),
                },
                xlabel="step t",
                ylabel="distance to the minimum |x| (floor 1e-16)",
                title=f"f = x²/2 from x₀ = {fmt(x0)}, η = {fmt(eta)}",
                log_x=True,
                log_y=True,
            ),
            "the square's line drops to the minimum; the absolute value's flattens out "
            "above 1: it has run out of steps before it got there.",
        ),
    }
    summary = (
        "The lecture asks why Adagrad adds $g^2$ and not $|g|$: both are a size without a sign. "
        "(Its other reason, that backpropagation needs it, does not apply: nothing is "
        "differentiated through the accumulator.) What the choice changes is how fast the "
        "denominator grows. For a steady gradient $g$, $\\sqrt{\\sum g^2} = |g|\\sqrt t$, "
        "so the step is $\\eta/\\sqrt t$; with $\\sum |g| = |g|\\, t$ it is $\\eta/t$.\n\n"
        f"Summed over {plural(steps, 'step')}: the square's steps cover {fmt(square[-1])} "
        f"($\\approx 2\\eta\\sqrt T$), the absolute value's only {fmt(absolute[-1])} "
        "($\\approx \\eta \\ln T$), and never more than "
        f"$\\eta (1 + \\ln T) = {fmt(bound)}$. So on $f = x^2/2$ started "
        f"{fmt(x0)} away, the square version ends {fmt(final['square'])} from the minimum "
        f"and the absolute-value version {fmt(final['abs'])}: it cannot walk that far. Both "
        "versions ignore the scale of the gradient (100 times larger gradients give the same "
        "steps), so the square root of a sum of squares is what makes the step size "
        "shrink slowly enough, about like $1/\\sqrt t$."
    )
    claims = [
        C.close(
            "Steady gradient, square: the travel is η Σ 1/√t (relative 1e-9)",
            square[-1],
            theory_square[-1],
            rel=1e-9,
        ),
        C.close(
            "Steady gradient, absolute value: the travel is η Σ 1/t (relative 1e-9)",
            absolute[-1],
            theory_abs[-1],
            rel=1e-9,
        ),
        C.at_most("The absolute value's travel never exceeds η (1 + ln T)", absolute[-1], bound),
        C.close(
            "Both are scale-free: 100× larger gradients give the same steps (relative 1e-9)",
            scaled[-1],
            square[-1],
            rel=1e-9,
        ),
        C.check(
            f"From x₀ = {fmt(x0)} the square version reaches the minimum (|x| < 1e-6), the "
            "absolute-value version stays more than 1 away",
            final["square"] < 1e-6 and final["abs"] > 1.0,
            f"{fmt(final['square'])} vs {fmt(final['abs'])}",
        ),
        C.close(
            "The absolute-value version is scale-free too (relative 1e-9)",
            scaled_abs[-1],
            absolute[-1],
            rel=1e-9,
        ),
        *(
            C.quoted(
                "The travel figure's title and the text quote the same distance",
                fmt(value),
                figure=C.figure_text(figures["travel"].figure),
                text=summary,
            )
            for value in (square[-1], absolute[-1])
        ),
    ]
    return Result(
        key="adagrad_square",
        title="Adagrad: why the square and not the absolute value",
        chapter="",
        summary=summary,
        equations=[
            r"G_t = \sum_{k \le t} g_k^2:\quad \Delta w_t = -\frac{\eta\, g_t}{\sqrt{G_t}}"
            r" = -\frac{\eta}{\sqrt t} \ \text{for steady } g",
            r"A_t = \sum_{k \le t} |g_k|:\quad \Delta w_t = -\frac{\eta\, g_t}{A_t}"
            r" = -\frac{\eta}{t},\quad \sum_{t \le T} \frac{\eta}{t} \le \eta (1 + \ln T)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"The two accumulators, η = {fmt(eta)}",
                ["run", "G = Σ g² (Adagrad)", "A = Σ |g|"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"eta": eta, "steps": steps, "x0": x0},
    )


def run_adagrad_decay(quick: bool = False) -> Result:
    """Adagrad against RMSprop on Rosenbrock's valley (each at a rate that enters the valley
    without diverging): Adagrad's effective learning rate only falls, so it crawls once
    inside the valley; RMSprop's recovers."""
    from ...viz import lines_figure

    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    steps = 1000 if quick else 5000
    lr = 0.05
    start = (-1.2, 1.0)
    runs = [
        swept(surface, "Adagrad", lr, steps, start=start, label=f"Adagrad lr={lr}"),
        swept(surface, "RMSprop", lr / 50, steps, start=start, label=f"RMSprop lr={lr / 50}"),
    ]
    numbers, rows = {}, []
    rates = {}
    picks = [t for t in (1, 10, 100, 1000, steps) if t <= steps]
    picks = list(dict.fromkeys(picks))
    per_coordinate = {}
    for r in runs:
        per = effective_rates(surface, r)
        per_coordinate[r.label] = per
        rate = np.nanmean(per, axis=1)
        rates[r.label] = rate
        rows.append([r.label, *(float(rate[t - 1]) for t in picks), gap(r.final_gap(f_min))])
        numbers[f"effective lr at step {picks[-1]}: {r.label}"] = float(rate[picks[-1] - 1])
    steps_axis = np.arange(1, steps + 1)
    figures = {
        "effective_learning_rate": Plot(
            lines_figure(
                {k: (steps_axis, v) for k, v in rates.items()},
                xlabel="step",
                ylabel="effective learning rate |Δp| / |g| (mean of x and y)",
                title="Adagrad's rate only falls; RMSprop's follows the recent gradients",
                log_x=True,
                log_y=True,
            ),
            "Adagrad's green line only ever goes down; RMSprop's purple line dips while the "
            "gradients are large and climbs again once they shrink in the valley.",
        ),
        "paths": Plot(
            runs_figure(surface, runs, "Adagrad vs RMSprop on Rosenbrock from (−1.2, 1)"),
            "both drop into the banana valley; Adagrad then stalls part way along it, RMSprop "
            "follows the valley to the star at (1, 1).",
        ),
    }
    ada, rms = rows
    ada_per = per_coordinate[runs[0].label]
    rises = np.nanmax(np.diff(ada_per, axis=0) / ada_per[:-1])
    summary = (
        "Adagrad adds every squared gradient to $G$, so its effective learning rate "
        "$\\eta/\\sqrt{G}$ can only fall: from "
        f"{fmt(ada[1])} at the first step to {fmt(ada[-2])} after {plural(steps, 'step')}. "
        "Inside Rosenbrock's curved valley the gradients are small, but the early, large ones "
        "stay in $G$ for ever, and it crawls: it ends "
        f"{fmt(ada[-1])} above the minimum. RMSprop's EWMA forgets them: its rate climbs "
        f"from {fmt(min(rates[runs[1].label]))} at its lowest back to {fmt(rms[-2])}, and "
        f"it ends {fmt(rms[-1])} above the minimum. (The two learning rates, {fmt(lr)} and "
        f"{fmt(lr / 50)}, are set by hand for this start, not tuned.)"
    )
    claims = [
        C.at_most(
            "Adagrad's effective rate never rises, per coordinate (largest relative rise, up "
            "to rounding 1e-9)",
            rises,
            1e-9,
        ),
        C.check(
            "RMSprop's effective rate rises again after its lowest point",
            rms[-2] > min(rates[runs[1].label]) * 10,
            f"{fmt(rms[-2])} vs lowest {fmt(min(rates[runs[1].label]))}",
        ),
        C.check(
            "Adagrad ends further from the minimum than RMSprop",
            ada[-1] > rms[-1],
            f"{fmt(ada[-1])} vs {fmt(rms[-1])}",
        ),
    ]
    return Result(
        key="adagrad_decay",
        title="Adagrad's disadvantage: the vanishing learning rate",
        chapter="",
        summary=summary,
        equations=[
            r"\text{Adagrad: } G_t = G_{t-1} + g_t^2,\quad"
            r" w \leftarrow w - \frac{\eta}{\sqrt{G_t + \epsilon}}\, g_t",
            r"\text{RMSprop: } v_t = \beta v_{t-1} + (1 - \beta) g_t^2,\quad"
            r" w \leftarrow w - \frac{\eta}{\sqrt{v_t + \epsilon}}\, g_t",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Effective learning rate |Δp|/|g| at step t, and f − f_min at the end",
                ["optimizer", *(f"t = {t}" for t in picks), "final f − f_min"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"surface": "rosenbrock", "start": "(−1.2, 1)", "steps": steps},
    )


def run_rmsprop(quick: bool = False) -> Result:
    """The lecture's RMSprop recurrence with beta = 0.95, worked on three gradients, and
    RMSprop's per-coordinate scaling on the ravine, axis-aligned and rotated, against SGD."""
    from ..sweep import sweep
    from ._tuning import tune

    beta = 0.95
    g = np.array([3.0, 1.0, 0.5])  # three gradients of one weight
    v, values = 0.0, []
    for gi in g:
        v = beta * v + (1 - beta) * gi**2
        values.append(v)
    by_hand = [
        0.05 * g[0] ** 2,
        0.95 * 0.05 * g[0] ** 2 + 0.05 * g[1] ** 2,
        0.95 * 0.95 * 0.05 * g[0] ** 2 + 0.95 * 0.05 * g[1] ** 2 + 0.05 * g[2] ** 2,
    ]
    numbers = {
        "v_1 = 0.05 g_1^2": values[0],
        "v_2 = 0.95*0.05 g_1^2 + 0.05 g_2^2": values[1],
        "v_3": values[2],
        "weight of g_1^2 in v_3 (0.95^2 * 0.05)": 0.95**2 * 0.05,
    }
    steps = 300 if quick else 600
    rows, runs, edges = [], [], []
    hits, scores = {}, {}
    for angle, where in ((0.0, "axis-aligned"), (np.pi / 4, "rotated 45°")):
        surface = surfaces.quadratic(condition_number=100.0, angle=angle, name=where)
        for name in ("SGD", "RMSprop", "Adagrad"):

            def score(lrs, surface=surface, name=name):
                result = sweep(surface, name, steps=steps, learning_rate=lrs, keep_paths=False)
                return np.median(result.mean_log_gap(), axis=(0, 2))

            tuned = tune(score, np.logspace(-4, 0.5, 19 if quick else 37))
            edges.append(tuned.on_edge)
            best = sweep(surface, name, steps=steps, learning_rate=tuned.learning_rate)
            hit = steps_cell(int(np.asarray(best.steps_to(1e-6)).ravel()[0]))
            final = gap(float(np.asarray(best.final_loss).ravel()[0]))
            area = float(tuned.scores[tuned.index])
            rows.append([where, name, tuned.learning_rate, area, hit, final])
            hits[where, name] = hit
            scores[where, name] = area
            numbers[f"steps to 1e-6, {where}: {name}"] = hit
            if angle == 0.0:
                runs.append(
                    swept(
                        surface,
                        name,
                        tuned.learning_rate,
                        steps,
                        label=f"{name} lr={fmt(tuned.learning_rate)}",
                    )  # fmt: skip
                )
    aligned = surfaces.quadratic(condition_number=100.0, angle=0.0, name="axis-aligned")
    figures = {
        "axis_aligned_ravine": Plot(
            runs_figure(
                aligned, runs, "Axis-aligned ravine (curvatures 1 and 100), learning rates tuned"
            ),
            "on the axis-aligned ravine the adaptive paths (green Adagrad, purple RMSprop) cut "
            "straight towards the star while SGD (black) first zig-zags down the steep wall.",
        )
    }

    def show(where, name):
        return f"{fmt(scores[where, name])} (1e-6 {steps_phrase(hits[where, name], steps)})"

    summary = (
        f"With $\\beta = {fmt(beta)}$ the lecture's recurrence gives $v_1 = {fmt(values[0], 4)}$, "
        f"$v_2 = {fmt(values[1], 4)}$, $v_3 = {fmt(values[2], 4)}$ for the gradients "
        f"{', '.join(fmt(x) for x in g)}: the first square's weight shrinks by {fmt(beta)} "
        f"every step (in $v_3$ it is $0.95^2 \\times 0.05 = {fmt(0.95**2 * 0.05, 4)}$), so old "
        "gradients fade instead of piling up as in Adagrad. Dividing by $\\sqrt{v}$ gives "
        "each coordinate its own step size.\n\n"
        "How fast each optimizer goes is measured by the mean of $\\log_{10}(f - f_{min})$ "
        "over the run (lower is faster; each learning rate tuned for it). Where the steep and "
        "flat directions are the coordinates themselves (the axis-aligned ravine): SGD "
        f"{show('axis-aligned', 'SGD')}, RMSprop {show('axis-aligned', 'RMSprop')}, Adagrad "
        f"{show('axis-aligned', 'Adagrad')}. Rotate the same ravine by 45° and every "
        f"coordinate sees both curvatures: SGD {show('rotated 45°', 'SGD')}, RMSprop "
        f"{show('rotated 45°', 'RMSprop')}, Adagrad {show('rotated 45°', 'Adagrad')}. SGD "
        "does not care about the rotation; the adaptive methods lose most of their lead: a "
        "per-coordinate rate is a diagonal rescaling, and it cannot undo a rotation.\n\n"
        "RMSprop never gets within 1e-6 here: its step $\\eta\\, g/\\sqrt{v}$ keeps a size "
        "of about $\\eta$ however small the gradient, because $v$ shrinks with $g^2$, so with a "
        "constant learning rate it hovers around the minimum "
        f"(final f − f_min {fmt(rows[1][5])} and {fmt(rows[4][5])})."
    )

    def lead(name):  # how much better (lower) the aligned score is than the rotated one
        return scores["rotated 45°", name] - scores["axis-aligned", name]

    claims = [
        *(
            C.close(
                f"v_{k + 1} by the recurrence equals the lecture's sum",
                values[k],
                by_hand[k],
                rel=1e-12,
            )  # fmt: skip
            for k in range(3)
        ),
        C.check(
            "RMSprop and Adagrad lose more to the rotation than SGD does (mean log10 gap)",
            lead("RMSprop") > lead("SGD") + 0.5 and lead("Adagrad") > lead("SGD") + 0.5,
            ", ".join(f"{n} {fmt(lead(n))}" for n in ("SGD", "RMSprop", "Adagrad")),
        ),
        C.check(
            "On the axis-aligned ravine Adagrad beats SGD",
            scores["axis-aligned", "Adagrad"] < scores["axis-aligned", "SGD"],
        ),
        C.check(
            "With a constant rate RMSprop hovers: it stays above 1e-6 on both ravines",
            rows[1][5] > 1e-6 and rows[4][5] > 1e-6,
        ),
        C.check("No tuned learning rate is left on the edge of its grid", not any(edges)),
    ]
    return Result(
        key="rmsprop",
        title="RMSprop: an EWMA of squared gradients",
        chapter="",
        summary=summary,
        equations=[
            r"v_t = \beta v_{t-1} + (1 - \beta)\, (\nabla w_t)^2 \qquad (\beta = 0.95"
            r" \text{ in the lecture})",
            r"w_{t+1} = w_t - \frac{\eta}{\sqrt{v_t + \epsilon}}\, \nabla w_t",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Quadratic with curvatures 1 and 100, {steps} steps, each lr tuned on a log grid",
                [
                    "ravine",
                    "optimizer",
                    "tuned lr",
                    "mean log₁₀(f − f_min)",
                    "steps to 1e-6",
                    "final f − f_min",
                ],
                rows,
                note="Tuned: the lowest median of mean log10(f − f_min) over the run (the area "
                "under the log-loss curve), widened at the grid's edge.",
            )
        ],
        figures=figures,
        claims=claims,
        settings={"beta": beta, "steps": steps},
    )


def run_adam(quick: bool = False) -> Result:
    """Adam's first steps with and without bias correction, fed the same gradients, for
    beta_2 = 0.999 (Keras's default) and 0.99 (the lecture's), against the closed form; and
    Adam against momentum and RMSprop on Rosenbrock."""
    from ... import optimizers
    from ...viz import lines_figure

    surface = surfaces.get("rosenbrock")
    f_min = f_min_of(surface)
    start = (-1.2, 1.0)
    lr, beta_1 = 0.01, 0.9
    first = 50
    curves, numbers, rows = {}, {}, []
    worst, moves = 0.0, []
    for beta_2 in (0.999, 0.99):
        path = swept(surface, f"Adam:beta_2={beta_2}", lr, first, start=start).path
        grads = surface.gradient(path[:-1])  # the corrected run's gradients
        sizes, first_moves = {}, {}
        for corrected in (True, False):
            opt = optimizers.Adam(learning_rate=lr, beta_2=beta_2, bias_correction=corrected)
            w = np.array(start, float)
            step = []
            for g in grads:  # the same gradient sequence for both
                before = w.copy()
                opt.apply_gradients([(g.copy(), w)])
                step.append(np.linalg.norm(w - before))
                first_moves.setdefault(corrected, np.abs(w - before))
            sizes[corrected] = np.array(step)
        moves.append(first_moves[True])
        ratio = sizes[False] / sizes[True]
        t = np.arange(1, first + 1)
        theory = (1 - beta_1**t) / np.sqrt(1 - beta_2**t)
        worst = max(worst, float(np.max(np.abs(ratio / theory - 1))))
        rows.append([beta_2, ratio[0], theory[0], ratio[9], theory[9], ratio[-1], theory[-1]])
        numbers[f"first step without / with correction, beta_2={beta_2}"] = float(ratio[0])
        curves[f"β₂ = {beta_2}: measured"] = (t, ratio)
        curves[f"β₂ = {beta_2}: (1 − β₁ᵗ)/√(1 − β₂ᵗ)"] = (t, theory)
    steps = 500 if quick else 3000
    runs = [
        swept(surface, "Momentum", 1e-3, steps, start=start, label="Momentum lr=1e-3"),
        swept(surface, "RMSprop", 1e-3, steps, start=start, label="RMSprop lr=1e-3"),
        swept(surface, "Adam", 0.02, steps, start=start, label="Adam lr=0.02"),
    ]
    finals = {}
    for r in runs:
        finals[r.label] = gap(r.final_gap(f_min))
        numbers[f"final f - f_min on Rosenbrock: {r.label}"] = finals[r.label]
    figures = {
        "correction_factor": Plot(
            lines_figure(
                curves,
                xlabel="step t",
                ylabel="uncorrected step / corrected step",
                title=f"Adam's first {first} steps on Rosenbrock, same gradients, lr = {fmt(lr)}",
                log_y=True,
            ),
            "the measured points lie on their closed-form lines: with β₂ = 0.999 the "
            "uncorrected step is several times too large for dozens of steps; with 0.99 the "
            "factor starts at 1 and settles back towards 1 sooner.",
        ),
        "adam_vs_its_parts": Plot(
            runs_figure(surface, runs, "Adam = momentum (m) + RMSprop (v) on Rosenbrock"),
            "all three follow the valley; the loss panel shows which gets closest to the star "
            "in the same number of steps.",
        ),
    }
    k999, k99 = rows
    summary = (
        "$m$ and $v$ start at 0, so early on both are too small: by $1 - \\beta_1^t$ and "
        "$1 - \\beta_2^t$. The step uses $m/\\sqrt{v}$, so without the correction it is "
        "off by $(1 - \\beta_1^t)/\\sqrt{1 - \\beta_2^t}$, and that is too large, not too "
        "small, whenever $\\beta_2$ is closer to 1 than $\\beta_1$. Fed the same gradients, "
        f"with Keras's $\\beta_2 = 0.999$ the first uncorrected step is {fmt(k999[1])} times "
        f"the corrected one (closed form {fmt(k999[2])}), {fmt(k999[3])} times at step 10 and "
        f"still {fmt(k999[5])} at step {first}; with the lecture's $\\beta_2 = 0.99$ it is "
        f"{fmt(k99[1])} at step 1 and {fmt(k99[3])} at step 10. With the correction the first "
        "step moves each coordinate by the learning rate, whatever the gradient's scale.\n\n"
        "Adam combines momentum's $m$ with RMSprop's $v$. On Rosenbrock, after "
        f"{plural(steps, 'step')}: momentum ends {fmt(finals['Momentum lr=1e-3'])} above "
        f"the minimum, RMSprop {fmt(finals['RMSprop lr=1e-3'])}, Adam "
        f"{fmt(finals['Adam lr=0.02'])}."
    )
    claims = [
        C.at_most(
            "The measured uncorrected / corrected step ratio equals (1 − β₁ᵗ)/√(1 − β₂ᵗ) at "
            f"every one of the first {first} steps, for both β₂ (largest relative gap, 1e-9)",
            worst,
            1e-9,
        ),
        C.check(
            "With β₂ = 0.999 the uncorrected step is too large at step 10",
            k999[3] > 1,
            fmt(k999[3]),
        ),
        C.close("With β₂ = 0.99 the first step's factor is 0.1/√0.01 = 1", k99[1], 1.0, rel=1e-9),
        C.at_most(
            "With the correction the first step moves every coordinate by the learning rate "
            "(relative 1e-6; ε aside)",
            float(np.max(np.abs(np.concatenate(moves) / lr - 1))),
            1e-6,
        ),
    ]
    return Result(
        key="adam",
        title="Adam: momentum plus RMSprop, with bias correction",
        chapter="",
        summary=summary,
        equations=[
            r"m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \qquad \text{(momentum)}",
            r"v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \qquad \text{(RMSprop)}",
            r"\hat m_t = \frac{m_t}{1 - \beta_1^t},\quad \hat v_t = \frac{v_t}{1 - \beta_2^t}",
            r"w_{t+1} = w_t - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Uncorrected / corrected step, same gradients, Rosenbrock from (−1.2, 1), lr = "
                f"{fmt(lr)}",
                [
                    "β₂",
                    "t = 1",
                    "closed form",
                    "t = 10",
                    "closed form",
                    f"t = {first}",
                    "closed form",
                ],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"surface": "rosenbrock", "lr": lr, "beta_1": beta_1},
    )
