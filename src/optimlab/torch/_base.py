"""The base of the PyTorch drop-ins: a ``torch.optim.Optimizer`` that runs optimlab's rules.

Everything a torch user relies on comes from ``torch.optim.Optimizer`` itself: ``param_groups``,
``add_param_group``, ``zero_grad``, ``state_dict`` / ``load_state_dict`` (the same structure as
torch.optim's, so checkpoints move between the two), step hooks, and every
``torch.optim.lr_scheduler``. What differs is who computes the update:

- CPU float32/float64 tensors (contiguous, dense gradient of the same dtype): the fused numba
  kernel of :mod:`optimlab.engines.fused`, run on the tensors' own memory (see
  :mod:`optimlab.torch._fused`). A ``DTensor`` (FSDP2, tensor parallelism) whose shards are
  such tensors is updated shard by shard.
- Under torch's numerics (``preset="torch"``), for the optimizers torch.optim has
  multi-tensor kernels of (Adam, AdamW, SGD, Adagrad, RMSprop, NAdam, RAdam, Adamax,
  Adadelta): tensors off the CPU, CPU float16/bfloat16 tensors, and those of a group asking
  for ``foreach=True`` or ``fused=True`` go to torch.optim's own functional kernels, to its
  bits (:mod:`optimlab.torch._delegate`).
- Other float16/bfloat16 CPU tensors and other devices: the rule compiled by
  ``torch.compile`` into multi-tensor kernels (:mod:`optimlab.torch._compiled`).
- Anything else (a strided tensor, ``differentiable=True``, torch.compile unavailable): the
  same rule written with torch operations (:mod:`optimlab.torch._ops`).

Complex parameters are updated as pairs of real numbers (``torch.view_as_real``), as torch does.
``engine="fused" | "torch" | "compiled"`` forces one path (``"fused"`` raises where it cannot
run; ``"compiled"`` falls back to the torch operations, with a warning, where torch.compile
fails); only ``"auto"`` delegates to torch's kernels.

Arguments are checked as torch checks them, with its messages, and then by optimlab's stricter
rules (:mod:`optimlab.torch._checks`); a step first checks every group and every gradient, so a
refused step changes nothing.

``preset="keras" | "optax"`` (default ``"torch"``) swaps torch's defaults and formulas for that
preset's (:mod:`optimlab.torch._presets`): the rule's options, Keras's decoupled decay
``p - p * (lr * wd)`` (pipeline slot 4 of the fused kernel, ``decay_form="subtract"`` of the
torch-ops path; torch's ``p * (1 - lr * wd)`` is slot 7), the optimizer's one step count
(:meth:`Optimizer._global_step`) and Keras's bias-correction powers in the narrowest
parameter dtype. The preset is optimizer-wide: each param group holds it (none for
``"torch"``), and a group or a state dict of another preset is refused.

``state_dtype="bfloat16" | "int8" | "int4"`` (a rule with ``QUANTIZED_SLOTS``) keeps those moments
narrow in the state, as torch tensors, and ``bf16_stochastic_round=True`` (``seed``) rounds
bfloat16 parameters stochastically after a float32 update: see :mod:`optimlab.torch._narrow`,
which this module calls at the slots' creation, the step's dispatch and the state dict's load.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch

from .._validation import show
from . import _checks, _compiled, _delegate, _narrow, _ops, _presets
from ._checks import as_float
from ._fused import FusedView, finite, fused_message, fused_problem, non_finite_count

ENGINES = _checks.ENGINES
NAN_POLICIES = _checks.NAN_POLICIES
_NUMBA_ENGINES = ("auto", "fused")


_MISSING = object()


def scalar_dtype(fused: bool = False) -> torch.dtype:
    """The dtype torch.optim gives ``state["step"]`` (and NAdam's ``mu_product``): float32 under
    ``fused=True``, else float64 when torch's default dtype is float64, float32 otherwise."""
    if fused:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Optimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose update is an optimlab rule.

    ``nan_policy``: ``"propagate"`` (default, as torch.optim: a NaN or Inf gradient reaches
    the parameters), ``"raise"`` (FloatingPointError naming the parameter; nothing changes) or
    ``"skip"`` (the step is skipped, nothing changes, ``skipped_steps`` counts it). The check
    reads every gradient once before the first update (on CPU float32/float64 the fused
    engine's vectorized pass). Under DDP every rank holds the same averaged gradients and so
    decides alike, and a DTensor (FSDP2) is checked over all its shards; under
    ``ZeroRedundancyOptimizer`` each rank checks only the parameters it owns, so prefer
    ``"raise"`` there (or GradScaler, which skips on every rank).

    ``differentiable=True`` (torch's semantics): the step runs with autograd recording, on the
    torch-ops path, updating each parameter and state buffer with one recorded ``copy_`` of its
    new value, so a gradient flows from the new values back to the old ones, the gradient and a
    tensor learning rate. As in torch, the parameters must then be non-leaf tensors (an
    in-place update of a leaf that requires grad is refused by autograd).

    Subclasses set ``rule`` (a module of :mod:`optimlab.rules`), ``slot_keys`` (torch's state
    key of each of the rule's slots, in the order of ``rule.SLOTS``), ``torch_checks`` (torch's
    constructor checks, in its order), ``checks`` (validators of the group hyperparameters) and
    implement ``rule_arguments(group)`` (the keyword arguments of ``rule.scalars``) and, where
    needed, ``slot_enabled`` and ``slot_initial_value``.
    """

    rule: Any = None
    slot_keys: tuple[str, ...] = ()
    #: torch.optim's checks of the constructor's arguments, in torch's order (see _checks)
    torch_checks: tuple = ()
    #: group key -> validator(name, value); run on every group, on construction, when a group is
    #: added, when a state dict is loaded, and at each step for values that changed
    checks: dict = {}
    #: what torch.optim's ``__setstate__`` gives a loaded group that lacks one of these keys
    #: (an older checkpoint), in torch's order
    legacy_defaults: dict = {}
    #: state buffers torch.optim may hold as sparse tensors (SGD's momentum of sparse
    #: gradients); loaded, they become dense
    sparse_slots: tuple[str, ...] = ()
    #: whether the state holds a ``step`` count (torch's SGD and the reference Lion do not)
    counts_steps = True
    #: "l2" (PyTorch's weight_decay: g = g + wd * p) or "decoupled" (p = p - lr * wd * p);
    #: ``decoupled_weight_decay`` in a group overrides it
    weight_decay_mode = "l2"
    #: torch's words for the tensors of its capturable check, and whether its device list
    #: names XLA (each for foreach=False, foreach=True)
    capturable_words = ("params and state_steps", "params and state_steps")
    capturable_xla = (True, False)
    #: the values ``engine`` takes (an optimizer whose rule is tensor-level has no fused
    #: kernel and no torch-ops form: only "auto")
    engines: tuple[str, ...] = ENGINES
    #: whether the fused kernel may run the update (SparseAdam's updates are all sparse: the
    #: rows of its gradients, gathered, as torch operations)
    fused_kernel = True
    #: whether a loaded group that lacks a key of the defaults gets it (torch.optim's
    #: optimizers set their flags' defaults in ``__setstate__``; SparseAdam sets none and
    #: reads ``group.get("maximize", False)``)
    groups_take_defaults = True
    #: state keys torch.optim keeps as plain numbers (SparseAdam's ``step``, a Python int)
    plain_state_keys: tuple[str, ...] = ()
    #: the optimizer's name in :mod:`optimlab.presets` (NAdam: ``"Nadam"``; None: the class's)
    preset_kind: str | None = None
    #: torch argument -> the NumPy dialect's name (or pair of names, ``betas``) whose preset
    #: default it takes when left out (see :mod:`optimlab.torch._presets`)
    preset_names: dict = {}
    #: the presets this optimizer has (a peer without such an optimizer is refused)
    presets_available: tuple[str, ...] = _presets.PRESETS
    #: why a preset outside :attr:`presets_available` is refused (None: its peer has no such
    #: optimizer)
    preset_refusal: str | None = None
    #: torch.optim's own options that exist only for torch's numerics (refused, when on, with
    #: another preset)
    torch_only_flags: tuple[str, ...] = ("fused", "capturable", "differentiable")

    def __init__(
        self,
        params,
        defaults: dict,
        engine: str = "auto",
        nan_policy: str = "propagate",
        preset: str = "torch",
        state_dtype: str = "float32",
        bf16_stochastic_round: bool = False,
        seed: int | None = None,
    ) -> None:
        kind = self.preset_kind or type(self).__name__
        preset = _presets.check_preset(
            preset, type(self).__name__, self.presets_available, self.preset_refusal
        )
        resolved = _presets.resolve(kind, preset, defaults, self.preset_names)
        defaults.clear()
        defaults.update(resolved)
        # every argument before ``params`` is read, as torch does
        arguments = {**defaults, "engine": engine, "nan_policy": nan_policy, "preset": preset}
        self.__dict__["preset"] = preset
        _checks.check_arguments(
            self.torch_checks,
            self.checks,
            self._checkable(arguments),
            self.prepare_defaults,
            self.engines,
        )
        defaults.update((k, arguments[k]) for k in defaults if k in arguments)
        if preset != "torch":
            for flag in self.torch_only_flags:
                if defaults.get(flag):
                    raise ValueError(
                        f"{flag}={defaults[flag]!r} is torch.optim's own option: with "
                        f"preset={preset!r} it must be False (left out); use preset='torch'"
                    )
            defaults["preset"] = preset
        # state_dtype and bf16_stochastic_round: see optimlab.torch._narrow
        self.__dict__["_narrow"] = _narrow.configure(
            type(self), state_dtype, bf16_stochastic_round, seed, defaults
        )
        self.engine = engine
        self.nan_policy = nan_policy
        self.skipped_steps = 0
        #: id(group) -> (its checked values, their signature, whether a tensor is among them)
        self._checked: dict[int, tuple] = {}
        super().__init__(params, defaults)
        _checks.fused_flags(type(self).__name__, defaults)
        if defaults.get("fused"):
            # GradScaler hands a fused optimizer its scale and inf flag (``grad_scale``,
            # ``found_inf``) instead of unscaling the gradients first, as for torch.optim's
            self._step_supports_amp_scaling = True

    def prepare_defaults(self, defaults: dict) -> None:
        """The checked arguments as torch stores them (Adam: 0-d tensor betas)."""

    def _checkable(self, group: dict) -> dict:
        """The values the checks see (NAdam under ``preset="optax"``: its momentum_decay None,
        a constant mu_t, as a number the range accepts)."""
        return group

    # -- the preset ----------------------------------------------------------------------------

    def _preset_info(self) -> dict:
        """What the preset decides (memoized): its rule options, weight-decay mode and step
        counting (see :mod:`optimlab.torch._presets`)."""
        info = self.__dict__.get("_preset_memo")
        preset = self.__dict__.get("preset", "torch")
        if info is None or info["preset"] != preset:
            kind = self.preset_kind or type(self).__name__
            info = {"preset": preset}
            if preset == "torch":
                info.update(options={}, mode=self.weight_decay_mode, counting="per_parameter")
            else:
                info.update(
                    options=_presets.rule_options(
                        kind, preset, self.rule, self.preset_names, tuple(self.defaults)
                    ),
                    mode=_presets.weight_decay_mode(kind, preset),
                    counting=_presets.step_counting(kind, preset),
                )
            info["power"] = "power_dtype" in _presets._keyword_arguments(self.rule.scalars)
            self.__dict__["_preset_memo"] = info
        return info

    def _global_values(self, leader):
        """The step state shared by every parameter under global step counting, read from
        ``leader`` (a parameter at the optimizer's count, or None) before anything moves
        (NAdam: its momentum product)."""
        return None

    def _group_preset_ok(self, group: dict) -> bool:
        value = group.get("preset", "torch")
        return type(value) is str and value == self.preset

    def _global_step(self) -> tuple:
        """``(t, leader)`` of a step under ``step_counting="global"``: t = 1 + the largest
        step count of any parameter (the optimizer's number of updates), and the state of a
        parameter that has it (None before the first step). An optimizer without a step count
        (SGD, Lion) only tells the first update (t = 1) from the others (t = 2)."""
        leader, best = None, -1.0
        anything = False
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if not state:
                    continue
                anything = True
                step = state.get("step")
                if step is not None and self.counts_steps:
                    value = float(step)
                    if value > best:
                        leader, best = state, value
        if not self.counts_steps:
            return (2.0 if anything else 1.0), None
        return (best + 1.0 if leader is not None else 1.0), leader

    # -- hyperparameters ---------------------------------------------------------------------

    def _check_group(self, group: dict, index: int | None = None) -> None:
        """Validate a group's hyperparameters (ValueError/TypeError naming the group, the key,
        the value and the range)."""
        where = "" if index is None else f"param group {index}: "
        _checks.check_group(self.checks, self._checkable(group), where)
        if not self._group_preset_ok(group):
            raise ValueError(
                f"{where}preset must be {self.preset!r}, this optimizer's (a group cannot take "
                f"another preset), got {show(group.get('preset'))}"
            )
        _narrow.check_hyperparameters(self, group, where)

    def _group_signature(self, group: dict) -> tuple:
        """The group's checked values (a tensor by its value; one of several elements by its
        shape, so that the check runs and names it)."""

        def value(v):
            # with the type: 0j, False and 0 are equal, but only 0 is a valid lr_decay
            if isinstance(v, torch.Tensor):
                return ("tensor", tuple(v.shape), v.dtype, v.item() if v.numel() == 1 else None)
            if isinstance(v, tuple | list):
                return type(v), tuple(value(x) for x in v)
            return type(v), v

        return tuple(value(group[key]) for key in self.checks if key in group)

    @property
    def _checked_keys(self):
        """``group -> tuple of the values of the checked keys`` (an itemgetter, made once)."""
        getter = self.__dict__.get("_checked_getter")
        if getter is None:
            keys = tuple(self.checks)
            getter = operator.itemgetter(*keys) if len(keys) > 1 else (lambda g: (g[keys[0]],))
            self.__dict__["_checked_getter"] = getter
        return getter

    def _ensure_checked(self, group: dict, index: int) -> None:
        """Re-validate a group whose values changed since the last check (a scheduler or the
        user may set any value between steps). The same objects as last time, none of them
        mutable in place (a tensor, a list), are the same values: the common case costs one
        identity test per key."""
        try:
            values = self._checked_keys(group)
        except KeyError:  # (a group without one of the keys: its checks skip it)
            values = tuple(group.get(key, _MISSING) for key in self.checks)
        cached = self._checked.get(id(group))
        if cached is not None and not cached[2] and all(map(operator.is_, cached[0], values)):
            return
        signature = self._group_signature(group)
        if cached is None or cached[1] != signature:
            self._check_group(group, index)
            _checks.check_fits(self.checks, self._checkable(group), f"param group {index}: ")
        mutable = any(
            isinstance(v, torch.Tensor | list)
            or (isinstance(v, tuple) and any(isinstance(x, torch.Tensor | list) for x in v))
            for v in values
        )
        self._checked[id(group)] = (values, signature, mutable)

    def add_param_group(self, param_group: dict) -> None:
        """torch's ``add_param_group`` (missing values from the defaults), then validated;
        nothing is added, and the dict passed keeps its items, if a value is out of range."""
        before = dict(param_group) if isinstance(param_group, dict) else None
        count = len(self.__dict__.get("param_groups", ()))
        try:
            super().add_param_group(param_group)
            self._check_new_group(self.param_groups[-1])
            _narrow.check_group(self, self.param_groups[-1])
            self._ensure_checked(self.param_groups[-1], len(self.param_groups) - 1)
        except Exception:
            del self.param_groups[count:]
            if before is not None:
                param_group.clear()
                param_group.update(before)
            raise

    def _check_new_group(self, group: dict) -> None:
        """An optimizer's refusal of a group's parameters (Muon: those that are not
        matrices), raised before the group is kept."""

    def __setstate__(self, state: dict) -> None:
        """torch's ``__setstate__`` (unpickling, ``load_state_dict``), then what torch.optim's
        optimizers add: the defaults of keys an older checkpoint lacks, and a ``step`` (NAdam:
        ``mu_product``) saved as a plain number turned into the tensor torch would hold."""
        defaults = state.get("defaults", self.__dict__.get("defaults", {}))
        had_differentiable = "differentiable" in defaults
        super().__setstate__(state)
        # torch's __setstate__ adds "differentiable" to the defaults; an optimizer without
        # that argument (Lion) must not grow the key
        if not had_differentiable:
            self.defaults.pop("differentiable", None)
        self.__dict__.setdefault("engine", "auto")
        self.__dict__.setdefault("nan_policy", "propagate")
        self.__dict__.setdefault("preset", self.defaults.get("preset", "torch"))
        self.__dict__.setdefault("skipped_steps", 0)
        self.__dict__.setdefault("_checked", {})
        index = 0
        for group in self.param_groups:
            for key, value in self.legacy_defaults.items():
                if key in self.defaults:
                    group.setdefault(key, value)
            if self.groups_take_defaults:
                for key, value in self.defaults.items():
                    group.setdefault(key, value)
            self._restore_group(group)
            for p in group["params"]:
                state_ = self.state.get(p)
                if state_:
                    self._tensor_scalars(p, state_, group, index)
                index += 1
        self.__dict__.setdefault("_narrow", None)
        if self.__dict__.get("_loading"):
            self._check_loaded()  # before the load_state_dict post hooks run
            _narrow.after_load(self)  # the saved narrow slots, in this optimizer's storage

    def _restore_group(self, group: dict) -> None:
        """A loaded group's class-specific repair (AdamW: decoupled weight decay)."""

    def _tensor_scalars(self, p: torch.Tensor, state: dict, group: dict, index: int) -> None:
        """A plain-number ``step`` (older checkpoints) as torch.optim's tensor: float32 on the
        parameter's device under ``fused``, on its device under ``capturable``, else a CPU
        tensor of :func:`scalar_dtype`. ``index``: the parameter's, for the message of a step
        that is no number."""
        step = state.get("step")
        if step is not None and not isinstance(step, torch.Tensor) and self.counts_steps:
            value = _checks.state_number(index, "step", step)
            state["step"] = self._scalar_tensor(value, p, group)

    def _scalar_tensor(self, value: float, p: torch.Tensor, group: dict) -> torch.Tensor:
        if self.__dict__.get("preset", "torch") != "torch":
            # the NumPy dialect keeps its counts and products in Python floats
            return torch.tensor(value, dtype=torch.float64)
        fused = bool(group.get("fused"))
        on_device = fused or bool(group.get("capturable"))
        return torch.tensor(
            value, dtype=scalar_dtype(fused), device=p.device if on_device else "cpu"
        )

    # -- state -------------------------------------------------------------------------------

    def slot_enabled(self, key: str, group: dict) -> bool:
        """Whether the state buffer ``key`` exists under the group's options."""
        return True

    def slot_initial_value(self, key: str, group: dict, p: torch.Tensor) -> Any:
        """The value a new state buffer ``key`` of ``p`` starts at."""
        return 0.0

    def slot_shape(self, key: str, p: torch.Tensor) -> tuple[int, ...] | None:
        """The shape of state buffer ``key`` of ``p``: the parameter's (torch.optim's
        Adafactor keeps row and column factors; None where ``p`` has no such buffer)."""
        return tuple(p.shape)

    def _init_state(self, p: torch.Tensor, state: dict, group: dict) -> None:
        """torch's initial state of a parameter: the step count, then the buffers."""
        if self.counts_steps and "step" not in state:
            state["step"] = self._scalar_tensor(0.0, p, group)
        self._extra_state(p, state, group)
        for key in getattr(self, "state_key_order", self.slot_keys):
            if key not in state and self.slot_enabled(key, group):
                value = self.slot_initial_value(key, group, p)
                if self.__dict__.get("_narrow") is not None:
                    state[key] = _narrow.new_slot(self, p, key, value, state)
                    continue
                state[key] = torch.full_like(p, value, memory_format=torch.preserve_format)

    def _extra_state(self, p: torch.Tensor, state: dict, group: dict) -> None:
        """Per-parameter scalars beyond ``step`` (NAdam's ``mu_product``)."""

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict`` (an older checkpoint's plain-number steps and missing
        keys included), then a check of what was loaded, before the post hooks run: every
        buffer has its parameter's shape, every step count is a finite number >= 0 and every
        hyperparameter is in range. On a failure the optimizer keeps its previous state and
        raises ValueError naming the parameter and the key."""
        self._check_saved_preset(state_dict)
        state_dict = _narrow.before_load(self, state_dict)
        saved = (self.__dict__["state"], self.__dict__["param_groups"], dict(self.defaults))
        self.__dict__["_loading"] = True
        try:
            super().load_state_dict(state_dict)
        except Exception:
            self.__dict__["state"], self.__dict__["param_groups"] = saved[0], saved[1]
            self.defaults.clear()
            self.defaults.update(saved[2])
            raise
        finally:
            self.__dict__.pop("_loading", None)
            self.__dict__.pop("_narrow_pending", None)
        self._checked.clear()

    def _check_saved_preset(self, state_dict) -> None:
        """Refuse, before anything changes, a state dict saved under another preset (its
        groups' ``"preset"``; none: ``"torch"``)."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, list | tuple):
            return  # torch's own refusal follows
        for index, group in enumerate(groups):
            if isinstance(group, dict) and not self._group_preset_ok(group):
                raise ValueError(
                    f"param group {index} of the state dict was saved with preset="
                    f"{show(group.get('preset', 'torch'))}; this optimizer's preset must be the "
                    f"same, it is {self.preset!r}: load it into "
                    f"{type(self).__name__}(..., preset={group.get('preset', 'torch')!r}); "
                    "nothing was changed"
                )

    def _check_loaded(self) -> None:
        index = 0
        for g_index, group in enumerate(self.param_groups):
            self._check_group(group, g_index)
            for p in group["params"]:
                state = self.state.get(p, {})
                for key, value in list(state.items()):
                    if key in self.plain_state_keys and not isinstance(value, torch.Tensor):
                        x = _checks.state_number(index, key, value)
                        if not math.isfinite(x) or x < 0 or x != int(x):
                            raise ValueError(
                                f"state of parameter {index}: {key!r} must be a count (an "
                                f"integer >= 0), got {value!r}"
                            )
                        continue
                    if not isinstance(value, torch.Tensor):
                        raise ValueError(
                            f"state of parameter {index}: {key!r} must be a tensor, got "
                            f"{type(value).__name__}"
                        )
                    expected = self.slot_shape(key, p) if key in self.slot_keys else None
                    if key in self.slot_keys and expected is None:
                        raise ValueError(
                            f"state of parameter {index}: {key!r} is no buffer of a parameter "
                            f"of shape {tuple(p.shape)} in {type(self).__name__}"
                        )
                    if expected is not None:  # (int4 codes: two a byte, flat)
                        expected = _narrow.stored_shape(self, p, index, key, expected)
                    if key in self.slot_keys and tuple(value.shape) != expected:
                        what = "the parameter's shape" if expected == tuple(p.shape) else "shape"
                        raise ValueError(
                            f"state of parameter {index}: {key!r} must have {what} "
                            f"{expected}, got shape {tuple(value.shape)}"
                        )
                    if value.layout != torch.strided:
                        if not (key in self.sparse_slots and value.is_sparse):
                            raise ValueError(
                                f"state of parameter {index}: {key!r} must be a dense "
                                f"(torch.strided) tensor, got {value.layout}"
                            )
                        # torch.optim.SGD keeps the momentum of sparse gradients sparse
                        state[key] = value.to_dense()
                    if key not in self.slot_keys:  # step, mu_product: scalars
                        if value.numel() != 1 or value.is_complex():
                            raise ValueError(
                                f"state of parameter {index}: {key!r} must be a one-element "
                                f"real tensor, got shape {tuple(value.shape)} and dtype "
                                f"{value.dtype}"
                            )
                        x = float(value)
                        if not math.isfinite(x) or (key == "step" and x < 0):
                            what = "a finite count >= 0" if key == "step" else "finite"
                            raise ValueError(
                                f"state of parameter {index}: {key!r} must be {what}, got {x!r}"
                            )
                index += 1

    # -- the step ----------------------------------------------------------------------------

    def rule_arguments(self, group: dict) -> dict:
        """The keyword arguments of ``rule.scalars`` for this group (torch's formulas)."""
        raise NotImplementedError

    def _arguments(self, group: dict) -> dict:
        """:meth:`rule_arguments` with the preset's formula options and, under Keras's
        ``power_precision``, the dtype of the bias-correction powers."""
        arguments = self.rule_arguments(group)
        if self.preset != "torch":
            info = self._preset_info()
            arguments.update(info["options"])
            if info["power"]:
                arguments["power_dtype"] = self.__dict__.get("_step_power_dtype")
        return arguments

    def step_scalars(self, state: dict, t: float, lr: float, arguments: dict, p) -> tuple:
        """The rule's scalars for a parameter at its step ``t`` (an optimizer whose scalars
        depend on more than the step, NAdam, overrides it)."""
        return self.rule.scalars(t, lr, **arguments)

    def group_scalars(self, group: dict):
        """``scalars(t, lr, **arguments)`` of the group's parameters (the rule's, unless the
        optimizer computes them as torch does under some option)."""
        return self.rule.scalars

    def _weight_decay(self, group: dict, lr) -> tuple[float | None, float | None]:
        """(L2 coefficient or None, decoupled lr * wd or None) of the group."""
        wd = as_float("weight_decay", group.get("weight_decay", 0.0) or 0.0)
        if wd == 0.0:
            return None, None
        mode = self.weight_decay_mode if self.preset == "torch" else self._preset_info()["mode"]
        decoupled = group.get("decoupled_weight_decay", mode == "decoupled")
        return (None, lr * wd) if decoupled else (wd, None)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; ``closure`` (optional) re-evaluates
        the model and returns the loss, which ``step`` returns. Autograd records the step only
        under ``differentiable=True`` (torch's rule)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            for index, group in enumerate(self.param_groups):  # all valid before any moves
                self._ensure_checked(group, index)
                if not self._group_preset_ok(group):
                    self._check_group(group, index)
            grad_scale = getattr(self, "grad_scale", None)
            found_inf = getattr(self, "found_inf", None)
            plans = self._plan(grad_scale is not None or found_inf is not None)
            if self.nan_policy != "propagate" and not self._gradients_finite():
                return loss
            skip = found_inf is not None and float(found_inf) != 0.0
            scale = None if grad_scale is None else float(grad_scale)
            if self.preset != "torch":
                info = self._preset_info()
                shared = None
                if info["counting"] == "global":
                    t, leader = self._global_step()
                    shared = (t, self._global_values(leader))
                self.__dict__["_step_global"] = shared
                self.__dict__["_step_power_dtype"] = (
                    _presets.power_dtype(self.preset, self.param_groups) if info["power"] else None
                )
            for group, plan in zip(self.param_groups, plans, strict=True):
                self._step_group(group, plan, scale, skip)
        return loss

    def _keys(self, group: dict) -> tuple:
        """The group's state keys of the rule's slots (None where the option is off)."""
        return tuple(key if self.slot_enabled(key, group) else None for key in self.slot_keys)

    def _plan(self, amp: bool = False) -> list[tuple]:
        """Check every parameter that has a gradient, before any moves, and say how each is
        updated: per group ``(keys, stateless, entries)``, an entry ``(p, g, view, array)``
        with the parameter's fused view and the gradient's array where the view still holds
        the parameter's tensors and the gradient is as the kernel reads it (the arrays are the
        kernel's input, so on the fused path the check costs nothing more), else the
        gradient checked against its parameter (shape, dtype: ``p.grad.data = ...`` skips the
        checks of ``p.grad = ...``), and the optimizer's and torch's refusals: a sparse
        gradient it cannot take, torch's ``fused=True`` and ``capturable=True`` device checks,
        and with ``engine="fused"`` tensors the fused kernel cannot read. Raised from the
        update loop, an error would come after the parameters before it had moved (torch's
        case). ``amp``: GradScaler set ``grad_scale`` or ``found_inf``, which only a fused
        group takes (torch's AssertionError otherwise)."""
        fused_only = self.engine == "fused"
        views = self._views
        states = self.state
        plans = []
        index = 0
        for group in self.param_groups:
            fused = group.get("fused")
            capturable = group.get("capturable")
            differentiable = group.get("differentiable")
            if amp and not fused:
                raise AssertionError("Expected grad_scale and found_inf to be None")
            self._refuse_group(group)
            keys = self._keys(group)
            stateless = not self.counts_steps and all(k is None for k in keys)
            use_views = self.engine in _NUMBA_ENGINES and not differentiable and self.fused_kernel
            special = fused or capturable or differentiable
            entries = []
            for p in group["params"]:
                g = p.grad
                if g is None:
                    index += 1
                    continue
                view = views.get(id(p)) if use_views else None
                array = None
                if view is not None:
                    if view.matches(p, None if stateless else states.get(p), keys):
                        array = view.grad_array(g)
                    else:
                        view = None
                if array is None:
                    self._check_gradient(index, p, g, group, fused_only and not differentiable)
                if special:
                    self._check_options(p, group)
                entries.append((p, g, view, array))
                index += 1
            plans.append((keys, stateless, entries))
        return plans

    def _check_options(self, p, group: dict) -> None:
        """torch's checks of a parameter under ``fused``, ``capturable`` or ``differentiable``:
        a fused kernel's device and dtype (RuntimeError), a capturable step's device
        (AssertionError), a step count that requires grad (RuntimeError)."""
        state = self.state.get(p, {})
        if group.get("fused"):
            problem = _checks.fused_device_problem(p)
            if problem:
                raise RuntimeError(problem)
        if group.get("capturable"):
            multi = bool(group.get("foreach"))
            problem = _checks.capturable_problem(
                p, state.get("step"), self.capturable_xla[multi], self.capturable_words[multi]
            )
            if problem:
                raise AssertionError(problem)
        if group.get("differentiable"):
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.requires_grad:
                raise RuntimeError(
                    "`requires_grad` is not supported for `step` in differentiable mode"
                )

    def _check_gradient(self, index: int, p, g, group: dict, fused_only: bool) -> None:
        """Raise if the gradient ``g`` cannot update parameter ``index``: its shape or dtype
        (or layout, device) is not the parameter's (RuntimeError, as torch's ``p.grad = ...``
        check), a sparse gradient the optimizer cannot take (torch's RuntimeError and words),
        tensors ``engine="fused"`` cannot read (TypeError)."""
        if g.is_sparse or g.shape != p.shape or g.dtype is not p.dtype:
            problem = _checks.gradient_problem(index, p, g)
            if problem:
                raise self._gradient_error(p, g)(problem)
            if g.is_sparse:
                problem = self._sparse_problem(p, group)
                if problem:
                    raise RuntimeError(problem)
                return
        if fused_only:
            problem = fused_problem(p, g)
            if problem:
                raise TypeError(problem)

    def _gradient_error(self, p, g) -> type:
        """The exception torch.optim's step raises on this gradient of ``p`` (RuntimeError,
        for the mismatch its kernels meet), which optimlab raises before anything moves."""
        return RuntimeError

    def _refuse_group(self, group: dict) -> None:
        """A group-wide reason not to step (Adam: a tensor lr under foreach)."""

    def _sparse_problem(self, p, group: dict) -> str | None:
        """Why a sparse gradient of ``p`` cannot be applied in ``group`` (None if it can):
        torch.optim's words."""
        return f"{type(self).__name__} does not support sparse gradients"

    def _densify_sparse(self, group: dict) -> bool:
        """Whether a sparse gradient is applied as its dense equivalent (SGD with momentum, whose
        buffer and parameter move where the gradient is zero) rather than row by row."""
        return False

    def _gradients_finite(self) -> bool:
        """The ``nan_policy`` check of every gradient, before anything changes: True to go on,
        False to skip the step (``"skip"``), FloatingPointError for ``"raise"``."""
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is not None and not finite(g):
                    if self.nan_policy == "skip":
                        self.skipped_steps += 1
                        return False
                    count = non_finite_count(g)
                    raise FloatingPointError(
                        f"the gradient of parameter {index} (shape {tuple(p.shape)}) has "
                        f"{count} non-finite value(s) (NaN or Inf); nothing was changed. Pass "
                        "nan_policy='skip' to skip such steps or 'propagate' to apply them "
                        "(torch.optim's behaviour)"
                    )
                index += 1
        return True

    def _group_lr(self, group: dict, differentiable: bool):
        """The learning rate the rule sees: a float, or (differentiable=True) a tensor that
        requires grad, so that the gradient reaches it."""
        lr = group["lr"]
        if differentiable and isinstance(lr, torch.Tensor) and lr.requires_grad:
            return lr.reshape(())
        return float(as_float("lr", lr))

    def _step_group(self, group: dict, plan: tuple, grad_scale: float | None, skip: bool) -> None:
        """Update the parameters of one (validated) group as ``plan`` (see :meth:`_plan`) says.
        Under ``fused=True``, GradScaler's ``grad_scale`` divides the gradients and ``skip``
        (its ``found_inf``) leaves the parameters and buffers as they are (their state created,
        as torch's fused kernels do)."""
        keys, stateless, entries = plan
        differentiable = bool(group.get("differentiable", False))
        lr = self._group_lr(group, differentiable)
        l2, decoupled_wdlr = self._weight_decay(group, lr)
        maximize = bool(group.get("maximize", False))
        arguments = self._arguments(group)
        fused_group = bool(group.get("fused"))
        loss_scale = grad_scale if fused_group else None
        states = self.state
        if skip and fused_group:
            if not stateless:
                for p, *_ in entries:
                    if not states[p]:
                        self._init_state(p, states[p], group)
            return
        traced = isinstance(lr, torch.Tensor) or isinstance(decoupled_wdlr, torch.Tensor)
        # decoupled decay: torch's p * (1 - lr * wd), or Keras's p - p * (lr * wd) (the NumPy
        # dialect's, under every other preset)
        subtract = self.preset != "torch"
        pipe = (
            loss_scale,
            -1.0 if maximize else None,
            None,
            l2,
            decoupled_wdlr if subtract and not traced else None,
            0.0,
            1.0,
            None if decoupled_wdlr is None or traced or subtract else 1.0 - decoupled_wdlr,
        )
        global_step = self.__dict__.get("_step_global") if subtract else None
        pipe_key = tuple(x is None for x in pipe)
        per_step: dict[float, tuple] = {}  # the scalars of each step count seen in this group
        shared = type(self).step_scalars is Optimizer.step_scalars
        scalars_of = self.group_scalars(group)
        views = self._views
        use_fused = self.engine in _NUMBA_ENGINES and not differentiable and self.fused_kernel
        # narrow state and stochastic rounding are optimlab's own storage: neither torch's
        # kernels nor the compiled rule (which reads plain slots) run them
        narrow = self.__dict__.get("_narrow")
        plain = narrow is None and not differentiable
        if plain and not subtract and self.engine == "auto" and loss_scale is None:
            entries = _delegate.run(self, group, keys, entries)  # torch's own kernels
        batch = None
        compiled = self.engine in ("auto", "compiled") and "compiled" in self.engines
        if compiled and plain and not traced:
            batch = _compiled.Batch(
                self.rule,
                (loss_scale, maximize, l2, decoupled_wdlr, "subtract" if subtract else "factor"),
                forced=self.engine == "compiled",
            )
        densify = self._densify_sparse(group)
        for p, g, view, array in entries:
            if densify and g.is_sparse:
                g = g.to_dense()
            if view is not None:  # the fast path: the tensors the view was made of
                state = None if stateless else view.state
                fresh = False
            else:
                if stateless:  # e.g. SGD without momentum: torch keeps no state for it
                    state, fresh = {}, True
                else:
                    state = states[p]
                    fresh = not state or any(k is not None and k not in state for k in keys)
                    if fresh:
                        self._init_state(p, state, group)
                if use_fused:
                    if narrow is None:
                        view = FusedView.make(self.rule, p, None if stateless else state, keys)
                    else:
                        view = _narrow.make_view(self, p, None if stateless else state, keys)
                    if view is not None:
                        views[id(p)] = view
                        array = view.grad_array(g)
                    else:
                        views.pop(id(p), None)
            if global_step is not None:  # the optimizer's count, written to the parameter's
                t = global_step[0]
                if view is not None and view.step_array is not None:
                    view.step_array[()] = t
                elif self.counts_steps and state is not None and "step" in state:
                    state["step"].fill_(t)
            elif view is not None and view.step_array is not None:
                t = view.advance()
            else:
                t = self._advance(state, fresh)
            if shared:
                scalars = per_step.get(t)
                if scalars is None:
                    scalars = per_step[t] = scalars_of(t, lr, **arguments)
            else:
                scalars = self.step_scalars(state, t, lr, arguments, p)
            if array is not None:
                view.run(array, scalars, pipe, pipe_key)
                continue
            if narrow is not None and _narrow.handles(self, p):  # (a sparse g: made dense)
                _narrow.apply_torch(
                    self, p, g, state, keys, scalars, maximize, l2, decoupled_wdlr, loss_scale
                )
                continue
            slots = [None if k is None else state[k] for k in keys]
            if g.is_sparse:
                self._apply_sparse(p, g, slots, scalars, maximize, group)
                continue
            if batch is not None and batch.add(p, g, slots, scalars):
                continue  # (run below, chunk by chunk)
            self._apply_torch(
                p, g, slots, scalars, maximize, l2, decoupled_wdlr, loss_scale, differentiable
            )
        for p, g, slots, scalars in batch.flush() if batch is not None else ():
            self._apply_torch(
                p, g, slots, scalars, maximize, l2, decoupled_wdlr, loss_scale, differentiable
            )

    @property
    def _views(self) -> dict:
        views = self.__dict__.get("_fused_views")
        if views is None:
            views = self.__dict__["_fused_views"] = {}
        return views

    def __getstate__(self) -> dict:
        # torch pickles defaults, state and param_groups; the engine choice goes along, the
        # numpy views of the tensors do not (they are rebuilt on the next step)
        return {
            **super().__getstate__(),
            "engine": self.engine,
            "nan_policy": self.nan_policy,
            "skipped_steps": self.skipped_steps,
            "preset": self.preset,
            "_narrow": self.__dict__.get("_narrow"),
        }

    @property
    def state_dtype(self) -> str:
        """How the rule's quantizable slots are stored: ``"float32"``, ``"bfloat16"`` or
        ``"int8"`` (see :mod:`optimlab.torch._narrow`)."""
        return _narrow.state_dtype_of(self)

    @property
    def bf16_stochastic_round(self) -> bool:
        """Whether bfloat16 parameters are rounded stochastically after each update."""
        return _narrow.stochastic_of(self)

    def _advance(self, state: dict, fresh: bool) -> float:
        """Count the step of a parameter (``fresh``: its state was just created); returns the
        1-based step being made."""
        step = state["step"]
        step += 1
        return float(step)

    def _apply_sparse(self, p, g, slots, scalars, maximize, group) -> None:
        """A sparse (COO) gradient: the rule's update on the entries it names, nothing else.

        Only where a zero gradient changes nothing (Adagrad, whose sum and parameter stay put
        where g = 0; SGD without momentum and weight decay), as in torch.optim. The gradient
        is coalesced (an index named twice has its values summed: the update is not linear),
        the touched entries gathered, updated by the rule's own code on torch tensors, and
        written back; any engine, any layout of the parameter.
        """
        g = g.coalesce()
        index = tuple(g._indices())  # one index tensor per sparse dimension
        values = g._values()
        if maximize:
            values = -values
        if not index:  # no sparse dimension (a 0-d tensor's to_sparse()): one entry or none
            if values.shape[0] == 0:
                return
            new = _ops.torch_update(self.rule)(p, values[0], *slots, *scalars)
            p.copy_(new[0])
            for buffer, value in zip(slots, new[1:], strict=True):
                if buffer is not None:
                    buffer.copy_(value)
            return
        new = _ops.torch_update(self.rule)(
            p[index], values, *(None if s is None else s[index] for s in slots), *scalars
        )
        p.index_put_(index, new[0])
        for buffer, value in zip(slots, new[1:], strict=True):
            if buffer is not None:
                buffer.index_put_(index, value)

    def _apply_torch(
        self, p, g, slots, scalars, maximize, l2, decoupled_wdlr, loss_scale, differentiable
    ) -> None:
        """The update on the torch-ops path (the fused one could not take these tensors)."""
        if self.engine == "fused" and not differentiable:
            # (step() refused it already where it could tell)
            raise TypeError(fused_problem(p, g) or fused_message(p, g))
        if p.is_complex():
            p, g = torch.view_as_real(p), torch.view_as_real(g)
            slots = [None if s is None else torch.view_as_real(s) for s in slots]
        _ops.apply(
            self.rule,
            p,
            g,
            slots,
            scalars,
            maximize=maximize,
            l2=l2,
            decoupled_wdlr=decoupled_wdlr,
            loss_scale=loss_scale,
            differentiable=differentiable,
            decay_form="factor" if self.preset == "torch" else "subtract",
        )
