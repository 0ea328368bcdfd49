"""optimlab against torch.optim (2.13), Keras 3 (JAX backend, x64) and optax, case by case.

Deviation = max |ours - peer| / max |peer| per parameter tensor (the relative error in the
infinity norm), at the end of the 210 calls; float64 must stay within 1e-9, float32 within
1e-5. The EMA weights are compared too where the case keeps them.

The peers' answers come from ``golden.json`` when it is valid for the installed peer versions
and the case's problem, else from running the peer (``OPTIMLAB_LIVE_PEERS=1`` forces that);
a spread of cases is always rerun live against the stored answers (see ``golden.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import optimlab as ol

from . import golden, peers
from .cases import LEARNING_RATES, TOLERANCE, all_cases, make_problem

CASES = all_cases()


def plan_for(optimizer: str) -> peers.LrPlan:
    lr0, lr1 = LEARNING_RATES[optimizer]
    return peers.LrPlan(lr0=lr0, lr1=lr1)


def run_optimlab(case, params0, grads, plan):
    """The same protocol as the peers: lr0, then lr1 at call change_at, then the schedule."""
    opt = ol.get(case.optimizer, learning_rate=plan.lr0, preset=case.peer, **case.options)
    params = [p.copy() for p in params0]
    for call, g in enumerate(grads):
        if call == plan.change_at:
            opt.learning_rate = plan.lr1
        if call == plan.schedule_at:
            opt.learning_rate = ol.schedules.ExponentialDecay(
                plan.lr1, decay_steps=plan.decay_steps, decay_rate=plan.decay_rate
            )
        opt.apply(g, params)
    return {"params": params, "ema": opt.ema}


def deviation(ours, theirs) -> float:
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(b))) or 1.0
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))) / scale)
    return worst


@pytest.mark.conformance
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_peer(case, conformance_record):
    params0, grads = make_problem(case)
    plan = plan_for(case.optimizer)
    theirs = golden.peer_result(case, params0, grads, plan)
    ours = run_optimlab(case, params0, grads, plan)
    dev = deviation(ours["params"], theirs["params"])
    if case.options.get("use_ema"):
        assert theirs["ema"] is not None and ours["ema"] is not None
        dev = max(dev, deviation(ours["ema"], theirs["ema"]))
    moved = deviation(params0, theirs["params"])
    conformance_record(case, dev)
    assert moved > 1e-3, "the peer did not move the parameters: the case tests nothing"
    assert dev <= TOLERANCE[case.dtype], f"{case.id}: deviation {dev:.3e}"


# every 26th case: 18 cases spread over the peers, optimizers, options and dtypes
SPOT_CHECKS = CASES[::26]


@pytest.mark.conformance
@pytest.mark.parametrize("case", SPOT_CHECKS, ids=[c.id for c in SPOT_CHECKS])
def test_stored_answers_match_the_live_peers(case):
    params0, grads = make_problem(case)
    plan = plan_for(case.optimizer)
    stored = golden.stored(case, params0, grads, plan)
    if stored is None:
        pytest.skip("no stored answer applies here: test_matches_peer ran this peer live")
    live = peers.run_peer(case.peer, case.optimizer, dict(case.options), params0, grads, plan)
    tolerance = TOLERANCE[case.dtype] / 100
    assert deviation(stored["params"], live["params"]) <= tolerance
    if case.options.get("use_ema"):
        assert deviation(stored["ema"], live["ema"]) <= tolerance


def test_the_stored_answers_cover_every_case():
    """With the pinned peer versions installed, every case has a valid stored answer (else the
    suite silently pays for running the peers live: regenerate the file)."""
    if os.environ.get("OPTIMLAB_LIVE_PEERS") == "1":
        pytest.skip("OPTIMLAB_LIVE_PEERS=1: every peer runs live")
    if not golden._stored():
        pytest.skip(
            f"golden.json was written for other peer versions than {golden.installed_versions()}"
        )
    missing = []
    for case in CASES:
        params0, grads = make_problem(case)
        if golden.stored(case, params0, grads, plan_for(case.optimizer)) is None:
            missing.append(case.id)
    assert not missing, (
        f"{len(missing)} cases have no valid stored answer (e.g. {missing[0]}): run "
        "python -m tests.conformance.golden"
    )
