"""Figures of optimlab.viz: structure (axes, labels, legends, scales), robustness to diverged
runs, and byte-deterministic output."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import pytest
from matplotlib.figure import Figure

from optimlab.viz import animation as viz_animation
from optimlab.viz.animation import animate_paths
from optimlab.viz.contours import contour_with_paths, surface_3d
from optimlab.viz.curves import ewma_figure, lines_figure, schedules_figure
from optimlab.viz.export import save
from optimlab.viz.maps import basin_map, heatmap
from optimlab.viz.style import (
    OPTIMIZER_COLORS,
    base_name,
    color_for,
    colors_for,
    linestyles_for,
)

# --------------------------------------------------------------------------------------------
# a stand-in for optimlab.lab.surfaces (duck type)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Minimum:
    point: tuple[float, float]
    value: float
    kind: str


class Rosenbrock:
    """(1 - x)^2 + 100 (y - x^2)^2 + offset, minimum at (1, 1)."""

    name = "rosenbrock"
    title = "Rosenbrock"
    formula = "$(1-x)^2 + 100(y-x^2)^2$"
    domain = ((-2.0, 2.0), (-1.0, 3.0))
    log_levels = True

    def __init__(self, offset: float = 0.0):
        self.offset = offset
        self.minima = (Minimum((1.0, 1.0), offset, "global"),)
        self.global_minimum = self.minima[0]

    def value(self, xy):
        xy = np.asarray(xy, dtype=float)
        x, y = xy[..., 0], xy[..., 1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2 + self.offset

    def gradient(self, xy):
        xy = np.asarray(xy, dtype=float)
        x, y = xy[..., 0], xy[..., 1]
        return np.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], axis=-1)


class TwoWells:
    """(x^2 - 1)^2 + y^2 + 0.3 x: a global minimum near x = -1, a local one near x = +1."""

    name = "two_wells"
    title = "Two wells"
    formula = "(x^2 - 1)^2 + y^2 + 0.3 x"
    domain = ((-2.0, 2.0), (-1.5, 1.5))
    log_levels = False

    def __init__(self):
        xs = []
        for root in np.roots([4.0, 0.0, -4.0, 0.3]):
            if abs(root.imag) < 1e-12 and 12 * root.real**2 - 4 > 0:
                xs.append(float(root.real))
        xs.sort()
        self.minima = (
            Minimum((xs[0], 0.0), self._f(xs[0], 0.0), "global"),
            Minimum((xs[1], 0.0), self._f(xs[1], 0.0), "local"),
        )
        self.global_minimum = self.minima[0]

    @staticmethod
    def _f(x, y):
        return (x**2 - 1) ** 2 + y**2 + 0.3 * x

    def value(self, xy):
        xy = np.asarray(xy, dtype=float)
        return self._f(xy[..., 0], xy[..., 1])

    def gradient(self, xy):
        xy = np.asarray(xy, dtype=float)
        x, y = xy[..., 0], xy[..., 1]
        return np.stack([4 * x * (x**2 - 1) + 0.3, 2 * y], axis=-1)


class Saddle:
    """x^2 - y^2: unbounded below, no minimum."""

    name = "saddle"
    title = "Saddle"
    formula = "x^2 - y^2"
    domain = ((-2.0, 2.0), (-2.0, 2.0))
    log_levels = False
    minima = ()
    global_minimum = None

    def value(self, xy):
        xy = np.asarray(xy, dtype=float)
        return xy[..., 0] ** 2 - xy[..., 1] ** 2

    def gradient(self, xy):
        xy = np.asarray(xy, dtype=float)
        return np.stack([2 * xy[..., 0], -2 * xy[..., 1]], axis=-1)


def gd(surface, lr, steps, start=(-1.2, 1.0), momentum=0.0):
    """Gradient descent (heavy ball); NaN after divergence, like the lab's trajectories."""
    p = np.array(start, dtype=float)
    v = np.zeros(2)
    out = np.full((steps + 1, 2), np.nan)
    out[0] = p
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            v = momentum * v + surface.gradient(p)
            p = p - lr * v
            if not np.all(np.isfinite(p)) or np.abs(p).max() > 1e6:
                break
            out[t] = p
    return out


@pytest.fixture(scope="module")
def rosen():
    return Rosenbrock()


