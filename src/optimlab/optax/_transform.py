"""An optimlab optimizer as an ``optax.GradientTransformation``.

:func:`transformation` builds the NumPy dialect's optimizer (``optimlab.<Class>(preset=...,
...)``) once, for its checks and its resolved configuration only: every argument meets the
dialect's validators and presets (:mod:`optimlab.presets`) with the dialect's messages, and a
refused call builds nothing. The transformation then runs, per update, the dialect's pipeline
(:mod:`optimlab.optimizer_pipeline`) on JAX arrays, in the dialect's order::

    g = g / loss_scale_factor
    g = -g                                     (maximize)
    clip: clipnorm | global_clipnorm | clipvalue, in the preset's formula (optimlab.clipping)
    g = g + wd * p (weight_decay_mode "l2")  or  p = p - lr * wd * p ("decoupled")
    p', slots' = rule.update(p, g, *slots, *rule.scalars(t, lr, ...))   (engines.jax_engine)
    update = p' - p,  count = count + 1

``t`` is the 1-based number of the update and ``lr`` the learning rate at ``count`` (a float,
or an optax schedule called with the traced count, as optax's ``scale_by_learning_rate``
does). ``optax.apply_updates(params, update)`` adds the update back to ``p``, and the new
parameter is ``p'`` to the last bit wherever IEEE arithmetic allows:

- a rule whose new parameter is ``p - d``, d and the slots free of p (SGD, Adam, RAdam, ...:
  :func:`optimlab.engines.jax_engine.subtracts_step`, read from the rule's jaxpr at trace
  time) runs once, on a zero parameter: its ``0 - d = -d`` is the update, and p + (-d) rounds
  as p - d does (with decoupled decay q = p - lr wd p first: the better of q - d - p and
  -d + (q - p), see :func:`_stepped`);
- another (ASGD, Schedule-Free: the step reads p) runs on p, and again on a zero parameter
  for the second candidate (:func:`_exact_update`): ``p' - p`` is exact where p' and p are
  within a factor 2 (Sterbenz's lemma), the step from zero where the step dwarfs p;
- a tensor rule and FTRL (its p' is solved for) take ``p' - p``.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import presets
from .._validation import check_choice, show
from ..engines import jax_engine as _engine
from ..engines.jax_engine import default_float as _default_float
from ..engines.jax_engine import l2_norm as _l2_norm
from ..engines.jax_engine import norm_scale as _norm_scale
from ..optimizer import COMMON_HYPERPARAMETERS
from ..rules import schedule_free_adamw as _schedule_free

#: the nan_policy values a traced step can honour ("raise" would need the host)
NAN_POLICIES = ("propagate", "skip")
#: optax's names of optimlab's hyperparameters (``b1`` is ``beta_1``, ...)
OPTAX_NAMES = {
    "b1": "beta_1",
    "b2": "beta_2",
    "eps": "epsilon",
    "eps_root": "epsilon_root",
    "decay": "rho",
}
#: optax's names of one optimizer's hyperparameters, beyond OPTAX_NAMES (optax.contrib.muon's
#: beta, adam_b1, adam_b2; optax.adafactor's eps, clipping_threshold, weight_decay_rate,
#: dtype_momentum is not one: optimlab's momentum_dtype takes "float32" or None)
OPTAX_NAMES_OF = {
    "Muon": {"beta": "momentum", "adam_b1": "adam_beta_1", "adam_b2": "adam_beta_2"},
    "Adafactor": {
        "eps": "epsilon_1",
        "clipping_threshold": "clip_threshold",
        "weight_decay_rate": "weight_decay",
    },
}


def optax_names(kind: str) -> dict:
    """optax's name -> optimlab's, of the optimizer ``kind`` (a dialect class name)."""
    return {**OPTAX_NAMES, **OPTAX_NAMES_OF.get(kind, {})}


#: dialect options a per-step transformation does not take, with what to use instead
_NOT_HERE = {
    "use_ema": "keep the average with optax.incremental_update(params, ema_params, "
    "1 - ema_momentum) after each update",
    "gradient_accumulation_steps": "wrap the transformation in optax.MultiSteps",
}


class _PresetDefault:
    """The default of an argument not given: the preset's (``optimlab.presets.DEFAULTS``)."""

    def __repr__(self) -> str:
        return "<the preset's>"


_UNSET = _PresetDefault()


