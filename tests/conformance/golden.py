"""Stored outputs of the peers (torch.optim, Keras 3, optax) for every conformance case.

Running 506 cases through three frameworks costs about four minutes of CPU, mostly JAX tracing,
and the answers cannot change while the pinned peer versions stay the same. So the suite keeps
each peer's final parameters (and EMA weights) in ``golden.json``, written by the peers
themselves with::

    python -m tests.conformance.golden          # runs every case live and rewrites the file

The suite uses a stored answer only when everything it depends on is unchanged: the installed
peer versions equal the recorded ones, and the case's problem (initial parameters and all 210
gradients) hashes to the recorded digest. Otherwise, or with ``OPTIMLAB_LIVE_PEERS=1``, it runs
the peer live. ``test_stored_answers_match_the_live_peers`` reruns a spread of stored cases live
on every run, so a stale or wrong file cannot pass unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

PATH = Path(__file__).with_name("golden.json")
PACKAGES = ("torch", "keras", "jax", "jaxlib", "optax")


def installed_versions() -> dict:
    """The installed peer versions (from package metadata: nothing is imported)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def digest(params0, grads, plan) -> str:
    """sha256 of a case's problem: the initial parameters, every gradient, the lr plan."""
    h = hashlib.sha256(repr(plan).encode())
    for array in [*params0, *(g for gs in grads for g in gs)]:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _stored() -> dict:
    if not PATH.exists():
        return {}
    data = json.loads(PATH.read_text())
    if data.get("versions") != installed_versions():
        return {}
    return data["cases"]


def _arrays(values, dtype, shapes):
    return [
        np.asarray(v, dtype=np.float64).astype(dtype).reshape(s)
        for v, s in zip(values, shapes, strict=True)
    ]


def stored(case, params0, grads, plan) -> dict | None:
    """The stored peer result of ``case`` ({"params", "ema"}), or None when it must run live."""
    if os.environ.get("OPTIMLAB_LIVE_PEERS") == "1":
        return None
    entry = _stored().get(case.id)
    if entry is None or entry["digest"] != digest(params0, grads, plan):
        return None
    dtype, shapes = params0[0].dtype, [p.shape for p in params0]
    ema = entry["ema"]
    out = {
        "params": _arrays(entry["params"], dtype, shapes),
        "ema": None if ema is None else _arrays(ema, dtype, shapes),
    }
    if "average" in entry:  # ASGD's averaged parameters
        out["average"] = _arrays(entry["average"], dtype, shapes)
    return out


def peer_result(case, params0, grads, plan) -> dict:
    """The peer's result: stored when valid, else run live (see the module docstring)."""
    from . import peers

    answer = stored(case, params0, grads, plan)
    if answer is None:
        answer = peers.run_peer(case.peer, case.optimizer, dict(case.options), params0, grads, plan)
    return answer


def _entry(result, params0, grads, plan) -> dict:
    def flat(arrays):
        return (
            None if arrays is None else [np.asarray(a, np.float64).ravel().tolist() for a in arrays]
        )

    entry = {
        "digest": digest(params0, grads, plan),
        "params": flat(result["params"]),
        "ema": flat(result["ema"]),
    }
    if "average" in result:  # only ASGD's entries have the key
        entry["average"] = flat(result["average"])
    return entry


def write() -> int:
    """Run every case live and rewrite ``golden.json``; returns the number of cases."""
    from . import peers
    from .cases import all_cases, make_problem
    from .test_conformance import plan_for

    cases = {}
    for case in all_cases():
        params0, grads = make_problem(case)
        plan = plan_for(case.optimizer)
        result = peers.run_peer(case.peer, case.optimizer, dict(case.options), params0, grads, plan)
        cases[case.id] = _entry(result, params0, grads, plan)
    data = {"versions": installed_versions(), "cases": cases}
    PATH.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    return len(cases)


if __name__ == "__main__":
    for key, value in {  # as tests/conftest.py sets them, before keras or jax is imported
        "KERAS_BACKEND": "jax",
        "JAX_ENABLE_X64": "1",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }.items():
        os.environ.setdefault(key, value)
    print(f"wrote {write()} cases to {PATH}")
