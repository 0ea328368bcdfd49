"""Keras 3's own optimizer tests, run against optimlab.keras as a real Keras optimizer.

:mod:`tests.keras_suite.face` binds the optimizer class names of each Keras test module to
the optimlab.keras classes (``preset="keras"``); everything else is Keras's own, so the
golden values, ``model.fit``, EMA, ``stateless_apply``, callback and serialization tests run
as Keras wrote them. :mod:`tests.keras_suite.face_registry` lists those that cannot apply
(skipped, with the reason) and those that fail on a documented difference (they must fail
that way: a fix shows). By default each module's first test of each kind of
:data:`face.DEFAULT_KINDS` runs (about 6 s on two cores); ``HYPOTHESIS_PROFILE=explore`` runs
every test. The count, every test::

    python -m tests.keras_suite --face keras
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from . import driver, face, face_registry

keras = pytest.importorskip("keras")
olk = pytest.importorskip("optimlab.keras")

TESTS = driver.collect()
IDS = {t.id for t in TESTS}
EVERY_TEST = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
#: the reason of the tests left to the explore run
EXPLORE = (
    "left to HYPOTHESIS_PROFILE=explore (by default each module's first test of each kind: "
    + ", ".join(face.DEFAULT_KINDS)
    + ")"
)


def _reason(test) -> str | None:
    return face_registry.NOT_APPLICABLE.get(test.id) or face.not_applicable(test)


DEFAULT = face.default_run([t for t in TESTS if _reason(t) is None])


def test_the_face_lists_name_only_collected_tests():
    listed = set(face_registry.NOT_APPLICABLE) | set(face_registry.DIFFERENCES)
    assert not set(face_registry.NOT_APPLICABLE) & set(face_registry.DIFFERENCES)
    stale = sorted(listed - IDS)
    assert not stale, f"listed Keras tests that the installed Keras no longer has: {stale}"


def test_every_class_with_a_keras_test_module_is_driven():
    """A class of optimlab.keras.CLASSES whose name Keras has is driven by its Keras module."""
    driven = {n for m in driver.MODULES if face.missing(m) is None for n in face.substitutes(m)}
    undriven = sorted(n for n in olk.CLASSES if hasattr(keras.optimizers, n) and n not in driven)
    assert not undriven, f"optimlab.keras classes with Keras tests that do not run: {undriven}"


def test_the_drive_fails_with_another_optimizer(monkeypatch):
    """The drive binds what it says: Keras's Adamax golden values refuse optimlab.keras.Adam."""
    golden_id = "adamax_test::AdamaxTest::test_correctness_with_golden"
    (golden,) = [t for t in TESTS if t.id == golden_id]
    face.run(golden, monkeypatch)
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        face.run(golden, monkeypatch, bind={"Adamax": olk.Adam})


@pytest.mark.parametrize("test", TESTS, ids=[t.id for t in TESTS])
def test_keras_face(test, monkeypatch):
    reason = _reason(test)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")
    difference = face_registry.DIFFERENCES.get(test.id)
    if not (EVERY_TEST or difference or test.id in DEFAULT):
        pytest.skip(EXPLORE)
    driver.run_documented(
        lambda: face.run(test, monkeypatch),
        test.id,
        difference and difference.failure,
        difference and f"documented difference ({difference.label}): {difference.why}",
        "face_registry.DIFFERENCES",
    )


@pytest.mark.parametrize("name", ["Adam", "Nadam"])
def test_eager_float32_steps_follow_keras(name):
    """Outside jit, in Keras's configuration, the bias corrections are Keras's: five float32
    updates of parameters at 0 (so the steps are the whole value) agree with Keras's to 4e-6
    relative. With an integer step count JAX's eager integer power made 1 - beta_2^t 32 ulps
    off by t = 300 and Adam's step size 1e-5 off Keras's at t = 3."""
    rng = np.random.default_rng(3)
    gradients = [rng.normal(size=64).astype("float32") for _ in range(5)]
    results = []
    with face.keras_configuration():
        for cls in (getattr(keras.optimizers, name), olk.CLASSES[name]):
            optimizer = cls(learning_rate=0.01)
            variable = keras.Variable(np.zeros(64, "float32"))
            for g in gradients:
                optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
            results.append(keras.ops.convert_to_numpy(variable))
    np.testing.assert_allclose(results[1], results[0], rtol=4e-6, atol=0)
