"""Optimizer paths on a surface: log-level contours with loss and gradient-norm curves beside
them (:func:`contour_with_paths`), and the surface in 3-D (:func:`surface_3d`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.patheffects as pe
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from . import _surface as S
from .style import as_mapping, colors_for, linestyles_for, new_figure, rc_context, safe_text

__all__ = ["contour_with_paths", "surface_3d"]


@dataclass
class _Series:
    steps: np.ndarray
    values: np.ndarray  # non-finite entries are NaN
    diverged_at: int | None  # index of the last finite value before a non-finite one


def _series(values) -> _Series:
    arr = np.asarray(values, dtype=float).reshape(-1)
    finite = np.isfinite(arr)
    bad = np.flatnonzero(~finite)
    diverged_at = None
    if bad.size and finite[: bad[0]].any():
        diverged_at = int(bad[0]) - 1
    return _Series(np.arange(arr.size), np.where(finite, arr, np.nan), diverged_at)


def _relative_losses(surface, paths, losses, f_min, given: bool | None) -> bool:
    """Whether the given losses already are f - f_min (else f itself).

    Detected, when not given, by comparing each run's first finite loss with f at the path's
    first point: equal to f(p_0) - f_min means the losses are already relative.
    """
    if given is not None:
        return bool(given)
    if f_min is None or f_min == 0.0:
        return False
    votes = []
    for label, loss in losses.items():
        if label not in paths:
            continue
        loss = np.asarray(loss, dtype=float).reshape(-1)
        start = np.asarray(paths[label], dtype=float)
        if loss.size == 0 or start.ndim != 2 or not np.isfinite(start[0]).all():
            continue
        with np.errstate(all="ignore"):
            f0 = float(surface.value(start[0]))
        if not (np.isfinite(loss[0]) and np.isfinite(f0)):
            continue
        tol = 1e-7 * (1.0 + abs(f0))
        if abs(loss[0] - (f0 - f_min)) <= tol < abs(loss[0] - f0):
            votes.append(True)
        elif abs(loss[0] - f0) <= tol:
            votes.append(False)
    return bool(votes) and all(votes)


def _cap(series: list[_Series]) -> float | None:
    """A bound for a log (or symmetric log) axis: three decades above the largest starting
    |value|, used only when some run goes beyond it (a diverging run would otherwise squash
    every other curve)."""
    starts, tops = [], []
    for s in series:
        finite = s.values[np.isfinite(s.values)]
        if finite.size:
            starts.append(abs(finite[0]))
            tops.append(np.abs(finite).max())
    if not starts or max(starts) <= 0:
        return None
    cap = 1e3 * max(starts)
    return cap if max(tops) > cap else None


def _plot_series(
    ax: Axes, series: _Series, color: str, *, scale: str, cap=None, linestyle="-"
) -> None:
    values = series.values
    if scale == "log":
        values = np.where(values > 0, values, np.nan)
    if cap is not None:
        values = np.clip(values, -cap, cap)
    ax.plot(series.steps, values, color=color, linewidth=1.4, linestyle=linestyle)
    if series.diverged_at is not None and np.isfinite(values[series.diverged_at]):
        ax.plot(
            [series.steps[series.diverged_at]],
            [values[series.diverged_at]],
            color=color,
            linestyle="none",
            clip_on=False,
            **S.DIVERGED_MARKER,
        )


def _plot_panel(ax: Axes, series: dict[str, _Series], colors, *, scale: str, styles=None) -> None:
    """Plot every series on ``ax`` with the y scale ``"log"``, ``"symlog"`` or ``"linear"``."""
    cap = _cap(list(series.values())) if scale != "linear" else None
    if scale == "symlog":
        starts = [abs(v[np.isfinite(v)][0]) for v in (s.values for s in series.values())
                  if np.isfinite(v).any()]  # fmt: skip
        linthresh = max(max(starts, default=1.0), 1e-12)
        ax.set_yscale("symlog", linthresh=linthresh)
    elif scale == "log":
        ax.set_yscale("log")
    for label, s in series.items():
        style = (styles or {}).get(label, "-")
        _plot_series(ax, s, colors[label], scale=scale, cap=cap, linestyle=style)
    if cap is not None:
        ax.set_ylim(-cap if scale == "symlog" else None, cap)
    if scale == "symlog":
        _symlog_ticks(ax, linthresh)
        ax.text(
            0.99,
            0.97,
            f"clipped at {'±' if scale == 'symlog' else ''}{cap:.0e}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7.5,
            color="0.3",
        )


def _draw_path(
    ax: Axes, clean: S.CleanPath, surface, color: str, *, dots: bool, linestyle="-"
) -> None:
    pts = clean.points
    if len(pts) == 0:
        return
    shown = S.plottable(pts, surface)
    ax.plot(
        shown[:, 0],
        shown[:, 1],
        color=color,
        linewidth=1.6,
        linestyle=linestyle,
        alpha=0.95,
        zorder=4,
        marker="." if dots else None,
        markersize=3.5,
    )
    ax.plot([pts[0, 0]], [pts[0, 1]], color=color, zorder=5, linestyle="none", **S.START_MARKER)
    end = clean.end
    if clean.diverged or clean.exit_index is not None:
        ax.plot(
            [end[0]],
            [end[1]],
            color=color,
            zorder=5,
            linestyle="none",
            clip_on=False,
            **S.DIVERGED_MARKER,
        )
    else:
        ax.plot([end[0]], [end[1]], color=color, zorder=5, linestyle="none", **S.END_MARKER)


def _end_marker(clean: S.CleanPath) -> dict:
    """The marker style of a path's end: an X if it diverged or left the plot, else a square."""
    return S.DIVERGED_MARKER if clean.status else S.END_MARKER


