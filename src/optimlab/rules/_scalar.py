"""One helper of the rules' ``scalars``: a choice between two per-step numbers.

``where(condition, if_true, if_false)`` is ``if_true if condition else if_false`` on the host's
Python numbers (both sides are computed, so neither may raise). It is a function, not an
``if``, so that an engine whose step count is a traced value (:mod:`optimlab.optax`, under
``jax.jit``) can bind the name to ``jax.numpy.where`` and run the same ``scalars`` on it; the
NumPy, numba and torch engines get the very numbers an ``if`` gives.
"""

from __future__ import annotations


def where(condition, if_true, if_false):
    """``if_true`` when ``condition`` holds, else ``if_false``."""
    return if_true if condition else if_false
