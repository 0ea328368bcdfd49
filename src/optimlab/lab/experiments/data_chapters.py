"""The chapters that train on data: batch / stochastic / mini-batch gradient descent, schedules,
per-parameter learning rates and the sparse feature that motivates Adagrad."""

from __future__ import annotations

import numpy as np

from ... import optimizers, schedules
from .. import problems
from ..training import fit
from . import Result, Table


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
    rows, numbers, paths, per_epoch, per_work = [], {}, {}, {}, {}
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
        excess = np.asarray(h.loss_per_epoch) - problem.optimum
        per_epoch[label] = (np.arange(epochs + 1), np.maximum(excess, 1e-16))
        work = np.concatenate([[0], h.evaluations_per_update])
        per_update = np.array([plane.value(p) for p in paths[label]]) - problem.optimum
        per_work[label] = (np.maximum(work, 1), np.maximum(per_update, 1e-16))
        rows.append([label, h.batch_size, h.updates, h.gradient_evaluations, float(excess[-1])])
        numbers[f"updates: {label}"] = h.updates
        numbers[f"final loss - optimum: {label}"] = float(excess[-1])
    numbers["gradient evaluations per variant (10 epochs x 500 rows)"] = rows[0][3]
    figures = {
        "paths_on_the_loss": contour_with_paths(
            plane, paths, title=f"Three kinds of gradient descent on 500 rows, lr = {lr}"
        ),
        "loss_per_epoch": lines_figure(
            per_epoch,
            xlabel="epoch",
            ylabel="full-data loss - least-squares optimum",
            title="Per epoch: stochastic GD makes 500 updates for batch GD's one",
        ),
        "loss_per_gradient_evaluation": lines_figure(
            per_work,
            xlabel="gradient evaluations (rows processed)",
            ylabel="full-data loss - optimum",
            title="At equal work",
            log_x=True,
        ),
    }
    summary = (
        "An epoch is one pass over the 500 rows. Batch GD makes one update per epoch from the "
        "exact gradient, stochastic GD one per row from a single row's gradient, mini-batch one "
        f"per batch: {rows[0][2]}, {rows[2][2]} and {rows[1][2]} updates in 10 epochs, each "
        f"from the same {rows[0][3]} row gradients. With the same learning rate batch GD is "
        f"still {rows[0][4]:.3g} above the optimum after 10 epochs, mini-batch "
        f"{rows[1][4]:.3g}, stochastic {rows[2][4]:.3g}: stochastic GD gets there first but "
        "never settles (its path jitters around the minimum), batch GD is smooth but slow per "
        "epoch, mini-batches sit in between and vectorize well."
    )
    return Result(
        key="gd_variants",
        title="Batch, stochastic and mini-batch gradient descent",
        chapter="",
        summary=summary,
        equations=[
            "w_n = w_0 - eta * dL/dw,   dL/dw = -2 (y - y_hat) x,   dL/db = -2 (y - y_hat)",
            "updates = epochs x ceil(rows / batch size):  10 x 500/100 = 50;  10 x 500 = 5000",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Linear regression, 500 rows, SGD lr = {lr}, 10 epochs",
                [
                    "variant",
                    "batch size",
                    "updates",
                    "gradient evaluations",
                    "final - optimum",
                ],
                rows,
            )
        ],
        figures=figures,
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
            finals.append(float(h.loss_per_epoch[-1] - problem.optimum))
            curve = curve if curve is not None else np.asarray(h.loss_per_epoch) - problem.optimum
        rows.append([label, float(np.median(finals)), float(min(finals)), float(max(finals))])
        numbers[f"final excess loss: {label}"] = float(np.median(finals))
        curves[label] = (np.arange(epochs + 1), np.maximum(curve, 1e-16))
    figures = {
        "schedules": schedules_figure(plans, total),
        "loss_per_epoch": lines_figure(
            curves,
            xlabel="epoch",
            ylabel="full-data loss - optimum",
            title="Mini-batch SGD on a noisy quadratic with each schedule (seed 0)",
        ),
    }
    best = min(rows, key=lambda r: r[1])
    summary = (
        "A constant learning rate that is large enough to make fast progress also keeps the "
        "mini-batch noise large: the loss stalls on a noise floor "
        f"({rows[0][1]:.3g} above the optimum here). Predefined schedules lower the rate as "
        f"training goes on; the best here is {best[0]} ({best[1]:.3g}). The schedules are "
        "functions of the update count only, fixed before training (the lecture: 'pre define')."
    )
    return Result(
        key="schedules",
        title="Learning-rate schedules",
        chapter="",
        summary=summary,
        equations=[
            "exponential: eta_t = eta_0 * r^(t / T)",
            "step: eta_t = eta_0 * 0.1^k after milestone k",
            "cosine: eta_t = eta_0 * (1 + cos(pi t / T)) / 2",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"SGD, batch {batch}, {epochs} epochs ({total} updates), lr0 = {lr}; "
                f"loss - optimum, median [min, max] over {len(seeds)} seeds",
                ["schedule", "median", "min", "max"],
                rows,
            )
        ],
        figures=figures,
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
    paths = {
        f"one rate {one:.3g}": descend(one, one),
        f"separate: {1 / curv_w:.3g} for w, {1 / curv_b:.3g} for b": descend(
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
        hit = np.flatnonzero(excess <= 1e-6)
        rows.append([label, int(hit[0]) if hit.size else -1, float(excess[-1])])
        numbers[f"updates to 1e-6: {label}"] = rows[-1][1]
    eff = {k: float(np.nanmean(v[-10:])) for k, v in h.trace.effective_step.items()}
    numbers["Adagrad's final effective rate, w"] = eff["w"]
    numbers["Adagrad's final effective rate, b"] = eff["b"]
    numbers["curvature ratio dL^2/dw^2 : dL^2/db^2"] = float(curv_w / curv_b)
    figures = {
        "one_rate_vs_separate_rates": contour_with_paths(
            plane, paths, title="x scaled by 10: the loss is 100x steeper in w than in b"
        )
    }
    summary = (
        f"With the feature scaled by 10 the loss curves {curv_w / curv_b:.0f} times more "
        "steeply in w than in b. One learning rate must suit the steep direction, so b "
        f"crawls: {rows[0][1] if rows[0][1] >= 0 else 'more than ' + str(steps)} updates to get "
        f"within 1e-6. Giving w and b their own rates (the lecture: weights and biases with "
        f"separate learning rates) takes {rows[1][1]}. Adagrad learns such rates from the "
        f"gradients it has seen: it ends with {eff['w']:.3g} for w and {eff['b']:.3g} for b."
    )
    return Result(
        key="per_parameter",
        title="One learning rate for every direction",
        chapter="",
        summary=summary,
        equations=["w = w - eta_w * dL/dw,   b = b - eta_b * dL/db   (a rate per parameter)"],
        numbers=numbers,
        tables=[
            Table(
                "Full-batch descent, x scaled by 10",
                ["rates", "updates to 1e-6 (-1: not reached)", "final loss - optimum"],
                rows,
            )
        ],
        figures=figures,
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
            [label, float(rel[0]), float(rel[1]), float(h.loss_per_epoch[-1] - problem.optimum)]
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
        "weight_errors": lines_figure(
            weights,
            xlabel="update (batch GD: one per epoch)",
            ylabel="|w_j - w_j*|",
            title="The sparse weight learns slowly with one rate; Adagrad fixes it",
        ),
        "effective_rates": lines_figure(
            rates,
            xlabel="update",
            ylabel="effective learning rate |dw| / |g|",
            title="Adagrad gives the rarely-updated weight a larger rate",
        ),
    }
    summary = (
        f"The sparse feature is non-zero in {problem.feature_density[1]:.0%} of the rows. Its "
        "gradient, -2 (y - y_hat) x summed over the batch, only collects the few rows where "
        f"x != 0: at the start it is {magnitudes[0] / magnitudes[1]:.1f} times smaller than the "
        f"dense weight's. After {updates} batch updates SGD has the dense weight within "
        f"{rows[0][1]:.1%} but the sparse one still {rows[0][2]:.1%} off; Adagrad, whose "
        "effective rate eta/sqrt(sum g^2) is large where gradients have been small, gets both "
        f"within {max(rows[1][1], rows[1][2]):.1%}."
    )
    return Result(
        key="sparse_adagrad",
        title="Sparse data and Adagrad",
        chapter="",
        summary=summary,
        equations=[
            "dL/dw_j = mean(-2 (y - y_hat) x_j): small when x_j is mostly 0",
            "Adagrad: G_j += g_j^2;  w_j -= eta / sqrt(G_j + eps) * g_j",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Batch GD, {updates} updates: relative error per weight",
                ["optimizer", "dense w_0", "sparse w_1", "loss - optimum"],
                rows,
            )
        ],
        figures=figures,
    )