class ScaleByRuleState(NamedTuple):
    """The state of an optimlab transformation: ``count`` (int32, the updates applied),
    ``slots`` (the rule's state buffers by name, each a pytree like the parameters: a leaf in
    the shape the rule's ``slot_shape`` gives, Adafactor's factored rows and columns, and
    None where a parameter has no such buffer),
    ``step_state`` (the rule's per-step numbers carried between steps, as Nadam's momentum
    product; ``()`` for most rules) and ``constants`` (numbers a function of the state
    needs besides the update: Schedule-Free's ``b1`` for :func:`schedule_free_eval_params`,
    as in optax's ``ScheduleFreeState``; ``{}`` for the others)."""

    count: jax.Array
    slots: dict
    step_state: tuple
    constants: dict = {}  # noqa: RUF012 (a NamedTuple's default, never mutated)


def _find_state(state, key: str):
    """The ScaleByRuleState with ``key`` among its constants in ``state`` (itself, or inside
    optax's wrappers: ``inject_hyperparams``'s inner state, ``chain``'s tuple), or None."""
    if isinstance(state, ScaleByRuleState):
        return state if key in state.constants else None
    inner = getattr(state, "inner_state", None)
    if inner is not None:
        return _find_state(inner, key)
    if isinstance(state, (tuple, list)):
        for part in state:
            found = _find_state(part, key)
            if found is not None:
                return found
    return None


def schedule_free_eval_params(state, params):
    """The evaluation parameters x = (y - (1 - beta_1) z) / beta_1 of Schedule-Free AdamW
    (Defazio et al. 2024), where the parameters ``params`` hold y and the state z: optax's
    ``optax.contrib.schedule_free_eval_params(state, params)`` for the state of
    ``optimlab.optax.schedule_free_adamw`` (itself, or wrapped by ``inject_hyperparams`` or
    ``chain``), as ``optimlab.ScheduleFreeAdamW.eval_params`` is for the dialect.

    A pytree like ``params``, each leaf in its dtype. Refused (ValueError): a state without
    Schedule-Free's, and beta_1 = 0 (y is z then, x is not kept) where beta_1 is a concrete
    number; a traced beta_1 of 0 gives NaN, as optax's does."""
    found = _find_state(state, "b1")
    if found is None:
        raise ValueError(
            f"schedule_free_eval_params needs the state of optimlab.optax.schedule_free_adamw "
            f"(or one that holds it), got {type(state).__name__}"
        )
    b1 = found.constants["b1"]
    try:
        zero = float(b1) == 0.0
    except jax.errors.ConcretizationTypeError:  # (traced: no check, NaN as optax)
        zero = False
    if zero:
        raise ValueError(
            "schedule_free_eval_params: with beta_1=0.0 the parameter is z itself and x, the "
            "average, is not kept (x = (y - (1 - beta_1) z) / beta_1 needs beta_1 > 0)"
        )
    return jax.tree.map(
        lambda y, z: _schedule_free.eval_params(y, z, b1).astype(y.dtype),
        params,
        found.slots["z"],
    )


def _exact_update(p, q, new, rule, g, slots, numbers):
    """The update u with p + u = ``new`` (the rule's new parameter) to the last bit wherever
    one of two candidates gives it: ``new - p`` (exact where new and p are within a factor 2,
    Sterbenz's lemma), else the rule's step computed from a zero parameter, plus the weight
    decay's ``q - p`` (the rules write ``p - step``: from 0 that is exactly ``-step``, and
    p + (-step) rounds as p - step does). Where neither reproduces ``new``, ``new - p``.
    The general path (the rule run twice): for a rule whose step does not read the parameter
    (:func:`optimlab.engines.jax_engine.subtracts_step`) :func:`_stepped` runs it once."""
    difference = new - p
    step = _engine.run_update(rule, jnp.zeros_like(q), g, slots, numbers)[0]
    return _choose(p, new, difference, step if q is p else step + (q - p))


def _choose(p, new, difference, other):
    """``difference`` where p + difference = ``new`` or where ``other`` does not give it
    either, else ``other``."""
    return jnp.where(
        (p + difference == new) | (p + other != new), difference, other.astype(p.dtype)
    )


def _stepped(p, q, rule, g, slots, numbers):
    """``(update, *new slots)`` of a rule whose new parameter is ``q - d`` with d and the
    slots free of the parameter: the rule run once, on a zero parameter, gives ``-d`` and
    the slots. Without decoupled decay (q is p) the update is ``-d`` itself: p + (-d) is
    p - d to the last bit. With it the new parameter is q + (-d), and the update the better
    of its difference to p and ``-d + (q - p)``, as in :func:`_exact_update`."""
    step, *rest = _engine.run_update(rule, jnp.zeros_like(q), g, slots, numbers)
    if q is p:
        return (step, *rest)
    new = q + step
    return (_choose(p, new, new - p, step + (q - p)), *rest)