@pytest.fixture(scope="module")
def paths(rosen):
    return {
        "SGD lr=0.001": gd(rosen, 1e-3, 150),
        "Momentum lr=0.001 beta=0.9": gd(rosen, 1e-3, 150, momentum=0.9),
        "SGD lr=0.01": gd(rosen, 1e-2, 150),  # diverges after a few steps
    }


def texts(fig: Figure) -> list[str]:
    """Every legend entry of the figure (figure and axes legends)."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def render(fig: Figure) -> bytes:
    """Draw the figure completely (catches errors that only happen at draw time)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# style
# --------------------------------------------------------------------------------------------


def test_colors_are_fixed_per_optimizer_and_variants_differ_by_line_style():
    assert base_name("Adam lr=0.01") == "Adam"
    assert base_name("adamw wd=0.01") == "AdamW"
    assert base_name("SGD:momentum=0.5") == "SGD"
    assert base_name("m only") is None
    assert color_for("Adam lr=0.1") == OPTIMIZER_COLORS["Adam"]
    assert color_for("my method") == color_for("my method")
    from optimlab.lab.contenders import CONTENDERS

    # every lab contender has a color, and no two contenders share one (the hand-picked
    # colors stay where they are; tests/test_registry.py: a new optimizer gets a free one)
    assert all(OPTIMIZER_COLORS[name] for name in CONTENDERS)
    assert len({OPTIMIZER_COLORS[name].upper() for name in CONTENDERS}) == len(CONTENDERS)
    labels = ["Adam lr=0.01", "Adam lr=0.1", "NAG", "mystery", "Lion", "other"]
    colors = colors_for(labels)
    assert colors["Adam lr=0.01"] == colors["Adam lr=0.1"] == OPTIMIZER_COLORS["Adam"]
    assert colors["NAG"] == OPTIMIZER_COLORS["NAG"]
    assert colors["Lion"] == OPTIMIZER_COLORS["Lion"]
    assert colors["mystery"] != colors["other"]
    assert not {colors["mystery"], colors["other"]} & set(OPTIMIZER_COLORS.values())
    assert colors == colors_for(labels)
    styles = linestyles_for(labels)
    assert styles["Adam lr=0.01"] == "-" and styles["Adam lr=0.1"] == "--"
    assert styles["NAG"] == styles["mystery"] == "-"
    pairs = {(colors[k], str(styles[k])) for k in labels}
    assert len(pairs) == len(labels)  # every curve still tells apart


# --------------------------------------------------------------------------------------------
# contours with paths, 3-D
# --------------------------------------------------------------------------------------------


def test_contour_with_paths_structure(rosen, paths):
    fig = contour_with_paths(rosen, paths, title="Rosenbrock from (-1.2, 1)", resolution=60)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # contours, loss, gradient norm, colorbar
    ax, ax_loss, ax_grad, cbar = fig.axes
    entries = texts(fig)
    for label in paths:
        assert any(e.startswith(label) for e in entries), (label, entries)
    assert any("diverged" in e for e in entries)
    assert "global minimum" in entries and "start" in entries and "end" in entries
    assert "log" in cbar.get_ylabel() and "f - f_min" in cbar.get_ylabel()
    assert ax_loss.get_yscale() == "log" and "f - f_min" in ax_loss.get_ylabel()
    assert ax_grad.get_yscale() == "log" and "grad" in ax_grad.get_ylabel()
    assert ax_grad.get_xlabel() == "step t"
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.0, 3.0)
    assert fig._suptitle.get_text() == "Rosenbrock from (-1.2, 1)"
    render(fig)


def test_contour_with_paths_tolerates_nan_inf_and_paths_leaving_the_plot(rosen):
    nan_path = np.array([[-1.0, 1.0], [0.0, 0.5], [np.nan, np.nan], [1.0, 1.0]])
    inf_path = np.array([[0.5, 0.5], [np.inf, 2.0]])
    leaving = np.array([[0.0, 0.0], [1.5, 1.5], [30.0, 1e8]])
    empty = np.full((5, 2), np.nan)
    fig = contour_with_paths(
        rosen,
        {"Adam": nan_path, "RMSprop": inf_path, "Lion": leaving, "NAG": empty},
        losses={"Adam": [5.0, 1.0, np.nan, np.inf], "RMSprop": [0.1, np.inf]},
        grad_norms={"Adam": [1.0, np.nan, 0.0, 1.0]},
        resolution=40,
    )
    entries = texts(fig)
    assert any(e.startswith("Adam (diverged at step 2)") for e in entries), entries
    assert any(e.startswith("RMSprop (diverged") for e in entries), entries
    assert any(e.startswith("Lion (leaves the plot at step 2)") for e in entries), entries
    render(fig)


