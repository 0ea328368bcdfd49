"""The JSON API of ``optimlab play``: pure functions, a dict in and a dict out.

Every endpoint is a function here (or in the module it names); :mod:`optimlab.play.server`
only routes. JSON in, JSON out; every non-finite float is ``null``. A refused request raises
:class:`~optimlab.play.errors.RequestError`: status 400, body ``{"error": {"field":
"optimizers[0].hyperparameters.beta_1", "message": "beta_1 must be a float in [0, 1), got
2.0"}}`` (``field`` is the path into the request; a typed expression's error adds
``"position"``). Unknown keys are refused (a typo must not pass silently). A malformed body
is field ``"body"``; a body over 64 KiB gets 413, an unknown route 404.

Shared fields: a surface is ``"surface": name`` (``GET /api/surfaces``) or ``"expression":
text`` (a function of x and y, e.g. ``"x**2 + 10*y**2"``), with an optional ``"domain":
[[xmin, xmax], [ymin, ymax]]``. An optimizer is ``{"name": "Adam" | "Momentum" | "NAG" | ...,
"preset": "keras" (default) | "torch" | "optax", "hyperparameters": {...}, "schedule"?:
{"name": "ExponentialDecay", "arguments": {...}} | null, "label"?: text}``; a schedule's
initial rate is the optimizer's ``learning_rate``.

GET /api
    this documentation: ``{"endpoints": [{"method", "path", "doc"}], "limits": {...},
    "text": the module docstring}``.
GET /api/surfaces
    ``{"surfaces": [{"name", "title", "formula", "description", "domain", "minima":
    [{"point", "value", "kind"}], "starts", "default_start", "log_levels", "tags"}]}``.
GET /api/optimizers
    ``{"presets", "default_preset", "optimizers": [{"name", "optimizer", "fixed", "color",
    "hyperparameters": [slider], "accepted"}], "schedules": [{"name", "rate_argument",
    "formula", "arguments": [slider]}]}``; a slider is ``{"name", "kind", "low", "high",
    "log", "choices"?, "default"}`` (default per preset for hyperparameters).
POST /api/grid
    ``{surface | expression, "domain"?, "n": 16..256 (120)}`` -> ``{"x", "y", "z"
    (z[i][j] = f(x[j], y[i])), "f_min", "log_levels", "domain"}``.
POST /api/trajectories
    ``{surface | expression, "domain"?, "start"? (the surface's default start), "steps":
    1..5000 (200), "gradient_noise": >= 0 (0), "seed": >= 0 (0), "optimizers": [1..8]}``
    -> ``{"runs": [{"label", "name", "optimizer", "preset", "color", "path" (steps + 1
    points, path[k] after k updates), "loss", "grad_norm" (|grad f| at each point, without
    noise), "diverged_at": null | k}], "start", "steps", "f_min", "code"}``; steps x
    optimizers <= 20000. Each path equals an optimlab optimizer stepped by
    ``apply_gradients`` with ``surface.gradient(p) + gradient_noise * z_t`` (z from
    ``numpy.random.default_rng(seed).standard_normal((steps, 2))``), bit for bit; a run
    leaving |x|, |y| <= 1e6 (or with a non-finite gradient) is frozen at its last point.
POST /api/anatomy
    the trajectories body with one ``"optimizer"`` instead of ``"optimizers"`` and
    ``"step": k`` (0..steps) -> ``{"step", "point" p_k, "gradient" g_{k+1} (with noise),
    "next_point" p_{k+1}, "learning_rate" (of update k+1), "velocity" (the momentum buffer
    after k updates, or null), "lookahead" (NAG: p_k + momentum * v_k, the point momentum
    alone carries it to; null otherwise), "effective_lr" (per coordinate, Adagrad / RMSprop /
    Adam family / Adadelta; null otherwise), "preconditioned" (what effective_lr multiplies:
    p_{k+1} = p_k - effective_lr * preconditioned without weight decay or momentum),
    "state" (slots after k updates), "next_state" (after k + 1)}``.
POST /api/sweep
    ``{"kind": "basins", surface | expression, "domain"?, "optimizer", "grid": 8..128 (64),
    "steps" (200)}`` -> ``{"x", "y", "basin" [[index into minima, -1 none, -2 diverged]],
    "final_loss", "minima", "steps"}`` (grid^2 x steps <= 2.1e6); or ``{"kind": "lr_beta",
    surface | expression, "optimizer" (SGD, Momentum or NAG), "learning_rates": {"low",
    "high", "count"}, "betas": {"low", "high", "count"}, "steps", "start"?}`` ->
    ``{"learning_rates", "betas", "final_loss" [betas x learning rates], "diverged",
    "theory": {"eigenvalues", "converges" [[bool]], "where"} | null}`` (count <= 64 each,
    count x count x steps <= 1e6; learning rates log-spaced, betas linear).
POST /api/regression
    ``{"batch_size": 1..500 | null (batch GD), "epochs": 1..50 (10), "learning_rate"
    (0.1), "optimizer"? (an optimizer object, default SGD), "seed" (0)}`` -> ``{"rows",
    "updates", "gradient_evaluations", "batch_size", "epochs", "path" [[w, b]] (updates +
    1), "loss_per_update", "evaluations_per_update", "loss_per_epoch", "contours": {"w",
    "b", "loss"}, "optimum", "optimum_loss", "code"}``; updates <= 5000.
POST /api/ewma
    ``{"beta": [0, 1) (0.9), "bias_correction": false, "initial": "zero" | "first",
    "signal": "lecture" | "noisy", "seed": 0}`` -> ``{"days", "signal", "average", "window":
    1/(1-beta), "truth" (the noisy signal's clean curve, or null), "code"}``.
"""

