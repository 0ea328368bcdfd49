"""``optimlab.torch.Adafactor``: torch.optim.Adafactor's arguments, defaults, checks, state and
numerics, computed by optimlab's rule (:mod:`optimlab.rules.adafactor`).

The rule is tensor-level (means over whole axes), so neither the fused elementwise kernel nor
the torch-ops form of the elementwise rules can run it. It runs as it does in optimlab's own
dialect, in NumPy, on ``Tensor.numpy()`` views of the parameter, its gradient and its state
(their memory, no copies): CPU float32/float64 tensors of any strides. Others (another
device, float16/bfloat16, a DTensor shard, complex numbers, which torch refuses too) are
refused before anything moves, with a message that names the parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import rules
from . import _base
from ._checks import (
    ANY_TENSOR,
    LR,
    NO_TENSOR,
    WEIGHT_DECAY,
    as_float,
    bounded,
    flags,
    number,
    tensor_lr,
)
from ._presets import default as D

_NUMPY_DTYPES = (torch.float32, torch.float64)


def _torch_test(key: str, holds, words: str, what: str, index: int | None = None):
    """torch.optim.Adafactor's check of ``args[key]`` (``args[key][index]`` for ``eps``):
    ``holds(value)`` as torch evaluates it, ``words`` its message (``{value}`` filled in); a
    value torch's comparison fails on is a TypeError naming the argument (``what``: the valid
    values)."""
    name = key if index is None else f"{key}[{index}]"

    def check(args: dict) -> None:
        value = args[key]
        try:
            if index is not None:
                value = value[index]
            if index == 0 and value is None:  # eps[0] None: the dtype's machine epsilon
                return
            ok = bool(holds(value))
        except Exception:  # noqa: BLE001 - torch fails on it (not a number, not a pair)
            raise TypeError(f"{name} must be {what}, got {args[key]!r}") from None
        if not ok:
            raise ValueError(words.format(value=value))

    return check


def _non_positive(name: str, value: Any) -> float:
    """beta2_decay: a finite float <= 0."""
    x = number(name, value, "<= 0", NO_TENSOR)
    if not (np.isfinite(x) and x <= 0.0):
        raise ValueError(f"{name} must be a finite float <= 0, got {value!r}")
    return x


def _at_least_one(name: str, value: Any) -> float:
    """d, the clipping threshold: a finite float >= 1."""
    x = number(name, value, ">= 1", NO_TENSOR)
    if not (np.isfinite(x) and x >= 1.0):
        raise ValueError(f"{name} must be a finite float >= 1, got {value!r}")
    return x


def _eps_pair(name: str, value: Any) -> tuple[float | None, float]:
    """eps: (epsilon1 None or a finite float >= 0, epsilon2 a finite float >= 0)."""
    words = "a pair (epsilon1 None or a float >= 0, epsilon2 a float >= 0)"
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be {words}, got {value!r}")
    out = []
    for index, x in enumerate(value):
        if index == 0 and x is None:
            out.append(None)
            continue
        y = number(f"{name}[{index}]", x, ">= 0", NO_TENSOR)
        if not (np.isfinite(y) and y >= 0.0):
            raise ValueError(f"{name}[{index}] must be a finite float >= 0, got {x!r}")
        out.append(y)
    return out[0], out[1]


def numpy_problem(index: int, p: torch.Tensor) -> str | None:
    """Why NumPy cannot update parameter ``index`` in place (None if it can)."""
    if getattr(p, "placements", None) is not None:
        return (
            f"parameter {index} is a DTensor: Adafactor's row and column means need the whole "
            "tensor, not a shard; nothing was changed"
        )
    if p.device.type != "cpu" or p.dtype not in _NUMPY_DTYPES or p.layout != torch.strided:
        return (
            f"optimlab.torch.Adafactor updates CPU float32/float64 tensors (its rule runs in "
            f"NumPy); parameter {index} is a {p.dtype} tensor on {p.device} ({p.layout}); "
            "nothing was changed"
        )
    if p.is_neg() or p.is_conj():
        return f"parameter {index} is a lazily negated view NumPy cannot read; nothing was changed"
    return None


class Adafactor(_base.Optimizer):
    """Adafactor, as ``torch.optim.Adafactor`` (Shazeer & Stern 2018, with torch's choices)::

        rho = min(lr, 1 / sqrt(t));   alpha = max(eps2, RMS(p)) * rho
        p = p * (1 - lr * weight_decay)                       (decoupled, after alpha)
        beta2 = 1 - t^beta2_decay
        matrices (the last two axes): R = beta2 R + (1 - beta2) mean_cols(g^2), likewise C,
            V = R C / max(mean(R), eps1)
        vectors, scalars: V = v = beta2 v + (1 - beta2) g^2
        U = g / max(sqrt(V), eps1);   p = p - alpha * U / max(1, RMS(U) / d)

    ``eps1`` None is the machine epsilon of the dtype of the group's first parameter with a
    gradient (as torch: its loop sets it once). State: ``step``, then ``row_var`` (the shape
    with its last axis 1) and ``col_var`` (its second last 1) for a tensor of two or more
    dimensions, ``variance`` for the others. The rule is optimlab's
    (:mod:`optimlab.rules.adafactor`, ``preset="torch"``), run in NumPy on the tensors'
    memory: CPU float32/float64 parameters only; ``engine`` is ``"auto"``. ``foreach`` is
    accepted and stored.

    ``preset="keras"``: keras.optimizers.Adafactor's numbers (lr 1e-3, eps (1e-30, 1e-3)
    added to g^2, float32 means, the decay before RMS(p), the optimizer's step count);
    ``"optax"``: optax.adafactor's (lr 1, no relative step, its two largest axes factored
    when both have >= 128 entries, kept in torch's layout: ``row_var`` with the column axis 1,
    ``col_var`` with the row axis 1; the decay added after the learning rate), as
    ``optimlab.Adafactor(preset=...)`` computes them.
    """

    rule = rules.adafactor
    preset_names = dict(
        lr="learning_rate",
        beta2_decay="beta_2_decay",
        eps=("epsilon_1", "epsilon_2"),
        d="clip_threshold",
        weight_decay="weight_decay",
    )
    slot_keys = ("row_var", "col_var", "variance")
    weight_decay_mode = "decoupled"
    engines = ("auto",)
    torch_checks = (
        tensor_lr,
        _torch_test(
            "lr", lambda x: 0.0 <= x, "Learning rate should be >= 0 but is: {value}", "a float >= 0"
        ),
        _torch_test(
            "beta2_decay",
            lambda x: 0.0 >= x,
            "beta2_decay should be <= 0 but is: {value}",
            "a float <= 0",
        ),
        _torch_test(
            "eps", lambda x: 0.0 <= x, "epsilon1 should be >= 0 but is: {value}", "a pair", 0
        ),
        _torch_test(
            "eps", lambda x: 0.0 <= x, "epsilon2 should be >= 0 but is: {value}", "a pair", 1
        ),
        _torch_test(
            "d",
            lambda x: 1.0 <= x,
            "Clipping threshold d should be >= 1 but is: {value}",
            "a float >= 1",
        ),
        _torch_test(
            "weight_decay",
            lambda x: 0.0 <= x,
            "weight_decay should be >= 0 but is: {value}",
            "a float >= 0",
        ),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "beta2_decay": _non_positive,
        "eps": _eps_pair,
        "d": _at_least_one,
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags("maximize", optional=("foreach",)),
    }
    legacy_defaults = dict(foreach=None)

    def __init__(
        self,
        params,
        lr=D(1e-2),
        beta2_decay=D(-0.8),
        eps=D((None, 1e-3)),
        d=D(1.0),
        weight_decay=D(0.0),
        *,
        foreach=None,
        maximize=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
    ):
        defaults = dict(
            lr=lr,
            beta2_decay=beta2_decay,
            eps=eps,
            d=d,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
        )
        super().__init__(params, defaults, engine, nan_policy, preset)

    # -- state -----------------------------------------------------------------------------

    @property
    def _factoring(self) -> dict:
        """Which axes of a parameter are factored: the last two (torch, Keras), or optax's two
        largest, when the shorter of them has at least 128 entries."""
        if self.__dict__.get("preset", "torch") == "optax":
            return dict(factored=True, factored_dims="two_largest", min_dim_size_to_factor=128)
        return dict(factored=True, factored_dims="last_two", min_dim_size_to_factor=0)

    def _axes(self, p: torch.Tensor):
        return rules.adafactor.factored_axes(tuple(p.shape), **self._factoring)

    def slot_shape(self, key: str, p: torch.Tensor) -> tuple[int, ...] | None:
        """torch's shapes: ``row_var`` the parameter's with the last axis 1, ``col_var`` with
        the second last 1 (two or more dimensions), ``variance`` the parameter's (fewer). (Under
        ``preset="optax"`` the factored axes are optax's, the same layout: ``row_var`` with
        the column axis 1, ``col_var`` with the row axis 1; ``variance`` for the others.)"""
        axes = self._axes(p)
        if axes is None:
            return tuple(p.shape) if key == "variance" else None
        r, c = axes
        if key == "row_var":
            return tuple(1 if k == c else n for k, n in enumerate(p.shape))
        if key == "col_var":
            return tuple(1 if k == r else n for k, n in enumerate(p.shape))
        return None

    def _keys_of(self, p: torch.Tensor) -> tuple[str, ...]:
        return ("row_var", "col_var") if self._axes(p) is not None else ("variance",)

    def _init_state(self, p, state, group):
        """torch's initial state, in its order: ``step``, then the factors or the variance."""
        if "step" not in state:
            state["step"] = self._scalar_tensor(0.0, p, group)
        for key in self._keys_of(p):
            if key not in state:
                state[key] = p.new_zeros(self.slot_shape(key, p))

    # -- the step --------------------------------------------------------------------------

    def _check_gradient(self, index, p, g, group, fused_only):
        """torch's refusals, in its order and words: a complex parameter, a sparse gradient,
        a state without ``step`` (KeyError), a state without the buffers of the gradient's
        number of dimensions (torch picks the branch by the gradient's: AssertionError); then
        the gradient against its parameter, and what NumPy cannot update."""
        if torch.is_complex(p):
            raise RuntimeError("Adafactor does not support complex parameters")
        if g.is_sparse:
            raise RuntimeError("Adafactor does not support sparse gradients")
        state = self.state.get(p)
        if state:
            if "step" not in state:
                raise KeyError("step")
            needed = ("row_var", "col_var") if g.dim() > 1 else ("variance",)
            if self.preset == "optax":  # optax factors only its two largest, long axes
                needed = self._keys_of(p)
            if not all(key in state for key in needed):
                raise AssertionError(
                    "row_var and col_var should be defined when grad is multidimensional"
                    if g.dim() > 1
                    else "variance should be defined when grad is a vector"
                )
        super()._check_gradient(index, p, g, group, False)
        problem = numpy_problem(index, p) or numpy_problem(index, g)
        if problem:
            raise TypeError(problem)

    def rule_arguments(self, group: dict) -> dict:
        """``rule.scalars``'s arguments: torch's preset, with the group's values."""
        eps1, eps2 = group["eps"]
        return dict(
            beta_2_decay=as_float("beta2_decay", group["beta2_decay"]),
            epsilon_1=None if eps1 is None else as_float("eps[0]", eps1),
            epsilon_2=as_float("eps[1]", eps2),
            clip_threshold=as_float("d", group["d"]),
            relative_step=True,
            multiply_by_parameter_scale=True,
            epsilon_1_style="clamp",
            factored=True,
            factored_dims="last_two",
            min_dim_size_to_factor=0,
            beta_2_dtype=None,
            mean_dtype=None,
            nan_in_max="ignore",
            momentum=None,
            momentum_dtype=None,
            weight_decay_style="after_rms",
        )

    def _step_group(self, group: dict, plan: tuple, grad_scale, skip: bool) -> None:
        """Update the (checked) parameters of one group: the rule on NumPy views of each
        parameter, its gradient and its state."""
        _, _, entries = plan
        lr = self._group_lr(group, False)
        wd = as_float("weight_decay", group["weight_decay"])
        maximize = bool(group["maximize"])
        arguments = self._arguments(group)
        shared = self.__dict__.get("_step_global") if self.preset != "torch" else None
        if arguments["epsilon_1"] is None and entries:  # torch sets it from the first one
            arguments["epsilon_1"] = float(torch.finfo(entries[0][0].dtype).eps)
        for p, g, _, _ in entries:
            state = self.state[p]
            if not state:
                self._init_state(p, state, group)
            if shared is not None:  # the optimizer's count (Keras's global step counting)
                t = shared[0]
                state["step"].fill_(t)
            else:
                t = self._advance(state, False)
            scalars = self.rule.scalars(t, lr, **arguments)
            self._update(p, g, state, scalars, maximize, wd or None)

    def _update(self, p, g, state, scalars, maximize: bool, decay: float | None) -> None:
        """One parameter: the rule's update on NumPy views, written back in place."""
        param = p.detach().numpy()
        grad = g.detach().numpy()
        if maximize:
            grad = -grad
        buffers = [state.get(key) for key in self.slot_keys]
        views = [None if b is None else b.numpy() for b in buffers]
        shapes = [
            rules.adafactor.slot_shape(name, param.shape, **self._factoring)
            for name, _ in self.rule.SLOTS[:3]
        ]
        slots = [
            None if view is None else view.reshape(shape)
            for view, shape in zip(views, shapes, strict=True)
        ]
        with np.errstate(all="ignore"):  # a NaN or Inf gradient propagates, as in torch
            new = self.rule.update(param, grad, *slots, None, *scalars, decay)
        param[...] = new[0]
        for view, value in zip(views, new[1:4], strict=True):
            if view is not None:
                view[...] = value.reshape(view.shape)
