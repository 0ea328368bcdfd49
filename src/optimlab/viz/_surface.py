"""Drawing a 2-D surface and paths on it: shared by contours, maps and animations.

A *surface* is duck-typed: ``name``, ``title``, ``formula``, ``value(xy)`` (``xy`` of shape
``(..., 2)``), ``gradient(xy)``, ``minima`` (objects with ``point``, ``value``, ``kind``),
``domain`` (``((xmin, xmax), (ymin, ymax))``), ``log_levels`` and ``global_minimum``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation, LogLocator

from .style import format_number, safe_text

#: the pale background colormap of contour plots: viridis blended 55% towards white, so that
#: the saturated optimizer colors stand out on it
_VIRIDIS_SAMPLES = (
    (0.267, 0.005, 0.329),
    (0.229, 0.322, 0.546),
    (0.128, 0.567, 0.551),
    (0.369, 0.789, 0.383),
    (0.993, 0.906, 0.144),
)
PALE = LinearSegmentedColormap.from_list(
    "optimlab_pale", [tuple(0.45 * c + 0.55 for c in rgb) for rgb in _VIRIDIS_SAMPLES]
)

MINIMUM_STYLE = {
    "global": dict(marker="*", s=260, facecolor="gold", edgecolor="black", linewidth=1.0),
    "local": dict(marker="*", s=170, facecolor="white", edgecolor="black", linewidth=1.0),
}
START_MARKER = dict(marker="o", markersize=7, markeredgecolor="white", markeredgewidth=1.0)
END_MARKER = dict(marker="s", markersize=6.5, markeredgecolor="white", markeredgewidth=1.0)
DIVERGED_MARKER = dict(marker="X", markersize=10, markeredgecolor="white", markeredgewidth=1.0)


def f_min_of(surface) -> float | None:
    """The value of the surface's global minimum, or None when it is not known."""
    minimum = getattr(surface, "global_minimum", None)
    if minimum is None:
        return None
    value = float(minimum.value)
    return value if np.isfinite(value) else None


def domain_of(surface) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((xmin, xmax), (ymin, ymax))`` as floats, checked."""
    (x0, x1), (y0, y1) = surface.domain
    x0, x1, y0, y1 = map(float, (x0, x1, y0, y1))
    if not (x0 < x1 and y0 < y1):
        raise ValueError(
            f"surface.domain must be ((xmin, xmax), (ymin, ymax)), got {surface.domain}"
        )
    return (x0, x1), (y0, y1)


def surface_title(surface) -> str:
    """The surface's title (or name)."""
    return safe_text(getattr(surface, "title", None) or getattr(surface, "name", "") or "")


@dataclass
class Grid:
    """The surface sampled on a regular grid of its domain."""

    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    z: np.ndarray  # (ny, nx), f(x, y); non-finite values replaced by NaN
    f_min: float | None  # the global minimum's value, if known
    log: bool  # whether levels are log-spaced over f - f_ref

    @property
    def f_ref(self) -> float:
        """The reference subtracted on log scales: f_min when known, else the grid's minimum."""
        if self.f_min is not None:
            return self.f_min
        finite = self.z[np.isfinite(self.z)]
        return float(finite.min()) if finite.size else 0.0


def sample(surface, n: int = 200, *, log: bool | None = None) -> Grid:
    """Evaluate ``surface.value`` on an ``n`` x ``n`` grid over its domain."""
    (x0, x1), (y0, y1) = domain_of(surface)
    x = np.linspace(x0, x1, n)
    y = np.linspace(y0, y1, n)
    xx, yy = np.meshgrid(x, y)
    with np.errstate(all="ignore"):
        z = np.asarray(surface.value(np.stack([xx, yy], axis=-1)), dtype=float)
    z = np.where(np.isfinite(z), z, np.nan)
    if log is None:
        log = bool(getattr(surface, "log_levels", False))
    return Grid(x, y, z, f_min_of(surface), log)


@dataclass
class Levels:
    """What to contour: the plotted field, its levels, its norm, and the colorbar label."""

    field: np.ndarray
    levels: np.ndarray
    norm: Normalize
    label: str
    floor: float  # on log scales, the smallest level (values below are drawn at it)


