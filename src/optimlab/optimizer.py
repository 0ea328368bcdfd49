"""The optimizer runtime: hyperparameters and their validation, the step counter, the per-step
pipeline, the learning rate as a float or a schedule, ``state_dict`` and ``get_config``.

One call of :meth:`Optimizer.apply_gradients` runs, in this order (Keras's order)::

    check every (gradient, parameter) pair, the gradients' finiteness and the learning rate
    g = g / loss_scale_factor
    accumulate: every k-th call updates with the mean of the last k gradients
    g = -g                                       (maximize)
    clip (clipnorm | global_clipnorm | clipvalue)
    weight decay: p = p - lr * wd * p (decoupled) or g = g + wd * p (l2)
    the rule: p, state = rule(p, g, state)
    ema = m * ema + (1 - m) * p                  (use_ema; m = 0 on the first update)
    iterations = iterations + 1

Nothing is changed before every check has passed: a bad gradient, a gradient of the wrong
shape or dtype, or a schedule that returns a negative learning rate leaves the parameters and
the optimizer exactly as they were.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import clipping, naming, presets, schedules
from ._validation import (
    MAX_COUNT,
    check_bool,
    check_choice,
    check_float,
    check_in_dtype,
    check_int,
    check_no_overlap,
    check_optional_float,
    show,
)
from .engines import ENGINE_CHOICES, ENGINES, fused
from .params import Params
from .step_plan import StepPlan

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NAN_POLICIES = ("raise", "skip", "propagate")
_UNSET = object()


class _Default:
    """A default value shown in a signature (``momentum=0.0``) that a preset may replace.

    An argument still holding a ``_Default`` was not passed by the caller, so the preset's
    default applies; a value passed explicitly always wins.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def preset_default(value: Any) -> Any:
    """Wrap a signature default so that presets can tell it from an explicit argument."""
    return _Default(value)


# ---------------------------------------------------------------------------------------------
# Validators: (name, value) -> normalized value
# ---------------------------------------------------------------------------------------------


def unit_interval_open(name: str, value: Any) -> float:
    """A decay factor such as beta: a float in [0, 1)."""
    return check_float(name, value, 0.0, 1.0, high_open=True)


def unit_interval_closed(name: str, value: Any) -> float:
    """A float in [0, 1]."""
    return check_float(name, value, 0.0, 1.0)


def non_negative(name: str, value: Any) -> float:
    """A float >= 0."""
    return check_float(name, value, 0.0)


def optional_positive(name: str, value: Any) -> float | None:
    """None (switched off) or a float > 0."""
    return check_optional_float(name, value, 0.0, low_open=True)


def optional_non_negative(name: str, value: Any) -> float | None:
    """None or a float >= 0."""
    return check_optional_float(name, value, 0.0)


def choice(*choices: Any) -> Callable[[str, Any], Any]:
    """A validator accepting one of ``choices``."""

    def check(name: str, value: Any) -> Any:
        return check_choice(name, value, choices)

    return check


def _optional_int_at_least(low: int) -> Callable[[str, Any], int | None]:
    def check(name: str, value: Any) -> int | None:
        return None if value is None else check_int(name, value, low, MAX_COUNT)

    return check


COMMON_HYPERPARAMETERS: dict[str, Callable[[str, Any], Any]] = {
    "weight_decay": optional_non_negative,
    "weight_decay_mode": choice("decoupled", "l2"),
    "clipnorm": optional_positive,
    "clipvalue": optional_positive,
    "global_clipnorm": optional_positive,
    "use_ema": check_bool,
    "ema_momentum": unit_interval_closed,
    "ema_overwrite_frequency": _optional_int_at_least(1),
    "loss_scale_factor": optional_positive,
    "gradient_accumulation_steps": _optional_int_at_least(1),
    "maximize": check_bool,
    "nan_policy": choice(*NAN_POLICIES),
}

#: hyperparameters the engines cast to the parameters' dtype (a float32 step computes in
#: float32), name -> whether they are divided by (then 0 in that dtype is refused too)
IN_PARAMETER_DTYPE = {
    "learning_rate": False,
    "epsilon": False,
    "weight_decay": False,
    "initial_accumulator_value": False,
    "loss_scale_factor": True,
}

#: other libraries' names for hyperparameters: assigning one would change nothing
_FOREIGN_NAMES = {"lr": "learning_rate", "eps": "epsilon", "betas": "beta_1 and beta_2"}


def _hyperparameter_names() -> set[str]:
    """Every hyperparameter name of every optimizer class (for typos in assignments)."""
    names = set(COMMON_HYPERPARAMETERS) | set(_FOREIGN_NAMES)
    stack = [Optimizer]
    while stack:
        cls = stack.pop()
        names.update(cls.hyperparameters)
        stack.extend(cls.__subclasses__())
    return names


def check_learning_rate(value: Any, preset: str, optimizer: str) -> Any:
    """A learning rate is a float >= 0, a schedule, or a callable: ``step -> float``, or a
    function of no argument as in Keras (see :func:`optimlab.schedules.as_step_function`)."""
    if value is presets.REQUIRED:
        raise TypeError(
            f"learning_rate is required with preset={preset!r}: "
            f"{presets.PEERS[optimizer][preset]} has no default learning rate"
        )
    if isinstance(value, schedules.LearningRateSchedule) or (
        callable(value) and not isinstance(value, numbers.Number)
    ):
        return schedules.as_step_function(value)
    return check_float("learning_rate", value, 0.0)