def test_contour_with_paths_subtracts_f_min_once(rosen):
    shifted = Rosenbrock(offset=3.0)
    path = gd(rosen, 1e-3, 20)
    f = shifted.value(path)
    ys = []
    for losses in ({"SGD": f}, {"SGD": f - 3.0}, None):
        fig = contour_with_paths(shifted, {"SGD": path}, losses=losses, resolution=30)
        ys.append(np.asarray(fig.axes[1].lines[0].get_ydata(), dtype=float))
    np.testing.assert_allclose(ys[0], f - 3.0)
    np.testing.assert_allclose(ys[1], f - 3.0)
    np.testing.assert_allclose(ys[2], f - 3.0)
    fig = contour_with_paths(
        shifted, {"SGD": path}, losses={"SGD": f - 3.0}, losses_minus_f_min=False, resolution=30
    )
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), f - 6.0)


def test_contour_linear_levels_and_local_minima():
    wells = TwoWells()
    path = gd(wells, 0.05, 60, start=(1.8, 1.2))
    fig = contour_with_paths(wells, {"Adagrad": path}, levels=12, resolution=40)
    assert "log" not in fig.axes[-1].get_ylabel()  # the colorbar of linear levels
    assert "local minimum" in texts(fig) and "global minimum" in texts(fig)
    render(fig)


def test_contour_without_minimum_uses_symlog_for_unbounded_losses():
    saddle = Saddle()
    paths = {"SGD lr=0.3": gd(saddle, 0.3, 60, start=(1.0, 1e-3)), "NAG": gd(saddle, 0.01, 60)}
    fig = contour_with_paths(saddle, paths, resolution=30)
    ax, ax_loss, ax_grad, cbar = fig.axes
    assert ax_loss.get_yscale() == "symlog" and ax_loss.get_ylabel().startswith("loss f(x, y)")
    assert cbar.get_ylabel() == "f(x, y)"
    assert any("diverged" in e or "leaves" in e for e in texts(fig))
    render(fig)


def test_surface_3d(rosen, paths):
    fig = surface_3d(rosen, paths, title="3-D", resolution=30)
    assert len(fig.axes) == 2
    assert fig.axes[0].name == "3d"
    assert "log10" in fig.axes[0].get_zlabel()
    entries = texts(fig)
    for label in paths:
        assert any(e.startswith(label) for e in entries)
    render(fig)
    fig = surface_3d(TwoWells(), log_z=False, resolution=20)
    assert fig.axes[0].get_zlabel() == "f(x, y)"
    render(fig)


# --------------------------------------------------------------------------------------------
# animation
# --------------------------------------------------------------------------------------------


def test_animate_gif_frames_and_determinism(rosen, paths, tmp_path):
    from PIL import Image

    out = animate_paths(rosen, paths, tmp_path / "race.gif", frames=12, fps=10, dpi=40)
    assert out == tmp_path / "race.gif"
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 12
        assert im.info["duration"] == 100
    again = animate_paths(rosen, paths, tmp_path / "again.gif", frames=12, fps=10, dpi=40)
    assert out.read_bytes() == again.read_bytes()


def test_animate_four_paths_120_frames_is_fast_and_small(rosen, paths, tmp_path):
    from PIL import Image

    four = dict(paths)
    four["Adam lr=0.05"] = gd(rosen, 5e-4, 150, momentum=0.95)
    start = time.perf_counter()
    out = animate_paths(rosen, four, tmp_path / "race.gif")
    seconds = time.perf_counter() - start
    assert out.stat().st_size < 2.5e6
    assert seconds < 20  # about 2 s alone on one core; generous for shared CI machines
    with Image.open(out) as im:
        assert im.n_frames == 120


@pytest.mark.skipif(not viz_animation._ffmpeg_available(), reason="ffmpeg is not installed")
def test_animate_mp4_with_ffmpeg(rosen, paths, tmp_path):
    out = animate_paths(rosen, paths, tmp_path / "race.mp4", frames=10, dpi=40)
    assert out.stat().st_size > 1000
    assert out.read_bytes()[4:8] == b"ftyp"