def _key_handles(any_diverged: bool) -> list[Line2D]:
    gray = "0.3"
    handles = [
        Line2D([], [], color=gray, linestyle="none", label="start", **S.START_MARKER),
        Line2D([], [], color=gray, linestyle="none", label="end", **S.END_MARKER),
    ]
    if any_diverged:
        handles.append(
            Line2D(
                [],
                [],
                color=gray,
                linestyle="none",
                label="diverged / left the plot",
                **S.DIVERGED_MARKER,
            )
        )
    return handles


def contour_with_paths(
    surface,
    paths: Mapping[str, np.ndarray],
    *,
    losses: Mapping[str, np.ndarray] | None = None,
    grad_norms: Mapping[str, np.ndarray] | None = None,
    title: str | None = None,
    levels: int = 30,
    losses_minus_f_min: bool | None = None,
    filled: bool = True,
    resolution: int = 200,
    loss_floor: float | None = None,
) -> Figure:
    """Several optimizers' paths on the surface's contours, with their loss and gradient norm.

    Left: filled contours of the surface over its domain (levels log-spaced over
    ``f - f_min`` when ``surface.log_levels``, with a colorbar), every path as a line from a
    circle (start) to a square (end), minima as stars (gold: global, white: local). A path is
    cut at its first NaN/inf point and ends in an X there ("diverged at step k"); one that
    ends outside the domain gets an X where it last crossed the border ("leaves the plot at
    step k"). Right, against the step: the loss ``f - f_min`` (log scale; ``f`` itself when
    f_min is unknown, on a symmetric log scale if it goes negative over decades) and the
    gradient norm ``|grad f|`` (log scale); when a diverging run goes beyond 1000 times the
    largest starting value, the axis is clipped there (and says so) so the other runs stay
    readable, and the run's last finite value is marked with an X.

    ``paths`` maps a label (it goes into the legend: put the hyperparameters in it, e.g.
    ``"Adam lr=0.01"``) to the points ``p_0 .. p_T`` (shape ``(T + 1, 2)``). ``losses`` and
    ``grad_norms`` map the same labels to per-step values; those not given are computed from the
    path with ``surface.value`` and ``surface.gradient``. Given losses may be f or already
    ``f - f_min``: ``losses_minus_f_min`` says which, and None detects it by comparing each first
    loss with f at the path's start. Colors are fixed per optimizer name (see
    :mod:`optimlab.viz.style`).

    ``loss_floor``: f - f_min below it (0 at the minimum, or a rounding error below it) is
    drawn at the floor, and the loss axis says so.

    Four axes, in ``fig.axes`` order: contours, loss, gradient norm, the contours' colorbar.
    """
    paths = as_mapping("paths", paths)
    losses = as_mapping("losses", losses)
    grad_norms = as_mapping("grad_norms", grad_norms)
    labels = list(dict.fromkeys([*paths, *losses, *grad_norms]))
    colors = colors_for(labels)
    styles = linestyles_for(labels)
    f_min = S.f_min_of(surface)
    cleaned = {label: S.clean_path(path, surface) for label, path in paths.items()}

    relative = _relative_losses(surface, paths, losses, f_min, losses_minus_f_min)
    loss_series: dict[str, _Series] = {}
    grad_series: dict[str, _Series] = {}
    with np.errstate(all="ignore"):
        for label in labels:
            clean = cleaned.get(label)
            if label in losses:
                loss = np.asarray(losses[label], dtype=float).reshape(-1)
                if f_min is not None and not relative:
                    loss = loss - f_min
            elif clean is not None:
                loss = _padded(surface.value(clean.points), clean) - (f_min or 0.0)
            else:
                loss = None
            if loss is not None:
                if loss_floor is not None:
                    loss = np.where(np.isfinite(loss), np.maximum(loss, loss_floor), loss)
                loss_series[label] = _series(loss)
            if label in grad_norms:
                grad_series[label] = _series(grad_norms[label])
            elif clean is not None:
                g = np.asarray(surface.gradient(clean.points), dtype=float).reshape(-1, 2)
                grad_series[label] = _series(_padded(np.linalg.norm(g, axis=-1), clean))

    with rc_context():
        fig = new_figure((12.5, 6.9))
        gs = fig.add_gridspec(2, 2, width_ratios=[1.5, 1.0])
        ax = fig.add_subplot(gs[:, 0])
        ax_loss = fig.add_subplot(gs[0, 1])
        ax_grad = fig.add_subplot(gs[1, 1], sharex=ax_loss)

        grid = S.sample(surface, resolution)
        lv = S.levels_of(grid, levels)
        mappable = S.draw_contours(ax, grid, lv, filled=filled)
        S.add_colorbar(fig, mappable, ax, lv, shrink=0.85, pad=0.02)
        minima_handles = S.draw_minima(ax, surface, zorder=3)
        S.set_domain(ax, surface)
        formula = S.formula_title(surface)
        ax.set_title(formula if formula else S.surface_title(surface), fontsize=9.5)

        handles = []
        for label, clean in cleaned.items():
            dots = clean.length <= 150
            _draw_path(ax, clean, surface, colors[label], dots=dots, linestyle=styles[label])
            text = safe_text(label) + (f" ({clean.status})" if clean.status else "")
            handles.append(
                Line2D(
                    [], [], color=colors[label], linestyle=styles[label], linewidth=2, label=text
                )  # fmt: skip
            )
        for label in labels:
            if label not in cleaned:
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=colors[label],
                        linestyle=styles[label],
                        linewidth=2,
                        label=safe_text(label),
                    )  # fmt: skip
                )
        any_bad = any(c.diverged or c.exit_index is not None for c in cleaned.values()) or any(
            s.diverged_at is not None for s in [*loss_series.values(), *grad_series.values()]
        )
        handles += _key_handles(any_bad) + minima_handles

        loss_values = [s.values for s in loss_series.values()]
        if _log_ok(loss_values, allow_nonpositive=f_min is not None):
            scale, note = "log", " (log scale)"
        elif _spans_decades(loss_values):
            scale, note = "symlog", " (symmetric log scale)"
        else:
            scale, note = "linear", ""
        _plot_panel(ax_loss, loss_series, colors, scale=scale, styles=styles)
        what = "f - f_min" if f_min is not None else "loss f(x, y)"
        if loss_floor is not None:
            floor = f"floor {loss_floor:.0e}"
            note = f"{note[:-1]}, {floor})" if note else f" ({floor})"
        ax_loss.set_ylabel(what + note)
        ax_loss.set_title("Loss above the minimum" if f_min is not None else "Loss (f_min unknown)")
        ax_loss.tick_params(labelbottom=False)

        _plot_panel(ax_grad, grad_series, colors, scale="log", styles=styles)
        ax_grad.set_ylabel("|grad f(x, y)| (log scale)")
        ax_grad.set_xlabel("step t")
        ax_grad.set_title("Gradient norm")
        for a in (ax_loss, ax_grad):
            a.grid(True, which="major")

        fig.suptitle(safe_text(title) if title else S.surface_title(surface))
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(4, max(1, len(handles))),
            frameon=False,
        )
    return fig


