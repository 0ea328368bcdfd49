"""The chapters that train on data: batch / stochastic / mini-batch gradient descent, schedules,
per-parameter learning rates and the sparse feature that motivates Adagrad."""

from __future__ import annotations

import numpy as np

from ... import optimizers, schedules
from .. import problems
from ..training import fit
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt, gap, pct, plural, settled_step, steps_cell


class LossPlane:
    """The MSE of a one-feature linear regression as a surface over the plane (w, b), for
    contour plots: L(w, b) = mean((y - w x - b)^2), written with the data's moments
    (E[y^2] - 2 w E[xy] - 2 b E[y] + w^2 E[x^2] + 2 w b E[x] + b^2) so a whole grid costs one
    expression."""

    def __init__(self, problem, margin: float = 1.5):
        x, y = problem.X[:, 0], problem.y
        self.m = {
            "yy": np.mean(y * y),
            "xy": np.mean(x * y),
            "y": np.mean(y),
            "xx": np.mean(x * x),
            "x": np.mean(x),
        }
        w, b = float(problem.solution["w"]), float(problem.solution["b"])
        self.name, self.title = problem.name, problem.title
        self.formula = "L(w, b) = mean((y - w x - b)^2) over the 500 rows"
        self.domain = ((-0.5, w + margin), (-0.5, b + margin))
        minimum = type(
            "Minimum", (), {"point": (w, b), "value": problem.optimum, "kind": "global"}
        )()
        self.minima = (minimum,)
        self.global_minimum = minimum
        self.log_levels = True
        self.axis_labels = ("weight w", "bias b")

    def value(self, wb):
        wb = np.asarray(wb, float)
        w, b, m = wb[..., 0], wb[..., 1], self.m
        return (
            m["yy"]
            - 2 * w * m["xy"]
            - 2 * b * m["y"]
            + w * w * m["xx"]
            + 2 * w * b * m["x"]
            + b * b
        )

    def gradient(self, wb):
        wb = np.asarray(wb, float)
        w, b, m = wb[..., 0], wb[..., 1], self.m
        return np.stack(
            [-2 * m["xy"] + 2 * w * m["xx"] + 2 * b * m["x"], -2 * m["y"] + 2 * w * m["x"] + 2 * b],
            axis=-1,
        )


def _path(history) -> np.ndarray:
    return np.column_stack([history.trace.params["w"].ravel(), history.trace.params["b"].ravel()])


