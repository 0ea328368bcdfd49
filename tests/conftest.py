"""Shared test set-up.

Keras 3 runs on its JAX backend with 64-bit floats enabled, so that float64 comparisons against
Keras and optax are meaningful (Keras's torch backend rounds some factors through float32).
Both must be configured before the first import of keras or jax, hence here.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from ._browser import SessionBrowser  # noqa: E402
from ._records import write as write_conformance_records  # noqa: E402

# Property tests: the same examples on every run by default, so that CI is reproducible;
# HYPOTHESIS_PROFILE=explore searches fresh random examples on each run.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    """The controlling process makes a fresh folder for the conformance records; xdist workers
    inherit it through the environment (they start after this hook)."""
    if not hasattr(config, "workerinput"):
        folder = tempfile.mkdtemp(prefix="optimlab-conformance-")
        os.environ["OPTIMLAB_CONFORMANCE_DIR"] = folder
        config._optimlab_conformance_dir = folder


@pytest.fixture(scope="session")
def chromium():
    """The session's headless chromium (tests/_browser.py), shared by every browser test."""
    browser = SessionBrowser()
    try:
        yield browser.get()
    finally:
        browser.close()


def pytest_sessionfinish(session, exitstatus):
    """Every process (each xdist worker, or the only one) saves its conformance records."""
    write_conformance_records()


_HOSTILE = {"tests": 0, "refused": 0, "accepted": 0}


def pytest_runtest_logreport(report):
    """Sum the hostile-input cases that tests/hostile/conftest.py attaches to each report."""
    counts = {k: v for k, v in report.user_properties if k.startswith("hostile_")}
    if report.when == "call" and counts:
        _HOSTILE["tests"] += 1
        _HOSTILE["refused"] += counts.get("hostile_refused", 0)
        _HOSTILE["accepted"] += counts.get("hostile_accepted", 0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The hostile-input case count; the largest deviation per peer and dtype over all
    conformance cases that ran."""
    if _HOSTILE["tests"]:
        cases = _HOSTILE["refused"] + _HOSTILE["accepted"]
        terminalreporter.write_line(
            f"hostile input: {cases} cases ({_HOSTILE['refused']} refused, "
            f"{_HOSTILE['accepted']} accepted) in {_HOSTILE['tests']} tests"
        )
    folder = getattr(config, "_optimlab_conformance_dir", None)
    if not folder or not os.path.isdir(folder):
        return
    results = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            results.extend(json.load(f))
    shutil.rmtree(folder, ignore_errors=True)
    if not results:
        return
    from tests.conformance.cases import KNOWN_LIMITS

    table = defaultdict(lambda: [0, 0.0, ""])
    for r in results:
        # a pairing with a documented limit (KNOWN_LIMITS) gets its own row
        limited = (r["optimizer"], r["peer"]) in KNOWN_LIMITS
        row = table[(r["peer"], r["dtype"], r["optimizer"] if limited else "")]
        row[0] += 1
        if r["deviation"] >= row[1]:
            row[1] = r["deviation"]
            row[2] = f"{r['optimizer']} {r['options'] or ''}"
    terminalreporter.section("conformance: largest deviation per peer")
    for (peer, dtype, limited), (count, worst, where) in sorted(table.items()):
        scope = f"{limited} only (KNOWN_LIMITS)" if limited else where
        terminalreporter.write_line(
            f"{peer:6s} {dtype:8s} {count:4d} cases  max deviation {worst:.2e}  ({scope})"
        )
    terminalreporter.write_line(f"total {len(results)} conformance cases")
    sources = defaultdict(int)
    for r in results:
        for key in ("source", "perturbed_source"):
            if r.get(key):
                sources[(key, r[key])] += 1
    if sources:

        def listed(which):
            counts = sorted((src, n) for (key, src), n in sources.items() if key == which)
            return ", ".join(f"{n} {src}" for src, n in counts)

        terminalreporter.write_line(
            f"peer answers: {listed('source')}; against the stored answers perturbed as by "
            f"another CPU: {listed('perturbed_source')}"
        )
