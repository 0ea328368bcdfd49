"""Fair comparisons of optimizers: what ``optimlab compare`` and ``optimlab sweep`` run.

Fair by default (the pitfalls of public optimizer galleries, see the README): every optimizer
gets its learning rate tuned on the same log grid, over the same horizon that is then plotted,
with no hidden gradient clipping; the chosen rate is printed next to its curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import surfaces
from .contenders import DEFAULT_SET, resolve

SURFACE_GRID = np.logspace(-5, 2, 36)  # DeepOBS's grid: 36 points, 0.2 decades apart
PROBLEM_GRID = np.logspace(-4, 0, 9)


@dataclass
class Comparison:
    """The outcome of :func:`compare`: per optimizer its learning rate and final loss, the
    curves (and paths on a surface), and the figure."""

    target: object
    rows: list = field(default_factory=list)  # (label, learning rate, final loss, steps)
    paths: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    grad_norms: dict = field(default_factory=dict)
    x_label: str = "step"

    def table(self) -> str:
        """A plain-text table: optimizer, learning rate, final loss."""
        lines = [f"{'optimizer':28s} {'learning rate':>14s} {'final loss':>14s}"]
        for label, lr, final, _ in self.rows:
            lines.append(f"{label:28s} {lr:14.4g} {final:14.6g}")
        return "\n".join(lines)

    def figure(self):
        """Contours with paths and curves (surface), or the loss curves (data problem)."""
        from ..viz import contour_with_paths, lines_figure

        title = getattr(self.target, "title", getattr(self.target, "name", ""))
        if self.paths:
            return contour_with_paths(
                self.target,
                self.paths,
                losses=self.losses,
                grad_norms=self.grad_norms,
                title=f"{title}: each learning rate tuned on the plotted horizon",
            )
        curves = {k: (np.arange(len(v)), v) for k, v in self.losses.items()}
        return lines_figure(
            curves,
            xlabel=self.x_label,
            ylabel="full-data loss",
            title=f"{title}: each learning rate tuned on the plotted horizon",
        )

    def save(self, path) -> None:
        from ..viz import save

        save(self.figure(), path)

    def animate(self, path) -> None:
        from ..viz import animate_paths

        animate_paths(self.target, self.paths, path)


def _label(label: str, lr: float) -> str:
    return f"{label} lr={lr:.3g}"


def compare(
    target,
    specs=DEFAULT_SET,
    *,
    steps: int = 500,
    epochs: int = 20,
    batch_size: int | None = 32,
    learning_rate: float | None = None,
    start=None,
    seed: int = 0,
) -> Comparison:
    """Run the optimizers ``specs`` on ``target`` (a surface or a data problem), each with its
    learning rate tuned on a log grid over the same horizon (or ``learning_rate`` for all)."""
    specs = [resolve(s) for s in specs]
    if hasattr(target, "gradient"):
        return _compare_on_surface(target, specs, steps, learning_rate, start)
    return _compare_on_problem(target, specs, epochs, batch_size, learning_rate, seed)


def _compare_on_surface(surface, specs, steps, learning_rate, start) -> Comparison:
    from .sweep import sweep

    start = surface.default_start if start is None else np.asarray(start, float)
    f_min = surfaces.f_min(surface)
    out = Comparison(surface)
    grid = SURFACE_GRID if learning_rate is None else np.array([float(learning_rate)])
    for label, base, kwargs in specs:
        result = sweep(surface, base, steps=steps, starts=[start], learning_rate=grid, **kwargs)
        final = np.asarray(result.final_loss, float).reshape(len(grid))
        final = np.where(np.asarray(result.diverged).reshape(len(grid)), np.inf, final)
        k = int(np.argmin(final))
        lr = float(grid[k])
        path = np.asarray(result.paths).reshape(steps + 1, len(grid), 2)[:, k]
        name = _label(label, lr)
        out.paths[name] = path
        with np.errstate(all="ignore"):
            out.losses[name] = surface.value(path) - f_min
            out.grad_norms[name] = np.linalg.norm(surface.gradient(path), axis=-1)
        out.rows.append((label, lr, float(final[k] - f_min), steps))
    return out


def _compare_on_problem(problem, specs, epochs, batch_size, learning_rate, seed) -> Comparison:
    from .. import optimizers
    from .training import fit

    out = Comparison(problem, x_label="epoch")
    grid = PROBLEM_GRID if learning_rate is None else np.array([float(learning_rate)])
    for label, base, kwargs in specs:
        best = None
        for lr in grid:
            opt = optimizers.get(base, learning_rate=float(lr), **kwargs)
            with np.errstate(all="ignore"):
                try:
                    history = fit(problem, opt, epochs=epochs, batch_size=batch_size, seed=seed)
                except FloatingPointError:  # diverged: a NaN gradient was refused
                    continue
            final = float(history.loss_per_epoch[-1])
            if np.isfinite(final) and (best is None or final < best[1]):
                best = (float(lr), final, history)
        if best is None:
            out.rows.append((label, float("nan"), float("inf"), epochs))
            continue
        lr, final, history = best
        out.losses[_label(label, lr)] = np.asarray(history.loss_per_epoch)
        out.rows.append((label, lr, final, history.updates))
    return out


@dataclass
class Sensitivity:
    """Final loss against learning rate per optimizer (median and spread over seeds)."""

    surface: object
    learning_rates: np.ndarray
    median: dict
    low: dict
    high: dict
    steps: int

    def best(self) -> dict:
        """Optimizer -> (best learning rate, its median final loss)."""
        out = {}
        for label, curve in self.median.items():
            finite = np.where(np.isfinite(curve), curve, np.inf)
            k = int(np.argmin(finite))
            out[label] = (float(self.learning_rates[k]), float(finite[k]))
        return out

    def table(self) -> str:
        lines = [f"{'optimizer':28s} {'best lr':>10s} {'median final f - f_min':>24s}"]
        for label, (lr, final) in self.best().items():
            lines.append(f"{label:28s} {lr:10.3g} {final:24.6g}")
        return "\n".join(lines)

    def figure(self):
        from ..viz import lines_figure

        curves = {k: (self.learning_rates, v) for k, v in self.median.items()}
        bands = {k: (self.low[k], self.high[k]) for k in self.median}
        return lines_figure(
            curves,
            xlabel="learning rate",
            ylabel=f"f - f_min after {self.steps} steps (median over seeds)",
            title=f"Learning-rate sensitivity on {getattr(self.surface, 'title', '')}",
            log_x=True,
            log_y=True,
            bands=bands,
        )

    def save(self, path) -> None:
        from ..viz import save

        save(self.figure(), path)


def sensitivity(
    surface,
    specs=None,
    *,
    learning_rates=SURFACE_GRID,
    steps: int = 500,
    seeds=(0,),
    gradient_noise: float = 0.0,
    start=None,
) -> Sensitivity:
    """Final f - f_min against learning rate for each optimizer in ``specs``: one vectorized
    sweep per optimizer over every learning rate and seed (diverged runs count as +inf)."""
    from .sweep import sweep

    specs = [resolve(s) for s in (specs or DEFAULT_SET)]
    lrs = np.asarray(learning_rates, float)
    seeds = list(seeds)
    start = surface.default_start if start is None else np.asarray(start, float)
    f_min = surfaces.f_min(surface)
    median, low, high = {}, {}, {}
    for label, base, kwargs in specs:
        result = sweep(
            surface,
            base,
            steps=steps,
            starts=[start],
            learning_rate=lrs,
            seeds=seeds,
            gradient_noise=gradient_noise,
            keep_paths=False,
            **kwargs,
        )
        final = np.asarray(result.final_loss, float).reshape(len(lrs), len(seeds)) - f_min
        final = np.where(np.asarray(result.diverged).reshape(final.shape), np.inf, final)
        median[label] = np.median(final, axis=1)
        low[label] = np.min(final, axis=1)
        high[label] = np.max(final, axis=1)
    return Sensitivity(surface, lrs, median, low, high, steps)
