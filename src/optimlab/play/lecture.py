"""The lecture's two small scenes: the 500-row regression (``POST /api/regression``, by
:func:`optimlab.lab.training.fit`) and the EWMA (``POST /api/ewma``, by
:func:`optimlab.ewma`).

Regression: y = w x + b fit by mean squared error L(w, b) = mean_i (y_i - w x_i - b)^2 with
batch (``batch_size`` null), mini-batch or stochastic gradient descent; updates =
epochs * ceil(500 / batch_size) (500 rows, batch 100, 10 epochs: 50 updates, 5000 gradient
evaluations).

EWMA: V_t = beta V_{t-1} + (1 - beta) theta_t, V_0 = 0 (``"zero"``) or theta_0 (``"first"``),
bias correction V_t / (1 - beta^t); ``average[k]`` is V_k (``average[0]`` = V_0, null when
bias-corrected), over the lecture's temperatures theta_0..theta_4 = 25, 13, 17, 31, 43 or the
tour's noisy year theta_d = 20 + 10 sin(2 pi d / 365) + N(0, 4^2).
"""

from __future__ import annotations

import functools

import numpy as np

from ..ewma import effective_window
from ..ewma import ewma as ewma_series
from ..lab import problems, training
from ..lab.experiments.ewma import TEMPERATURES, _seasonal_series
from . import codegen
from . import requests as rq
from .errors import RequestError

__all__ = ["regression", "ewma", "REGRESSION_UPDATES"]

#: the most updates one regression request may take
REGRESSION_UPDATES = rq.LIMITS["regression_updates"]
_CONTOUR_N = 60


@functools.lru_cache(maxsize=1)
def _problem():
    return problems.get("linear")


def _contours(problem, path: np.ndarray, optimum: np.ndarray) -> dict:
    """L(w, b) on a grid covering the path and the optimum, by the sums of x and y."""
    x, y = problem.X[:, 0], problem.y
    points = np.vstack([path, optimum[None]])
    finite = points[np.isfinite(points).all(axis=1)]
    low, high = finite.min(axis=0), finite.max(axis=0)
    pad = np.maximum(0.15 * (high - low), 0.5)
    w = np.linspace(low[0] - pad[0], high[0] + pad[0], _CONTOUR_N)
    b = np.linspace(low[1] - pad[1], high[1] + pad[1], _CONTOUR_N)
    ww, bb = np.meshgrid(w, b)  # loss[i][j] = L(w[j], b[i])
    sx, sy, sxx, sxy, syy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()
    loss = syy - 2 * ww * sxy - 2 * bb * sy + ww * ww * sxx + 2 * ww * bb * sx + bb * bb
    return {"w": w, "b": b, "loss": loss}