def _new_slot(rule, name: str, value: float, p, hyperparameters: dict):
    """The initial state buffer ``name`` of parameter ``p``: a copy of p (the rule's
    ``PARAMETER_SLOTS``, Schedule-Free's z), else ``value`` in the shape the rule's
    ``slot_shape`` gives (Adafactor's factored rows and columns), or None where the parameter
    has no such buffer (Muon's second moment of a matrix; a leaf of nothing in the state)."""
    if name in getattr(rule, "PARAMETER_SLOTS", ()):
        return jnp.array(p)
    shape = jnp.shape(p)
    slot_shape = getattr(rule, "slot_shape", None)
    if slot_shape is not None:
        shape = slot_shape(name, shape, **hyperparameters)
        if shape is None:
            return None
    return jnp.full(shape, value, p.dtype)


def _check_learning_rate_array(value: Any) -> None:
    if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(
            f"learning_rate must be a float >= 0, an optax schedule (a callable of the step "
            f"count) or a 0-d float JAX array, got {show(value)} (shape {value.shape}, "
            f"{value.dtype})"
        )


def _configure(cls, preset: str, learning_rate: Any, arguments: dict):
    """The dialect optimizer that checks and resolves the arguments, with the learning rate
    (a float, a callable or a JAX array) and the nan policy the transformation uses."""
    kind = cls.__name__
    arguments = dict(arguments)
    allowed = {*cls.hyperparameters, *COMMON_HYPERPARAMETERS}
    for theirs, ours in optax_names(kind).items():
        if theirs in arguments and ours in allowed:
            if ours in arguments:
                raise TypeError(
                    f"{kind.lower()}() got {theirs}={arguments[theirs]!r} and {ours}="
                    f"{arguments[ours]!r}: {theirs} is optax's name of {ours}; pass one"
                )
            arguments[ours] = arguments.pop(theirs)
    nan_policy = arguments.pop("nan_policy", "propagate")
    if learning_rate is _UNSET:
        lr = presets.defaults(kind, check_choice("preset", preset, presets.PRESETS))[
            "learning_rate"
        ]
    else:
        lr = learning_rate
    traced = False
    if isinstance(lr, jax.Array):  # a concrete one is checked as its float; a traced one
        _check_learning_rate_array(lr)  # (optax.inject_hyperparams under jit) cannot be
        try:
            lr = learning_rate = float(lr)
        except jax.errors.ConcretizationTypeError:
            traced = True
    placeholder = 1.0 if cls.learning_rate_positive else 0.0  # (a traced one: unchecked)
    optimizer = cls(
        learning_rate=placeholder if traced else lr,
        preset=preset,
        engine="reference",
        name=kind.lower(),
        nan_policy=nan_policy,
        **arguments,
    )
    for key, instead in _NOT_HERE.items():
        if optimizer._config[key]:
            raise ValueError(
                f"{key}={optimizer._config[key]!r} is not available in optimlab.optax (a "
                f"GradientTransformation returns updates, not parameters): {instead}"
            )
    nan_policy = optimizer.nan_policy
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"nan_policy={nan_policy!r} is not available in optimlab.optax: a traced step "
            f"cannot raise; valid values: {', '.join(map(repr, NAN_POLICIES))}"
        )
    if not traced:
        lr = learning_rate if callable(learning_rate) else optimizer._learning_rate
    return optimizer, lr, nan_policy


def _narrowest(leaves) -> np.dtype | None:
    dtypes = [np.dtype(p.dtype) for p in leaves]
    return min(dtypes, key=lambda d: d.itemsize) if dtypes else None


def _check_params(kind: str, leaves) -> None:
    for k, p in enumerate(leaves):
        if not jnp.issubdtype(p.dtype, jnp.floating):
            raise TypeError(
                f"{kind}: parameter leaf {k} has dtype {p.dtype}; optimlab updates float "
                "parameters (float16, bfloat16, float32, float64)"
            )


def _check_gradients(grads, leaves) -> None:
    """The dialect's checks of a gradient against its parameter (static under jit: shapes and
    dtypes): the same dtype (no silent promotion of the state) and the same shape."""
    for k, (g, p) in enumerate(zip(grads, leaves, strict=True)):
        if g.dtype != p.dtype:
            raise TypeError(
                f"gradient {k} has dtype {g.dtype} but its parameter has {p.dtype}; "
                f"cast it first (g.astype(jnp.{p.dtype}))"
            )
        if jnp.shape(g) != jnp.shape(p):
            raise ValueError(
                f"gradient {k} has shape {jnp.shape(g)} but its parameter has shape {jnp.shape(p)}"
            )


