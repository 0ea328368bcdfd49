"""The base of the PyTorch drop-ins: a ``torch.optim.Optimizer`` that runs optimlab's rules.

Everything a torch user relies on comes from ``torch.optim.Optimizer`` itself: ``param_groups``,
``add_param_group``, ``zero_grad``, ``state_dict`` / ``load_state_dict`` (the same structure as
torch.optim's, so checkpoints move between the two), step hooks, and every
``torch.optim.lr_scheduler``. What differs is who computes the update:

- CPU float32/float64 tensors (contiguous, dense gradient of the same dtype): the fused numba
  kernel of :mod:`optimlab.engines.fused`, run on the tensors' own memory through
  ``Tensor.numpy()`` views: one parallel pass, no copies, no temporaries. A ``DTensor``
  (FSDP2, tensor parallelism) whose shards are such tensors is updated shard by shard.
- Anything else (another device, float16/bfloat16, a strided tensor): the same rule written
  with torch operations (:mod:`optimlab.torch._ops`).

Complex parameters are updated as pairs of real numbers (``torch.view_as_real``), as torch does.
``engine="fused" | "torch"`` forces one path (``"fused"`` raises where it cannot run).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validation import check_choice, check_float
from ..engines import fused
from . import _ops

ENGINES = ("auto", "fused", "torch")
NAN_POLICIES = ("propagate", "raise", "skip")
_FUSED_DTYPES = (torch.float32, torch.float64)


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim gives ``state["step"]`` (and NAdam's ``mu_product``): float64 when
    torch's default dtype is float64, float32 otherwise."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def as_float(name: str, value: Any) -> float:
    """A hyperparameter as a Python float (a one-element tensor learning rate included)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a float or a one-element tensor, got shape {tuple(value.shape)}"
            )
        return float(value.item())
    return value


def non_negative(name: str, value: Any) -> float:
    """A float >= 0 (learning rate, epsilon, weight decay...)."""
    return check_float(name, as_float(name, value), 0.0)


def beta(name: str, value: Any) -> float:
    """A decay factor in [0, 1)."""
    return check_float(name, as_float(name, value), 0.0, 1.0, high_open=True)


def closed_unit(name: str, value: Any) -> float:
    """A float in [0, 1]."""
    return check_float(name, as_float(name, value), 0.0, 1.0)


