"""The one headless chromium of a test session (Debian's chromium driven by Playwright's sync
API, which allows one running instance per process: the tour's and the play page's browser
tests share it).

Skips when chromium or Playwright is missing, unless OPTIMLAB_REQUIRE_BROWSER=1 (CI sets it,
after installing Debian's chromium), where their absence fails the test."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser_or_skip():
    """Playwright's ``sync_playwright``, or a skip (a failure under
    OPTIMLAB_REQUIRE_BROWSER=1) saying what is missing."""
    required = os.environ.get("OPTIMLAB_REQUIRE_BROWSER") == "1"
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright's Python package is not installed (pip install '.[test]')"
        sync_playwright = None
    if problem is None and not os.path.exists(CHROMIUM):
        problem = "no chromium at /usr/bin/chromium (apt-get install chromium)"
    if problem:
        if required:
            pytest.fail(f"OPTIMLAB_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return sync_playwright


class SessionBrowser:
    """Starts Playwright and chromium on first use, once per process; closed at the end."""

    def __init__(self) -> None:
        self._playwright = self._browser = None

    def get(self):
        if self._browser is None:
            sync_playwright = browser_or_skip()
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        return self._browser

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()
            self._browser = self._playwright = None
