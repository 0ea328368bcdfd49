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
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import optimizers, presets, schedules
from .._validation import check_bool, check_choice, check_float, check_int
from ..clipping import l2_norm, norm_scale
from .surfaces import f_min

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
#: what :meth:`SweepResult.median_over` aggregates by name
AGGREGATES = ("final_loss", "final_gap", "mean_log_gap")

_LOG_FLOOR = 1e-16
# Without keep_paths, paths are still recorded (and the losses computed at the end, in one
# call) while they take at most this many float64 numbers per combination.
_PATH_BUDGET = 1 << 22
_FIXED_AXES = ("start", "learning_rate", "seed")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Spread:
    """An aggregate of :meth:`SweepResult.median_over`: over the axes ``over``, the median
    and the ``spread`` quantiles (``low``, ``high``; by default the minimum and maximum) of
    ``of``, per value of the remaining ``axes``::

        median[k] = median_i values[k, i],  low[k] = quantile_i(values[k, i], q_low), ...
    """

    axes: dict
    over: tuple
    of: str
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The runs of :func:`sweep`, indexed by ``axes`` (in this order): ``"start"``,
    ``"learning_rate"``, each hyperparameter given as a sequence, ``"seed"``.

    With T = ``steps`` and ``shape`` = the axes' lengths::

        paths[k]      p_k of every run, shape (T + 1, *shape, 2) (None without keep_paths)
        losses[k]     f(p_k), shape (T + 1, *shape)
        diverged_at   the step k at which a run left the region (-1: never); from k on, its
                      point and loss stay those of step k - 1

    ``f_min`` is the value of ``surface.global_minimum`` (0 if the surface has none).
    """

    surface: Any
    optimizer: str
    preset: str
    steps: int
    axes: dict
    paths: np.ndarray | None
    losses: np.ndarray
    final_points: np.ndarray
    diverged_at: np.ndarray
    f_min: float
    gradient_noise: float = 0.0
    divergence: float = 1e6
    hyperparameters: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The lengths of the axes: (starts, learning rates, *grid, seeds)."""
        return tuple(self.diverged_at.shape)

    @property
    def final_loss(self) -> np.ndarray:
        """f(p_T) of every run, shape ``shape`` (a diverged run: f at its frozen point)."""
        return self.losses[-1]

    @property
    def diverged(self) -> np.ndarray:
        """Whether each run left the region: ``diverged_at >= 0``."""
        return self.diverged_at >= 0

    def gap(self) -> np.ndarray:
        """f(p_k) - f_min of every run and step, shape (T + 1, *shape)."""
        return self.losses - self.f_min

    def steps_to(self, target: float, *, stay: bool = True) -> np.ndarray:
        """For every run, the step k from which f(p_j) - f_min <= ``target`` holds for every
        j >= k up to the horizon (-1: not reached, or not held to the end); with
        ``stay=False`` the first step k with f(p_k) - f_min <= ``target`` (a momentary dip
        counts). An int64 array of shape ``shape``; a diverged run never reaches a target."""
        target = check_float("target", target)
        stay = check_bool("stay", stay)
        with np.errstate(invalid="ignore"):
            hit = self.losses - self.f_min <= target
        if stay:
            hit = np.flip(np.logical_and.accumulate(np.flip(hit, axis=0), axis=0), axis=0)
        first = np.argmax(hit, axis=0)
        reached = hit.any(axis=0) & ~self.diverged
        return np.where(reached, first, -1).astype(np.int64)

    def basin(self, tolerance: float = 1e-2) -> np.ndarray:
        """The index into ``surface.minima`` of the minimum each run ended within
        ``tolerance`` of (|p_T - m| <= tolerance, Euclidean; the nearest if several), -1 for
        none or a diverged run; an int64 array of shape ``shape``."""
        tolerance = check_float("tolerance", tolerance, 0.0, low_open=True)
        minima = tuple(getattr(self.surface, "minima", ()) or ())
        if not minima:
            return np.full(self.shape, -1, np.int64)
        points = np.array([np.asarray(m.point, float) for m in minima]).reshape(-1, 2)
        with np.errstate(all="ignore"):
            distance = np.linalg.norm(self.final_points[..., None, :] - points, axis=-1)
        nearest = np.argmin(distance, axis=-1)
        close = np.take_along_axis(distance, nearest[..., None], axis=-1)[..., 0] <= tolerance
        return np.where(close & ~self.diverged, nearest, -1).astype(np.int64)

    def mean_log_gap(self) -> np.ndarray:
        """mean over k = 0..T of log10(max(f(p_k) - f_min, 0) + 1e-16) of every run (the area
        under the log-loss curve per step); +inf for a diverged run. Shape ``shape``."""
        with np.errstate(all="ignore"):
            gap = np.maximum(self.losses - self.f_min, 0.0)
            value = np.mean(np.log10(gap + _LOG_FLOOR), axis=0)
        return np.where(self.diverged | ~np.isfinite(value), np.inf, value)

    def median_over(
        self,
        *axis_names: str,
        of: str | np.ndarray = "final_loss",
        spread: tuple[float, float] = (0.0, 1.0),
        diverged_as: float | None = np.inf,
    ) -> Spread:
        """Median and spread of ``of`` over the axes ``axis_names`` (default: ``"start"`` and
        ``"seed"``), per value of the other axes::

            median = median over the named axes of values   (likewise the spread quantiles)

        ``of``: ``"final_loss"`` f(p_T), ``"final_gap"`` f(p_T) - f_min, ``"mean_log_gap"``
        (see :meth:`mean_log_gap`), or an array of shape ``shape`` (e.g. ``steps_to(1e-3)``).
        Diverged runs count as ``diverged_as`` (+inf; None keeps their values). ``spread``:
        the (low, high) quantiles, sample values without interpolation; (0, 1) gives the
        minimum and maximum.
        """
        names = axis_names or ("start", "seed")
        valid = tuple(self.axes)
        for name in names:
            if name not in self.axes:
                raise ValueError(
                    f"axis_names must be axes of this sweep, got {name!r}; valid: "
                    + ", ".join(map(repr, valid))
                )
        if len(set(names)) != len(names):
            raise ValueError(f"axis_names must not repeat an axis, got {names!r}")
        if isinstance(of, str):
            label = check_choice("of", of, AGGREGATES)
            if of == "final_loss":
                values = np.array(self.final_loss, float)
            elif of == "final_gap":
                values = np.array(self.final_loss - self.f_min, float)
            else:
                values = self.mean_log_gap()
        else:
            label = "values"
            values = np.array(of, float)
            if values.shape != self.shape:
                raise ValueError(
                    f"of must be one of {', '.join(map(repr, AGGREGATES))} or an array of "
                    f"shape {self.shape}, got an array of shape {values.shape}"
                )
        if not (isinstance(spread, Sequence) and len(spread) == 2):
            raise TypeError(f"spread must be a pair of quantiles (low, high), got {spread!r}")
        q_low = check_float("spread[0]", spread[0], 0.0, 1.0)
        q_high = check_float("spread[1]", spread[1], q_low, 1.0)
        if diverged_as is not None:
            values = np.where(self.diverged, float(diverged_as), values)
        axis = tuple(valid.index(name) for name in names)
        with np.errstate(all="ignore"):
            median = np.median(values, axis=axis)
            low = np.quantile(values, q_low, axis=axis, method="inverted_cdf")
            high = np.quantile(values, q_high, axis=axis, method="inverted_cdf")
        kept = {k: v for k, v in self.axes.items() if k not in names}
        return Spread(kept, tuple(names), label, median, low, high)

    def select(self, **indices: int) -> SweepResult:
        """The sub-sweep at one index of some axes, e.g. ``select(learning_rate=3)``: those
        axes keep length 1 (the axis order never changes)."""
        index = [slice(None)] * len(self.axes)
        axes = dict(self.axes)
        names = tuple(self.axes)
        for name, i in indices.items():
            if name not in self.axes:
                raise ValueError(
                    f"select() got axis {name!r}; valid axes: " + ", ".join(map(repr, names))
                )
            n = len(self.axes[name])
            i = check_int(name, i, -n, n - 1) % n
            index[names.index(name)] = slice(i, i + 1)
            values = self.axes[name]
            axes[name] = values[i : i + 1] if isinstance(values, np.ndarray) else (values[i],)
        at = tuple(index)
        return SweepResult(
            surface=self.surface,
            optimizer=self.optimizer,
            preset=self.preset,
            steps=self.steps,
            axes=axes,
            paths=None if self.paths is None else self.paths[(slice(None), *at)],
            losses=self.losses[(slice(None), *at)],
            final_points=self.final_points[at],
            diverged_at=self.diverged_at[at],
            f_min=self.f_min,
            gradient_noise=self.gradient_noise,
            divergence=self.divergence,
            hyperparameters=dict(self.hyperparameters),
        )