def betas_pair(name: str, value: Any) -> tuple[float, float]:
    """(beta_1, beta_2), each in [0, 1)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta_1, beta_2), each in [0, 1), got {value!r}")
    return beta(f"{name}[0]", value[0]), beta(f"{name}[1]", value[1])


def flag(name: str, value: Any) -> bool:
    """True or False (None allowed, meaning torch's default, for ``foreach`` and ``fused``)."""
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be True, False or None, got {value!r}")


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

    Subclasses set ``rule`` (a module of :mod:`optimlab.rules`), ``slot_keys`` (torch's state
    key of each of the rule's slots, in the order of ``rule.SLOTS``), ``checks`` (validators of
    the group hyperparameters) and implement ``rule_arguments(group)`` (the keyword arguments
    of ``rule.scalars``) and, where needed, ``slot_enabled`` and ``slot_initial_value``.
    """

    rule: Any = None
    slot_keys: tuple[str, ...] = ()
    #: group key -> validator(name, value); run on every group, on construction, when a group is
    #: added, when a state dict is loaded, and at each step for values that changed
    checks: dict = {}
    #: whether the state holds a ``step`` count (torch's SGD and the reference Lion do not)
    counts_steps = True
    #: whether a sparse gradient may update only the entries it names (see ``_apply_sparse``)
    sparse_gradients = False
    #: "l2" (PyTorch's weight_decay: g = g + wd * p) or "decoupled" (p = p - lr * wd * p);
    #: ``decoupled_weight_decay`` in a group overrides it
    weight_decay_mode = "l2"

    def __init__(
        self, params, defaults: dict, engine: str = "auto", nan_policy: str = "propagate"
    ) -> None:
        self.engine = check_choice("engine", engine, ENGINES)
        self.nan_policy = check_choice("nan_policy", nan_policy, NAN_POLICIES)
        self.skipped_steps = 0
        self._checked: dict[int, tuple] = {}
        super().__init__(params, defaults)

    # -- hyperparameters ---------------------------------------------------------------------

    def _check_group(self, group: dict) -> None:
        """Validate a group's hyperparameters (ValueError naming the key and the range)."""
        for key, check in self.checks.items():
            if key in group:
                check(key, group[key])
        for key in ("differentiable", "capturable"):
            if group.get(key):
                raise ValueError(
                    f"{type(self).__name__}: {key}=True is not supported by optimlab.torch "
                    f"(use torch.optim.{type(self).__name__} for it)"
                )

    def _group_signature(self, group: dict) -> tuple:
        """The group's checked values (a tensor by its value; one of several elements by its
        shape, so that the check runs and names it)."""

        def value(v):
            if isinstance(v, torch.Tensor):
                return v.item() if v.numel() == 1 else ("tensor", tuple(v.shape))
            return v

        return tuple(value(group[key]) for key in self.checks if key in group)

    def _ensure_checked(self, group: dict) -> None:
        """Re-validate a group whose values changed since the last check (a scheduler or the
        user may set any value between steps)."""
        signature = self._group_signature(group)
        if self._checked.get(id(group)) != signature:
            self._check_group(group)
            self._checked[id(group)] = signature

    def add_param_group(self, param_group: dict) -> None:
        """torch's ``add_param_group`` (missing values from the defaults), then validated;
        nothing is added if a value is out of range."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._ensure_checked(group)
        except (ValueError, TypeError):
            self.param_groups.pop()
            raise

    def __setstate__(self, state: dict) -> None:
        # torch's __setstate__ (run by load_state_dict too) adds "differentiable" to the
        # defaults; an optimizer without that argument (Lion) must not grow the key
        defaults = state.get("defaults", self.__dict__.get("defaults", {}))
        had_differentiable = "differentiable" in defaults
        super().__setstate__(state)
        if not had_differentiable:
            self.defaults.pop("differentiable", None)
        self.__dict__.setdefault("engine", "auto")
        self.__dict__.setdefault("nan_policy", "propagate")
        self.__dict__.setdefault("skipped_steps", 0)
        self.__dict__.setdefault("_checked", {})
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    # -- state -------------------------------------------------------------------------------

    def slot_enabled(self, key: str, group: dict) -> bool:
        """Whether the state buffer ``key`` exists under the group's options."""
        return True

    def slot_initial_value(self, key: str, group: dict) -> float:
        return 0.0

    def _init_state(self, p: torch.Tensor, state: dict, group: dict) -> None:
        """torch's initial state of a parameter: the step count, then the buffers."""
        if self.counts_steps and "step" not in state:
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype())
        self._extra_state(state)
        for key in self.slot_keys:
            if key not in state and self.slot_enabled(key, group):
                value = self.slot_initial_value(key, group)
                state[key] = torch.full_like(p, value, memory_format=torch.preserve_format)

    def _extra_state(self, state: dict) -> None:
        """Per-parameter scalars beyond ``step`` (NAdam's ``mu_product``)."""

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's ``load_state_dict``, then a check of what was loaded: every buffer has its
        parameter's shape, every step count is a finite number >= 0 and every hyperparameter
        is in range. On a failure the optimizer keeps its previous state and raises
        ValueError naming the parameter and the key."""
        saved_state = self.state
        saved_groups = self.param_groups
        try:
            super().load_state_dict(state_dict)
            self._check_loaded()
        except Exception:
            self.__dict__["state"] = saved_state
            self.__dict__["param_groups"] = saved_groups
            raise
        self._checked.clear()

    def _check_loaded(self) -> None:
        index = 0
        for group in self.param_groups:
            self._check_group(group)
            for p in group["params"]:
                state = self.state.get(p, {})
                for key, value in state.items():
                    if not isinstance(value, torch.Tensor):
                        raise ValueError(
                            f"state of parameter {index}: {key!r} must be a tensor, got "
                            f"{type(value).__name__}"
                        )
                    if key in self.slot_keys and value.shape != p.shape:
                        raise ValueError(
                            f"state of parameter {index}: {key!r} has shape "
                            f"{tuple(value.shape)}, but the parameter has shape {tuple(p.shape)}"
                        )
                    if key == "step":
                        step = float(value)
                        if not (math.isfinite(step) and step >= 0):
                            raise ValueError(
                                f"state of parameter {index}: 'step' must be a finite count "
                                f">= 0, got {step!r}"
                            )
                index += 1

    # -- the step ----------------------------------------------------------------------------

    def rule_arguments(self, group: dict) -> dict:
        """The keyword arguments of ``rule.scalars`` for this group."""
        raise NotImplementedError

    def step_scalars(self, state: dict, t: float, lr: float, arguments: dict, p) -> tuple:
        """The rule's scalars for a parameter at its step ``t``."""
        return self.rule.scalars(t, lr, **arguments)

    def _weight_decay(self, group: dict, lr: float) -> tuple[float | None, float | None]:
        """(L2 coefficient or None, decoupled lr * wd or None) of the group."""
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        if wd == 0.0:
            return None, None
        decoupled = group.get("decoupled_weight_decay", self.weight_decay_mode == "decoupled")
        return (None, lr * wd) if decoupled else (wd, None)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; ``closure`` (optional) re-evaluates
        the model and returns the loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:  # every group valid before any parameter moves
            self._ensure_checked(group)
        self._refuse_impossible_step()
        if self.nan_policy != "propagate" and not self._gradients_finite():
            return loss
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _refuse_impossible_step(self) -> None:
        """Raise before any parameter moves if one of them cannot be stepped (a sparse gradient
        the optimizer or its options cannot take; with ``engine="fused"``, tensors the fused
        kernel cannot read): raised from the update loop, the error would come after the
        parameters before it had moved."""
        fused_only = self.engine == "fused"
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    problem = self._sparse_problem(p, group)
                    if problem:
                        raise RuntimeError(problem)
                elif fused_only:
                    problem = _fused_problem(p, g)
                    if problem:
                        raise TypeError(problem)

    def _sparse_problem(self, p, group: dict) -> str | None:
        """Why a sparse gradient of ``p`` cannot be applied in ``group`` (None if it can)."""
        name = type(self).__name__
        if not self.sparse_gradients:
            return (
                f"{name} does not support sparse gradients (only Adagrad does, as in "
                "torch.optim); use dense gradients, or torch.optim.SparseAdam"
            )
        if group.get("weight_decay", 0):
            return "weight_decay option is not compatible with sparse gradients"
        if p.is_complex():
            return f"{name}: sparse gradients of complex parameters are not supported"
        return None

    def _gradients_finite(self) -> bool:
        """The ``nan_policy`` check of every gradient, before anything changes: True to go on,
        False to skip the step (``"skip"``), FloatingPointError for ``"raise"``."""
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is not None and not _finite(g):
                    if self.nan_policy == "skip":
                        self.skipped_steps += 1
                        return False
                    count = _non_finite_count(g)
                    raise FloatingPointError(
                        f"the gradient of parameter {index} (shape {tuple(p.shape)}) has "
                        f"{count} non-finite value(s) (NaN or Inf); nothing was changed. Pass "
                        "nan_policy='skip' to skip such steps or 'propagate' to apply them "
                        "(torch.optim's behaviour)"
                    )
                index += 1
        return True

    def _step_group(self, group: dict) -> None:
        """Update the parameters of one (validated) group."""
        lr = float(as_float("lr", group["lr"]))
        l2, decoupled_wdlr = self._weight_decay(group, lr)
        maximize = bool(group.get("maximize", False))
        arguments = self.rule_arguments(group)
        keys = tuple(key if self.slot_enabled(key, group) else None for key in self.slot_keys)
        stateless = not self.counts_steps and all(k is None for k in keys)
        pipe = (
            None,
            -1.0 if maximize else None,
            None,
            l2,
            None,
            0.0,
            1.0,
            None if decoupled_wdlr is None else 1.0 - decoupled_wdlr,
        )
        pipe_key = tuple(x is None for x in pipe)
        per_step: dict[float, tuple] = {}  # the scalars of each step count seen in this group
        shared = type(self).step_scalars is Optimizer.step_scalars
        views = self._views
        use_fused = self.engine != "torch"
        states = self.state
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            # the fast path: a fused view of this parameter whose tensors are still the same
            view = views.get(id(p)) if use_fused else None
            if view is not None:
                state = states.get(p) if not stateless else None
                if not view.matches(p, state, keys):
                    view = None
            if view is None:
                if stateless:  # e.g. SGD without momentum: torch keeps no state for it
                    state, fresh = {}, True
                else:
                    state = states[p]
                    fresh = not state or any(k is not None and k not in state for k in keys)
                    if fresh:
                        self._init_state(p, state, group)
                if use_fused:
                    view = _FusedView.make(self.rule, p, None if stateless else state, keys)
                    if view is not None:
                        views[id(p)] = view
                    else:
                        views.pop(id(p), None)
            else:
                fresh = False
            if view is not None and view.step_array is not None:
                t = view.advance()
            else:
                t = self._advance(state, fresh)
            if shared:
                scalars = per_step.get(t)
                if scalars is None:
                    scalars = per_step[t] = self.rule.scalars(t, lr, **arguments)
            else:
                scalars = self.step_scalars(state, t, lr, arguments, p)
            if view is not None and view.run(g, scalars, pipe, pipe_key):
                continue
            slots = [None if k is None else state[k] for k in keys]
            if g.is_sparse:
                self._apply_sparse(p, g, slots, scalars, maximize, group)
                continue
            self._apply_torch(p, g, slots, scalars, maximize, l2, decoupled_wdlr)

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
        }

    def _advance(self, state: dict, fresh: bool) -> float:
        """Count the step of a parameter (``fresh``: its state was just created); returns the
        1-based step being made."""
        step = state["step"]
        step += 1
        return float(step)

    def _apply_sparse(self, p, g, slots, scalars, maximize, group) -> None:
        """A sparse (COO) gradient: the rule's update on the entries it names, nothing else.

        Only for rules where a zero gradient changes nothing (``sparse_gradients = True``:
        Adagrad, whose sum and parameter stay put where g = 0), as in torch.optim. The gradient
        is coalesced (an index named twice has its values summed: the update is not linear),
        the touched entries gathered, updated by the rule's own code on torch tensors, and
        written back; any engine, any layout of the parameter.
        """
        problem = self._sparse_problem(p, group)  # (step() refused it already)
        if problem:
            raise RuntimeError(problem)
        g = g.coalesce()
        index = tuple(g._indices())  # one index tensor per sparse dimension
        values = g._values()
        if maximize:
            values = -values
        new = _ops.torch_update(self.rule)(
            p[index], values, *(None if s is None else s[index] for s in slots), *scalars
        )
        p.index_put_(index, new[0])
        for buffer, value in zip(slots, new[1:], strict=True):
            if buffer is not None:
                buffer.index_put_(index, value)

    def _apply_torch(self, p, g, slots, scalars, maximize, l2, decoupled_wdlr) -> None:
        """The update on the torch-ops path (the fused one could not take these tensors)."""
        if self.engine == "fused":  # (step() refused it already where it could tell)
            raise TypeError(_fused_problem(p, g) or _fused_message(p, g))
        if p.is_complex():
            p, g = torch.view_as_real(p), torch.view_as_real(g)
            slots = [None if s is None else torch.view_as_real(s) for s in slots]
        _ops.apply(
            self.rule, p, g, slots, scalars, maximize=maximize, l2=l2, decoupled_wdlr=decoupled_wdlr
        )


