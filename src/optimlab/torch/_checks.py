"""The checks of optimlab.torch: torch.optim's own, with its words, and optimlab's on top.

At construction each optimizer runs torch.optim's ``__init__`` checks of its arguments, in
torch's order and with torch's messages (``ValueError: Invalid learning rate: -1``), before
``params`` is read, as torch does; then optimlab's own, which torch does not make (a string or
a boolean where a number is meant, an infinity, a flag that is not a bool), with messages
that name the argument, the value and the valid range::

    SGD(params, lr=-1)            ValueError: Invalid learning rate: -1          (torch's)
    SGD(params, lr=float("inf"))  ValueError: lr must be a finite float >= 0, got inf

torch checks nothing later; optimlab checks a group's values again when the group is added,
when a state dict is loaded and before a step where a value has changed (a scheduler or the
user may set any), against the same ranges (:func:`check_group`), so that a bad value stops
the step before any parameter moves.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._validation import check_choice

ENGINES = ("auto", "fused", "torch", "compiled")
NAN_POLICIES = ("propagate", "raise", "skip")


@dataclass(frozen=True)
class Bound:
    """The valid values of a hyperparameter, ``0 <= x`` (``<= high``, ``< high`` if
    ``high_open``), and torch's words for a value outside them. ``nan_passes``: torch's test is
    ``x < 0`` (SGD's), which a NaN passes; optimlab refuses a NaN there with its own words."""

    words: str
    high: float | None = None
    high_open: bool = False
    nan_passes: bool = False

    def torch_refuses(self, x: Any) -> bool:
        """torch's own test of ``x`` (a number or a one-element tensor, compared as torch
        compares it)."""
        if self.nan_passes:
            return bool(x < 0.0)
        if self.high is None:
            return not 0.0 <= x
        return not (0.0 <= x < self.high if self.high_open else 0.0 <= x <= self.high)

    def describe(self) -> str:
        """The valid values in words: ``>= 0``, ``in [0, 1)``, ``in [0, 1]``."""
        if self.high is None:
            return ">= 0"
        return f"in [0, {self.high:g}{')' if self.high_open else ']'}"

    def holds(self, x: float) -> bool:
        """Whether the finite or infinite float ``x`` is valid (NaN and infinities are not)."""
        if not math.isfinite(x) or x < 0.0:
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)


LR = Bound("Invalid learning rate")
EPS = Bound("Invalid epsilon value")
WEIGHT_DECAY = Bound("Invalid weight_decay value")
MOMENTUM = Bound("Invalid momentum value")
BETA = Bound("Invalid beta parameter at index {index}", high=1.0, high_open=True)
RHO = Bound("Invalid rho value", high=1.0)
ALPHA = Bound("Invalid alpha value")
LR_DECAY = Bound("Invalid lr_decay value")
INITIAL_ACCUMULATOR = Bound("Invalid initial_accumulator_value value")
MOMENTUM_DECAY = Bound("Invalid momentum_decay value")
#: torch's SGD tests ``x < 0``
SGD_LR = Bound(LR.words, nan_passes=True)
SGD_MOMENTUM = Bound(MOMENTUM.words, nan_passes=True)
SGD_WEIGHT_DECAY = Bound(WEIGHT_DECAY.words, nan_passes=True)
#: no range (torch accepts any dampening); optimlab wants a finite number
ANY = Bound("")


# -- values -----------------------------------------------------------------------------------


#: which tensors a hyperparameter may be: none (torch types it ``float``), 0-d ones (SGD's
#: weight_decay, Adam's betas), or any one-element one (``lr``, which torch squeezes)
NO_TENSOR, SCALAR_TENSOR, ANY_TENSOR = "none", "0-d", "one-element"


def number(name: str, value: Any, what: str, tensors: str = ANY_TENSOR) -> float:
    """``value`` as a float: a real number (not a bool), or a real tensor as ``tensors``
    allows; TypeError naming ``name`` otherwise (``what``: the valid range, for the
    message)."""
    if type(value) is float or type(value) is int:  # the common case, without the ABC check
        return float(value)
    if isinstance(value, torch.Tensor):
        shape_ok = value.numel() == 1 if tensors == ANY_TENSOR else value.dim() == 0
        if tensors == NO_TENSOR or not shape_ok or value.is_complex() or value.dtype == torch.bool:
            allowed = "" if tensors == NO_TENSOR else f" or a {tensors} real tensor"
            raise TypeError(
                f"{name} must be a float {what}{allowed}, got a tensor of shape "
                f"{tuple(value.shape)} and dtype {value.dtype}"
            )
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float {what}, got {value!r} of type {type(value).__name__}"
        )
    return float(value)


def as_float(name: str, value: Any) -> float:
    """A hyperparameter as a Python float (a one-element tensor learning rate included)."""
    return number(name, value, "")


