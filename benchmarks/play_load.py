"""Load benchmark of ``optimlab play``: 20 clients at once against a real uvicorn server.

Each client posts ``--requests`` trajectory requests (5 optimizers x 500 steps on Rosenbrock,
the page's slider case); prints the latency p50/p95/max, the throughput and the errors, plus
the server-side time of one such request, of a 64x64 basin map of 200 steps, and of the
largest requests the budgets allow for the costliest typed function (each under a second).

    PYTHONPATH=src python benchmarks/play_load.py [--clients 20] [--requests 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time

import httpx2 as httpx  # Starlette 1.x names httpx2 its HTTP client
import uvicorn

from optimlab.play import api, create_app

BODY = {
    "surface": "rosenbrock",
    "steps": 500,
    "optimizers": [
        {"name": n, "hyperparameters": {"learning_rate": 1e-3}}
        for n in ("SGD", "Momentum", "NAG", "RMSprop", "Adam")
    ],
}
BASINS = {
    "kind": "basins",
    "surface": "himmelblau",
    "grid": 64,
    "steps": 200,
    "optimizer": {"name": "Momentum", "hyperparameters": {"learning_rate": 0.002}},
}


def _costly(depth: int = 19) -> str:
    """The costliest gradient found within the parser's limits (tests/play/test_limits.py
    searches for it: 19 nested sin/tanh, times the same in y)."""
    inner = "x*y"
    for d in range(1, depth + 1):
        inner = ("sin" if d % 2 else "tanh") + f"({inner}+x)"
    return inner + "*" + inner.replace("x", "y")


COSTLY = _costly()


def _largest_costly_requests() -> list[tuple[str, dict, dict]]:
    """(what, endpoint, body) of the largest requests the budgets allow for :data:`COSTLY`."""
    from optimlab.play.expression import parse_expression
    from optimlab.play.requests import LIMITS, work_factor

    factor = work_factor(parse_expression(COSTLY).surface())
    opts = [{"name": n} for n in ("SGD", "Momentum", "NAG", "RMSprop", "Adam")]
    steps = min(LIMITS["steps"], LIMITS["trajectory_steps"] // (factor * len(opts)))
    k = LIMITS["steps"] // factor
    basin_steps = LIMITS["basin_work"] // (256 * factor)
    return [
        (f"trajectories 5 x {steps}", api.trajectories,
         {"expression": COSTLY, "start": [0.5, 0.5], "steps": steps, "optimizers": opts}),
        (f"anatomy at step {k}", api.anatomy,
         {"expression": COSTLY, "steps": k, "step": k, "optimizer": {"name": "Adam"}}),
        (f"basin map 16x16x{basin_steps}", api.sweep,
         {"kind": "basins", "expression": COSTLY, "grid": 16, "steps": basin_steps,
          "optimizer": {"name": "Adam"}}),
    ]  # fmt: skip


def _server_ms(function, body, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        function(body)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()

    print(f"server-side trajectories 5 x 500: {_server_ms(api.trajectories, BODY):.1f} ms (median)")
    print(f"server-side basin map 64x64x200: {_server_ms(api.sweep, BASINS, 3):.1f} ms (median)")
    for what, function, body in _largest_costly_requests():  # the target: under 1 s each
        ms = _server_ms(function, body, 3)
        print(f"server-side, the costliest typed function, {what}: {ms:.0f} ms (median)")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(args.clients)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            barrier.wait()
            for _ in range(args.requests):
                t = time.perf_counter()
                try:
                    r = http.post("/api/trajectories", json=BODY)
                    if r.status_code != 200:
                        errors.append(f"status {r.status_code}")
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                latencies.append((time.perf_counter() - t) * 1e3)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    srv.should_exit = True
    thread.join(timeout=5)
    q = statistics.quantiles(latencies, n=20)
    print(
        f"{args.clients} clients x {args.requests} requests: p50 {statistics.median(latencies):.0f}"
        f" ms, p95 {q[18]:.0f} ms, max {max(latencies):.0f} ms, throughput "
        f"{len(latencies) / wall:.1f} requests/s, errors {len(errors)}"
    )


if __name__ == "__main__":
    main()
