"""``fit``: batch, stochastic and mini-batch gradient descent on a data problem.

The lecture's three kinds of gradient descent differ only in how many rows each update sees::

    for epoch in 1..epochs:
        order = a seeded shuffle of the n rows
        for each batch B of batch_size consecutive rows of order:
            g = (1/|B|) sum_{i in B} grad l_i(theta)      problem.loss_and_grad(theta, B)
            theta = optimizer step(theta, g)               e.g. theta = theta - lr * g

``batch_size=None``: batch GD, one update per epoch on all rows; ``batch_size=1``: stochastic
GD, n updates per epoch; ``batch_size=k``: mini-batch GD, ``ceil(n / k)`` updates per epoch
(``floor(n / k)`` with ``drop_last``). The lecture's numbers: 500 rows, 10 epochs, batch size
100 give 5 batches x 10 epochs = 50 updates; batch size 1 gives 10 x 500 = 5000.

The parameters live in one :class:`optimlab.Params` (a flat buffer with named views), the
gradient is written into ``params.grads[name]`` and ``optimizer.step(params)`` applies it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import optimizers
from .._validation import check_bool, check_int
from ..optimizer import Optimizer
from ..params import Params
from .problems import Problem

__all__ = ["History", "Trace", "fit", "updates_per_epoch"]


@dataclass
class Trace:
    """What each update did (recorded by ``fit(..., trace=True)``); row t is update t.

    ``learning_rate[t]``: the optimizer's learning rate at update t (a schedule evaluated
    there). ``gradient_norm[t] = ||g_t||`` and ``update_norm[t] = ||theta_{t+1} - theta_t||``
    (Euclidean norms over all parameters). ``effective_step[name][t] = |theta_{t+1} - theta_t|
    / |g_t|`` elementwise (NaN where ``g_t = 0``): the per-parameter effective learning rate,
    equal to ``learning_rate`` for plain SGD and shrinking as ``lr / sqrt(sum g^2)`` for Adagrad
    (the lecture's per-parameter learning rates; Duchi, Hazan & Singer 2011). It includes
    whatever else the optimizer does (momentum, clipping, weight decay), which is the point:
    the step actually taken per unit of gradient. ``params[name][t]``: the parameters before
    update t, and after the last one at ``t = updates`` (the path of the optimizer).
    """

    learning_rate: np.ndarray
    gradient_norm: np.ndarray
    update_norm: np.ndarray
    effective_step: dict[str, np.ndarray]
    params: dict[str, np.ndarray]


@dataclass
class History:
    """The record of one :func:`fit`.

    ``loss_per_update[t]``: the mini-batch loss at update t, before the step.
    ``loss_per_epoch[e]``: the full-data loss after e epochs (``e = 0``: the initial loss;
    length ``epochs + 1``). ``updates``: optimizer steps taken. ``gradient_evaluations``:
    per-example gradients computed (rows processed, ``sum_t |B_t|``);
    ``evaluations_per_update[t]``: the running count after update t (the x axis that compares
    batch sizes at equal work). ``wall_time``: seconds for the whole loop, the full-data losses
    included. ``batch_size``: the resolved batch size (``n_samples`` for batch GD). ``params``:
    the final parameters (copies). ``trace``: a :class:`Trace`, or None unless requested.
    ``eval_updates``, ``eval_loss``, ``train_seconds`` (with ``fit(eval_every=k)``): the
    update counts 0, k, 2k, ... at which the full-data loss was also evaluated, that loss, and
    the seconds spent in updates (gradients and steps, not the evaluations) up to each; empty
    otherwise.
    """

    loss_per_update: np.ndarray
    loss_per_epoch: np.ndarray
    updates: int
    gradient_evaluations: int
    evaluations_per_update: np.ndarray
    wall_time: float
    epochs: int
    batch_size: int
    params: dict[str, np.ndarray]
    problem: str = ""
    optimizer: str = ""
    trace: Trace | None = None
    eval_updates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    eval_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    train_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def final_loss(self) -> float:
        """The full-data loss after the last epoch."""
        return float(self.loss_per_epoch[-1])


def updates_per_epoch(n_samples: int, batch_size: int | None, drop_last: bool = False) -> int:
    """Updates in one epoch: ``ceil(n / k)``, or ``floor(n / k)`` with ``drop_last`` (``k = n``
    for batch GD): 500 rows, batch 100 -> 5; batch 300 -> 2, with ``drop_last`` 1."""
    n = check_int("n_samples", n_samples, 1)
    k = n if batch_size is None else check_int("batch_size", batch_size, 1, n)
    return n // k if check_bool("drop_last", drop_last) else -(-n // k)


def _resolve_optimizer(optimizer) -> Optimizer:
    if isinstance(optimizer, str):
        return optimizers.get(optimizer)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "optimizer must be an optimlab Optimizer instance or an optimizer name such as "
            f"'SGD' or 'Adam' (valid names: {', '.join(optimizers.OPTIMIZERS)}), got "
            f"{type(optimizer).__name__}"
        )
    if optimizer.built or optimizer.iterations:
        raise ValueError(
            f"optimizer must be fresh: {optimizer.name} has already taken "
            f"{optimizer.iterations} step(s) on other parameters; build a new one per fit"
        )
    return optimizer


def fit(
    problem: Problem,
    optimizer: Optimizer | str,
    *,
    epochs: int = 10,
    batch_size: int | None = None,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    params: Mapping[str, np.ndarray] | None = None,
    trace: bool = False,
    eval_every: int | None = None,
) -> History:
    """Train ``problem`` with ``optimizer`` by batch, stochastic or mini-batch gradient descent.

        Each update t: ``loss_t, g_t = problem.loss_and_grad(theta_t, B_t)`` on the rows ``B_t``
        of the batch, ``params.grads[name][...] = g_t[name]``, ``optimizer.step(params)`` (a rule on
    whole tensors such as Muon's: ``optimizer.apply_gradients`` on each parameter's view; for SGD:
        ``theta_{t+1} = theta_t - lr * g_t``, the lecture's ``w_n = w_0 - eta dL/dw``).

        ``optimizer``: a fresh :class:`optimlab.Optimizer` (it is built on the parameters here), or
        a name for :func:`optimlab.get` with default hyperparameters. ``batch_size``: None (batch
        GD: one update per epoch on all rows), 1 (stochastic GD) or k in [1, n_samples]
        (mini-batch). ``seed``: the initial parameters ``problem.init_params(seed)`` (unless
        ``params`` is given; it is copied) and the per-epoch shuffle (``numpy.random
        .default_rng(seed)``); the same arguments give the same :class:`History`, bit for bit.
        ``shuffle=False`` keeps the rows in order. ``drop_last`` skips a final batch shorter than
        ``batch_size``. ``trace=True`` records a :class:`Trace` (memory: two arrays of
        ``updates x n_parameters`` floats).

        ``eval_every=k`` also evaluates the full-data loss before the first update and after every
        k-th one, and times the updates alone (``History.eval_updates``, ``eval_loss``,
        ``train_seconds``: what a time-to-target benchmark needs).

        An optimizer with evaluation parameters of its own (Schedule-Free AdamW's average x,
    ``eval_params``) is evaluated there: the full-data losses and ``History.params`` are x's,
    while the gradients are taken where the optimizer keeps the parameters (its y).

    A NaN or Inf gradient raises ``FloatingPointError`` (the optimizer's ``nan_policy``).
    """
    if not isinstance(problem, Problem):
        raise TypeError(
            "problem must be an optimlab.lab.problems.Problem (see problems.get), got "
            f"{type(problem).__name__}"
        )
    n = problem.n_samples
    epochs = check_int("epochs", epochs, 1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1, n)
    seed = check_int("seed", seed, 0)
    shuffle = check_bool("shuffle", shuffle)
    drop_last = check_bool("drop_last", drop_last)
    trace = check_bool("trace", trace)
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, 1)
    optimizer = _resolve_optimizer(optimizer)
    initial = problem.init_params(seed) if params is None else params
    problem._check_params(initial)  # names and shapes, with the problem's messages
    theta = Params({k: np.array(initial[k], copy=True) for k in problem.shapes})

    full_batch = batch_size is None
    k = n if full_batch else batch_size
    per_epoch = updates_per_epoch(n, k, drop_last)
    total = per_epoch * epochs
    rng = np.random.default_rng(seed)
    names = list(problem.shapes)
    segments = {s.name: s for s in theta.segments}
    # a rule on whole tensors (Muon, Adafactor, Lamb) takes each parameter as its own array:
    # the views of theta's buffer, updated in place; an elementwise one steps the flat buffer
    # an optimizer that evaluates elsewhere than where it takes gradients (Schedule-Free's x,
    # its eval_params) is evaluated there: it too takes each parameter as its own array
    evaluates_elsewhere = callable(getattr(optimizer, "eval_params", None))
    whole_tensors = getattr(optimizer.rule, "TENSOR", False) or evaluates_elsewhere

    def evaluated() -> dict:
        """The parameters the model is evaluated at (copies for an optimizer's own x)."""
        if evaluates_elsewhere and optimizer.built:
            return dict(zip(names, optimizer.eval_params(views), strict=True))
        return {m: theta[m] for m in names}

    views = [theta[m] for m in names]
    grad_views = [theta.grads[m] for m in names]

    loss_per_update = np.empty(total)
    evaluations = np.empty(total, dtype=np.int64)
    loss_per_epoch = np.empty(epochs + 1)
    if trace:
        lr_trace, g_norm, u_norm = np.empty(total), np.empty(total), np.empty(total)
        effective = {m: np.empty((total, *problem.shapes[m])) for m in names}
        path = {m: np.empty((total + 1, *problem.shapes[m])) for m in names}
        for m in names:
            path[m][0] = theta[m]

    eval_at, eval_loss, eval_seconds = [], [], []
    spent = 0.0
    if eval_every is not None:
        eval_at.append(0)
        eval_loss.append(problem.loss(theta))
        eval_seconds.append(0.0)
    start = time.perf_counter()
    loss_per_epoch[0] = problem.loss(theta)
    t = 0
    rows_done = 0
    for epoch in range(epochs):
        if full_batch:
            batches = [None]
        else:
            order = rng.permutation(n) if shuffle else np.arange(n)
            batches = [order[i : i + k] for i in range(0, per_epoch * k, k)]
        for rows in batches:
            tick = time.perf_counter()
            loss, grads = problem.loss_and_grad(theta, rows)
            for m in names:
                theta.grads[m][...] = grads[m]
            if trace:
                lr_trace[t] = optimizer.learning_rate
                before = theta.data.copy()
            if whole_tensors:
                optimizer.apply_gradients(zip(grad_views, views, strict=True))
            else:
                optimizer.step(theta)
            spent += time.perf_counter() - tick
            loss_per_update[t] = loss
            rows_done += n if rows is None else rows.size
            evaluations[t] = rows_done
            if trace:
                delta = theta.data - before
                g_norm[t] = np.sqrt(sum(_segment_sq(theta.grad, segments[m]) for m in names))
                u_norm[t] = np.sqrt(sum(_segment_sq(delta, segments[m]) for m in names))
                for m in names:
                    seg = segments[m]
                    step = np.abs(delta[seg.offset : seg.offset + seg.size]).reshape(seg.shape)
                    g = np.abs(theta.grads[m])
                    with np.errstate(divide="ignore", invalid="ignore"):
                        effective[m][t] = np.where(g != 0, step / g, np.nan)
                    path[m][t + 1] = theta[m]
            t += 1
            if eval_every is not None and t % eval_every == 0:
                eval_at.append(t)
                eval_loss.append(problem.loss(evaluated()))
                eval_seconds.append(spent)
        loss_per_epoch[epoch + 1] = problem.loss(evaluated())
    wall_time = time.perf_counter() - start

    return History(
        loss_per_update=loss_per_update,
        loss_per_epoch=loss_per_epoch,
        updates=total,
        gradient_evaluations=rows_done,
        evaluations_per_update=evaluations,
        wall_time=wall_time,
        epochs=epochs,
        batch_size=k,
        params={m: np.array(v, copy=True) for m, v in evaluated().items()},
        problem=problem.name,
        optimizer=optimizer.name,
        trace=(
            Trace(
                learning_rate=lr_trace,
                gradient_norm=g_norm,
                update_norm=u_norm,
                effective_step=effective,
                params=path,
            )
            if trace
            else None
        ),
        eval_updates=np.asarray(eval_at, np.int64),
        eval_loss=np.asarray(eval_loss, float),
        train_seconds=np.asarray(eval_seconds, float),
    )


def _segment_sq(flat: np.ndarray, seg) -> float:
    part = flat[seg.offset : seg.offset + seg.size]
    return float(np.dot(part, part))
