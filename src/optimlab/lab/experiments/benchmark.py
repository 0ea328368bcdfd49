"""The verdict re-run, AlgoPerf-style: every optimizer of the lab on every workload, with a
declared tuning budget, several seeds, time to a declared target in steps and in seconds, and
performance profiles.

Protocol (after AlgoPerf's external tuning, Dahl et al. 2023, and Dolan & Moré's performance
profiles, 2002), stated once for every optimizer:

* **Workloads** (:data:`WORKLOADS`): data problems with a fixed budget of epochs and batch
  size, a full-data loss evaluated every ``eval_every`` updates, and a target for it (for a
  problem with a known optimum: the loss minus that optimum).
* **Search space and budget**: the learning rate, log-uniform over the optimizer's declared
  range (:func:`search_space`); every other hyperparameter at its Keras default. The budget is
  :data:`TRIALS` points of one scrambled Sobol sequence (``scipy.stats.qmc``, seed 0), the
  same points for every optimizer, each trained from seed 0.
* **Selection**: the trial that is best by (reaches the target, fewer updates to it, lower
  final loss), then trained again from seeds ``1 .. SEEDS - 1``.
* **Time to target**: the first evaluation after which the loss stays at or below the
  target to the end of the budget, in updates and in seconds spent in updates (gradient and
  step, the evaluations excluded); the median over seeds (not reached on a seed: infinite).
* **Performance profile**: with ``t_{p,s}`` optimizer s's time on workload p and ``r_{p,s} =
  t_{p,s} / min_s t_{p,s}``, ``rho_s(tau) = #{p : r_{p,s} <= tau} / #workloads``; its score is
  the mean of ``rho_s`` over ``tau`` in ``[1, TAU_MAX]`` (log-spaced), 1 for an optimizer that
  is fastest everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import problems
from ..contenders import CONTENDERS, resolve
from ..training import fit
from . import Plot, Result, Table
from . import claims as C
from ._text import NOT_REACHED, fmt, plural, settled_step


@dataclass(frozen=True)
class Workload:
    """A problem with its budget (epochs, batch size), how often the full-data loss is
    evaluated (in updates) and the target for it."""

    problem: str
    epochs: int
    batch_size: int
    eval_every: int
    target: float
    kwargs: tuple = ()

    def build(self):
        """The problem instance."""
        return problems.get(self.problem, **dict(self.kwargs))


WORKLOADS = (
    Workload("matrix_regression", 10, 64, 4, 2e-3),
    Workload("noisy_quadratic", 5, 32, 8, 0.02),
    Workload("breast_cancer", 5, 32, 6, 0.06),
    Workload("digits_softmax", 3, 64, 14, 0.2),
    Workload("digits_mlp", 4, 64, 14, 0.1),
    Workload("digits_cnn", 3, 64, 14, 0.15, (("filters", 6),)),
)
TRIALS, SEEDS, TAU_MAX = 8, 3, 4.0

#: the declared learning-rate range of each optimizer (log-uniform); the rest take DEFAULT_SPACE
SPACES = {
    "SGD": (1e-3, 10.0),
    "Momentum": (1e-4, 1.0),
    "NAG": (1e-4, 1.0),
    "Adadelta": (1e-1, 100.0),
}
DEFAULT_SPACE = (1e-4, 1.0)


def search_space(label: str) -> tuple[float, float]:
    """The declared range ``(low, high)`` of ``label``'s learning rate."""
    return SPACES.get(label, DEFAULT_SPACE)


def trial_points(n: int) -> np.ndarray:
    """``n`` points of a scrambled Sobol sequence in [0, 1) (scipy.stats.qmc, seed 0), sorted:
    the same quasi-random budget for every optimizer."""
    from scipy.stats import qmc

    return np.sort(qmc.Sobol(d=1, scramble=True, rng=0).random(n)[:, 0])


