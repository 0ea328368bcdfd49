"""Keras 3's optimizer tests against ``optimlab.keras``: the real ``keras.optimizers.Optimizer``
subclasses, on Keras's own backend, variables and ops.

The same Keras test modules as :mod:`tests.keras_suite.driver` collects, with only the
optimizer class names of a module bound to the ``optimlab.keras`` classes (``preset="keras"``,
the default): ``Adam`` in ``adam_test``, ``SGD`` under Keras's own ``LossScaleOptimizer`` in
``loss_scale_optimizer_test``, and in the modules that reach the classes through
``keras.src.optimizers`` (``optimizers.Adam(...)``) a copy of that module whose classes are
``optimlab.keras``'s where it has them, and whose ``get`` builds them from Keras's names
(``get("adamw")``; Keras's ``Optimizer``, ``MultiOptimizer``, ``serialize``/``deserialize``
and schedules stay Keras's). ``backend``, ``ops``, ``layers``, ``models`` are Keras's own:
``model.fit``, the EMA, ``stateless_apply``, callbacks and serialization run as Keras wrote
them, each test in Keras's own configuration (:func:`keras_configuration`: JAX's 32-bit
mode, floatx float32) and with Keras's own ``skipif`` marks honoured (:func:`keras_skip`).

The optimizers come from :data:`optimlab.keras.CLASSES`, so a class added there joins the
drive of its Keras module (``driver.MODULES``) with no edit here.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import types
import unittest

import numpy as np
import pytest

from optimlab import naming

from . import driver

#: names a Keras test module uses that are Keras's own wrappers (kept), not optimizers
KERAS_WRAPPERS = ("LossScaleOptimizer", "schedules")
#: modules that reach the optimizer classes through ``keras.src.optimizers``
NAMESPACE = "optimizers"
#: Keras modules not driven against the face, and why
NOT_DRIVEN = {
    "optimizer_sparse_test": (
        "its parameter lists bind Keras's classes at import (optimizers.Adam, ... in "
        "TEST_CASES), before any substitution, and its sparse cases are TensorFlow's "
        "IndexedSlices or JAX's BCOO: optimlab.keras updates dense tensors"
    ),
}


def _olk():
    import optimlab.keras as olk

    return olk


def optimizer_names(module: str) -> tuple[str, ...]:
    """The optimizer class names ``module`` uses (``driver.MODULES`` less Keras's wrappers and
    the ``optimizers`` namespace)."""
    return tuple(n for n in driver.MODULES.get(module, ()) if n not in (*KERAS_WRAPPERS, NAMESPACE))


def missing(module: str) -> str | None:
    """Why ``module`` cannot run against optimlab.keras (an optimizer it tests has no
    optimlab.keras class yet), or None."""
    if module in NOT_DRIVEN:
        return NOT_DRIVEN[module]
    olk = _olk()
    for name in optimizer_names(module):
        if name not in olk.CLASSES:
            why = olk.NOT_YET.get(name, "no optimlab.keras class")
            return f"optimlab.keras.{name} does not exist yet: {why}"
    return None


def missing_in_params(test: driver.KerasTest) -> str | None:
    """Why a parameterized case of a namespace module (``test_pickleable_optimizers('ftrl')``)
    cannot run against optimlab.keras: its parameter names a Keras optimizer with no
    optimlab.keras class (``optimizers.get`` would build Keras's own), or None."""
    import keras

    olk = _olk()
    if NAMESPACE not in driver.MODULES.get(test.module, ()) or not test.params:
        return None
    for name in dir(keras.optimizers):
        value = getattr(keras.optimizers, name)
        if not (isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer)):
            continue
        if name not in olk.CLASSES and re.search(rf"'{name.lower()}'", test.params.lower()):
            why = olk.NOT_YET.get(name, "no optimlab.keras class")
            return f"optimlab.keras.{name} does not exist yet: {why}"
    return None


def not_applicable(test: driver.KerasTest) -> str | None:
    """Why ``test`` does not run against optimlab.keras, found from what it is (the
    registry's reasons aside): an optimizer without a class, Keras's own skip on this backend,
    or no optimizer in it at all; None when it runs."""
    why = missing(test.module) or missing_in_params(test) or keras_skip(test)
    if why is None and not touches_an_optimizer(test):
        from .face_registry import NO_OPTIMIZER

        why = NO_OPTIMIZER
    return why


def namespace():
    """``keras.src.optimizers`` with every class of :data:`optimlab.keras.CLASSES` in place of
    Keras's class of that name, and a ``get`` that builds them from Keras's names for them
    (``get("adamw")``, ``get({"class_name": "adamw", "config": {...}})``, any case); other
    identifiers go to Keras's ``get``."""
    import keras.src.optimizers as keras_optimizers

    classes = _olk().CLASSES
    by_name = {name.lower(): cls for name, cls in classes.items()}

    def get(identifier):
        if isinstance(identifier, str):
            identifier = {"class_name": identifier, "config": {}}
        if isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
            cls = by_name.get(identifier["class_name"].lower())
            if cls is not None:
                return cls.from_config(dict(identifier.get("config", {})))
        return keras_optimizers.get(identifier)

    copy = types.ModuleType(keras_optimizers.__name__, keras_optimizers.__doc__)
    copy.__dict__.update(
        {k: v for k, v in vars(keras_optimizers).items() if not k.startswith("__")}
    )
    copy.__dict__.update(classes, get=get)
    return copy


