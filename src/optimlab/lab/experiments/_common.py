"""Helpers shared by the experiments: one optimizer's trajectory on a surface, and its figure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import optimizers
from ...params import Params
from ..contenders import resolve
from ..surfaces import f_min
from ._text import settled_step


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
        """The first step t from which f(p_j) - f_min <= target for every later step j up to
        the horizon (-1: not reached, or not held to the end; a diverged run never is)."""
        if self.diverged:
            return -1
        return settled_step(self.losses - f_min, target)

    def final_gap(self, f_min: float = 0.0) -> float:
        """f - f_min at the last finite point (a diverged run: where it left)."""
        finite = self.losses[np.isfinite(self.losses)]
        return float(finite[-1] - f_min) if finite.size else float("inf")


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
        losses_minus_f_min=True,
        loss_floor=LOSS_FLOOR,
    )


def paths_of(runs) -> dict:
    """label -> the points p_0..p_T of each run."""
    return {r.label: r.path for r in runs}


def losses_of(runs, f_min: float = 0.0) -> dict:
    """f - f_min per run, clamped at 0 (see ``_text.gap``)."""
    return {r.label: np.where(np.isfinite(r.losses), np.maximum(r.losses - f_min, 0.0), np.nan)
            for r in runs}  # fmt: skip


def grad_norms_of(runs) -> dict:
    """label -> |grad f(p_t)| of each run."""
    return {r.label: r.grad_norms for r in runs}


f_min_of = f_min  # the experiments' name for surfaces.f_min

#: the floor of f - f_min on the tour's log axes (0, the minimum itself, is drawn there)
LOSS_FLOOR = 1e-16


def swept(surface, spec: str, learning_rate: float, steps: int, start=None, label=None,
          **overrides) -> Trajectory:  # fmt: skip
    """The same run as :func:`trajectory`, computed by one vectorized :func:`~..sweep.sweep`
    (bit for bit the optimizer's own rule, and much faster for long runs); the points after a
    divergence are NaN as in :func:`trajectory`."""
    from ..sweep import sweep

    name, base, kwargs = resolve(spec)
    kwargs.update(overrides)
    start = surface.default_start if start is None else np.asarray(start, float)
    result = sweep(
        surface, base, steps=steps, starts=[start], learning_rate=learning_rate, **kwargs
    )
    path = np.array(result.paths.reshape(steps + 1, 2))
    at = int(np.asarray(result.diverged_at).ravel()[0])
    if at >= 0:
        path[at:] = np.nan
    with np.errstate(all="ignore"):
        losses = surface.value(path)
        grad_norms = np.linalg.norm(surface.gradient(path), axis=-1)
    return Trajectory(label or name, path, losses, grad_norms, at >= 0)