def bounded(bound: Bound, tensors: str = NO_TENSOR) -> Callable[[str, Any], float]:
    """The group validator of a value in ``bound``: ``validate(name, value) -> float``."""

    def validate(name: str, value: Any) -> float:
        x = number(name, value, bound.describe(), tensors)
        if not bound.holds(x):
            raise ValueError(f"{name} must be a finite float {bound.describe()}, got {value!r}")
        return x

    validate.bound = bound  # type: ignore[attr-defined]
    return validate


def finite(name: str, value: Any) -> float:
    """Any finite float (SGD's dampening: torch takes any value)."""
    x = number(name, value, "(any finite value)", NO_TENSOR)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite float, got {value!r}")
    return x


def pair(tensors: str = NO_TENSOR) -> Callable[[str, Any], tuple[float, float]]:
    """The validator of betas: (beta_1, beta_2), each a float (or a tensor as ``tensors``
    allows) in [0, 1)."""
    check = bounded(BETA, tensors)

    def validate(name: str, value: Any) -> tuple[float, float]:
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise ValueError(
                f"{name} must be a pair (beta_1, beta_2), each in [0, 1), got {value!r}"
            )
        return check(f"{name}[0]", value[0]), check(f"{name}[1]", value[1])

    return validate


betas_pair = pair()


def flag(name: str, value: Any) -> bool:
    """True or False."""
    if isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be True or False, got {value!r}")


def optional_flag(name: str, value: Any) -> bool | None:
    """True, False or None (None: torch's default, for ``foreach`` and ``fused``)."""
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be True, False or None, got {value!r}")


def flags(*names: str, optional: tuple[str, ...] = ()) -> dict:
    """The validators of boolean options."""
    return {**{n: flag for n in names}, **{n: optional_flag for n in optional}}


def check_group(checks: dict, group: dict, where: str = "") -> None:
    """Every value of ``group`` that has a validator in ``checks``; the message starts with
    ``where`` (e.g. ``"param group 1: "``)."""
    for key, validate in checks.items():
        if key in group:
            try:
                validate(key, group[key])
            except (TypeError, ValueError) as error:
                raise type(error)(f"{where}{error}") from None


def check_fits(checks: dict, group: dict, where: str = "") -> None:
    """Every value of a range-checked hyperparameter (lr, eps, weight_decay...) fits the
    dtype of the group's parameters: torch.optim passes them to its kernels as numbers of
    that dtype and fails in the middle of the step on one that overflows it (RuntimeError:
    value cannot be converted to type float without overflow); optimlab refuses it first."""
    dtypes = {p.dtype for p in group["params"] if isinstance(p, torch.Tensor)}
    for dtype in dtypes:
        if dtype.is_complex:
            dtype = torch.empty((), dtype=dtype).real.dtype
        if not dtype.is_floating_point:
            continue
        limit = torch.finfo(dtype).max
        for key, validate in checks.items():
            if key in group and hasattr(validate, "bound"):
                x = as_float(key, group[key])
                if abs(x) > limit:
                    raise RuntimeError(
                        f"{where}{key} must fit {dtype}, the dtype of the group's parameters "
                        f"(|{key}| <= {limit:g}), got {group[key]!r}: value cannot be "
                        "converted to its type without overflow"
                    )


# -- construction: torch's checks, then optimlab's -------------------------------------------


def tensor_lr(args: dict) -> None:
    """torch: a tensor learning rate holds one element."""
    lr = args["lr"]
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")


def adam_tensor_lr(args: dict) -> None:
    """torch's Adam: a tensor learning rate needs ``capturable`` under ``foreach``, and holds
    one element."""
    lr = args["lr"]
    if isinstance(lr, torch.Tensor):
        if args["foreach"] and not args["capturable"]:
            raise ValueError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )
        tensor_lr(args)


def in_bound(
    key: str, bound: Bound, index: int | None = None, tensors: str = ANY_TENSOR
) -> Callable[[dict], None]:
    """torch's test of ``args[key]`` (of ``args[key][index]`` for betas) with its words; a value
    torch cannot even compare (a string, None, a complex number, a list) is a TypeError naming
    it. (A value torch's test lets through, a boolean say, meets optimlab's own checks next.)"""
    name = key if index is None else f"{key}[{index}]"

    def check(args: dict) -> None:
        value = args[key]
        if index is not None:
            value = beta_element(key, value, index)
        try:
            refused = bound.torch_refuses(value)
        except Exception:  # noqa: BLE001 - torch's comparison fails on it: a TypeError
            number(name, value, bound.describe(), tensors)
            raise TypeError(f"{name} must be a float {bound.describe()}, got {value!r}") from None
        if refused:
            words = bound.words.format(index=index)
            raise ValueError(f"{words}: {value}")

    return check


def beta_element(key: str, value: Any, index: int) -> Any:
    """``value[index]`` of a betas argument; torch indexes it, so a non-pair fails there."""
    words = f"{key} must be a pair (beta_1, beta_2), each in [0, 1), got {value!r}"
    if not isinstance(value, tuple | list | torch.Tensor):
        raise TypeError(words)
    if (value.dim() == 0 if isinstance(value, torch.Tensor) else False) or len(value) <= index:
        raise IndexError(words)
    return value[index]


