"""Tuning a learning rate on a log grid that widens when the best value sits on its edge.

The rule every chapter states: the learning rate with the lowest score on the grid; among
scores that are equal (to 12 significant digits), the largest rate. A best rate on the edge of
the grid says the grid was too narrow, so the grid grows by ``extra`` points on that side (same
spacing) and the new rates are scored, up to ``widen`` times; a rate still on the edge after
that is flagged (``on_edge``), and the chapter says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Tuned:
    """The widened grid, the score of each rate on it, the chosen index, and whether the
    chosen rate is still on the edge of the grid."""

    learning_rates: np.ndarray
    scores: np.ndarray
    index: int
    on_edge: bool
    widened: int

    @property
    def learning_rate(self) -> float:
        """The chosen learning rate."""
        return float(self.learning_rates[self.index])


def _key(scores: np.ndarray) -> np.ndarray:
    """Scores rounded to 12 significant digits (+inf for NaN): equal keys are ties. Scores of
    shape (n, k) are k criteria, compared in order (lexicographically)."""
    s = np.where(np.isnan(scores), np.inf, np.asarray(scores, float))
    out = s.copy()
    finite = np.isfinite(s)
    out[finite] = np.array([float(f"{v:.12g}") for v in s[finite]])
    return out


def order_key(scores) -> list[tuple]:
    """One comparable tuple per row of ``scores`` (rounded as in :func:`_key`)."""
    key = _key(np.asarray(scores, float))
    return [tuple(np.atleast_1d(row)) for row in key]


def pick(scores) -> int:
    """The index of the lowest score (lexicographic over the criteria of a 2-D ``scores``);
    among ties, the last (the grid ascends: the largest rate)."""
    keys = order_key(scores)
    best = min(keys)
    return max(i for i, k in enumerate(keys) if k == best)


def _is_edge(index: int, scores: np.ndarray) -> bool:
    """Whether the best rate is on an edge and strictly better than its inner neighbour (a
    flat run of equal scores reaching the edge is not an edge problem)."""
    keys = order_key(scores)
    n = len(keys)
    if n < 2 or not np.any(np.isfinite(keys[index])):
        return False
    if index == n - 1:
        return keys[index] < keys[index - 1]
    if index == 0:
        return keys[0] < keys[1]
    return False


def tune(score: Callable[[np.ndarray], np.ndarray], learning_rates, *, widen: int = 3,
         extra: int = 4) -> Tuned:  # fmt: skip
    """Score ``learning_rates`` (ascending, log-spaced) with ``score(rates) -> scores`` (lower
    is better; inf for a diverged run) and pick the best by :func:`pick`, widening the grid
    while the best is on its edge (see the module's docstring)."""
    lrs = np.asarray(learning_rates, float)
    scores = np.asarray(score(lrs), float)
    ratio = lrs[1] / lrs[0]
    widened = 0
    index = pick(scores)
    while _is_edge(index, scores) and widened < widen:
        widened += 1
        k = np.arange(1, extra + 1)
        if index == lrs.size - 1:
            new = lrs[-1] * ratio**k
            lrs, scores = np.concatenate([lrs, new]), np.concatenate([scores, score(new)])
        else:
            new = (lrs[0] / ratio**k)[::-1]
            lrs, scores = np.concatenate([new, lrs]), np.concatenate([score(new), scores])
        index = pick(scores)
    return Tuned(lrs, scores, index, _is_edge(index, scores), widened)
