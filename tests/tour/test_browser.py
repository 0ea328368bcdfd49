"""The quick tour in headless Chromium (Debian's chromium driven by Playwright): no console
errors, no sideways scrolling on a phone, every image loaded, the equations typeset by the
browser's own MathML engine, a table of contents that stays in view, a back-to-top link that
works.

Skips when chromium or Playwright is missing, unless OPTIMLAB_REQUIRE_BROWSER=1 (CI sets it,
after installing Debian's chromium), where their absence fails the test."""

from __future__ import annotations

import pytest

DESKTOP, PHONE = (1280, 900), (375, 740)


@pytest.fixture
def browser(chromium):
    return chromium


def _open(browser, quick_tour, size):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto((quick_tour / "index.html").as_uri(), wait_until="load")
    return page, problems


LAYOUT = """() => {
  const d = document.documentElement;
  const fracs = [...document.querySelectorAll('mfrac')].map(f => {
    const num = f.children[0].getBoundingClientRect(), den = f.children[1].getBoundingClientRect();
    return num.bottom <= den.top + 1 && num.height > 0 && den.height > 0;
  });
  const maths = [...document.querySelectorAll('math')];
  return {
    scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
    broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    images: document.images.length,
    fracs: fracs.length, fracsStacked: fracs.filter(Boolean).length,
    maths: maths.length,
    invisibleMath: maths.filter(m => m.getBoundingClientRect().width === 0).length,
    mathDisplay: getComputedStyle(maths[0]).display,
  };
}"""


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_page_renders_cleanly(browser, quick_tour, size):
    page, problems = _open(browser, quick_tour, size)
    info = page.evaluate(LAYOUT)
    assert not problems, problems
    assert info["scrollWidth"] <= info["clientWidth"], f"sideways scrolling: {info}"
    assert info["images"] > 30 and not info["broken"], info["broken"]
    assert info["maths"] > 100 and info["invisibleMath"] == 0
    assert info["fracs"] > 10 and info["fracsStacked"] == info["fracs"], (
        "MathML fractions are not typeset (numerator above denominator)"
    )
    assert info["mathDisplay"] in ("block", "block math", "inline", "inline math")
    page.close()


def test_the_contents_stay_in_view_and_back_to_top_works(browser, quick_tour):
    page, problems = _open(browser, quick_tour, DESKTOP)
    page.evaluate("document.getElementById('verdict').scrollIntoView({behavior: 'instant'})")
    page.wait_for_function("window.scrollY > 5000")
    box = page.locator("nav.toc").bounding_box()
    assert box is not None and 0 <= box["y"] < 5, f"the table of contents scrolled away: {box}"
    assert page.locator("nav.toc a[href='#momentum_quadratic']").is_visible()
    page.locator("#verdict a.top").click()
    page.wait_for_function("window.scrollY < 5", timeout=5000)
    page.close()
    phone, problems_phone = _open(browser, quick_tour, PHONE)
    assert not phone.locator("nav.toc").is_visible()
    phone.evaluate("document.getElementById('adam').scrollIntoView({behavior: 'instant'})")
    phone.wait_for_function("window.scrollY > 5000")
    bar = phone.locator("nav.phone").bounding_box()
    assert bar is not None and 0 <= bar["y"] < 2 and bar["height"] < 80, bar
    phone.locator("nav.phone summary").click()
    phone.locator("nav.phone a[href='#ewma']").click()
    phone.wait_for_function(
        "Math.abs(document.getElementById('ewma').getBoundingClientRect().top) < 80",
        timeout=5000,
    )
    phone.close()
    assert not problems and not problems_phone, problems + problems_phone
