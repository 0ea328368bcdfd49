"""optimlab.optax: every elementwise optimizer as an optax.GradientTransformation.

The conformance protocol (tests/conformance: 210 seeded calls, a learning-rate change at 70 and
an exponential schedule from 140, here an optax schedule of the traced count) through
``optimlab.optax.<name>(preset=...)`` under ``jax.jit``, against

- the NumPy dialect's reference engine, ``optimlab.<Class>(preset=...)``: float64 within 1e-12
  (XLA contracts a * b + c into one fused multiply-add under jit, so the last bit may differ;
  run eagerly, each operation rounds as NumPy's and the iterates are identical, see
  ``test_eager_steps_are_bit_identical``), float32 within 1e-6 (within the measured
  FLOAT32_LIMITS and FLOAT32_OPTIMIZER_LIMITS where XLA's roundings accumulate beyond);
- the peer the preset names, from the stored answers of ``tests/conformance/golden.json``
  (optax run live where no stored answer is valid): float64 within 1e-12.

``OPTIMLAB_OPTAX_FULL=1`` runs every conformance case that optimlab.optax can express (552:
the elementwise optimizers and Lamb, both dtypes, without use_ema and gradient accumulation),
instead of the spread below (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optimlab as ol
import optimlab.optax as olx

from ..conformance import golden, peers
from ..conformance.cases import KNOWN_LIMITS, Case, all_cases, make_problem
from . import runs

TOLERANCE = {"float64": 1e-12, "float32": 1e-6}
#: float32 cases of the full grid (OPTIMLAB_OPTAX_FULL=1) beyond 1e-6, measured: XLA's fused
#: multiply-adds and its order of the norm's sum move the last float32 bit now and then, and
#: these two runs amplify such a bit over 210 steps (the peers themselves are 2.7e-6 and
#: 2.4e-6 from the reference engine there); every other float32 case is within 6.9e-7
FLOAT32_LIMITS = {
    "torch-Adadelta-clipnorm=1.0-float32": 4e-6,
    "torch-AdamW-weight_decay=0.1-float32": 2e-6,
}
#: float32 limits of whole optimizers beyond 1e-6, measured over their full grid (86 cases;
#: float64 within 9.2e-15 of the reference engine and 3.6e-15 of the peers there): ASGD's
#: p * decay - eta * g is one fused multiply-add under jit, and 210 SGD-like steps keep
#: every such bit (at most 2.2e-6); Schedule-Free's x = (y - (1 - beta_1) z) / beta_1 is a
#: product by the float32 reciprocal of beta_1 in XLA (3.6e-6); FTRL divides by the scalar lr
#: the same way, and its parameters are solved from the sum z, which float32 rounds by an
#: absolute 1e-9 (its Keras peer is 1.3e-5 off for the same reason: conformance KNOWN_LIMITS)
#: (8.3e-6)
FLOAT32_OPTIMIZER_LIMITS = {"ASGD": 3e-6, "ScheduleFreeAdamW": 5e-6, "Ftrl": 1.2e-5}
#: factories whose eager steps are within a few ulps of p (not bit for bit), and why
WITHIN_AN_ULP = {
    # the parameter is solved for (p' = (clip(z) - z) / quadratic), not p - step: optax's
    # p + (p' - p) need not give p' back; and XLA divides by the scalar lr as a product by
    # its reciprocal
    "ftrl": "p + (p' - p), a division by a scalar",
    # x = (y - (1 - beta_1) z) / beta_1: XLA divides by a scalar as a product by its
    # reciprocal (x / 0.9 in 4 of 10 elements an ulp off NumPy's), eagerly too
    "schedule_free_adamw": "a division by a scalar",
}
#: float64 cases whose reference engine models XLA's float32 sums only in part: Keras's
#: Adafactor takes its means in float32 (mean_dtype="float32"), which the face computes
#: with XLA's own reduction (as Keras does) and the reference engine in index order, exact
#: for the short axes only; a whole tensor's sum (RMS(p), RMS(U)) differs in the last
#: float32 bit now and then (the conformance limit of the reference against Keras, 2e-7)
#: Muon's Frobenius norm likewise (Keras's ops.norm in float32; the reference engine rounds
#: the exact norm to float32: 2e-8 against Keras)
REFERENCE_LIMITS = {"keras-Adafactor": 2e-7, "keras-Muon": 2e-8}
PEER_TOLERANCE = 1e-12  # float64, against the peer's own numbers
#: where the reference engine itself is further from the peer (tests/conformance KNOWN_LIMITS:
#: Keras's float32 norm of Muon's float64 matrices, Adafactor's float32 means, torch's
#: bfloat16 Newton-Schulz), that limit
PEER_LIMITS = {key: limits["float64"] for key, limits in KNOWN_LIMITS.items()}
PRESETS = ("optax", "keras", "torch")
NAMES = {cls.__name__: name for name, cls in olx.CLASSES.items()}
#: the dialect options a GradientTransformation has no place for (see optimlab.optax)
NOT_HERE = {"use_ema", "ema_momentum", "gradient_accumulation_steps"}


def _valid(optimizer: str, preset: str, options: dict) -> bool:
    try:
        ol.get(optimizer, learning_rate=0.01, preset=preset, **options)
    except (TypeError, ValueError):
        return False
    return True


def _spread() -> list[Case]:
    """Every optimizer x preset at its defaults (float64 under two presets, float32 under the
    third, rotating), and the pipeline's options (float64)."""
    cases = [
        Case(p, o, {}, "float32" if (j + k) % 3 == 2 else "float64")
        for k, o in enumerate(NAMES)
        for j, p in enumerate(PRESETS)
    ]
    # the pipeline's options (four runs: decay, maximize and the loss scale together, then
    # each clipping), each under an optimizer and a preset that rotate with it
    names = list(NAMES)
    pipeline = [
        {"weight_decay": 0.05, "maximize": True, "loss_scale_factor": 4.0},
        {"clipnorm": 1.0},
        {"global_clipnorm": 1.0},
        {"clipvalue": 0.3},
    ]
    for k, opts in enumerate(pipeline):
        optimizer, preset = names[(3 * k + 1) % len(names)], PRESETS[k % 3]
        if _valid(optimizer, preset, opts):
            cases.append(Case(preset, optimizer, dict(opts), "float64"))
    # the step numbers' choices of the rules whose scalars branch (each with a stored peer
    # answer): ASGD's averaging from t0 + 3 = 103, FTRL's exact zeros of l1 and its general
    # power, Schedule-Free's warmup across the learning-rate change and its decay
    cases += [
        Case("torch", "ASGD", {"t0": 100.0, "lambd": 0.01, "alpha": 1.0}, "float64"),
        Case("keras", "Ftrl", {"l1_regularization_strength": 20.0}, "float64"),
        Case("keras", "Ftrl", {"learning_rate_power": -0.3}, "float64"),
        Case("keras", "ScheduleFreeAdamW", {"warmup_steps": 20, "weight_decay": 0.05}, "float64"),
        Case(
            "optax",
            "ScheduleFreeAdamW",
            {"warmup_steps": 100, "warmup_dtype": "float32_fraction"},
            "float64",
        ),
    ]
    return cases


