"""The JAX engine: a rule's own ``scalars`` and ``update`` run on ``jax.numpy`` values.

Shared by the two JAX faces, :mod:`optimlab.optax` (a GradientTransformation) and
:mod:`optimlab.keras` on Keras's JAX backend (an ``update_step`` inside the jitted train
step); it imports jax and nothing of optax or keras. Importing :mod:`optimlab` never imports
it (the engines registry, :data:`optimlab.engines.ENGINES`, holds the NumPy ones only).

As :func:`optimlab.torch._ops.torch_update` does for torch, the functions of a rule module are
re-created with the module's globals rebound (nothing is rewritten: the same code objects)::

    np     -> jax.numpy            (np.sqrt, np.abs, np.maximum, np.sign of the update),
                                   with np.errstate a no-op (JAX never warns)
    math   -> math with sqrt, isfinite = jax.numpy's   (the scalars' square roots, checks)
    where  -> jax.numpy.where      (rules._scalar.where: a choice between two step numbers)
    divide -> jax.numpy.divide     (rules._scalar.divide: IEEE's a / 0, without a warning)
    number -> an array of JAX's default float   (rules._scalar.number: float(x) on the host)

so that ``scalars(t, lr, ...)`` runs on a traced step count and learning rate under
``jax.jit`` (``beta ** t`` of a Python float and a traced integer is a JAX power), and
``update(p, g, *slots, *scalars)`` runs on whole JAX arrays.

A scalar that the step count decides and that the update reads with an ``if`` (RAdam's
``rectified``) is a traced boolean: :func:`run_update` runs the update once with the flag
False and once True and keeps, element by element, the branch the flag names
(``jnp.where``), so every element is computed by the very operations of the NumPy engine.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import types

import jax
import jax.numpy as jnp

_TRACED_MATH = types.SimpleNamespace(
    **{k: getattr(math, k) for k in dir(math) if not k.startswith("_")}
)
_TRACED_MATH.sqrt = jnp.sqrt
_TRACED_MATH.isfinite = jnp.isfinite


class _TracedNumpy(types.ModuleType):
    """``jax.numpy`` with ``errstate`` a no-op: a rule's ``with np.errstate(...)`` (NumPy's
    warnings of inf and NaN, which JAX never gives) runs on both engines."""

    def __getattr__(self, name):
        return getattr(jnp, name)

    @staticmethod
    def errstate(**_):
        return contextlib.nullcontext()


def _number(value):
    """rules._scalar.number under JAX: ``value`` in JAX's default float."""
    return jnp.asarray(value, jnp.result_type(float))


def _rounded_to(value, dtype):
    """rules._scalar.rounded_to under JAX: ``value`` rounded to ``dtype``, a JAX array."""
    return jnp.asarray(value).astype(dtype)


_OVERRIDES = {
    "np": _TracedNumpy("jax.numpy"),
    "math": _TRACED_MATH,
    "where": jnp.where,
    "divide": jnp.divide,
    "number": _number,
    "rounded_to": _rounded_to,
}
_NAMESPACES: dict = {}
_RULES_PACKAGE = "optimlab.rules"


def _of_rules(obj) -> bool:
    """Whether ``obj`` (a module or a function) belongs to :mod:`optimlab.rules`."""
    name = obj.__name__ if isinstance(obj, types.ModuleType) else obj.__module__
    return name == _RULES_PACKAGE or name.startswith(_RULES_PACKAGE + ".")