@dataclass
class Run:
    """One training run: the evaluation points, the (excess) loss at each, the seconds spent
    in updates up to each, and the updates and seconds to the target (inf: not reached)."""

    updates: np.ndarray
    losses: np.ndarray
    seconds: np.ndarray
    steps_to_target: float
    seconds_to_target: float

    @property
    def final(self) -> float:
        """The loss at the end of the budget (inf after a divergence)."""
        return float(self.losses[-1])

    def key(self) -> tuple:
        """(not reached, updates to the target, final loss): lower is better."""
        return (not np.isfinite(self.steps_to_target), self.steps_to_target, self.final)


def train(workload: Workload, problem, base: str, kwargs: dict, lr: float, seed: int) -> Run:
    """Train ``base(learning_rate=lr, **kwargs)`` on the workload from ``seed``."""
    from ... import optimizers

    offset = problem.optimum or 0.0
    opt = optimizers.get(base, learning_rate=float(lr), **kwargs)
    try:
        with np.errstate(all="ignore"):
            h = fit(problem, opt, epochs=workload.epochs, batch_size=workload.batch_size,
                    seed=seed, eval_every=workload.eval_every)  # fmt: skip
    except FloatingPointError:  # a NaN gradient: diverged
        inf = np.array([np.inf])
        return Run(np.zeros(1), inf, np.zeros(1), np.inf, np.inf)
    losses = np.where(np.isfinite(h.eval_loss), h.eval_loss - offset, np.inf)
    k = settled_step(losses, workload.target)
    if k < 0:
        return Run(h.eval_updates, losses, h.train_seconds, np.inf, np.inf)
    return Run(h.eval_updates, losses, h.train_seconds, float(h.eval_updates[k]),
               float(h.train_seconds[k]))  # fmt: skip


@dataclass
class Entry:
    """One optimizer on one workload: the trials' rates and runs, the chosen rate, the runs on
    every seed (seed 0 first) and their median times."""

    label: str
    rates: np.ndarray
    trials: list
    chosen: int
    runs: list

    @property
    def learning_rate(self) -> float:
        """The chosen trial's learning rate."""
        return float(self.rates[self.chosen])

    def median(self, what: str) -> float:
        """The median over seeds of ``steps_to_target`` or ``seconds_to_target``."""
        return float(np.median([getattr(r, what) for r in self.runs]))


def evaluate(workload: Workload, label: str, trials: int, seeds: int) -> Entry:
    """The budgeted tuning of ``label`` on ``workload`` and its runs on every seed."""
    _, base, kwargs = resolve(label)
    problem = workload.build()
    low, high = search_space(label)
    rates = low * (high / low) ** trial_points(trials)
    tried = [train(workload, problem, base, kwargs, lr, 0) for lr in rates]
    chosen = min(range(trials), key=lambda i: (tried[i].key(), -i))
    runs = [tried[chosen]] + [
        train(workload, problem, base, kwargs, rates[chosen], s) for s in range(1, seeds)
    ]
    return Entry(label, rates, tried, chosen, runs)


