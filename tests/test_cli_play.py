"""``optimlab play``: a real server process, its URL, its page, Ctrl-C, a port in use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from optimlab.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "optimlab", "play", "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_play_serves_the_page_and_stops_cleanly_on_ctrl_c():
    port = _free_port()
    server = _start(port)
    try:
        line = server.stdout.readline()
        assert line.strip() == f"optimlab play: http://127.0.0.1:{port}/  (Ctrl-C stops)"
        for _ in range(100):  # the line is printed just before uvicorn binds
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        assert b"<canvas" in page or b"<html" in page.lower()
        surfaces = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/surfaces", timeout=5).read()
        )
        assert "rosenbrock" in {s["name"] for s in surfaces["surfaces"]}
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
        assert "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_play_on_a_port_in_use_is_one_line_and_exit_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            main(["play", "--no-browser", "--port", str(port)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --port: " in err and str(port) in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv,flag", [(["--port", "70000"], "--port"), (["--scene", "moon"], "--scene")]
)
def test_play_refuses_bad_flags(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        main(["play", "--no-browser", *argv])
    assert info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_the_tour_is_served_at_tour_when_there_is_one(tmp_path):
    from starlette.testclient import TestClient

    from optimlab.play import create_app

    (tmp_path / "figures").mkdir()
    (tmp_path / "index.html").write_text("<html>the tour</html>")
    (tmp_path / "figures" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path.parent / "secret.txt").write_text("no")
    client = TestClient(create_app(tmp_path))
    assert client.get("/tour/").text == "<html>the tour</html>"
    assert client.get("/tour/figures/a.png").content == b"\x89PNG"
    assert client.get("/tour/../secret.txt").status_code == 404
    assert client.get("/tour/%2e%2e/secret.txt").status_code == 404
    missing = TestClient(create_app(tmp_path / "nowhere")).get("/tour/")
    assert missing.status_code == 200 and "optimlab tour" in missing.text


def test_every_asset_of_the_page_is_package_data():
    """A non-editable install ships what pyproject.toml's package-data names: every file the
    page needs must match one of its patterns (the wheel was checked to hold them)."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["optimlab"]
    package = root / "src" / "optimlab"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    assets = {p for p in (package / "play" / "static").rglob("*") if p.is_file()}
    assert assets and assets <= shipped, sorted(str(p) for p in assets - shipped)
    templates = set((package / "report" / "templates").glob("*"))
    assert templates <= shipped
