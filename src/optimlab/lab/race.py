"""Several optimizers from one start on one surface, stepped side by side.

A race is what the playground draws: a handful of optimizers (each with its own preset,
hyperparameters and schedule) from the same start, with the same gradient noise. Each run is
bit for bit the run :func:`optimlab.lab.sweep.sweep` computes for it alone (and so what an
``optimlab`` optimizer fed ``surface.gradient(p)`` through ``apply_gradients`` computes)::

    g_t = grad f(p_{t-1}) + gradient_noise * z_t,   z = default_rng(seed).standard_normal((T, 2))
    p_t = optimizer step of p_{t-1} with g_t                               (t = 1..T)

but the runs advance in lock-step: one call of ``surface.gradient`` per step evaluates every
run still going (a row each), so the fixed cost of a step is paid once for all of them, not
once per optimizer. A run that leaves max(|x|, |y|) <= ``divergence``, or meets a non-finite
gradient, is diverged at that step and frozen at its last point inside.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

import numpy as np

from .. import presets
from .._validation import check_choice, check_float, check_int
from .stepping import _Plan, _Rows, _values, noise_table
from .sweep import _check_divergence, _check_gradient, _check_schedule, _check_starts

__all__ = ["RaceResult", "Runner", "race"]


@dataclass(frozen=True)
class Runner:
    """One optimizer of a race: ``optimlab.get(optimizer, learning_rate=learning_rate,
    preset=preset, **hyperparameters)``, or with ``schedule`` (a step -> rate function or an
    :mod:`optimlab.schedules` object) in place of the constant learning rate."""

    optimizer: str
    preset: str = "keras"
    learning_rate: float = 0.01
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    schedule: Callable[[int], float] | None = None


@dataclass(frozen=True, eq=False)
class RaceResult:
    """``paths`` (T+1, N, 2): path[t, i] the point of runner i after t steps (path[0] the
    start); ``losses`` (T+1, N): f there; ``diverged_at`` (N,): the step at which a run left
    the region, or -1."""

    paths: np.ndarray
    losses: np.ndarray
    diverged_at: np.ndarray


def race(
    surface,
    runners: Sequence[Runner],
    *,
    start,
    steps: int = 500,
    seed: int = 0,
    gradient_noise: float = 0.0,
    divergence: float = 1e6,
) -> RaceResult:
    """Run every runner from ``start`` for ``steps`` steps; see the module docstring. Each
    run equals ``sweep(surface, r.optimizer, starts=[start], learning_rate=r.learning_rate,
    seeds=(seed,), gradient_noise=gradient_noise, preset=r.preset, schedule=r.schedule,
    **r.hyperparameters)`` to the last bit."""
    runners = list(runners)
    if not runners or not all(isinstance(r, Runner) for r in runners):
        raise TypeError(f"runners must be a non-empty list of Runner, got {runners!r}")
    steps = check_int("steps", steps, 1)
    seed = check_int("seed", seed, 0)
    sigma = check_float("gradient_noise", gradient_noise, 0.0)
    divergence = _check_divergence(divergence)
    point = _check_starts(surface, [start], divergence)  # (1, 2)
    rows = []
    for r in runners:
        preset = check_choice("preset", r.preset, presets.PRESETS)
        lr = check_float("learning_rate", r.learning_rate, 0.0)
        plan = _Plan.make(r.optimizer, preset, dict(r.hyperparameters), np.array([lr]))
        if r.schedule is not None:  # as sweep: one rate per step, a float
            rate = _check_schedule(r.schedule, lr)
        elif plan.array_lr:  # as sweep: a (1, 1) learning-rate column
            rate = np.array([[lr]])
        else:
            rate = lr
        rows.append(_Rows(plan, rate, slice(None), 1))  # noise[t - 1][:]: its one seed
    noise = noise_table(sigma, (seed,), steps)  # sweep's table for one seed: (steps, 1, 2)
    _check_gradient(surface, point)

    n = len(rows)
    bound = min(divergence, sys.float_info.max)
    points = np.repeat(point, n, axis=0)
    paths = np.empty((steps + 1, n, 2))
    paths[0] = points
    diverged_at = np.full(n, -1, np.int64)
    active = list(range(n))
    views = [points[i : i + 1] for i in range(n)]  # each run's row, updated in place
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            grads = surface.gradient(points if len(active) == n else points[active])
            still = []
            for j, i in enumerate(active):
                new, checked = rows[i].advance(t, views[i], grads[j : j + 1], noise)
                (x, y), (gx, gy) = new.tolist()[0], checked.tolist()[0]
                # sweep's test (_outside) for one row, on Python floats
                if not (abs(x) <= bound and abs(y) <= bound and isfinite(gx) and isfinite(gy)):
                    diverged_at[i] = t
                    paths[t:, i] = points[i]
                    continue
                views[i][...] = new
                still.append(i)
            if len(still) == n:
                paths[t] = points
            else:
                paths[t, still] = points[still]
            active = still
            if not active:
                break
        losses = _values(surface.value, paths, (steps + 1, n))
    return RaceResult(paths=paths, losses=losses, diverged_at=diverged_at)
