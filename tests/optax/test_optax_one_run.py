"""optimlab.optax runs a rule once per parameter where its step does not read the parameter
(``jax_engine.subtracts_step``: the update ``-d`` from a zero parameter), and of a branch
the step decides (RAdam's ``rectified``) selects only the outputs the branches compute
differently (the new parameter, not m and v): one pass, no host round trip.
The general path (the rule twice, ``_exact_update``) stays for the others and gives the same
bits where both apply."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab.optax as olx
from optimlab.engines import jax_engine
from optimlab.optax import _transform
from optimlab.rules import adam, asgd, radam, schedule_free_adamw

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "b": jnp.zeros(4)}


def _primitives(jaxpr, found=None) -> list:
    """Every primitive's name in ``jaxpr`` and in the jaxprs inside it (cond's branches),
    with "[]" appended where it computes an array (not a step number)."""
    found = [] if found is None else found
    for eqn in jaxpr.eqns:
        array = any(v.aval.shape for v in eqn.outvars if hasattr(v.aval, "shape"))
        found.append(eqn.primitive.name + ("[]" if array else ""))
        for value in eqn.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(inner, "jaxpr"):
                    _primitives(getattr(inner.jaxpr, "jaxpr", inner.jaxpr), found)
                elif hasattr(inner, "eqns"):
                    _primitives(inner, found)
    return found


def _update_primitives(tx) -> list:
    state = tx.init(PARAMS)
    return _primitives(
        jax.make_jaxpr(lambda g, s, p: tx.update(g, s, p))(PARAMS, state, PARAMS).jaxpr
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [(adam, True), (radam, True), (asgd, False), (schedule_free_adamw, False)],
)
def test_subtracts_step_reads_the_rules_update(rule, expected):
    tx = olx.FACTORIES[rule.__name__.rsplit(".", 1)[1]](0.01)
    state = tx.init(PARAMS)
    calls = []
    original = jax_engine.subtracts_step

    def spy(*arguments):
        calls.append(original(*arguments))
        return calls[-1]

    jax_engine.subtracts_step = spy
    try:
        jax.jit(tx.update)(PARAMS, state, PARAMS)
    finally:
        jax_engine.subtracts_step = original
    assert calls == [expected, expected]  # (one call per leaf, at trace time)


def test_adam_runs_its_rule_once_per_parameter():
    names = _update_primitives(olx.adamw(0.01, weight_decay=0.1))
    assert names.count("sqrt[]") == 2  # one sqrt(v) per leaf (the general path: 4)
    assert not any("callback" in n for n in names)


def test_radam_selects_only_the_parameter_between_its_branches():
    names = _update_primitives(olx.radam(0.01))
    # sqrt(v) once per leaf (the rectified branch), one select per leaf (the new parameter's:
    # m and v are alike in both branches); the rule twice with every output selected: 4, 14
    assert names.count("sqrt[]") == 2 and names.count("select_n[]") == 2
    assert not any("callback" in n for n in names)


def test_radam_gives_both_branches():
    """Steps 1..7 under jit: the first five momentum SGD, the rectified ones from the sixth,
    each the eager (NumPy-rounded) step within an ulp (XLA may contract a * b + c)."""
    tx = olx.radam(0.01)
    rng = np.random.default_rng(3)
    params = [jnp.asarray(rng.standard_normal(5))]
    grads = [[jnp.asarray(rng.standard_normal(5))] for _ in range(7)]
    jitted = jax.jit(tx.update)

    def run(update):
        p, s = params, tx.init(params)
        out = []
        for g in grads:
            u, s = update(g, s, p)
            p = optax.apply_updates(p, u)
            out.append(np.asarray(p[0]))
        return out

    with jax.disable_jit():
        eager = run(tx.update)
    for a, b in zip(run(jitted), eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=4e-7, atol=0)
    # the two branches do differ: a step with rectified=True is not momentum SGD
    assert not np.allclose(eager[5] - eager[4], eager[4] - eager[3], rtol=0.5)


def test_one_run_gives_the_general_paths_bits_with_decoupled_decay():
    """AdamW with decoupled decay on parameters from 1e-6 to 10 (where new - p is not exact:
    the step beside a tiny parameter), eagerly: the one run and the general path agree to the
    last bit, updates and state."""
    rng = np.random.default_rng(7)
    p = [jnp.asarray(np.geomspace(1e-6, 10.0, 40) * rng.choice([-1.0, 1.0], 40))]
    grads = [[jnp.asarray(rng.standard_normal(40))] for _ in range(3)]

    def run():
        tx = olx.adamw(0.05, weight_decay=0.3)
        params, state, out = p, tx.init(p), []
        for g in grads:
            u, state = tx.update(g, state, params)
            params = optax.apply_updates(params, u)
            out.append((np.asarray(u[0]), np.asarray(state.slots["v"][0])))
        return out

    with jax.disable_jit():
        one = run()
        original = jax_engine.subtracts_step
        jax_engine.subtracts_step = lambda *arguments: False
        try:
            general = run()
        finally:
            jax_engine.subtracts_step = original
    assert _transform._engine is jax_engine
    for (u1, v1), (u2, v2) in zip(one, general, strict=True):
        np.testing.assert_array_equal(u1, u2)
        np.testing.assert_array_equal(v1, v2)