def test_animate_mp4_without_ffmpeg_says_so(rosen, paths, tmp_path, monkeypatch):
    monkeypatch.setattr(viz_animation, "_ffmpeg_available", lambda: False)
    with pytest.raises(ValueError, match=r"ffmpeg.*missing.*\.gif"):
        animate_paths(rosen, paths, tmp_path / "race.mp4")
    assert not (tmp_path / "race.mp4").exists()
    with pytest.raises(ValueError, match=r"\.gif.*\.mp4"):
        animate_paths(rosen, paths, tmp_path / "race.avi")
    with pytest.raises(ValueError, match="frames"):
        animate_paths(rosen, paths, tmp_path / "race.gif", frames=0)


# --------------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------------


def test_ewma_figure_both_variants_and_weights():
    rng = np.random.default_rng(0)
    series = 20 + 5 * np.sin(np.arange(60) / 8) + rng.standard_normal(60)
    fig = ewma_figure(series, [0.5, 0.9, 0.98], title="EWMA")
    assert len(fig.axes) == 2
    ax, ax_w = fig.axes
    entries = texts(fig)
    for beta in ("0.5", "0.9", "0.98"):
        assert any(f"β = {beta}, raw" in e for e in entries)
        assert any(f"β = {beta}, bias-corrected" in e for e in entries)
    styles = [line.get_linestyle() for line in ax.lines[1:]]
    assert styles.count("--") == 3 and styles.count("-") == 3
    assert ax_w.get_yscale() == "log"
    windows = sorted(line.get_xdata()[0] for line in ax_w.lines if line.get_linestyle() == ":")
    np.testing.assert_allclose(windows, [2.0, 10.0, 50.0])
    assert any("window 1/(1 - β) = 50" in e for e in entries)
    # the corrected curve starts at the first value, the raw one at (1 - beta) times it
    corrected = ax.lines[2].get_ydata()
    raw = ax.lines[1].get_ydata()
    assert corrected[0] == pytest.approx(series[0]) and raw[0] == pytest.approx(0.5 * series[0])
    render(fig)

    only = ewma_figure(series, [0.9], bias_correction=True)
    assert [line.get_linestyle() for line in only.axes[0].lines[1:]] == ["-"]
    with pytest.raises(ValueError, match="bias_correction"):
        ewma_figure(series, [0.9], bias_correction="maybe")


def test_schedules_figure():
    import optimlab as ol

    schedules = {
        "constant": lambda step: 0.01,
        "cosine + warmup": ol.schedules.CosineDecay(
            0.0, decay_steps=90, warmup_target=1e-2, warmup_steps=10
        ),
        "exponential": ol.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.5),
    }
    fig = schedules_figure(schedules, 100, log_y=True)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "learning rate" in ax.get_ylabel()
    assert len(ax.lines) == 3
    for line, (label, schedule) in zip(ax.lines, schedules.items(), strict=True):
        assert line.get_label().startswith(label)
        assert len(line.get_xdata()) == 101
        assert line.get_ydata()[50] == pytest.approx(float(schedule(50)))
    assert schedules_figure(schedules, 100).axes[0].get_yscale() == "linear"
    render(fig)


def test_lines_figure_scales_bands_and_divergence():
    lrs = np.geomspace(1e-4, 1.0, 9)
    curves = {
        "SGD": (lrs, (lrs - 0.05) ** 2 + 1e-3),
        "Adam": (lrs, np.r_[np.abs(np.log(lrs[:-2])) + 0.1, np.nan, np.nan]),
    }
    bands = {"SGD": (curves["SGD"][1] * 0.5, curves["SGD"][1] * 2)}
    fig = lines_figure(
        curves, xlabel="learning rate", ylabel="final loss", title="LR", log_x=True, bands=bands
    )
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "learning rate" in ax.get_xlabel() and "final loss" in ax.get_ylabel()
    entries = texts(fig)
    assert "SGD" in entries and "Adam (diverged)" in entries
    assert len(ax.collections) == 1  # the band
    render(fig)
    with pytest.raises(ValueError, match="bands"):
        lines_figure(curves, xlabel="x", ylabel="y", bands={"Lion": bands["SGD"]})
    lin = lines_figure({"a": ([0, 1, 2], [3, 2, 1])}, xlabel="x", ylabel="y", log_y=False)
    assert lin.axes[0].get_yscale() == "linear"