def _full() -> list[Case]:
    return [c for c in all_cases() if c.optimizer in NAMES and not set(c.options) & NOT_HERE]


CASES = _full() if os.environ.get("OPTIMLAB_OPTAX_FULL") == "1" else _spread()


def _peer_answer(case, params0, grads, plan):
    """The stored peer answer of this preset's peer, or optax live, or None."""
    peer_case = Case(case.peer, case.optimizer, dict(case.options), case.dtype)
    if peer_case.id not in {c.id for c in _conformance_ids()}:
        return None
    answer = golden.stored(peer_case, params0, grads, plan)
    if answer is None and case.peer == "optax":
        answer = peers.run_peer("optax", case.optimizer, dict(case.options), params0, grads, plan)
    return answer


_IDS: list = []


def _conformance_ids():
    if not _IDS:
        _IDS.extend(all_cases())
    return _IDS


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matches_the_reference_engine_and_the_peer(case):
    params0, grads = make_problem(case)
    plan = runs.plan_for(case.optimizer)
    factory = olx.FACTORIES[NAMES[case.optimizer]]
    ours, state, traces = runs.run_face(
        factory, case.peer, case.options, params0, grads, runs.schedule(plan)
    )
    assert traces == 1  # the schedule is traced once, never recompiled
    assert int(state.count) == len(grads)
    reference, _ = runs.run_reference(
        case.optimizer, case.peer, case.options, params0, grads, runs.host_schedule(plan)
    )
    limit = TOLERANCE[case.dtype]
    if case.dtype == "float64":
        limit = REFERENCE_LIMITS.get(f"{case.peer}-{case.optimizer}", limit)
    if case.dtype == "float32":
        limit = FLOAT32_LIMITS.get(case.id, FLOAT32_OPTIMIZER_LIMITS.get(case.optimizer, limit))
    assert runs.deviation(ours, reference) <= limit
    for a, p in zip(ours, params0, strict=True):
        assert a.dtype == p.dtype and a.shape == p.shape
    if case.dtype == "float64":
        answer = _peer_answer(case, params0, grads, plan)
        if answer is not None:
            limit = PEER_LIMITS.get((case.optimizer, case.peer), PEER_TOLERANCE)
            assert runs.deviation(ours, answer["params"]) <= limit


