"""How the report turns an experiment's Result into HTML pieces: numbers and table cells
(one formatter for text and tables), equations as MathML (typeset by the browser itself: no
JavaScript, no network), and the chapter's text with its inline math. Computes nothing."""

from __future__ import annotations

import html
import math
import re

from markupsafe import Markup

from ..lab.experiments._text import Mark, fmt

_INLINE = re.compile(r"\$([^$]+)\$")
_WORD_INDEX = re.compile(r"_\{([A-Za-z]{2,})\}")  # lambda_{max}, rho_{GD}: upright words
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def cell(value) -> Markup:
    """A table cell or number: marks ("not reached", "diverged") in italics, numbers by the
    tour's formatter (``_text.fmt``), text escaped."""
    if isinstance(value, Mark):
        return Markup('<em class="mark">{}</em>').format(str(value))
    if isinstance(value, float) and not math.isfinite(value):
        return Markup('<em class="mark">{}</em>').format(fmt(value))
    return Markup("{}").format(fmt(value))


def math_ml(latex: str, *, display: bool = True) -> Markup:
    """``latex`` as a MathML ``<math>`` element (latex2mathml), with the source as its
    ``alttext``; ValueError naming the equation if it does not convert, or if a command would
    be left as text (``\\arg``: write ``\\operatorname{argmin}``), or if an
    ``\\operatorname`` holds anything but letters (the converter then spells it out as italic
    variables)."""
    from latex2mathml.converter import convert

    spelled = re.findall(r"\\operatorname\{([^}]*[^A-Za-z}][^}]*)\}", latex)
    if spelled:
        raise ValueError(
            f"equation {latex!r}: \\operatorname takes letters only, got {spelled[0]!r} "
            "(MathML would show it as a product of italic variables)"
        )
    source = _WORD_INDEX.sub(r"_{\\text{\1}}", latex)
    try:
        out = convert(source, display="block" if display else "inline")
    except Exception as error:  # the converter raises its own exception types
        raise ValueError(f"equation {latex!r} is not valid LaTeX for MathML: {error}") from None
    kept = re.findall(r">(\\[A-Za-z]+)<", out)
    if kept:  # a command the converter does not know, left as text: it would show as such
        raise ValueError(f"equation {latex!r} uses {', '.join(kept)}, which MathML cannot show")
    alt = html.escape(latex, quote=True)
    return Markup(out.replace("<math ", f'<math alttext="{alt}" ', 1))


def prose(text: str) -> Markup:
    """The chapter's text as HTML paragraphs: blank lines separate paragraphs, ``$...$`` is
    inline math (MathML), `` `...` `` is code, ``**...**`` is bold, everything else is
    escaped."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return Markup("\n").join(Markup("<p>{}</p>").format(_inline(p)) for p in paragraphs)


def _inline(text: str) -> Markup:
    out = []
    for i, part in enumerate(_INLINE.split(text)):
        if i % 2:
            out.append(math_ml(part, display=False))
        else:
            for j, piece in enumerate(_CODE.split(part)):
                if j % 2:
                    out.append(Markup("<code>{}</code>").format(piece))
                    continue
                for k, words in enumerate(_BOLD.split(piece)):
                    text = escape(words)
                    out.append(Markup("<strong>{}</strong>").format(text) if k % 2 else text)
    return Markup("").join(out)


def escape(text: str) -> Markup:
    """Plain text, escaped, with runs of whitespace kept as single spaces."""
    return Markup("{}").format(re.sub(r"\s+", " ", str(text)))
