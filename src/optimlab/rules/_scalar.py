"""The helpers of the rules: a choice, ``where(condition, if_true, if_false)``, and, for the
step numbers of ``scalars``, ``divide`` and ``number``.

On the host's Python numbers (a rule's ``scalars``) it is ``if_true if condition else
if_false`` (both sides are computed, so neither may raise). On NumPy arrays (a rule's
``update`` on the reference engine) it is ``np.where``, element by element. It is a function,
not an ``if``, so that every engine runs the same code with its own choice:

* :mod:`optimlab.optax` binds the name to ``jax.numpy.where`` (a traced step count, JAX arrays);
* :mod:`optimlab.torch` binds it to ``torch.where`` in ``update`` (tensors);
* numba compiles it, in the fused engine's per-element kernels, to the conditional expression
  on single numbers, which LLVM turns into a vector select (``np.where`` itself would allocate
  an array per element there).

Each engine picks one of the two values as computed, unchanged, so ``where`` adds no rounding
anywhere. In an ``update``, at least one of the two values must be of the parameter's dtype (an
array, or in the kernels a scalar of that dtype); the other may be a scalar of the rule, which
the array's dtype absorbs (``np.where(c, x_float32, 0.0)`` is float32, as in torch and JAX).

Two more are for ``scalars`` only, so that the step numbers are computed by the same code on
the host (Python floats) and traced under ``jax.jit`` (:mod:`optimlab.engines.jax_engine` binds
both names to its own):

* ``divide(a, b)``: a / b with IEEE's answers where b = 0 (inf, or NaN for 0 / 0) and no
  warning; on the host a Python float (``np.divide`` under ``np.errstate``), under JAX
  ``jax.numpy.divide``, which answers so already;
* ``number(x)``: a step number computed in a narrower dtype (a NumPy scalar or 0-d array, as
  ``np.asarray(x, "float32") * y`` gives), or the step count, back as the engine's double:
  ``float(x)`` on the host, a JAX value of JAX's default float under JAX;
* ``rounded_to(x, dtype)``: a step number rounded to a narrower dtype, to compute on in that
  dtype (Adafactor's float32 1 - t^decay, as optax and Keras take it): a NumPy scalar of
  ``dtype`` on the host, a JAX array of ``dtype`` under JAX.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency of optimlab (the fused engine); the rules do not need it
    from numba.extending import overload
except ImportError:  # pragma: no cover
    overload = None


def where(condition, if_true, if_false):
    """``if_true`` where ``condition`` holds, else ``if_false``: element by element when
    ``condition`` is a NumPy array (``np.where``), else ``if_true if condition else
    if_false``."""
    if isinstance(condition, np.ndarray):
        return np.where(condition, if_true, if_false)
    return if_true if condition else if_false


if overload is not None:

    @overload(where)
    def _where_compiled(condition, if_true, if_false):
        """``where`` in numba's per-element kernels: the conditional expression (a select)."""

        def impl(condition, if_true, if_false):  # pragma: no cover (compiled by numba)
            return if_true if condition else if_false

        return impl


def divide(a, b):
    """a / b with IEEE's answers for b = 0 (inf, or NaN for 0 / 0), as Keras's tensors give,
    without a warning: a float for floats, an array for arrays (a sweep's learning rates)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(a, b)
    return float(out) if np.ndim(out) == 0 else out


def number(value):
    """``value`` (a NumPy scalar or 0-d array of any float dtype, or the step count) as a
    Python float."""
    return float(value)


def rounded_to(value, dtype):
    """``value`` (a Python or NumPy number) rounded to ``dtype`` once: a NumPy scalar of it,
    on which NumPy then computes in ``dtype`` (``np.float32(1) - w`` is a float32
    subtraction)."""
    return np.dtype(dtype).type(value)