def adam_betas(args: dict) -> None:
    """torch's Adam: both betas floats or both tensors; a tensor beta needs ``capturable``
    under ``foreach`` and holds one element."""
    b0, b1 = args["betas"][0], args["betas"][1]
    if not (
        (isinstance(b0, float) and isinstance(b1, float))
        or (isinstance(b0, torch.Tensor) and isinstance(b1, torch.Tensor))
    ):
        raise ValueError("betas must be either both floats or both Tensors")
    for index, b in enumerate((b0, b1)):
        if isinstance(b, torch.Tensor):
            if not args["capturable"] and args["foreach"]:
                raise ValueError(
                    f"betas[{index}] as a Tensor is not supported for capturable=False and "
                    "foreach=True"
                )
            if b.numel() != 1:
                raise ValueError(f"Tensor betas[{index}] must be 1-element")


def sgd_nesterov(args: dict) -> None:
    """torch's SGD: Nesterov momentum needs a momentum > 0 and no dampening."""
    if args["nesterov"] and (args["momentum"] <= 0 or args["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


def check_arguments(torch_checks, checks: dict, args: dict, prepare=None, engines=ENGINES) -> None:
    """A constructor's arguments, before ``params`` is read: torch's checks in torch's order
    (``torch_checks``), then ``prepare(args)`` (the values as torch stores them), then every
    group validator of ``checks`` (optimlab's ranges, types and finiteness), then ``engine``
    (one of ``engines``, the optimizer's) and ``nan_policy``."""
    for check in torch_checks:
        check(args)
    if prepare is not None:
        prepare(args)
    check_group(checks, args)
    check_choice("engine", args["engine"], engines)
    check_choice("nan_policy", args["nan_policy"], NAN_POLICIES)


def fused_flags(name: str, args: dict) -> None:
    """torch, after reading the parameters: ``fused`` excludes ``differentiable`` and
    ``foreach``."""
    if args.get("fused"):
        if args.get("differentiable"):
            raise RuntimeError("`fused` does not support `differentiable`")
        if args.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def state_number(index: int, key: str, value: Any) -> float:
    """A scalar of a loaded state (an older checkpoint's plain-number ``step``) as a float;
    TypeError naming the parameter and the key if it is no real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"state of parameter {index}: {key!r} must be a number or a one-element tensor, "
            f"got {value!r} of type {type(value).__name__}"
        )
    return float(value)


# -- a step: each gradient against its parameter, before anything moves ---------------------


def gradient_problem(index: int, p: torch.Tensor, g: torch.Tensor) -> str | None:
    """Why the gradient ``g`` of parameter ``index`` cannot update ``p`` (None if it can): its
    shape, dtype or device is not the parameter's (possible through ``.data``, which skips the
    checks of ``p.grad = ...``; torch.optim then fails half-way, casts silently or, for a
    broadcastable shape, updates with the wrong numbers), or its layout is neither strided nor
    sparse COO."""
    if g.shape != p.shape:
        return (
            f"the gradient of parameter {index} has shape {tuple(g.shape)}, but the parameter "
            f"has shape {tuple(p.shape)}; nothing was changed"
        )
    if g.dtype != p.dtype:
        return (
            f"the gradient of parameter {index} has dtype {g.dtype}, but the parameter has "
            f"dtype {p.dtype}; nothing was changed"
        )
    if g.device != p.device:
        return (
            f"the gradient of parameter {index} is on {g.device}, but the parameter is on "
            f"{p.device}; nothing was changed"
        )
    if g.layout not in (torch.strided, torch.sparse_coo):
        return (
            f"the gradient of parameter {index} has layout {g.layout}; optimlab.torch takes "
            "torch.strided and torch.sparse_coo gradients; nothing was changed"
        )
    return None


def fused_device_problem(p: torch.Tensor) -> str | None:
    """torch's check of a parameter under ``fused=True`` (None if it passes)."""
    if p.is_cpu and torch.is_floating_point(p):
        return None
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    if p.device.type in devices and torch.is_floating_point(p):
        return None
    return (
        "`fused=True` requires all the params to be floating point Tensors of "
        f"supported devices: {devices} but {p.dtype} and {p.device.type}"
    )


def capturable_problem(p: torch.Tensor, step: Any, supports_xla: bool, what: str) -> str | None:
    """torch's check of a parameter under ``capturable=True`` (None if it passes): it and its
    step count on a device that can capture a graph (never the CPU). ``what``: torch's words
    for the tensors, e.g. ``"params and state_steps"``."""
    from torch.optim.optimizer import _get_capturable_supported_devices

    devices = _get_capturable_supported_devices(supports_xla=supports_xla)
    step_device = p.device.type if step is None else step.device.type
    if p.device.type == step_device and p.device.type in devices:
        return None
    return f"If capturable=True, {what} must be on supported devices: {devices}."
