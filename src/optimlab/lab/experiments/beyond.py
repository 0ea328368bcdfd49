"""Beyond the lecture: the optimizers of today that act on whole matrices.

``run_muon``: Muon's orthogonalized update (Jordan et al. 2024) on an ill-conditioned matrix
regression and on the hidden layers of the digits MLP, against momentum and Adam, every
learning rate tuned. ``run_adafactor``: Adafactor's factored second moment (Shazeer & Stern
2018): its state against Adam's for one 4096 x 4096 matrix and for the digits networks, and
what the factoring costs in training.
"""

from __future__ import annotations

import numpy as np

from ... import optimizers
from .. import problems
from . import Plot, Result, Table
from . import claims as C
from ._text import fmt, pct, plural
from ._training_runs import tuned_runs

#: Muon's decoupled decays are set to 0 so that the update rule alone is compared with Adam's
MUON = ("Muon", {"weight_decay": 0.0, "adam_weight_decay": 0.0})
MUON_CONTENDERS = (
    ("Momentum", "SGD", {"momentum": 0.9}),
    ("Adam", "Adam", {}),
    ("Muon", *MUON),
)


def update_spectrum(problem, base, kwargs) -> np.ndarray:
    """The singular values (descending) of the first update ``W_1 - W_0`` that ``base`` makes
    from the problem's initial parameters with learning rate 1 on the full-batch gradient."""
    params = problem.init_params(0)
    _, grads = problem.loss_and_grad(params)
    opt = optimizers.get(base, learning_rate=1.0, **kwargs)
    w = params["W"].copy()
    opt.apply_gradients([(grads["W"].copy(), w)])
    return np.linalg.svd(w - params["W"], compute_uv=False)


def _spread(values: np.ndarray) -> float:
    """``sigma_max / sigma_min``: 1 for an orthogonal matrix, the condition number otherwise."""
    return float(values[0] / values[-1])