def run_gd_variants(quick: bool = False) -> Result:
    """The lecture's 500 rows, 10 epochs: batch GD (10 updates), mini-batch 100 (50 updates)
    and stochastic GD (5000 updates), same learning rate: the paths on the loss contours and
    the loss per epoch and per gradient evaluation."""
    from ...viz import contour_with_paths, lines_figure

    problem = problems.get("linear")
    plane = LossPlane(problem)
    lr, epochs = 0.1, 10
    variants = {"batch GD": None, "mini-batch (100)": 100, "stochastic GD (1)": 1}
    rows, numbers, paths, per_epoch, per_work, curves = [], {}, {}, {}, {}, {}
    for label, batch in variants.items():
        h = fit(
            problem,
            optimizers.SGD(learning_rate=lr),
            epochs=epochs,
            batch_size=batch,
            seed=0,
            trace=True,
        )
        paths[label] = _path(h)
        excess = np.maximum(np.asarray(h.loss_per_epoch) - problem.optimum, 0.0)
        curves[label] = excess
        per_epoch[label] = (np.arange(epochs + 1), np.maximum(excess, 1e-16))
        work = np.concatenate([[0], h.evaluations_per_update])
        per_update = plane.value(paths[label]) - problem.optimum
        per_work[label] = (np.maximum(work, 1), np.maximum(per_update, 1e-16))
        rows.append([label, h.batch_size, h.updates, h.gradient_evaluations, float(excess[-1])])
        numbers[f"updates: {label}"] = h.updates
        numbers[f"final loss - optimum: {label}"] = float(excess[-1])
    numbers["gradient evaluations per variant (10 epochs x 500 rows)"] = rows[0][3]
    batch_gd, mini, sgd = (curves[k] for k in variants)
    figures = {
        "paths_on_the_loss": Plot(
            contour_with_paths(
                plane, paths, title=f"Three kinds of gradient descent on 500 rows, lr = {fmt(lr)}"
            ),
            "batch GD's 10 steps march straight down the contours but stop short of the star; "
            "stochastic GD's 5,000 steps reach the star early and then jitter around it.",
        ),
        "loss_per_epoch": Plot(
            lines_figure(
                per_epoch,
                xlabel="epoch",
                ylabel="full-data loss − least-squares optimum",
                title="Per epoch: stochastic GD makes 500 updates for batch GD's one",
            ),
            "after one epoch stochastic GD is lowest, but its line then wobbles while the "
            "mini-batch line keeps falling below it; batch GD falls slowly and smoothly.",
        ),
        "loss_per_gradient_evaluation": Plot(
            lines_figure(
                per_work,
                xlabel="gradient evaluations (rows processed)",
                ylabel="full-data loss − optimum",
                title="At equal work",
                log_x=True,
            ),
            "at equal work (the same number of rows seen) the smaller the batch, the further "
            "down the curve, until the noise of single rows stops stochastic GD.",
        ),
    }
    b, m, st = rows
    summary = (
        f"An epoch is one pass over the {problem.n_samples} rows. Batch GD makes one update per "
        "epoch from the exact gradient, stochastic GD one per row from a single row's "
        f"gradient, mini-batch one per batch: {fmt(b[2])}, {fmt(st[2])} and {fmt(m[2])} "
        f"updates in {epochs} epochs, each variant from the same {fmt(b[3])} row gradients.\n\n"
        f"With the same learning rate {fmt(lr)}, after one epoch stochastic GD is "
        f"{fmt(sgd[1])} above the optimum, mini-batch {fmt(mini[1])} and batch GD "
        f"{fmt(batch_gd[1])}: stochastic GD gets there first. But it never settles: a single "
        "row's gradient is noisy, so its loss goes up again at some epochs and ends at "
        f"{fmt(st[4])}, while mini-batches, less noisy, end at {fmt(m[4])}. Batch GD is smooth "
        f"but slow per epoch: still {fmt(b[4])} above the optimum after {epochs} epochs."
    )
    claims = [
        C.check(
            "Updates = epochs × ⌈rows / batch size⌉: 10, 50 and 5,000",
            [b[2], m[2], st[2]] == [10, 50, 5000],
            f"{b[2]}, {m[2]}, {st[2]}",
        ),
        C.check(
            "Every variant evaluates the same 5,000 row gradients",
            b[3] == m[3] == st[3] == 5000,
        ),
        C.check(
            "After one epoch: stochastic < mini-batch < batch GD",
            sgd[1] < mini[1] < batch_gd[1],
            f"{fmt(sgd[1])} < {fmt(mini[1])} < {fmt(batch_gd[1])}",
        ),
        C.check(
            "Stochastic GD never settles: its loss rises at some epoch after the first",
            np.any(np.diff(sgd[1:]) > 0),
        ),
        C.check(
            "Batch GD's loss falls at every epoch, and it ends highest",
            np.all(np.diff(batch_gd) < 0) and b[4] > max(m[4], st[4]),
        ),
        C.check(
            "Mini-batch ends below stochastic GD", m[4] < st[4], f"{fmt(m[4])} vs {fmt(st[4])}"
        ),
    ]
    return Result(
        key="gd_variants",
        title="Batch, stochastic and mini-batch gradient descent",
        chapter="",
        summary=summary,
        equations=[
            r"w_n = w_0 - \eta \frac{\partial L}{\partial w},\quad"
            r" \frac{\partial L}{\partial w} = -2 (y - \hat y)\, x,\quad"
            r" \frac{\partial L}{\partial b} = -2 (y - \hat y)",
            r"\text{updates} = \text{epochs} \times \lceil \text{rows} / \text{batch size}"
            r" \rceil:\quad 10 \times 500/100 = 50,\quad 10 \times 500 = 5000",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Linear regression, {problem.n_samples} rows, SGD lr = {fmt(lr)}, {epochs} epochs",
                [
                    "variant",
                    "batch size",
                    "updates",
                    "gradient evaluations",
                    "final loss − optimum",
                ],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"problem": "linear (500 rows)", "lr": lr, "epochs": epochs, "seed": 0},
    )


