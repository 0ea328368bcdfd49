"""The look shared by every figure: one fixed, colorblind-friendly color per optimizer name.

Colors come from Okabe & Ito's palette ("Color Universal Design", 2008), Paul Tol's
"muted" scheme (SRON technical note, 2021) and, for RAdam once those ran out, the brown of
Brewer's colorblind-safe BrBG scheme (colorbrewer2.org), all designed to stay distinguishable
with the common color-vision deficiencies. An optimizer keeps its color in every figure: each of
the lab's contenders owns one (:data:`OPTIMIZER_COLORS`: hand-picked in :data:`CHOSEN_COLORS`,
or for an optimizer without one the next color no contender uses), and a second curve of the same
optimizer in one figure (``"Adam lr=0.01"`` beside ``"Adam lr=0.1"``) keeps the color and
changes its line style (:func:`linestyles_for`); other names take the next free color of
:data:`FALLBACK_COLORS`.

Figures are built with the object-oriented API on :class:`matplotlib.figure.Figure` with an
Agg canvas attached: nothing is registered with pyplot, nothing needs a display, and a figure
is freed as soon as the caller drops it.
"""

from __future__ import annotations

import colorsys
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._derived import DerivedTable

__all__ = [
    "CHOSEN_COLORS",
    "OPTIMIZER_COLORS",
    "FALLBACK_COLORS",
    "base_name",
    "color_for",
    "colors_for",
    "linestyles_for",
    "sequential_colors",
    "new_figure",
    "safe_text",
]

#: the hand-picked color of each of the lab's optimizers that has one
CHOSEN_COLORS: dict[str, str] = {
    "SGD": "#000000",  # Okabe-Ito black
    "Momentum": "#E69F00",  # Okabe-Ito orange
    "NAG": "#56B4E9",  # Okabe-Ito sky blue
    "Adagrad": "#009E73",  # Okabe-Ito bluish green
    "RMSprop": "#CC79A7",  # Okabe-Ito reddish purple
    "Adam": "#D55E00",  # Okabe-Ito vermillion
    "AdamW": "#0072B2",  # Okabe-Ito blue
    "Nadam": "#882255",  # Tol muted wine
    "Adamax": "#999933",  # Tol muted olive
    "Adadelta": "#44AA99",  # Tol muted teal
    "Lion": "#332288",  # Tol muted indigo
    "RAdam": "#8C510A",  # ColorBrewer BrBG brown
    "Rprop": "#01665E",  # ColorBrewer BrBG dark teal
    "Muon": "#B2182B",  # ColorBrewer RdBu dark red
    "Lamb": "#C51B7D",  # ColorBrewer PiYG magenta
    "Adafactor": "#5AAE61",  # ColorBrewer PRGn green
    "Ftrl": "#053061",  # ColorBrewer RdBu darkest blue
    "ScheduleFreeAdamW": "#762A83",  # ColorBrewer PRGn purple
    "ASGD": "#B35806",  # ColorBrewer PuOr dark orange
}

#: colors for other names and repeated optimizers, in this order (Tol muted and Okabe-Ito
#: leftovers, then grays); the cycle repeats when exhausted
FALLBACK_COLORS: tuple[str, ...] = (
    "#AA4499",  # Tol purple
    "#117733",  # Tol green
    "#CC6677",  # Tol rose
    "#88CCEE",  # Tol cyan
    "#DDAA33",  # Tol sand (darkened for lines on white)
    "#666666",  # dark gray
    "#0077BB",  # Tol vibrant blue
    "#EE7733",  # Tol vibrant orange
    "#009988",  # Tol vibrant teal
    "#EE3377",  # Tol vibrant magenta
    "#33BBEE",  # Tol vibrant cyan
    "#BBBBBB",  # light gray
)


def _palette() -> Iterator[str]:
    """The colors an optimizer without a hand-picked one may take, in order:
    :data:`FALLBACK_COLORS`, then an endless sequence of hues a golden angle apart, at a
    lightness readable on white."""
    yield from FALLBACK_COLORS
    for i in itertools.count():
        r, g, b = colorsys.hls_to_rgb((0.1 + i * 0.6180339887498949) % 1.0, 0.42, 0.62)
        yield "#{:02X}{:02X}{:02X}".format(*(round(255 * c) for c in (r, g, b)))


def _optimizer_colors() -> dict[str, str]:
    """lab name -> color, for every contender of :data:`optimlab.lab.contenders.CONTENDERS`
    (in its order): the hand-picked one of :data:`CHOSEN_COLORS`, else the first color of
    :func:`_palette` that no contender uses yet. A new optimizer takes the next free color,
    so the colors of the others never move."""
    from ..lab.contenders import CONTENDERS

    names = list(CONTENDERS)
    out = {n: CHOSEN_COLORS[n] for n in names if n in CHOSEN_COLORS}
    used = {c.upper() for c in out.values()}
    palette = _palette()
    for name in names:
        if name not in out:
            out[name] = next(c for c in palette if c.upper() not in used)
            used.add(out[name].upper())
    return {n: out[n] for n in names}


#: the fixed color of each of the lab's optimizers (matched case-insensitively on the first word
#: of a label, so "Adam lr=0.01" is Adam and "AdamW wd=0.01" is AdamW): a read-only mapping
#: derived from the contenders each time it is read (see :func:`_optimizer_colors`)
OPTIMIZER_COLORS: Mapping[str, str] = DerivedTable(_optimizer_colors, lambda: _colors_key())


