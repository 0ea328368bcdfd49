"""optimlab.optax's tensor-level factories, muon and adafactor: the state of slots shaped
unlike their parameter (Adafactor's factored rows and columns, Muon's second moment of the
non-matrices only), jit with a traced learning rate, float32 without x64 (Adafactor's
float32 step numbers traced), optax's own optimizers live, and the refusals."""

from __future__ import annotations

import inspect
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optimlab as ol
import optimlab.optax as olx

from . import runs

_rng = np.random.default_rng(21)
SHAPES = {"kernel": (4, 3), "bias": (5,), "scale": ()}
PARAMS = {k: _rng.standard_normal(s) for k, s in SHAPES.items()}
GRADS = [{k: _rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(4)]
#: the live runs of optax's own optimizers compile both (2 to 3 s each): under
#: HYPOTHESIS_PROFILE=explore (the stored peer answers of test_optax_face check the default
#: run against optax.contrib.muon and optax.adafactor)
explore_only = pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE") != "explore", reason="explore runs only (2-3 s each)"
)


def _shapes(tree):
    return {k: None if v is None else tuple(v.shape) for k, v in tree.items()}


def test_the_state_holds_slots_of_the_rules_shapes():
    state = olx.adafactor(0.1, preset="keras").init(PARAMS)  # the last two axes factored
    assert _shapes(state.slots["v_row"]) == {"kernel": (4,), "bias": None, "scale": None}
    assert _shapes(state.slots["v_col"]) == {"kernel": (3,), "bias": None, "scale": None}
    assert _shapes(state.slots["v"]) == {"kernel": None, "bias": (5,), "scale": ()}
    assert "m" not in state.slots  # (optax's momentum off)
    state = olx.muon(0.1).init(PARAMS)  # optax: NAdamW for the others
    assert _shapes(state.slots["m"]) == _shapes(PARAMS)
    assert _shapes(state.slots["v"]) == {"kernel": None, "bias": (5,), "scale": ()}


@pytest.mark.parametrize(("name", "preset"), [("Muon", "optax"), ("Adafactor", "optax")])
def test_jit_with_an_injected_learning_rate_is_the_dialect(name, preset):
    """Under jax.jit, the learning rate a traced hyperparameter (optax.inject_hyperparams):
    one trace, the dialect's numbers (float64)."""
    tx = optax.inject_hyperparams(olx.FACTORIES[name.lower()])(learning_rate=0.05, preset=preset)
    traces = [0]

    @jax.jit
    def step(params, state, grads):
        traces[0] += 1
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    state = tx.init(params)
    reference = ol.get(name, learning_rate=0.05, preset=preset, engine="reference")
    ours = [v.copy() for v in PARAMS.values()]
    for g in GRADS:
        params, state = step(params, state, {k: jnp.asarray(v) for k, v in g.items()})
        reference.apply([g[k].copy() for k in SHAPES], ours)
    assert traces[0] == 1
    assert runs.deviation([params[k] for k in SHAPES], ours) <= 1e-12


@pytest.mark.parametrize("preset", ["keras", "optax"])
def test_adafactor_float32_without_x64(preset):
    """JAX's 32-bit mode: the step count, beta_2 = 1 - t^decay and min(lr, 1/sqrt(t))
    traced in float32, within float32 rounding of the dialect's float32 run."""
    params0 = [PARAMS["kernel"].astype(np.float32), PARAMS["bias"].astype(np.float32)]
    grads = [[g["kernel"].astype(np.float32), g["bias"].astype(np.float32)] for g in GRADS]
    options = {"min_dim_size_to_factor": 2} if preset == "optax" else {}
    with jax.enable_x64(False):
        ours, _, traces = runs.run_face(olx.adafactor, preset, options, params0, grads, 0.05)
    reference, _ = runs.run_reference("Adafactor", preset, options, params0, grads, 0.05)
    assert traces == 1 and ours[0].dtype == np.float32
    assert runs.deviation(ours, reference) <= 1e-6


@explore_only
def test_optax_adafactor_itself_at_its_default_factoring():
    """optax.adafactor with its defaults (learning_rate None, factoring where the second
    largest axis has 128 entries) on a (130, 128) matrix and a vector, live."""
    rng = np.random.default_rng(4)
    params = {"w": jnp.asarray(rng.standard_normal((130, 128))), "b": jnp.ones(3)}
    grads = [jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape)), params)]
    grads = grads * 3
    results = []
    for tx in (olx.adafactor(), optax.adafactor()):
        p, state = params, tx.init(params)
        for g in grads:
            updates, state = jax.jit(tx.update)(g, state, p)
            p = optax.apply_updates(p, updates)
        results.append([np.asarray(p[k]) for k in ("w", "b")])
    assert runs.deviation(*results) <= 1e-12
    assert runs.deviation(results[0], [np.asarray(params[k]) for k in ("w", "b")]) > 1e-4


@explore_only
def test_optax_contrib_muon_itself():
    """optax.contrib.muon (Newton-Schulz for the kernel, NAdamW for the others), live."""
    params = {k: jnp.asarray(v) for k, v in PARAMS.items()}
    results = []
    for tx in (olx.muon(0.02), optax.contrib.muon(0.02)):
        p, state = params, tx.init(params)
        for g in GRADS:
            updates, state = jax.jit(tx.update)({k: jnp.asarray(v) for k, v in g.items()}, state, p)
            p = optax.apply_updates(p, updates)
        results.append([np.asarray(p[k]) for k in SHAPES])
    assert runs.deviation(*results) <= 1e-12


def test_refusals_change_nothing():
    """The dialect's refusals and messages: an argument out of range at the factory, and
    torch.optim.Muon's refusal of a parameter that is not a matrix at init (nothing made)."""
    with pytest.raises(ValueError, match=r"beta_2_decay.*0\.5"):
        olx.adafactor(0.1, beta_2_decay=0.5)
    with pytest.raises(ValueError, match=r"ns_steps.*\b0\b"):
        olx.muon(0.1, ns_steps=0)
    with pytest.raises(ValueError, match="weight_decay_mode must be 'decoupled'"):
        olx.muon(0.1, weight_decay_mode="l2")
    tx = olx.muon(0.1, preset="torch")
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(5,\)"):
        tx.init([jnp.ones((2, 2)), jnp.ones(5)])
    state = tx.init([jnp.ones((2, 2))])  # the same transformation still works
    assert _shapes(dict(enumerate(state.slots["m"]))) == {0: (2, 2)}


def test_optax_names_of_muon_and_adafactor():
    """optax.contrib.muon's beta, adam_b1, adam_b2 and optax.adafactor's eps,
    clipping_threshold, weight_decay_rate are taken for optimlab's names; both at once are
    refused."""
    params = {"w": jnp.asarray(PARAMS["kernel"])}
    grads = {"w": jnp.asarray(GRADS[0]["kernel"])}
    theirs = olx.adafactor(eps=1e-20, clipping_threshold=0.5, weight_decay_rate=0.1)
    ours = olx.adafactor(epsilon_1=1e-20, clip_threshold=0.5, weight_decay=0.1)
    other = olx.adafactor(epsilon_1=1e-20, weight_decay=0.1)  # (the names matter here)
    a, b, c = (
        np.asarray(tx.update(grads, tx.init(params), params)[0]["w"])
        for tx in (theirs, ours, other)
    )
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    names = inspect.signature(olx.muon).parameters
    assert {"beta", "adam_b1", "adam_b2", "eps"} <= set(names)
    with pytest.raises(TypeError, match="beta is optax's name of momentum"):
        olx.muon(0.1, beta=0.9, momentum=0.9)