def substitutes(module: str) -> dict:
    """The names to bind in ``module``'s namespace."""
    olk = _olk()
    found = {name: olk.CLASSES[name] for name in optimizer_names(module)}
    if NAMESPACE in driver.MODULES.get(module, ()):
        found[NAMESPACE] = namespace()
    return found


def touches_an_optimizer(test: driver.KerasTest) -> bool:
    """Whether the test's source names a substituted optimizer class (a schedule test that
    builds no optimizer tests Keras alone, whatever is substituted)."""
    olk = _olk()
    source = inspect.getsource(getattr(test.case, test.method))
    patterns = [rf"\b{re.escape(n)}\b" for n in optimizer_names(test.module)]
    if NAMESPACE in driver.MODULES.get(test.module, ()):
        patterns += [rf"\b{re.escape(n)}\b" for n in olk.CLASSES]
        patterns.append(r"\boptimizers\.get\(")  # (a name: the namespace's get)
    return any(re.search(p, source) for p in patterns)


def keras_skip(test: driver.KerasTest) -> str | None:
    """The reason of Keras's own ``pytest.mark.skipif`` on the test method or its class, when
    its condition holds here (``backend.backend() != "tensorflow"``), else None: the driver
    calls the methods directly, so pytest would not see these marks."""
    marks = [
        *getattr(getattr(test.case, test.method), "pytestmark", []),
        *getattr(test.case, "pytestmark", []),
    ]
    for mark in marks:
        if mark.name == "skipif" and mark.args and bool(mark.args[0]):
            return f"Keras skips it on this backend: {mark.kwargs.get('reason', '')}"
    return None


#: the kinds of Keras test of the default run (a regex on the test's name and source): of each
#: kind, each module's first applicable test runs by default; every test runs with
#: HYPOTHESIS_PROFILE=explore (the single steps, weight decay, clipping, argument checks...)
DEFAULT_KINDS = {
    "golden values": r"golden",
    "model.fit": r"\.fit\(",
    "stateless_apply": r"stateless",
    "EMA": r"use_ema",
    "serialization": r"serializ|get_config|from_config",
}


def kinds(test: driver.KerasTest, *, by_name: bool = False) -> list[str]:
    """The :data:`DEFAULT_KINDS` of ``test`` (by its name alone with ``by_name``)."""
    text = test.id if by_name else test.id + inspect.getsource(getattr(test.case, test.method))
    return [kind for kind, pattern in DEFAULT_KINDS.items() if re.search(pattern, text)]


def default_run(tests) -> set[str]:
    """The ids of the default run among ``tests`` (the applicable ones, in Keras's order):
    per module, the first test of each kind of :data:`DEFAULT_KINDS`, one named for it
    first (``test_downscaling_stateless`` rather than the ``_stateful`` case of the same
    source, which Keras skips on JAX)."""
    chosen, seen = set(), set()
    for by_name in (True, False):
        for test in tests:
            for kind in kinds(test, by_name=by_name):
                if (test.module, kind) not in seen:
                    seen.add((test.module, kind))
                    chosen.add(test.id)
    return chosen


@contextlib.contextmanager
def keras_configuration():
    """Keras's own test configuration for the duration of a test: JAX's default 32-bit mode
    (the suite's conftest enables x64 for its float64 comparisons; Keras's tests are written
    for the default, and under x64 Keras's own optimizers fail some of them, e.g. its
    gradient accumulators come out float64 for float32 variables) and floatx float32."""
    import jax
    import keras

    previous = keras.config.floatx()
    keras.config.set_floatx("float32")
    try:
        with jax.enable_x64(False):
            yield
    finally:
        keras.config.set_floatx(previous)


def run(test: driver.KerasTest, monkeypatch, bind: dict | None = None) -> None:
    """Run ``test`` as Keras runs it, with only the optimizer names of its module bound to
    optimlab.keras (its setUp clears Keras's session); ``bind`` overrides some of them."""
    module = driver._module(test.module)
    for name, value in {**substitutes(test.module), **(bind or {})}.items():
        if name in vars(module):
            monkeypatch.setattr(module, name, value)
    naming.reset_names()
    np.random.seed(0)  # noqa: NPY002 - Keras's tests draw from NumPy's global generator
    case = test.case(test.method)
    with keras_configuration():
        case.setUp()
        try:
            getattr(case, test.method)()
        except unittest.SkipTest as skip:  # Keras's own self.skipTest(...) for this backend
            pytest.skip(f"not applicable: Keras skips it on this backend: {skip}")
        finally:
            case.tearDown()
            case.doCleanups()