def _schedules(total: int, lr: float) -> dict:
    return {
        "constant": schedules.Constant(lr),
        "step decay (x0.1 at 1/2 and 3/4)": schedules.PiecewiseConstantDecay(
            [total // 2, 3 * total // 4], [lr, lr / 10, lr / 100]
        ),
        "exponential decay to 1%": schedules.ExponentialDecay(lr, total, 0.01),
        "inverse time": schedules.InverseTimeDecay(lr, max(1, total // 10), 1.0),
        "cosine decay": schedules.CosineDecay(lr, total),
        "warmup + cosine": schedules.LinearWarmup(
            schedules.CosineDecay(lr, total), max(1, total // 10)
        ),
        "one cycle": schedules.OneCycleLR(lr, total + 1),  # defined on steps 0..total
    }


def run_schedules(quick: bool = False) -> Result:
    """Predefined learning-rate schedules: their curves, and mini-batch SGD on a noisy
    quadratic with each (the noise floor of a constant rate against decaying ones)."""
    from ...viz import lines_figure, schedules_figure

    problem = problems.get("noisy_quadratic")
    epochs, batch = (5, 32) if quick else (20, 32)
    total = epochs * -(-problem.n_samples // batch)
    lr = 0.5
    plans = _schedules(total, lr)
    seeds = (0, 1) if quick else (0, 1, 2)
    rows, numbers, curves = [], {}, {}
    for label, schedule in plans.items():
        finals, curve = [], None
        for seed in seeds:
            h = fit(
                problem,
                optimizers.SGD(learning_rate=schedule),
                epochs=epochs,
                batch_size=batch,
                seed=seed,
            )
            finals.append(gap(h.loss_per_epoch[-1] - problem.optimum))
            if curve is None:
                curve = np.maximum(np.asarray(h.loss_per_epoch) - problem.optimum, 0.0)
        rows.append([label, float(np.median(finals)), float(min(finals)), float(max(finals))])
        numbers[f"final excess loss: {label}"] = float(np.median(finals))
        curves[label] = (np.arange(epochs + 1), np.maximum(curve, 1e-16))
    figures = {
        "schedules": Plot(
            schedules_figure(plans, total),
            "every schedule starts at (or warms up to) the same rate and ends far below it, "
            "except the constant one.",
        ),
        "loss_per_epoch": Plot(
            lines_figure(
                curves,
                xlabel="epoch",
                ylabel="full-data loss − optimum (floor 1e-16)",
                title="Mini-batch SGD on a noisy quadratic with each schedule (seed 0)",
            ),
            "the constant rate's line flattens early on its noise floor; the decaying "
            "schedules keep falling as their rate shrinks.",
        ),
    }
    constant = rows[0]
    best = min(rows, key=lambda r: r[1])
    summary = (
        "A constant learning rate large enough to make fast progress also keeps the "
        "mini-batch noise large: the loss stalls on a noise floor "
        f"({fmt(constant[1])} above the optimum here, the median over {len(seeds)} seeds). "
        "Predefined schedules lower the rate as training goes on, and every one of them "
        f"ends below the constant rate; the best here is {best[0]} ({fmt(best[1])}). The "
        "schedules are functions of the update count only, fixed before training (the "
        "lecture: 'pre define')."
    )
    claims = [
        C.check(
            "Every decaying schedule ends below the constant rate's noise floor (median)",
            all(r[1] < constant[1] for r in rows[1:]),
            ", ".join(f"{r[0]} {fmt(r[1])}" for r in rows),
        ),
        C.check(f"{best[0]} has the lowest median", best[1] == min(r[1] for r in rows)),
    ]
    return Result(
        key="schedules",
        title="Learning-rate schedules",
        chapter="",
        summary=summary,
        equations=[
            r"\text{exponential: } \eta_t = \eta_0\, r^{t/T}",
            r"\text{step: } \eta_t = \eta_0 \cdot 0.1^k \text{ after milestone } k",
            r"\text{cosine: } \eta_t = \eta_0\, \frac{1 + \cos(\pi t / T)}{2}",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"SGD, batch {batch}, {epochs} epochs ({total} updates), lr₀ = {fmt(lr)}; "
                f"loss − optimum over {len(seeds)} seeds",
                ["schedule", "median", "min", "max"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={
            "problem": "noisy_quadratic",
            "batch": batch,
            "epochs": epochs,
            "seeds": len(seeds),
        },  # fmt: skip
    )


def _scaled_linear(scale: float):
    base = problems.get("linear")
    return problems.LinearRegression(
        base.X[:, 0] * scale,
        base.y,
        scalar_weight=True,
        name="linear_scaled",
        title=f"Linear regression with x scaled by {scale:g}",
        description="w's direction is much steeper than b's",
    )


def run_per_parameter(quick: bool = False) -> Result:
    """One learning rate for all directions: with the feature scaled by 10 the loss is 100
    times steeper in w than in b, so the rate that w tolerates leaves b crawling. Separate
    rates (the lecture: weights and biases get their own) or Adagrad-style adaptation fix it."""
    from ...viz import contour_with_paths

    problem = _scaled_linear(10.0)
    plane = LossPlane(problem, margin=1.5)
    w_star, b_star = float(problem.solution["w"]), float(problem.solution["b"])
    plane.domain = ((-0.1, w_star + 0.3), (-0.5, b_star + 1.5))
    steps = 100 if quick else 200
    hessian = 2 * np.array([[plane.m["xx"], plane.m["x"]], [plane.m["x"], 1.0]])
    curv_w, curv_b = hessian[0, 0], hessian[1, 1]

    def descend(eta_w, eta_b):
        p = np.zeros(2)
        path = [p.copy()]
        for _ in range(steps):
            g = plane.gradient(p)
            p = p - np.array([eta_w, eta_b]) * g  # w -= eta_w dL/dw;  b -= eta_b dL/db
            path.append(p.copy())
        return np.array(path)

    one = 1.0 / curv_w  # what w's steep direction allows
    ratio = float(curv_w / curv_b)
    paths = {
        f"one rate {fmt(one)}": descend(one, one),
        f"separate: {fmt(1 / curv_w)} for w, {fmt(1 / curv_b)} for b": descend(
            1 / curv_w, 1 / curv_b
        ),
    }
    h = fit(
        problem, optimizers.Adagrad(learning_rate=0.5), epochs=steps, batch_size=None, trace=True
    )
    paths["Adagrad lr=0.5 (learns the rates)"] = _path(h)
    rows, numbers = [], {}
    for label, path in paths.items():
        excess = plane.value(path) - problem.optimum
        hit = steps_cell(settled_step(excess, 1e-6))
        rows.append([label, hit, gap(excess[-1])])
        numbers[f"updates to 1e-6: {label}"] = hit
    eff = {k: float(np.nanmean(v[-10:])) for k, v in h.trace.effective_step.items()}
    numbers["Adagrad's final effective rate, w"] = eff["w"]
    numbers["Adagrad's final effective rate, b"] = eff["b"]
    numbers["curvature ratio dL^2/dw^2 : dL^2/db^2"] = ratio
    title = f"x scaled by 10: the loss is {fmt(ratio)}x steeper in w than in b"
    figures = {
        "one_rate_vs_separate_rates": Plot(
            contour_with_paths(plane, paths, title=title),
            "with one rate the path drops straight down the steep w direction, then crawls "
            "along the flat b valley; separate rates and Adagrad head for the star directly.",
        )
    }
    one_row, sep, ada = rows
    summary = (
        f"With the feature scaled by 10 the loss curves {fmt(ratio)}x more steeply in w "
        f"than in b (the ratio of the second derivatives, $2\\,E[x^2] : 2$). One learning "
        "rate must suit the steep direction, so b crawls: "
        + (
            f"it does not get within 1e-6 of the optimum in {plural(steps, 'update')}"
            if not isinstance(one_row[1], int)
            else f"{plural(one_row[1], 'update')} to get within 1e-6"
        )
        + ". Giving w and b their own rates (the lecture: weights and biases with separate "
        f"learning rates, here 1/curvature each) takes {plural(sep[1], 'update')}. Adagrad "
        "learns such rates from the gradients it has seen: it ends with an effective rate of "
        f"{fmt(eff['w'])} for w and {fmt(eff['b'])} for b, larger for the flat direction, and "
        f"gets within 1e-6 in {plural(ada[1], 'update')}."
    )
    claims = [
        C.check(
            f"One rate does not get within 1e-6 in {steps} updates; separate rates do",
            not isinstance(one_row[1], int) and isinstance(sep[1], int),
        ),
        C.check(
            "Adagrad learns a larger rate for the flat direction b than for w",
            eff["b"] > eff["w"],
            f"{fmt(eff['b'])} vs {fmt(eff['w'])}",
        ),
        C.check("Adagrad gets within 1e-6", isinstance(ada[1], int)),
        C.quoted(
            "The figure's title and the text quote the same curvature ratio",
            f"{fmt(ratio)}x",
            figure=C.figure_text(figures["one_rate_vs_separate_rates"].figure),
            text=summary,
        ),
    ]
    return Result(
        key="per_parameter",
        title="One learning rate for every direction",
        chapter="",
        summary=summary,
        equations=[
            r"w \leftarrow w - \eta_w \frac{\partial L}{\partial w},\quad"
            r" b \leftarrow b - \eta_b \frac{\partial L}{\partial b}"
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Full-batch descent, x scaled by 10, {steps} updates",
                ["rates", "updates to 1e-6", "final loss − optimum"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"problem": "linear, x × 10", "updates": steps},
    )


def run_sparse_adagrad(quick: bool = False) -> Result:
    """The lecture's sparse column under batch GD: its gradient is tiny because the feature is
    0 in most rows, so with one learning rate its weight learns slowly; Adagrad divides by
    the root of the accumulated squared gradient and gives it a large rate."""
    from ...viz import lines_figure

    problem = problems.get("sparse")
    start = problem.init_params()
    magnitudes = problem.feature_gradient_magnitudes(start)
    updates = 30 if quick else 100
    w_star = np.asarray(problem.solution["w"], float)
    runs = {
        "SGD lr=0.1": optimizers.SGD(learning_rate=0.1),
        "Adagrad lr=1": optimizers.Adagrad(learning_rate=1.0),
    }
    rows, numbers, weights, rates = [], {}, {}, {}
    for label, opt in runs.items():
        h = fit(problem, opt, epochs=updates, batch_size=None, trace=True)
        w = h.trace.params["w"]
        rel = np.abs(w[-1] - w_star) / np.abs(w_star)
        rows.append(
            [label, float(rel[0]), float(rel[1]), gap(h.loss_per_epoch[-1] - problem.optimum)]
        )
        numbers[f"relative error of the sparse weight after {updates} updates: {label}"] = float(
            rel[1]
        )
        t = np.arange(w.shape[0])
        weights[f"{label}: dense w_0"] = (t, np.abs(w[:, 0] - w_star[0]) + 1e-16)
        weights[f"{label}: sparse w_1"] = (t, np.abs(w[:, 1] - w_star[1]) + 1e-16)
        eff = h.trace.effective_step["w"]
        rates[f"{label}: dense"] = (t[1:], eff[:, 0])
        rates[f"{label}: sparse"] = (t[1:], eff[:, 1])
    numbers["|dL/dw| dense : sparse at the start (batch GD)"] = float(magnitudes[0] / magnitudes[1])
    numbers["share of rows where the sparse feature is present"] = float(problem.feature_density[1])
    figures = {
        "weight_errors": Plot(
            lines_figure(
                weights,
                xlabel="update (batch GD: one per epoch)",
                ylabel="|w_j − w_j*|",
                title="The sparse weight learns slowly with one rate; Adagrad fixes it",
            ),
            "SGD's dashed sparse-weight error stays high while its dense one falls; both of "
            "Adagrad's fall together.",
        ),
        "effective_rates": Plot(
            lines_figure(
                rates,
                xlabel="update",
                ylabel="effective learning rate |Δw| / |g|",
                title="Adagrad gives the rarely-updated weight a larger rate",
            ),
            "SGD's two lines lie on top of each other (one rate); Adagrad's sparse line sits "
            "far above its dense one.",
        ),
    }
    sgd, ada = rows
    summary = (
        f"The sparse feature is non-zero in {pct(problem.feature_density[1])} of the rows. "
        "Its gradient, $-2 (y - \\hat y)\\, x$ averaged over the batch, only collects the "
        "few rows where $x \\ne 0$: at the start it is "
        f"{fmt(magnitudes[0] / magnitudes[1])} times smaller than the dense weight's. After "
        f"{plural(updates, 'batch update')} SGD has the dense weight within {pct(sgd[1])} "
        f"but the sparse one still {pct(sgd[2])} off. Adagrad's effective rate "
        "$\\eta / \\sqrt{\\sum g^2}$ is large where the gradients have been small: it gets "
        f"the dense weight within {pct(ada[1])} and the sparse one within {pct(ada[2])}."
    )
    claims = [
        C.at_least(
            "At the start the sparse weight's gradient is several times smaller than the dense "
            "one's",
            magnitudes[0] / magnitudes[1],
            3.0,
        ),
        C.check(
            "With one rate the sparse weight lags: SGD's sparse error > 5%, dense < 1%",
            sgd[2] > 0.05 and sgd[1] < 0.01,
            f"{pct(sgd[2])}, {pct(sgd[1])}",
        ),
        C.check(
            "Adagrad gets both weights within 1%",
            ada[1] < 0.01 and ada[2] < 0.01,
            f"{pct(ada[1])}, {pct(ada[2])}",
        ),
    ]
    return Result(
        key="sparse_adagrad",
        title="Sparse data and Adagrad",
        chapter="",
        summary=summary,
        equations=[
            r"\frac{\partial L}{\partial w_j} = \operatorname{mean}\big(-2 (y - \hat y)\,"
            r" x_j\big): \text{ small when } x_j \text{ is mostly } 0",
            r"\text{Adagrad: } G_j \leftarrow G_j + g_j^2,\quad"
            r" w_j \leftarrow w_j - \frac{\eta}{\sqrt{G_j + \epsilon}}\, g_j",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Batch GD, {updates} updates: relative error per weight",
                ["optimizer", "dense w₀", "sparse w₁", "loss − optimum"],
                rows,
            )
        ],
        figures=figures,
        claims=claims,
        settings={"problem": "sparse", "updates": updates},
    )
