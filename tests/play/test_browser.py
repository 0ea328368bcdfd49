"""The `optimlab play` page in headless Chromium (Debian's chromium driven by Playwright),
against the real app on a live port: every scene loads with no console error and no sideways
scrolling on a phone, every control has a label, a slider's move redraws the paths with exactly
the API's numbers, a click on the map sets the start, a shared URL restores the scene, a bad
typed function shows the API's error on the page, the anatomy overlay shows the engine's step,
play/step move through the path, "copy code" gives the API's snippet, a click on the basin map
draws that start's path, and the race's screenshot (docs/play.png with
OPTIMLAB_UPDATE_SCREENSHOT=1).

Skips when chromium or Playwright is missing, unless OPTIMLAB_REQUIRE_BROWSER=1."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

DESKTOP, PHONE = (1280, 900), (375, 740)
SCENES = ("regression", "ewma", "race", "maps")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "play.png"
# Chromium logs every answer >= 400 as "Failed to load resource"; only the tests that send a
# refused request on purpose allow it
REFUSED = "Failed to load resource: the server responded with a status of 400"
FIVE = (
    "&opt=SGD,keras,learning_rate=0.001&opt=Momentum,keras,learning_rate=0.001"
    "&opt=NAG,keras,learning_rate=0.001&opt=RMSprop,keras,learning_rate=0.01"
    "&opt=Adam,keras,learning_rate=0.05"
)
RACE_500 = "?scene=race&surface=rosenbrock&steps=500" + FIVE


def api(base: str, path: str, body: dict | None = None) -> dict:
    """The API's own answer (what the page must draw), asked directly."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def api_error(base: str, path: str, body: dict) -> dict:
    """The API's error object for a request it refuses (status 400)."""
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    return json.loads(refused.value.read())["error"]


class Page:
    """A page of the app with its console problems collected."""

    def __init__(self, browser, base, search="", size=DESKTOP, **context):
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, **context
        )
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)  # fmt: skip
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}")
                     if r.failure != "net::ERR_ABORTED" else None)  # fmt: skip
        self.base = base
        self.page.goto(base + "/" + search, wait_until="load")
        self.page.evaluate("window.optimlabPlay.ready")
        self.settle()

    def settle(self):
        self.page.evaluate("window.optimlabPlay.settled()")

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def pixels(self, canvas_id):
        return self.js(f"document.getElementById('{canvas_id}').toDataURL()")

    def clean(self, allow=()):
        left = [p for p in self.problems if not any(a in p for a in allow)]
        assert not left, left

    def close(self):
        self.context.close()


@pytest.fixture
def opened(play_browser, play_url):
    pages: list[Page] = []

    def open_(search="", size=DESKTOP, **context):
        pages.append(Page(play_browser, play_url, search, size, **context))
        return pages[-1]

    yield open_
    for p in pages:
        p.close()


LAYOUT = """() => {
  const d = document.documentElement;
  const scene = document.querySelector('section.scene:not([hidden])');
  const shown = (e) => e.closest('[hidden]') === null;
  const controls = [...document.querySelectorAll('input, select, textarea')].filter(shown);
  const unlabelled = controls
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map(e => e.outerHTML.slice(0, 90));
  const nameless = [...document.querySelectorAll('button')].filter(shown)
    .filter(b => !b.textContent.trim() && !b.getAttribute('aria-label'))
    .map(b => b.outerHTML.slice(0, 90));
  const canvases = [...scene.querySelectorAll('canvas')].map(c => {
    const copy = document.createElement('canvas');
    copy.width = c.width; copy.height = c.height;
    const cc = copy.getContext('2d', {willReadFrequently: true});
    cc.drawImage(c, 0, 0);
    const x = cc.getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < x.length; i += 4 * 97) {
      colours.add((x[i] << 16) | (x[i + 1] << 8) | x[i + 2]);
    }
    return colours.size;
  });
  return {
    scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, scene: scene.id,
    controls: controls.length, unlabelled, nameless, canvases,
    tab: document.querySelector('nav.tabs a[aria-selected=true]').id,
    tour: document.getElementById('tour-link').textContent,
  };
}"""


