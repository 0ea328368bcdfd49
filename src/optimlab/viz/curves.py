"""Curves against time or a hyperparameter: generic lines with spread bands
(:func:`lines_figure`), learning-rate schedules (:func:`schedules_figure`) and the EWMA of a
noisy series with its weight kernel (:func:`ewma_figure`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..ewma import effective_window, ewma, ewma_weights
from .style import (
    as_mapping,
    colors_for,
    format_number,
    linestyles_for,
    new_figure,
    rc_context,
    safe_text,
    sequential_colors,
)

__all__ = ["lines_figure", "schedules_figure", "ewma_figure"]


def _log_suffix(label: str, log: bool) -> str:
    return f"{label} (log scale)" if log and "log" not in label else label


def lines_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    log_x: bool = False,
    log_y: bool = True,
    bands: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Figure:
    """One curve per label, e.g. loss against step, effective learning rate over time, or
    final loss against learning rate (median line with a spread band).

    ``curves`` maps a label (shown in the legend, colored by optimizer name) to ``(x, y)``;
    ``bands`` maps some of the same labels to ``(low, high)`` arrays over the same x, drawn as
    a translucent band (e.g. min-max or quartiles over seeds). On a log axis, values <= 0 and
    NaN/inf are left out (the line breaks there); a curve that ends in NaN/inf is marked with
    an X at its last finite point and flagged "(diverged)" in the legend. One axes.
    """
    curves = as_mapping("curves", curves)
    bands = as_mapping("bands", bands)
    unknown = [k for k in bands if k not in curves]
    if unknown:
        raise ValueError(f"bands has labels that are not in curves: {unknown}")
    colors = colors_for(curves)
    styles = linestyles_for(curves)
    with rc_context():
        fig = new_figure((8.0, 5.0))
        ax = fig.add_subplot()
        if log_x:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        for label, pair in curves.items():
            try:
                x, y = pair
            except (TypeError, ValueError):
                raise ValueError(f"curves[{label!r}] must be a pair (x, y)") from None
            x = np.asarray(x, dtype=float).reshape(-1)
            y = np.asarray(y, dtype=float).reshape(-1)
            if x.shape != y.shape:
                raise ValueError(f"curves[{label!r}]: x has {x.size} values but y has {y.size}")
            keep = _visible(x, log_x) & _visible(y, log_y)
            color = colors[label]
            (line,) = ax.plot(
                np.where(keep, x, np.nan),
                np.where(keep, y, np.nan),
                color=color,
                linestyle=styles[label],
                marker="o" if x.size <= 40 else None,
                markersize=3.5,
            )
            text = safe_text(label)
            finite = np.isfinite(y)
            if finite.any() and not finite[-1]:
                last = int(np.flatnonzero(finite)[-1])
                if keep[last]:
                    ax.plot(
                        [x[last]],
                        [y[last]],
                        color=color,
                        linestyle="none",
                        marker="X",
                        markersize=9,
                        markeredgecolor="white",
                    )
                text += " (diverged)"
            line.set_label(text)
            if label in bands:
                low, high = (np.asarray(b, dtype=float).reshape(-1) for b in bands[label])
                if low.shape != x.shape or high.shape != x.shape:
                    raise ValueError(
                        f"bands[{label!r}] must be (low, high) arrays of {x.size} values each"
                    )
                ok = keep & _visible(low, log_y) & _visible(high, log_y)
                ax.fill_between(x, low, high, where=ok, color=color, alpha=0.18, linewidth=0)
        ax.set_xlabel(_log_suffix(safe_text(xlabel), log_x))
        ax.set_ylabel(_log_suffix(safe_text(ylabel), log_y))
        ax.grid(True, which="major")
        if title:
            ax.set_title(safe_text(title))
        if curves:
            legend = ax.legend(loc="best", frameon=True, framealpha=0.85)
            if bands:
                legend.set_title("shaded: spread", prop={"size": 8})
    return fig


def _visible(values: np.ndarray, log: bool) -> np.ndarray:
    ok = np.isfinite(values)
    return ok & (values > 0) if log else ok


def schedules_figure(
    schedules: Mapping[str, Callable[[int], float]],
    steps: int,
    *,
    log_y: bool = False,
    title: str | None = None,
) -> Figure:
    """Learning-rate schedules ``step -> lr``, evaluated at every step ``0 .. steps`` and drawn
    as the piecewise-constant values the optimizer uses (one value per step).

    Any callable taking an integer step works (e.g. :mod:`optimlab.schedules` objects). One
    axes; ``log_y`` for schedules spanning decades (exponential decay).
    """
    schedules = as_mapping("schedules", schedules)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    t = np.arange(int(steps) + 1)
    colors = colors_for(schedules)
    styles = linestyles_for(schedules)
    with rc_context():
        fig = new_figure((8.0, 4.8))
        ax = fig.add_subplot()
        for label, schedule in schedules.items():
            if not callable(schedule):
                raise TypeError(f"schedules[{label!r}] must be callable step -> lr")
            lr = np.array([float(schedule(int(k))) for k in t])
            keep = _visible(lr, log_y)
            ends = f"{format_number(lr[0])} -> {format_number(lr[-1])}"
            ax.plot(
                t,
                np.where(keep, lr, np.nan),
                drawstyle="steps-post",
                color=colors[label],
                linestyle=styles[label],
                label=f"{safe_text(label)} ({ends})",
            )
        if log_y:
            ax.set_yscale("log")
        ax.set_xlim(0, int(steps))
        ax.set_xlabel("step t (optimizer updates)")
        ax.set_ylabel(_log_suffix("learning rate η_t", log_y))
        ax.set_title(safe_text(title) if title else f"Learning-rate schedules over {steps} steps")
        ax.grid(True, which="major")
        if schedules:
            ax.legend(loc="best", framealpha=0.85)
    return fig


def ewma_figure(
    series: Sequence[float] | np.ndarray,
    betas: Sequence[float],
    *,
    bias_correction: bool | str = "both",
    title: str | None = None,
) -> Figure:
    """A noisy series and its exponentially weighted moving average for several betas.

    Left: the values theta_t as gray points and, per beta, the EWMA
    ``V_t = beta V_{t-1} + (1 - beta) theta_t`` from ``V_0 = 0`` (:func:`optimlab.ewma`):
    with ``bias_correction="both"`` the raw average (dashed, starts near 0) and the
    bias-corrected ``V_t / (1 - beta^t)`` (solid); ``True`` or ``False`` draws only one.
    Right: the weight of the value k steps back in V_t for large t, ``(1 - beta) beta^k`` (log
    scale), with the effective window ``1 / (1 - beta)`` marked. Two axes.
    """
    values = np.asarray(series, dtype=float).reshape(-1)
    if values.size == 0:
        raise ValueError("series must hold at least one value")
    betas = [float(b) for b in np.atleast_1d(np.asarray(betas, dtype=float))]
    if not betas:
        raise ValueError("betas must hold at least one beta in [0, 1)")
    if bias_correction not in (True, False, "both"):
        raise ValueError(f"bias_correction must be True, False or 'both', got {bias_correction!r}")
    variants = {"both": (False, True), True: (True,), False: (False,)}[bias_correction]
    t = np.arange(1, values.size + 1)
    colors = sequential_colors(len(betas))
    with rc_context():
        fig = new_figure((12.0, 5.0))
        gs = fig.add_gridspec(1, 2, width_ratios=[1.6, 1.0])
        ax = fig.add_subplot(gs[0, 0])
        ax_w = fig.add_subplot(gs[0, 1])
        ax.plot(
            t,
            values,
            linestyle="none",
            marker="o",
            markersize=3.2,
            color="0.55",
            alpha=0.8,
            label="values θ_t",
        )
        for beta, color in zip(betas, colors, strict=True):
            for corrected in variants:
                avg = ewma(values, beta, bias_correction=corrected)
                style = "-" if corrected else "--"
                kind = "bias-corrected V_t / (1 - β^t)" if corrected else "raw V_t (V_0 = 0)"
                ax.plot(
                    t,
                    avg,
                    linestyle=style,
                    color=color,
                    linewidth=1.8,
                    label=f"β = {beta:g}, {kind}",
                )
        ax.set_xlabel("t (index of the value)")
        ax.set_ylabel("value")
        ax.set_title("The series and its moving averages")
        ax.grid(True)
        handles, labels = ax.get_legend_handles_labels()
        if len(variants) == 2:  # one column per beta: raw above corrected
            handles.insert(1, Line2D([], [], linestyle="none"))
            labels.insert(1, "")
        fig.legend(handles, labels, loc="outside lower center", ncols=len(betas) + 1, frameon=False)

        horizon = max(values.size, int(np.ceil(3 * effective_window(max(betas)))), 2)
        k = np.arange(horizon)
        floor, top = None, 0.0
        for beta, color in zip(betas, colors, strict=True):
            weights = ewma_weights(horizon, beta)[::-1]  # weight of the value k steps back
            window = effective_window(beta)
            shown = np.where(weights > 0, weights, np.nan)
            ax_w.plot(
                k,
                shown,
                color=color,
                linewidth=1.8,
                label=f"β = {beta:g}: window 1/(1 - β) = {window:.3g}",
            )
            if window < horizon:
                ax_w.axvline(window, color=color, linestyle=":", linewidth=1.4)
            positive = weights[weights > 0]
            if positive.size:
                low = max(positive.min(), positive.max() * 1e-6)
                floor = low if floor is None else min(floor, low)
                top = max(top, float(positive.max()))
        ax_w.set_yscale("log")
        if floor is not None:
            ax_w.set_ylim(floor, top * 1.6)
        ax_w.set_xlim(0, horizon - 1)
        ax_w.set_xlabel("k (steps back from the newest value)")
        ax_w.set_ylabel("weight (1 - β) β^k (log scale)")
        ax_w.set_title("Weight of the value k steps back")
        ax_w.grid(True, which="major")
        handles, labels = ax_w.get_legend_handles_labels()
        handles.append(
            Line2D([], [], color="0.3", linestyle=":", label="effective window 1/(1 - β)")
        )
        ax_w.legend(handles=handles, loc="upper right", framealpha=0.85, fontsize=7.8)
        fig.suptitle(safe_text(title) if title else "Exponentially weighted moving average")
    return fig
