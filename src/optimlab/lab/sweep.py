"""Many optimizer trajectories on a 2-D surface in one vectorized NumPy computation.

A sweep runs every combination of start points x learning rates x hyperparameter grid x seeds
of one optimizer. The runs of one hyperparameter combination are the rows of arrays of shape
(R, 2), R = starts x learning rates x seeds, and each step is one call of the optimizer's own
rule (:mod:`optimlab.rules`) on those arrays, with the learning rate as an (R, 1) column::

    g_t   = grad f(p_{t-1}) + gradient_noise * z_t[seed]
    p_t, state_t = rule(p_{t-1}, g_t, state_{t-1}; lr, hyperparameters, t)

where z = ``np.random.default_rng(seed).standard_normal((steps, 2))``: a seed gives every start,
learning rate and hyperparameter value the same noise (common random numbers), so that their
differences are not noise.

Every run computes bit for bit what a separate ``optimlab.get(optimizer, learning_rate=lr,
preset=preset, engine="reference", **hyperparameters)`` computes when it is given
``surface.gradient(p)`` (plus the noise) in ``apply_gradients`` at every step: the optimizer is
built once per combination to validate the arguments and resolve the preset's defaults, and
its pipeline (loss scaling, ``maximize``, clipping when asked for, weight decay) is replayed
in the Optimizer's order. Nothing is added: there is no hidden gradient clipping.

A run that leaves the region max(|x|, |y|) <= ``divergence``, or whose point or gradient is
not finite, is marked diverged at that step and frozen at its last point inside the region
(no NaN and no warning reaches the caller).

:func:`tune_learning_rate` picks the learning rate on a log grid by the median over starts and
seeds of the final loss or of the mean log gap, over the same horizon as the returned paths.
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from .. import optimizers, presets, schedules
from .._validation import check_bool, check_choice, check_float, check_int
from .stepping import _drive, _Plan, _scheduled_rate, _values, noise_table
from .surfaces import f_min
from .sweep_result import AGGREGATES, Spread, SweepResult, TuneResult  # noqa: F401

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "OBJECTIVES",
    "Spread",
    "SweepResult",
    "TuneResult",
    "sweep",
    "tune_learning_rate",
]

#: DeepOBS's learning-rate grid: 36 points from 1e-5 to 1e2, 0.2 decades apart
DEFAULT_LEARNING_RATES = np.logspace(-5, 2, 36)
#: what :func:`tune_learning_rate` minimizes (the median over starts and seeds)
OBJECTIVES = ("final_loss", "mean_log_gap")
# Without keep_paths, paths are still recorded (and the losses computed at the end, in one
# call) while they take at most this many float64 numbers per combination.
_PATH_BUDGET = 1 << 22


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def _check_surface(surface, need_start: bool) -> None:
    for attr in ("value", "gradient"):
        if not callable(getattr(surface, attr, None)):
            raise TypeError(
                f"surface must have value(xy) and gradient(xy) methods (like the surfaces of "
                f"optimlab.lab.surfaces), got {type(surface).__name__} without {attr}()"
            )
    if need_start and getattr(surface, "default_start", None) is None:
        raise TypeError(
            f"starts must be given: surface {type(surface).__name__} has no default_start"
        )


def _check_optimizer(optimizer) -> str:
    names = {k.lower(): k for k in optimizers.OPTIMIZERS}
    if not isinstance(optimizer, str) or optimizer.lower() not in names:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, optimizers.OPTIMIZERS))} "
            f"(any case), got {optimizer!r}"
        )
    return names[optimizer.lower()]


def _check_divergence(divergence) -> float:
    if isinstance(divergence, numbers.Real) and not isinstance(divergence, bool):
        if divergence == math.inf:
            return math.inf
    return check_float("divergence", divergence, 0.0, low_open=True)


def _check_starts(surface, starts, divergence: float) -> np.ndarray:
    if starts is None:
        starts = [surface.default_start]
    try:
        points = np.array(starts, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"starts must be an array-like of shape (S, 2) of numbers, got {starts!r}"
        ) from None
    if points.shape == (2,):
        points = points[None]
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"starts must have shape (S, 2) with S >= 1, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"starts must be finite, got {points.tolist()!r}")
    if not (np.abs(points) <= divergence).all():
        raise ValueError(
            f"starts must lie inside the region max(|x|, |y|) <= divergence = {divergence!r}, "
            f"got {points.tolist()!r}"
        )
    return points


def _check_schedule(schedule, learning_rate):
    """A schedule as ``step -> float`` (as the Optimizer resolves it); ``learning_rate`` must
    be one value beside it."""
    if _is_grid(learning_rate):
        raise ValueError(
            f"learning_rate must be a single value when a schedule is given (the schedule "
            f"sets every step's rate), got {learning_rate!r}"
        )
    if not callable(schedule):
        raise TypeError(
            f"schedule must be None or a learning-rate schedule (step -> float), got {schedule!r}"
        )
    return schedules.as_step_function(schedule)


def _is_grid(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, list | tuple | range)


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _check_learning_rates(learning_rate, name: str = "learning_rate") -> np.ndarray:
    if isinstance(learning_rate, np.ndarray) and learning_rate.ndim == 0:
        learning_rate = learning_rate.item()
    values = list(np.asarray(learning_rate).ravel()) if _is_grid(learning_rate) else None
    if values is None:
        if not isinstance(learning_rate, numbers.Real) or isinstance(learning_rate, bool):
            raise TypeError(
                f"{name} must be a float >= 0 or a 1-D sequence of them (schedules are not "
                f"supported in a sweep), got {learning_rate!r}"
            )
        values = [learning_rate]
    elif np.ndim(learning_rate) != 1 or not values:
        raise ValueError(
            f"{name} must be a float >= 0 or a non-empty 1-D sequence of them, got "
            f"{learning_rate!r}"
        )
    return np.array([check_float(name, _scalar(v), 0.0) for v in values], dtype=float)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = (seeds,)
    if not _is_grid(seeds) or np.ndim(seeds) != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers >= 0, got {seeds!r}")
    return tuple(check_int("seeds", _scalar(s), 0) for s in seeds)


def _split_grid(hyperparameters: dict) -> tuple[dict, dict]:
    """(grid: name -> tuple of values, fixed: name -> value)."""
    if "engine" in hyperparameters:
        raise TypeError(
            f"engine cannot be chosen in a sweep (it runs the rule itself on arrays), got "
            f"engine={hyperparameters['engine']!r}"
        )
    grid, fixed = {}, {}
    for name, value in hyperparameters.items():
        if _is_grid(value):
            if np.ndim(value) != 1 or len(value) == 0:
                raise ValueError(
                    f"{name} must be one value or a non-empty 1-D sequence of values, got {value!r}"
                )
            grid[name] = tuple(_scalar(v) for v in value)
        else:
            fixed[name] = _scalar(value)
    return grid, fixed


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def sweep(
    surface,
    optimizer: str,
    *,
    steps: int = 500,
    starts=None,
    learning_rate=0.01,
    seeds=(0,),
    gradient_noise: float = 0.0,
    preset: str = "keras",
    keep_paths: bool = True,
    divergence: float = 1e6,
    schedule=None,
    **hyperparameters,
) -> SweepResult:
    """Run ``optimizer`` on ``surface`` from every start, at every learning rate, for every
    combination of the hyperparameters given as sequences and every seed, in one vectorized
    computation per hyperparameter combination::

        g_t = grad f(p_{t-1}) + gradient_noise * z_t[seed],  p_t = rule(p_{t-1}, g_t; lr, ...)

    with z = ``np.random.default_rng(seed).standard_normal((steps, 2))`` (the same for every
    start, learning rate and hyperparameter value). Each run equals, bit for bit, a separate
    ``optimlab.get(optimizer, learning_rate=lr, preset=preset, engine="reference",
    **hyperparameters)`` fed ``surface.gradient(p)`` (plus that noise) for ``steps`` updates.

    Arguments:

    surface
        has ``value(xy)`` ((..., 2) -> (...)), ``gradient(xy)`` ((..., 2) -> (..., 2)) and,
        as used, ``default_start``, ``minima``, ``global_minimum``.
    optimizer
        a name of ``optimlab.OPTIMIZERS`` (any case).
    starts
        (S, 2) points (default: ``[surface.default_start]``).
    learning_rate
        a float >= 0 or a sequence of them (the ``"learning_rate"`` axis).
    seeds, gradient_noise
        noise N(0, gradient_noise^2) on every gradient coordinate, one stream per seed.
    preset
        ``"keras"``, ``"torch"`` or ``"optax"``: its defaults and formulas.
    keep_paths
        keep every point (``paths``, T + 1 x runs x 2 floats); the losses are always kept.
    divergence
        a run with max(|x|, |y|) > divergence, or a non-finite point or gradient, is diverged
        from that step on (and frozen at its last point inside).
    schedule
        None, or a learning-rate schedule (an :mod:`optimlab.schedules` object or any
        ``step -> float``) that replaces ``learning_rate``: step t uses ``schedule(t - 1)``,
        as an Optimizer given ``learning_rate=schedule`` does (its value must be a finite
        float >= 0). ``learning_rate`` must then be a single value (it is not used) and the
        ``"learning_rate"`` axis holds the schedule's first rate ``schedule(0)``.
    **hyperparameters
        any argument of the optimizer (``momentum=0.9``, ``nesterov=True``,
        ``weight_decay=1e-4``...); a sequence (``beta_1=[0.8, 0.9, 0.99]``) becomes an axis.
        ``use_ema`` and ``gradient_accumulation_steps`` are refused; clipping happens only
        when asked for; ``nan_policy`` changes nothing (a non-finite gradient ends its run
        as diverged).

    Returns a :class:`SweepResult` with axes ``start``, ``learning_rate``, the grid
    hyperparameters (in the order given) and ``seed``.
    """
    _check_surface(surface, starts is None)
    name = _check_optimizer(optimizer)
    steps = check_int("steps", steps, 1)
    divergence = _check_divergence(divergence)
    points = _check_starts(surface, starts, divergence)
    lrs = _check_learning_rates(learning_rate)
    if schedule is not None:
        schedule = _check_schedule(schedule, learning_rate)
        lrs = np.array([_scheduled_rate(schedule, 0)])
    seeds = _check_seeds(seeds)
    sigma = check_float("gradient_noise", gradient_noise, 0.0)
    preset = check_choice("preset", preset, presets.PRESETS)
    keep_paths = check_bool("keep_paths", keep_paths)
    grid, fixed = _split_grid(hyperparameters)

    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    plans = [_Plan.make(name, preset, {**fixed, **combo}, lrs) for combo in combos]
    if schedule is not None:  # one rate per step, the same for every run: one pass
        for plan in plans:
            plan.array_lr = False

    n_starts, n_lrs, n_seeds = len(points), len(lrs), len(seeds)
    rows = n_starts * n_lrs * n_seeds  # in the order (start, learning rate, seed)
    p0 = np.repeat(points, n_lrs * n_seeds, axis=0)
    lr_index = np.tile(np.repeat(np.arange(n_lrs), n_seeds), n_starts)
    seed_index = np.tile(np.arange(n_seeds), n_starts * n_lrs)
    noise = noise_table(sigma, seeds, steps)  # (steps, seeds, 2) or None
    _check_gradient(surface, p0)
    record = keep_paths or (steps + 1) * rows * 2 <= _PATH_BUDGET

    grid_shape = tuple(len(v) for v in grid.values())
    shape = (n_starts, n_lrs, *grid_shape, n_seeds)
    losses = np.empty((steps + 1, *shape))
    paths = np.empty((steps + 1, *shape, 2)) if keep_paths else None
    final_points = np.empty((*shape, 2))
    diverged_at = np.empty(shape, np.int64)
    run_shape = (n_starts, n_lrs, n_seeds)

    with np.errstate(all="ignore"):
        for gi, plan in zip(itertools.product(*(range(n) for n in grid_shape)), plans, strict=True):
            c_paths = np.empty((steps + 1, rows, 2)) if record else None
            c_losses = None if record else np.empty((steps + 1, rows))
            c_final = np.empty((rows, 2))
            c_diverged = np.empty(rows, np.int64)
            if plan.array_lr:
                parts = [(slice(None), lrs[lr_index][:, None])]
            else:  # the rule's scalars need one float learning rate: one pass per rate
                parts = [(np.flatnonzero(lr_index == j), float(lrs[j])) for j in range(n_lrs)]
                if schedule is not None:
                    parts = [(slice(None), schedule)]
            for sel, lr in parts:
                out_paths, out_losses, out_final, out_div = _drive(
                    plan,
                    surface,
                    p0[sel],
                    lr,
                    seed_index[sel],
                    noise,
                    steps,
                    divergence,
                    record,
                )
                if record:
                    c_paths[:, sel] = out_paths
                else:
                    c_losses[:, sel] = out_losses
                c_final[sel] = out_final
                c_diverged[sel] = out_div
            if record:
                c_losses = _values(surface.value, c_paths, (steps + 1, rows))
            at = (slice(None), slice(None), *gi, slice(None))
            losses[(slice(None), *at)] = c_losses.reshape(steps + 1, *run_shape)
            if keep_paths:
                paths[(slice(None), *at)] = c_paths.reshape(steps + 1, *run_shape, 2)
            final_points[at] = c_final.reshape(*run_shape, 2)
            diverged_at[at] = c_diverged.reshape(run_shape)

    axes = {"start": points, "learning_rate": lrs, **grid, "seed": seeds}
    return SweepResult(
        surface=surface,
        optimizer=name,
        preset=preset,
        steps=steps,
        axes=axes,
        paths=paths,
        losses=losses,
        final_points=final_points,
        diverged_at=diverged_at,
        f_min=f_min(surface),
        gradient_noise=sigma,
        divergence=divergence,
        hyperparameters=fixed,
    )


def _check_gradient(surface, points: np.ndarray) -> None:
    """One call up front: the gradient must have the points' shape and be float64 (what an
    Optimizer on float64 parameters accepts)."""
    with np.errstate(all="ignore"):
        g = surface.gradient(points)
    if not isinstance(g, np.ndarray) or g.shape != points.shape:
        raise ValueError(
            f"surface.gradient must map points of shape {points.shape} to an array of the same "
            f"shape, got {type(g).__name__} of shape {np.shape(g)}"
        )
    if g.dtype != np.float64:
        raise TypeError(f"surface.gradient must return float64 arrays, got {g.dtype}")


# ---------------------------------------------------------------------------------------------
# Tuning
# ---------------------------------------------------------------------------------------------


def tune_learning_rate(
    surface,
    optimizer: str,
    *,
    learning_rates=DEFAULT_LEARNING_RATES,
    steps: int = 500,
    starts=None,
    seeds=(0,),
    gradient_noise: float = 0.0,
    objective: str = "final_loss",
    preset: str = "keras",
    **hyperparameters,
) -> TuneResult:
    """The best learning rate of ``learning_rates`` (default: 36 points from 1e-5 to 1e2) for
    ``optimizer`` on ``surface``, by the median over starts and seeds of ``objective``::

        "final_loss"     f(p_T)
        "mean_log_gap"   mean over k = 0..T of log10(max(f(p_k) - f_min, 0) + 1e-16)

    (a diverged run counts as +inf). One :func:`sweep` over all rates, keeping the paths: the
    returned best run is the one that was scored, over the same horizon ``steps``. The
    hyperparameters must be single values (tune one configuration at a time).
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    lrs = _check_learning_rates(learning_rates, "learning_rates")
    grid, _ = _split_grid(hyperparameters)
    if grid:
        name = next(iter(grid))
        raise ValueError(
            f"{name} must be a single value in tune_learning_rate (one configuration at a "
            f"time), got {hyperparameters[name]!r}"
        )
    result = sweep(
        surface,
        optimizer,
        steps=steps,
        starts=starts,
        learning_rate=lrs,
        seeds=seeds,
        gradient_noise=gradient_noise,
        preset=preset,
        keep_paths=True,
        **hyperparameters,
    )
    if objective == "final_loss":
        values = np.where(result.diverged, np.inf, result.final_loss)
    else:
        values = result.mean_log_gap()
    values = np.where(np.isnan(values), np.inf, values)
    scores = np.median(values, axis=(0, 2))  # axes (start, learning rate, seed)
    index = int(np.argmin(scores))
    return TuneResult(
        learning_rate=float(lrs[index]),
        index=index,
        learning_rates=lrs,
        scores=scores,
        objective=objective,
        sweep=result,
    )