@pytest.mark.parametrize("scene", SCENES)
def test_every_scene_loads_cleanly(opened, scene):
    page = opened(f"?scene={scene}", DESKTOP)
    for size in (DESKTOP, PHONE):
        page.page.set_viewport_size({"width": size[0], "height": size[1]})
        page.page.wait_for_timeout(50)  # the resize observer redraws at the next frame
        page.settle()
        info = page.js(LAYOUT)
        assert info["scene"] == f"scene-{scene}" and info["tab"] == f"tab-{scene}"
        assert info["scrollWidth"] <= info["clientWidth"], f"sideways scrolling at {size}: {info}"
        assert info["controls"] >= 4 and not info["unlabelled"], info["unlabelled"]
        assert not info["nameless"], info["nameless"]
        # every figure of the scene is drawn: many colours, not a blank canvas
        assert info["canvases"] and min(info["canvases"]) > 8, (size, info["canvases"])
        assert "tour" in info["tour"]
    assert page.js("window.optimlabPlay.scene().name") == scene
    page.clean()


def test_a_slider_redraws_the_paths_with_the_apis_numbers(opened, play_url):
    page = opened(RACE_500)
    before_runs = page.js("window.optimlabPlay.lastRuns()")
    before_pixels = page.pixels("race-map")
    assert [len(r["path"]) for r in before_runs] == [501] * 5
    adam = page.page.locator("#race-controls fieldset.optimizer").nth(4)
    slider = adam.get_by_label("learning rate")
    count = page.js("window.optimlabPlay.timings.length")
    slider.fill("300")  # a log slider over [1e-5, 10]: position 300 of 1000 is about 6.3e-4
    page.page.wait_for_function(f"window.optimlabPlay.timings.length > {count}", timeout=5000)
    page.settle()
    after_runs = page.js("window.optimlabPlay.lastRuns()")
    state = page.js("window.optimlabPlay.scene().state")
    lr = state["optimizers"][4]["hyperparameters"]["learning_rate"]
    assert lr == pytest.approx(10 ** (-5 + 0.3 * 6), rel=0.01)
    assert after_runs[4]["path"] != before_runs[4]["path"]
    assert after_runs[:4] == before_runs[:4]  # the others did not change
    # the drawn numbers are the API's, bit for bit
    direct = api(play_url, "/api/trajectories", {
        "surface": "rosenbrock", "steps": 500,
        "optimizers": [{"name": o["name"], "preset": o["preset"],
                        "hyperparameters": o["hyperparameters"]} for o in state["optimizers"]],
    })  # fmt: skip
    assert [r["path"] for r in direct["runs"]] == [r["path"] for r in after_runs]
    assert page.pixels("race-map") != before_pixels
    timing = page.js("window.optimlabPlay.timings.at(-1)")
    assert timing["event"] == "input" and 0 < timing["ms"] < 2000, timing
    page.page.wait_for_function(f"location.search.includes('learning_rate={lr}')", timeout=3000)
    page.clean()


def test_a_click_on_the_map_sets_the_start(opened, play_url):
    page = opened("?scene=race&surface=himmelblau&steps=50&opt=Adam,keras,learning_rate=0.1")
    surface = next(
        s for s in api(play_url, "/api/surfaces")["surfaces"] if s["name"] == "himmelblau"
    )
    (x0, x1), (y0, y1) = surface["domain"]
    box = page.page.locator("#race-map").bounding_box()
    margin = 6  # the map's frame inside its canvas
    fx, fy = 0.25, 0.3
    page.page.mouse.click(
        box["x"] + margin + fx * (box["width"] - 2 * margin),
        box["y"] + margin + fy * (box["height"] - 2 * margin),
    )
    page.page.wait_for_function("window.optimlabPlay.timings.some(t => t.event === 'click')")
    page.settle()
    start = page.js("window.optimlabPlay.lastRuns()[0].path[0]")
    pixel = (x1 - x0) / box["width"]
    assert start[0] == pytest.approx(x0 + fx * (x1 - x0), abs=2 * pixel)
    assert start[1] == pytest.approx(y1 - fy * (y1 - y0), abs=2 * pixel)
    assert start != surface["default_start"]
    assert page.js("window.optimlabPlay.scene().state.start") == start
    page.page.wait_for_function(f"location.search.includes('start={start[0]},{start[1]}')")
    page.clean()


