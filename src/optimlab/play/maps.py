"""The pictures computed from a whole grid: ``POST /api/grid`` (f over the domain, for
contours) and ``POST /api/sweep`` (basins of attraction; the final loss over (learning rate,
beta) with the theory's convergence region), all by :func:`optimlab.lab.sweep.sweep`.

The theory of the (lr, beta) map: near a minimum with Hessian eigenvalues lambda_i (exact
for a quadratic), momentum acts on each eigen-direction as a 2x2 linear map of (x, v),

    heavy ball  M = [[1 - eta lambda, -beta], [eta lambda, beta]]           (SGD, Momentum)
    Nesterov    M = [[1 - eta lambda (1 + beta), beta^2], [-eta lambda, beta]]      (NAG)

and the run converges exactly when the spectral radius rho(M) < 1 for every lambda_i.
"""

from __future__ import annotations

import numpy as np

from ..lab import surfaces as surfaces_module
from ..lab.experiments.quadratic import spectral_radius
from ..lab.sweep import sweep as run_sweep
from . import requests as rq
from .errors import RequestError

__all__ = ["grid", "sweep", "converges"]

_GRID_KEYS = ("surface", "expression", "domain", "n")


def _axes(domain, n: int) -> tuple[np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = domain
    return np.linspace(x0, x1, n), np.linspace(y0, y1, n)


def grid(body: dict) -> dict:
    """f on an n x n grid: ``z[i][j] = f(x[j], y[i])``."""
    rq.obj(body, "body")
    rq.keys(body, _GRID_KEYS)
    surface, _ = rq.surface_of(body)
    low, high = rq.LIMITS["grid_n"]
    n = rq.integer(body, "n", "", 120, low, high)
    x, y = _axes(surface.domain, n)
    xy = np.stack(np.meshgrid(x, y), axis=-1)
    with np.errstate(all="ignore"):
        z = surface.value(xy)
    return {
        "x": x,
        "y": y,
        "z": z,
        "f_min": surfaces_module.f_min(surface),
        "log_levels": bool(surface.log_levels),
        "domain": [list(surface.domain[0]), list(surface.domain[1])],
    }


def _sweep_args(spec) -> dict:
    return dict(
        preset=spec.preset,
        schedule=spec.make_schedule(),
        keep_paths=False,
        **spec.kwargs,
    )


def _basins(body: dict) -> dict:
    rq.keys(
        body,
        ("kind", "surface", "expression", "domain", "optimizer", "grid", "steps", "tolerance"),
    )
    surface, _ = rq.surface_of(body)
    steps = rq.integer(body, "steps", "", 200, 1, rq.LIMITS["steps"])
    low, high = rq.LIMITS["basin_grid"]
    n = rq.integer(body, "grid", "", 64, low, high)
    rq.budget(
        "grid",
        f"grid^2 x steps (here {n}^2 x {steps})",
        n * n * steps,
        rq.LIMITS["basin_work"],
        rq.work_factor(surface),
    )
    tolerance = rq.number(body, "tolerance", "", 0.05, 0.0, 1e6, low_open=True)
    if "optimizer" not in body:
        raise RequestError("optimizer", "optimizer is required (an optimizer object)")
    spec = rq.optimizer_of(body["optimizer"], "optimizer", steps)
    x, y = _axes(surface.domain, n)
    starts = np.stack(np.meshgrid(x, y), axis=-1).reshape(-1, 2)
    result = run_sweep(
        surface,
        spec.base,
        steps=steps,
        starts=starts,
        learning_rate=spec.learning_rate,
        **_sweep_args(spec),
    )
    basin = result.basin(tolerance)[:, 0, 0]
    basin = np.where(result.diverged[:, 0, 0], -2, basin)
    return {
        "kind": "basins",
        "x": x,
        "y": y,
        "steps": steps,
        "tolerance": tolerance,
        "basin": basin.reshape(n, n),
        "final_loss": result.final_loss[:, 0, 0].reshape(n, n),
        "minima": [
            {"point": list(m.point), "value": m.value, "kind": m.kind} for m in surface.minima
        ],
        "label": spec.label,
    }


def _range(body: dict, key: str, *, log: bool) -> np.ndarray:
    field = key
    value = rq.obj(body.get(key), field)
    rq.keys(value, ("low", "high", "count"), field)
    for part in ("low", "high", "count"):
        if part not in value:
            raise RequestError(f"{field}.{part}", f"{key}.{part} is required")
    count = rq.integer(value, "count", field, 0, 1, rq.LIMITS["lr_beta_count"])
    if log:
        low = rq.number(value, "low", field, 0.0, 0.0, 1e3, low_open=True)
        high = rq.number(value, "high", field, 0.0, low, 1e3)
        return np.geomspace(low, high, count)
    low = rq.number(value, "low", field, 0.0, 0.0, 1.0, high_open=True)
    high = rq.number(value, "high", field, 0.0, low, 1.0, high_open=True)
    return np.linspace(low, high, count)


def converges(lrs, betas, eigenvalues, nesterov: bool) -> np.ndarray:
    """[beta][lr]: rho(M(eta, beta, lambda)) < 1 for every eigenvalue (module docstring)."""
    eta = np.asarray(lrs, float)[None, :]
    beta = np.asarray(betas, float)[:, None]
    ok = np.ones((beta.shape[0], eta.shape[1]), bool)
    for lam in eigenvalues:
        if nesterov:
            m = np.empty((*ok.shape, 2, 2))
            m[..., 0, 0] = 1 - eta * lam * (1 + beta)
            m[..., 0, 1] = beta * beta
            m[..., 1, 0] = -eta * lam
            m[..., 1, 1] = beta
            rho = np.max(np.abs(np.linalg.eigvals(m)), axis=-1)
        else:
            rho = spectral_radius(eta, beta, lam)
        ok &= rho < 1.0
    return ok


def _theory(surface, lrs, betas, nesterov: bool, start) -> dict | None:
    """The convergence region where the Hessian is known: constant (an exact quadratic) or
    at the global minimum."""
    (x0, x1), (y0, y1) = surface.domain
    probes = np.array([start, [x0, y0], [x1, y1], [0.5 * (x0 + x1), 0.3 * y0 + 0.7 * y1]])
    with np.errstate(all="ignore"):
        hessians = surface.hessian(probes)
    if not np.isfinite(hessians).all():
        return None
    if np.allclose(hessians, hessians[0], rtol=1e-12, atol=1e-12):
        h, where = hessians[0], "exact quadratic"
    else:
        minimum = surface.global_minimum
        if minimum is None:
            return None
        with np.errstate(all="ignore"):
            h = surface.hessian(np.array(minimum.point))
        where = "the Hessian at the minimum"
        if not np.isfinite(h).all():
            return None
    eigenvalues = np.linalg.eigvalsh(0.5 * (h + h.T))
    return {
        "eigenvalues": eigenvalues,
        "converges": converges(lrs, betas, eigenvalues, nesterov),
        "where": where,
    }


def _lr_beta(body: dict) -> dict:
    rq.keys(
        body,
        (
            "kind",
            "surface",
            "expression",
            "domain",
            "optimizer",
            "learning_rates",
            "betas",
            "steps",
            "start",
        ),
    )
    start = rq.point(body["start"], "start", "start") if "start" in body else None
    surface, _ = rq.surface_of(body, start=start)
    if start is None:
        start = tuple(float(v) for v in surface.default_start)
    steps = rq.integer(body, "steps", "", 200, 1, rq.LIMITS["steps"])
    lrs = _range(body, "learning_rates", log=True)
    betas = _range(body, "betas", log=False)
    work = len(lrs) * len(betas) * steps
    rq.budget(
        "steps",
        f"learning_rates.count x betas.count x steps (here {len(lrs)} x {len(betas)} x {steps})",
        work,
        rq.LIMITS["lr_beta_work"],
        rq.work_factor(surface),
    )
    if "optimizer" not in body:
        raise RequestError("optimizer", "optimizer is required: SGD, Momentum or NAG")
    spec = rq.optimizer_of(
        body["optimizer"], "optimizer", steps, allowed_names=("SGD", "Momentum", "NAG")
    )
    kwargs = {k: v for k, v in spec.kwargs.items() if k != "momentum"}
    try:
        result = run_sweep(
            surface,
            "SGD",
            steps=steps,
            starts=[start],
            learning_rate=lrs,
            preset=spec.preset,
            keep_paths=False,
            momentum=[float(b) for b in betas],
            **kwargs,
        )
    except (TypeError, ValueError) as error:
        raise RequestError("betas", str(error)) from None
    final = result.final_loss[0, :, :, 0].T  # (betas, learning rates)
    diverged = result.diverged[0, :, :, 0].T
    plain = spec.schedule is None and not kwargs.get("dampening") and not kwargs.get("weight_decay")
    nesterov = bool(kwargs.get("nesterov"))
    return {
        "kind": "lr_beta",
        "learning_rates": lrs,
        "betas": betas,
        "steps": steps,
        "start": list(start),
        "final_loss": final,
        "diverged": diverged,
        "f_min": surfaces_module.f_min(surface),
        "theory": _theory(surface, lrs, betas, nesterov, start) if plain else None,
        "label": spec.label,
    }


def sweep(body: dict) -> dict:
    """``kind``: ``"basins"`` or ``"lr_beta"`` (see :mod:`optimlab.play.api`)."""
    rq.obj(body, "body")
    kind = body.get("kind")
    if kind == "basins":
        return _basins(body)
    if kind == "lr_beta":
        return _lr_beta(body)
    raise RequestError("kind", f"kind must be one of 'basins', 'lr_beta', got {rq.show(kind)}")
