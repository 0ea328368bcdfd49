"""PyTorch's learning-rate schedulers (``torch.optim.lr_scheduler``) as closed forms of the update
count that take the base learning rate explicitly; :class:`ReduceLROnPlateau` is stateful."""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    show,
)
from ._checks import (
    _check_count,
    _check_sequence,
    _cos_anneal,
    _is_bool,
    _linear_anneal,
    _real_or_infinite,
)
from .base import LearningRateSchedule

# -- PyTorch ------------------------------------------------------------------------------


class StepLR(LearningRateSchedule):
    """Step decay, ``torch.optim.lr_scheduler.StepLR``::

        lr(k) = learning_rate * gamma ** floor(k / step_size)

    optax: ``optax.exponential_decay(learning_rate, step_size, gamma, staircase=True)``.
    torch multiplies the previous learning rate by ``gamma`` at each multiple of
    ``step_size`` (a recursive form): agreement up to rounding.
    """

    def __init__(self, learning_rate: float, step_size: int, gamma: float = 0.1) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma ** (step // self.step_size)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }


class MultiStepLR(LearningRateSchedule):
    """Decay at milestones, ``torch.optim.lr_scheduler.MultiStepLR``::

        lr(k) = learning_rate * gamma ** (number of milestones m with m <= k)

    ``milestones`` are sorted integers >= 0; a repeated milestone decays twice, as in torch
    (which keeps a Counter). optax: ``optax.piecewise_constant_schedule(learning_rate,
    {m: gamma ** count})`` (same ``k >= m`` convention). torch multiplies recursively
    (rounding only). Peer note: torch accepts unsorted milestones; here they must be sorted.
    """

    def __init__(self, learning_rate: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        m = _check_sequence("milestones", milestones)
        m = [check_int(f"milestones[{i}]", x, 0) for i, x in enumerate(m)]
        for i in range(1, len(m)):
            if m[i] < m[i - 1]:
                raise ValueError(
                    f"milestones must be sorted (non-decreasing), got {m} "
                    f"(milestones[{i}]={m[i]} < milestones[{i - 1}]={m[i - 1]})"
                )
        self.milestones = tuple(m)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma ** bisect.bisect_right(self.milestones, step)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
        }


class ExponentialLR(LearningRateSchedule):
    """Per-step exponential decay, ``torch.optim.lr_scheduler.ExponentialLR``::

        lr(k) = learning_rate * gamma ** k

    optax: ``optax.exponential_decay(learning_rate, 1, gamma)``. torch multiplies by ``gamma``
    at every step (rounding grows like ``k`` ulps).
    """

    def __init__(self, learning_rate: float, gamma: float) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.gamma = check_float("gamma", gamma, 0, low_open=True)

    def _compute(self, step: int) -> float:
        return self.learning_rate * self.gamma**step

    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "gamma": self.gamma}


class LinearLR(LearningRateSchedule):
    """Linear ramp of a factor, ``torch.optim.lr_scheduler.LinearLR``::

        lr(k) = learning_rate * (start_factor
                                 + (end_factor - start_factor) * min(k, total_iters) / total_iters)

    ``start_factor`` in (0, 1], ``end_factor`` in [0, 1] (torch's ranges), ``total_iters >= 1``.
    optax: ``optax.linear_schedule(learning_rate * start_factor, learning_rate * end_factor,
    total_iters)``. torch updates by a ratio of consecutive factors (rounding only).
    Peer oddity: torch accepts ``total_iters=0`` and then stays at ``start_factor`` forever
    (its closed form divides by zero); refused here.
    """

    def __init__(
        self,
        learning_rate: float,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.start_factor = check_float("start_factor", start_factor, 0, 1, low_open=True)
        self.end_factor = check_float("end_factor", end_factor, 0, 1)
        self.total_iters = check_int("total_iters", total_iters, 1)

    def _compute(self, step: int) -> float:
        sf, ef, n = self.start_factor, self.end_factor, self.total_iters
        if step >= n:  # exactly end_factor (sf + (ef - sf) can round below 0 when ef = 0)
            return self.learning_rate * ef
        return self.learning_rate * max(sf + (ef - sf) * step / n, 0.0)

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "start_factor": self.start_factor,
            "end_factor": self.end_factor,
            "total_iters": self.total_iters,
        }


