"""The optimizer runtime: :class:`Optimizer`, the base of every Keras-dialect optimizer.

It is split along its seams, one module each:

- here: the configuration (hyperparameters, their validation and presets, the learning rate
  as a float or a schedule, ``get_config``/``from_config``), the counters and ``build``;
- :mod:`optimlab.optimizer_pipeline`: the per-step pipeline (``apply_gradients``, ``apply``,
  ``step(params)``: checks, accumulation, gradient transforms, the rule on an engine, EMA);
- :mod:`optimlab.optimizer_state`: the state as a whole (``state_dict``/``load_state_dict``,
  files, Keras's ``variables``/``set_weights``);
- :mod:`optimlab.optimizer_checks`: the checks of parameters, gradients and learning rates.

A new optimizer is one rule (:mod:`optimlab.rules`), one preset entry and one class in
:mod:`optimlab.optimizers`. Nothing is changed before every check has passed: a bad
gradient, a gradient of the wrong shape or dtype, or a schedule that returns a negative
learning rate leaves the parameters and the optimizer exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import naming, presets, schedules
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
from .engines import ENGINE_CHOICES, ENGINES
from .optimizer_checks import (  # noqa: F401 (FLOAT_DTYPES, check_learning_rate: re-exported)
    FLOAT_DTYPES,
    _as_list,
    _check_param,
    _is_real,
    _largest_float,
    _root,
    check_learning_rate,
)
from .optimizer_pipeline import UpdatePipeline
from .optimizer_state import StateIO
from .quantization import state as narrow_state

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
#: float32), name -> whether they must stay > 0 in that dtype (then a value that rounds to 0
#: there is refused too): those divided by, and Rprop's shrink factor and smallest step
IN_PARAMETER_DTYPE = {
    "learning_rate": False,
    "epsilon": False,
    "epsilon_root": False,
    "weight_decay": False,
    "initial_accumulator_value": False,
    "loss_scale_factor": True,
    "eta_minus": True,
    "eta_plus": False,
    "min_step_size": True,
    "max_step_size": False,
    "l1_regularization_strength": False,
    "l2_regularization_strength": False,
    "l2_shrinkage_regularization_strength": False,
    "beta": False,
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


class Optimizer(UpdatePipeline, StateIO):
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
    state_dtype
        how the slots of the rule's ``QUANTIZED_SLOTS`` are stored: ``"float32"`` (default: the
        parameter's dtype), ``"bfloat16"``, ``"int8"`` (blockwise dynamic 8-bit) or ``"int4"``
        (torchao's blockwise 4-bit); see
        :mod:`optimlab.quantization.state`. Narrow state needs float32 parameters; those of
        fewer than 4096 elements keep float32 state. A slot that starts at a nonzero value
        (Adagrad's initial accumulator) starts at that value as the narrow format stores it.
        Rules that declare no such slots (ASGD, Ftrl) say why when refusing. A storage
        choice, not part of the saved state: ``load_state_dict`` converts a state saved with
        another ``state_dtype``.
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
    #: whether the rule divides by the learning rate (Ftrl): then 0 is refused, as a number
    #: and as a schedule's value
    learning_rate_positive: bool = False

    def __init__(
        self,
        *,
        name: str | None = None,
        preset: str = "keras",
        engine: str = "auto",
        state_dtype: str = "float32",
        **arguments: Any,
    ) -> None:
        kind = type(self).__name__
        preset = check_choice("preset", preset, presets.PRESETS)
        engine = check_choice("engine", engine, ENGINE_CHOICES)
        state_dtype = self._checked_state_dtype(state_dtype)
        if engine == "fused" and getattr(self.rule, "TENSOR", False):
            raise ValueError(
                f"engine='fused' is not available for {kind}: its rule works on whole "
                "matrices (NumPy and BLAS), not element by element; use engine='auto' or "
                "'reference'"
            )
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
        object.__setattr__(self, "_state_dtype", state_dtype)
        object.__setattr__(self, "_config", {})
        self._conventions = presets.CONVENTIONS[preset]
        self._engine = ENGINES.get(engine)
        self._engine_name = engine
        self.name = kind if name is None else str(name)
        self._learning_rate = check_learning_rate(
            resolved.pop("learning_rate"), preset, kind, self.learning_rate_positive
        )
        for key, value in resolved.items():
            self._config[key] = self._validator(key)(key, value)
        self._check_combinations(self._config)
        self._reset_state()
        if name is None:  # only once every check has passed: a refused call uses no name
            self.name = naming.auto_name(kind)

    # -- state storage --------------------------------------------------------------------

    @classmethod
    def _checked_state_dtype(cls, value: Any) -> str:
        """``state_dtype`` checked: one of :data:`~optimlab.quantization.state.STATE_DTYPES`
        where the rule declares ``QUANTIZED_SLOTS`` (and runs element by element), else only
        ``"float32"``."""
        narrow = getattr(cls.rule, "QUANTIZED_SLOTS", None) and not getattr(
            cls.rule, "TENSOR", False
        )
        if narrow:
            return check_choice("state_dtype", value, narrow_state.STATE_DTYPES)
        if isinstance(value, str) and value in narrow_state.STATE_DTYPES[1:]:
            reason = getattr(cls.rule, "FLOAT32_STATE", None)
            reason = reason or "its rule declares no QUANTIZED_SLOTS"
            raise ValueError(
                f"state_dtype={value!r} is not available for {cls.__name__}: {reason}; valid: "
                "'float32'"
            )
        return check_choice("state_dtype", value, ("float32",))

    @property
    def state_dtype(self) -> str:
        """How the rule's quantizable slots are stored: ``"float32"``, ``"bfloat16"``,
        ``"int8"`` or ``"int4"`` (fixed at construction)."""
        return self._state_dtype

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
        refusal = getattr(self.rule, "narrow_state_refusal", None)
        state_dtype = self.__dict__.get("_state_dtype", "float32")
        if refusal is not None and state_dtype != "float32":
            reason = refusal(**config)
            if reason is not None:
                raise ValueError(
                    f"state_dtype={state_dtype!r} is not available for {type(self).__name__} "
                    f"with {reason}; valid: 'float32'"
                )

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
        lr = check_learning_rate(
            value, self._preset, type(self).__name__, self.learning_rate_positive
        )
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
            if value > 0.0 or not self.learning_rate_positive:
                return float(value)
        return self._checked_schedule_value(lr, value, limit)

    def _checked_schedule_value(self, lr: Any, value: Any, limit: float) -> float:
        step = self.iterations
        where = f"learning rate schedule {show(lr)} returned {show(value)} at step {step}"
        positive = self.learning_rate_positive
        bound = "a finite float > 0" if positive else "a finite float >= 0"
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
        if not (math.isfinite(x) and 0.0 <= x <= limit) or (positive and x == 0.0):
            raise ValueError(f"{where}; it must return {bound}")
        return x

    # -- counters and the build -----------------------------------------------------------

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

    def _slot_enabled(self, slot: str, kind: str) -> bool:
        """Whether an ``optional`` slot exists under the current hyperparameters."""
        return kind == "required"

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def _new_slot(self, name: str, kind: str, p: np.ndarray) -> np.ndarray | None:
        """The state buffer ``name`` of parameter ``p``: p's shape, or the shape the rule's
        ``slot_shape(name, p.shape, **hyperparameters)`` gives (Adafactor's factored rows and
        columns; None where the parameter has no such buffer, as Muon's second moment of a
        matrix); None for an optional slot that is switched off."""
        if not self._slot_enabled(name, kind):
            return None
        if name in getattr(self.rule, "PARAMETER_SLOTS", ()):  # starts as a copy of p
            return np.array(p, subok=False)
        shape = p.shape
        slot_shape = getattr(self.rule, "slot_shape", None)
        if slot_shape is not None:
            shape = slot_shape(name, p.shape, **self._rule_hyperparameters())
            if shape is None:
                return None
        initial = self._slot_initial_value(name)
        signs = getattr(self.rule, "QUANTIZED_SLOTS", {})
        if (
            self._state_dtype != "float32"
            and name in signs
            and not narrow_state.stays_float32(p.size)
        ):
            buffer = narrow_state.new_state(self._state_dtype, shape, signs[name] == "signed")
            if initial != 0.0:  # (Adagrad's 0.1: stored as the narrow format holds it)
                buffer.assign(np.full(shape, initial, dtype=np.float32))
            return buffer
        return np.full(shape, initial, dtype=p.dtype)

    def _check_parameter_shapes(self, shapes: Sequence[tuple]) -> None:
        """Refuse parameters of shapes the rule cannot take (nothing here; Muon under
        ``non_matrix="raise"`` takes matrices only): a ValueError naming the parameter.
        :meth:`build` asks it, and the traced faces, which hold no NumPy parameters."""

    def _checked_build_params(self, params: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The checks of :meth:`build` on its parameters (nothing changes): the list."""
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
        if self._state_dtype != "float32":
            for i, p in enumerate(params):
                if p.dtype != np.float32:
                    raise TypeError(
                        f"state_dtype={self._state_dtype!r} keeps float32 moments narrow: "
                        f"parameter {i} must be float32, got {p.dtype}"
                    )
        self._check_parameter_shapes([p.shape for p in params])
        return params

    def build(self, params: Sequence[np.ndarray]) -> None:
        """Create the state of every parameter (done by the first update if not called).
        ``build([])`` builds an optimizer of no parameters, as in Keras (it updates none)."""
        params = self._checked_build_params(params)
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
            [self._new_slot(name, kind, p) for name, kind in self.rule.SLOTS] for p in params
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
        config = {
            "name": self.name,
            "preset": self._preset,
            "engine": self._engine_name,
            "state_dtype": self._state_dtype,
        }
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
