"""Optimizers racing on a surface: an animated contour plot, written as GIF (Pillow) or MP4
(ffmpeg), with every optimizer at the same step in each frame."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from . import _surface as S
from .style import as_mapping, colors_for, linestyles_for, new_figure, rc_context, safe_text

__all__ = ["animate_paths", "SUFFIXES"]

#: the formats :func:`animate_paths` writes
SUFFIXES = (".gif", ".mp4")


def _ffmpeg_available() -> bool:
    """Whether matplotlib finds an ffmpeg executable (``rcParams['animation.ffmpeg_path']``)."""
    from matplotlib.animation import writers

    return bool(writers.is_available("ffmpeg"))


class _Race:
    """The figure of the animation and how to bring it to a given frame."""

    def __init__(self, surface, paths, *, frames, title, levels, figsize):
        self.frames = frames
        self.cleaned = {label: S.clean_path(path, surface) for label, path in paths.items()}
        self.shown = {label: S.plottable(c.points, surface) for label, c in self.cleaned.items()}
        lengths = [c.length for c in self.cleaned.values()]
        self.horizon = max(max(lengths) - 1, 0) if lengths else 0
        colors = colors_for(paths)
        styles = linestyles_for(paths)

        with rc_context():
            self.fig = fig = new_figure(figsize)
            ax = fig.add_subplot()
            grid = S.sample(surface, 160)
            lv = S.levels_of(grid, levels)
            mappable = S.draw_contours(ax, grid, lv)
            S.add_colorbar(fig, mappable, ax, lv, shrink=0.85, pad=0.02)
            minima_handles = S.draw_minima(ax, surface, zorder=3)
            S.set_domain(ax, surface)
            fig.suptitle(safe_text(title) if title else S.surface_title(surface))
            formula = S.formula_title(surface)
            if formula:
                ax.set_title(formula, fontsize=9)

            self.lines, self.heads, self.ends = {}, {}, {}
            handles = []
            for label, clean in self.cleaned.items():
                color = colors[label]
                if len(clean.points):
                    ax.plot(
                        [clean.points[0, 0]],
                        [clean.points[0, 1]],
                        color=color,
                        zorder=5,
                        linestyle="none",
                        **S.START_MARKER,
                    )
                (self.lines[label],) = ax.plot(
                    [], [], color=color, linestyle=styles[label], linewidth=1.6, zorder=4
                )
                (self.heads[label],) = ax.plot(
                    [],
                    [],
                    color=color,
                    linestyle="none",
                    zorder=6,
                    marker="o",
                    markersize=6.5,
                    markeredgecolor="black",
                    markeredgewidth=0.8,
                )
                (self.ends[label],) = ax.plot(
                    [],
                    [],
                    color=color,
                    linestyle="none",
                    zorder=6,
                    clip_on=False,
                    **{**S.DIVERGED_MARKER, "markersize": 8},
                )
                text = safe_text(label) + (f" ({clean.status})" if clean.status else "")
                handles.append(
                    Line2D([], [], color=color, linestyle=styles[label], linewidth=2, label=text)
                )
            handles += minima_handles
            fig.legend(
                handles=handles,
                loc="outside lower center",
                frameon=False,
                ncols=min(3, max(len(handles), 1)),
                fontsize=8,
            )
            self.clock = ax.text(
                0.02,
                0.97,
                "",
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=9,
                zorder=7,
                bbox=dict(
                    boxstyle="round,pad=0.25", facecolor="white", alpha=0.85, edgecolor="0.6"
                ),
            )
            # a bar inside the top edge of the map: playback progress (and every frame differs)
            self.bar = Rectangle(
                (0.0, 0.988), 0.0, 0.012, transform=ax.transAxes, facecolor="0.25", zorder=7
            )
            ax.add_patch(self.bar)
        self.ax = ax
        self.animated = [
            *self.lines.values(),
            *self.heads.values(),
            *self.ends.values(),
            self.clock,
            self.bar,
        ]

    def step_of(self, frame: int) -> int:
        """The optimizer step shown in ``frame`` (steps spread evenly over the frames)."""
        if self.frames <= 1:
            return self.horizon
        return int(round(frame * self.horizon / (self.frames - 1)))

    def update(self, frame: int) -> None:
        """Bring every artist to ``frame``."""
        k = self.step_of(frame)
        for label, clean in self.cleaned.items():
            pts = self.shown[label]
            n = min(k + 1, len(pts))
            stop = clean.exit_index
            if stop is not None and n > stop:
                part = np.vstack([pts[:stop], clean.exit_point[None, :]])
            else:
                part = pts[:n]
            self.lines[label].set_data(part[:, 0], part[:, 1])
            last = stop if stop is not None else len(pts) - 1
            if len(part) and k >= last:  # arrived: X if it diverged or left, else a square
                self.heads[label].set_data([], [])
                end = clean.end
                self.ends[label].set_marker("X" if clean.status else "s")
                self.ends[label].set_data([end[0]], [end[1]])
            else:
                self.ends[label].set_data([], [])
                if len(part):
                    self.heads[label].set_data([part[-1, 0]], [part[-1, 1]])
                else:
                    self.heads[label].set_data([], [])
        self.clock.set_text(f"step {k} / {self.horizon}")
        self.bar.set_width((frame + 1) / self.frames)


def animate_paths(
    surface,
    paths: Mapping[str, np.ndarray],
    out_path: str | os.PathLike,
    *,
    fps: float = 20,
    frames: int = 120,
    title: str | None = None,
    dpi: float = 80,
    levels: int = 20,
) -> Path:
    """Animate optimizers racing on the surface's contours and write the animation.

    Every frame shows all paths up to the same step (steps spread evenly over ``frames``
    frames, ``fps`` frames per second), each with a dot at its current point; a path that
    diverges (NaN/inf) or leaves the domain ends in an X. ``out_path`` ending in ``.gif`` is
    written with Pillow (no external tool; one shared palette, so unchanged pixels cost nothing
    and the file stays small: 4 paths x 120 frames is about 1 MB) and is deterministic;
    ``.mp4`` needs ffmpeg (``ValueError`` if it is missing). The GIF has exactly ``frames``
    frames. Returns the path written.
    """
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot animate to {str(out)!r}: the suffix must be .gif (Pillow) or .mp4 (ffmpeg)"
        )
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if suffix == ".mp4" and not _ffmpeg_available():
        raise ValueError(
            "writing .mp4 needs ffmpeg, which is missing (not on PATH and not set in "
            "matplotlib's rcParams['animation.ffmpeg_path']); install ffmpeg, or write a .gif "
            "instead, which works without it"
        )
    paths = as_mapping("paths", paths)
    if not paths:
        raise ValueError("paths is empty: nothing to animate")
    race = _Race(surface, paths, frames=int(frames), title=title, levels=levels, figsize=(6.6, 5.6))
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        _write_gif(race, out, fps=float(fps), dpi=dpi)
    else:
        _write_mp4(race, out, fps=float(fps), dpi=dpi)
    return out


def _frames_rgb(race: _Race, dpi: float):
    """Render every frame as an RGB array: the static picture once, then only the moving
    artists on top of it (blitting), which is ~20x faster than redrawing the contours."""
    fig = race.fig
    fig.set_dpi(dpi)
    canvas = fig.canvas
    for artist in race.animated:
        artist.set_animated(True)
    with rc_context():
        canvas.draw()
        background = canvas.copy_from_bbox(fig.bbox)
        for frame in range(race.frames):
            race.update(frame)
            canvas.restore_region(background)
            for artist in race.animated:
                fig.draw_artist(artist)
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _write_gif(race: _Race, out: Path, *, fps: float, dpi: float) -> None:
    from PIL import Image

    rgb = list(_frames_rgb(race, dpi))
    # one palette for all frames, from the last (every path drawn in full) and the first frame
    sample = Image.fromarray(np.concatenate([rgb[-1], rgb[0]], axis=0))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [
        Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in rgb
    ]
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(int(round(1000.0 / fps)), 10),
            loop=0,
            optimize=False,
        )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_mp4(race: _Race, out: Path, *, fps: float, dpi: float) -> None:
    """Pipe the blitted frames to ffmpeg (the executable matplotlib's FFMpegWriter uses) as raw
    RGB, encoded as H.264 in yuv420p (even width and height, padded if needed)."""
    import subprocess

    import matplotlib as mpl
    from matplotlib.animation import FFMpegWriter

    frames = _frames_rgb(race, dpi)
    first = next(frames)
    height, width = first.shape[:2]
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}.mp4")
    cmd = [
        FFMpegWriter.bin_path(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-vcodec", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0",
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
        "-vcodec", mpl.rcParams["animation.codec"], "-pix_fmt", "yuv420p",
        "-metadata", "title=optimlab", str(tmp),
    ]  # fmt: skip
    try:
        with subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as proc:
            try:
                proc.stdin.write(first.tobytes())
                for frame in frames:
                    proc.stdin.write(frame.tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            error = proc.stderr.read().decode(errors="replace")
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"ffmpeg failed (exit status {code}): {error.strip()}")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
