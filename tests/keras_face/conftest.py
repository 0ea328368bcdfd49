"""Fixtures of the optimlab.keras tests: Keras in float64 for the package's tests only.

The suite's conftest runs Keras on its JAX backend with ``jax_enable_x64``; here floatx is
float64 too (Keras's learning-rate variable is a floatx variable: in float32 it would round
1e-3), and restored afterwards for the other tests of the process.
"""

import keras
import pytest


@pytest.fixture(scope="package", autouse=True)
def keras_float64():
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(previous)