def test_a_shared_url_restores_the_scene(opened, play_browser, play_url):
    search = (
        "?scene=race&surface=six_hump_camel&start=-1.5,0.8&steps=123&noise=0.2&seed=3"
        "&opt=NAG,torch,learning_rate=0.01,momentum=0.8"
        "&opt=Adam,keras,learning_rate=0.03,beta_1=0.7,schedule=ExponentialDecay;decay_steps=50;decay_rate=0.7;staircase=false"
        "&step=40&anatomy=1&focus=1"
    )
    page = opened(search)
    assert page.page.locator("#race-controls select").first.input_value() == "six_hump_camel"
    assert page.page.locator("#race-controls fieldset.optimizer").count() == 2
    runs = page.js("window.optimlabPlay.lastRuns()")
    assert [len(r["path"]) for r in runs] == [124, 124]
    assert runs[0]["path"][0] == [-1.5, 0.8] and runs[0]["preset"] == "torch"
    assert page.page.locator("#race-k-out").text_content() == "40 / 123"
    assert page.page.locator("#race-anatomy input[type=checkbox]").is_checked()
    assert page.js("window.optimlabPlay.anatomy().step") == 40
    # the page writes the URL it was given back (nothing lost), and a reload draws the same
    page.page.wait_for_timeout(400)
    assert page.js("location.search") == search
    page.page.reload(wait_until="load")
    page.js("window.optimlabPlay.ready")
    page.settle()
    assert page.js("window.optimlabPlay.lastRuns()") == runs
    # another scene, opened by its tab, is restored from its own URL too
    page.page.locator("#tab-ewma").click()
    page.settle()
    page.page.locator("#ewma-controls input[type=checkbox]").check()
    page.settle()
    page.page.wait_for_function("location.search.includes('bias=1')")
    shared = page.js("location.search")
    other = opened(shared)
    assert other.js("window.optimlabPlay.scene().name") == "ewma"
    assert other.js("window.optimlabPlay.scene().state.bias") is True
    assert other.js("window.optimlabPlay.answer().average") == page.js(
        "window.optimlabPlay.answer().average"
    )
    page.page.go_back()
    page.page.wait_for_function("window.optimlabPlay.scene().name === 'race'")
    page.clean()
    other.clean()


def test_a_bad_expression_shows_the_apis_error_on_the_page(opened, play_url):
    page = opened("?scene=race&f=x**2%2B10*y**2&steps=60&opt=Adam,keras,learning_rate=0.1")
    error = page.page.locator("#race-expression-error")
    assert not error.is_visible()
    good = page.js("window.optimlabPlay.lastRuns()")
    box = page.page.locator("#race-expression")
    box.fill("x**2 + zz*y")
    box.press("Enter")
    error.wait_for(state="visible", timeout=5000)
    expected = api_error(play_url, "/api/trajectories", {
        "expression": "x**2 + zz*y", "steps": 60, "optimizers": [{"name": "Adam"}]})  # fmt: skip
    assert expected["field"] == "expression"
    assert error.text_content() == expected["message"] and "zz" in expected["message"]
    assert page.js("window.optimlabPlay.lastRuns()") == good  # the old paths stay
    box.fill("sin(x)*y + x**2/4")
    page.page.locator("#race-expression-apply").click()
    page.page.wait_for_function(
        "document.getElementById('race-expression-error').textContent === ''", timeout=5000
    )
    page.settle()
    assert page.js("window.optimlabPlay.lastRuns()") != good
    assert "f=sin(x)*y" in page.js("location.search")
    page.clean(allow=[REFUSED])


def test_the_anatomy_overlay_shows_the_engines_step(opened, play_url):
    page = opened("?scene=race&surface=rosenbrock&steps=100" + FIVE + "&step=10")
    without = page.pixels("race-map")
    page.page.locator("#race-anatomy input[type=checkbox]").check()
    for focus, name in [(2, "NAG"), (4, "Adam")]:
        page.page.locator("#race-anatomy select").select_option(str(focus))
        page.page.wait_for_function(
            f"(window.optimlabPlay.anatomy() || {{}}).step === 10 && "
            f"document.getElementById('race-anatomy-text').textContent.includes('{name}')",
            timeout=5000,
        )
        page.settle()
        shown = page.js("window.optimlabPlay.anatomy()")
        state = page.js("window.optimlabPlay.scene().state")
        entry = state["optimizers"][focus]
        direct = api(play_url, "/api/anatomy", {
            "surface": "rosenbrock", "steps": 100, "step": 10,
            "optimizer": {"name": entry["name"], "preset": entry["preset"],
                          "hyperparameters": entry["hyperparameters"]},
        })  # fmt: skip
        assert shown == direct
        runs = page.js("window.optimlabPlay.lastRuns()")
        assert shown["point"] == runs[focus]["path"][10]
        assert shown["next_point"] == runs[focus]["path"][11]
        text = page.page.locator("#race-anatomy-text").text_content()
        if name == "NAG":
            assert shown["lookahead"] is not None and "look-ahead" in text
        else:
            assert shown["effective_lr"] is not None and "effective learning rate" in text
    assert page.pixels("race-map") != without
    page.clean()


