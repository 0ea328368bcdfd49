"""Maps over a grid: which minimum each start reaches (:func:`basin_map`) and a value over two
hyperparameters, e.g. final loss over (learning rate, beta) (:func:`heatmap`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from . import _surface as S
from .style import format_number, new_figure, rc_context, safe_text

__all__ = ["basin_map", "heatmap", "BASIN_COLORS", "NONE_COLOR", "DIVERGED_COLOR"]

#: one color per minimum (Tol "light", pale enough for the stars and contours on top)
BASIN_COLORS: tuple[str, ...] = (
    "#77AADD",
    "#EE8866",
    "#EEDD88",
    "#99DDFF",
    "#FFAABB",
    "#44BB99",
    "#BBCC33",
    "#AAAA00",
    "#CCBBEE",
    "#88CCAA",
)
#: basin index -1: converged nowhere (or diverged)
NONE_COLOR = "#444444"
#: heatmap cells whose value is NaN/inf (the run diverged)
DIVERGED_COLOR = "#D9D9D9"

_MAX_LEGEND_BASINS = 12


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted centers: midpoints (geometric on a log axis), extended by half a
    cell at both ends."""
    v = np.log10(values) if log else values
    if v.size == 1:
        e = np.array([v[0] - 0.5, v[0] + 0.5])
    else:
        mid = (v[1:] + v[:-1]) / 2
        e = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
    return 10.0**e if log else e


def _even(values: np.ndarray, log: bool) -> bool:
    """Whether the centers are evenly spaced (on a log scale when ``log``)."""
    if values.size < 3:
        return True
    v = np.log10(values) if log else values
    d = np.diff(v)
    return bool(np.allclose(d, d[0], rtol=0.05, atol=0))


def _axis_values(name: str, values, n: int, log: bool) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} values but the grid has {n} along that axis")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    if arr.size > 1 and not (np.all(np.diff(arr) > 0) or np.all(np.diff(arr) < 0)):
        raise ValueError(f"{name} must be strictly increasing or decreasing")
    if log and (arr <= 0).any():
        raise ValueError(f"{name} must be positive on a log axis (log_x/log_y=True)")
    return arr


