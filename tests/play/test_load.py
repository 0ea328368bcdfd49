"""A bounded load test: a real uvicorn on a free port, 20 client threads at once, each a few
trajectory requests; every answer equals the direct API call and none fails."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx2 as httpx  # Starlette 1.x names httpx2 its HTTP client
import pytest
import uvicorn

from optimlab.play import api, create_app
from optimlab.play.jsonable import jsonable

CLIENTS = 20
REQUESTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_url():
    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=5)


def _body(i: int) -> dict:
    names = ["Adam", "Momentum", "NAG", "RMSprop", "Adagrad"]
    return {
        "surface": ["rosenbrock", "himmelblau", "ravine"][i % 3],
        "steps": 150 + 10 * (i % 4),
        "gradient_noise": 0.1 * (i % 2),
        "seed": i,
        "optimizers": [{"name": n, "hyperparameters": {"learning_rate": 1e-3}} for n in names],
    }


def test_twenty_clients_at_once_get_exact_answers(live_url):
    bodies = [_body(i) for i in range(CLIENTS * REQUESTS)]
    expected = [json.loads(json.dumps(jsonable(api.trajectories(b)))) for b in bodies]
    errors, answers = [], {}
    barrier = threading.Barrier(CLIENTS)

    def client(c: int) -> None:
        with httpx.Client(base_url=live_url, timeout=30) as http:
            barrier.wait()
            for r in range(REQUESTS):
                k = c * REQUESTS + r
                try:
                    resp = http.post("/api/trajectories", json=bodies[k])
                    if resp.status_code != 200:
                        errors.append((k, resp.status_code, resp.text[:200]))
                    else:
                        answers[k] = resp.json()
                except httpx.HTTPError as error:  # pragma: no cover - reported below
                    errors.append((k, repr(error)))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(answers) == len(bodies)
    for k, want in enumerate(expected):
        assert answers[k] == want, k