def _padded(values, clean: S.CleanPath) -> np.ndarray:
    """Per-point values of the finite prefix, padded with NaN to the path's full length."""
    out = np.full(clean.length, np.nan)
    values = np.asarray(values, dtype=float).reshape(-1)
    out[: values.size] = values
    return out


def _symlog_ticks(ax: Axes, linthresh: float) -> None:
    """Ticks at 0 and +-10^k outside the linear band (the default ones crowd around 0)."""
    low, high = ax.get_ylim()
    top = max(abs(low), abs(high), linthresh)
    first = int(np.ceil(np.log10(linthresh)))
    powers = list(range(first, int(np.floor(np.log10(top))) + 1))
    step = max(1, int(np.ceil(len(powers) / 5)))
    powers = powers[::step]
    ticks = [0.0] + [10.0**k for k in powers if 10.0**k <= high]
    ticks += [-(10.0**k) for k in powers if -(10.0**k) >= low]
    ax.yaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.yaxis.set_minor_locator(NullLocator())

    def _label(value, _pos):
        if value == 0:
            return "0"
        sign = "-" if value < 0 else ""
        return f"${sign}10^{{{int(round(np.log10(abs(value))))}}}$"

    ax.yaxis.set_major_formatter(FuncFormatter(_label))


def _spans_decades(series: list[np.ndarray], decades: float = 3.0) -> bool:
    """Whether the nonzero finite |values| span more than ``decades`` powers of ten."""
    if not series:
        return False
    values = np.abs(np.concatenate([np.asarray(s).reshape(-1) for s in series]))
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 0 and values.max() > 10**decades * values.min()


