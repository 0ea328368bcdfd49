"""``POST /api/trajectories``: several optimizers on one surface, every path computed by
:func:`optimlab.lab.race.race` (side by side, one gradient call per step for all of them; bit
for bit what :func:`optimlab.lab.sweep.sweep` computes for each alone, and what an optimlab
optimizer fed ``surface.gradient(p)`` through ``apply_gradients`` computes)::

    g_t = grad f(p_{t-1}) + gradient_noise * z_t,  z = default_rng(seed).standard_normal((T, 2))
    p_t = optimizer step of p_{t-1} with g_t                       (t = 1..T)

A run that leaves |x|, |y| <= 1e6 or meets a non-finite gradient is diverged at that step
(``diverged_at``) and frozen at its last point (its path repeats that point to the end).
"""

from __future__ import annotations

import numpy as np

from ..lab import surfaces as surfaces_module
from ..lab.race import Runner, race
from . import catalog, codegen
from . import requests as rq
from .errors import RequestError

__all__ = ["trajectories", "common_run_fields", "run_all"]

_KEYS = ("surface", "expression", "domain", "start", "steps", "gradient_noise", "seed")


def common_run_fields(body: dict, *, step_field: bool = False):
    """The fields a run shares with the anatomy: (surface, source, start, steps, noise,
    seed)."""
    start = None
    if "start" in body:
        start = rq.point(body["start"], "start", "start")
    surface, source = rq.surface_of(body, start=start)
    if start is None:
        start = tuple(float(v) for v in surface.default_start)
    steps = rq.integer(body, "steps", "", 200, 1, rq.LIMITS["steps"])
    noise = rq.number(body, "gradient_noise", "", 0.0, 0.0, 1e6)
    seed = rq.integer(body, "seed", "", 0, 0, rq.LIMITS["seed"])
    return surface, source, start, steps, noise, seed


def run_all(surface, specs, start, steps: int, noise: float, seed: int):
    """Every optimizer's run: [(path (T+1, 2), loss (T+1,), diverged_at or None)]."""
    runners = [
        Runner(
            spec.base,
            spec.preset,
            spec.learning_rate,
            dict(spec.kwargs),
            spec.make_schedule(),
        )
        for spec in specs
    ]
    try:
        result = race(surface, runners, start=start, steps=steps, seed=seed, gradient_noise=noise)
    except (TypeError, ValueError) as error:  # e.g. a gradient of the wrong shape
        raise RequestError("optimizers", str(error)) from None
    out = []
    for i in range(len(specs)):
        at = int(result.diverged_at[i])
        out.append((result.paths[:, i], result.losses[:, i], None if at < 0 else at))
    return out


def _grad_norm(surface, path: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.sqrt((surface.gradient(path) ** 2).sum(axis=-1))


def trajectories(body: dict) -> dict:
    """Run every optimizer of the request; see the module docstring."""
    rq.obj(body, "body")
    rq.keys(body, (*_KEYS, "optimizers"))
    surface, source, start, steps, noise, seed = common_run_fields(body)
    specs = rq.optimizer_list(body, steps)
    rq.budget(
        "steps",
        f"steps x optimizers (here {steps} x {len(specs)})",
        steps * len(specs),
        rq.LIMITS["trajectory_steps"],
        rq.work_factor(surface),
    )
    runs = []
    done = run_all(surface, specs, start, steps, noise, seed)
    for i, (spec, (path, loss, diverged)) in enumerate(zip(specs, done, strict=True)):
        runs.append(
            {
                "label": spec.label,
                "name": spec.name,
                "optimizer": spec.base,
                "preset": spec.preset,
                "color": catalog.color(spec.name, i),
                "path": path,
                "loss": loss,
                "grad_norm": _grad_norm(surface, path),
                "diverged_at": diverged,
            }
        )
    return {
        "runs": runs,
        "start": list(start),
        "steps": steps,
        "f_min": surfaces_module.f_min(surface),
        "code": codegen.trajectories_code(source, start, steps, noise, seed, specs),
    }