def run_muon(quick: bool = False) -> Result:
    """Momentum, Adam and Muon, each with its learning rate tuned, on a rotated ill-conditioned
    matrix regression (full batch, cosine decay over a fixed budget) and on the digits MLP
    (mini-batches, constant rate, several seeds); and the singular values of each first
    update."""
    from ...viz import lines_figure

    kappa = 1e4
    matrix = problems.get("matrix_regression", condition_number=kappa)
    steps = 40 if quick else 100
    grid = np.logspace(-4, 1, 6 if quick else 11)
    reg = {
        label: tuned_runs(
            matrix, label, base, kw, grid, epochs=steps, batch_size=None, seeds=1, cosine=True
        )  # fmt: skip
        for label, base, kw in MUON_CONTENDERS
    }
    gradient = np.linalg.svd(matrix.loss_and_grad(matrix.init_params(0))[1]["W"],
                             compute_uv=False)  # fmt: skip
    spectra = {label: update_spectrum(matrix, base, kw) for label, base, kw in MUON_CONTENDERS}
    spreads = {label: _spread(s) for label, s in spectra.items()}

    mlp = problems.get("digits_mlp")
    epochs, batch = (3, 64) if quick else (5, 64)
    seeds = 2 if quick else 3
    net = {
        label: tuned_runs(
            mlp,
            label,
            base,
            kw,
            np.logspace(-4, 0, 5 if quick else 9),
            epochs=epochs,
            batch_size=batch,
            seeds=seeds,
        )  # fmt: skip
        for label, base, kw in MUON_CONTENDERS
    }
    accuracy = {k: mlp.metrics(r.params)["accuracy"] for k, r in net.items()}

    numbers = {"gradient spread sigma_max/sigma_min": _spread(gradient)}
    rows_reg, rows_net = [], []
    quarter, half = steps // 4, steps // 2
    for label, r in reg.items():
        c = r.curves[0]
        numbers[f"matrix regression final excess loss: {label}"] = float(c[-1])
        numbers[f"first-update spread: {label}"] = spreads[label]
        rows_reg.append([label, r.tuned.learning_rate, float(c[quarter]), float(c[half]),
                         float(c[-1]), spreads[label]])  # fmt: skip
    for label, r in net.items():
        numbers[f"MLP median final loss: {label}"] = r.median_final
        rows_net.append([label, r.tuned.learning_rate, r.median_final, float(r.finals.min()),
                         float(r.finals.max()), pct(accuracy[label])])  # fmt: skip
    best_reg = min(reg, key=lambda k: reg[k].curves[0, -1])
    best_net = min(net, key=lambda k: net[k].median_final)
    m_reg, a_reg, s_reg = (reg[k].curves[0, -1] for k in ("Muon", "Adam", "Momentum"))
    m_net, a_net, s_net = (net[k].median_final for k in ("Muon", "Adam", "Momentum"))
    x_steps = np.arange(steps + 1)
    figures = {
        "matrix_regression": Plot(
            lines_figure(
                {k: (x_steps, r.curves[0]) for k, r in reg.items()},
                xlabel="step (full batch)",
                ylabel="loss - optimum",
                title=f"Matrix regression 32 x 16, rotated inputs of condition number {kappa:g}: "
                f"each tuned, cosine decay over {steps} steps",
            ),
            "Muon's line keeps falling after momentum's and Adam's flatten: the small "
            "singular directions of the error, which their updates barely move, get Muon's "
            "full step.",
        ),
        "update_spectrum": Plot(
            lines_figure(
                {
                    "gradient": (np.arange(1, gradient.size + 1), gradient / gradient[0]),
                    **{k: (np.arange(1, s.size + 1), s / s[0]) for k, s in spectra.items()},
                },
                xlabel="singular value index",
                ylabel="singular value / largest",
                title="The first update's singular values (from W = 0, full batch)",
            ),
            "momentum's update is the gradient (its line covers it) and spans orders of "
            "magnitude; Adam's, taken elementwise, is flatter but not flat; Muon's "
            "Newton-Schulz iteration makes every singular value nearly the same.",
        ),
        "mlp": Plot(
            lines_figure(
                {k: (np.arange(epochs + 1), np.median(r.curves, axis=0)) for k, r in net.items()},
                xlabel="epoch",
                ylabel="full-data cross-entropy (median over seeds)",
                title=f"Digits MLP 64-32-10, batch {batch}: Muon on W1 and W2, AdamW on the biases",
            ),
            "the three start at the same loss; read the order at the last epoch.",
        ),
    }
    summary = (
        "The lecture's optimizers see a model as one long vector and give each coordinate its "
        "own step. Muon (Jordan et al. 2024; Keras 3, torch.optim and optax ship it) treats a "
        "weight matrix as a matrix: it keeps momentum $M$, then replaces it by the nearest "
        "orthogonal matrix $U V^\\top$ of its singular value decomposition $M = U S V^\\top$, "
        "computed without an SVD by five Newton-Schulz iterations, and steps along it. Every "
        "direction of the matrix then moves by the same amount, however small its gradient; "
        "vectors (biases) fall back to AdamW.\n\n"
        f"**A matrix regression** (a linear layer 32 x 16 fit by least squares) with inputs "
        f"whose covariance has condition number {kappa:g} in rotated directions: the first "
        f"gradient's singular values span a factor of {fmt(_spread(gradient))}. One update of "
        f"each optimizer from $W = 0$ spreads its singular values by "
        f"{fmt(spreads['Momentum'])} (momentum: the gradient itself), {fmt(spreads['Adam'])} "
        f"(Adam) and {fmt(spreads['Muon'])} (Muon). With every learning rate tuned and decayed "
        f"to 0 by a cosine over {plural(steps, 'full-batch step')}, the loss ends "
        f"{fmt(m_reg)} above the optimum for Muon, {fmt(s_reg)} for momentum and "
        f"{fmt(a_reg)} for Adam.\n\n"
        f"**The digits MLP** (64-32-10, tanh, batches of {batch}, {epochs} epochs, the rate "
        f"tuned on seed 0 and reported over {seeds} seeds): Muon on both weight matrices ends "
        f"at a median loss of {fmt(m_net)}, Adam at {fmt(a_net)}, momentum at {fmt(s_net)}. "
        f"Muon's decoupled decays are set to 0 here so that only the update rule differs "
        f"(Keras's default is 0.004). The orthogonalized update is not a free lunch: its "
        f"step has a fixed size whatever the gradient's, so it needs a decaying rate to "
        f"settle (with a constant rate it stalls at a floor set by the rate)."
    )
    claims = [
        C.at_most(
            "Muon's first update is nearly orthogonal: its singular values lie within a factor "
            "of 2 of each other",
            spreads["Muon"],
            2.0,
        ),
        C.at_least(
            "The gradient's singular values on the ill-conditioned regression span more than "
            "a factor of 100",
            _spread(gradient),
            100.0,
        ),
        C.close(
            "Momentum's first update is the gradient times the rate: the same spread",
            spreads["Momentum"],
            _spread(gradient),
            rel=1e-9,
        ),
        C.check(
            "On the ill-conditioned matrix regression, tuned Muon ends below tuned momentum "
            "and tuned Adam",
            best_reg == "Muon",
            f"Muon {fmt(m_reg)}, momentum {fmt(s_reg)}, Adam {fmt(a_reg)}",
        ),
        C.check(
            "On the digits MLP, tuned Muon's median final loss is below tuned Adam's",
            m_net < a_net,
            f"Muon {fmt(m_net)}, Adam {fmt(a_net)}, best: {best_net}",
        ),
        C.check(
            "No tuned learning rate is left on the edge of its grid",
            not any(r.tuned.on_edge for r in [*reg.values(), *net.values()]),
        ),
    ]
    return Result(
        key="muon",
        title="Beyond the lecture: Muon, an orthogonalized update for matrices",
        chapter="",
        summary=summary,
        equations=[
            r"M_t = \mu M_{t-1} + G_t,\qquad O_t = \mathrm{NS}_5(M_t) \approx U V^{\top}"
            r"\ \ (M_t = U S V^{\top})",
            r"X_{k+1} = a X_k + b (X_k X_k^{\top}) X_k + c (X_k X_k^{\top})^2 X_k,\quad"
            r" (a, b, c) = (3.4445, -4.7750, 2.0315),\ X_0 = M_t / \lVert M_t \rVert_F",
            r"W_{t+1} = W_t - \eta_t\, 0.2 \sqrt{\max(n, m)}\; O_t",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Matrix regression 32 x 16 (condition number {kappa:g}, rotated), full batch, "
                f"cosine decay over {steps} steps: loss - optimum",
                [
                    "optimizer",
                    "tuned lr",
                    f"step {quarter}",
                    f"step {half}",
                    f"step {steps}",
                    "first update σmax/σmin",
                ],  # fmt: skip
                rows_reg,
                note="The first update is taken with learning rate 1 from W = 0 on the full "
                "gradient; σmax/σmin = 1 for an orthogonal matrix.",
            ),
            Table(
                f"Digits MLP 64-32-10 (tanh), batch {batch}, {epochs} epochs, constant rate: "
                f"final full-data loss over {plural(seeds, 'seed')}",
                [
                    "optimizer",
                    "tuned lr (seed 0)",
                    "median",
                    "min",
                    "max",
                    "accuracy (seed 0)",
                ],  # fmt: skip
                rows_net,
            ),
        ],
        figures=figures,
        claims=claims,
        settings={
            "condition number": kappa,
            "regression steps": steps,
            "MLP epochs": epochs,
            "MLP seeds": seeds,
        },  # fmt: skip
    )