def rebound(rule) -> dict:
    """The rule module's namespace with ``np``, ``math``, ``where``, ``divide``, ``number``
    and ``rounded_to`` bound to JAX, and each function defined in the module re-created on it
    (memoized per rule). What the module takes from the other modules of
    :mod:`optimlab.rules` is rebound too (Muon's fallback calls Adam's ``scalars`` and
    ``update``): a helper with a JAX form (:data:`optimlab.engines.jax_tensor.KERNELS`,
    Newton-Schulz) is replaced by it, another function by its rebound copy, a module by a
    namespace of its rebound functions."""
    namespace = _NAMESPACES.get(rule)
    if namespace is None:
        from .jax_tensor import KERNELS

        source = vars(rule)
        namespace = dict(source)
        _NAMESPACES[rule] = namespace  # (before the helpers: a cycle finds it)
        namespace.update((k, v) for k, v in _OVERRIDES.items() if k in source)
        for name, obj in source.items():
            if name.startswith("__") or name in _OVERRIDES:
                continue
            if isinstance(obj, types.FunctionType) and obj in KERNELS:
                namespace[name] = KERNELS[obj]
            elif isinstance(obj, types.FunctionType) and obj.__globals__ is source:
                copy = types.FunctionType(
                    obj.__code__, namespace, obj.__name__, obj.__defaults__, obj.__closure__
                )
                copy.__kwdefaults__ = obj.__kwdefaults__
                namespace[name] = copy
            elif isinstance(obj, types.FunctionType) and _of_rules(obj):
                helper = rebound(sys.modules[obj.__module__])
                namespace[name] = helper.get(obj.__name__, obj)
            elif isinstance(obj, types.ModuleType) and _of_rules(obj) and obj is not rule:
                namespace[name] = types.SimpleNamespace(**rebound(obj))
        # (a function created above reads its globals at call time: the replacements hold)
    return namespace


def scalars(rule, t, lr, step_state, hyperparameters: dict):
    """``rule.scalars`` on JAX values: (the scalars, the advanced step state or None)."""
    function = rebound(rule)["scalars"]
    if getattr(rule, "STEP_STATE", None) is not None:
        return function(t, lr, step_state, **hyperparameters)
    return function(t, lr, **hyperparameters), None


def _is_flag(value) -> bool:
    return isinstance(value, jax.Array) and value.dtype == jnp.bool_


def run_update(rule, p, g, slots, numbers):
    """``rule.update(p, g, *slots, *numbers)`` on JAX arrays; returns ``(p, *slots)``.

    Numbers that are JAX arrays go in the parameter's dtype (as NumPy casts a Python float
    against a float32 array); a traced boolean (a branch the step decides) is run both ways
    and the branch it names kept."""
    update = rebound(rule)["update"]
    cast = []
    flags = []
    for k, value in enumerate(numbers):
        if _is_flag(value):
            flags.append(k)
            cast.append(value)
        elif isinstance(value, jax.Array):
            cast.append(value.astype(p.dtype))
        else:
            cast.append(value)
    if not flags:
        return update(p, g, *slots, *cast)
    result = None
    for choice in itertools.product((False, True), repeat=len(flags)):
        chosen = list(cast)
        taken = jnp.bool_(True)
        for k, value in zip(flags, choice, strict=True):
            chosen[k] = value
            taken = taken & (cast[k] if value else ~cast[k])
        branch = update(p, g, *slots, *chosen)
        if result is None:
            result = branch
        else:
            result = tuple(
                None if new is None else jnp.where(taken, new, old)
                for new, old in zip(branch, result, strict=True)
            )
    return result


# -- the dialect's gradient clipping on traced values (optimlab.clipping's formulas) ---------


def default_float():
    """The float dtype JAX computes Python floats in (float64 under jax_enable_x64)."""
    return jnp.result_type(float)


def l2_norm(grads):
    """sqrt(sum of squares) of ``grads`` in JAX's default float, as
    :func:`optimlab.clipping.l2_norm` (where the squares overflow: m * sqrt(sum((g / m)^2)),
    m the largest magnitude)."""
    wide = [jnp.ravel(g).astype(default_float()) for g in grads]
    total = sum(jnp.sum(g * g) for g in wide)
    m = jnp.max(jnp.stack([jnp.max(jnp.abs(g), initial=0.0) for g in wide]))
    safe = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    scaled = m * jnp.sqrt(sum(jnp.sum((g / safe) * (g / safe)) for g in wide))
    scaled = jnp.where((m > 0) & jnp.isfinite(m), scaled, m)
    return jnp.where(jnp.isinf(total), scaled, jnp.sqrt(total))


def norm_scale(norm, clip: float, style: str):
    """:func:`optimlab.clipping.norm_scale` on a traced norm: Keras c * min(1/n, 1/c) (1 for
    n = 0), PyTorch min(1, c / (n + 1e-6)), optax 1 if n < c else c / n."""
    if style == "keras":
        return jnp.where(norm > 0, clip * jnp.minimum(1.0 / norm, 1.0 / clip), 1.0)
    if style == "torch":
        return jnp.minimum(1.0, clip / (norm + 1e-6))
    return jnp.where(norm < clip, 1.0, clip / norm)
