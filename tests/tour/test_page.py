"""The quick tour's page, read as a learner would and parsed: tables whose rows match their
headers, a reproduce command, a 'what to look for' line under every figure, a back-to-top link
in every chapter, typeset MathML for every equation, one colour per optimizer, wording without
the old slips, and nothing that needs the network."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from optimlab.lab import experiments
from optimlab.lab.experiments import Table
from optimlab.viz.style import OPTIMIZER_COLORS, base_name


class _Page(HTMLParser):
    """Sections by id, each with its tables (rows of cell texts, header first), figures
    (src, caption text), links and the number of <math> elements; and the page's text."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.text: list[str] = []
        self._section = None
        self._row = self._cell = self._caption = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = {"tables": [], "figures": [], "links": [], "math": 0, "code": []}
            self.sections[a["id"]] = self._section
        s = self._section
        if s is None:
            return
        if tag == "table":
            s["tables"].append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            s["figures"].append([a.get("src"), ""])
        elif tag == "figcaption":
            self._caption = []
        elif tag == "a":
            s["links"].append(a.get("href"))
        elif tag == "math":
            s["math"] += 1

    def handle_endtag(self, tag):
        s = self._section
        if tag == "section":
            self._section = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            s["tables"][-1].append(self._row)
            self._row = None
        elif tag == "figcaption" and self._caption is not None:
            s["figures"][-1][1] = "".join(self._caption).strip()
            self._caption = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


@pytest.fixture(scope="module")
def page(quick_tour):
    parser = _Page()
    parser.feed((quick_tour / "index.html").read_text(encoding="utf-8"))
    return parser


def test_every_chapter_is_on_the_page_in_the_lectures_order(page):
    assert list(page.sections) == list(experiments.EXPERIMENTS)


@pytest.mark.parametrize("key", experiments.EXPERIMENTS)
def test_each_chapter_reads_as_a_lesson(page, quick_tour, key):
    s = page.sections[key]
    for table in s["tables"]:
        header, *rows = table
        for row in rows:  # the rendered page, not only the Table object
            assert len(row) == len(header), f"{key}: {row} under {header}"
            assert "-1" not in row, f"{key}: -1 in a table row {row}"
    assert s["figures"], f"{key} has no figure"
    for src, caption in s["figures"]:
        assert caption.startswith("What to look for:") and len(caption) > 40, (key, src)
        assert (quick_tour / src).is_file()
    assert "#top" in s["links"], f"{key} has no back-to-top link"
    assert s["math"] >= 1, f"{key}: no typeset equation"


def test_each_chapter_says_how_to_reproduce_it(quick_tour):
    html = (quick_tour / "index.html").read_text(encoding="utf-8")
    for key in experiments.EXPERIMENTS:
        assert f"<code>optimlab tour --only {key} --quick</code>" in html


def test_chapters_link_to_their_play_scene(page):
    """A chapter with a scene in optimlab play links to it (the links' scenes are checked in
    a browser by tests/play/test_tour_links.py)."""
    from optimlab.report.tour import PLAY_SCENES, play_link

    for key in experiments.EXPERIMENTS:
        links = page.sections[key]["links"]
        if key in PLAY_SCENES:
            assert play_link(key)[0] in links, key
        else:
            assert not any(link.startswith("http://127.0.0.1") for link in links), key


def test_every_equation_is_mathml_and_no_tex_is_left(quick_tour):
    html = (quick_tour / "index.html").read_text(encoding="utf-8")
    body = re.sub(r'alttext="[^"]*"', "", html)
    text = re.sub(r"<math.*?</math>", "", body, flags=re.S)
    assert "$" not in re.sub(r"<[^>]+>", "", text), "a $...$ was not typeset"
    assert "\\frac" not in text and "\\beta" not in text
    assert 'display="block"' in html and "<mfrac>" in html
    untypeset = set(re.findall(r">(\\[A-Za-z]+)<", body))  # a command the converter kept
    assert not untypeset, f"LaTeX commands left as text in MathML: {untypeset}"


def test_wording(page):
    text = " ".join("".join(page.text).split())
    for slip in (
        r"\b1 (steps|chapters|times|updates|crossings|minima)\b",
        r"in not within",
        r"within 0\.0%",
        r"\bnan\b",
        r"-1\.\d+e-1\d",  # a negative rounding error shown as a loss
    ):
        assert not re.search(slip, text), f"{slip!r} on the page: " + (
            re.search(slip, text).group(0)
        )


def test_offline_and_self_contained(quick_tour):
    html = (quick_tour / "index.html").read_text(encoding="utf-8")
    # the one kind of absolute link: optimlab play on this machine (127.0.0.1, never the net)
    outside = re.findall(r'(?:href|src)="((?:https?:)?//[^"]*)"', html)
    assert all(u.startswith("http://127.0.0.1:8765/?scene=") for u in outside), outside
    assert "<script" not in html  # no JavaScript at all
    images = sorted(p.name for p in (quick_tour / "figures").iterdir())
    assert images and all(f'src="figures/{name}"' in html for name in images)


def test_one_colour_per_optimizer_in_every_figure(quick_tour):
    colours = json.loads((quick_tour / "colors.json").read_text())
    seen = 0
    for chapter, entries in colours.items():
        for figure, label, colour in entries:
            name = base_name(label)
            if name is not None:
                seen += 1
                assert colour == OPTIMIZER_COLORS[name].lower(), (chapter, figure, label)
            else:
                assert colour not in {c.lower() for c in OPTIMIZER_COLORS.values()}, (
                    f"{chapter}/{figure}: {label!r} wears an optimizer's colour"
                )
    assert seen > 50


def test_a_table_cannot_have_a_row_that_disagrees_with_its_header():
    Table("ok", ["a", "b"], [[1, 2]])
    with pytest.raises(ValueError, match=r"row 1 has 3 cells but the header has 2 \(a, b\)"):
        Table("t", ["a", "b"], [[1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        Table("t", ["a", "b"], [[1]])
    with pytest.raises(ValueError, match="at least one column"):
        Table("t", [], [])