class CosineAnnealingLR(LearningRateSchedule):
    """Cosine annealing, ``torch.optim.lr_scheduler.CosineAnnealingLR`` (closed form)::

        lr(k) = eta_min + (learning_rate - eta_min) * (1 + cos(pi * k / T_max)) / 2

    torch itself updates recursively, ``lr_k = eta_min + (lr_{k-1} - eta_min) * (1 + cos(pi *
    k / T_max)) / (1 + cos(pi * (k - 1) / T_max))``, which equals the closed form up to rounding
    (measured over 400 steps: relative differences up to 1e-15 for T_max=100, 1e-13 for
    T_max=7, where the recursion wraps around more often).

    Peer oddity (reproduced): nothing stops at ``T_max``. The cosine keeps going, so the
    learning rate climbs back to ``learning_rate`` at ``2 * T_max`` and oscillates with period
    ``2 * T_max`` (``T_max=10``: lr(15) = (learning_rate + eta_min) / 2, lr(20) =
    learning_rate). optax's ``cosine_decay_schedule`` and Keras's ``CosineDecay`` stay at the
    floor instead.
    """

    def __init__(self, learning_rate: float, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.T_max = check_int("T_max", T_max, 1)
        self.eta_min = check_float("eta_min", eta_min, 0)

    def _compute(self, step: int) -> float:
        return (
            self.eta_min
            + (self.learning_rate - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2
        )

    def _params(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "T_max": self.T_max, "eta_min": self.eta_min}


class OneCycleLR(LearningRateSchedule):
    """The 1cycle policy, ``torch.optim.lr_scheduler.OneCycleLR`` (learning rate only).

    With ``initial = max_lr / div_factor``, ``min_lr = initial / final_div_factor`` and
    ``T = total_steps``, the phases end at (torch's float boundaries)::

        two phases:   e1 = pct_start * T - 1 (initial -> max_lr),
                      e2 = T - 1             (max_lr -> min_lr)
        three phases: e1 = pct_start * T - 1 (initial -> max_lr),
                      e2 = 2 * pct_start * T - 2 (max_lr -> initial),
                      e3 = T - 1             (initial -> min_lr)

    For step ``k`` in the first phase whose end ``e_i >= k`` (or the last phase), with ``s`` the
    previous phase's end (0 for the first) and ``pct = (k - s) / (e_i - s)``::

        cos:    lr(k) = end + (start - end) / 2 * (cos(pi * pct) + 1)
        linear: lr(k) = (end - start) * pct + start

    The schedule covers ``k = 0 .. total_steps - 1`` (``total_steps`` updates); ``lr(k)`` for
    ``k >= total_steps`` raises ``ValueError``. optax: ``optax.cosine_onecycle_schedule``, whose
    boundaries are one step later (peak at ``int(pct_start * T)``, floor at ``T``).

    Peer oddities: torch allows one step past the cycle and *extrapolates* there (``k = T``
    gives ``pct > 1``: with ``anneal_strategy="linear"``, ``max_lr=1``, ``T=10`` the learning
    rate is -0.14), raising only at ``k = T + 1``; here ``k >= T`` raises. torch divides by zero
    (``ZeroDivisionError`` in its constructor) when ``pct_start * total_steps == 1`` and
    silently skips the warmup when it is < 1; here ``pct_start * total_steps > 1`` is required
    (and, with ``three_phase``, ``2 * pct_start * total_steps - 2 < total_steps - 1``).
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self.max_lr = check_float("max_lr", max_lr, 0)
        self.total_steps = _check_count("total_steps", total_steps, 2)
        self.pct_start = check_float("pct_start", pct_start, 0, 1, low_open=True, high_open=True)
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.div_factor = check_float("div_factor", div_factor, 0, low_open=True)
        self.final_div_factor = check_float("final_div_factor", final_div_factor, 0, low_open=True)
        self.three_phase = check_bool("three_phase", three_phase)
        n = self.total_steps
        e1 = float(self.pct_start * n) - 1
        if e1 <= 0:
            raise ValueError(
                f"pct_start * total_steps must be > 1 so that the warmup phase has positive "
                f"length, got pct_start={pct_start!r}, total_steps={total_steps!r} "
                f"(pct_start * total_steps = {self.pct_start * n!r})"
            )
        initial = self.max_lr / self.div_factor
        min_lr = initial / self.final_div_factor
        if self.three_phase:
            e2 = float(2 * self.pct_start * n) - 2
            if e2 >= n - 1:
                raise ValueError(
                    "with three_phase=True, 2 * pct_start * total_steps - 2 must be < "
                    f"total_steps - 1, got pct_start={pct_start!r}, total_steps={total_steps!r}"
                )
            self._phases = (
                (e1, initial, self.max_lr),
                (e2, self.max_lr, initial),
                (float(n - 1), initial, min_lr),
            )
        else:
            self._phases = ((e1, initial, self.max_lr), (float(n - 1), self.max_lr, min_lr))

    def _compute(self, step: int) -> float:
        if step >= self.total_steps:
            raise ValueError(
                f"step={step} is past the end of the cycle: OneCycleLR is defined for step in "
                f"[0, total_steps - 1] = [0, {self.total_steps - 1}] (total_steps="
                f"{self.total_steps})"
            )
        anneal = _cos_anneal if self.anneal_strategy == "cos" else _linear_anneal
        start_step = 0.0
        last = len(self._phases) - 1
        for i, (end_step, start_lr, end_lr) in enumerate(self._phases):
            if step <= end_step or i == last:
                pct = (step - start_step) / (end_step - start_step)
                return anneal(start_lr, end_lr, pct)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def _params(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "three_phase": self.three_phase,
        }


class CyclicLR(LearningRateSchedule):
    """Cyclical learning rate, ``torch.optim.lr_scheduler.CyclicLR`` (learning rate only).

    With ``up = step_size_up``, ``down = step_size_down`` (default ``up``), ``L = up + down``
    and ``r = up / L``::

        cycle = floor(1 + k / L),  x = 1 + k / L - cycle
        h = x / r              if x <= r     (rising)
            (x - 1) / (r - 1)  otherwise     (falling)
        lr(k) = base_lr + (max_lr - base_lr) * h * scale

    ``scale`` is 1 (``"triangular"``), ``1 / 2 ** (cycle - 1)`` (``"triangular2"``) or
    ``gamma ** k`` (``"exp_range"``; note: per iteration, not per cycle). No optax
    counterpart. ``max_lr >= base_lr`` and ``gamma`` in (0, 1] are required (torch checks
    neither). The momentum cycling of torch's class is not part of a learning-rate schedule.
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ) -> None:
        self.base_lr = check_float("base_lr", base_lr, 0)
        self.max_lr = check_float("max_lr", max_lr, self.base_lr)
        self.step_size_up = _check_count("step_size_up", step_size_up, 1)
        self.step_size_down = (
            None if step_size_down is None else _check_count("step_size_down", step_size_down, 1)
        )
        self.mode = check_choice("mode", mode, self.MODES)
        self.gamma = check_float("gamma", gamma, 0, 1, low_open=True)
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        self._total_size = up + down
        self._step_ratio = up / self._total_size

    def _compute(self, step: int) -> float:
        cycle = math.floor(1 + step / self._total_size)
        x = 1.0 + step / self._total_size - cycle
        if x <= self._step_ratio:
            scale_factor = x / self._step_ratio
        else:
            scale_factor = (x - 1) / (self._step_ratio - 1)
        base_height = (self.max_lr - self.base_lr) * scale_factor
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = math.ldexp(1.0, 1 - cycle)  # 1 / 2**(cycle-1), underflows to 0
        else:
            scale = self.gamma**step
        return self.base_lr + base_height * scale

    def _params(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "max_lr": self.max_lr,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
        }


class ReduceLROnPlateau(LearningRateSchedule):
    """Reduce the learning rate when a metric stops improving,
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``. A *stateful* schedule.

    ``sched.step(metric)`` reports a metric (e.g. once per epoch); ``sched(step)`` returns the
    current learning rate whatever ``step`` is. On each report, with ``best`` the best metric
    so far::

        improved = metric < best * (1 - threshold)   mode="min", threshold_mode="rel"
                   metric < best - threshold         mode="min", threshold_mode="abs"
                   metric > best * (1 + threshold)   mode="max", threshold_mode="rel"
                   metric > best + threshold         mode="max", threshold_mode="abs"
        improved: best = metric, num_bad_epochs = 0;  else num_bad_epochs += 1
        in cooldown (cooldown_counter > 0): cooldown_counter -= 1, num_bad_epochs = 0
        num_bad_epochs > patience:
            new = max(lr * factor, min_lr);  if lr - new > eps: lr = new
            cooldown_counter = cooldown, num_bad_epochs = 0

    The counters (``lr``, ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``)
    are in :meth:`state_dict`; ``best`` is None until a first metric improves on the start
    value (+inf for "min", -inf for "max"). ``get_config`` holds only the constructor
    arguments. A NaN metric raises ``ValueError`` (torch silently counts it as a bad epoch).

    Peer oddities (reproduced): reductions of at most ``eps`` are dropped, so a learning rate
    near ``eps`` never moves (``learning_rate=1e-8, factor=0.1``: 1e-8 - 1e-9 = 9e-9 <= 1e-8,
    the learning rate stays 1e-8 forever). In ``"rel"`` mode with negative metrics the
    threshold works backwards: with best = -1.0 and threshold = 0.1, mode "min" counts -0.95 (a
    *worse* value) as an improvement, because -0.95 < -1.0 * 0.9. ``threshold`` must be < 1 in
    "rel" mode (torch accepts 1, where +inf * 0 = NaN makes no metric ever an improvement).
    """

    _STATE_KEYS = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(
        self,
        learning_rate: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.learning_rate = check_float("learning_rate", learning_rate, 0)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.factor = check_float("factor", factor, 0, 1, high_open=True)
        self.patience = check_int("patience", patience, 0)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        if self.threshold_mode == "rel":
            self.threshold = check_float("threshold", threshold, 0, 1, high_open=True)
        else:
            self.threshold = check_float("threshold", threshold, 0)
        self.cooldown = check_int("cooldown", cooldown, 0)
        self.min_lr = check_float("min_lr", min_lr, 0)
        self.eps = check_float("eps", eps, 0)
        self._mode_worse = math.inf if self.mode == "min" else -math.inf
        self._lr = self.learning_rate
        self._best = self._mode_worse
        self._num_bad_epochs = 0
        self._cooldown_counter = 0
        self._last_epoch = 0

    # -- the schedule -------------------------------------------------------------------

    def _compute(self, step: int) -> float:
        return self._lr

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metric: Any) -> float:
        """Report a metric value; returns the (possibly reduced) learning rate."""
        if isinstance(metric, (str, bytes)) or _is_bool(metric):
            raise TypeError(f"metric must be a real number, got {show(metric)}")
        if not isinstance(metric, numbers.Real):
            try:
                metric = float(metric)  # e.g. a 0-d array or a Decimal
            except (TypeError, ValueError):
                raise TypeError(f"metric must be a real number, got {show(metric)}") from None
        current = _real_or_infinite("metric", metric)
        if math.isnan(current):
            raise ValueError(f"metric must not be NaN, got {metric!r}")
        self._last_epoch += 1
        if self._is_better(current, self._best):
            self._best = current
            self._num_bad_epochs = 0
        else:
            self._num_bad_epochs += 1
        if self._cooldown_counter > 0:
            self._cooldown_counter -= 1
            self._num_bad_epochs = 0
        if self._num_bad_epochs > self.patience:
            new_lr = max(self._lr * self.factor, self.min_lr)
            if self._lr - new_lr > self.eps:
                self._lr = new_lr
            self._cooldown_counter = self.cooldown
            self._num_bad_epochs = 0
        return self._lr

    @property
    def best(self) -> float | None:
        """The best metric so far (None before the first improvement)."""
        return None if self._best == self._mode_worse else self._best

    @property
    def num_bad_epochs(self) -> int:
        return self._num_bad_epochs

    @property
    def cooldown_counter(self) -> int:
        return self._cooldown_counter

    @property
    def last_epoch(self) -> int:
        """The number of metrics reported."""
        return self._last_epoch

    # -- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self._lr,
            "best": self.best,
            "num_bad_epochs": self._num_bad_epochs,
            "cooldown_counter": self._cooldown_counter,
            "last_epoch": self._last_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or set(state) != set(self._STATE_KEYS):
            got = sorted(state) if isinstance(state, Mapping) else state
            raise ValueError(
                f"ReduceLROnPlateau state must have the keys {list(self._STATE_KEYS)}, got {got!r}"
            )
        lr = check_float("lr", state["lr"], 0)
        best = state["best"]
        if best is None:
            best = self._mode_worse
        else:
            best = _real_or_infinite("best", best)
        num_bad = check_int("num_bad_epochs", state["num_bad_epochs"], 0)
        cooldown_counter = check_int("cooldown_counter", state["cooldown_counter"], 0)
        last_epoch = check_int("last_epoch", state["last_epoch"], 0)
        self._lr, self._best = lr, float(best)
        self._num_bad_epochs, self._cooldown_counter = num_bad, cooldown_counter
        self._last_epoch = last_epoch

    def _params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "eps": self.eps,
        }
