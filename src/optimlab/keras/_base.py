"""The base of every optimlab.keras optimizer: a ``keras.optimizers.Optimizer`` whose update
is an optimlab rule, in the dialect's pipeline and under its preset.

The NumPy dialect's optimizer (``optimlab.<Class>(preset=..., ...)``) is built once, for its
checks and its resolved configuration only: every argument meets the dialect's validators
and presets (:mod:`optimlab.presets`) with the dialect's messages, and a refused call creates
no Keras variable and takes no automatic name. Keras's ``apply`` then runs, per update, in
Keras's order, which is the dialect's::

    g = g / loss_scale_factor                          (Keras's apply)
    gradient accumulation                              (Keras's, gradient_accumulation_steps)
    g = -g                                             (maximize)
    clip: clipnorm | global_clipnorm | clipvalue, in the preset's formula (optimlab.clipping)
    g = g + wd * p (weight_decay_mode "l2")  or  p = p - p * (lr * wd) ("decoupled")
    p', slots' = rule.update(p, g, *slots, *rule.scalars(t, lr, ...))
    ema = m * ema + (1 - m) * p                        (Keras's, use_ema; m = 0 at first)
    iterations = iterations + 1                        (Keras's)

with t = ``iterations + 1`` (real updates under accumulation) and lr Keras's learning rate
(a variable, a ``keras.optimizers.schedules.LearningRateSchedule`` of the iterations, or a
callable of no argument). The slots are Keras variables made by
``add_optimizer_variables`` in Keras's order (:attr:`optimlab.Optimizer.keras_variable_groups`),
and the rule's step state (Nadam's momentum product, ASGD's eta and mu, Schedule-Free's
lr_max and weight sum) scalar variables after them, so ``model.save`` and
``keras.models.load_model`` keep the whole state.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np

from .. import presets, schedules
from .._validation import check_choice, show
from ..optimizer import COMMON_HYPERPARAMETERS
from ..optimizer_checks import check_learning_rate
from . import _backends

#: the constructor arguments that Keras's base optimizer takes as well, in Keras's order
KERAS_ARGUMENTS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)
#: the nan_policy values a traced step can honour (Keras propagates a NaN as well)
NAN_POLICIES = ("propagate",)
#: optimizers whose rule cannot run on a backend yet, and why (none now: Lamb's tensor-level
#: rule runs on the torch backend's host path, as Muon's and Adafactor's)
BACKEND_NOT_YET: dict[str, dict[str, str]] = {"torch": {}}
_FLOAT_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


class _PresetDefault:
    def __repr__(self) -> str:
        return "<the preset's>"


_UNSET = _PresetDefault()


def _is_schedule(value: Any) -> bool:
    return isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(value) and not isinstance(value, (int, float, np.number))
    )


def _numpy_dtype(name: str):
    """The NumPy dtype of a Keras dtype name (bfloat16 through ml_dtypes, as JAX has it)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class Optimizer(keras.optimizers.Optimizer):
    """Base class of the optimlab.keras optimizers (``optimlab.keras.Adam``, ...): see the
    module :mod:`optimlab.keras`. ``dialect`` is the NumPy-dialect class whose rule,
    hyperparameters, checks and presets it takes."""

    #: the optimlab class (``optimlab.Adam``, ...) this Keras optimizer runs
    dialect: Any = None

    def __init__(self, learning_rate: Any = _UNSET, *, preset: str = "keras", **arguments):
        cls = type(self).dialect
        if cls is None:
            raise TypeError(
                "optimlab.keras.Optimizer is the base class; use one of its optimizers "
                "(optimlab.keras.Adam, ...; optimlab.keras.CLASSES)"
            )
        kind = cls.__name__
        backend = _backends.current()
        preset = check_choice("preset", preset, presets.PRESETS)
        why = BACKEND_NOT_YET.get(backend.name, {}).get(kind)
        if why is not None:
            raise NotImplementedError(
                f"optimlab.keras.{kind} is not available on Keras's {backend.name} backend yet: "
                f"{why}; use KERAS_BACKEND=jax"
            )
        if learning_rate is _UNSET:
            learning_rate = presets.defaults(kind, preset)["learning_rate"]
        _refuse_optimlab_schedule(learning_rate)
        schedule = _is_schedule(learning_rate)
        name = arguments.pop("name", None)
        nan_policy = arguments.pop("nan_policy", "propagate")
        given = {k: v for k, v in arguments.items() if v is not _UNSET}
        placeholder = 1.0 if cls.learning_rate_positive else 0.0  # (a schedule: Keras's)
        optimizer = cls(
            learning_rate=placeholder if schedule else learning_rate,
            preset=preset,
            engine="reference",
            name=kind.lower(),  # (a name given: the dialect takes none of its automatic ones)
            nan_policy=nan_policy,
            **given,
        )
        if optimizer.nan_policy not in NAN_POLICIES:
            raise ValueError(
                f"nan_policy={optimizer.nan_policy!r} is not available in optimlab.keras: a "
                f"step compiled with the train step cannot raise or skip; valid values: "
                f"{', '.join(map(repr, NAN_POLICIES))} (keras.callbacks.TerminateOnNaN stops "
                "fit at a NaN loss)"
            )
        config = optimizer._config
        super().__init__(
            learning_rate=learning_rate if schedule else optimizer._learning_rate,
            name=name,
            **{k: config[k] for k in KERAS_ARGUMENTS},
        )
        self._backend = backend
        self._optimlab = optimizer
        self._narrowest = None

    # -- the configuration --------------------------------------------------------------

    @property
    def preset(self) -> str:
        """The preset this optimizer was built with (``"keras"``, ``"torch"``, ``"optax"``)."""
        return self._optimlab.preset

    def __getattr__(self, key: str) -> Any:
        optimizer = self.__dict__.get("_optimlab")
        if optimizer is not None and key in optimizer._config:
            return optimizer._config[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        optimizer = self.__dict__.get("_optimlab")
        if optimizer is None or key not in optimizer._config:
            super().__setattr__(key, value)
            return
        old = dict(optimizer._config)
        if self.built:
            fixed = (*optimizer.structural, "use_ema", "gradient_accumulation_steps")
            if key in fixed:
                new = dict(old, **{key: optimizer._validator(key)(key, value)})
                if key in KERAS_ARGUMENTS:  # use_ema, gradient_accumulation_steps: on or off
                    changed = bool(new[key]) != bool(old[key])
                else:
                    changed = optimizer._structure(new, key) != optimizer._structure(old, key)
                if changed:
                    raise ValueError(
                        f"{key} cannot change from {old[key]!r} to {value!r} after the optimizer "
                        "is built: its variables depend on it"
                    )
        setattr(optimizer, key, value)  # the dialect's checks and message; refused: unchanged
        if self._narrowest is not None:
            try:
                optimizer._check_in_dtype(optimizer._config, None, self._narrowest)
            except (TypeError, ValueError):
                optimizer._config.clear()
                optimizer._config.update(old)
                raise
        if key in KERAS_ARGUMENTS:
            super().__setattr__(key, optimizer._config[key])

    @property
    def learning_rate(self):
        """Keras's learning rate: a variable, or the schedule's value at ``iterations``. A
        number assigned is checked as the dialect checks it (a float >= 0 the variables'
        dtype holds)."""
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        _refuse_optimlab_schedule(value)
        optimizer = self._optimlab
        if not _is_schedule(value):
            value = check_learning_rate(
                value, optimizer.preset, type(self).__name__, optimizer.learning_rate_positive
            )
            optimizer._check_in_dtype(optimizer._config, value, self._narrowest)
        keras.optimizers.Optimizer.learning_rate.fset(self, value)

    def __repr__(self) -> str:
        lr = self._learning_rate
        shown = lr if _is_schedule(lr) else float(keras.ops.convert_to_numpy(lr))
        text = repr(self._optimlab)  # the dialect's: Adam(learning_rate=..., ..., preset=...)
        text = text.replace(
            f"learning_rate={self._optimlab._learning_rate!r}", f"learning_rate={shown!r}", 1
        )
        text = text.replace(f"name={self._optimlab.name!r}", f"name={self.name!r}", 1)
        return f"optimlab.keras.{text}"

    def get_config(self) -> dict:
        """Keras's configuration (the learning rate as a float or a serialized schedule) with
        every hyperparameter resolved under the preset, and ``preset``: ``from_config``
        rebuilds the same optimizer."""
        config = super().get_config()
        config.update(self._optimlab._config)
        config["preset"] = self.preset
        return config

    # -- the build ----------------------------------------------------------------------

    def build(self, variables) -> None:
        """Create the rule's slots for every variable (Keras's ``add_optimizer_variables``,
        in Keras's order) and the rule's per-step state (Nadam's momentum product); the
        hyperparameters are checked against the variables' dtype first."""
        if self.built:
            return
        variables = list(variables)
        optimizer = self._optimlab
        dtypes = []
        for k, variable in enumerate(variables):
            dtype = keras.backend.standardize_dtype(variable.dtype)
            if dtype not in _FLOAT_BYTES:
                where = show(getattr(variable, "path", variable))
                raise TypeError(
                    f"{type(self).__name__}: variable {k} ({where}) has dtype {dtype}; "
                    "optimlab updates float variables "
                    f"({', '.join(_FLOAT_BYTES)})"
                )
            dtypes.append(dtype)
        narrowest = None
        if dtypes:
            narrowest = _numpy_dtype(min(dtypes, key=_FLOAT_BYTES.__getitem__))
            lr = self._learning_rate
            number = None if _is_schedule(lr) else float(keras.ops.convert_to_numpy(lr))
            optimizer._check_in_dtype(optimizer._config, number, narrowest)
        optimizer._check_parameter_shapes([tuple(v.shape) for v in variables])
        super().build(variables)
        self._narrowest = narrowest
        rule = optimizer.rule
        enabled = [name for name, kind in rule.SLOTS if optimizer._slot_enabled(name, kind)]
        groups = optimizer.keras_variable_groups or tuple((name,) for name, _ in rule.SLOTS)
        slots = {}
        for group in groups:
            names = [name for name in group if name in enabled]
            if not names:
                continue
            initializers = [
                keras.initializers.Constant(optimizer._slot_initial_value(name)) for name in names
            ]
            if hasattr(rule, "slot_shape"):  # (Adafactor's rows and columns, Muon's v)
                made = self._shaped_slots(variables, names, initializers)
            else:
                made = self.add_optimizer_variables(variables, names, initializer=initializers)
            slots.update(zip(names, made, strict=True))
        for name in getattr(rule, "PARAMETER_SLOTS", ()):  # (Schedule-Free's z: a copy of p)
            if name in slots:
                for slot, variable in zip(slots[name], variables, strict=True):
                    # a new buffer: on JAX, assigning the variable itself would share its
                    # array, which the jitted train step then donates twice (model.fit fails)
                    slot.assign(keras.ops.copy(variable))
        self._slot_variables = slots
        self._step_variables = [
            self.add_variable(
                shape=(),
                initializer=keras.initializers.Constant(value),
                dtype=_step_dtype(),
                name=name,
            )
            for name, value in getattr(rule, "STEP_STATE", ())
        ]

    def _shaped_slots(self, variables, names, initializers) -> tuple:
        """The slots ``names`` of a rule whose ``slot_shape`` decides each one's shape, per
        variable and interleaved as ``add_optimizer_variables`` makes them (Keras's order):
        a variable of the variable's shape where the rule's shape is it, one of the rule's
        shape (Adafactor's factored rows and columns) otherwise, None where the variable
        has no such buffer (Muon's second moment of a matrix) or Keras overwrites it with
        its gradient."""
        hyperparameters = self._rule_hyperparameters()
        made = tuple([] for _ in names)
        for variable in variables:
            for k, (name, initializer) in enumerate(zip(names, initializers, strict=True)):
                shape = tuple(variable.shape)
                wanted = self._optimlab.rule.slot_shape(name, shape, **hyperparameters)
                if wanted is None or self._overwrite_variable_with_gradient(variable):
                    made[k].append(None)
                elif tuple(wanted) == shape:
                    made[k].append(
                        self.add_variable_from_reference(variable, name, initializer=initializer)
                    )
                else:
                    made[k].append(
                        self.add_variable(
                            shape=tuple(wanted),
                            initializer=initializer,
                            dtype=variable.dtype,
                            name=f"{variable.path.replace('/', '_')}_{name}",
                        )
                    )
        return made

    # -- the update ---------------------------------------------------------------------

    def _rule_hyperparameters(self) -> dict:
        """The keyword arguments of ``rule.scalars``; the powers' base rounded to the
        narrowest variable dtype where the preset says so (Keras casts beta first)."""
        optimizer = self._optimlab
        hyper = dict(optimizer._rule_hyperparameters())
        if "power_dtype" in hyper:
            dtype_rounds = optimizer._conventions["power_precision"] == "dtype"
            hyper["power_dtype"] = self._narrowest if dtype_rounds else None
        hyper.update(optimizer._dtype_hyperparameters(self._narrowest))
        return hyper

    def _clip_gradients(self, grads):
        """``maximize``, then the clipping in the preset's formula (Keras's hook, called by
        ``apply`` before the update). On the torch backend the gradients are returned as they
        are and the clipping kept for the update (:mod:`optimlab.keras._torch_fused`: the
        fused kernel's pipeline, or torch operations before ``update_step``)."""
        config = self._optimlab._config
        ops = self._backend
        grads = list(grads)
        if ops.name == "torch":  # kept for the fused kernel's pipeline (see _torch_fused)
            from . import _torch_fused

            style = self._optimlab._conventions["clip_style"]
            self.__dict__["_clipping"] = _torch_fused.Clipping.of(config, style, grads, ops)
            return grads
        if config["maximize"]:
            grads = [-g for g in grads]
        style = self._optimlab._conventions["clip_style"]
        if config["clipnorm"]:
            clip = config["clipnorm"]
            return [
                g * ops.number(ops.norm_scale(ops.l2_norm([g]), clip, style), g.dtype)
                for g in grads
            ]
        if config["global_clipnorm"] and grads:
            scale = ops.norm_scale(ops.l2_norm(grads), config["global_clipnorm"], style)
            return [g * ops.number(scale, g.dtype) for g in grads]
        if config["clipvalue"]:
            return [ops.clip_value(g, config["clipvalue"]) for g in grads]
        return grads

    def _apply_weight_decay(self, variables) -> None:
        """Nothing here: the decay is applied in :meth:`update_step`, in the dialect's place
        and formula (l2 on the gradient, or decoupled on the parameter)."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate) -> None:
        """The rule's step numbers, once per update (and the step state advanced), then
        :meth:`update_step` for each variable."""
        ops = self._backend
        rule = self._optimlab.rule
        t = ops.step_number(self.iterations)
        lr = ops.rate(learning_rate)
        state = tuple(ops.state(v) for v in self._step_variables)
        numbers, new_state = ops.scalars(rule, t, lr, state, self._rule_hyperparameters())
        if new_state is not None:
            for variable, value in zip(self._step_variables, new_state, strict=True):
                variable.assign(value)
        self.__dict__["_step"] = (numbers, lr)
        try:
            if ops.name == "torch":  # the fused kernel where it applies, else update_step
                from . import _torch_fused

                _torch_fused.update(self, grads, trainable_variables, learning_rate)
            else:
                super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self.__dict__["_step"] = None
            self.__dict__.pop("_clipping", None)

    def update_step(self, gradient, variable, learning_rate) -> None:
        """One variable's update: the weight decay, then the rule with this step's numbers;
        the new parameter and slots are assigned."""
        step = self.__dict__.get("_step")
        if step is None:
            raise RuntimeError(
                f"{type(self).__name__}.update_step runs inside apply() (its step numbers are "
                "computed once per update); call optimizer.apply(grads, variables)"
            )
        numbers, lr = step
        optimizer = self._optimlab
        config = optimizer._config
        ops = self._backend
        p = variable.value
        g = keras.ops.cast(gradient, variable.dtype)
        decay = None
        if self._use_weight_decay(variable):  # (Muon: adam_weight_decay for non-matrices)
            decay = optimizer._shape_weight_decay(
                tuple(variable.shape), config["weight_decay"] or None
            )
        decoupled = config["weight_decay_mode"] == "decoupled"
        q = p
        if decay is not None and not decoupled:
            g = g + ops.number(decay, g.dtype) * p
        if optimizer._rule_takes_decay():
            numbers = (*numbers, decay if decoupled else None)
        elif decay is not None and decoupled:
            q = p - p * ops.number(decay * lr, p.dtype)
        i = self._get_variable_index(variable)
        own = [
            self._slot_variables[name][i] if name in self._slot_variables else None
            for name, _ in optimizer.rule.SLOTS
        ]
        run = ops.run_tensor_update if getattr(optimizer.rule, "TENSOR", False) else ops.run_update
        new = run(optimizer.rule, q, g, [None if s is None else s.value for s in own], numbers)
        self.assign(variable, new[0])
        for slot, value in zip(own, new[1:], strict=True):
            if slot is not None:
                self.assign(slot, value)


def _step_dtype() -> str:
    """The dtype of the per-step state variables: float64 where the backend holds it (the
    dialect keeps Nadam's momentum product as a Python float), else float32."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"


def _refuse_optimlab_schedule(value: Any) -> None:
    if isinstance(value, schedules.LearningRateSchedule):
        raise TypeError(
            f"learning_rate={show(value)} is an optimlab schedule (a function of Python "
            "numbers); inside Keras's compiled step use a "
            "keras.optimizers.schedules.LearningRateSchedule, a float or a callable of no "
            "argument"
        )


def make_class(dialect) -> type:
    """The ``keras.optimizers.Optimizer`` subclass of the dialect class ``dialect``: its
    positional arguments Keras's (the class's own, then Keras's common ones, then ``name``),
    every dialect hyperparameter as a keyword, ``preset`` keyword-only; registered with
    ``keras.saving.register_keras_serializable(package="optimlab")``."""
    kind = dialect.__name__
    own = [
        p
        for p in list(inspect.signature(dialect.__init__).parameters.values())[1:]
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "name"
    ]
    names = [p.name for p in own]
    positional = [*names, *(k for k in KERAS_ARGUMENTS if k not in names), "name"]
    keyword = [
        k for k in (*dialect.hyperparameters, *COMMON_HYPERPARAMETERS) if k not in positional
    ]

    def __init__(self, *args, **kwargs):
        if len(args) > len(positional):
            raise TypeError(
                f"{kind}() takes at most {len(positional)} positional arguments "
                f"({', '.join(positional)}), got {len(args)}"
            )
        for key, value in zip(positional, args, strict=False):  # (fewer args: the first)
            if key in kwargs:
                raise TypeError(f"{kind}() got multiple values for argument {key!r}")
            kwargs[key] = value
        Optimizer.__init__(self, **kwargs)

    defaults = {p.name: p.default for p in own}
    defaults.update(name=None, nan_policy="propagate")
    P = inspect.Parameter
    __init__.__signature__ = inspect.Signature(
        [
            P("self", P.POSITIONAL_OR_KEYWORD),
            *(P(k, P.POSITIONAL_OR_KEYWORD, default=defaults.get(k, _UNSET)) for k in positional),
            P("preset", P.KEYWORD_ONLY, default="keras"),
            *(P(k, P.KEYWORD_ONLY, default=defaults.get(k, _UNSET)) for k in keyword),
        ]
    )
    __init__.__qualname__ = f"{kind}.__init__"
    rule_doc = (dialect.rule.__doc__ or "").strip()
    peers = (
        ", ".join(f"{k}: {presets.peer(kind, k)}" for k in presets.PRESETS if presets.peer(kind, k))
        or "optimlab's own, with each preset's conventions"
    )
    doc = (
        f"optimlab's {kind} as a ``keras.optimizers.Optimizer`` (``model.compile(optimizer="
        f"optimlab.keras.{kind}(...))``)::\n\n"
        f'    optimlab.keras.{kind}({", ".join(positional)}, *, preset="keras", ...)\n\n'
        f"The hyperparameters, their defaults per preset and their checks are those of "
        f'``optimlab.{kind}``; ``preset`` ("keras" default, "torch", "optax") gives that '
        f"framework's numbers ({peers}). "
        f"``learning_rate``: a float, a ``keras.optimizers.schedules.LearningRateSchedule`` or "
        f"a callable of no argument.\n\n"
        f"{(dialect.__doc__ or '').strip()}\n\nThe rule (:mod:`{dialect.rule.__name__}`):\n\n"
        f"{rule_doc}\n"
    )
    cls = type(
        kind,
        (Optimizer,),
        {"dialect": dialect, "__init__": __init__, "__doc__": doc, "__module__": "optimlab.keras"},
    )
    cls.__qualname__ = kind
    return keras.saving.register_keras_serializable(package="optimlab", name=kind)(cls)