def state_bytes(name: str, shapes, dtype=np.float32, **kwargs) -> int:
    """Bytes of the state buffers (``state_dict()["slots"]``) of ``optimlab.<name>`` after one
    step on parameters of ``shapes``."""
    params = [np.zeros(s, dtype) for s in shapes]
    opt = optimizers.get(name, **kwargs)
    opt.apply_gradients([(np.full_like(p, 1e-3), p) for p in params])
    return int(sum(buf.nbytes for buf in opt.state_dict()["slots"].values()))


def run_adafactor(quick: bool = False) -> Result:
    """Adafactor's state against Adam's, counted from the built optimizers (a 4096 x 4096
    float32 matrix, the digits MLP and CNN), and both trained on the MLP and the CNN with
    their rates tuned."""
    from ...viz import lines_figure

    n = 1024 if quick else 4096
    big = {k: state_bytes(k, [(n, n)]) for k in ("Adam", "Adafactor")}
    ratio = big["Adafactor"] / big["Adam"]
    epochs, batch, seeds = (2, 64, 1) if quick else (5, 64, 2)
    rows, numbers, curves = [], {f"state ratio {n} x {n}": ratio}, {}
    runs = {}
    for name in ("digits_mlp", "digits_cnn"):
        problem = problems.get(name)
        shapes = list(problem.shapes.values())
        sizes = {k: state_bytes(k, shapes, np.float64) for k in ("Adam", "Adafactor")}
        grid = np.logspace(-4, 0, 5 if quick else 9)
        for label in ("Adam", "Adafactor"):
            r = tuned_runs(problem, label, label, {}, grid, epochs=epochs, batch_size=batch,
                           seeds=seeds)  # fmt: skip
            runs[name, label] = r
            curves[f"{label} {name.split('_')[1].upper()}"] = (
                np.arange(epochs + 1), np.median(r.curves, axis=0)
            )  # fmt: skip
            rows.append([problem.title, label, sizes[label], r.tuned.learning_rate,
                         r.median_final, pct(problem.metrics(r.params)["accuracy"])])  # fmt: skip
            numbers[f"{name} median final loss: {label}"] = r.median_final
            numbers[f"{name} state bytes: {label}"] = sizes[label]
    gap = {
        name: runs[name, "Adafactor"].median_final / runs[name, "Adam"].median_final
        for name in ("digits_mlp", "digits_cnn")
    }
    summary = (
        "Adam keeps two numbers per parameter. For a weight matrix $n \\times m$, Adafactor "
        "(Shazeer & Stern 2018; in Keras 3, torch.optim and optax) keeps only the row and "
        "column means of the squared gradient, $R$ ($n$) and $C$ ($m$), and rebuilds the "
        "second moment as the rank-1 matrix $R C^\\top / \\sum R$; it keeps no first moment.\n\n"
        f"**Memory**, counted from the built optimizers' buffers: for one {n} x {n} float32 "
        f"matrix Adam holds {big['Adam']:,} bytes of state and Adafactor {big['Adafactor']:,}, "
        f"{fmt(100 * ratio)}% of Adam's. On the small digits networks, whose biases and 4-D "
        "kernel are not factored (a vector keeps its full second moment; the kernel's last "
        "two axes are), the table shows the bytes of each.\n\n"
        f"**Training** ({epochs} epochs, batches of {batch}, each rate tuned on seed 0): on "
        f"the MLP Adafactor ends at {fmt(gap['digits_mlp'])} times Adam's final loss, on the "
        f"CNN at {fmt(gap['digits_cnn'])} times. The factored moment is an approximation, and "
        "without a first moment the steps are noisier; its point is the memory of large "
        "models, where the state, not the arithmetic, decides what fits."
    )
    claims = [
        C.at_most(f"Adafactor's state for a {n} x {n} matrix is under 1% of Adam's", ratio, 0.01),
        C.close(
            "Adam's state is two float32 moments of the matrix's shape: 8 n^2 bytes",
            big["Adam"],
            8 * n * n,
        ),
        C.close(
            "Adafactor's state for the matrix is a row and a column: 4 (n + n) bytes",
            big["Adafactor"],
            8 * n,
        ),
        C.check(
            "Every tuned run learns: its final loss is below the loss at the start",
            all(np.all(r.curves[:, -1] < r.curves[:, 0]) for r in runs.values()),
        ),
    ]
    return Result(
        key="adafactor",
        title="Beyond the lecture: Adafactor, a second moment in O(n + m) memory",
        chapter="",
        summary=summary,
        equations=[
            r"R_t = \hat\beta_{2,t} R_{t-1} + (1 - \hat\beta_{2,t})\,"
            r"\operatorname{mean}_{\text{cols}}(G_t^2 + \epsilon_1),\quad "
            r"C_t = \hat\beta_{2,t} C_{t-1} + (1 - \hat\beta_{2,t})\,"
            r"\operatorname{mean}_{\text{rows}}(G_t^2 + \epsilon_1)",
            r"\hat V_t = R_t C_t^{\top} / \textstyle\sum_i R_{t,i},\qquad "
            r"U_t = G_t / \sqrt{\hat V_t},\quad \hat\beta_{2,t} = 1 - t^{-0.8}",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"State bytes (float64 parameters) and training, {epochs} epochs, batch {batch}",
                [
                    "problem",
                    "optimizer",
                    "state bytes",
                    "tuned lr",
                    "median final loss",
                    "accuracy (seed 0)",
                ],  # fmt: skip
                rows,
                note=f"A {n} x {n} float32 matrix: Adam {big['Adam']:,} bytes, Adafactor "
                f"{big['Adafactor']:,} bytes ({fmt(100 * ratio)}%).",
            )
        ],
        figures={
            "training": Plot(
                lines_figure(
                    curves,
                    xlabel="epoch",
                    ylabel="full-data cross-entropy (median)",
                    title="Adam and Adafactor on the digits MLP and CNN, each tuned",
                ),
                "solid lines are Adam and Adafactor on the MLP, dashed on the CNN; the gap "
                "between the two optimizers is the price of the factored moment.",
            )  # fmt: skip
        },
        claims=claims,
        settings={"matrix": f"{n} x {n} float32", "epochs": epochs, "seeds": seeds},
    )
