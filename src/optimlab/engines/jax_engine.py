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
(``jnp.where``), so every element is computed by the very operations of the NumPy engine;
an output both branches compute alike (RAdam's slots) is taken from one, so that XLA fuses
the step into one pass (a ``jax.lax.cond`` would run one branch, but XLA's CPU backend
runs a conditional's loops on one thread and copies the slots out of it: 3x slower).

:func:`subtracts_step` says whether a rule's new parameter is ``p - d`` (or ``p + d``) with
``d`` and every new slot free of ``p`` (read in the jaxpr of the update): the optax face then
runs the rule once, on a zero parameter, to get ``-d`` itself.
"""

from __future__ import annotations

import contextlib
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


def _split(numbers, dtype):
    """``(cast, flags)``: the numbers with each JAX array in ``dtype`` (a traced boolean kept),
    and the positions of the traced booleans."""
    cast, flags = [], []
    for k, value in enumerate(numbers):
        if _is_flag(value):
            flags.append(k)
            cast.append(value)
        elif isinstance(value, jax.Array):
            cast.append(value.astype(dtype))
        else:
            cast.append(value)
    return cast, flags


def _branches(update, flags, cast):
    """The update of each choice of the flags' values, in the order of
    ``index = sum(flag_k * 2^k)``: ``[(choice, function of (p, g, *slots)), ...]``."""
    branches = []
    for index in range(2 ** len(flags)):
        choice = tuple(bool(index >> k & 1) for k in range(len(flags)))
        chosen = list(cast)
        for k, value in zip(flags, choice, strict=True):
            chosen[k] = value
        branches.append((choice, lambda p, g, *slots, chosen=chosen: update(p, g, *slots, *chosen)))
    return branches


def run_update(rule, p, g, slots, numbers):
    """``rule.update(p, g, *slots, *numbers)`` on JAX arrays; returns ``(p, *slots)``.

    Numbers that are JAX arrays go in the parameter's dtype (as NumPy casts a Python float
    against a float32 array); where traced booleans (branches the step decides) are among
    them, the update runs once per choice of their values and each output keeps the branch
    they name (``jnp.where``), except an output every branch computes alike (RAdam's m and
    v: :func:`_alike`), taken from one branch: XLA then computes it once and reads it, as
    it does optax's, instead of copying the donated slots to compute them again."""
    update = rebound(rule)["update"]
    cast, flags = _split(numbers, p.dtype)
    if not flags:
        return update(p, g, *slots, *cast)
    branches = _branches(update, flags, cast)
    alike = _alike(rule, branches, p, g, slots, numbers)
    outputs = [jax.tree.flatten(f(p, g, *slots), is_leaf=lambda x: x is None) for _, f in branches]
    treedef = outputs[0][1]
    result = list(outputs[0][0])
    for (choice, _), (leaves, _) in zip(branches[1:], outputs[1:], strict=True):
        taken = jnp.bool_(True)
        for k, value in zip(flags, choice, strict=True):
            taken = taken & (cast[k] if value else ~cast[k])
        result = [
            old if same or old is None else jnp.where(taken, new, old)
            for old, new, same in zip(result, leaves, alike, strict=True)
        ]
    return tuple(jax.tree.unflatten(treedef, result))


def _expressions(closed) -> list:
    """A hashable expression of each output of the closed jaxpr ``closed`` (value numbering:
    a primitive, its parameters and its inputs' expressions; an input by its position, a
    closed-over value by its identity, a literal by its value and dtype)."""
    jaxpr = closed.jaxpr
    known = {v: ("in", k) for k, v in enumerate(jaxpr.invars)}
    known.update({v: ("const", id(c)) for v, c in zip(jaxpr.constvars, closed.consts, strict=True)})

    def of(v):
        if hasattr(v, "val"):  # (a Literal: unhashable)
            return ("literal", repr(v.val), str(v.aval.dtype))
        return known[v]

    for eqn in jaxpr.eqns:
        params = repr(sorted(eqn.params.items(), key=lambda item: item[0]))
        inputs = tuple(of(v) for v in eqn.invars)
        for k, out in enumerate(eqn.outvars):
            known[out] = hash((eqn.primitive.name, params, inputs, k))
    return [of(v) for v in jaxpr.outvars]


_ALIKE: dict = {}


def _alike(rule, branches, p, g, slots, numbers) -> list:
    """For each output leaf of the branches (None kept as a leaf), whether every branch
    computes it by the same expression of the same inputs (:func:`_expressions`); memoized
    on the rule and the arguments' shapes and dtypes."""
    key = _key(rule, p, g, slots, numbers)
    if key is not None and key in _ALIKE:
        return _ALIKE[key]
    shapes, exprs = None, []
    for _, function in branches:
        closed, shape = jax.make_jaxpr(
            lambda p, g, *slots, f=function: f(p, g, *slots), return_shape=True
        )(p, g, *slots)
        shapes = jax.tree.flatten(shape, is_leaf=lambda x: x is None)[0]
        exprs.append(iter(_expressions(closed)))
    alike = []
    for leaf in shapes:  # (a None output has no jaxpr output)
        if leaf is None:
            alike.append(True)
            continue
        first, *rest = (next(e) for e in exprs)
        alike.append(all(r == first for r in rest))
    if key is not None:
        _ALIKE[key] = alike
    return alike


def _key(rule, p, g, slots, numbers):
    """The memo key of the rule and its arguments (:func:`_signature`), None if unhashable."""
    try:
        key = (rule, _signature(p), *(_signature(v) for v in (g, *slots, *numbers)))
        hash(key)
    except TypeError:
        return None
    return key


_SUBTRACTS: dict = {}


def _signature(value):
    """A hashable stand-in of ``value`` for the memo of :func:`subtracts_step`: an array's
    shape and dtype, a Python number or flag itself."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    aval = jax.typeof(value)
    return (tuple(aval.shape), str(aval.dtype), bool(getattr(aval, "weak_type", False)))


def _is_p_minus_step(jaxpr) -> bool:
    """Whether the jaxpr of ``p -> (new p, *slots)`` reads its one input only as ``p - d``
    or ``p + d`` (d free of p), that being the first output, the other outputs free of p."""
    (p,) = jaxpr.invars
    result = None
    for eqn in jaxpr.eqns:
        reads = [v for v in eqn.invars if v is p]
        if not reads:
            continue
        if result is not None or len(eqn.invars) != 2 or len(reads) != 1:
            return False
        name = eqn.primitive.name
        other = eqn.invars[1] if eqn.invars[0] is p else eqn.invars[0]
        if not (name == "add" or (name == "sub" and eqn.invars[0] is p)):
            return False
        if getattr(other, "aval", None) is None or other.aval.shape != p.aval.shape:
            return False
        (out,) = eqn.outvars
        if out.aval.dtype != p.aval.dtype or out.aval.shape != p.aval.shape:
            return False
        result = out
    outs = jaxpr.outvars
    return (
        result is not None
        and outs[0] is result
        and all(v is not p and v is not result for v in outs[1:])
    )


def subtracts_step(rule, p, g, slots, numbers) -> bool:
    """Whether ``rule.update`` computes its new parameter as ``p - d`` (or ``p + d``), one
    rounding, with ``d`` and every new slot independent of ``p`` (in every branch of its
    flags), as Adam's ``p - lr * m / (sqrt(v) + eps)``; not Schedule-Free's (its step reads
    the parameter) nor a rule that rounds ``p`` first. Then ``run_update`` of a zero
    parameter gives ``0 - d = -d`` exactly and the same slots, and ``p + (-d)`` rounds as
    ``p - d`` does (IEEE: a - b is a + (-b)). Read at trace time from the jaxpr of the update
    (:func:`jax.make_jaxpr`, the other arguments closed over), memoized on the rule and the
    arguments' shapes and dtypes."""
    key = _key(rule, p, g, slots, numbers)
    if key is not None and key in _SUBTRACTS:
        return _SUBTRACTS[key]
    update = rebound(rule)["update"]
    cast, flags = _split(numbers, p.dtype)
    answer = True
    for _, function in _branches(update, flags, cast):
        jaxpr = jax.make_jaxpr(lambda p, f=function: f(p, g, *slots))(p).jaxpr
        if not _is_p_minus_step(jaxpr):
            answer = False
            break
    if key is not None:
        _SUBTRACTS[key] = answer
    return answer


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
