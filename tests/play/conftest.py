"""Fixtures of the play page's browser tests: the real app (``optimlab.play.create_app``) under
uvicorn on a free port in a background thread, and Debian's chromium driven by Playwright.

The browser fixture follows the tour's pattern (``tests/tour/test_browser.py``): it skips when
chromium or Playwright is missing, unless OPTIMLAB_REQUIRE_BROWSER=1 (CI), where their absence
fails the test."""

from __future__ import annotations

import socket
import threading
import time

import pytest

SERVER_START_S = 10.0


@pytest.fixture(scope="session")
def play_url():
    """The base URL ("http://127.0.0.1:PORT") of a live `optimlab play` server (the real app,
    in a daemon thread); stopped at the end of the session."""
    uvicorn = pytest.importorskip("uvicorn")
    from optimlab.play import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"the play server did not start on port {port} within {SERVER_START_S} s")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture(scope="session")
def play_browser(chromium):
    """The session's headless chromium (tests/conftest.py: one per process, shared with the
    tour's browser tests; skipped or failed as they are)."""
    return chromium
