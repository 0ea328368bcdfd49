"""The verdict: every optimizer on every problem, each with its learning rate tuned by one
stated rule, ranked by that rule.

Protocol (after DeepOBS): on every problem each optimizer runs from several seeds (surfaces:
starts jittered around the standard one; data problems: the shuffling and initialization
seed) over the same horizon that is reported, with no gradient clipping. Its result on a
problem is, in this order of importance:

1. how many of its runs reach the target (f - f_min stays <= the target to the horizon),
2. the median number of steps they need (a run that does not reach it counts as infinite),
3. the median final loss,

compared as shown (3 significant digits): equal results share a rank. Its learning rate is
the one of a log grid that is best by that same rule, on the same seeds; a best rate on the
grid's edge widens the grid (``_tuning``), and one that stays on the edge is flagged. Data
problems, where every grid point is a training run, are tuned on seed 0 and reported over all
their seeds.
"""

from __future__ import annotations

import numpy as np

from .. import problems, surfaces
from ..contenders import DEFAULT_SET, resolve
from . import Plot, Result, Table
from . import claims as C
from ._text import DIVERGED, NOT_REACHED, fmt, plural, settled_step
from ._tuning import tune

SURFACE_CASES = [  # (surface, steps, target for f - f_min)
    ("ravine", 500, 1e-6),
    ("rosenbrock", 1000, 1e-4),
    ("beale", 1000, 1e-4),
    ("rastrigin", 500, 1e-4),
    ("plateau", 500, 1e-4),
]
PROBLEM_CASES = [  # (problem, epochs, batch size, target full-data loss; None: optimum + 0.01)
    ("linear", 5, 50, None),
    ("breast_cancer", 5, 32, 0.06),
    ("digits_softmax", 3, 64, 0.2),
]
SURFACE_SEEDS, PROBLEM_SEEDS = 5, 3


class Outcome:
    """One optimizer on one problem at one learning rate: per seed, the final loss, the steps
    to the target (inf: not reached) and whether the run diverged."""

    def __init__(self, finals, hits, diverged):
        self.finals = np.asarray(finals, float)
        self.hits = np.asarray(hits, float)
        self.diverged = np.asarray(diverged, bool)

    def key(self) -> tuple:
        """(-runs reaching the target, median steps, median final loss) at 3 significant
        digits: the rule, lower is better."""
        reached = int(np.sum(np.isfinite(self.hits)))
        steps = float(np.median(self.hits))
        final = float(np.median(np.where(self.diverged, np.inf, self.finals)))
        return (-reached, _shown(steps), _shown(final))


def _shown(value: float) -> float:
    """``value`` at the 3 significant digits the tables print (inf stays inf)."""
    return float(f"{value:.3g}") if np.isfinite(value) else float(value)


def _surface_outcomes(name, steps, target, base, kwargs, seeds):
    """A scorer for :func:`tune`: learning rates -> keys, keeping every Outcome."""
    from ..sweep import sweep

    surface = surfaces.get(name)
    rng = np.random.default_rng(0)
    starts = surface.default_start + rng.normal(0.0, 0.05, (seeds, 2))
    kept = {}

    def score(lrs):
        result = sweep(
            surface, base, steps=steps, starts=starts, learning_rate=lrs, keep_paths=False,
            **kwargs,
        )  # fmt: skip
        final = np.asarray(result.final_loss, float).reshape(seeds, len(lrs)) - result.f_min
        final = np.maximum(final, 0.0)
        diverged = np.asarray(result.diverged).reshape(seeds, len(lrs))
        hits = np.asarray(result.steps_to(target)).reshape(seeds, len(lrs)).astype(float)
        hits[hits < 0] = np.inf
        keys = []
        for j, lr in enumerate(lrs):
            kept[float(lr)] = Outcome(final[:, j], hits[:, j], diverged[:, j])
            keys.append(kept[float(lr)].key())
        return np.array(keys, float)

    return score, kept