def levels_of(grid: Grid, n: int = 30) -> Levels:
    """Contour levels: log-spaced over ``f - f_min`` (floored at a small offset) when
    ``grid.log``, else evenly spaced over f; non-finite cells are left blank."""
    n = max(int(n), 2)
    if grid.log:
        gap = np.clip(grid.z - grid.f_ref, 0.0, None)
        positive = gap[np.isfinite(gap) & (gap > 0)]
        if positive.size == 0:
            positive = np.array([1.0])
        top = float(positive.max())
        floor = max(float(positive.min()), top * 1e-9, 1e-300)
        if floor >= top:
            top = floor * 10.0
        field = np.where(np.isfinite(gap), np.maximum(gap, floor), np.nan)
        levels = np.geomspace(floor, top, n)
        what = "f - f_min" if grid.f_min is not None else "f - min f on the grid"
        return Levels(field, levels, LogNorm(floor, top), f"{what} (log scale)", floor)
    finite = grid.z[np.isfinite(grid.z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    levels = np.linspace(lo, hi, n)
    return Levels(grid.z, levels, Normalize(lo, hi), "f(x, y)", lo)


def draw_contours(ax: Axes, grid: Grid, levels: Levels, *, filled: bool = True):
    """Filled contours (pale colormap) with thin gray lines on top; returns the filled set."""
    kwargs = dict(levels=levels.levels, norm=levels.norm, cmap=PALE)
    mappable = None
    if filled:
        mappable = ax.contourf(grid.x, grid.y, levels.field, **kwargs)
    lines = ax.contour(
        grid.x,
        grid.y,
        levels.field,
        levels=levels.levels,
        colors="0.35",
        linewidths=0.45,
        alpha=0.55,
    )
    return mappable if mappable is not None else lines


def add_colorbar(fig, mappable, ax, levels: Levels, **kwargs):
    """A colorbar for contours; on log levels with ticks at powers of ten (not at the levels)."""
    cbar = fig.colorbar(mappable, ax=ax, label=levels.label, **kwargs)
    if isinstance(levels.norm, LogNorm):
        cbar.locator = LogLocator()
        cbar.formatter = LogFormatterSciNotation()
        cbar.update_ticks()
    return cbar


def set_domain(ax: Axes, surface) -> None:
    """Limit ``ax`` to the surface's domain; equal aspect unless the domain is very elongated."""
    (x0, x1), (y0, y1) = domain_of(surface)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ratio = (y1 - y0) / (x1 - x0)
    if 0.4 <= ratio <= 2.5:
        ax.set_aspect("equal", adjustable="box")
    x_label, y_label = axis_labels(surface)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)


def axis_labels(surface) -> tuple[str, str]:
    """The names of the two coordinates: ``surface.axis_labels`` if it has them (e.g. ("w",
    "b") for a loss over a model's weight and bias), else x and y."""
    return tuple(getattr(surface, "axis_labels", ("x (first parameter)", "y (second parameter)")))


def minimum_label(minimum) -> str:
    """``"global minimum (1, 1), f = 0"``."""
    x, y = (float(v) for v in minimum.point)
    kind = "global" if str(getattr(minimum, "kind", "local")) == "global" else "local"
    return (
        f"{kind} minimum ({format_number(x)}, {format_number(y)}), "
        f"f = {format_number(float(minimum.value))}"
    )


def draw_minima(ax: Axes, surface, *, zorder: float = 6) -> list:
    """Stars at every minimum of the surface inside its domain: gold for global, white for
    local. Returns legend handles (one per kind present)."""
    (x0, x1), (y0, y1) = domain_of(surface)
    handles = {}
    for minimum in getattr(surface, "minima", ()) or ():
        x, y = (float(v) for v in minimum.point)
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            continue
        kind = "global" if str(getattr(minimum, "kind", "local")) == "global" else "local"
        ax.scatter([x], [y], zorder=zorder, **MINIMUM_STYLE[kind])
        if kind not in handles:
            handles[kind] = minimum_handle(kind)
    return [handles[k] for k in ("global", "local") if k in handles]


def minimum_handle(kind: str) -> Line2D:
    """A legend entry for a global or local minimum star."""
    style = MINIMUM_STYLE[kind]
    return Line2D(
        [],
        [],
        linestyle="none",
        marker="*",
        markersize=14 if kind == "global" else 11,
        markerfacecolor=style["facecolor"],
        markeredgecolor="black",
        label=f"{kind} minimum",
    )


@dataclass
class CleanPath:
    """A path cut at its first non-finite point, with where it ended and why."""

    points: np.ndarray  # (k, 2) finite points, k >= 0
    length: int  # the number of points given (T + 1)
    diverged: bool  # a non-finite point followed the finite prefix
    exit_index: int | None  # where the final stretch outside the domain begins, if it ends outside
    exit_point: np.ndarray | None  # where the segment into it crosses the domain boundary
    inside: np.ndarray  # (k,) bool, which finite points lie in the domain

    @property
    def end(self) -> np.ndarray | None:
        """The last point worth marking: the boundary crossing if the path leaves the plotted
        domain, else its last finite point."""
        if self.exit_point is not None:
            return self.exit_point
        return self.points[-1] if len(self.points) else None

    @property
    def status(self) -> str:
        """``""``, ``"diverged"`` or ``"leaves the plot"`` (for legends)."""
        if self.diverged:
            return f"diverged at step {len(self.points)}"
        if self.exit_index is not None:
            return f"leaves the plot at step {self.exit_index}"
        return ""


def clean_path(path, surface) -> CleanPath:
    """Validate a path ``(T + 1, 2)`` and cut it at its first NaN/inf point."""
    arr = np.asarray(path, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"a path must have shape (T, 2), got {arr.shape}")
    finite = np.isfinite(arr).all(axis=1)
    bad = np.flatnonzero(~finite)
    stop = int(bad[0]) if bad.size else len(arr)
    points = arr[:stop]
    (x0, x1), (y0, y1) = domain_of(surface)
    pad_x, pad_y = 1e-9 * (x1 - x0), 1e-9 * (y1 - y0)
    inside = (
        (points[:, 0] >= x0 - pad_x)
        & (points[:, 0] <= x1 + pad_x)
        & (points[:, 1] >= y0 - pad_y)
        & (points[:, 1] <= y1 + pad_y)
    )
    exit_index = None  # the start of the final stretch outside the domain, if it ends outside
    if len(points) and not inside[-1]:
        back_inside = np.flatnonzero(inside)
        exit_index = int(back_inside[-1]) + 1 if back_inside.size else 0
    exit_point = None
    if exit_index is not None:
        exit_point = _crossing(points, exit_index, (x0, x1, y0, y1))
    return CleanPath(points, len(arr), bool(bad.size), exit_index, exit_point, inside)


def _crossing(points: np.ndarray, k: int, box) -> np.ndarray:
    """Where the segment from points[k-1] (inside) to points[k] (outside) leaves ``box``."""
    x0, x1, y0, y1 = box
    b = points[k]
    if k == 0:
        return np.array([np.clip(b[0], x0, x1), np.clip(b[1], y0, y1)])
    a = points[k - 1]
    d = b - a
    t = 1.0
    for lo, hi, i in ((x0, x1, 0), (y0, y1, 1)):
        if d[i] > 0 and b[i] > hi:
            t = min(t, (hi - a[i]) / d[i])
        elif d[i] < 0 and b[i] < lo:
            t = min(t, (lo - a[i]) / d[i])
    p = a + max(t, 0.0) * d
    return np.array([np.clip(p[0], x0, x1), np.clip(p[1], y0, y1)])


def plottable(points: np.ndarray, surface, margin: float = 0.5) -> np.ndarray:
    """Points clipped to the domain enlarged by ``margin`` of its size on each side, so a path
    that runs off to 1e6 is drawn as a line to just outside the axes (the axes clip it)."""
    (x0, x1), (y0, y1) = domain_of(surface)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    out = points.copy()
    out[:, 0] = np.clip(out[:, 0], x0 - mx, x1 + mx)
    out[:, 1] = np.clip(out[:, 1], y0 - my, y1 + my)
    return out


def formula_title(surface) -> str:
    """``"f(x, y) = <formula>"`` when the surface has a formula, else ``""``."""
    formula = getattr(surface, "formula", None)
    if not formula:
        return ""
    text = safe_text(formula)
    return text if text.lstrip().startswith("f") else f"f(x, y) = {text}"