class Optimizer:
    """Base class of the Keras-dialect optimizers (:class:`optimlab.SGD`, ...).

    Common keyword arguments (Keras 3's names; defaults depend on ``preset``):

    learning_rate
        float >= 0, a schedule from :mod:`optimlab.schedules`, any callable ``step -> float``
        evaluated at the number of updates already applied, or (Keras's form) a callable of
        no argument, called before each update.
    name
        default: Keras's, the class name in snake case made unique (``adam``, ``adam_1``,
        ``adam_w``; :func:`optimlab.naming.reset_names` starts them again).
    weight_decay, weight_decay_mode
        None/0 (off) or a float >= 0; ``"decoupled"``: p = p - lr * wd * p before the rule
        (Keras, AdamW); ``"l2"``: g = g + wd * p (PyTorch's ``weight_decay``).
    clipnorm, global_clipnorm, clipvalue
        at most one; norm clipping per gradient, over all gradients, or elementwise.
    use_ema, ema_momentum, ema_overwrite_frequency
        keep ema = m * ema + (1 - m) * p after each update (m = 0 on the first); every
        ``ema_overwrite_frequency`` updates the parameters are overwritten with it.
    loss_scale_factor
        gradients are divided by it first (for a loss that was multiplied by it).
    gradient_accumulation_steps
        k: every k-th call updates with the mean of the last k gradients; the other calls
        only accumulate. ``iterations``, schedules, bias corrections and the EMA all count
        real updates.
    maximize
        ascend instead of descend (PyTorch's flag).
    nan_policy
        what a NaN or Inf gradient does: ``"raise"`` (default; nothing changes), ``"skip"``
        (the call is skipped and counted in ``skipped_steps``), ``"propagate"`` (what the
        peers do).
    preset
        ``"keras"`` (default), ``"torch"`` or ``"optax"``: see :mod:`optimlab.presets`.
    engine
        ``"auto"`` (default): the fused numba engine for float32/float64 C-contiguous arrays,
        the NumPy reference engine otherwise; ``"fused"`` or ``"reference"`` forces one.
    """

    #: the update rule (a module of :mod:`optimlab.rules`)
    rule: Any = None
    #: hyperparameters of this optimizer beyond the common ones: name -> validator
    hyperparameters: dict[str, Callable[[str, Any], Any]] = {}
    #: preset -> {name: validator}: where a preset's peer takes another range than
    #: :attr:`hyperparameters` (Keras's Lion refuses beta_1 = 0)
    preset_hyperparameters: dict[str, dict[str, Callable[[str, Any], Any]]] = {}
    #: hyperparameters whose value decides which state buffers exist
    structural: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        name: str | None = None,
        preset: str = "keras",
        engine: str = "auto",
        **arguments: Any,
    ) -> None:
        kind = type(self).__name__
        preset = check_choice("preset", preset, presets.PRESETS)
        engine = check_choice("engine", engine, ENGINE_CHOICES)
        allowed = {"learning_rate", *COMMON_HYPERPARAMETERS, *self.hyperparameters}
        unknown = sorted(set(arguments) - allowed)
        if unknown:
            raise TypeError(
                f"{kind}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"valid ones: {', '.join(sorted(allowed | {'name', 'preset', 'engine'}))}"
            )
        explicit = {k: v for k, v in arguments.items() if not isinstance(v, _Default)}
        resolved = presets.defaults(kind, preset)
        resolved.update(explicit)
        missing = sorted(allowed - set(resolved))
        if missing:  # pragma: no cover - a preset table bug
            raise RuntimeError(f"preset {preset!r} of {kind} lacks {missing}")

        object.__setattr__(self, "_preset", preset)
        object.__setattr__(self, "_config", {})
        self._conventions = presets.CONVENTIONS[preset]
        self._engine = ENGINES.get(engine)
        self._engine_name = engine
        self.name = kind if name is None else str(name)
        self._learning_rate = check_learning_rate(resolved.pop("learning_rate"), preset, kind)
        for key, value in resolved.items():
            self._config[key] = self._validator(key)(key, value)
        self._check_combinations(self._config)
        self._reset_state()
        if name is None:  # only once every check has passed: a refused call uses no name
            self.name = naming.auto_name(kind)

    # -- hyperparameters ------------------------------------------------------------------

    def _validator(self, key: str) -> Callable[[str, Any], Any]:
        """The validator of hyperparameter ``key`` under this optimizer's preset (subclasses
        whose range depends on the preset override :attr:`preset_hyperparameters`)."""
        override = self.preset_hyperparameters.get(self._preset, {}).get(key)
        return override or COMMON_HYPERPARAMETERS.get(key) or self.hyperparameters[key]

    def _check_combinations(self, config: dict) -> None:
        """Cross-argument checks; subclasses extend."""
        clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if config[k]]
        if len(clips) > 1:
            raise ValueError(
                "at most one of clipnorm, clipvalue, global_clipnorm may be set, got "
                + ", ".join(f"{k}={config[k]!r}" for k in clips)
            )
        if config["weight_decay"] == 0.0:
            config["weight_decay"] = None
        if config["gradient_accumulation_steps"] == 1:
            config["gradient_accumulation_steps"] = None

    def __getattr__(self, key: str) -> Any:
        config = self.__dict__.get("_config")
        if config is not None and key in config:
            return config[key]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        config = self.__dict__.get("_config")
        if config is not None and key in config:
            value = self._validator(key)(key, value)
            new = dict(config, **{key: value})
            self._check_combinations(new)
            if self.built:
                for name in self.structural:
                    if self._structure(new, name) != self._structure(config, name):
                        raise ValueError(
                            f"{key} cannot change from {config[key]!r} to {value!r} after the "
                            f"optimizer is built: its state buffers depend on it"
                        )
                if key in ("use_ema", "gradient_accumulation_steps") and (
                    bool(new[key]) != bool(config[key])
                ):
                    raise ValueError(f"{key} cannot be switched on or off after the build")
                if (
                    key == "gradient_accumulation_steps"
                    and value != config[key]
                    and self._micro_step
                ):
                    raise ValueError(
                        f"gradient_accumulation_steps cannot change from {config[key]} to "
                        f"{value} while {self._micro_step} gradient(s) are accumulated; change "
                        "it right after an update (when the accumulators are empty)"
                    )
                self._check_in_dtype(new, self._learning_rate, self._narrowest)
            config.clear()
            config.update(new)
            self.__dict__["_hyper_memo"] = None
            self.__dict__["_plan"] = None
            return
        if (
            config is not None
            and not key.startswith("_")
            and not hasattr(type(self), key)
            and key in _hyperparameter_names()
        ):
            name = type(self).__name__
            hint = (
                f"use {_FOREIGN_NAMES[key]}"
                if key in _FOREIGN_NAMES
                else f"its hyperparameters: learning_rate, {', '.join(config)}"
            )
            raise TypeError(
                f"{name} has no hyperparameter {key!r}; setting it would change nothing ({hint})"
            )
        object.__setattr__(self, key, value)

    def _check_in_dtype(self, config: dict, lr: Any, dtype: Any) -> None:
        """Refuse hyperparameters that the parameters' dtype cannot hold (see
        :data:`IN_PARAMETER_DTYPE`); ``dtype`` None (not built yet) checks nothing."""
        if dtype is None:
            return
        for key, positive in IN_PARAMETER_DTYPE.items():
            value = lr if key == "learning_rate" else config.get(key)
            if isinstance(value, float):
                check_in_dtype(key, value, dtype, positive=positive)

    @staticmethod
    def _structure(config: dict, name: str) -> Any:
        value = config[name]
        return value > 0 if isinstance(value, float) else value

    @property
    def preset(self) -> str:
        """The preset this optimizer was built with."""
        return self._preset

    @property
    def engine(self) -> str:
        """The engine running the rule."""
        return self._engine_name

    # -- learning rate --------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next update (a schedule evaluated at ``iterations``)."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        lr = check_learning_rate(value, self._preset, type(self).__name__)
        self._check_in_dtype(self._config, lr, self._narrowest)
        self._learning_rate = lr

    @property
    def learning_rate_schedule(self) -> Any:
        """The schedule (or callable) given as learning rate, or None for a plain float."""
        lr = self._learning_rate
        if isinstance(lr, schedules.ZeroArgumentLearningRate):
            return lr.function
        return None if isinstance(lr, float) else lr

    def _current_learning_rate(self, limit: float | None = None) -> float:
        """The learning rate of the next update; a schedule's value must be a finite float
        in [0, ``limit``] (the largest float of the parameters' dtype; default: the built
        parameters')."""
        lr = self._learning_rate
        if isinstance(lr, float):
            return lr
        value = lr(self._iterations)
        limit = self._lr_limit if limit is None else limit
        if isinstance(value, float) and 0.0 <= value <= limit:
            return float(value)
        return self._checked_schedule_value(lr, value, limit)

    def _checked_schedule_value(self, lr: Any, value: Any, limit: float) -> float:
        step = self.iterations
        where = f"learning rate schedule {show(lr)} returned {show(value)} at step {step}"
        bound = "a finite float >= 0"
        if not math.isinf(limit):
            bound += f" (at most {limit!r}, the largest float of the parameters' dtype)"
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            value = value.item()  # a 0-d array of a number, like the number
        if not _is_real(value):
            raise TypeError(f"{where}; it must return {bound}")
        try:
            x = float(value)
        except OverflowError:
            x = math.inf
        if not (math.isfinite(x) and 0.0 <= x <= limit):
            raise ValueError(f"{where}; it must return {bound}")
        return x

    # -- state ----------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._params: list[np.ndarray] = []
        self._index: dict[int, int] = {}
        self._slots: list[list[np.ndarray | None]] = []
        self._step_state: list[tuple] = []
        self._param_steps: list[int] = []
        self._accumulators: list[np.ndarray] | None = None
        self._accumulated: list[bool] = []
        self._ema: list[np.ndarray] | None = None
        self._group_options: dict[int, tuple[float, float | None]] = {}
        self._fused_key: tuple | None = None
        self._power_dtype_memo: tuple = (None, None)
        self._iterations = 0
        self._skipped_steps = 0
        self._micro_step = 0
        self._plan = None
        self._built = False
        self._narrowest = None  # the narrowest parameter dtype, once built
        self._lr_limit = math.inf  # the largest learning rate that dtype holds
        self._roots: dict[int, list[int]] = {}  # id of a base buffer -> parameters viewing it

    @property
    def iterations(self) -> int:
        """The number of updates applied (schedules and bias corrections count them); may be
        set to an integer in [0, 2**63 - 1]."""
        return self._iterations

    @iterations.setter
    def iterations(self, value: Any) -> None:
        self._iterations = check_int("iterations", value, 0, MAX_COUNT)

    @property
    def skipped_steps(self) -> int:
        """The number of calls skipped by ``nan_policy="skip"``."""
        return self._skipped_steps

    @skipped_steps.setter
    def skipped_steps(self, value: Any) -> None:
        self._skipped_steps = check_int("skipped_steps", value, 0, MAX_COUNT)

    @property
    def built(self) -> bool:
        """Whether the optimizer has its parameters (after :meth:`build` or the first update;
        ``build([])``, as in Keras, builds it with none)."""
        return self._built

    #: Keras's order of an optimizer's slot variables: groups of slots, each group created
    #: per parameter in turn (``add_optimizer_variables(vars, ["momentum", "velocity"])``
    #: gives m_0, v_0, m_1, v_1, ...); default: one group per slot, in ``rule.SLOTS`` order
    keras_variable_groups: tuple[tuple[str, ...], ...] | None = None

    @property
    def variables(self) -> list[np.ndarray]:
        """Keras's ``optimizer.variables``: the optimizer's own state, as copies, in Keras's
        order::

            [iterations, learning_rate, EMA averages..., gradient accumulators..., slots...]

        ``iterations`` is a 0-d int64 array (the micro steps under gradient accumulation, as
        Keras counts them), ``learning_rate`` a 0-d float64 array present only while the
        learning rate is a number (a schedule or callable is not a variable, as in Keras),
        then per parameter its EMA average (``use_ema``) and its accumulator
        (``gradient_accumulation_steps``; it holds sum(g / k), where Keras's holds sum(g):
        the mean of finite gradients cannot overflow), the slots grouped as Keras creates them
        (:attr:`keras_variable_groups`; slots off under the current hyperparameters are
        absent), and last Nadam's momentum product (where steps are counted globally). The
        parameters themselves are :attr:`params`.
        :meth:`set_weights` writes such a list back."""
        return [value.copy() for _, value, _ in self._keras_variables()]

    @property
    def params(self) -> list[np.ndarray]:
        """The tracked parameters, in build order (the arrays themselves)."""
        return list(self._params)

    def _keras_variables(self) -> list[tuple[str, np.ndarray, Callable[[np.ndarray], None]]]:
        """(name, value, write back) of each of :attr:`variables`, in Keras's order."""
        k = self._config["gradient_accumulation_steps"] or 0
        out: list = [
            (
                "iterations",
                np.array(self._iterations * k + self._micro_step if k else self._iterations),
                self._set_keras_iterations,
            )
        ]
        if isinstance(self._learning_rate, float):
            out.append(
                ("learning_rate", np.array(self._learning_rate), self._set_keras_learning_rate)
            )
        if not self.built:
            return out
        for name, buffers in (("average", self._ema), ("gradient_accumulator", self._accumulators)):
            for i, buf in enumerate(buffers or ()):
                out.append((f"{name}/{i}", buf, _writer(buf)))
        names = [name for name, _ in self.rule.SLOTS]
        groups = self.keras_variable_groups or tuple((name,) for name in names)
        for group in groups:
            for i, buffers in enumerate(self._slots):
                for name in group:
                    buf = buffers[names.index(name)]
                    if buf is not None:
                        out.append((f"{name}/{i}", buf, _writer(buf)))
        global_steps = len(self._step_state) == 1 and self._params
        if global_steps and "mu_product" in dict(getattr(self.rule, "STEP_STATE", ())):
            out.append(("u_product", np.array(self._step_state[0][0]), self._set_mu_product))
        return out

    def _set_keras_iterations(self, value: np.ndarray) -> None:
        k = self._config["gradient_accumulation_steps"] or 0
        count = int(value)
        self._iterations, self._micro_step = divmod(count, k) if k else (count, 0)
        if k:  # a parameter takes part in the next update if its accumulator holds anything
            self._accumulated = [
                bool(self._micro_step) and bool(np.any(a)) for a in self._accumulators
            ]

    def _set_keras_learning_rate(self, value: np.ndarray) -> None:
        self.learning_rate = float(value)

    def _set_mu_product(self, value: np.ndarray) -> None:
        self._step_state[0] = (float(value), *self._step_state[0][1:])

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Keras's ``set_weights``: write ``weights`` (one array per entry of
        :attr:`variables`, in that order) into the optimizer. The optimizer must be built.
        Every weight is checked first (the count, each shape, iterations an integer >= 0,
        the learning rate a finite number >= 0 within the parameters' dtype, slots real
        numbers their dtype holds); a refused list changes nothing."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Please call `optimizer.build(trainable_variables)` to create the optimizer "
                "weights before calling `set_weights()`."
            )
        weights = _as_list("weights", weights)
        targets = self._keras_variables()
        if len(weights) != len(targets):
            raise ValueError(
                f"weights must hold {len(targets)} arrays (this optimizer's variables: "
                f"{', '.join(name for name, _, _ in targets[:6])}"
                f"{', ...' if len(targets) > 6 else ''}), got {len(weights)}"
            )
        values = []
        for i, ((name, current, _), weight) in enumerate(zip(targets, weights, strict=True)):
            where = f"weights[{i}] ({name})"
            try:
                array = np.asarray(weight)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{where} must be an array, got {show(weight)}: {error}") from None
            if array.shape != current.shape:
                raise ValueError(
                    f"Optimizer variable {i} ({name}) has shape {current.shape} not compatible "
                    f"with provided weight shape {array.shape}."
                )
            if array.dtype.kind not in "biuf":
                raise TypeError(f"{where} must hold real numbers, got dtype {array.dtype}")
            if name == "iterations":
                check_int(where, array.item(), 0, MAX_COUNT)
            elif name == "learning_rate":
                lr = check_learning_rate(array.item(), self._preset, type(self).__name__)
                self._check_in_dtype(self._config, lr, self._narrowest)
            elif name == "u_product":
                check_float(where, array.item())
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    cast = array.astype(current.dtype)
                if np.any(np.isfinite(array) & ~np.isfinite(cast)):
                    raise ValueError(
                        f"{where} holds values {current.dtype} cannot hold (largest "
                        f"{np.finfo(current.dtype).max:.3g}), got {show(weight)}"
                    )
                array = cast
            values.append(array)
        for (_, _, write), array in zip(targets, values, strict=True):
            write(array)
        self._plan = None

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        """Whether an ``optional`` slot exists under the current hyperparameters."""
        return kind == "required"

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def build(self, params: Sequence[np.ndarray]) -> None:
        """Create the state of every parameter (done by the first update if not called).
        ``build([])`` builds an optimizer of no parameters, as in Keras (it updates none)."""
        if self.built:
            raise ValueError(f"{self.name} is already built with {len(self._params)} parameters")
        params = _as_list("params", params, arrays=True)
        seen: set[int] = set()
        for i, p in enumerate(params):
            _check_param(p, i)
            if id(p) in seen:
                raise ValueError(f"parameter {i} appears twice in params")
            seen.add(id(p))
        check_no_overlap(params)
        if params:  # build([]) (Keras) has no dtype to check the hyperparameters against
            narrowest = min((p.dtype for p in params), key=lambda d: d.itemsize)
            self._check_in_dtype(self._config, self._learning_rate, narrowest)
            self._narrowest = narrowest
            self._lr_limit = float(np.finfo(narrowest).max)
        self._roots = {}
        for i, p in enumerate(params):
            self._roots.setdefault(id(_root(p)), []).append(i)
        self._built = True  # every check passed: a refused build leaves it unbuilt
        self._params = params
        self._index = {id(p): i for i, p in enumerate(params)}
        self._slots = [
            [
                np.full_like(p, self._slot_initial_value(name), subok=False)
                if self._slot_enabled(name, kind)
                else None
                for name, kind in self.rule.SLOTS
            ]
            for p in params
        ]
        initial = tuple(v for _, v in getattr(self.rule, "STEP_STATE", ()))
        per_parameter = self._conventions["step_counting"] == "per_parameter"
        self._step_state = [initial for _ in (params if per_parameter else params[:1])]
        self._param_steps = [0 for _ in params]
        if self._config["gradient_accumulation_steps"]:
            self._accumulators = [np.zeros_like(p, subok=False) for p in params]
            self._accumulated = [False for _ in params]
        if self._config["use_ema"]:
            self._ema = [np.array(p, subok=False) for p in params]

    # -- the update -----------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, np.ndarray]]) -> None:
        """Apply one (gradient, parameter) pair per parameter, updating parameters in place.

        ``opt.apply_gradients(zip(grads, params))`` as in Keras. ``zip`` cannot tell when the
        two lists differ in length; :meth:`apply` can, or write ``zip(grads, params,
        strict=True)``. A None gradient leaves its parameter (and its state) untouched; with
        ``preset="keras"`` it warns, and a call whose gradients are all None raises Keras's
        ``ValueError`` (``presets.CONVENTIONS[preset]["missing_gradients"]``).
        """
        pairs = []
        for k, pair in enumerate(_as_list("grads_and_vars", grads_and_vars)):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise TypeError(
                    f"grads_and_vars item {k} must be a (gradient, parameter) pair, got {pair!r}"
                )
            pairs.append((pair[0], pair[1]))
        self._step(pairs)

    def apply(self, grads: Sequence[Any], params: Sequence[np.ndarray] | None = None) -> None:
        """Apply ``grads`` to ``params`` (default: the parameters of the build), in place."""
        grads = _as_list("grads", grads)
        if params is None:
            if not self.built:
                raise ValueError("params must be given on the first call (nothing is built yet)")
            params = self._params
        params = _as_list("params", params, arrays=True)
        if len(grads) != len(params):
            raise ValueError(
                f"got {len(grads)} gradients for {len(params)} parameters; "
                "there must be exactly one gradient per parameter"
            )
        self._step(list(zip(grads, params, strict=True)))

    def step(self, params) -> None:
        """One update of every parameter in ``params`` (a :class:`~optimlab.Params`) with its
        gradients ``params.grads``: the optimizer sees one parameter per group (a contiguous
        range of the flat buffer), so a model of any number of arrays costs one fused pass per
        group. Each group's ``lr_scale`` and ``weight_decay`` apply to its range.

        From the second step on, a fused optimizer runs a cached plan
        (:class:`~optimlab.step_plan.StepPlan`): the same arithmetic, without re-validating
        arrays that a ``Params`` cannot change."""
        plan = self.__dict__.get("_plan")
        if plan is not None and plan.params is params and plan.run(self):
            return
        if not isinstance(params, Params):
            raise TypeError(
                f"step() takes an optimlab.Params, got {type(params).__name__}; use "
                "apply_gradients(zip(grads, params)) for separate arrays"
            )
        arrays = params.group_arrays()
        if self.built and any(id(data) not in self._index for _, data, _ in arrays):
            raise ValueError(
                "this optimizer was built for other parameters; one optimizer per Params"
            )
        if not self.built:  # before anything changes (the padding below included)
            self._check_in_dtype(self._config, self._learning_rate, params.dtype)
        if not self._params_finite(params):
            return
        if params._gaps.size:  # the padding between arrays is no gradient
            params.grad[params._gaps] = 0
        self._group_options = {
            id(data): (group.lr_scale, group.weight_decay) for group, data, _ in arrays
        }
        pairs = [(grad, data) for _, data, grad in arrays]
        if self.built:  # a Params cannot change shape or dtype: nothing to validate again
            index = self._index
            trusted = ([(index[id(p)], p, g) for g, p in pairs], self._params)
            self._step(pairs, trusted=trusted, finite=True)
        else:
            self._step(pairs, finite=True)
        if plan is None or plan.params is not params:  # (the plan knows no exclusions)
            self._plan = None if self._excluded else StepPlan.make(self, params)

    def _params_finite(self, params: Params) -> bool:
        """The ``nan_policy`` on a whole ``Params`` gradient buffer (one read): True to go on,
        False to skip the step, FloatingPointError naming the arrays for ``"raise"``."""
        policy = self._config["nan_policy"]
        if policy == "propagate" or fused.all_finite(
            params.grad, self._config["loss_scale_factor"]
        ):
            return True
        scale = self._config["loss_scale_factor"]
        counts = {}
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is what we report
            for name, g in params.grads.items():
                count = _count_non_finite(g if scale is None else g / g.dtype.type(scale))
                if count:
                    counts[name] = count
        if not counts:  # only the padding between arrays, which the step zeroes
            return True
        if policy == "skip":
            self._skipped_steps += 1
            return False
        where = ", ".join(f"{name!r} ({count})" for name, count in counts.items())
        raise FloatingPointError(
            f"the gradient of {where} has {sum(counts.values())} non-finite value(s) (NaN or "
            "Inf); nothing was changed. Pass nan_policy='skip' to skip such steps or "
            "'propagate' to apply them"
        )

    def _step(self, pairs: list[tuple[Any, np.ndarray]], trusted=None, finite=False) -> None:
        """The full path of an update; ``finite``: the gradients were already checked."""
        items, all_params = trusted or self._checked_pairs(pairs)
        if len(items) < len(pairs) and self._conventions["missing_gradients"] == "keras":
            _keras_missing_gradients(pairs, len(items))
        if not items:
            return
        if not self.built:  # before the loss scale divides by a factor the dtype cannot hold
            narrowest = min((p.dtype for p in all_params), key=lambda d: d.itemsize)
            self._check_in_dtype(self._config, self._learning_rate, narrowest)
        config = self._config
        grads = [g for _, _, g in items]
        if config["loss_scale_factor"] is not None:
            factor = config["loss_scale_factor"]
            grads = [g / g.dtype.type(factor) for g in grads]
        if config["nan_policy"] != "propagate" and not finite:
            bad = [(k, g) for k, g in enumerate(grads) if not _all_finite(g)]
            if bad:
                if config["nan_policy"] == "skip":
                    self._skipped_steps += 1
                    return
                k, g = bad[0]
                count = _count_non_finite(g)
                raise FloatingPointError(
                    f"gradient {items[k][0] if items[k][0] is not None else k} has {count} "
                    f"non-finite value(s) (NaN or Inf); nothing was changed. Pass "
                    f"nan_policy='skip' to skip such steps or 'propagate' to apply them"
                )
        k = config["gradient_accumulation_steps"]
        updating = not k or self._micro_step == k - 1
        if updating:
            limit = None if self.built else _largest_float(all_params)
            lr = self._current_learning_rate(limit)
        else:
            lr = 0.0

        if not self.built:
            self.build(all_params)
            items = [(self._index[id(p)], p, g) for (_, p, _), g in zip(items, grads, strict=True)]
        else:
            items = [(i, p, g) for (i, p, _), g in zip(items, grads, strict=True)]

        if k:
            # The accumulators hold sum(g / k), not sum(g): the mean of k finite gradients is
            # finite, their sum may not be (k float32 gradients of 3e38).
            if not updating:
                for i, _, g in items:
                    acc = self._accumulators[i]
                    acc += g / acc.dtype.type(k)
                    self._accumulated[i] = True
                self._micro_step += 1
                return
            merged = {i: g for i, _, g in items}
            items = []
            for i, acc in enumerate(self._accumulators):
                if i in merged or self._accumulated[i]:
                    mean = acc + merged[i] / acc.dtype.type(k) if i in merged else acc.copy()
                    items.append((i, self._params[i], np.asarray(mean)))
                acc[...] = 0.0
                self._accumulated[i] = False
            self._micro_step = 0
        if self._fused_for(items):
            self._update_fused(items, lr)
        else:
            self._update(items, lr)

    def _fused_for(self, items) -> bool:
        """Whether this update runs on the fused engine."""
        if self._engine_name == "reference":
            return False
        key = tuple((id(p), id(g), p.shape) for _, p, g in items)
        if key == self._fused_key:  # the same arrays as last time (a Params): same answer
            return True
        ok = all(
            fused.supports(p, np.asarray(g), *(s for s in self._slots[i] if s is not None))
            for i, p, g in items
        )
        if ok:
            self._fused_key = key
        if not ok and self._engine_name == "fused":
            raise TypeError(
                "engine='fused' needs float32/float64 C-contiguous parameters and gradients of "
                "the parameter's dtype; use engine='auto' to fall back to the reference engine"
            )
        return ok

    def _update_fused(self, items: list[tuple[int, np.ndarray, np.ndarray]], lr: float) -> None:
        """``_update`` in one compiled pass per parameter (``engines.fused``): same results."""
        config = self._config
        style = self._conventions["clip_style"]
        sign = -1.0 if config["maximize"] else 1.0
        global_scale = 1.0
        if config["global_clipnorm"]:
            norm = fused.l2_norm([g for _, _, g in items])
            global_scale = clipping.norm_scale(norm, config["global_clipnorm"], style)
        decoupled_mode = config["weight_decay_mode"] == "decoupled"
        ema_momentum = None if self._ema is None else self._ema_momentum()
        scalars_for = self._scalars_for_update(lr)
        updated = set()
        for i, p, g in items:
            self._param_steps[i] += 1
            lr_i, wd = self._item_options(p, lr)
            decoupled = wd is not None and decoupled_mode
            scale = global_scale
            if config["clipnorm"]:
                scale = clipping.norm_scale(fused.l2_norm([g]), config["clipnorm"], style)
            pipe = fused.pipeline(
                gscale=sign * scale,
                clipvalue=config["clipvalue"] or None,
                l2=wd if wd is not None and not decoupled else None,
                decoupled_wdlr=wd * lr_i if decoupled else None,
                ema_momentum=ema_momentum,
            )
            scalars = scalars_for(i, lr_i)
            ema = None if self._ema is None else self._ema[i]
            fused.apply(self.rule, p, np.asarray(g), self._slots[i], scalars, pipe, ema)
            updated.add(i)
        self._finish_update(averaged=updated)

    def _ema_momentum(self) -> float:
        """The EMA momentum of this update: 0 on the first (the average starts at p)."""
        return 0.0 if self._iterations == 0 else self._config["ema_momentum"]

    def _finish_update(self, averaged=frozenset()) -> None:
        """Move the EMA of every parameter (those in ``averaged`` were already moved inside the
        fused pass; the others move too, gradient or not), overwrite the parameters with it
        every ``ema_overwrite_frequency`` updates, and count the update."""
        if self._ema is not None:
            m = self._ema_momentum()
            for i, (p, avg) in enumerate(zip(self._params, self._ema, strict=True)):
                if i not in averaged:
                    avg[...] = avg.dtype.type(m) * avg + avg.dtype.type(1.0 - m) * p
            freq = self._config["ema_overwrite_frequency"]
            if freq and (self._iterations + 1) % freq == 0:
                for p, avg in zip(self._params, self._ema, strict=True):
                    p[...] = avg
        self.__dict__["_iterations"] += 1  # no __setattr__: the hot path

    def _update(self, items: list[tuple[int, np.ndarray, np.ndarray]], lr: float) -> None:
        config = self._config
        grads = [g for _, _, g in items]
        if config["maximize"]:
            grads = [-g for g in grads]
        style = self._conventions["clip_style"]
        if config["clipnorm"]:
            grads = clipping.clip_by_norm(grads, config["clipnorm"], style)
        elif config["global_clipnorm"]:
            grads = clipping.clip_by_global_norm(grads, config["global_clipnorm"], style)
        elif config["clipvalue"]:
            grads = clipping.clip_by_value(grads, config["clipvalue"])
        decoupled_mode = config["weight_decay_mode"] == "decoupled"
        scalars_for = self._scalars_for_update(lr)
        for (i, p, _), g in zip(items, grads, strict=True):
            self._param_steps[i] += 1
            lr_i, wd = self._item_options(p, lr)
            if wd is not None and not decoupled_mode:
                g = g + g.dtype.type(wd) * p
            if wd is not None and decoupled_mode:
                p -= p * p.dtype.type(wd * lr_i)
            ENGINES["reference"].apply(self.rule, p, g, self._slots[i], scalars_for(i, lr_i))

        self._finish_update()

    def _item_options(self, p: np.ndarray, lr: float) -> tuple[float, float | None]:
        """(learning rate, weight decay or None) of parameter ``p`` in this update: the
        optimizer's, or those of its :class:`~optimlab.Params` group; no decay for a parameter
        given to :meth:`exclude_from_weight_decay`. A decay of 0 is off (AdamW keeps a 0 in
        its config)."""
        excluded = id(p) in self._excluded
        wd = None if excluded else (self._config["weight_decay"] or None)
        group = self._group_options.get(id(p))
        if group is None:
            return lr, wd
        lr_scale, group_wd = group
        if group_wd is not None and not excluded:
            wd = group_wd or None
        return lr * lr_scale, wd

    def _scalars_for_update(self, lr: float):
        """``scalars_for(i, lr_i)``: the rule's scalars of parameter ``i`` at learning rate
        ``lr_i``. With one global step count the step state (Nadam's momentum product) advances
        once per update, however many learning rates the groups ask for."""
        if self._conventions["step_counting"] == "per_parameter":
            return lambda i, lr_i: self._step_scalars(i, self._param_steps[i], lr_i)
        t = self._iterations + 1
        before = self._step_state[0] if self._step_state else None
        cache: dict[float, tuple] = {}

        def scalars_for(i, lr_i):
            if lr_i not in cache:
                if before is not None:
                    self._step_state[0] = before
                cache[lr_i] = self._step_scalars(0, t, lr_i)
            return cache[lr_i]

        scalars_for(0, lr)
        return scalars_for

    def _step_scalars(self, k: int, t: int, lr: float) -> tuple:
        """The rule's per-step scalars for step ``t``, advancing step state ``k`` if any."""
        memo = self.__dict__.get("_hyper_memo")
        if memo is None or memo[0] != len(self._params):  # rebuilt after a config change
            stateful = getattr(self.rule, "STEP_STATE", None) is not None
            memo = (len(self._params), self._rule_hyperparameters(), stateful)
            self.__dict__["_hyper_memo"] = memo
        _, hyper, stateful = memo
        if stateful:
            scalars, self._step_state[k] = self.rule.scalars(t, lr, self._step_state[k], **hyper)
            return scalars
        return self.rule.scalars(t, lr, **hyper)

    def _power_dtype(self):
        """The dtype the bias-correction powers round beta to (None: exact double precision);
        see ``presets.CONVENTIONS["keras"]["power_precision"]``."""
        if self._conventions["power_precision"] != "dtype" or not self._params:
            return None
        count, dtype = self._power_dtype_memo
        if count != len(self._params):
            dtype = min((p.dtype for p in self._params), key=lambda d: d.itemsize)
            self._power_dtype_memo = (len(self._params), dtype)
        return dtype

    def _rule_hyperparameters(self) -> dict:
        """The keyword arguments of ``rule.scalars`` (subclasses map their names)."""
        return {key: self._config[key] for key in self.hyperparameters}

    def _checked_pairs(self, pairs):
        """Validate every pair before anything changes.

        Returns the (index or None, p, g) of the pairs with a gradient, and every parameter
        (a first call builds the optimizer with all of them, None gradients included)."""
        out, params = [], []
        seen: set[int] = set()
        for k, (g, p) in enumerate(pairs):
            _check_param(p, k)
            if id(p) in seen:
                raise ValueError(f"parameter {k} appears twice in this update")
            seen.add(id(p))
            params.append(p)
            if self.built and id(p) not in self._index:
                raise ValueError(
                    f"parameter {k} (shape {p.shape}, {p.dtype}) is not one of the "
                    f"{len(self._params)} parameters this optimizer was built with; build it "
                    "with all of them first: optimizer.build(params)"
                )
            if g is not None:
                out.append((self._index.get(id(p)), p, _checked_gradient(g, p, k)))
        if out:
            _check_gradients_apart(
                out, self._params if self.built else params, self._roots if self.built else None
            )
        return out, params

    # -- EMA --------------------------------------------------------------------------------

    @property
    def ema(self) -> list[np.ndarray] | None:
        """The exponential moving averages of the parameters (``use_ema=True``), or None."""
        return None if self._ema is None else list(self._ema)

    # -- Keras's extras ---------------------------------------------------------------------

    #: ids of the parameters given to exclude_from_weight_decay (and the arrays, kept alive so
    #: that their ids stay theirs)
    _excluded: frozenset = frozenset()
    _excluded_arrays: tuple = ()

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """No weight decay for the parameters in ``var_list`` (Keras's method): matched by
        identity, from the next update on; a new call replaces the previous list.

        ``var_names`` (Keras matches these strings in variable names) is refused: NumPy arrays
        have no names. Pass the arrays themselves, or give a :class:`~optimlab.Params` group
        ``weight_decay=0``.
        """
        if var_names is not None and (isinstance(var_names, str) or len(var_names)):
            raise TypeError(
                f"var_names={var_names!r} cannot be matched: NumPy arrays have no names; pass "
                "the arrays as var_list=[...] (or give a Params group weight_decay=0)"
            )
        if var_list is None:
            arrays = []
        elif isinstance(var_list, np.ndarray) or not isinstance(var_list, Iterable):
            raise TypeError(
                f"var_list must be a list of parameters (NumPy arrays), got {type(var_list)}"
            )
        else:
            arrays = list(var_list)
        for k, p in enumerate(arrays):
            if not isinstance(p, np.ndarray):
                raise TypeError(
                    f"var_list[{k}] must be a NumPy array (a parameter), got {type(p).__name__}"
                )
        self._excluded = frozenset(id(p) for p in arrays)
        self._excluded_arrays = tuple(arrays)
        self.__dict__["_plan"] = None

    def scale_loss(self, loss: Any) -> Any:
        """``loss * loss_scale_factor``, or ``loss`` without a factor (Keras's method): scale
        the loss before taking its gradients; ``apply_gradients`` divides them by the factor."""
        factor = self._config["loss_scale_factor"]
        return loss if factor is None else loss * factor

    def finalize_variable_values(self, params: Sequence[np.ndarray] | None = None) -> None:
        """Overwrite the parameters with their moving averages (Keras calls this at the end of
        ``fit``); does nothing without ``use_ema``."""
        if self._ema is None:
            return
        targets = self._params if params is None else _as_list("params", params, arrays=True)
        for k, p in enumerate(targets):
            if id(p) not in self._index:
                raise ValueError(
                    f"finalize_variable_values got parameter {k} ({show(p)}), which this "
                    "optimizer does not track; nothing was changed"
                )
        for p in targets:
            p[...] = self._ema[self._index[id(p)]]

    # -- configuration --------------------------------------------------------------------

    def get_config(self) -> dict:
        """Every constructor argument, resolved (JSON-serializable); ``from_config`` rebuilds."""
        return self._config_dict(allow_callables=False)

    def _config_dict(self, allow_callables: bool) -> dict:
        config = {"name": self.name, "preset": self._preset, "engine": self._engine_name}
        lr = self._learning_rate
        if isinstance(lr, float):
            config["learning_rate"] = lr
        elif isinstance(lr, schedules.LearningRateSchedule):
            try:
                config["learning_rate"] = schedules.serialize(lr)
            except TypeError:  # e.g. a LinearWarmup around a plain callable
                if not allow_callables:
                    raise
                config["learning_rate"] = lr
        elif allow_callables:
            config["learning_rate"] = lr
        else:
            raise TypeError(
                f"learning_rate {lr!r} is a plain callable and cannot be serialized; use a "
                "schedule from optimlab.schedules"
            )
        config.update(self._config)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """Build an optimizer from :meth:`get_config`'s output."""
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr)
        return cls(**config)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in self._config.items()
            if k in self.hyperparameters and not k.endswith(("_style", "_mode"))
        )
        return (
            f"{type(self).__name__}(learning_rate={self._learning_rate!r}, {shown}, "
            f"name={self.name!r}, preset={self._preset!r})"
        )

    # -- state_dict -----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically: config, counters, learning rate
        (with a stateful schedule's state) and every state buffer, as copies."""
        slots = {}
        if self.built:
            for i, buffers in enumerate(self._slots):
                for (name, _), buf in zip(self.rule.SLOTS, buffers, strict=True):
                    if buf is not None:
                        slots[f"{name}/{i}"] = buf.copy()
        sched_state = None
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            sched_state = self._learning_rate.state_dict()
        return {
            "optimizer": type(self).__name__,
            "config": self._config_dict(allow_callables=True),
            "iterations": self.iterations,
            "skipped_steps": self.skipped_steps,
            "micro_step": self._micro_step,
            "num_params": len(self._params),
            "shapes": [list(p.shape) for p in self._params],
            "dtypes": [p.dtype.str for p in self._params],
            "param_steps": list(self._param_steps),
            "step_state": [list(s) for s in self._step_state],
            "schedule_state": sched_state,
            "slots": slots,
            "accumulators": None
            if self._accumulators is None
            else [a.copy() for a in self._accumulators],
            "accumulated": list(self._accumulated),
            "ema": None if self._ema is None else [a.copy() for a in self._ema],
        }

    def load_state_dict(self, state: dict, params: Sequence[np.ndarray] | None = None) -> None:
        """Restore :meth:`state_dict`'s output. The optimizer must be built (pass ``params`` to
        build it now). The saved configuration (preset, engine, hyperparameters, learning
        rate) replaces the optimizer's. Every field is checked, and the whole state is loaded
        into a fresh optimizer first: a refused state leaves this one exactly as it was."""
        probe = self._loaded_probe(state, params)
        groups = self._group_options if params is None else {}
        self.__dict__.update(probe.__dict__)  # adopt everything at once
        self.__dict__.update(
            _group_options=groups,
            _fused_key=None,
            _power_dtype_memo=(None, None),
            _hyper_memo=None,
            _plan=None,
        )

    _STATE_KEYS = (
        "optimizer",
        "config",
        "iterations",
        "skipped_steps",
        "micro_step",
        "num_params",
        "shapes",
        "dtypes",
        "param_steps",
        "step_state",
        "schedule_state",
        "slots",
        "accumulators",
        "accumulated",
        "ema",
    )

    def _loaded_probe(self, state: Any, params: Sequence[np.ndarray] | None) -> Optimizer:
        """A new optimizer of this class with ``state`` loaded, every field validated."""
        kind = type(self).__name__
        if not isinstance(state, dict):
            raise TypeError(
                f"state must be a dict produced by {kind}.state_dict(), got {show(state)} of "
                f"type {type(state).__name__}"
            )
        missing = [k for k in self._STATE_KEYS if k not in state]
        unknown = sorted(show(k) for k in state if k not in self._STATE_KEYS)
        if missing or unknown:
            raise ValueError(
                f"state must have exactly the keys of {kind}.state_dict(): missing {missing}, "
                f"unexpected [{', '.join(unknown)}]"
            )
        if state["optimizer"] != kind:
            raise ValueError(
                f"state['optimizer'] is {show(state['optimizer'])}: the state was saved by "
                f"{show(state['optimizer'])}, cannot load into {kind}"
            )
        n = check_int("state['num_params']", state["num_params"], 0, MAX_COUNT)
        if params is not None:
            if self.built:
                raise ValueError("the optimizer is already built; call load_state_dict(state)")
            plist = _as_list("params", params, arrays=True)
        elif not self.built and n:
            raise ValueError(
                "the optimizer is not built: pass its parameters, "
                "optimizer.load_state_dict(state, params)"
            )
        else:
            plist = list(self._params)
        if len(plist) != n:
            raise ValueError(
                f"state['num_params'] is {n}: the state holds {n} parameters, the optimizer "
                f"has {len(plist)}"
            )

        config = state["config"]
        if not isinstance(config, dict):
            raise TypeError(f"state['config'] must be a dict from get_config(), got {show(config)}")
        config = dict(config)
        if isinstance(config.get("learning_rate"), schedules.LearningRateSchedule):
            config["learning_rate"] = copy.deepcopy(config["learning_rate"])  # not shared
        probe = type(self).from_config(config)  # validates every value
        lacking = sorted(set(probe._config_dict(allow_callables=True)) - set(config))
        if lacking:
            raise ValueError(
                f"state['config'] lacks {lacking}: a state_dict() holds every argument"
            )

        shapes = _list_field(state, "shapes", n)
        dtypes = _list_field(state, "dtypes", n)
        for i, p in enumerate(plist):
            _check_param(p, i)
            shape = _shape_field(f"state['shapes'][{i}]", shapes[i])
            if not (isinstance(dtypes[i], str) and dtypes[i] in {d.str for d in FLOAT_DTYPES}):
                raise ValueError(
                    f"state['dtypes'][{i}] must be one of "
                    f"{', '.join(repr(d.str) for d in FLOAT_DTYPES)}, got {show(dtypes[i])}"
                )
            if p.shape != shape or p.dtype.str != dtypes[i]:
                raise ValueError(
                    f"parameter {i} has shape {p.shape} and dtype {p.dtype}, the state was saved "
                    f"for shape {shape} and dtype {np.dtype(dtypes[i])}"
                )
        if n:
            probe.build(plist)  # checks the parameters (aliasing, dtype limits) once more

        slots = state["slots"]
        if not isinstance(slots, dict):
            raise TypeError(f"state['slots'] must be a dict name/index -> array, got {show(slots)}")
        targets = {}
        for i, buffers in enumerate(probe._slots):
            for (name, _), buf in zip(probe.rule.SLOTS, buffers, strict=True):
                if buf is not None:
                    targets[f"{name}/{i}"] = buf
        if set(slots) != set(targets):
            raise ValueError(
                f"state['slots'] do not match the optimizer's buffers: missing "
                f"{sorted(set(targets) - set(slots))}, unexpected "
                f"[{', '.join(sorted(show(k) for k in slots if k not in targets))}]"
            )
        for key, buf in targets.items():
            buf[...] = _array_field(f"state['slots'][{key!r}]", slots[key], buf)
        for what, buffers in (("accumulators", probe._accumulators), ("ema", probe._ema)):
            saved = state[what]
            if (saved is None) != (buffers is None):
                raise ValueError(
                    f"state['{what}'] is {'None' if saved is None else 'present'}, but the "
                    f"saved configuration {'keeps' if buffers is not None else 'has no'} {what}"
                )
            if buffers is not None:
                saved = _list_field(state, what, n)
                for i, buf in enumerate(buffers):
                    buf[...] = _array_field(f"state['{what}'][{i}]", saved[i], buf)

        k = probe._config["gradient_accumulation_steps"]
        probe._iterations = check_int("state['iterations']", state["iterations"], 0, MAX_COUNT)
        probe._skipped_steps = check_int(
            "state['skipped_steps']", state["skipped_steps"], 0, MAX_COUNT
        )
        probe._micro_step = check_int("state['micro_step']", state["micro_step"], 0, (k or 1) - 1)
        probe._param_steps = [
            check_int(f"state['param_steps'][{i}]", s, 0, MAX_COUNT)
            for i, s in enumerate(_list_field(state, "param_steps", n))
        ]
        width = len(getattr(probe.rule, "STEP_STATE", ()))
        probe._step_state = [
            tuple(
                check_float(f"state['step_state'][{i}][{j}]", x)
                for j, x in enumerate(_sequence(f"state['step_state'][{i}]", entry, width))
            )
            for i, entry in enumerate(_list_field(state, "step_state", len(probe._step_state)))
        ]
        accumulated = state["accumulated"]
        if k:
            probe._accumulated = [
                check_bool(f"state['accumulated'][{i}]", x)
                for i, x in enumerate(_list_field(state, "accumulated", n))
            ]
        elif not (
            accumulated is None or (isinstance(accumulated, list | tuple) and not accumulated)
        ):
            raise ValueError(
                f"state['accumulated'] must be [] without gradient accumulation, got "
                f"{show(accumulated)}"
            )

        # Last, as it is the only step that touches an object the caller may hold: a schedule.
        sched_state = state["schedule_state"]
        lr = probe._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            if sched_state is not None:
                try:
                    lr.load_state_dict(sched_state)
                except (TypeError, ValueError) as error:
                    raise type(error)(f"state['schedule_state']: {error}") from None
        elif not (sched_state is None or (isinstance(sched_state, dict) and not sched_state)):
            raise ValueError(
                f"state['schedule_state'] must be None when the learning rate is not a "
                f"schedule, got {show(sched_state)}"
            )
        return probe

    # -- files ----------------------------------------------------------------------------

    def save(self, path, params: Sequence[np.ndarray] | None = None) -> None:
        """Write the optimizer state (and, if given, the parameters) to ``path`` atomically,
        without pickle; see :func:`optimlab.checkpoint.save`."""
        from . import checkpoint

        checkpoint.save(path, self, params=params)

    def load(self, path, params: Sequence[np.ndarray] | None = None) -> None:
        """Restore the state written by :meth:`save` (verified before anything changes)."""
        from . import checkpoint

        checkpoint.restore(path, self, params=params)


def _keras_missing_gradients(pairs: list, with_gradient: int) -> None:
    """Keras's rule for None gradients (``presets.CONVENTIONS[preset]["missing_gradients"]``):
    every gradient None raises Keras's ValueError, some None warn as Keras does."""
    if not with_gradient:
        raise ValueError(
            f"No gradients provided for any variable. (The {len(pairs)} gradient(s) given are "
            "all None; nothing was changed.)"
        )
    missing = ", ".join(
        f"parameter {k} (shape {p.shape}, {p.dtype})" for k, (g, p) in enumerate(pairs) if g is None
    )
    warnings.warn(
        f"Gradients do not exist for variables [{missing}] when minimizing the loss; they and "
        "their state are left unchanged.",
        UserWarning,
        stacklevel=4,
    )


def _writer(buffer: np.ndarray) -> Callable[[np.ndarray], None]:
    """Write a value into ``buffer`` in place (its identity, and every view of it, kept)."""

    def write(value: np.ndarray) -> None:
        buffer[...] = value

    return write


def _sequence(name: str, value: Any, length: int) -> list:
    """A list or tuple of exactly ``length`` items (a loaded field), as a list."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of {length} items, got {show(value)}")
    if len(value) != length:
        raise ValueError(f"{name} must have {length} items, got {len(value)}: {show(value)}")
    return list(value)


def _list_field(state: dict, key: str, length: int) -> list:
    return _sequence(f"state[{key!r}]", state[key], length)


def _shape_field(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of integers >= 0 (a shape), got {show(value)}")
    return tuple(check_int(f"{name}[{j}]", x, 0, MAX_COUNT) for j, x in enumerate(value))


def _array_field(name: str, value: Any, like: np.ndarray) -> np.ndarray:
    """A loaded state buffer: an array of exactly ``like``'s shape and dtype."""
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and the like
        arr = None
    if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
        got = "not an array" if arr is None else f"shape {arr.shape} and dtype {arr.dtype}"
        raise ValueError(f"{name} must have shape {like.shape} and dtype {like.dtype}, got {got}")
    return arr


def _as_list(name: str, value: Any, arrays: bool = False) -> list:
    """``list(value)`` for a sequence argument, with an error naming it for anything else (None,
    a number, a string; for a list of arrays also one array, whose rows are not parameters)."""
    if isinstance(value, str | bytes) or (arrays and isinstance(value, np.ndarray)):
        raise TypeError(
            f"{name} must be a list of arrays, got {show(value)} of type {type(value).__name__}"
            + ("; pass [array] for one array" if isinstance(value, np.ndarray) else "")
        )
    try:
        return list(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a list (or another iterable), got {show(value)} of type "
            f"{type(value).__name__}"
        ) from None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _root(a: np.ndarray) -> Any:
    """The object at the end of ``a.base``: arrays viewing the same memory share it."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return a


def _largest_float(params: Sequence[np.ndarray]) -> float:
    """The largest finite float of the narrowest dtype among ``params`` (inf if none)."""
    floats = [p.dtype for p in params if isinstance(p, np.ndarray) and p.dtype in FLOAT_DTYPES]
    if not floats:
        return math.inf
    return float(np.finfo(min(floats, key=lambda d: d.itemsize)).max)


def _check_param(p: Any, k: int) -> None:
    if not isinstance(p, np.ndarray):
        raise TypeError(
            f"parameter {k} must be a NumPy array (float32 or float64), got {type(p).__name__}"
        )
    if type(p) is not np.ndarray and not isinstance(p, np.memmap):
        kind = f"{type(p).__module__}.{type(p).__name__}"
        raise TypeError(
            f"parameter {k} must be a numpy.ndarray (or numpy.memmap), got a {kind}, whose "
            "arithmetic differs (np.matrix multiplies as matrices, masked arrays skip masked "
            "elements); pass np.asarray(p), a plain view of the same memory"
        )
    if p.dtype not in FLOAT_DTYPES:
        raise TypeError(f"parameter {k} must have dtype float32 or float64, got {p.dtype}")
    if not p.flags.writeable:
        raise ValueError(f"parameter {k} is read-only; the optimizer updates it in place")


def _checked_gradient(g: Any, p: np.ndarray, k: int) -> np.ndarray:
    if isinstance(g, np.ndarray):
        if type(g) is not np.ndarray:
            if isinstance(g, np.ma.MaskedArray):
                raise TypeError(
                    f"gradient {k} is a masked array; its masked elements are not gradients: "
                    "pass g.filled(0.0)"
                )
            g = np.asarray(g)  # a plain view of a subclass (np.matrix multiplies as matrices)
        if g.dtype != p.dtype:
            raise TypeError(
                f"gradient {k} has dtype {g.dtype} but its parameter has {p.dtype}; "
                f"cast it first (g.astype(np.{p.dtype}))"
            )
    else:
        try:
            raw = np.asarray(g)
        except (TypeError, ValueError, OverflowError):
            raw = None
        if raw is None or raw.dtype.kind not in "iuf":
            kind = "ragged or not numbers" if raw is None else f"dtype {raw.dtype}"
            raise TypeError(
                f"gradient {k} must be an array of numbers (integers or floats), got "
                f"{show(g)} of type {type(g).__name__} ({kind})"
            )
        g = np.asarray(raw, dtype=p.dtype)
    if g.shape != p.shape:
        raise ValueError(f"gradient {k} has shape {g.shape} but its parameter has shape {p.shape}")
    return g


def _check_gradients_apart(items, params: Sequence[np.ndarray], roots) -> None:
    """Refuse a gradient that shares memory with a parameter: the update writes the parameter
    while the gradient is being read, and the engines would disagree. Only gradients viewing
    the same base buffer as some parameter (``roots``: id of the base -> parameter indices)
    pay for the exact test."""
    if roots is None:
        roots = {}
        for i, p in enumerate(params):
            roots.setdefault(id(_root(p)), []).append(i)
    for _, p, g in items:
        base = g
        while base.base is not None:  # _root, inlined: this runs for every gradient
            base = base.base
            if not isinstance(base, np.ndarray):
                break
        hits = roots.get(id(base))
        if not hits:
            continue
        for j in hits:
            if np.shares_memory(g, params[j]):
                k = next(n for n, q in enumerate(params) if q is p)
                who = "its own parameter" if j == k else f"parameter {j}"
                raise ValueError(
                    f"the gradient of parameter {k} shares memory with {who}; pass a separate "
                    "array (g.copy())"
                )


def _all_finite(g) -> bool:
    """Whether a gradient has no NaN/Inf (one vectorized read where the fused engine can run)."""
    g = np.asarray(g)
    if fused.supports(g) and g.size >= 1024:
        return fused.all_finite(g)
    return bool(np.isfinite(g).all())


def _count_non_finite(g) -> int:
    """NaN/Inf count of a gradient, without a temporary array where the fused engine can run."""
    g = np.asarray(g)
    if fused.supports(g) and g.size >= 1024:
        return fused.count_non_finite(g)
    return int(g.size - np.count_nonzero(np.isfinite(g)))
