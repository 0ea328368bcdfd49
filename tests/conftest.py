"""Shared test set-up.

Keras 3 runs on its JAX backend with 64-bit floats enabled, so that float64 comparisons against
Keras and optax are meaningful (Keras's torch backend rounds some factors through float32).
Both must be configured before the first import of keras or jax, hence here.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