def _colors_key() -> tuple:
    from ..lab.contenders import CONTENDERS

    return tuple(CONTENDERS), tuple(CHOSEN_COLORS.items()), FALLBACK_COLORS


def _free_fallback() -> tuple[str, ...]:
    """The :data:`FALLBACK_COLORS` that no optimizer owns (all of them if every one is)."""
    owned = {c.upper() for c in OPTIMIZER_COLORS.values()}
    free = tuple(c for c in FALLBACK_COLORS if c.upper() not in owned)
    return free or FALLBACK_COLORS


_FIRST_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

#: rcParams every figure is built under (font sizes readable at the default 110 dpi)
RC: dict[str, Any] = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "figure.titlesize": 12,
    "axes.grid": False,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "svg.hashsalt": "optimlab",
    "path.simplify": True,
}


def base_name(label: str) -> str | None:
    """The lab optimizer a label names (its first word, case-insensitive), or None.

    ``"Adam lr=0.01"`` -> ``"Adam"``, ``"sgd:momentum=0.5"`` -> ``"SGD"``, ``"m only"`` -> None.
    """
    match = _FIRST_WORD.match(str(label).strip())
    if match is None:
        return None
    by_lower = {k.lower(): k for k in OPTIMIZER_COLORS}
    return by_lower.get(match.group(0).lower())


def color_for(label: str) -> str:
    """The fixed color of the optimizer a label names, else a stable fallback color.

    The fallback depends only on the label's text (a checksum of it), so the same unknown
    label gets the same color in every figure; use :func:`colors_for` to color several
    labels of one figure without clashes.
    """
    name = base_name(label)
    if name is not None:
        return OPTIMIZER_COLORS[name]
    checksum = sum((i + 1) * ord(c) for i, c in enumerate(str(label)))
    free = _free_fallback()
    return free[checksum % len(free)]


def colors_for(labels: Iterable[str]) -> dict[str, str]:
    """One color per label, in order: every label that names a lab optimizer gets that
    optimizer's fixed color (so "Adam lr=0.01" and "Adam lr=0.1" are both Adam's vermillion,
    told apart by :func:`linestyles_for`); other labels get the next unused
    :data:`FALLBACK_COLORS` entry.

    Deterministic: the same labels in the same order always get the same colors, and an
    optimizer has the same color in every figure.
    """
    labels = list(dict.fromkeys(str(label) for label in labels))
    colors = OPTIMIZER_COLORS.copy()
    by_lower = {k.lower(): k for k in colors}
    owned = {c.upper() for c in colors.values()}
    free = tuple(c for c in FALLBACK_COLORS if c.upper() not in owned) or FALLBACK_COLORS
    out: dict[str, str] = {}
    k = 0
    for label in labels:
        match = _FIRST_WORD.match(label.strip())
        name = by_lower.get(match.group(0).lower()) if match else None
        if name is not None:
            out[label] = colors[name]
        else:
            out[label] = free[k % len(free)]
            k += 1
    return out


#: the line styles that tell apart several curves of one color, in this order
LINESTYLES: tuple = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))


def linestyles_for(labels: Iterable[str]) -> dict[str, Any]:
    """One line style per label: solid for the first label of each color of
    :func:`colors_for`, then dashed, dotted, dash-dotted... for the next labels of that color
    (the variants of one optimizer)."""
    colors = colors_for(labels)
    seen: dict[str, int] = {}
    out: dict[str, Any] = {}
    for label, color in colors.items():
        n = seen.get(color, 0)
        seen[color] = n + 1
        out[label] = LINESTYLES[n % len(LINESTYLES)]
    return out


def sequential_colors(n: int, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """``n`` colors along a perceptually uniform colormap (for ordered values such as betas),
    from dark to light, avoiding viridis's pale yellow end."""
    if n <= 0:
        return []
    cmap_obj = mpl.colormaps[cmap]
    if n == 1:
        return [cmap_obj(0.35)]
    return [cmap_obj(v) for v in np.linspace(0.0, 0.82, n)]


def new_figure(figsize: tuple[float, float], *, layout: str = "constrained") -> Figure:
    """A fresh :class:`~matplotlib.figure.Figure` on its own Agg canvas (no pyplot)."""
    with mpl.rc_context(RC):
        fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def rc_context():
    """The rcParams context every figure of this package is built in."""
    return mpl.rc_context(RC)


def safe_text(text: Any) -> str:
    """``text`` as a string that cannot break drawing: if it contains ``$`` and is not valid
    mathtext, the dollar signs are escaped so it is shown literally."""
    text = "" if text is None else str(text)
    if "$" not in text:
        return text
    from matplotlib.mathtext import MathTextParser

    try:
        if text.count("$") % 2:
            raise ValueError("unbalanced $")
        for i, part in enumerate(text.split("$")):
            if i % 2:
                MathTextParser("path").parse(f"${part}$")
    except Exception:
        return text.replace("\\$", "$").replace("$", r"\$")
    return text


def format_number(value: float) -> str:
    """A short human-readable number: 3 significant digits, scientific when far from 1."""
    if value is None or not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def as_mapping(name: str, value: Any) -> dict[str, Any]:
    """``value`` as a dict (an ordered mapping of label -> data), with a clear TypeError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of label -> array, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}