@pytest.mark.parametrize("name", list(olx.FACTORIES))
def test_eager_steps_are_bit_identical(name):
    """Without jit every JAX operation rounds once, as NumPy's: 4 steps (a learning-rate change
    after 2) give the reference engine's parameters and state to the last bit. (Without
    decoupled weight decay: p - lr * wd * p, then the rule's step, is two roundings that one
    update cannot always reproduce; it is then within an ulp.)"""
    cls = olx.CLASSES[name]
    k = list(olx.FACTORIES).index(name)
    preset, dtype = PRESETS[k % 3], ("float64", "float32")[k % 2]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params0 = [rng.standard_normal(6).astype(dtype)]
    grads = [[rng.standard_normal(6).astype(dtype)] for _ in range(4)]
    options = {"weight_decay": 0.0}
    with jax.disable_jit():
        ours, state, _ = runs.run_face(
            olx.FACTORIES[name],
            preset,
            options,
            params0,
            grads,
            lambda count: jnp.where(count < 2, 0.02, 0.01),
            jit=False,
        )
    reference, opt = runs.run_reference(
        cls.__name__, preset, options, params0, grads, lambda step: 0.02 if step < 2 else 0.01
    )
    # (a tensor rule's norms sum in XLA's order, not NumPy's: within an ulp of the norm; see
    # WITHIN_AN_ULP for the others)
    same = np.testing.assert_array_equal
    if getattr(cls.rule, "TENSOR", False):

        def same(a, b):
            np.testing.assert_allclose(a, b, rtol=4 * np.finfo(a.dtype).eps, atol=0)

    elif name in WITHIN_AN_ULP:

        def same(a, b):
            scale = 4 * np.finfo(a.dtype).eps * float(np.max(np.abs(params0[0])))
            np.testing.assert_allclose(a, b, rtol=4 * np.finfo(a.dtype).eps, atol=scale)

    same(ours[0], reference[0])
    slots = [n for n, kind in cls.rule.SLOTS if opt._slot_enabled(n, kind)]
    assert sorted(state.slots) == sorted(slots)
    for n, buffer in zip((n for n, _ in cls.rule.SLOTS), opt._slots[0], strict=True):
        if buffer is not None:
            same(np.asarray(state.slots[n][0]), buffer)
