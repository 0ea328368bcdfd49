"""``preset="torch" | "keras" | "optax"`` for the PyTorch drop-ins.

Every drop-in takes a keyword-only ``preset`` (default ``"torch"``: torch.optim's numerics,
unchanged). With ``"keras"`` or ``"optax"`` the arguments keep torch's names (``lr``,
``betas``, ``eps``, ``weight_decay``, ``momentum``, ...) but the update is that preset's, as
``optimlab.<Class>(preset=...)`` computes it (:mod:`optimlab.presets`):

- defaults: an argument the caller passes wins; one left out takes the preset's default
  (``Adam(params, preset="keras")`` has ``eps=1e-7``; ``preset="optax"`` has no default
  learning rate, as optax's aliases, and asks for ``lr``);
- formulas: the preset's rule options (epsilon inside or outside the root, the learning rate
  inside or outside the momentum buffer, optax's AMSGrad of the corrected v, Keras's Nadam
  schedule, ...), Keras's decoupled weight decay ``p = p - p * (lr * wd)`` (torch's is
  ``p = p * (1 - lr * wd)``), and the weight-decay mode of the preset where torch's class has
  no ``decoupled_weight_decay`` flag;
- conventions: ``step_counting="global"`` (one count for the whole optimizer, the number of
  steps that updated something, so a parameter that missed steps still sees the optimizer's
  count in its bias corrections), ``power_precision="dtype"`` (Keras's bias-correction powers
  of beta rounded to the narrowest parameter dtype), and every scalar state (``step``, NAdam's
  ``mu_product``, ASGD's ``eta`` and ``mu``) kept in float64, as the NumPy dialect keeps it
  in Python floats.

The state dict keeps torch's layout for ``preset="torch"``; other presets add ``"preset"`` to
every param group, so that a state dict is only loaded into an optimizer of the same preset.

What stays torch's under every preset: the API (param groups, schedulers, closures, a
parameter without a gradient skipped silently, where Keras's ``apply_gradients`` warns), the
constructors' checks and messages, and the refusals. torch.optim's own ``fused=True``,
``capturable=True`` and ``differentiable=True`` (torch's kernels, CUDA graphs, autograd
through its arithmetic) exist only under ``preset="torch"`` and are refused with another.
SparseAdam has no Keras or optax namesake: only ``"torch"``. The optimizer's count under
``step_counting="global"`` is read from the parameters' ``step`` tensors (the largest one;
SGD and Lion, which keep no count and read it only as "the first update or not", tell those
two apart by whether any state exists), so a state dict carries it; NAdam's one momentum
product is that of a parameter at that count.

How a default is told from an explicit argument: the signature defaults are the values of
torch's signature wrapped in :func:`default` (a ``float``/``int``/``tuple`` subclass that
compares equal to torch's value, so ``inspect.signature`` shows torch's defaults); an
argument that arrives still wrapped was not passed.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from .. import presets
from .._validation import check_choice

PRESETS = presets.PRESETS

# -- signature defaults that remember they were not passed ---------------------------------


class _DefaultFloat(float):
    __slots__ = ()


class _DefaultInt(int):
    __slots__ = ()


class _DefaultBool(int):
    """A bool default (bool cannot be subclassed): 0 or 1, shown as False or True."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(bool(self))


class _DefaultTuple(tuple):
    __slots__ = ()


class _DefaultNone:
    """A None default (None cannot be subclassed): equal to None, false, shown as None."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return other is None or isinstance(other, _DefaultNone)

    def __hash__(self) -> int:
        return hash(None)

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "None"


_NONE = _DefaultNone()
_WRAPPERS = (_DefaultFloat, _DefaultInt, _DefaultBool, _DefaultTuple, _DefaultNone)


def default(value):
    """``value`` as a signature default that :func:`resolve` can tell from a passed value
    (equal to ``value``; strings are returned as they are)."""
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return _DefaultBool(value)
    if isinstance(value, int):
        return _DefaultInt(value)
    if isinstance(value, float):
        return _DefaultFloat(value)
    if isinstance(value, tuple):
        return _DefaultTuple(value)
    return value


def is_default(value) -> bool:
    """Whether ``value`` is a signature default of :func:`default` (the caller left it out)."""
    return isinstance(value, _WRAPPERS)


def plain(value):
    """A signature default as the plain value torch's signature has (anything else as it is)."""
    if isinstance(value, _DefaultBool):
        return bool(value)
    if isinstance(value, _DefaultInt):
        return int(value)
    if isinstance(value, _DefaultFloat):
        return float(value)
    if isinstance(value, _DefaultTuple):
        return tuple(value)
    if isinstance(value, _DefaultNone):
        return None
    return value


