"""How the tour writes numbers, in its text and its tables alike (one formatter, so a number
reads the same wherever it appears), and the marks for what is not a number."""

from __future__ import annotations

import math

import numpy as np


class Mark(str):
    """A table cell or value that stands for an outcome, not a number ("not reached",
    "diverged"): printed as such, stored as such in numbers.json."""


NOT_REACHED = Mark("not reached")
DIVERGED = Mark("diverged")


def fmt(value, digits: int = 3) -> str:
    """A number as the tour prints it: integers as they are (with thousands separators),
    other values to ``digits`` significant digits (``1.3``, ``0.0199``, ``4.1e-10``); marks and
    text unchanged."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    if 1e3 <= abs(value) < 1e6:
        return f"{round(value):,}"
    return f"{value:.{digits}g}".replace("e-0", "e-").replace("e+0", "e+")


def plural(n, word: str, many: str | None = None) -> str:
    """``"1 step"``, ``"2 steps"``, ``"1,000 steps"`` (``many``: the plural when it is not
    ``word + "s"``)."""
    return f"{fmt(n)} {word if n == 1 else (many or word + 's')}"


def pct(share: float) -> str:
    """A share as a percentage with a sensible precision: ``"37%"``, ``"0.11%"``, ``"4.1e-08%"``
    (a small share is never printed as 0%)."""
    value = 100.0 * float(share)
    if value == 0:
        return "0%"
    if abs(value) >= 10:
        return f"{value:.0f}%"
    if abs(value) >= 0.01:
        return f"{value:.2g}%"
    return f"{fmt(value, 2)}%"


def gap(value) -> float:
    """f - f_min as the tour shows it: clamped at 0 (rounding can put f up to about 1e-15
    below its minimum; such a run is at the minimum)."""
    return max(float(value), 0.0)


def steps_cell(step) -> int | Mark:
    """A step count for a table: the number, or :data:`NOT_REACHED` for None / a negative."""
    if step is None or (not isinstance(step, Mark) and (not math.isfinite(step) or step < 0)):
        return NOT_REACHED
    return step if isinstance(step, Mark) else int(step)


def steps_phrase(step, horizon: int) -> str:
    """``"in 431 steps"``, or ``"not within 400 steps"`` for a target that was not reached."""
    cell = steps_cell(step)
    if isinstance(cell, Mark):
        return f"not within {plural(horizon, 'step')}"
    return f"in {plural(cell, 'step')}"


def settled_step(losses, target: float, axis: int = 0):
    """The first step k after which the loss stays at or below ``target`` to the horizon:
    ``losses[j] <= target`` for every j >= k (-1 where the last value is above the target or
    not finite). ``losses`` has the steps along ``axis``."""
    values = np.moveaxis(np.asarray(losses, float), axis, 0)
    with np.errstate(invalid="ignore"):
        above = ~(values <= target)
    n = values.shape[0]
    # index of the last step above the target (-1 if none)
    last_above = n - 1 - np.argmax(above[::-1], axis=0)
    last_above = np.where(above.any(axis=0), last_above, -1)
    first = last_above + 1
    out = np.where(above[-1], -1, first).astype(np.int64)
    return int(out) if out.ndim == 0 else out