# --------------------------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------------------------


def test_basin_map():
    wells = TwoWells()
    xs = np.linspace(-2, 2, 21)
    ys = np.linspace(-1.5, 1.5, 15)
    index = np.where(xs[None, :] < 0.1, 0, 1) * np.ones((15, 1), dtype=int)
    index[0, :3] = -1
    fig = basin_map(wells, xs, ys, index, title="basins")
    assert len(fig.axes) == 1
    entries = texts(fig)
    assert any(e.startswith("#0: global minimum") for e in entries)
    assert any(e.startswith("#1: local minimum") for e in entries)
    assert any(e.startswith("no minimum reached / diverged (1%)") for e in entries)
    assert fig.axes[0].get_title() == "basins"
    render(fig)
    with pytest.raises(ValueError, match="minima"):
        basin_map(wells, xs, ys, index + 5)
    with pytest.raises(ValueError, match="xs"):
        basin_map(wells, xs[:-1], ys, index)


def test_heatmap_marks_nan_and_minimum():
    lrs = np.geomspace(1e-4, 1e-1, 7)
    betas = np.array([0.0, 0.5, 0.9, 0.99])
    values = np.outer(1 + betas, lrs) ** -1
    values[3, 5:] = np.nan
    values[2, 6] = np.inf
    fig = heatmap(
        values, lrs, betas, xlabel="learning rate", ylabel="momentum β",
        title="final loss", cbar_label="f - f_min",
    )  # fmt: skip
    assert len(fig.axes) == 2
    ax, cbar = fig.axes
    assert ax.get_xscale() == "log" and "learning rate" in ax.get_xlabel()
    assert "f - f_min" in cbar.get_ylabel() and "log" in cbar.get_ylabel()
    hatched = [c for c in ax.collections if c.get_gid() == "diverged"]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == 3
    entries = texts(fig)
    assert "diverged (NaN/inf): 3 of 28" in entries
    assert any(e.startswith("minimum ") for e in entries)
    # unevenly spaced betas: one row each, labeled with the value
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "0.5", "0.9", "0.99"]
    # the outlined cell holds the smallest finite value (beta = 0.5, lr = 0.1)
    i, j = np.unravel_index(np.argmin(np.where(np.isfinite(values), values, np.inf)), (4, 7))
    assert (i, j) == (1, 6)
    outline = [p for p in ax.patches if p.get_gid() == "minimum"][0]
    assert outline.get_x() < lrs[j] < outline.get_x() + outline.get_width()
    assert outline.get_y() < i < outline.get_y() + outline.get_height()  # rows by index
    render(fig)
    with pytest.raises(ValueError, match="x_values"):
        heatmap(values, lrs[:-1], betas, xlabel="a", ylabel="b")


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def test_save_is_byte_deterministic(rosen, paths, tmp_path):
    fig = contour_with_paths(rosen, paths, resolution=40)
    a = save(fig, tmp_path / "a.png", dpi=50)
    b = save(fig, tmp_path / "sub" / "b.png", dpi=50)  # the same figure saved again
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in a.read_bytes() and b"matplotlib" not in a.read_bytes()

    def small():
        return lines_figure({"SGD": ([1, 2, 3], [3.0, 2.0, 1.0])}, xlabel="step", ylabel="loss")

    for suffix in (".png", ".svg", ".pdf"):
        first = save(small(), tmp_path / f"x{suffix}").read_bytes()  # two separate builds
        second = save(small(), tmp_path / f"y{suffix}").read_bytes()
        assert first == second, suffix
    assert b"CreationDate" not in (tmp_path / "x.pdf").read_bytes()
    assert b"<dc:date>" not in (tmp_path / "x.svg").read_bytes()
    with pytest.raises(ValueError, match="suffix"):
        save(small(), tmp_path / "x.jpeg")


def test_no_pyplot_figures_are_created(rosen, paths):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    contour_with_paths(rosen, paths, resolution=20)
    lines_figure({"a": ([1, 2], [2, 1])}, xlabel="x", ylabel="y")
    assert plt.get_fignums() == before