def transformation(cls, preset: str, learning_rate: Any, arguments: dict):
    """``optax.GradientTransformation`` of the dialect optimizer ``cls`` (see the module)."""
    optimizer, lr, nan_policy = _configure(cls, preset, learning_rate, arguments)
    kind = cls.__name__
    rule = optimizer.rule
    config = dict(optimizer._config)
    conventions = dict(optimizer._conventions)
    base_hyper = optimizer._rule_hyperparameters()
    slots = [
        (name, optimizer._slot_initial_value(name))
        for name, slot_kind in rule.SLOTS
        if optimizer._slot_enabled(name, slot_kind)
    ]
    step_state0 = tuple(v for _, v in getattr(rule, "STEP_STATE", ()))
    wd = config["weight_decay"] or None
    decoupled = config["weight_decay_mode"] == "decoupled"
    # a rule with DECAY (Lamb's decay inside the trust ratio) takes the decoupled decay, or
    # None, after its scalars instead of p = p - lr * wd * p first
    own_decay = optimizer._rule_takes_decay()
    tensor = getattr(rule, "TENSOR", False)
    # the update is p' - p where no other candidate can do better: a tensor rule (its step
    # from a zero parameter is another step) and a rule that solves for p' (FTRL)
    difference_only = tensor or getattr(rule, "SOLVED", False)
    style = conventions["clip_style"]

    def hyperparameters(leaves) -> dict:
        hyper = dict(base_hyper)
        narrowest = _narrowest(leaves)
        if "power_dtype" in hyper and conventions["power_precision"] == "dtype":
            hyper["power_dtype"] = narrowest
        hyper.update(optimizer._dtype_hyperparameters(narrowest))
        return hyper

    def constants() -> dict:
        if hasattr(rule, "eval_params"):  # (Schedule-Free's x, from y, z and beta_1)
            return {"b1": jnp.asarray(base_hyper["beta_1"], _default_float())}
        return {}

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        _check_params(kind, leaves)
        narrowest = _narrowest(leaves)
        if narrowest is not None:
            optimizer._check_in_dtype(config, lr if isinstance(lr, float) else None, narrowest)
        optimizer._check_parameter_shapes([jnp.shape(p) for p in leaves])
        hyper = hyperparameters(leaves)
        state_slots = {
            name: jax.tree.map(lambda p, n=name, v=value: _new_slot(rule, n, v, p, hyper), params)
            for name, value in slots
        }
        step_state = tuple(jnp.asarray(v, _default_float()) for v in step_state0)
        return ScaleByRuleState(jnp.zeros([], jnp.int32), state_slots, step_state, constants())

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                f"optimlab.optax.{kind.lower()}: update(updates, state, params) needs the "
                "parameters (the rule computes each new parameter from the old one), got "
                "params=None"
            )
        grads, treedef = jax.tree.flatten(updates)
        leaves = treedef.flatten_up_to(params)
        _check_gradients(grads, leaves)
        buffers = {name: treedef.flatten_up_to(state.slots[name]) for name, _ in slots}
        count = state.count
        rate = lr(count) if callable(lr) else lr
        factor = config["loss_scale_factor"]
        if factor is not None:
            grads = [g / jnp.asarray(factor, g.dtype) for g in grads]
        finite = None
        if nan_policy == "skip":
            finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in grads]))
        if config["maximize"]:
            grads = [-g for g in grads]
        if config["clipnorm"]:
            grads = [
                g * _norm_scale(_l2_norm([g]), config["clipnorm"], style).astype(g.dtype)
                for g in grads
            ]
        elif config["global_clipnorm"] and grads:
            scale = _norm_scale(_l2_norm(grads), config["global_clipnorm"], style)
            grads = [g * scale.astype(g.dtype) for g in grads]
        elif config["clipvalue"]:
            c = config["clipvalue"]
            grads = [jnp.clip(g, -c, c) for g in grads]
        numbers, step_state = _engine.scalars(
            rule, count + 1, rate, state.step_state, hyperparameters(leaves)
        )
        new_updates = []
        new_slots = {name: [] for name, _ in slots}
        for k, (p, g) in enumerate(zip(leaves, grads, strict=True)):
            q, these = p, numbers
            decay = optimizer._shape_weight_decay(jnp.shape(p), wd)  # (Muon's non-matrices)
            if decay is not None and not decoupled:
                g = g + jnp.asarray(decay, g.dtype) * p
            if own_decay:
                these = (*numbers, decay if decoupled else None)
            elif decay is not None and decoupled:
                q = p - p * jnp.asarray(decay * rate, p.dtype)
            own = [buffers[name][k] if name in buffers else None for name, _ in rule.SLOTS]
            if difference_only:
                new = _engine.run_update(rule, q, g, own, these)
                new = (new[0] - p, *new[1:])
            elif _engine.subtracts_step(rule, q, g, own, these):
                new = _stepped(p, q, rule, g, own, these)
            else:
                new = _engine.run_update(rule, q, g, own, these)
                new = (_exact_update(p, q, new[0], rule, g, own, these), *new[1:])
            new_updates.append(new[0])
            for (name, _), value in zip(rule.SLOTS, new[1:], strict=True):
                if name in new_slots:
                    new_slots[name].append(value)
        new_state = ScaleByRuleState(
            optax.safe_int32_increment(count),
            {name: treedef.unflatten(values) for name, values in new_slots.items()},
            state.step_state
            if step_state is None  # (in the state's dtypes: a weak float would retrace)
            else tuple(
                jnp.asarray(new, old.dtype)
                for new, old in zip(step_state, state.step_state, strict=True)
            ),
            state.constants,
        )
        new_updates = treedef.unflatten(new_updates)
        if finite is not None:
            new_updates = jax.tree.map(
                lambda u: jnp.where(finite, u, jnp.zeros_like(u)), new_updates
            )
            new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, state)
        return new_updates, new_state

    return optax.GradientTransformation(init_fn, update_fn)