def basin_map(
    surface,
    xs: Sequence[float] | np.ndarray,
    ys: Sequence[float] | np.ndarray,
    basin_index: np.ndarray,
    *,
    title: str | None = None,
) -> Figure:
    """Which minimum each starting point converges to: a basin-of-attraction map.

    ``basin_index[i, j]`` (shape ``(len(ys), len(xs))``) is the index in ``surface.minima`` of
    the minimum reached from the start ``(xs[j], ys[i])``, or -1 (any negative value) when the
    run reached none or diverged. Each basin gets its own color (dark gray: none/diverged), the
    minima are stars (gold: global, white: local) on thin contour lines of the surface, and the
    legend names every basin present with its share of the starts. One axes.
    """
    minima = tuple(getattr(surface, "minima", ()) or ())
    idx = np.asarray(basin_index)
    if idx.ndim != 2:
        raise ValueError(f"basin_index must be a 2-D array (ny, nx), got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        if idx.dtype.kind == "f" and np.all(np.isfinite(idx)) and np.all(idx == np.round(idx)):
            idx = idx.astype(np.int64)
        else:
            raise TypeError(f"basin_index must hold integers, got dtype {idx.dtype}")
    ny, nx = idx.shape
    xs = _axis_values("xs", xs, nx, False)
    ys = _axis_values("ys", ys, ny, False)
    if (idx >= len(minima)).any():
        raise ValueError(
            f"basin_index has values up to {int(idx.max())}, but the surface has "
            f"{len(minima)} minima (valid: -1 .. {len(minima) - 1})"
        )
    idx = np.where(idx < 0, -1, idx)
    colors = [NONE_COLOR] + [BASIN_COLORS[i % len(BASIN_COLORS)] for i in range(len(minima))]
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(-1.5, len(minima) + 0.5), cmap.N)

    with rc_context():
        fig = new_figure((8.6, 6.4))
        ax = fig.add_subplot()
        ax.pcolormesh(
            _edges(xs, False),
            _edges(ys, False),
            idx,
            cmap=cmap,
            norm=norm,
            shading="flat",
            rasterized=True,
        )
        grid = S.sample(surface, 160)
        lv = S.levels_of(grid, 15)
        ax.contour(
            grid.x,
            grid.y,
            lv.field,
            levels=lv.levels,
            norm=lv.norm,
            colors="0.15",
            linewidths=0.45,
            alpha=0.45,
        )
        star_handles = S.draw_minima(ax, surface, zorder=4)
        ax.set_xlim(
            min(xs[0], xs[-1]) - abs(xs[1] - xs[0]) / 2 if nx > 1 else xs[0] - 0.5,
            max(xs[0], xs[-1]) + abs(xs[1] - xs[0]) / 2 if nx > 1 else xs[0] + 0.5,
        )
        ax.set_ylim(
            min(ys[0], ys[-1]) - abs(ys[1] - ys[0]) / 2 if ny > 1 else ys[0] - 0.5,
            max(ys[0], ys[-1]) + abs(ys[1] - ys[0]) / 2 if ny > 1 else ys[0] + 0.5,
        )
        ratio = (ax.get_ylim()[1] - ax.get_ylim()[0]) / (ax.get_xlim()[1] - ax.get_xlim()[0])
        if 0.4 <= ratio <= 2.5:
            ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x of the starting point")
        ax.set_ylabel("y of the starting point")

        total = idx.size
        handles = []
        present = [i for i in range(len(minima)) if (idx == i).any()]
        for i in present[:_MAX_LEGEND_BASINS]:
            share = np.count_nonzero(idx == i) / total
            handles.append(
                Patch(
                    facecolor=colors[i + 1],
                    edgecolor="0.3",
                    label=f"#{i}: {S.minimum_label(minima[i])} ({share:.0%})",
                )
            )
        if len(present) > _MAX_LEGEND_BASINS:
            rest = np.isin(idx, present[_MAX_LEGEND_BASINS:]).sum() / total
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="0.3",
                    label=f"{len(present) - _MAX_LEGEND_BASINS} more minima ({rest:.0%})",
                )
            )
        none_share = np.count_nonzero(idx < 0) / total
        handles.append(
            Patch(
                facecolor=NONE_COLOR,
                edgecolor="0.3",
                label=f"no minimum reached / diverged ({none_share:.0%})",
            )
        )
        handles += star_handles
        fig.legend(
            handles=handles,
            loc="outside right center",
            frameon=False,
            title="basin: start converges to",
            title_fontsize=8.5,
        )
        ax.set_title(
            safe_text(title) if title else f"Basins of attraction on {S.surface_title(surface)}"
        )
    return fig