@dataclass(frozen=True, eq=False)
class TuneResult:
    """The outcome of :func:`tune_learning_rate`::

        scores[j]     = median over starts and seeds of objective(run at learning_rates[j])
                        (+inf for a diverged run)
        learning_rate = learning_rates[index],  index = argmin_j scores[j] (the smallest rate
                        on a tie; if every rate diverged, the best score is +inf)

    ``sweep`` holds every run with its paths, over the same ``steps`` as the tuning.
    """

    learning_rate: float
    index: int
    learning_rates: np.ndarray
    scores: np.ndarray
    objective: str
    sweep: SweepResult

    @property
    def best_score(self) -> float:
        """The chosen learning rate's score (+inf if every rate diverged)."""
        return float(self.scores[self.index])

    @property
    def best(self) -> SweepResult:
        """The runs at the chosen learning rate (its axis kept with length 1)."""
        return self.sweep.select(learning_rate=self.index)

    @property
    def paths(self) -> np.ndarray:
        """The paths at the chosen learning rate, shape (steps + 1, starts, seeds, 2)."""
        return self.best.paths[:, :, 0]

    @property
    def losses(self) -> np.ndarray:
        """f(p_k) at the chosen learning rate, shape (steps + 1, starts, seeds)."""
        return self.best.losses[:, :, 0]