def _default_doc(cls) -> str:
    return (cls.__doc__ or "").strip()


def _names_doc(cls) -> str:
    """ " (optax's names b1, ... are taken for beta_1, ...)" of the class's optax names."""
    own = {*cls.hyperparameters, *COMMON_HYPERPARAMETERS}
    names = {k: v for k, v in optax_names(cls.__name__).items() if v in own}
    if not names:
        return ""
    return f" (optax's names {', '.join(names)} are taken for {', '.join(names.values())})"


def make_factory(cls, name: str):
    """The lowercase factory ``name(learning_rate, *, preset="optax", **hyperparameters)`` of
    the dialect optimizer ``cls``, with the rule's equations in its docstring."""

    def factory(learning_rate: Any = _UNSET, *, preset: str = "optax", **hyperparameters):
        given = {k: v for k, v in hyperparameters.items() if v is not _UNSET}
        return transformation(cls, preset, learning_rate, given)

    # an explicit signature (optax.inject_hyperparams binds the factory's arguments by it):
    # every hyperparameter keyword-only, its default the preset's
    keyword = inspect.Parameter.KEYWORD_ONLY
    names = [*cls.hyperparameters, *COMMON_HYPERPARAMETERS]
    names += [k for k, v in optax_names(cls.__name__).items() if v in names and k not in names]
    factory.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                "learning_rate", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=_UNSET
            ),
            inspect.Parameter("preset", keyword, default="optax"),
            *(
                inspect.Parameter(k, keyword, default="propagate" if k == "nan_policy" else _UNSET)
                for k in dict.fromkeys(names)
            ),
        ]
    )
    factory.__name__ = factory.__qualname__ = name
    factory.__module__ = "optimlab.optax"
    rule_doc = (cls.rule.__doc__ or "").strip()
    factory.__doc__ = (
        f"optimlab's {cls.__name__} as an ``optax.GradientTransformation``::\n\n"
        f'    optimlab.optax.{name}(learning_rate, *, preset="optax", **hyperparameters)\n\n'
        f"The hyperparameters, their defaults per preset and their checks are those of "
        f"``optimlab.{cls.__name__}``{_names_doc(cls)}; ``preset`` defaults to "
        f'``"optax"`` (optax users expect {presets.peer(cls.__name__, "optax") or "optax"}\'s '
        f'numbers; ``preset="keras"`` or ``"torch"`` gives that peer\'s). '
        f"``learning_rate``: a float, an optax schedule of the step count, or a 0-d JAX "
        f"array (``optax.inject_hyperparams``).\n\n"
        f"{_default_doc(cls)}\n\nThe rule (:mod:`{cls.rule.__name__}`):\n\n{rule_doc}\n"
    )
    return factory