def heatmap(
    values: np.ndarray,
    x_values: Sequence[float] | np.ndarray,
    y_values: Sequence[float] | np.ndarray,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    log_x: bool = True,
    log_y: bool = False,
    log_values: bool = True,
    cbar_label: str = "value",
    mark_min: bool = True,
    annotate: bool | None = None,
) -> Figure:
    """A value over a grid of two hyperparameters, e.g. final loss over (learning rate, beta).

    ``values[i, j]`` (shape ``(len(y_values), len(x_values))``) is drawn in the cell at
    ``(x_values[j], y_values[i])``; the x axis is logarithmic when ``log_x`` (learning rates),
    the y axis when ``log_y``. When the y values are unevenly spaced (betas 0, 0.9, 0.99, ...)
    every row gets the same height and is labeled with its value. NaN/inf cells (diverged runs)
    are light gray with a cross hatch, named in the legend. The color scale is logarithmic when
    ``log_values`` (values <= 0 are drawn at the smallest positive one). ``mark_min`` outlines
    the cell of the smallest finite value; ``annotate`` writes each value in its cell (default:
    when the grid has at most 64 cells). Two axes: the map and its colorbar.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be a 2-D array (ny, nx), got shape {v.shape}")
    ny, nx = v.shape
    xv = _axis_values("x_values", x_values, nx, log_x)
    yv = _axis_values("y_values", y_values, ny, log_y)
    bad = ~np.isfinite(v)
    finite = v[~bad]
    if log_values:
        positive = finite[finite > 0]
        lo = float(positive.min()) if positive.size else 1.0
        hi = float(positive.max()) if positive.size else 10.0
        if hi <= lo:
            hi = lo * 10.0
        norm: Normalize = LogNorm(lo, hi)
        shown = np.where(bad, np.nan, np.maximum(np.where(bad, lo, v), lo))
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        if hi <= lo:
            hi = lo + 1.0
        norm = Normalize(lo, hi)
        shown = np.where(bad, np.nan, v)
    categorical_y = not _even(yv, log_y)
    x_edges = _edges(xv, log_x)
    if categorical_y:
        y_centers = np.arange(ny, dtype=float)
        y_edges = np.arange(ny + 1, dtype=float) - 0.5
    else:
        y_centers, y_edges = yv, _edges(yv, log_y)
    if annotate is None:
        annotate = nx * ny <= 64

    cmap = mpl.colormaps["viridis"].with_extremes(bad=DIVERGED_COLOR)
    with rc_context():
        fig = new_figure((8.0, 5.6))
        ax = fig.add_subplot()
        if log_x:
            ax.set_xscale("log")
        if log_y and not categorical_y:
            ax.set_yscale("log")
        mesh = ax.pcolormesh(
            x_edges, y_edges, np.ma.masked_invalid(shown), cmap=cmap, norm=norm, shading="flat"
        )
        cbar = fig.colorbar(mesh, ax=ax, pad=0.02)
        cbar.set_label(
            safe_text(cbar_label)
            + (" (log scale)" if log_values and "log" not in cbar_label else "")
        )
        handles = []
        if bad.any():
            rects = [
                Rectangle(
                    (x_edges[j], y_edges[i]),
                    x_edges[j + 1] - x_edges[j],
                    y_edges[i + 1] - y_edges[i],
                )
                for i, j in zip(*np.nonzero(bad), strict=True)
            ]
            hatch = PatchCollection(
                rects,
                facecolor=DIVERGED_COLOR,
                edgecolor="0.45",
                hatch="xx",
                linewidth=0.0,
                zorder=2,
            )
            hatch.set_gid("diverged")
            ax.add_collection(hatch, autolim=False)
            handles.append(
                Patch(
                    facecolor=DIVERGED_COLOR,
                    edgecolor="0.45",
                    hatch="xx",
                    label=f"diverged (NaN/inf): {int(bad.sum())} of {bad.size}",
                )
            )
        if mark_min and finite.size:
            flat = np.where(bad, np.inf, v)
            i, j = np.unravel_index(int(np.argmin(flat)), v.shape)
            corner = (x_edges[j], y_edges[i])
            width, height = x_edges[j + 1] - x_edges[j], y_edges[i + 1] - y_edges[i]
            for color, lw in (("white", 4.0), ("black", 1.8)):
                ax.add_patch(
                    Rectangle(
                        corner,
                        width,
                        height,
                        facecolor="none",
                        edgecolor=color,
                        linewidth=lw,
                        zorder=4,
                        gid="minimum",
                    )
                )
            handles.append(
                Patch(
                    facecolor="none",
                    edgecolor="black",
                    linewidth=1.8,
                    label=f"minimum {format_number(float(v[i, j]))} at "
                    f"{safe_text(xlabel)} = {format_number(float(xv[j]))}, "
                    f"{safe_text(ylabel)} = {format_number(float(yv[i]))}",
                )
            )
        if annotate:
            for i in range(ny):
                for j in range(nx):
                    if bad[i, j]:
                        text, color = "div.", "0.2"
                    else:
                        text = format_number(float(v[i, j]))
                        rgba = cmap(norm(shown[i, j]))
                        light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.5
                        color = "black" if light else "white"
                    ax.text(
                        xv[j],
                        y_centers[i],
                        text,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=color,
                        zorder=3,
                    )
        ax.set_xlim(min(x_edges[0], x_edges[-1]), max(x_edges[0], x_edges[-1]))
        if categorical_y:
            ax.set_yticks(y_centers, [format_number(float(y)) for y in yv])
            ax.set_ylim(y_edges[0], y_edges[-1])
        ax.set_xlabel(safe_text(xlabel) + (" (log scale)" if log_x and "log" not in xlabel else ""))
        ax.set_ylabel(
            safe_text(ylabel)
            + (" (log scale)" if log_y and not categorical_y and "log" not in ylabel else "")
        )
        if title:
            ax.set_title(safe_text(title))
        if handles:
            fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=1)
    return fig
