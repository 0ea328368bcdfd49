"""Beyond the lecture: training without a schedule, and a second-order method.

``run_schedule_free``: Schedule-Free AdamW (Defazio et al. 2024) against AdamW with a cosine
schedule at equal budgets on the digits MLP. ``run_lbfgs``: L-BFGS (Liu & Nocedal 1989) on a
deterministic problem and on the same problem with mini-batch gradients.
"""

from __future__ import annotations

import numpy as np

from .. import problems
from ..training import updates_per_epoch
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt, plural
from ._training_runs import train, tuned_runs
from ._tuning import tune


def schedule_free_curve(problem, lr, *, epochs, batch_size, seed):
    """Schedule-Free AdamW (Keras's defaults, constant ``lr``) trained by
    :func:`optimlab.lab.training.fit`: the full-data loss at the evaluation point x (fit reads
    ``eval_params``) after each epoch; ``inf`` after a divergence."""
    return train(problem, "ScheduleFreeAdamW", {}, lr, epochs=epochs, batch_size=batch_size,
                 seed=seed)[0]  # fmt: skip


def run_schedule_free(quick: bool = False) -> Result:
    """AdamW with a cosine decay tuned for each budget (a schedule must know its horizon)
    against Schedule-Free AdamW tuned for each budget, and one Schedule-Free run read at every
    budget: the digits MLP, mini-batches of 64."""
    from ...viz import lines_figure

    problem = problems.get("digits_mlp")
    budgets = (1, 2, 4) if quick else (2, 4, 8)
    batch = 64
    grid = np.logspace(-4, 0, 5 if quick else 9)
    cosine, free = {}, {}
    for epochs in budgets:
        cosine[epochs] = tuned_runs(problem, "AdamW cosine", "AdamW", {}, grid, epochs=epochs,
                                    batch_size=batch, seeds=1, cosine=True)  # fmt: skip

        def score(lrs, epochs=epochs):
            return np.array([schedule_free_curve(problem, lr, epochs=epochs, batch_size=batch,
                                                 seed=0)[-1] for lr in lrs])  # fmt: skip

        free[epochs] = tune(score, grid)
    longest = budgets[-1]
    anytime = schedule_free_curve(problem, free[longest].learning_rate, epochs=longest,
                                  batch_size=batch, seed=0)  # fmt: skip
    rows, numbers = [], {}
    for epochs in budgets:
        c = float(cosine[epochs].curves[0, -1])
        f = float(free[epochs].scores[free[epochs].index])
        a = float(anytime[epochs])
        rows.append([plural(epochs, "epoch"), cosine[epochs].tuned.learning_rate, c,
                     free[epochs].learning_rate, f, a])  # fmt: skip
        numbers[f"{epochs} epochs: AdamW cosine"] = c
        numbers[f"{epochs} epochs: Schedule-Free"] = f
        numbers[f"{epochs} epochs: one Schedule-Free run"] = a
    x = np.arange(longest + 1)
    curves = {"ScheduleFreeAdamW (one run, at x)": (x, anytime)}
    for epochs in budgets:
        curve = cosine[epochs].curves[0]
        curves[f"AdamW cosine over {plural(epochs, 'epoch')}"] = (np.arange(epochs + 1), curve)
    gaps = [
        numbers[f"{e} epochs: Schedule-Free"] / numbers[f"{e} epochs: AdamW cosine"]
        for e in budgets
    ]
    summary = (
        "A learning-rate schedule has to know when training ends: a cosine decay reaches 0 at "
        "its last step, so each budget needs its own run. Schedule-Free AdamW (Defazio et al. "
        "2024, in Keras 3 and optax's contrib) keeps a constant rate and two sequences "
        "instead: $z$, the plain AdamW iterate, and $x$, its running average, where the model "
        "is evaluated; gradients are taken between them, at $y = (1 - \\beta_1) z + \\beta_1 "
        "x$. The average plays the part of the decay, at every step at once.\n\n"
        f"On the digits MLP (batches of {batch}), each rate tuned on the same grid for each "
        "budget: "
        + "; ".join(
            f"{plural(e, 'epoch')}: cosine AdamW {fmt(numbers[f'{e} epochs: AdamW cosine'])}, "
            f"Schedule-Free {fmt(numbers[f'{e} epochs: Schedule-Free'])}"
            for e in budgets
        )
        + f" (Schedule-Free's final loss is {', '.join(fmt(g) for g in gaps)} times the "
        "cosine's). One Schedule-Free run, tuned for the longest budget and read at x after "
        "each shorter one, gives the last column: a single run answers every budget, which "
        "no cosine run can."
    )
    claims = [
        C.check(
            "Every budget's cosine run and Schedule-Free run learn: the final loss is below "
            "the loss at the start",
            all(cosine[e].curves[0, -1] < cosine[e].curves[0, 0] for e in budgets)
            and all(numbers[f"{e} epochs: Schedule-Free"] < anytime[0] for e in budgets),
        ),
        C.check(
            "The one Schedule-Free run's loss at x falls from budget to budget",
            all(anytime[a] > anytime[b] for a, b in zip(budgets, budgets[1:], strict=False)),
            ", ".join(fmt(anytime[e]) for e in budgets),
        ),
        C.close(
            "At the longest budget the one run is the tuned Schedule-Free run itself",
            float(anytime[longest]),
            numbers[f"{longest} epochs: Schedule-Free"],
            rel=1e-12,
        ),
        C.check(
            "No tuned learning rate is left on the edge of its grid",
            not any(cosine[e].tuned.on_edge or free[e].on_edge for e in budgets),
        ),
    ]
    return Result(
        key="schedule_free",
        title="Beyond the lecture: Schedule-Free AdamW against a cosine schedule",
        chapter="",
        summary=summary,
        equations=[
            r"y_t = (1 - \beta_1) z_t + \beta_1 x_t,\qquad g_t = \nabla f(y_t)",
            r"z_{t+1} = z_t - \eta\, \frac{g_t}{\sqrt{\hat v_t} + \epsilon},\qquad"
            r" x_{t+1} = (1 - c_{t+1})\, x_t + c_{t+1} z_{t+1},\quad c_{t+1} = \frac{1}{t + 1}",
            r"\text{cosine: } \eta_t = \eta\, \tfrac12 \big(1 + \cos(\pi t / T)\big)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Digits MLP 64-32-10, batch {batch}: final full-data loss at equal budgets",
                [
                    "budget",
                    "cosine tuned lr",
                    "AdamW + cosine",
                    "Schedule-Free tuned lr",
                    "Schedule-Free (at x)",
                    f"one run (tuned for {longest})",
                ],  # fmt: skip
                rows,
            )
        ],
        figures={
            "budgets": Plot(
                lines_figure(
                    curves,
                    xlabel="epoch",
                    ylabel="full-data cross-entropy",
                    title="One Schedule-Free run against a cosine run per budget",
                ),
                "each cosine line ends where its schedule reaches 0; the Schedule-Free line "
                "is one run, read at x after every epoch.",
            )  # fmt: skip
        },
        claims=claims,
        settings={"budgets (epochs)": ", ".join(map(str, budgets)), "batch": batch},
    )