class _FusedView:
    """A parameter's tensors seen by the fused kernel: flat NumPy views of the parameter and of
    its state buffers (their memory, no copies), a view of the step count, and the compiled
    kernel, kept from step to step. ``matches`` tells whether the tensors are still the same
    ones (``load_state_dict``, ``p.data = ...`` or a new state buffer replace them)."""

    __slots__ = (
        "param",
        "spec",
        "pointer",
        "state",
        "step",
        "step_array",
        "arrays",
        "dtype",
        "size",
        "complex",
        "loop",
        "entry",
        "entry_key",
        "keys",
        "held",
    )

    @classmethod
    def make(cls, rule, p, state, keys):
        tensors = tuple(None if k is None else state[k] for k in keys)
        local, spec = _local(p)
        locals_ = []
        for t in tensors:
            t_local, t_spec = (None, spec) if t is None else _local(t)
            if t_spec != spec:  # a buffer laid out unlike its parameter
                return None
            locals_.append(t_local)
        if local is None or not _fusable(local, locals_):
            return None
        complex_ = local.is_complex()
        real = torch.view_as_real if complex_ else (lambda t: t)
        try:
            arrays = [real(local.detach()).numpy().reshape(-1)]
            arrays += [None if t is None else real(t).numpy().reshape(-1) for t in locals_]
            step = None if state is None else state.get("step")
            step_array = None
            if (
                step is not None
                and step.device.type == "cpu"
                and step.dim() == 0
                and step.dtype in _FUSED_DTYPES
                and not step.requires_grad
            ):
                step_array = step.numpy()
        except (RuntimeError, TypeError):  # e.g. a tensor with its negative bit set
            return None
        view = cls()
        view.param = p
        view.spec = spec
        view.pointer = local.data_ptr()
        view.state = state
        view.keys = keys
        # (key, tensor) of the buffers in use: what ``matches`` checks at every step
        view.held = tuple((k, t) for k, t in zip(keys, tensors, strict=True) if k is not None)
        view.step = step
        view.step_array = step_array
        view.arrays = arrays
        view.dtype = arrays[0].dtype
        view.size = arrays[0].size
        view.complex = complex_
        loops = fused._LOOPS[rule]
        view.loop = loops[0] if view.size >= fused.PARALLEL_THRESHOLD else loops[1]
        view.entry = None
        view.entry_key = None
        return view

    def matches(self, p, state, keys) -> bool:
        """Whether ``p`` and its ``state`` still hold the tensors this view was made of."""
        if self.param is not p or state is not self.state or keys != self.keys:
            return False
        if (p if self.spec is None else p._local_tensor).data_ptr() != self.pointer:
            return False
        if state is not None:
            if state.get("step") is not self.step:
                return False
            for key, tensor in self.held:
                if state.get(key) is not tensor:
                    return False
        return True

    def advance(self) -> float:
        """The parameter's step count + 1, written to its ``step`` tensor (through the view)."""
        t = float(self.step_array) + 1.0
        self.step_array[()] = t
        return t

    def run(self, g, scalars, pipe, pipe_key) -> bool:
        """One fused update with gradient ``g``; False (nothing done) if ``g`` cannot be read
        as a dense array of the parameter's dtype and size. ``pipe_key`` tells which options of
        the pipeline are off (None): the compiled entry is only reused for the same ones."""
        if self.spec is not None:  # a DTensor: its shard, if laid out as the parameter's
            g, spec = _local(g)
            if spec != self.spec or g is None:
                return False
        try:
            grad = (torch.view_as_real(g) if self.complex else g).numpy()
        except (RuntimeError, TypeError):  # another device, sparse, requires grad...
            return False
        if grad.dtype != self.dtype or grad.size != self.size or not grad.flags.c_contiguous:
            return False
        if grad.ndim != 1:
            grad = grad.reshape(-1)
        p, *slots = self.arrays
        if self.entry is not None and self.entry_key == pipe_key:
            self.entry(p, grad, *slots, None, scalars, pipe)
            return True
        args = (
            p,
            grad,
            *slots,
            None,
            fused._cast(scalars, self.dtype),
            fused._cast_pipeline(pipe, self.dtype),
        )
        self.loop(*args)
        self.entry = fused.compiled_entry(self.loop, args)
        self.entry_key = pipe_key
        return True


