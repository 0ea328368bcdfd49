"""Helpers shared by the experiments: one optimizer's trajectory on a surface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import optimizers
from ...params import Params
from ..contenders import resolve
from ..surfaces import f_min


@dataclass
class Trajectory:
    """The points p_0..p_T of one run, f(p_t) and |grad f(p_t)| at each, and where it stopped
    (``diverged``: left the region |p| < 1e6 or became non-finite)."""

    label: str
    path: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    diverged: bool

    def steps_to(self, target: float, f_min: float = 0.0) -> int:
        """The first step t with f(p_t) - f_min <= target, or -1."""
        hit = np.flatnonzero(self.losses - f_min <= target)
        return int(hit[0]) if hit.size else -1


def trajectory(
    surface, spec: str, learning_rate: float, steps: int, start=None, label=None, **overrides
) -> Trajectory:
    """Run contender ``spec`` (e.g. ``"Momentum"``, ``"SGD:momentum=0.5"``) on ``surface`` from
    ``start`` for ``steps`` updates through a :class:`~optimlab.Params` (the library's own step)."""
    name, base, kwargs = resolve(spec)
    kwargs.update(overrides)
    opt = optimizers.get(base, learning_rate=learning_rate, **kwargs)
    start = surface.default_start if start is None else np.asarray(start, float)
    params = Params({"xy": np.array(start, float)})
    xy, grad = params["xy"], params.grads["xy"]
    path = np.full((steps + 1, 2), np.nan)
    path[0] = xy
    diverged = False
    with np.errstate(all="ignore"):
        for t in range(steps):
            grad[...] = surface.gradient(xy)
            if not np.all(np.isfinite(grad)):
                diverged = True
                break
            opt.step(params)
            if not (np.all(np.isfinite(xy)) and np.max(np.abs(xy)) < 1e6):
                diverged = True
                break
            path[t + 1] = xy
        last = np.flatnonzero(np.isfinite(path[:, 0]))[-1]
        path[last + 1 :] = np.nan
        losses = surface.value(path)
        grad_norms = np.linalg.norm(surface.gradient(path), axis=-1)
    return Trajectory(label or name, path, losses, grad_norms, diverged)


def runs_figure(surface, runs, title: str):
    """The contours of ``surface`` with every run's path, and beside them f - f_min and the
    gradient norm per step (``viz.contour_with_paths``)."""
    from ...viz import contour_with_paths

    return contour_with_paths(
        surface,
        paths_of(runs),
        losses=losses_of(runs, f_min(surface)),
        grad_norms=grad_norms_of(runs),
        title=title,
    )


def paths_of(runs) -> dict:
    return {r.label: r.path for r in runs}


def losses_of(runs, f_min: float = 0.0) -> dict:
    return {r.label: r.losses - f_min for r in runs}


def grad_norms_of(runs) -> dict:
    return {r.label: r.grad_norms for r in runs}


f_min_of = f_min  # the experiments' name for surfaces.f_min


def steps_text(hit: int, steps: int) -> str:
    """'123 steps', or 'not within 400 steps' for a target that was not reached (-1)."""
    return f"{hit} steps" if hit >= 0 else f"not within {steps} steps"