# ---------------------------------------------------------------------------------------------
# One hyperparameter combination: the resolved rule and pipeline
# ---------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one ``optimlab.get(...)`` resolves to: the rule with its scalar arguments, the
    initial state, and the pipeline options of ``Optimizer._update``."""

    rule: Any
    hyper: dict
    slot_init: tuple
    state0: tuple | None
    loss_scale: float | None
    maximize: bool
    clipnorm: float | None
    clipvalue: float | None
    clip_style: str
    weight_decay: float | None
    decoupled: bool
    array_lr: bool = True

    @classmethod
    def make(cls, name: str, preset: str, combo: dict, learning_rates: np.ndarray) -> _Plan:
        opt = optimizers.get(name, learning_rate=1.0, preset=preset, engine="reference", **combo)
        if opt.use_ema:
            raise ValueError(
                "use_ema must be False in a sweep (it records the parameters themselves), "
                "got True; valid: False"
            )
        if opt.gradient_accumulation_steps is not None:
            raise ValueError(
                "gradient_accumulation_steps must be None or 1 in a sweep (one update per "
                f"step), got {opt.gradient_accumulation_steps!r}"
            )
        opt.build([np.zeros(2)])  # float64 parameters: power_dtype and slots as in a run
        rule = opt.rule
        slot_init = tuple(
            float(opt._slot_initial_value(slot)) if opt._slot_enabled(slot, kind) else None
            for slot, kind in rule.SLOTS
        )
        step_state = getattr(rule, "STEP_STATE", None)
        plan = cls(
            rule=rule,
            hyper=opt._rule_hyperparameters(),
            slot_init=slot_init,
            state0=None if step_state is None else tuple(v for _, v in step_state),
            loss_scale=opt.loss_scale_factor,
            maximize=bool(opt.maximize),
            clipnorm=opt.clipnorm or opt.global_clipnorm,  # one parameter: the same norm
            clipvalue=opt.clipvalue,
            clip_style=presets.CONVENTIONS[preset]["clip_style"],
            weight_decay=opt.weight_decay,
            decoupled=opt.weight_decay_mode == "decoupled",
        )
        plan.array_lr = plan._scalars_take_arrays(learning_rates)
        return plan

    def scalars(self, t: int, lr, state):
        """(rule.scalars(t, lr, **hyper), the advanced step state)."""
        if self.state0 is None:
            return self.rule.scalars(t, lr, **self.hyper), None
        return self.rule.scalars(t, lr, state, **self.hyper)

    def _scalars_take_arrays(self, learning_rates: np.ndarray) -> bool:
        """Whether ``rule.scalars`` given an (L, 1) learning-rate column returns, entry by
        entry, exactly what it returns for each rate alone (checked at t = 1 and 2); if not,
        the sweep runs each learning rate on its own (still vectorized over the rest)."""
        column = np.asarray(learning_rates, float)[:, None]
        state = self.state0
        for t in (1, 2):
            try:
                vector, vector_state = self.scalars(t, column, state)
                singles = [self.scalars(t, float(lr), state) for lr in learning_rates]
            except Exception:  # any failure means: not array-safe
                return False
            for j, (single, single_state) in enumerate(singles):
                if not _same_state(vector_state, single_state):
                    return False
                if len(vector) != len(single):
                    return False
                for a, b in zip(vector, single, strict=True):
                    if isinstance(a, np.ndarray):
                        if a.shape != column.shape or not isinstance(b, float):
                            return False
                        if not _same_float(float(a[j, 0]), b):
                            return False
                    elif isinstance(b, float):
                        if not (isinstance(a, float) and _same_float(a, b)):
                            return False
                    elif type(a) is not type(b) or a != b:
                        return False
            state = singles[0][1]
        return True


def _same_float(a: float, b: float) -> bool:
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def _same_state(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if len(a) != len(b):
        return False
    return all(
        isinstance(x, float) and isinstance(y, float) and _same_float(x, y)
        for x, y in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------------------------------------
# The vectorized run
# ---------------------------------------------------------------------------------------------


class _Rows:
    """The rows of one plan while they run: their slots, step state, learning rate (an (R, 1)
    column, one float, or a schedule), decoupled decay and noise rows. :meth:`advance` is
    one step of ``Optimizer._update`` for them, in its order::

        g = (grad + noise) / loss_scale;  checked = g;  g = -g if maximize;  clip g;
        g = g + wd * p (L2)  or  q = p - p * wd * lr (decoupled);  p' = rule(q, g, slots)
    """

    def __init__(self, plan: _Plan, lr, seed_index, rows: int) -> None:
        self.plan = plan
        self.schedule = None if isinstance(lr, np.ndarray | float) else lr
        self.lr = lr
        self.l2 = self.wdlr = None
        if plan.weight_decay is not None:
            if plan.decoupled:  # the Optimizer's wd * lr, per run (per step with a schedule)
                first = _scheduled_rate(lr, 0) if self.schedule else lr
                self.wdlr = plan.weight_decay * first
            else:
                self.l2 = np.float64(plan.weight_decay)
        self.seed_index = seed_index
        self.slots = tuple(None if v is None else np.full((rows, 2), v) for v in plan.slot_init)
        self.state = plan.state0

    def advance(self, t: int, p: np.ndarray, g: np.ndarray, noise) -> tuple:
        """(the new points, the gradient the Optimizer checks for finiteness) at step t."""
        plan = self.plan
        if self.schedule is not None:
            self.lr = _scheduled_rate(self.schedule, t - 1)
            if self.wdlr is not None:
                self.wdlr = plan.weight_decay * self.lr
        if noise is not None:
            g = g + noise[t - 1][self.seed_index]
        if plan.loss_scale is not None:
            g = g / plan.loss_scale
        checked = g  # the Optimizer checks finiteness after loss scaling
        if plan.maximize:
            g = -g
        if plan.clipnorm is not None:
            factors = [norm_scale(l2_norm([row]), plan.clipnorm, plan.clip_style) for row in g]
            g = g * np.array(factors)[:, None]
        elif plan.clipvalue is not None:
            g = np.clip(g, -plan.clipvalue, plan.clipvalue)
        q = p
        if self.l2 is not None:
            g = g + self.l2 * p
        if self.wdlr is not None:
            q = p - p * self.wdlr
        if plan.state0 is not None:
            numbers_t, self.state = plan.rule.scalars(t, self.lr, self.state, **plan.hyper)
        else:
            numbers_t = plan.rule.scalars(t, self.lr, **plan.hyper)
        out = plan.rule.update(q, g, *self.slots, *numbers_t)
        self.slots = out[1:]
        return out[0], checked

    def keep(self, keep: np.ndarray) -> None:
        """Drop the rows where ``keep`` is False (they diverged)."""
        self.slots = tuple(None if s is None else s[keep] for s in self.slots)
        if isinstance(self.lr, np.ndarray):
            self.lr = self.lr[keep]
        if isinstance(self.wdlr, np.ndarray):
            self.wdlr = self.wdlr[keep]
        if isinstance(self.seed_index, np.ndarray):
            self.seed_index = self.seed_index[keep]


def _outside(new: np.ndarray, checked: np.ndarray, bound: float) -> np.ndarray | None:
    """The rows that diverged at this step (a point outside the bound or a non-finite
    gradient), or None when none did (one cheap test first)."""
    if np.abs(new).max() <= bound and math.isfinite(checked.sum()):
        return None
    bad = ~(np.abs(new) <= bound).all(axis=1) | ~np.isfinite(checked).all(axis=1)
    return bad if bad.any() else None


def _drive(plan, surface, p0, lr, seed_index, noise, steps, divergence, record):
    """Run ``plan`` from the rows of ``p0`` for ``steps`` steps.

    ``lr`` is an (R, 1) column, one Python float or a schedule (step t uses
    ``lr(t - 1)``, a float), ``noise`` None or the (steps, seeds, 2)
    table, ``seed_index`` the row of each run in it. Returns (paths (T+1, R, 2) or None,
    losses (T+1, R) or None, final points (R, 2), diverged_at (R,)). Diverged rows leave the
    working arrays (they are compacted away), so the remaining steps cost nothing for them.
    """
    rows_total = len(p0)
    gradient = surface.gradient
    value = surface.value
    bound = min(divergence, sys.float_info.max)  # an infinite point is never inside
    run = _Rows(plan, lr, seed_index, rows_total)

    p = np.array(p0, dtype=np.float64)
    diverged_at = np.full(rows_total, -1, np.int64)
    active = None  # the rows still running (None: all of them)
    paths = losses = final = None
    if record:
        paths = np.empty((steps + 1, rows_total, 2))
        paths[0] = p
    else:
        losses = np.empty((steps + 1, rows_total))
        losses[0] = _values(value, p, (rows_total,))
        final = np.empty((rows_total, 2))

    for t in range(1, steps + 1):
        new, checked = run.advance(t, p, gradient(p), noise)
        bad = _outside(new, checked, bound)
        if bad is not None:
            rows = np.arange(rows_total) if active is None else active
            gone = rows[bad]
            diverged_at[gone] = t
            if record:
                paths[t:, gone] = p[bad]
            else:
                losses[t:, gone] = losses[t - 1, gone][None]
                final[gone] = p[bad]
            keep = ~bad
            active = rows[keep]
            if not active.size:
                break
            new = new[keep]
            run.keep(keep)
        if record:
            if active is None:
                paths[t] = new
            else:
                paths[t, active] = new
        else:
            v = _values(value, new, (len(new),))
            if active is None:
                losses[t] = v
            else:
                losses[t, active] = v
        p = new
    if record:
        return paths, None, paths[-1].copy(), diverged_at
    if active is None:
        final[...] = p
    elif active.size:
        final[active] = p
    return None, losses, final, diverged_at


def _values(value, points: np.ndarray, shape: tuple) -> np.ndarray:
    out = np.asarray(value(points), dtype=float)
    if out.shape != shape:
        raise ValueError(
            f"surface.value must map points of shape {points.shape} to shape {shape}, "
            f"got shape {out.shape}"
        )
    return out


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


def _scheduled_rate(schedule, step: int) -> float:
    """The learning rate ``schedule(step)``: a finite float >= 0, as the Optimizer checks it."""
    value = schedule(step)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = float(value)
        if math.isfinite(x) and x >= 0.0:
            return x
    raise ValueError(
        f"learning rate schedule {schedule!r} returned {value!r} at step {step}; it must "
        "return a finite float >= 0"
    )


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
    noise = None
    if sigma > 0.0:
        table = [sigma * np.random.default_rng(s).standard_normal((steps, 2)) for s in seeds]
        noise = np.stack(table, axis=1)  # (steps, seeds, 2)
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