_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def _fused_message(p, g) -> str:
    return (
        f"engine='fused' needs CPU float32/float64 contiguous tensors with a dense gradient of "
        f"the same dtype; got a {p.dtype} tensor on {p.device} (gradient {g.dtype} on "
        f"{g.device}, contiguous: {p.is_contiguous() and g.is_contiguous()}); use engine='auto'"
    )


def _fused_problem(p, g) -> str | None:
    """Why the fused kernel cannot step ``p`` with the dense gradient ``g`` (None if it can;
    its state buffers are made like ``p``)."""
    local, spec = _local(p)
    g_local, g_spec = _local(g)
    if (
        local is not None
        and g_local is not None
        and spec == g_spec
        and _fusable(local, [])
        and g_local.dtype == local.dtype
        and g_local.device.type == "cpu"
        and g_local.layout == torch.strided
        and g_local.is_contiguous()
    ):
        return None
    return _fused_message(p, g)


def _finite(g) -> bool:
    """Whether every value of the gradient ``g`` is finite (one read of it)."""
    if g.is_sparse:
        g = g.coalesce()._values()
    if getattr(g, "placements", None) is not None:
        # a DTensor: the count over all its shards (a collective), so that every rank takes
        # the same decision
        return _non_finite_count(g) == 0
    if (
        g.device.type == "cpu"
        and _COMPLEX.get(g.dtype, g.dtype) in _FUSED_DTYPES
        and g.is_contiguous()
        and not g.requires_grad
    ):
        real = torch.view_as_real(g) if g.is_complex() else g
        return fused.all_finite(real.numpy())
    return bool(torch.isfinite(g).all())


