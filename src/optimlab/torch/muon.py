"""``optimlab.torch.Muon``: torch.optim.Muon's arguments, defaults, checks, state and numerics,
with optimlab's Muon rule run on torch tensors.

The rule is :mod:`optimlab.rules.muon` with its torch preset (an EMA momentum kept with
``lerp``, the Newton-Schulz iteration of :mod:`optimlab.rules.newton_schulz` in bfloat16 with
the norm clamped at ``eps``, the shape factor sqrt(max(1, rows / cols)) or
0.2 sqrt(max(rows, cols))). ``rules.muon.scalars`` gives the step's numbers and
``rules.muon.shape_factor`` the factor, as in optimlab's own dialect; what runs them here is
the rule's torch engine: :func:`orthogonalize` is ``rules.newton_schulz.orthogonalize``
written in torch operations, the same equation term for term, so that on a tensor of any
device the iteration runs in torch's own bfloat16 kernels (its gemm, its rounding, its speed)
and gives torch.optim.Muon's numbers to the bit. (``rules.newton_schulz`` reproduces those
kernels in NumPy for optimlab's own ``preset="torch"``, where ties may round apart.)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import rules
from ..engines import ENGINES
from . import _base
from ._checks import (
    ANY_TENSOR,
    EPS,
    LR,
    NO_TENSOR,
    WEIGHT_DECAY,
    as_float,
    bounded,
    flag,
    number,
    tensor_lr,
)
from ._presets import default as D
from .adafactor import _torch_test, numpy_problem

#: torch.optim.Muon's default Newton-Schulz coefficients (Keller Jordan's quintic)
COEFFICIENTS = rules.newton_schulz.COEFFICIENTS
#: torch's ``adjust_lr_fn`` -> the rule's ``shape_scaling`` (None is "original")
SHAPE_SCALING = {None: "rows_over_cols", "original": "rows_over_cols", "match_rms_adamw": "rms"}


def orthogonalize(g, a, b, c, steps, epsilon, epsilon_style="add", dtype=None, norm_dtype=None):
    """The Newton-Schulz iterate of the 2-D tensor ``g`` in torch operations: the torch engine
    of :func:`optimlab.rules.newton_schulz.orthogonalize`, the same arguments and equation::

        X = G / ||G||_F   (max(||G||, eps) for epsilon_style "clamp", ||G|| + eps for "add")
        repeat ``steps`` times:  A = X X^T;  B = b A + c A A;  X = a X + B X

    on the wide orientation of G (a tall G is transposed before and after). ``dtype``
    ``"bfloat16"``: in bfloat16, as torch.optim.Muon (``torch.addmm(A, A, A, beta=b,
    alpha=c)`` and ``torch.addmm(X, B, X, beta=a)``, torch's own op sequence, so torch's
    kernels give torch's bits); None: in g's dtype. ``norm_dtype`` ``"float32"``: the norm
    rounded to float32 (Keras's). ``g`` itself is never written: the iterate starts from a
    copy (torch 2.13's ``grad.bfloat16()`` is ``grad`` itself for a bfloat16 tensor, which
    its in-place division then normalises: pytorch/pytorch#194664)."""
    x = g.to(dtype=torch.bfloat16 if dtype == "bfloat16" else g.dtype, copy=True)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    norm = x.double().norm().float().to(x.dtype) if norm_dtype == "float32" else x.norm()
    x.div_(norm.clamp(min=epsilon) if epsilon_style == "clamp" else norm + epsilon)
    for _ in range(steps):
        gram = x @ x.T
        update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, update, x, beta=a)
    return x.T if tall else x


def _coefficients(name: str, value: Any) -> tuple[float, float, float]:
    """ns_coefficients: three finite floats (a, b, c)."""
    words = "a tuple of three finite floats (a, b, c)"
    if not isinstance(value, tuple | list) or len(value) != 3:
        raise ValueError(f"{name} must be {words}, got {value!r}")
    out = []
    for index, x in enumerate(value):
        y = number(f"{name}[{index}]", x, "(any finite value)", NO_TENSOR)
        if not math.isfinite(y):
            raise ValueError(f"{name}[{index}] must be a finite float, got {x!r}")
        out.append(y)
    return out[0], out[1], out[2]


def _ns_steps(name: str, value: Any) -> int:
    """ns_steps: an integer in [0, 99] (torch refuses 100 and more, at the step)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer in [0, 99], got {value!r}")
    if not 0 <= value <= 99:
        raise ValueError(
            f"{name} must be an integer in [0, 99] (torch: fewer than 100 steps), got {value!r}"
        )
    return value


def _momentum(name: str, value: Any) -> float:
    """momentum: a float in [0, 1) (torch asks >= 0; at 1 or more the EMA never forgets, or
    diverges)."""
    x = number(name, value, "in [0, 1)", NO_TENSOR)
    if not (math.isfinite(x) and 0.0 <= x < 1.0):
        raise ValueError(f"{name} must be a finite float in [0, 1), got {value!r}")
    return x


def _adjust_lr_fn(name: str, value: Any) -> str | None:
    """adjust_lr_fn: None, "original" or "match_rms_adamw"."""
    if value is None or (isinstance(value, str) and value in SHAPE_SCALING):
        return value
    raise ValueError(
        f"{name} must be None, 'original' or 'match_rms_adamw', got {value!r} (torch: "
        f"Adjust learning rate function {value} is not supported)"
    )


def _torch_adjust_lr_fn(args: dict) -> None:
    """torch's check of adjust_lr_fn, with its words."""
    value = args["adjust_lr_fn"]
    if value is not None and value not in ["original", "match_rms_adamw"]:
        raise ValueError(f"Adjust learning rate function {value} is not supported")


def _not_a_matrix(p) -> str:
    """torch's words for a parameter Muon does not take."""
    return f"Muon only supports 2D parameters whereas we found a parameter with size: {p.size()}"


class Muon(_base.Optimizer):
    """Muon, as ``torch.optim.Muon`` (Jordan et al. 2024; Liu et al. 2025)::

        B = lerp(B, g, 1 - momentum)                    (B = momentum B + (1 - momentum) g)
        U = lerp(g, B, momentum) if nesterov else B
        O = NewtonSchulz(U)                             (in bfloat16, see orthogonalize)
        p = p (1 - lr weight_decay)
        p = p - lr s O,   s = sqrt(max(1, rows / cols))       adjust_lr_fn None, "original"
                          s = 0.2 sqrt(max(rows, cols))       "match_rms_adamw"

    torch's arguments, defaults (lr 1e-3, weight_decay 0.1, momentum 0.95, nesterov True, the
    quintic coefficients, eps 1e-7, ns_steps 5), checks and messages; only 2-D parameters
    (torch's ValueError, at construction and, here, at ``add_param_group`` too: torch meets
    such a parameter in the middle of its step). State: ``momentum_buffer`` (no step count).
    The rule is :mod:`optimlab.rules.muon` (``preset="torch"``), run in torch operations on
    any device and float dtype (:mod:`optimlab.torch.muon`): the bits of torch.optim.Muon.
    Beyond torch, refused before anything moves: ns_steps outside [0, 99] and coefficients
    that are not three finite numbers (torch refuses them in the middle of its step),
    momentum outside [0, 1), non-finite values. ``engine`` is ``"auto"`` (the one engine).

    ``preset="keras"`` or ``"optax"``: ``optimlab.Muon(preset=...)``'s rule (Keras's summed
    momentum, rms shape factor 0.2 sqrt(max(rows, cols)), weight decay 0.004; optax's
    bias-corrected Nesterov EMA, sqrt(max(1, cols / rows)), no decay), its NumPy code on the
    memory of CPU float32/float64 matrices (others refused), with a ``step`` in the state (the
    optimizer's count); ``eps`` is the Newton-Schulz epsilon (optax: None, its Adam
    epsilon); ``adjust_lr_fn`` left None takes the preset's shape factor.
    """

    rule = rules.muon
    preset_names = dict(
        lr="learning_rate",
        weight_decay="weight_decay",
        momentum="momentum",
        ns_coefficients=("muon_a", "muon_b", "muon_c"),
        eps="ns_epsilon",
        ns_steps="ns_steps",
    )
    slot_keys = ("momentum_buffer",)
    weight_decay_mode = "decoupled"
    engines = ("auto",)
    #: only matrices (torch refuses the others)
    matrices_only = True
    torch_checks = (
        tensor_lr,
        _torch_test(
            "lr", lambda x: 0.0 <= x, "Learning rate should be >= 0 but is: {value}", "a float >= 0"
        ),
        _torch_test(
            "momentum",
            lambda x: 0.0 <= x,
            "momentum should be >= 0 but is: {value}",
            "a float >= 0",
        ),
        _torch_test(
            "weight_decay",
            lambda x: 0.0 <= x,
            "weight decay should be >= 0 but is: {value}",
            "a float >= 0",
        ),
        _torch_adjust_lr_fn,
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "weight_decay": bounded(WEIGHT_DECAY),
        "momentum": _momentum,
        "nesterov": flag,
        "ns_coefficients": _coefficients,
        "eps": bounded(EPS),
        "ns_steps": _ns_steps,
        "adjust_lr_fn": _adjust_lr_fn,
    }

    def __init__(
        self,
        params,
        lr=D(1e-3),
        weight_decay=D(0.1),
        momentum=D(0.95),
        nesterov=True,
        ns_coefficients=D(COEFFICIENTS),
        eps=D(1e-7),
        ns_steps=D(5),
        adjust_lr_fn=None,
        *,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
    ):
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        super().__init__(params, defaults, engine, nan_policy, preset)

    @property
    def counts_steps(self) -> bool:
        """torch.optim.Muon keeps no step count; another preset's state has one (optax's
        bias-corrected momentum reads it; Keras's is the optimizer's count)."""
        return self.__dict__.get("preset", "torch") != "torch"

    def _checkable(self, group):
        # optax: eps None, Newton-Schulz with the Adam epsilon (its one eps for both)
        if self.preset != "torch" and group.get("eps", 0.0) is None:
            return {**group, "eps": 0.0}
        return group

    def _arguments(self, group: dict) -> dict:
        arguments = super()._arguments(group)
        if self.preset != "torch" and group.get("adjust_lr_fn") is not None:
            arguments["shape_scaling"] = SHAPE_SCALING[group["adjust_lr_fn"]]
        return arguments

    def _check_new_group(self, group: dict) -> None:
        """torch's refusal of a parameter that is not a matrix (its ValueError and words)."""
        for p in group["params"]:
            if p.ndim != 2:
                raise ValueError(_not_a_matrix(p))

    def _init_state(self, p, state, group):
        """torch's state: ``momentum_buffer``, zeros like the gradient (its strides); under
        another preset a ``step`` first."""
        if self.counts_steps and "step" not in state:
            state["step"] = self._scalar_tensor(0.0, p, group)
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)

    def _check_gradient(self, index, p, g, group, fused_only):
        """torch's refusals, in its order and words (a complex parameter, then a sparse
        gradient: RuntimeError), then the gradient against its parameter."""
        if torch.is_complex(p):
            raise RuntimeError("Muon does not support complex parameters")
        if g.is_sparse:
            raise RuntimeError("Muon does not support sparse gradients")
        if p.ndim != 2:  # (a parameter reshaped in place since it was added)
            raise ValueError(f"parameter {index}: {_not_a_matrix(p)}; nothing was changed")
        super()._check_gradient(index, p, g, group, False)
        if self.preset != "torch":  # the NumPy dialect's rule, on the tensors' memory
            problem = numpy_problem(index, p) or numpy_problem(index, g)
            if problem:
                raise TypeError(f"{problem} (preset={self.preset!r})")

    def _gradient_error(self, p, g) -> type:
        """torch.optim.Muon meets a gradient that is not a matrix in its ``Param gradient must
        be a 2D matrix`` (ValueError), another mismatch in ``lerp_`` (RuntimeError)."""
        return ValueError if g.dim() != 2 else RuntimeError

    def rule_arguments(self, group: dict) -> dict:
        """``rules.muon.scalars``'s arguments: torch's preset with the group's values."""
        a, b, c = group["ns_coefficients"]
        return dict(
            momentum=as_float("momentum", group["momentum"]),
            nesterov=bool(group["nesterov"]),
            momentum_style="ema",
            muon_a=a,
            muon_b=b,
            muon_c=c,
            ns_steps=group["ns_steps"],
            ns_epsilon=group["eps"],
            ns_epsilon_style="clamp",
            ns_dtype="bfloat16",
            ns_norm_dtype=None,
            shape_scaling=SHAPE_SCALING[group["adjust_lr_fn"]],
            rms_rate=0.2,
            non_matrix="raise",
            adam_beta_1=0.9,
            adam_beta_2=0.999,
            epsilon=1e-8,
            adam_lr_ratio=1.0,
        )

    def _step_group(self, group: dict, plan: tuple, grad_scale, skip: bool) -> None:
        """Update the (checked) parameters of one group in torch.optim.Muon's operations and
        order. A tensor ``lr`` stays a tensor, as in torch (its decay factor and step are
        then computed in the lr's dtype)."""
        if self.preset != "torch":
            self._step_dialect(group, plan)
            return
        _, _, entries = plan
        lr = group["lr"]
        if isinstance(lr, torch.Tensor) and lr.dim() != 0:
            lr = lr.squeeze()
        wd = group["weight_decay"]
        muon, ns, shape, *_ = self.rule.scalars(1.0, 1.0, **self.rule_arguments(group))
        momentum, nesterov = muon[1], muon[3]
        for p, g, _, _ in entries:
            state = self.state[p]
            if not state:
                self._init_state(p, state, group)
            buf = state["momentum_buffer"]
            buf.lerp_(g, 1 - momentum)
            u = g.lerp(buf, momentum) if nesterov else buf
            o = orthogonalize(u, *ns)
            step = lr * self.rule.shape_factor(tuple(p.shape), *shape)
            p.mul_(1 - lr * wd)
            p.add_(o, alpha=-step)

    def _step_dialect(self, group: dict, plan: tuple) -> None:
        """A Keras or optax preset: ``optimlab.Muon(preset=...)``'s update on NumPy views of
        the (CPU float32/float64) parameter, its gradient and its momentum, with the
        optimizer's step count: Keras's decoupled decay ``p = p - p * (lr * wd)``, then the
        rule on the reference engine (the dialect's own path)."""
        _, _, entries = plan
        lr = self._group_lr(group, False)
        wd = as_float("weight_decay", group["weight_decay"]) or None
        arguments = self._arguments(group)
        t = self.__dict__["_step_global"][0]
        scalars = self.rule.scalars(t, lr, **arguments)
        for p, g, _, _ in entries:
            state = self.state[p]
            if not state:
                self._init_state(p, state, group)
            state["step"].fill_(t)
            param = p.detach().numpy()
            if wd is not None:
                param -= param * param.dtype.type(wd * lr)
            grad = g.detach().numpy()
            ENGINES["reference"].apply(
                self.rule, param, grad, [state["momentum_buffer"].numpy(), None], scalars
            )