def _log_ok(series: list[np.ndarray], *, allow_nonpositive: bool) -> bool:
    """Whether a log axis shows these values: some are positive, and none is <= 0 unless
    such values are expected (f - f_min reaching 0 at machine precision)."""
    if not series:
        return True
    values = np.concatenate([np.asarray(s).reshape(-1) for s in series])
    values = values[np.isfinite(values)]
    if not (values > 0).any():
        return False
    return allow_nonpositive or bool((values > 0).all())


def surface_3d(
    surface,
    paths: Mapping[str, np.ndarray] | None = None,
    *,
    title: str | None = None,
    log_z: bool | None = None,
    elevation: float = 35.0,
    azimuth: float = -60.0,
    resolution: int = 90,
) -> Figure:
    """The surface in 3-D over its domain, with optimizer paths drawn on it.

    The height is ``f(x, y)``, or ``log10(f - f_min)`` when ``log_z`` (default:
    ``surface.log_levels``; floored at a small offset so the minimum stays finite). Paths are
    cut at their first non-finite point and at the border of the domain, and drawn slightly
    above the surface, always on top of it; start circles, end squares and minima stars as in
    :func:`contour_with_paths`. Two axes: the 3-D axes and the colorbar.
    """
    paths = as_mapping("paths", paths)
    colors = colors_for(paths)
    styles = linestyles_for(paths)
    grid = S.sample(surface, resolution, log=log_z)
    lv = S.levels_of(grid, 30)

    def _height(values):
        """The plotted height of f values: f, or log10(f - f_ref) floored."""
        values = np.asarray(values, dtype=float)
        if not grid.log:
            return values
        return np.log10(np.maximum(values - grid.f_ref, lv.floor))

    if grid.log:  # a floor at the 2nd percentile keeps a narrow valley from aliasing into spikes
        gaps = grid.z[np.isfinite(grid.z)] - grid.f_ref
        if (gaps > 0).any():
            lv.floor = max(lv.floor, float(np.percentile(gaps[gaps > 0], 2)))
    zfield = _height(grid.z)
    zlabel = f"log10({lv.label.removesuffix(' (log scale)')})" if grid.log else "f(x, y)"
    finite = zfield[np.isfinite(zfield)]
    zlo, zhi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    lift = 0.01 * (zhi - zlo if zhi > zlo else 1.0)

    with rc_context():
        fig = new_figure((9.0, 7.0))
        ax = fig.add_subplot(projection="3d", computed_zorder=False)
        xx, yy = np.meshgrid(grid.x, grid.y)
        surf = ax.plot_surface(
            xx,
            yy,
            np.where(np.isfinite(zfield), zfield, np.nan),
            cmap="viridis",
            rcount=resolution,
            ccount=resolution,
            linewidth=0,
            antialiased=False,
            alpha=0.8,
            zorder=1,
        )
        fig.colorbar(surf, ax=ax, shrink=0.6, pad=0.1, label=zlabel)
        outline = [pe.Stroke(linewidth=3.6, foreground="white"), pe.Normal()]
        handles = []
        with np.errstate(all="ignore"):
            for label, path in paths.items():
                clean = S.clean_path(path, surface)
                pts = clean.points
                if clean.exit_index is not None:
                    pts = pts[: clean.exit_index]
                pts = np.where(clean.inside[: len(pts), None], pts, np.nan)  # off the surface
                color = colors[label]
                text = safe_text(label) + (f" ({clean.status})" if clean.status else "")
                handles.append(
                    Line2D([], [], color=color, linestyle=styles[label], linewidth=2, label=text)
                )
                if not np.isfinite(pts).any():
                    continue
                z = _height(surface.value(pts)) + lift
                shown = np.flatnonzero(np.isfinite(z))
                ax.plot(
                    pts[:, 0],
                    pts[:, 1],
                    z,
                    color=color,
                    linewidth=1.8,
                    linestyle=styles[label],
                    zorder=5,
                    path_effects=outline,
                )
                first, last = shown[0], shown[-1]
                for i, marker in ((first, S.START_MARKER), (last, _end_marker(clean))):
                    ax.plot([pts[i, 0]], [pts[i, 1]], [z[i]], color=color, zorder=6,
                            linestyle="none", **marker)  # fmt: skip
            kinds = set()
            for minimum in getattr(surface, "minima", ()) or ():
                point = np.asarray(minimum.point, dtype=float)
                (x0, x1), (y0, y1) = S.domain_of(surface)
                if not (x0 <= point[0] <= x1 and y0 <= point[1] <= y1):
                    continue
                kind = "global" if str(getattr(minimum, "kind", "local")) == "global" else "local"
                kinds.add(kind)
                z = _height(surface.value(point)) + lift
                ax.scatter(
                    [point[0]], [point[1]], [z], zorder=7, depthshade=False, **S.MINIMUM_STYLE[kind]
                )
        if paths:
            handles += _key_handles(
                any("diverged" in h.get_label() or "leaves" in h.get_label() for h in handles)
            )
        handles += [S.minimum_handle(k) for k in ("global", "local") if k in kinds]
        x_label, y_label = S.axis_labels(surface)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_zlabel(zlabel)
        ax.view_init(elev=elevation, azim=azimuth)
        formula = S.formula_title(surface)
        ax.set_title(formula, fontsize=9.5)
        fig.suptitle(safe_text(title) if title else S.surface_title(surface))
        if handles:
            fig.legend(
                handles=handles,
                loc="outside lower center",
                ncols=min(4, len(handles)),
                frameon=False,
            )
    return fig
