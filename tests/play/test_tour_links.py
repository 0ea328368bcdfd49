"""Every tour chapter's "Touch it" link opens the matching scene of `optimlab play` as the link
says: the scene, its surface and its optimizers, with no error on the page or in the console
(the links are the tour's own, from optimlab.report.tour.PLAY_SCENES)."""

from __future__ import annotations

from optimlab.lab import experiments
from optimlab.report.tour import PLAY_SCENES, PLAY_URL, play_link

from .test_browser import DESKTOP, Page


def test_every_link_names_a_chapter_and_the_play_address():
    assert set(PLAY_SCENES) <= set(experiments.EXPERIMENTS)
    assert PLAY_URL == "http://127.0.0.1:8765/"  # optimlab play's default host and port
    assert play_link("network_speed") is None


def test_every_chapter_link_opens_its_scene(play_browser, play_url):
    """One page, every link in turn (a fresh load each: the link is the whole scene)."""
    page = Page(play_browser, play_url, "", DESKTOP)
    wrong = []
    try:
        for key, (pairs, _) in PLAY_SCENES.items():
            url, _ = play_link(key)
            page.page.goto(play_url + "/" + url[len(PLAY_URL) :], wait_until="load")
            page.js("window.optimlabPlay.ready")
            page.settle()
            shown = page.js("window.optimlabPlay.scene()")
            wanted = dict(pairs)
            state = shown["state"]
            got = [shown["name"]]
            want = [wanted["scene"]]
            if wanted["scene"] == "race":
                got += [state["surface"], [o["name"] for o in state["optimizers"]]]
                want += [wanted["surface"], [v.split(",")[0] for k, v in pairs if k == "opt"]]
            errors = page.js(
                "[...document.querySelectorAll('.error')].map(e => e.textContent.trim())"
                ".filter(Boolean)"
            )
            if got != want or errors:
                wrong.append((key, got, want, errors))
        assert not wrong, wrong
        page.clean()
    finally:
        page.close()