from __future__ import annotations

from . import catalog
from . import requests as rq

__all__ = ["ROUTES", "documentation"]


def documentation() -> dict:
    """``GET /api``: the endpoints, the limits and this module's docstring."""
    endpoints = [
        {"method": method, "path": path, "doc": (function.__doc__ or "").strip()}
        for (method, path), function in ROUTES.items()
    ]
    return {"endpoints": endpoints, "limits": dict(rq.LIMITS), "text": __doc__}


def surfaces() -> dict:
    """The surfaces of optimlab.lab.surfaces with domains, minima and starts."""
    return catalog.surfaces_json()


def optimizers() -> dict:
    """The presets, optimizers (colours, sliders, defaults per preset) and schedules."""
    return catalog.optimizers_json()


def grid(body: dict) -> dict:
    """f on an n x n grid of the domain, for contours and heat maps."""
    from .maps import grid as run

    return run(body)


def trajectories(body: dict) -> dict:
    """The paths of several optimizers on one surface (exactly optimlab's)."""
    from .runs import trajectories as run

    return run(body)


def anatomy(body: dict) -> dict:
    """The state of one run at step k: gradient, velocity, look-ahead, effective rates."""
    from .anatomy import anatomy as run

    return run(body)


def sweep(body: dict) -> dict:
    """The maps: basins of attraction, or the final loss over (learning rate, beta)."""
    from .maps import sweep as run

    return run(body)


def regression(body: dict) -> dict:
    """The lecture's 500-row regression trained by batch / mini-batch / stochastic GD."""
    from .lecture import regression as run

    return run(body)


def ewma(body: dict) -> dict:
    """The EWMA of the lecture's temperatures or of the noisy year."""
    from .lecture import ewma as run

    return run(body)


#: (method, path) -> function (GET: no argument; POST: the JSON body)
ROUTES = {
    ("GET", "/api"): documentation,
    ("GET", "/api/surfaces"): surfaces,
    ("GET", "/api/optimizers"): optimizers,
    ("POST", "/api/grid"): grid,
    ("POST", "/api/trajectories"): trajectories,
    ("POST", "/api/anatomy"): anatomy,
    ("POST", "/api/sweep"): sweep,
    ("POST", "/api/regression"): regression,
    ("POST", "/api/ewma"): ewma,
}