def regression(body: dict) -> dict:
    """Train the lecture's regression; see the module docstring."""
    rq.obj(body, "body")
    rq.keys(body, ("batch_size", "epochs", "learning_rate", "optimizer", "seed"))
    problem = _problem()
    n = problem.n_samples
    batch = body.get("batch_size")
    if batch is not None:
        batch = rq.integer(body, "batch_size", "", None, 1, n)
    epochs = rq.integer(body, "epochs", "", 10, 1, 50)
    seed = rq.integer(body, "seed", "", 0, 0, rq.LIMITS["seed"])
    lr = rq.number(body, "learning_rate", "", 0.1, 0.0, 1e3)
    updates = epochs * training.updates_per_epoch(n, batch)
    rq.budget(
        "batch_size",
        f"updates = epochs x ceil({n} / batch_size) (here {epochs} x "
        f"{training.updates_per_epoch(n, batch)})",
        updates,
        REGRESSION_UPDATES,
    )
    raw = body.get("optimizer", {"name": "SGD"})
    raw = dict(rq.obj(raw, "optimizer"))
    hyper = dict(rq.obj(raw.get("hyperparameters", {}), "optimizer.hyperparameters"))
    hyper.setdefault("learning_rate", lr)
    raw["hyperparameters"] = hyper
    spec = rq.optimizer_of(raw, "optimizer", updates)
    try:
        history = training.fit(
            problem, spec.make(), epochs=epochs, batch_size=batch, seed=seed, trace=True
        )
    except FloatingPointError as error:
        raise RequestError(
            "learning_rate", f"the run diverged (lower the learning rate): {error}"
        ) from None
    trace = history.trace
    path = np.column_stack([trace.params["w"], trace.params["b"]])
    optimum = np.array([float(problem.solution["w"]), float(problem.solution["b"])])
    code = (
        "import optimlab as ol\n"
        "from optimlab.lab import problems, training\n\n"
        "problem = problems.get('linear')  # the lecture's 500 rows: y = 3 x + 2 + noise\n"
        f"history = training.fit(\n    problem,\n    {codegen.optimizer_code(spec)},\n"
        f"    epochs={epochs!r},\n    batch_size={batch!r},\n    seed={seed!r},\n"
        "    trace=True,\n)\n"
        "path = list(zip(history.trace.params['w'], history.trace.params['b']))\n"
        "print(history.updates, 'updates,', history.gradient_evaluations, 'gradient evaluations')\n"
    )
    return {
        "rows": n,
        "batch_size": history.batch_size,
        "epochs": epochs,
        "updates": history.updates,
        "gradient_evaluations": history.gradient_evaluations,
        "path": path,
        "loss_per_update": history.loss_per_update,
        "evaluations_per_update": history.evaluations_per_update,
        "loss_per_epoch": history.loss_per_epoch,
        "contours": _contours(problem, path, optimum),
        "optimum": optimum,
        "optimum_loss": problem.optimum,
        "label": spec.label,
        "code": code,
    }


_NOISY_DAYS = 365


def _signal(kind: str, seed: int):
    if kind == "lecture":
        return np.array(TEMPERATURES, dtype=float), None
    series, truth = _seasonal_series(_NOISY_DAYS, seed)
    return series, truth


def ewma(body: dict) -> dict:
    """The EWMA of the chosen signal; see the module docstring."""
    rq.obj(body, "body")
    rq.keys(body, ("beta", "bias_correction", "initial", "signal", "seed"))
    beta = rq.number(body, "beta", "", 0.9, 0.0, 1.0, high_open=True)
    corrected = rq.boolean(body, "bias_correction", "", False)
    initial = rq.choice(body, "initial", "", "zero", ("zero", "first"))
    kind = rq.choice(body, "signal", "", "lecture", ("lecture", "noisy"))
    seed = rq.integer(body, "seed", "", 0, 0, rq.LIMITS["seed"])
    theta, truth = _signal(kind, seed)
    try:
        if initial == "first":
            average = ewma_series(
                theta, beta=beta, bias_correction=corrected, initial="first"
            ).tolist()
        else:
            rest = ewma_series(theta[1:], beta=beta, bias_correction=corrected)
            average = [None if corrected else 0.0, *rest.tolist()]
    except ValueError as error:
        raise RequestError("bias_correction", str(error)) from None
    if kind == "lecture":
        build = f"theta = np.array({TEMPERATURES!r})  # the lecture's theta_0..theta_4"
    else:
        build = (
            f"rng = np.random.default_rng({seed!r})\nd = np.arange({_NOISY_DAYS})\n"
            "truth = 20.0 + 10.0 * np.sin(2 * np.pi * d / 365.0)\n"
            f"theta = truth + rng.normal(0.0, 4.0, {_NOISY_DAYS})  # the tour's noisy year"
        )
    if initial == "first":
        call = f"average = ol.ewma(theta, beta={beta!r}, initial='first')  # V_0 = theta_0"
    else:
        call = (
            f"average = ol.ewma(theta[1:], beta={beta!r}, bias_correction={corrected!r})"
            "  # V_1, V_2, ... (V_0 = 0)"
        )
    code = f"import numpy as np\nimport optimlab as ol\n\n{build}\n{call}\n"
    return {
        "days": list(range(len(theta))),
        "signal": theta,
        "average": average,
        "truth": truth,
        "beta": beta,
        "window": effective_window(beta),
        "code": code,
    }
