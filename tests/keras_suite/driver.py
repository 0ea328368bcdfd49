"""Collect Keras 3's optimizer and schedule tests from the installed wheel and run one of them
against optimlab (the substitutions of :mod:`tests.keras_suite.adapters`).

Each Keras test is named ``<module>::<TestCase>::<method>`` (plus the parameters of an absl
parameterized case, e.g. ``optimizer_test::OptimizerTest::test_pickleable_optimizers('adam')``).
"""

from __future__ import annotations

import importlib
import re
import unittest
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from optimlab import naming

from . import adapters

PACKAGE = "keras.src.optimizers"

#: the Keras test modules driven here, and the names each one gets from the adapters
MODULES = {
    "sgd_test": ("SGD",),
    "adam_test": ("Adam",),
    "adamw_test": ("AdamW",),
    "adagrad_test": ("Adagrad",),
    "rmsprop_test": ("RMSprop",),
    "adadelta_test": ("Adadelta",),
    "adamax_test": ("Adamax",),
    "nadam_test": ("Nadam",),
    "lion_test": ("Lion",),
    "lamb_test": ("Lamb",),
    "adafactor_test": ("Adafactor",),
    "muon_test": ("Muon",),
    "ftrl_test": ("Ftrl",),
    "loss_scale_optimizer_test": ("LossScaleOptimizer", "SGD"),
    "multi_optimizer_test": ("optimizers",),
    "schedule_free_adamw_test": ("ScheduleFreeAdamW",),
    "optimizer_test": ("optimizers",),
    "schedules.learning_rate_schedule_test": ("schedules", "optimizers"),
}

#: Keras test modules of optimizers optimlab does not have yet (another issue's work)
FUTURE_MODULES = {
    "optimizer_sparse_test": "sparse gradients (IndexedSlices, sparse tensors): NumPy has none",
}


@dataclass(frozen=True)
class KerasTest:
    """One Keras test method."""

    module: str
    case: type
    method: str
    params: str

    @property
    def id(self) -> str:
        return f"{self.module}::{self.case.__name__}::{self.method_name}{self.params}"

    @property
    def method_name(self) -> str:
        """The method's name without absl's index suffix when it has parameters."""
        if not self.params:
            return self.method
        return self.method.rstrip("0123456789")


def _module(name: str):
    with warnings.catch_warnings():  # Keras's own pytest marks, unknown to this project
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return importlib.import_module(f"{PACKAGE}.{name}")


def collect() -> list[KerasTest]:
    """Every test method of the driven Keras modules and of the :data:`FUTURE_MODULES`
    (absl parameterized cases expanded)."""
    loader = unittest.TestLoader()
    found = []
    for name in [*MODULES, *FUTURE_MODULES]:
        module = _module(name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, unittest.TestCase)
                and obj.__module__ == module.__name__
            ):
                for method in loader.getTestCaseNames(obj):
                    params = getattr(getattr(obj, method), "__x_params_repr__", "")
                    found.append(KerasTest(name, obj, method, params))
    return found


def keras_test_modules() -> set[str]:
    """The names of the ``*_test`` modules the installed Keras ships for its optimizers."""
    import pkgutil

    package = importlib.import_module(PACKAGE)
    names = {m.name for m in pkgutil.iter_modules(package.__path__) if m.name.endswith("_test")}
    schedules = importlib.import_module(f"{PACKAGE}.schedules")
    names |= {
        f"schedules.{m.name}"
        for m in pkgutil.iter_modules(schedules.__path__)
        if m.name.endswith("_test")
    }
    return names


def run(test: KerasTest, monkeypatch) -> None:
    """Run ``test`` with the adapters in its module's namespace: its setUp (which clears
    Keras's session, hence optimlab's name counters too), the method, its cleanups."""
    module = _module(test.module)
    substitutes = {"backend": adapters.backend, "ops": adapters.ops}
    for name in MODULES[test.module]:
        substitutes[name] = getattr(adapters, name)
    for name, value in substitutes.items():
        if name in vars(module):
            monkeypatch.setattr(module, name, value)
    naming.reset_names()
    np.random.seed(0)  # noqa: NPY002 - Keras's tests draw from NumPy's global generator
    case = test.case(test.method)
    keras_check = case.run_class_serialization_test

    def serialization_test(instance, custom_objects=None):
        # Keras's own check; Keras's registry does not know optimlab's classes: name them
        known = {type(instance).__name__: type(instance), **(custom_objects or {})}
        return keras_check(instance, custom_objects=known)

    case.run_class_serialization_test = serialization_test
    case.setUp()
    try:
        getattr(case, test.method)()
    finally:
        case.tearDown()
        case.doCleanups()


def run_documented(run, test_id: str, failure: str | None, note: str, listed_in: str) -> None:
    """``run()`` one Keras test: with no documented ``failure`` it must pass; with one it must
    fail with an error matching that regex (then the test is an expected failure, ``note``
    saying why), and a pass fails, so that a fix shows (``listed_in``: the registry to edit)."""
    if failure is None:
        run()  # a new Keras test lands here: it must pass or be listed
        return
    try:
        run()
    except Exception as error:  # noqa: BLE001 - the failure is checked just below
        text = f"{type(error).__name__}: {error}"
        assert re.search(failure, text), (
            f"{test_id} fails otherwise than its documented difference ({failure!r}): {text}"
        )
        pytest.xfail(f"{note}: {text[:150]}" if note else text[:150])
    pytest.fail(f"{test_id} passes now: take it off {listed_in}")