def lbfgs_curve(problem, *, budget_rows, batch_size, seed, **options):
    """``optimlab.LBFGS(preset="torch", line_search="strong_wolfe", **options)`` on
    ``problem``: torch's step (up to 20 iterations, 25 evaluations), its closure evaluated on
    one batch of rows per step (all rows for ``batch_size=None``; torch's semantics: every
    iteration and line-search evaluation of a step sees the same batch), until
    ``budget_rows`` rows have been processed. Returns (rows processed, full-data loss minus
    the optimum) after each step, starting at (0, initial). (One iteration per step,
    ``max_iter=1``, stalls on the deterministic problem, in torch.optim.LBFGS as here.)"""
    from ... import lbfgs as lbfgs_module

    names = list(problem.shapes)
    params = problem.init_params(seed)
    arrays = [params[k] for k in names]
    rng = np.random.default_rng(seed)
    n = problem.n_samples
    state = {"rows": 0, "batch": None}

    def closure(current):
        rows = state["batch"]
        state["rows"] += n if rows is None else rows.size
        loss, grads = problem.loss_and_grad(dict(zip(names, current, strict=True)), rows)
        return loss, [grads[k] for k in names]

    opt = lbfgs_module.LBFGS(preset="torch", line_search="strong_wolfe", **options)
    offset = problem.optimum or 0.0
    done, gaps = [0], [problem.loss(params) - offset]
    with np.errstate(all="ignore"):
        while state["rows"] < budget_rows:
            state["batch"] = None if batch_size is None else rng.choice(n, batch_size,
                                                                        replace=False)  # fmt: skip
            opt.step(closure, arrays)
            loss = problem.loss(dict(zip(names, arrays, strict=True))) - offset
            done.append(state["rows"])
            gaps.append(loss if np.isfinite(loss) else np.inf)
            if not np.isfinite(loss):
                break
    return np.array(done), np.array(gaps)