def profiles(times: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Dolan & Moré's performance profiles: ``times`` (workloads x optimizers, inf where not
    reached) -> ``rho`` (optimizers x taus), the fraction of workloads on which each
    optimizer's time is within ``tau`` times the best one's."""
    best = np.min(times, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(best), times / best, np.inf)
    return np.array([[np.mean(ratio[:, j] <= tau) for tau in taus]
                     for j in range(times.shape[1])])  # fmt: skip


def _listed(names: list[str]) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _time_cell(value: float, unit: str):
    if not np.isfinite(value):
        return NOT_REACHED
    return f"{fmt(value)} {unit}" if unit else int(value)


def run_benchmark(quick: bool = False) -> Result:
    """Every optimizer of the lab on every workload of :data:`WORKLOADS` under the declared
    protocol (see the module's docstring): time to target, performance profiles in updates and
    in seconds, and the ranking by the profile's score."""
    from ...viz import lines_figure

    trials, seeds = (4, 2) if quick else (TRIALS, SEEDS)
    workloads = WORKLOADS[::2] if quick else WORKLOADS
    labels = list(CONTENDERS)
    entries = {(w.problem, label): evaluate(w, label, trials, seeds)
               for w in workloads for label in labels}  # fmt: skip
    names = [w.problem for w in workloads]
    steps = np.array([[entries[p, s].median("steps_to_target") for s in labels] for p in names])
    secs = np.array([[entries[p, s].median("seconds_to_target") for s in labels] for p in names])
    taus = np.logspace(0.0, np.log10(TAU_MAX), 25)
    rho_steps, rho_secs = profiles(steps, taus), profiles(secs, taus)
    score = rho_steps.mean(axis=1)
    score_secs = rho_secs.mean(axis=1)
    order = sorted(range(len(labels)), key=lambda j: (-round(score[j], 12), j))
    reached = np.isfinite(steps).sum(axis=0)
    wins = (steps == np.min(steps, axis=1, keepdims=True)) & np.isfinite(steps)
    at_two = rho_steps[:, np.searchsorted(taus, 2.0 - 1e-12)]
    ranking = [
        [k + 1, labels[j], fmt(score[j]), f"{reached[j]} of {len(names)}", int(wins[:, j].sum()),
         fmt(at_two[j]), fmt(score_secs[j])]
        for k, j in enumerate(order)
    ]  # fmt: skip
    rows = []
    for p in names:
        for s in labels:
            e = entries[p, s]
            rows.append([p, s, e.learning_rate,
                         f"{sum(np.isfinite(r.steps_to_target) for r in e.runs)} of {seeds}",
                         _time_cell(e.median("steps_to_target"), ""),
                         _time_cell(e.median("seconds_to_target"), "s"),
                         fmt(float(np.median([r.final for r in e.runs])))])  # fmt: skip
    numbers = {f"profile score (updates): {labels[j]}": float(score[j]) for j in order}
    for p in names:
        for j, s in enumerate(labels):
            numbers[f"{p} updates to target: {s}"] = float(steps[names.index(p), j])
    best = [labels[j] for j in order if round(score[j], 12) == round(score[order[0]], 12)]
    numbers["best profile score"] = ", ".join(best)
    winners = {p: [labels[j] for j in range(len(labels)) if wins[i, j]]
               for i, p in enumerate(names)}  # fmt: skip
    top = ", ".join(f"{labels[j]} ({fmt(score[j])})" for j in order[:3])
    never = [labels[j] for j in range(len(labels)) if reached[j] == 0]
    fig = lines_figure(
        {labels[j]: (taus, rho_steps[j]) for j in order},
        xlabel="tau: within this factor of the fastest optimizer's updates to the target",
        ylabel="fraction of workloads",
        title=f"Performance profiles in updates, {len(names)} workloads, {trials} trials each",
        log_x=True,
        log_y=False,
    )
    summary = (
        "The lecture's verdict tunes one learning rate on a grid per problem. Benchmarks of "
        "optimizers today (AlgoPerf, Dahl et al. 2023) declare more: a search space and a "
        "tuning budget per optimizer, a target per workload, time to that target as the "
        "measure, several seeds, and one summary over workloads, the performance profile "
        "(Dolan & Moré 2002). Here every optimizer of the lab gets the same budget: "
        f"{plural(trials, 'trial')} of its learning rate, log-uniform over its declared range "
        "(the same quasi-random points for all), each trained from seed 0; the best trial by "
        "(reaches the target, fewer updates, lower final loss) is trained again from "
        f"{plural(seeds - 1, 'more seed')}, and its time to target is the median over the "
        f"{seeds} seeds. The workloads are {', '.join(names)}, each with a fixed budget of "
        "epochs.\n\n"
        f"Best profile scores (1 = fastest on every workload): {top}. Fastest per workload, "
        "in updates: "
        + "; ".join(f"{p}: {', '.join(w) or 'none reached'}" for p, w in winners.items())
        + ". "
        + (
            f"{_listed(never)} reached no target within the budget. "
            if never
            else "Every optimizer reached at least one target. "
        )
        + "The profiles in seconds (the last column of the ranking) count the time each "
        "step costs on this machine: a tensor-level rule (Muon's matrix products) pays for "
        "its updates in arithmetic, the elementwise rules run fused. Seconds vary from run "
        "to run and machine to machine; the updates do not."
    )
    monotone = bool(
        np.all(np.diff(rho_steps, axis=1) >= 0) and np.all(np.diff(rho_secs, axis=1) >= 0)
    )
    solved = np.isfinite(steps).any(axis=1)
    claims = [
        C.check("Every profile rises with tau (more workloads within a looser factor)", monotone),
        C.check(
            "At tau = 1 the profiles count the fastest optimizers: every workload that some "
            "optimizer solves has at least one",
            bool(np.all(wins.sum(axis=1)[solved] >= 1)),
        ),
        C.check(
            "No profile exceeds the share of workloads its optimizer solves",
            bool(np.all(rho_steps[:, -1] <= reached / len(names) + 1e-12)),
        ),
        C.check(
            "Each chosen trial is the best of its budget by the stated rule",
            all(
                e.trials[e.chosen].key() == min(t.key() for t in e.trials) for e in entries.values()
            ),
        ),  # fmt: skip
        C.check(
            "The ranking is sorted by the profile score",
            all(score[a] >= score[b] for a, b in zip(order, order[1:], strict=False)),
        ),
        C.check("At least one optimizer solves each workload", bool(np.all(solved))),
    ]
    return Result(
        key="benchmark",
        title="Beyond the lecture: the verdict re-run, AlgoPerf-style",
        chapter="",
        summary=summary,
        equations=[
            r"r_{p,s} = \frac{t_{p,s}}{\min_{s'} t_{p,s'}},\qquad"
            r" \rho_s(\tau) = \frac{1}{|P|}\,\#\{p \in P : r_{p,s} \le \tau\}",
            r"\text{score}_s = \operatorname{mean}_{\tau \in [1, 4]} \rho_s(\tau)",
        ],
        numbers=numbers,
        tables=[
            Table(
                "Ranking by the performance profile's score (time in updates)",
                [
                    "place",
                    "optimizer",
                    "score (updates)",
                    "targets reached",
                    "fastest on",
                    "rho(2)",
                    "score (seconds)",
                ],  # fmt: skip
                ranking,
                note="score: the mean of rho over 25 log-spaced tau in [1, 4]; rho(2): the "
                "share of workloads within twice the fastest. The seconds column is wall "
                "time on this machine and differs between runs.",
            ),
            Table(
                "Per workload: the chosen learning rate, seeds reaching the target, median "
                "time to it and median final loss",
                [
                    "workload",
                    "optimizer",
                    "chosen lr",
                    "reached",
                    "updates to target",
                    "seconds to target",
                    "final loss",
                ],  # fmt: skip
                rows,
                note="Targets: "
                + "; ".join(
                    f"{w.problem}: {fmt(w.target)} ({w.epochs} epochs, batch {w.batch_size}, "
                    f"evaluated every {w.eval_every} updates)"
                    for w in workloads
                )
                + ". Problems with a known optimum (matrix_regression, noisy_quadratic) "
                "count the loss above it.",
            ),
        ],
        figures={
            "profiles": Plot(
                fig,
                "a curve high on the left is often the fastest; one that reaches 1 on the "
                "right solves every workload within 4 times the best.",
            )
        },
        claims=claims,
        settings={
            "trials": trials,
            "seeds": seeds,
            "workloads": len(names),
            "optimizers": len(labels),
        },  # fmt: skip
    )
