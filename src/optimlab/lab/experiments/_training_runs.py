"""Tuned training runs shared by the chapters beyond the lecture: one optimizer on one data
problem, its learning rate chosen on a log grid by the final loss of seed 0 (widened at the
grid's edge by :func:`._tuning.tune`), then trained from every reported seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import optimizers
from ...schedules import CosineDecay
from ..training import fit, updates_per_epoch
from ._tuning import Tuned, tune


@dataclass
class Runs:
    """The tuned rate of one optimizer on one problem and the loss per epoch of each seed
    (``curves``: seeds x (epochs + 1), full-data loss minus the problem's optimum when it has
    one; ``inf`` after a divergence) with the final parameters of seed 0."""

    label: str
    tuned: Tuned
    curves: np.ndarray
    params: dict
    seconds: float

    @property
    def finals(self) -> np.ndarray:
        """The last value of each seed's curve."""
        return self.curves[:, -1]

    @property
    def median_final(self) -> float:
        """The median over seeds of the final (excess) loss."""
        return float(np.median(self.finals))


def train(problem, base, kwargs, lr, *, epochs, batch_size, seed, cosine=False):
    """One run: ``(curve, final parameters, seconds)``; ``cosine`` decays the rate to 0 over
    the run (Keras's ``CosineDecay(lr, total updates)``). A NaN gradient or loss is a
    divergence: the curve is ``inf`` from there."""
    total = epochs * updates_per_epoch(problem.n_samples, batch_size or problem.n_samples)
    rate = CosineDecay(float(lr), total) if cosine else float(lr)
    opt = optimizers.get(base, learning_rate=rate, **kwargs)
    offset = problem.optimum or 0.0
    try:
        with np.errstate(all="ignore"):
            history = fit(problem, opt, epochs=epochs, batch_size=batch_size, seed=seed)
    except FloatingPointError:
        return np.full(epochs + 1, np.inf), None, np.inf
    curve = np.asarray(history.loss_per_epoch, float) - offset
    curve[~np.isfinite(curve)] = np.inf
    return curve, history.params, history.wall_time


def tuned_runs(problem, label, base, kwargs, grid, *, epochs, batch_size, seeds, cosine=False):
    """Tune ``base(**kwargs)``'s learning rate on ``grid`` by the final loss of seed 0, then
    train it from seeds ``0 .. seeds - 1``: a :class:`Runs`."""

    def score(lrs):
        return np.array(
            [
                train(problem, base, kwargs, lr, epochs=epochs, batch_size=batch_size, seed=0,
                      cosine=cosine)[0][-1]
                for lr in lrs
            ]
        )  # fmt: skip

    tuned = tune(score, grid)
    curves, params, seconds = [], None, 0.0
    for seed in range(seeds):
        curve, final, spent = train(problem, base, kwargs, tuned.learning_rate, epochs=epochs,
                                    batch_size=batch_size, seed=seed, cosine=cosine)  # fmt: skip
        curves.append(curve)
        params = final if seed == 0 else params
        seconds += spent
    return Runs(label, tuned, np.array(curves), params, seconds)
