"""The base of the PyTorch drop-ins: a ``torch.optim.Optimizer`` that runs optimlab's rules.

Everything a torch user relies on comes from ``torch.optim.Optimizer`` itself: ``param_groups``,
``add_param_group``, ``zero_grad``, ``state_dict`` / ``load_state_dict`` (the same structure as
torch.optim's, so checkpoints move between the two), step hooks, and every
``torch.optim.lr_scheduler``. What differs is who computes the update:

- CPU float32/float64 tensors (contiguous, dense gradient of the same dtype): the fused numba
  kernel of :mod:`optimlab.engines.fused`, run on the tensors' own memory through
  ``Tensor.numpy()`` views: one parallel pass, no copies, no temporaries.
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
    #: "l2" (PyTorch's weight_decay: g = g + wd * p) or "decoupled" (p = p - lr * wd * p);
    #: ``decoupled_weight_decay`` in a group overrides it
    weight_decay_mode = "l2"

    def __init__(self, params, defaults: dict, engine: str = "auto") -> None:
        self.engine = check_choice("engine", engine, ENGINES)
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
        return tuple(
            group[key].item() if isinstance(group[key], torch.Tensor) else group[key]
            for key in self.checks
            if key in group
        )

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
        super().__setstate__(state)
        self.__dict__.setdefault("engine", "auto")
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
        for group in self.param_groups:
            self._ensure_checked(group)
            lr = float(as_float("lr", group["lr"]))
            l2, decoupled_wdlr = self._weight_decay(group, lr)
            maximize = bool(group.get("maximize", False))
            arguments = self.rule_arguments(group)
            keys = [key if self.slot_enabled(key, group) else None for key in self.slot_keys]
            stateless = not self.counts_steps and all(k is None for k in keys)
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients; use "
                        "torch.optim.SparseAdam or dense gradients"
                    )
                if stateless:  # e.g. SGD without momentum: torch keeps no state for it
                    state, fresh = {}, True
                else:
                    state = self.state[p]
                    fresh = not state or any(k is not None and k not in state for k in keys)
                    if fresh:
                        self._init_state(p, state, group)
                t = self._advance(state, fresh)
                scalars = self.step_scalars(state, t, lr, arguments, p)
                slots = [None if k is None else state[k] for k in keys]
                self._apply(p, g, slots, scalars, maximize, l2, decoupled_wdlr)
        return loss

    def _advance(self, state: dict, fresh: bool) -> float:
        """Count the step of a parameter (``fresh``: its state was just created); returns the
        1-based step being made."""
        step = state["step"]
        step += 1
        return float(step)

    def _apply(self, p, g, slots, scalars, maximize, l2, decoupled_wdlr) -> None:
        if p.is_complex():
            p, g = torch.view_as_real(p), torch.view_as_real(g)
            slots = [None if s is None else torch.view_as_real(s) for s in slots]
        if self.engine != "torch" and _fusable(p, g, slots):
            try:
                arrays = [p.detach().numpy(), g.detach().numpy()]
                slot_arrays = [None if s is None else s.numpy() for s in slots]
            except RuntimeError:  # e.g. a tensor with its negative or conjugate bit set
                arrays = None
            if arrays is not None:
                pipe = fused.pipeline(
                    gscale=-1.0 if maximize else 1.0,
                    l2=l2,
                    decay_factor=None if decoupled_wdlr is None else 1.0 - decoupled_wdlr,
                )
                fused.apply(self.rule, arrays[0], arrays[1], slot_arrays, scalars, pipe)
                return
        if self.engine == "fused":
            raise TypeError(
                f"engine='fused' needs CPU float32/float64 contiguous tensors with a dense "
                f"gradient of the same dtype; got a {p.dtype} tensor on {p.device} "
                f"(gradient {g.dtype}, contiguous: {p.is_contiguous() and g.is_contiguous()}); "
                "use engine='auto'"
            )
        _ops.apply(
            self.rule, p, g, slots, scalars, maximize=maximize, l2=l2, decoupled_wdlr=decoupled_wdlr
        )


def _fusable(p, g, slots) -> bool:
    """Whether the fused kernel can run on these tensors' memory."""
    if p.device.type != "cpu" or p.dtype not in _FUSED_DTYPES or not p.is_contiguous():
        return False
    if g.dtype != p.dtype or g.layout != torch.strided or not g.is_contiguous():
        return False
    if g.device.type != "cpu":
        return False
    return all(s is None or (s.dtype == p.dtype and s.is_contiguous()) for s in slots)
