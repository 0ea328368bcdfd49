"""optimlab's optimizers as ``optax.GradientTransformation``s: a preset in a JAX loop.

::

    import optax, optimlab.optax as olx
    tx = olx.adam(learning_rate=1e-3, preset="keras")   # Keras's Adam, to the last bit
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)

One factory per optimizer of :data:`optimlab.optimizers.OPTIMIZERS` (:data:`FACTORIES`):
``sgd, adagrad, rmsprop, adam, adamw, nadam, adamax, adadelta, lion, radam, rprop, asgd,
muon, lamb, adafactor, ftrl, schedule_free_adamw``, optax's names (``muon`` is
``optax.contrib.muon``'s; those optax lacks, ASGD and FTRL, the class's in lowercase). Each
takes the NumPy dialect's hyperparameters and options with its checks and messages (and
optax's names of some: b1, b2, eps, eps_root, decay; Muon's beta, adam_b1, adam_b2;
Adafactor's eps, clipping_threshold, weight_decay_rate: :func:`optax_names`), and
``preset``:

``preset="optax"`` (the default)
    an optax user reaching for ``optimlab.optax.adam`` expects ``optax.adam``'s numbers, and
    gets them (optax's epsilon 1e-8 outside the root, its AMSGrad maximum of the corrected v,
    its clipping formula, no default learning rate); ``"keras"`` or ``"torch"`` switches to
    that framework's defaults and formulas, as ``optimlab.Adam(preset=...)`` does.

The update is the rule's own ``update`` and ``scalars`` (:mod:`optimlab.rules`) run on JAX
arrays (:mod:`optimlab.engines.jax_engine`), in the dialect's pipeline
(:mod:`optimlab.optax._transform`): pure ``init(params)`` and ``update(updates, state,
params)`` on pytrees, traceable by ``jax.jit`` (the count and a schedule's learning rate stay
traced: no host round trip), float32 and float64 (``jax_enable_x64``). ``nan_policy`` is
``"propagate"`` (default, as optax) or ``"skip"`` (a step with a non-finite gradient changes
nothing, as ``optax.apply_if_finite``); ``use_ema`` and ``gradient_accumulation_steps`` are
refused with what to use instead (``optax.incremental_update``, ``optax.MultiSteps``). A
float learning rate and every hyperparameter are checked when the factory is called (and
against the parameters' dtype by ``init``); a schedule's values and an injected learning rate
are traced and not checked.

Where a rule's step numbers depend on the step (ASGD's first update and the start of its
average, Schedule-Free's warmup and averaging weights) they are ``where``s on the traced
count, and its carried numbers (ASGD's eta and mu, Schedule-Free's lr_max and weight sum)
are ``step_state`` leaves of the state, updated inside ``update`` as the rule updates them
(a change of the learning rate reaches ASGD's eta one update late, as in torch).
Schedule-Free's evaluation parameters x are :func:`schedule_free_eval_params` (``state,
params``), optax.contrib's function of the same name; with ``optax.inject_hyperparams``
its integer ``warmup_steps`` goes in ``static_args``. FTRL solves for the new parameter
(not p - step): ``optax.apply_updates`` gives it back within an ulp of p, exactly at the
zeros of l1.

The tensor-level rules run here too (:data:`TENSOR_OPTIMIZERS`): Lamb's norms are
``jnp.linalg.norm`` and its trust ratio a ``where``; Muon's Newton-Schulz iteration and
torch's lerp have their JAX forms in :mod:`optimlab.engines.jax_tensor` (each product at
``precision="highest"``; ``preset="torch"`` rounds every operation to bfloat16 as
torch.optim.Muon; ``preset="keras"`` takes the norm of a float64 matrix as Keras does,
``jnp.linalg.norm`` in float32, where the NumPy dialect rounds the exact norm to float32:
2e-8 apart at most in the conformance runs, and the face then within 1e-14 of Keras's
own); Adafactor's means are ``jnp.mean`` (Keras's float32 ones as Keras takes
them), its float32 1 - t^decay and min(lr, 1/sqrt(t)) traced computations in float32. A leaf
of two dimensions is a matrix (Muon's Newton-Schulz); the others take the preset's fallback
(optax's NAdamW, Keras's AdamW with ``adam_weight_decay``), and ``preset="torch"`` refuses
them at ``init``, as torch.optim.Muon. The state holds each rule's slots in the shape the
rule gives (``ScaleByRuleState.slots``): Adafactor's ``v_row`` and ``v_col`` are the
parameter's shape without one axis, and a parameter without such a buffer (Adafactor's
``v`` of a factored matrix, Muon's second moment of a matrix) has ``None`` there, a pytree
node of no leaves. :data:`NOT_YET` names the optimizers without a factory and why (none
now).
"""

from __future__ import annotations

from ..engines.traced import NOT_YET, TENSOR_OPTIMIZERS, traced_optimizers
from ._transform import (
    NAN_POLICIES,
    OPTAX_NAMES,
    OPTAX_NAMES_OF,
    ScaleByRuleState,
    make_factory,
    optax_names,
    schedule_free_eval_params,
    transformation,
)

#: optax's name of a factory where it is not the class's name in lowercase
#: (``optax.contrib.schedule_free_adamw``)
FACTORY_NAMES = {"ScheduleFreeAdamW": "schedule_free_adamw"}
#: factory name -> the dialect class it wraps: every elementwise optimizer of OPTIMIZERS and
#: those of TENSOR_OPTIMIZERS, but NOT_YET (:mod:`optimlab.engines.traced`): all of them
CLASSES = {FACTORY_NAMES.get(name, name.lower()): cls for name, cls in traced_optimizers().items()}
#: factory name -> factory
FACTORIES = {name: make_factory(cls, name) for name, cls in CLASSES.items()}
globals().update(FACTORIES)

__all__ = [
    "CLASSES",
    "NOT_YET",
    "TENSOR_OPTIMIZERS",
    "FACTORIES",
    "FACTORY_NAMES",
    "NAN_POLICIES",
    "OPTAX_NAMES",
    "OPTAX_NAMES_OF",
    "optax_names",
    "ScaleByRuleState",
    "schedule_free_eval_params",
    "transformation",
    *FACTORIES,
]
