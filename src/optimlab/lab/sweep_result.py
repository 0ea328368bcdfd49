"""What a sweep returns: :class:`SweepResult` (paths, losses, divergence over the axes start x
learning rate x hyperparameter grid x seed, and the aggregates over them), :class:`Spread` (a
median with its quantiles) and :class:`TuneResult` (a tuned learning rate and its sweep)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_bool, check_choice, check_float, check_int

#: what :meth:`SweepResult.median_over` aggregates by name
AGGREGATES = ("final_loss", "final_gap", "mean_log_gap")

_LOG_FLOOR = 1e-16
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
