"""A chapter's claims as checks.

Every statement the tour makes about a measurement is a :class:`Claim`: its ``text`` (what the
page says, the numbers rendered from the measurement), whether the measurement bears it out
(``holds``) and the values compared with their tolerance (``detail``). The experiments build
them with the functions below; the report lists them under each chapter, and the test suite
fails when one does not hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._text import fmt


@dataclass(frozen=True)
class Claim:
    """One statement of a chapter and the check that it holds on this run."""

    text: str
    holds: bool
    detail: str = ""

    def as_json(self) -> dict:
        """The claim as a JSON object (``text``, ``holds``, ``detail``)."""
        return {"text": self.text, "holds": bool(self.holds), "detail": self.detail}


def check(text: str, condition, detail: str = "") -> Claim:
    """A claim that holds when ``condition`` is true."""
    return Claim(text, bool(condition), detail)


def close(text: str, measured, expected, *, rel: float = 0.0, abs: float = 0.0) -> Claim:
    """``|measured - expected| <= max(rel * |expected|, abs)``: a measurement and its theory
    agree within the stated tolerance (a non-finite value never agrees)."""
    measured, expected = float(measured), float(expected)
    tol = max(rel * math.fabs(expected), abs)
    finite = math.isfinite(measured) and math.isfinite(expected)
    ok = finite and math.fabs(measured - expected) <= tol
    parts = []
    if rel:
        parts.append(f"{rel:g} relative")
    if abs:
        parts.append(f"{abs:g} absolute")
    return Claim(
        text,
        ok,
        f"measured {fmt(measured, 6)}, expected {fmt(expected, 6)}, "
        f"tolerance {' or '.join(parts) or 0}",
    )


def at_least(text: str, value, bound) -> Claim:
    """``value >= bound``."""
    value, bound = float(value), float(bound)
    return Claim(text, math.isfinite(value) and value >= bound, f"{fmt(value)} >= {fmt(bound)}")


def at_most(text: str, value, bound) -> Claim:
    """``value <= bound``."""
    value, bound = float(value), float(bound)
    return Claim(text, math.isfinite(value) and value <= bound, f"{fmt(value)} <= {fmt(bound)}")


def quoted(statement: str, number: str, **places: str) -> Claim:
    """The same number ``number`` (as printed) appears in every one of ``places`` (e.g. a
    figure's title and the chapter's text)."""
    missing = [name for name, where in places.items() if number not in where]
    detail = f"{number!r} in {', '.join(places)}"
    if missing:
        detail += f"; missing from {', '.join(missing)}"
    return Claim(statement, not missing, detail)


def figure_text(fig) -> str:
    """Every title, axis label and legend entry of a matplotlib figure, one per line (what
    :func:`quoted` searches in a figure)."""
    parts = []
    if getattr(fig, "_suptitle", None) is not None:
        parts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            parts += [t.get_text() for t in legend.get_texts()]
    for legend in fig.legends:
        parts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(p for p in parts if p)