def _non_finite_count(g) -> int:
    """The number of NaN/Inf values of the gradient ``g``; for a DTensor, over all its shards
    (the local counts summed across the ranks)."""
    if g.is_sparse:
        g = g.coalesce()._values()
    count = (~torch.isfinite(g)).sum()
    if getattr(count, "placements", None) is not None:
        count = count.full_tensor()
    return int(count)


def _local(t):
    """``(t, None)`` for a plain tensor. For a ``DTensor`` (a parameter sharded by FSDP2 or
    tensor parallelism), ``(its local tensor, (mesh, placements))`` when every placement is
    Shard or Replicate, where an elementwise update of the local tensors is the update of the
    whole; ``(None, None)`` otherwise (a Partial placement holds unreduced sums)."""
    placements = getattr(t, "placements", None)
    local = getattr(t, "_local_tensor", None)
    if placements is None or local is None:
        return t, None
    if not all(pl.is_shard() or pl.is_replicate() for pl in placements):
        return None, None
    return local, (t.device_mesh, tuple(placements))


def _fusable(p, slots) -> bool:
    """Whether the fused kernel can run on the memory of this parameter and its state."""
    dtype = _COMPLEX.get(p.dtype, p.dtype)
    if p.device.type != "cpu" or dtype not in _FUSED_DTYPES or not p.is_contiguous():
        return False
    if p.layout != torch.strided:
        return False
    return all(
        s is None or (s.dtype == p.dtype and s.device.type == "cpu" and s.is_contiguous())
        for s in slots
    )