# -- the preset's values -----------------------------------------------------------------------


def check_preset(value, kind: str, available=PRESETS, reason: str | None = None) -> str:
    """``preset`` checked: one of ``available`` (ValueError naming the argument, the value and
    the valid set otherwise, with ``reason``: by default, that the preset's peer has no such
    optimizer)."""
    preset = check_choice("preset", value, PRESETS)
    if preset not in available:
        peer = "Keras" if preset == "keras" else "optax"
        raise ValueError(
            f"preset must be one of {', '.join(map(repr, available))} for optimlab.torch."
            f"{kind}, got {preset!r}: "
            + (reason or f"{peer} has no {kind} (see optimlab.presets.PEERS)")
        )
    return preset


def resolve(kind: str, preset: str, arguments: dict, names: dict) -> dict:
    """The constructor's ``arguments`` (torch's names) with every left-out one in ``names``
    (torch key -> the dialect's name, or a pair of names for a pair such as ``betas``;
    ``decoupled_weight_decay`` -> the preset's ``weight_decay_mode``) set to the preset's
    default, and every signature default made plain. ``kind``: the optimizer's name in
    :mod:`optimlab.presets`. TypeError for a learning rate the preset has no default for."""
    out = {key: plain(value) for key, value in arguments.items()}
    if preset == "torch":
        return out
    table = presets.defaults(kind, preset)
    for key, name in names.items():
        if key not in arguments or not is_default(arguments[key]):
            continue
        if isinstance(name, tuple):
            value = tuple(table[n] for n in name)
        elif key == "decoupled_weight_decay":
            value = table["weight_decay_mode"] == "decoupled"
        else:
            value = table[name]
        if value is presets.REQUIRED:
            peer = presets.PEERS.get(kind, {}).get(preset) or f"the {preset} preset of {kind}"
            raise TypeError(
                f"{key} is required with preset={preset!r}: {peer} has no default learning "
                f"rate; pass {key}=..."
            )
        if name == "weight_decay" and value is None:
            value = 0.0
        out[key] = value
    return out


def _keyword_arguments(function) -> tuple[str, ...]:
    parameters = inspect.signature(function).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def rule_options(kind: str, preset: str, rule, names: dict, torch_keys=()) -> dict:
    """The preset's formula options of ``rule.scalars`` that no torch argument sets (Adam's
    ``epsilon_style`` and ``amsgrad_max``, RMSprop's ``epsilon_in_sqrt``, ``lr_outside`` from
    the preset's ``momentum_style``...): the preset's values, as the NumPy dialect passes
    them. ``names`` and ``torch_keys`` (the optimizer's group keys: ``centered``,
    ``amsgrad``, ``nesterov``) are what the torch arguments set."""
    table = presets.defaults(kind, preset)
    mapped = set(torch_keys)
    for name in names.values():
        mapped.update(name if isinstance(name, tuple) else (name,))
    options = {}
    for key in _keyword_arguments(rule.scalars):
        if key in table and key not in mapped:
            options[key] = table[key]
    if "lr_outside" in _keyword_arguments(rule.scalars) and "momentum_style" in table:
        options["lr_outside"] = table["momentum_style"] == "lr_outside"
    return options


def weight_decay_mode(kind: str, preset: str) -> str:
    """The preset's ``weight_decay_mode`` of ``kind`` (``"decoupled"`` or ``"l2"``)."""
    return presets.defaults(kind, preset)["weight_decay_mode"]


def step_counting(kind: str, preset: str) -> str:
    """``"global"`` or ``"per_parameter"``: the preset's convention (ASGD keeps each
    parameter's own eta, mu and count under every preset, as the NumPy dialect does)."""
    if kind == "ASGD":
        return "per_parameter"
    return presets.CONVENTIONS[preset]["step_counting"]


def _numpy_dtype(dtype: torch.dtype):
    real = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
    if real == torch.float64:
        return np.dtype(np.float64)
    if real == torch.float16:
        return np.dtype(np.float16)
    if real == torch.bfloat16:
        try:
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        except ImportError:  # pragma: no cover - ml_dtypes comes with jax
            return np.dtype(np.float32)
    return np.dtype(np.float32)


def power_dtype(preset: str, param_groups) -> np.dtype | None:
    """The dtype the bias-correction powers round beta to: the narrowest parameter dtype
    under Keras's ``power_precision="dtype"``, None (exact) otherwise."""
    if presets.CONVENTIONS[preset]["power_precision"] != "dtype":
        return None
    dtypes = [_numpy_dtype(p.dtype) for group in param_groups for p in group["params"]]
    if not dtypes:
        return None
    return min(dtypes, key=lambda d: d.itemsize)
