"""Writing figures to disk, byte for byte reproducibly."""

from __future__ import annotations

import numbers
import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

__all__ = ["save", "FORMATS"]

#: file suffix -> the metadata that removes every date, version and tool name from the file
FORMATS: dict[str, dict[str, None]] = {
    ".png": {"Software": None},
    ".svg": {"Date": None, "Creator": None},
    ".pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


def save(fig: Figure, path: str | os.PathLike, *, dpi: float = 110, layout_rounds: int = 4) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF, chosen by the suffix) and return the path.

    The output is deterministic: the same figure gives the same bytes on every call and in
    every process (no timestamp, no software version, fixed SVG ids). The parent folder is
    created if needed. Nothing global is touched and the figure stays usable (it is not
    closed; drop the reference to free it).

    ``layout_rounds``: how often constrained layout may run before the positions are frozen
    (it stops early once they no longer move). The default settles them, so that saving the
    same figure twice gives the same bytes; 1 lays the figure out once, as a plain savefig
    does, which is deterministic for a figure saved once and about three times faster.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib.figure.Figure, got {type(fig).__name__}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {str(path)!r}: its suffix must be one of "
            f"{', '.join(FORMATS)} (for animations use animate_paths with .gif or .mp4)"
        )
    if isinstance(dpi, bool) or not (isinstance(dpi, numbers.Real) and dpi > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if (
        isinstance(layout_rounds, bool)
        or not isinstance(layout_rounds, numbers.Integral)
        or (layout_rounds < 1)
    ):
        raise ValueError(f"layout_rounds must be an integer >= 1, got {layout_rounds!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with mpl.rc_context({"svg.hashsalt": "optimlab", "pdf.compression": 6}):
            with _settled_layout(fig, dpi, int(layout_rounds)):
                fig.savefig(tmp, format=suffix[1:], dpi=dpi, metadata=dict(FORMATS[suffix]))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _positions(fig: Figure) -> np.ndarray:
    return np.array([ax.get_position().bounds for ax in fig.axes], dtype=float).reshape(-1, 4)


@contextmanager
def _settled_layout(fig: Figure, dpi: float, rounds: int = 4):
    """Run the figure's layout engine (constrained layout) at the output dpi until the axes
    stop moving, then keep it off while saving.

    Each run of constrained layout starts from the previous positions, so the first save of a
    figure would otherwise differ by a pixel from the second; saving with the settled
    positions also spares the two layout runs savefig would do.
    """
    engine = fig.get_layout_engine()
    if engine is None or not hasattr(engine, "execute"):
        yield
        return
    old_dpi = fig.dpi
    fig.set_dpi(dpi)
    try:
        before = _positions(fig)
        for _ in range(rounds):
            engine.execute(fig)
            after = _positions(fig)
            if np.allclose(after, before, rtol=0.0, atol=1e-9):  # settled (float noise aside)
                break
            before = after
    finally:
        fig.set_dpi(old_dpi)
    fig.set_layout_engine("none")
    try:
        yield
    finally:
        fig.set_layout_engine(engine)