LBFGS_CONTENDERS = (("Momentum", "SGD", {"momentum": 0.9}), ("Adam", "Adam", {}))


def run_lbfgs(quick: bool = False) -> Result:  # noqa: ARG001 (one size for both tours)
    """L-BFGS with torch's strong-Wolfe line search against tuned momentum and Adam on the
    ill-conditioned matrix regression at equal gradient work (rows processed): full-batch
    gradients, then mini-batches of 32."""
    from ...viz import lines_figure

    problem = problems.get("matrix_regression", condition_number=1e4)
    n = problem.n_samples
    # one size for the quick and the full tour: the whole chapter takes about a second
    full_steps, noisy_epochs, batch = 100, 20, 32
    grid = np.logspace(-4, 1, 11)
    settings = {
        "deterministic": (full_steps * n, None, full_steps),
        "mini-batch": (noisy_epochs * n, batch, noisy_epochs),
    }
    results, curves, rows, numbers = {}, {}, [], {}
    for kind, (budget, bs, epochs) in settings.items():
        lb_rows, lb_gap = lbfgs_curve(problem, budget_rows=budget, batch_size=bs, seed=0)
        results[kind, "L-BFGS"] = float(lb_gap[-1])
        curves[f"L-BFGS, {kind}"] = (lb_rows / n, np.maximum(lb_gap, 1e-16))
        rows.append([kind, "L-BFGS", "line search", float(lb_gap[-1]), len(lb_rows) - 1])
        for label, base, kw in LBFGS_CONTENDERS:
            r = tuned_runs(problem, label, base, kw, grid, epochs=epochs, batch_size=bs,
                           seeds=1)  # fmt: skip
            final = float(r.curves[0, -1])
            results[kind, label] = final
            per_epoch = updates_per_epoch(n, bs or n)
            rows.append([kind, label, r.tuned.learning_rate, final, epochs * per_epoch])
            if label == "Adam":
                curves[f"Adam, {kind}"] = (np.arange(epochs + 1), np.maximum(r.curves[0], 1e-16))
        for label in ("L-BFGS", "Momentum", "Adam"):
            numbers[f"{kind}: final excess loss, {label}"] = results[kind, label]
    det = {k: results["deterministic", k] for k in ("L-BFGS", "Momentum", "Adam")}
    noisy = {k: results["mini-batch", k] for k in ("L-BFGS", "Momentum", "Adam")}
    best_other_det = min(det["Momentum"], det["Adam"])
    best_other_noisy = min(noisy["Momentum"], noisy["Adam"])
    edge_det = best_other_det / max(det["L-BFGS"], 1e-300)
    edge_noisy = best_other_noisy / noisy["L-BFGS"] if np.isfinite(noisy["L-BFGS"]) else 0.0
    numbers["deterministic: best first-order / L-BFGS"] = edge_det
    numbers["mini-batch: best first-order / L-BFGS"] = edge_noisy
    summary = (
        "L-BFGS (Liu & Nocedal 1989; torch.optim.LBFGS, optax.lbfgs) builds a model of the "
        "curvature from the last gradient differences, $s_k = x_{k+1} - x_k$ and $y_k = "
        "g_{k+1} - g_k$, and steps along $d = -H g$, where the two-loop recursion applies "
        "the inverse-Hessian estimate $H$ without forming it; a line search (torch's strong "
        "Wolfe conditions) picks the step length, so there is no learning rate to tune. It "
        "needs a closure that can evaluate the loss again.\n\n"
        f"**Deterministic** (the ill-conditioned matrix regression, full-batch gradients, "
        f"{plural(full_steps, 'pass', 'passes')} over the data): L-BFGS ends "
        f"{fmt(det['L-BFGS'])} above the optimum, tuned momentum {fmt(det['Momentum'])}, "
        f"tuned Adam {fmt(det['Adam'])}: the best first-order method is {fmt(edge_det)} "
        "times worse.\n\n"
        f"**Noisy** (the same problem, a new batch of {batch} rows for each step, "
        f"{noisy_epochs} epochs of rows): L-BFGS ends at {fmt(noisy['L-BFGS'])}, momentum at "
        f"{fmt(noisy['Momentum'])}, Adam at {fmt(noisy['Adam'])}. The differences $y_k$ now "
        "mix curvature with the noise of two different batches, and a line search on one "
        "batch's loss overfits that batch: the advantage is "
        + (f"{fmt(edge_noisy)} times" if edge_noisy >= 1 else "gone")
        + ". This is why deep learning trains with first-order methods on mini-batches and "
        "keeps L-BFGS for deterministic, smooth problems."
    )
    claims = [
        C.check(
            "On full-batch gradients L-BFGS ends below tuned momentum and tuned Adam, by more "
            "than a factor of 10",
            edge_det > 10,
            f"factor {fmt(edge_det)}",
        ),
        C.check(
            "With mini-batches of the same problem and the same rows processed, L-BFGS ends "
            "above the best tuned first-order method",
            edge_noisy < 1,
            f"best first-order / L-BFGS = {fmt(edge_noisy)}",
        ),
    ]
    return Result(
        key="lbfgs",
        title="Beyond the lecture: L-BFGS, deterministic and noisy",
        chapter="",
        summary=summary,
        equations=[
            r"d_k = -H_k g_k,\qquad H_k \text{ from } (s_i, y_i)_{i > k - m}"
            r" \text{ by the two-loop recursion}",
            r"f(x + t d) \le f(x) + c_1 t\, g^{\top} d,\qquad"
            r" |\nabla f(x + t d)^{\top} d| \le c_2 |g^{\top} d|",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Matrix regression (condition number 1e4): loss above the optimum at equal "
                "rows processed",
                ["gradients", "optimizer", "learning rate", "final loss - optimum", "steps"],
                rows,
                note="L-BFGS: torch's iteration (up to 20 iterations and 25 evaluations per "
                "step, one batch per step, history 100, strong Wolfe line search with c1 = "
                "1e-4, c2 = 0.9); the others tuned on the same budget of rows.",
            )
        ],
        figures={
            "curves": Plot(
                lines_figure(
                    curves,
                    xlabel="passes over the data (rows processed / n)",
                    ylabel="loss - optimum",
                    title="L-BFGS and Adam, full-batch and mini-batch",
                ),
                "the full-batch L-BFGS line falls by orders of magnitude where Adam's bends; "
                "with mini-batches L-BFGS's line stalls.",
            )  # fmt: skip
        },
        claims=claims,
        settings={
            "full-batch passes": full_steps,
            "mini-batch epochs": noisy_epochs,
            "batch": batch,
        },  # fmt: skip
    )
