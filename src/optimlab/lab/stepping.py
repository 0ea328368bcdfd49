"""The step of :mod:`optimlab.lab.sweep` and :mod:`optimlab.lab.race`: what one
``optimlab.get(...)`` resolves to (:class:`_Plan`), the rows of one plan stepped through the
Optimizer's pipeline in its order (:class:`_Rows`), the divergence test, and the vectorized
run of one plan (:func:`_drive`). Each step of a row is bit for bit the step of an optimlab
optimizer fed the same gradient through ``apply_gradients``."""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import optimizers, presets
from ..clipping import l2_norm, norm_scale

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
        if getattr(opt.rule, "TENSOR", False):
            raise ValueError(
                f"optimizer {type(opt).__name__!r} cannot run in a sweep or race: its rule "
                "works on a whole parameter (matrix products, norms), and here every run is "
                "one row of a shared array, which the rule would mix; valid: the elementwise "
                "optimizers ("
                + ", ".join(
                    n for n, c in optimizers.OPTIMIZERS.items() if not getattr(c.rule, "TENSOR", 0)
                )
                + ")"
            )
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
                if not _same_state(vector_state, single_state, j, column.shape):
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


def _same_state(a, b, j: int | None = None, shape: tuple | None = None) -> bool:
    """Whether step state ``a`` (of the learning-rate column, if ``j`` is given) holds, for
    learning rate ``j``, exactly the single run's state ``b``: a float that depends on the
    learning rate (ASGD's step size eta) is a column of ``shape``, read at row ``j``."""
    if a is None or b is None:
        return a is b
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if j is not None and isinstance(x, np.ndarray) and x.shape == shape:
            x = float(x[j, 0])
        if not (isinstance(x, float) and isinstance(y, float) and _same_float(x, y)):
            return False
    return True


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
        # the rule's own decay (rule.DECAY: passed after its scalars) and the slots that start
        # as a copy of the parameter (rule.PARAMETER_SLOTS: filled at the first step)
        self.own_decay = bool(getattr(plan.rule, "DECAY", False))
        names = [name for name, _ in plan.rule.SLOTS]
        self.from_parameter = [names.index(n) for n in getattr(plan.rule, "PARAMETER_SLOTS", ())]

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
        if self.from_parameter and t == 1:
            slots = list(self.slots)
            for k in self.from_parameter:
                slots[k] = np.array(p, dtype=np.float64) + slots[k] * 0.0  # rows of the slot
            self.slots = tuple(slots)
        if self.l2 is not None:
            g = g + self.l2 * p
        if self.wdlr is not None and not self.own_decay:
            q = p - p * self.wdlr
        if plan.state0 is not None:
            numbers_t, self.state = plan.rule.scalars(t, self.lr, self.state, **plan.hyper)
        else:
            numbers_t = plan.rule.scalars(t, self.lr, **plan.hyper)
        if self.own_decay:  # as Optimizer._update hands it: wd when decoupled, else None
            decay = plan.weight_decay if plan.weight_decay is not None and plan.decoupled else None
            numbers_t = (*numbers_t, decay)
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


def noise_table(sigma: float, seeds, steps: int) -> np.ndarray | None:
    """The gradient noise of every step and seed, (steps, seeds, 2), or None when sigma is 0:
    ``sigma * default_rng(seed).standard_normal((steps, 2))`` per seed, so that a seed gives
    every run the same noise (common random numbers)."""
    if sigma <= 0.0:
        return None
    table = [sigma * np.random.default_rng(s).standard_normal((steps, 2)) for s in seeds]
    return np.stack(table, axis=1)