def _problem_outcomes(name, epochs, batch_size, target, base, kwargs, seeds):
    from ... import optimizers
    from ..training import fit

    problem = problems.get(name)
    if target is None:
        target = problem.optimum + 0.01
    kept = {}

    def one(lr, seed):
        """(final full-data loss, updates until the loss stays <= target, diverged)."""
        opt = optimizers.get(base, learning_rate=float(lr), **kwargs)
        try:
            with np.errstate(all="ignore"):
                history = fit(problem, opt, epochs=epochs, batch_size=batch_size, seed=seed)
        except FloatingPointError:  # a NaN gradient was refused: diverged
            return np.inf, np.inf, True
        curve = np.asarray(history.loss_per_epoch, float)
        if not np.isfinite(curve[-1]):
            return np.inf, np.inf, True
        epoch = settled_step(curve, target)
        hit = float(epoch * history.updates // epochs) if epoch >= 0 else np.inf
        return float(curve[-1]), hit, False

    def score(lrs):  # tuned on seed 0 (data problems cost a full training run per point)
        keys = []
        for lr in lrs:
            kept[float(lr)] = Outcome(*zip(one(lr, 0), strict=True))
            keys.append(kept[float(lr)].key())
        return np.array(keys, float)

    def report(lr):  # the chosen rate on every seed
        return Outcome(*zip(*[one(lr, s) for s in range(seeds)], strict=True))

    return score, report, target


def competition_ranks(keys: list[tuple]) -> list[int]:
    """1 + the number of strictly better keys, for each key: equal keys share a rank and the
    next rank is skipped (1, 1, 3)."""
    return [1 + sum(other < k for other in keys) for k in keys]


def _steps_cell(outcome: Outcome):
    hits = outcome.hits[np.isfinite(outcome.hits)]
    if not hits.size:
        return NOT_REACHED
    if hits.size == 1:
        return f"{fmt(hits[0])}"
    return f"{fmt(np.median(hits))} [{fmt(hits.min())}, {fmt(hits.max())}]"


def _final_cell(outcome: Outcome):
    bad = int(outcome.diverged.sum())
    ok = outcome.finals[~outcome.diverged]
    if not ok.size:
        return DIVERGED
    text = f"{fmt(np.median(ok))} [{fmt(ok.min())}, {fmt(ok.max())}]"
    return text + (f"; {bad} of {outcome.diverged.size} diverged" if bad else "")


def run_verdict(quick: bool = False) -> Result:
    """Every optimizer of the lab on every surface and data problem, tuned by the stated rule;
    ranks per problem (ties shared) and the mean rank."""
    from ...viz import heatmap

    specs = [resolve(s) for s in DEFAULT_SET]
    s_seeds = 3 if quick else SURFACE_SEEDS
    p_seeds = 2 if quick else PROBLEM_SEEDS
    cases = SURFACE_CASES[:2] + SURFACE_CASES[-1:] if quick else SURFACE_CASES
    pcases = PROBLEM_CASES[:1] if quick else PROBLEM_CASES
    chosen, targets, edges = {}, {}, []
    for name, steps, target in cases:
        steps = steps // (4 if quick else 1)
        targets[name] = (target, f"{plural(steps, 'step')}, {s_seeds} starts")
        for label, base, kwargs in specs:
            score, kept = _surface_outcomes(name, steps, target, base, kwargs, s_seeds)
            tuned = tune(score, np.logspace(-5, 1, 13 if quick else 25))
            chosen[name, label] = (tuned, kept[tuned.learning_rate])
            edges.append((name, label)) if tuned.on_edge else None
    for name, epochs, batch, target in pcases:
        for label, base, kwargs in specs:
            score, report, target = _problem_outcomes(name, epochs, batch, target, base, kwargs,
                                                      p_seeds)  # fmt: skip
            tuned = tune(score, np.logspace(-4, 0, 9))
            chosen[name, label] = (tuned, report(tuned.learning_rate))
            edges.append((name, label)) if tuned.on_edge else None
        targets[name] = (target, f"{epochs} epochs, batch {batch}, {p_seeds} seeds")

    labels = [label for label, _, _ in specs]
    names = list(targets)
    ranks = np.zeros((len(names), len(labels)), int)
    rows = []
    keys_of = {}
    for i, case in enumerate(names):
        keys = [chosen[case, label][1].key() for label in labels]
        keys_of[case] = keys
        ranks[i] = competition_ranks(keys)
        for j, label in enumerate(labels):
            tuned, outcome = chosen[case, label]
            reached = int(np.sum(np.isfinite(outcome.hits)))
            rows.append(
                [
                    case,
                    label,
                    tuned.learning_rate,
                    "yes" if tuned.on_edge else "no",
                    f"{reached} of {outcome.hits.size}",
                    _steps_cell(outcome),
                    _final_cell(outcome),
                    int(ranks[i, j]),
                ]
            )
    mean_rank = ranks.mean(axis=0)
    worst_rank = ranks.max(axis=0)
    won = (ranks == 1).sum(axis=0)
    order = sorted(
        range(len(labels)), key=lambda k: (round(mean_rank[k], 9), labels.index(labels[k]))
    )
    overall = competition_ranks([(round(float(mean_rank[k]), 9),) for k in range(len(labels))])
    ranking = [
        [int(overall[k]), labels[k], float(mean_rank[k]), int(worst_rank[k]), int(won[k])]
        for k in order
    ]
    numbers = {f"mean rank: {label}": float(mean_rank[k]) for k, label in enumerate(labels)}
    best = [r[1] for r in ranking if r[0] == 1]
    numbers["best mean rank"] = ", ".join(best)
    robust_worst = int(worst_rank.min())
    robust = [labels[k] for k in range(len(labels)) if worst_rank[k] == robust_worst]
    numbers["best worst-case rank"] = f"{', '.join(robust)} ({robust_worst})"
    winners = {case: [labels[j] for j in range(len(labels)) if ranks[i, j] == 1]
               for i, case in enumerate(names)}  # fmt: skip
    fig = heatmap(
        ranks,
        np.arange(len(labels)),
        np.arange(len(names)),
        xlabel="optimizer",
        ylabel="problem",
        title="Rank of each optimizer per problem (1 = best; ties share a rank)",
        log_x=False,
        log_values=False,
        cbar_label="rank",
        mark_min=False,
        annotate=True,
    )
    ax = fig.axes[0]
    ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(names)), names)
    adam = next(r for r in ranking if r[1] == "Adam")
    top = ", ".join(f"{r[1]} ({fmt(r[2])})" for r in ranking[:3])
    summary = (
        "Each optimizer's learning rate is tuned on a log grid (widened at its edge) by the "
        "rule that also ranks it: first, how many runs reach the target and stay there; then "
        "the median steps to it; then the median final loss, compared at the 3 digits shown "
        f"(equal results share a rank). Surfaces are tuned and reported on {s_seeds} starts "
        "jittered around the standard one; data problems, where every point of the grid is a "
        f"full training run, are tuned on seed 0 and reported over {p_seeds} seeds (0 to "
        f"{p_seeds - 1}). Every run has the horizon reported; no clipping.\n\n"
        f"Best mean rank over the {len(names)} problems (lower is better): {top}. Winners per "
        "problem: "
        + "; ".join(f"{case}: {', '.join(w)}" for case, w in winners.items())
        + f". The most dependable (best worst-case rank): {' and '.join(robust)}, never "
        f"worse than {robust_worst}. Adam's mean rank is {fmt(adam[2])}, its worst "
        f"{adam[3]}, and it wins {plural(adam[4], 'problem')} of {len(names)}: no optimizer "
        "wins everywhere. The lecture's verdict, Adam first and RMSprop if it does not work, "
        "is advice for a first try without tuning; "
        + (
            "with every learning rate tuned Adam also has the best mean rank here, "
            if "Adam" in best
            else f"with every learning rate tuned, {' and '.join(best)} rank best here, "
        )
        + f"while RMSprop places {next(r[0] for r in ranking if r[1] == 'RMSprop')} of "
        f"{len(labels)}. Tune before you conclude that one optimizer is better than another."
    )
    claims = [
        C.check(
            "Ranks follow the stated rule: within each problem, a better result never has a "
            "worse rank, and equal results share one",
            all(
                (ka < kb) <= (ra < rb) and (ka == kb) <= (ra == rb)
                for i, case in enumerate(names)
                for ka, ra in zip(keys_of[case], ranks[i], strict=True)
                for kb, rb in zip(keys_of[case], ranks[i], strict=True)
            ),
        ),
        C.check(
            "Every winner is best by the rule on its problem",
            all(
                chosen[case, w][1].key() == min(keys_of[case])
                for case, ws in winners.items()
                for w in ws
            ),
        ),
        C.check(
            "The mean-rank table is sorted and its ranks agree with the mean ranks",
            all(a[2] <= b[2] for a, b in zip(ranking, ranking[1:], strict=False))
            and all(
                (a[2] == b[2]) == (a[0] == b[0]) for a, b in zip(ranking, ranking[1:], strict=False)
            ),  # fmt: skip
        ),
        C.check(
            "No tuned learning rate is left on the edge of its grid",
            not edges,
            "; ".join(f"{c}: {o}" for c, o in edges) or "none",
        ),
        C.check(
            "'Problems won' counts the problems where the optimizer has rank 1",
            all(r[4] == sum(r[1] in w for w in winners.values()) for r in ranking),
        ),
    ]
    return Result(
        key="verdict",
        title="Verdict: which optimizer to use",
        chapter="",
        summary=summary,
        equations=[
            r"\text{result} = \big(-\#\text{runs reaching the target},\ "
            r"\operatorname{median}(\text{steps}),\ \operatorname{median}(\text{final loss})\big)",
            r"\text{tuned } \eta = \operatorname{argmin}_{\eta \in \text{grid}}"
            r" \text{result}(\eta)",
        ],
        numbers=numbers,
        tables=[
            Table(
                f"Mean rank over the {len(names)} problems (1 = best)",
                ["place", "optimizer", "mean rank", "worst rank", "problems won"],
                ranking,
            ),
            Table(
                "Per problem: tuned learning rate, runs reaching the target, steps to it "
                "(median [min, max] of the runs that reach it) and final loss (median [min, "
                "max])",
                [
                    "problem",
                    "optimizer",
                    "tuned lr",
                    "lr on the grid's edge",
                    "reached",
                    "steps to target",
                    "final loss",
                    "rank",
                ],
                rows,
                note="Targets: "
                + "; ".join(f"{c}: {fmt(t)} ({how})" for c, (t, how) in targets.items())
                + ". Surfaces: f − f_min; data problems: the full-data loss, steps counted in "
                "updates at the end of the epoch from which the loss stays below the target.",
            ),
        ],
        figures={
            "ranks": Plot(
                fig,
                "read a column for one optimizer across the problems: no column is dark "
                "(rank 1) everywhere; equal results show the same number.",
            )
        },
        claims=claims,
        settings={
            "optimizers": len(labels),
            "surface starts": s_seeds,
            "data seeds": p_seeds,
        },  # fmt: skip
    )