def test_play_pause_and_step_move_through_the_path(opened):
    page = opened("?scene=race&surface=bowl&steps=400&opt=Momentum,keras,learning_rate=0.01")
    out = page.page.locator("#race-k-out")
    assert out.text_content() == "400 / 400"
    page.page.locator("#race-rewind").click()
    assert out.text_content() == "0 / 400"
    page.page.locator("#race-step").click()
    page.page.locator("#race-step").click()
    assert out.text_content() == "2 / 400"
    early = page.pixels("race-map")
    page.page.locator("#race-play").click()
    page.page.wait_for_function(
        "parseInt(document.getElementById('race-k-out').textContent) > 20", timeout=5000
    )
    page.page.locator("#race-play").click()  # pause
    paused = out.text_content()
    page.page.wait_for_timeout(300)
    assert out.text_content() == paused and paused != "400 / 400"
    assert page.pixels("race-map") != early
    assert f"step={paused.split(' ')[0]}" in page.js(
        "location.search"
    ) or page.page.wait_for_function(f"location.search.includes('step={paused.split(' ')[0]}')")
    page.clean()


def test_copy_code_gives_the_apis_snippet(opened, play_url):
    page = opened(
        "?scene=regression&batch=50&epochs=3&lr=0.2",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page.page.locator("#copy-code").click()
    page.page.wait_for_function(
        "document.getElementById('copy-status').textContent.includes('copied')"
    )
    copied = page.js("navigator.clipboard.readText()")
    code = page.js("window.optimlabPlay.answer().code")
    assert copied == code and "optimlab" in code
    page.page.locator("#show-code").click()
    assert page.page.locator("#code-text").input_value() == code
    page.clean()


def test_a_click_on_the_basin_map_draws_that_starts_path(opened, play_url):
    page = opened(
        "?scene=maps&surface=himmelblau&grid=32&steps=200&opt=Adam,keras,learning_rate=0.1"
    )
    basins = page.js("window.optimlabPlay.answer().basins")
    assert len(basins["basin"]) == 32 and len(basins["basin"][0]) == 32
    box = page.page.locator("#maps-basins").bounding_box()
    before = page.pixels("maps-basins")
    page.page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.25)
    page.page.wait_for_function("window.optimlabPlay.lastRuns().length === 1", timeout=5000)
    page.settle()
    run = page.js("window.optimlabPlay.lastRuns()[0]")
    i, j = page.js("window.optimlabPlay.scene().state.cell")
    assert run["path"][0] == [basins["x"][j], basins["y"][i]]
    assert j > 16 and i > 16  # right half, upper half
    index = basins["basin"][i][j]
    if index >= 0:  # the path ends at the minimum the map coloured this cell with
        point = basins["minima"][index]["point"]
        end = run["path"][-1]
        assert abs(end[0] - point[0]) + abs(end[1] - point[1]) < 0.1
    assert page.pixels("maps-basins") != before
    assert page.page.locator("#copy-code").is_enabled()
    page.clean()


def test_the_race_screenshot(opened):
    page = opened(RACE_500 + "&step=220&anatomy=1&focus=2", (1280, 1180))
    page.page.wait_for_function("(window.optimlabPlay.anatomy() || {}).step === 220")
    page.settle()
    image = page.page.screenshot(full_page=False)
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 50_000
    if os.environ.get("OPTIMLAB_UPDATE_SCREENSHOT") == "1":  # a 256-colour PNG: a third
        import io  # of the size, the same to the eye

        from PIL import Image

        with Image.open(io.BytesIO(image)) as shot:
            shot.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
                SCREENSHOT, optimize=True
            )
    page.clean()
