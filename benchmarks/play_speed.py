"""How fast does the `optimlab play` page answer a slider? Measured in Chromium, input event to
painted frame.

The page records, for every control event, the time from the event (its ``timeStamp``) to the
``requestAnimationFrame`` after the repaint that answers it (``window.optimlabPlay.timings``):
the request to the JSON API, the engine's runs, the JSON decode and the canvas drawing all
count. Two workloads, both on ``optimlab play`` in its own process on a free port, with Debian's
chromium driven by Playwright:

- the race, 5 optimizers x 500 steps on Rosenbrock: N clicks on the Adam learning-rate slider
  (each a trusted input event that moves the slider to a new value), one at a time (the page
  asks the API for the one run whose settings changed and reuses the other four), then N
  clicks on the gradient-noise slider (every run changes: all 5 x 500 steps are asked for);
  target under 100 ms;
- the basin map, 64 x 64 starts x 200 steps of Momentum on Himmelblau: M moves of the map's
  learning-rate slider; target under 1 s.

    python benchmarks/play_speed.py                 # 30 slider moves, 8 maps
    python benchmarks/play_speed.py --moves 60 --maps 12 --json out.json
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine, save_json  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RACE = (
    "?scene=race&surface=rosenbrock&steps=500"
    "&opt=SGD,keras,learning_rate=0.001&opt=Momentum,keras,learning_rate=0.001"
    "&opt=NAG,keras,learning_rate=0.001&opt=RMSprop,keras,learning_rate=0.01"
    "&opt=Adam,keras,learning_rate=0.05"
)
MAPS = "?scene=maps&surface=himmelblau&grid=64&steps=200&opt=Momentum,keras,learning_rate=0.005"
RACE_TARGET_MS, MAP_TARGET_MS = 100.0, 1000.0


def start_server() -> tuple[str, subprocess.Popen]:
    """``optimlab play --no-browser`` on a free localhost port, in its own process (as a user
    runs it: the server does not share this process's interpreter with Playwright's driver)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "optimlab", "play", "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    server.stdout.readline()  # the URL line, printed just before uvicorn binds
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/api", timeout=2).read()
            return base, server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"optimlab play did not answer on port {port}")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values by linear interpolation between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_CLICKS = [0]


def slider_moves(page, slider, count: int, event: str, api_path: str, timeout_ms: float):
    """Click `count` positions along `slider` (each a new value), one at a time; return the
    page's input-to-paint time (ms) of each, and the part of it spent waiting for the API
    (the last request to `api_path`: request sent to response received, from the browser's
    resource timing)."""
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    times, waits = [], []
    for _ in range(count):
        _CLICKS[0] += 1  # a new position every click (the same value would fire no input)
        fraction = 0.15 + 0.7 * ((_CLICKS[0] * 0.37) % 1.0)
        page.evaluate("performance.clearResourceTimings()")
        before = page.evaluate("window.optimlabPlay.timings.length")
        page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_function(
            f"window.optimlabPlay.timings.slice({before}).some(t => t.event === '{event}')",
            timeout=timeout_ms,
        )
        page.evaluate("window.optimlabPlay.settled()")
        new = page.evaluate(f"window.optimlabPlay.timings.slice({before})")
        times.extend(t["ms"] for t in new if t["event"] == event)
        wait = page.evaluate(
            "(path) => performance.getEntriesByType('resource').filter(e => e.name.endsWith(path))"
            ".map(e => e.responseEnd - e.startTime).at(-1)",
            api_path,
        )
        if wait is not None:
            waits.append(wait)
    return times, waits


def summary(name: str, times: list[float], waits: list[float], target: float) -> dict:
    """Median, p95 and extremes of `times` (ms), the median API wait, and the target."""
    result = {
        "workload": name,
        "n": len(times),
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
        "min_ms": min(times),
        "max_ms": max(times),
        "median_api_wait_ms": statistics.median(waits) if waits else None,
        "target_ms": target,
    }
    verdict = "meets" if result["median_ms"] < target else "MISSES"
    print(
        f"{name}: median {result['median_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
        f"(min {result['min_ms']:.1f}, max {result['max_ms']:.1f}; n = {len(times)}): "
        f"{verdict} the {target:.0f} ms target"
    )
    if waits:
        print(f"  of which waiting for the API (median): {result['median_api_wait_ms']:.1f} ms")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30, help="slider moves on the race")
    parser.add_argument("--maps", type=int, default=8, help="basin maps")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    base, server = start_server()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {machine()}; Python {platform.python_version()}; load average {load:.1f}")
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/" + RACE, wait_until="load")
        page.evaluate("window.optimlabPlay.ready")
        page.evaluate("window.optimlabPlay.settled()")
        adam = page.locator("#race-controls fieldset.optimizer").nth(4)
        slider = adam.get_by_label("learning rate")
        slider_moves(page, slider, 3, "input", "/api/trajectories", 10_000)  # warm up
        times, waits = slider_moves(page, slider, args.moves, "input", "/api/trajectories", 10_000)
        results.append(summary("race, one optimizer's learning rate (5 x 500 steps shown, "
                               "the changed run asked)", times, waits, RACE_TARGET_MS))  # fmt: skip
        noise = page.get_by_label("gradient noise")
        times, waits = slider_moves(page, noise, args.moves, "input", "/api/trajectories", 10_000)
        results.append(summary("race, the gradient-noise slider (all 5 x 500 steps asked)",
                               times, waits, RACE_TARGET_MS))  # fmt: skip
        page.goto(base + "/" + MAPS, wait_until="load")
        page.evaluate("window.optimlabPlay.ready")
        page.evaluate("window.optimlabPlay.settled()")
        card = page.locator("#maps-controls fieldset.optimizer")
        slider = card.get_by_label("learning rate")
        slider_moves(page, slider, 1, "map", "/api/sweep", 20_000)
        times, waits = slider_moves(page, slider, args.maps, "map", "/api/sweep", 20_000)
        results.append(summary("basin map: 64 x 64 starts x 200 steps, input to paint", times,
                               waits, MAP_TARGET_MS))  # fmt: skip
        browser.close()
    server.send_signal(signal.SIGINT)
    server.wait(timeout=20)
    if args.json:
        save_json(args.json, {"machine": machine(), "load": load, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
