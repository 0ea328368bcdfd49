"""Runs shared by the optax tests: the conformance protocol (tests/conformance) through
optimlab.optax (one jitted step per call), and through the NumPy
dialect's reference engine."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optimlab as ol

from ..conformance import peers
from ..conformance.cases import LEARNING_RATES


def plan_for(optimizer: str) -> peers.LrPlan:
    lr0, lr1 = LEARNING_RATES[optimizer]
    return peers.LrPlan(lr0=lr0, lr1=lr1)


def schedule(plan: peers.LrPlan):
    """``plan.lr_for_call`` as an optax schedule of the (traced) count: lr0, lr1 from
    ``change_at``, then lr1 * rate^(count / decay_steps) from ``schedule_at``."""

    def lr(count):
        # (in JAX's default float: an int32 count divided by an int is float32)
        updates = jnp.asarray(count, jnp.result_type(float))
        decayed = float(plan.lr1) * float(plan.decay_rate) ** (updates / plan.decay_steps)
        return jnp.where(
            count < plan.change_at,
            float(plan.lr0),
            jnp.where(count < plan.schedule_at, float(plan.lr1), decayed),
        )

    return lr


def host_schedule(plan: peers.LrPlan):
    """The same plan as a Python callable of the update count, for the NumPy dialect."""
    return lambda step: plan.lr_for_call(step)


def run_face(factory, preset, options, params0, grads, lr, jit=True):
    """Feed every call's gradients to ``factory(lr, preset=..., **options)`` (one jitted step,
    called once per call); returns (the final parameters, the state, how many times the step
    was traced)."""
    tx = factory(lr, preset=preset, **options)
    traces = [0]

    def step(params, state, grads):
        traces[0] += 1  # a Python side effect: runs once per trace, not per call
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    run = jax.jit(step) if jit else step
    params = [jnp.asarray(p) for p in params0]
    state = tx.init(params)
    for gs in grads:
        params, state = run(params, state, [jnp.asarray(g) for g in gs])
    return [np.asarray(p) for p in params], state, traces[0]


def run_reference(cls_name, preset, options, params0, grads, lr):
    """The NumPy dialect (reference engine) on the same calls."""
    opt = ol.get(cls_name, learning_rate=lr, preset=preset, engine="reference", **options)
    params = [p.copy() for p in params0]
    for gs in grads:
        opt.apply(gs, params)
    return params, opt


def deviation(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs| per tensor (the conformance measure), the largest."""
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(b))) or 1.0
        worst = max(worst, float(np.max(np.abs(np.asarray(a, np.float64) - b))) / scale)
    return worst
