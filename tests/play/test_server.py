"""The Starlette app: routes, content types, JSON errors (400/404/405/413), and garbage never
crashing it; serve()'s refusals."""

from __future__ import annotations

import json
import socket
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimlab.play import create_app, server

warnings.filterwarnings("ignore", category=DeprecationWarning)
from starlette.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(create_app(), raise_server_exceptions=False) as c:
            yield c


POSTS = ["grid", "trajectories", "anatomy", "sweep", "regression", "ewma"]


def test_get_routes_answer_json(client):
    for path in ("/api", "/api/surfaces", "/api/optimizers"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
    assert "trajectories" in r.text or client.get("/api").json()["endpoints"]


def test_trajectories_over_http_is_strict_json(client):
    body = {"surface": "rosenbrock", "steps": 30, "optimizers": [{"name": "SGD"}]}
    body["optimizers"][0]["hyperparameters"] = {"learning_rate": 0.5}  # diverges: inf losses
    r = client.post("/api/trajectories", json=body)
    assert r.status_code == 200
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert r.json()["runs"][0]["diverged_at"] is not None


def test_errors_are_json_with_status(client):
    r = client.post("/api/ewma", json={"beta": 2})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "beta" and "[0, 1)" in r.json()["error"]["message"]
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"]["field"] == "path"
    r = client.get("/api/trajectories")
    assert r.status_code == 405 and "error" in r.json()
    r = client.post("/api/ewma", content=b"{" + b" " * (server.MAX_BODY + 1) + b"}")
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    for raw in (b"", b"{", b"[1, 2]", b'"text"', b'{"beta": NaN}', b"\xff\xfe"):
        r = client.post("/api/ewma", content=raw)
        assert r.status_code == 400 and r.json()["error"]["field"] == "body", raw


def test_page_and_assets(client):
    index = server.STATIC / "index.html"
    r = client.get("/")
    if not index.is_file():
        assert r.status_code == 404
        return
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for path in sorted(server.STATIC.rglob("*")):
        if path.suffix in (".js", ".css") and path.is_file():
            r = client.get("/static/" + path.relative_to(server.STATIC).as_posix())
            assert r.status_code == 200
            want = "text/javascript" if path.suffix == ".js" else "text/css"
            assert r.headers["content-type"].startswith(want)
    assert client.get("/static/none.js").status_code == 404


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "surface",
        "expression",
        "optimizers",
        "optimizer",
        "steps",
        "start",
        "domain",
        "n",
        "kind",
        "grid",
        "step",
        "beta",
        "batch_size",
        "learning_rates",
        "betas",
        "signal",
        "initial",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(POSTS),
    body=st.dictionaries(_keys, _json, max_size=4) | _json,
)
def test_garbage_json_never_crashes(client, route, body):
    r = client.post(f"/api/{route}", json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        error = r.json()["error"]
        assert error["field"] and error["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(POSTS), raw=st.binary(max_size=200))
def test_garbage_bytes_never_crash(client, route, raw):
    r = client.post(f"/api/{route}", content=raw)
    assert r.status_code in (200, 400), r.text


def test_serve_refuses_a_busy_port_and_bad_arguments():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port}"):
            server.serve(port=port, open_browser=False)
    with pytest.raises(ValueError, match="scene"):
        server.serve(port=port, open_browser=False, scene="space")
    with pytest.raises(ValueError, match="port"):
        server.serve(port=70000, open_browser=False)
