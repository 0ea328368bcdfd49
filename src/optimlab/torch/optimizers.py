"""The PyTorch drop-ins: torch.optim's names, arguments, defaults, state and numerics.

Each class takes exactly the arguments of its torch.optim namesake (torch 2.13) in the same
order, keeps the same ``param_groups`` keys and the same per-parameter state keys, and computes
the same update (see ``tests/torch``, which drives them with torch's own optimizer database,
``optim_db``). ``foreach`` is accepted and stored; ``fused`` is stored and brings torch's
checks and GradScaler protocol; ``capturable`` keeps torch's state layout and its device check
(on the CPU a step raises torch's AssertionError, as torch does); ``differentiable=True`` lets
autograd record the step (see :class:`optimlab.torch.Optimizer`). The engine is chosen per
tensor (see :mod:`optimlab.torch._base`). Three keyword-only arguments are optimlab's own:
``engine``, ``nan_policy`` (``"propagate"`` by default, torch's behaviour; ``"raise"`` or
``"skip"`` check every gradient before anything changes) and ``preset`` (``"torch"`` by
default; ``"keras"`` or ``"optax"``: torch's argument names with that library's defaults and
formulas, as ``optimlab.<Class>(preset=...)`` computes them, on both engines; see
:mod:`optimlab.torch._presets`).

Arguments are checked as torch checks them, in its order and with its messages
(``Invalid learning rate: -1``), before ``params`` is read; then optimlab refuses what torch
lets through (a non-number or a boolean where a number is meant, an infinity, a flag that is
not a bool) with a message naming the argument, the value and the range (see
:mod:`optimlab.torch._checks`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import rules
from . import _base, _checks
from ._checks import (
    ALPHA,
    ANY_TENSOR,
    BETA,
    EPS,
    INITIAL_ACCUMULATOR,
    LR,
    LR_DECAY,
    MOMENTUM,
    MOMENTUM_DECAY,
    RHO,
    SCALAR_TENSOR,
    SGD_LR,
    SGD_MOMENTUM,
    SGD_WEIGHT_DECAY,
    WEIGHT_DECAY,
    betas_pair,
    bounded,
    finite,
    flags,
    in_bound,
    pair,
    tensor_lr,
)
from ._presets import default as D
from .adafactor import Adafactor
from .muon import Muon


class SGD(_base.Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``::

        g = g + weight_decay * p                     (L2; -g first with maximize)
        b = g (first step);  b = momentum * b + (1 - dampening) * g
        p = p - lr * b            or, nesterov:  p = p - lr * (g + momentum * b)

    The buffer holds no learning rate (PyTorch's convention; Keras's ``v = momentum * v - lr *
    g`` is ``-lr * b`` for a constant lr). State: ``momentum_buffer`` when momentum != 0.

    Sparse gradients, as in torch: without momentum only the entries they name move; with
    momentum the update is that of the dense gradient (the buffer decays everywhere; torch keeps
    it as a sparse tensor, optimlab as a dense one: the same numbers). With weight_decay torch
    refuses them, and so does optimlab, before anything moves.
    """

    rule = rules.sgd
    preset_names = dict(
        lr="learning_rate", momentum="momentum", dampening="dampening", weight_decay="weight_decay"
    )
    slot_keys = ("momentum_buffer",)
    sparse_slots = ("momentum_buffer",)
    counts_steps = False
    torch_checks = (
        tensor_lr,
        in_bound("lr", SGD_LR),
        in_bound("momentum", SGD_MOMENTUM),
        in_bound("weight_decay", SGD_WEIGHT_DECAY),
        _checks.sgd_nesterov,
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "momentum": bounded(MOMENTUM),
        "dampening": finite,
        "weight_decay": bounded(WEIGHT_DECAY, SCALAR_TENSOR),
        **flags("nesterov", "maximize", "differentiable", optional=("foreach", "fused")),
    }
    legacy_defaults = dict(
        nesterov=False, maximize=False, foreach=None, differentiable=False, fused=False
    )

    def __init__(
        self,
        params,
        lr=D(1e-3),
        momentum=D(0),
        dampening=D(0),
        weight_decay=D(0),
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def _check_group(self, group, index=None):
        super()._check_group(group, index)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            where = "" if index is None else f"param group {index}: "
            raise ValueError(
                f"{where}nesterov=True requires momentum > 0 and dampening = 0, got momentum="
                f"{group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def slot_enabled(self, key, group):
        return group["momentum"] != 0

    def _sparse_problem(self, p, group):
        if group.get("fused"):
            return "`_fused_sgd` does not support sparse gradients"
        if _checks.as_float("weight_decay", group["weight_decay"]) != 0:
            # torch.optim.SGD fails on ``grad.add(param, alpha=weight_decay)``
            return (
                "add(sparse, dense) is not supported. Use add(dense, sparse) instead. "
                f"(SGD: weight_decay={group['weight_decay']!r} cannot be applied to a sparse "
                "gradient, as in torch.optim.SGD)"
            )
        return None

    def _densify_sparse(self, group):
        return group["momentum"] != 0

    def _advance(self, state, fresh):
        # torch's SGD keeps no step count: its first step is the one that creates the buffer
        return 1.0 if fresh else 2.0

    def rule_arguments(self, group):
        return dict(
            momentum=float(group["momentum"]),
            nesterov=bool(group["nesterov"]),
            dampening=float(group["dampening"]),
            lr_outside=True,
        )


class Adagrad(_base.Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``::

        G = G + g^2;   p = p - lr_t * g / (sqrt(G) + eps),   lr_t = lr / (1 + (t - 1) * lr_decay)

    epsilon outside the root, G starting at ``initial_accumulator_value`` (0; v + vj for a
    complex parameter, as torch: its real and imaginary parts each start at v; as in torch,
    the optimizer's value, a parameter group's own is not read). State:
    ``step``, ``sum`` (created at construction, as torch does). Sparse gradients
    (``nn.Embedding(..., sparse=True)``: the lecture's sparse features) update only the rows
    they touch, as in torch, and refuse ``weight_decay`` and ``fused``; a sparse gradient of a
    complex parameter is refused (torch's sparse path squares the complex values as complex
    numbers, its dense path their real and imaginary parts: the two disagree).
    """

    rule = rules.adagrad
    preset_names = dict(
        lr="learning_rate",
        lr_decay="lr_decay",
        weight_decay="weight_decay",
        initial_accumulator_value="initial_accumulator_value",
        eps="epsilon",
    )
    slot_keys = ("sum",)
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("lr_decay", LR_DECAY),
        in_bound("weight_decay", WEIGHT_DECAY),
        in_bound("initial_accumulator_value", INITIAL_ACCUMULATOR),
        in_bound("eps", EPS),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "lr_decay": bounded(LR_DECAY),
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        "initial_accumulator_value": bounded(INITIAL_ACCUMULATOR),
        **flags("maximize", "differentiable", optional=("foreach", "fused")),
    }
    legacy_defaults = dict(foreach=None, maximize=False, differentiable=False, fused=None)

    def __init__(
        self,
        params,
        lr=D(1e-2),
        lr_decay=D(0),
        weight_decay=D(0),
        initial_accumulator_value=D(0),
        eps=D(1e-10),
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        fused=None,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], group)

    def slot_initial_value(self, key, group, p):
        # torch reads the optimizer's value, not the group's (a group's own
        # initial_accumulator_value is stored but never used): the same sums, the same steps
        value = _checks.as_float(
            "initial_accumulator_value", self.defaults["initial_accumulator_value"]
        )
        return complex(value, value) if p.is_complex() else value

    def _sparse_problem(self, p, group):
        if group.get("fused"):
            return "`fused` does not support sparse grad or complex param"
        if _checks.as_float("weight_decay", group["weight_decay"]) != 0:
            return "weight_decay option is not compatible with sparse gradients"
        if p.is_complex():
            return (
                "Adagrad: sparse gradients of complex parameters are not supported by "
                "optimlab.torch (torch.optim's sparse path disagrees with its dense one there)"
            )
        return None

    def rule_arguments(self, group):
        return dict(
            epsilon=float(group["eps"]), lr_decay=float(group["lr_decay"]), epsilon_in_sqrt=False
        )


class RMSprop(_base.Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``::

        v = alpha * v + (1 - alpha) * g^2
        d = sqrt(v) + eps     or, centered:  gbar = alpha * gbar + (1 - alpha) * g,
                                              d = sqrt(v - gbar^2) + eps
        p = p - lr * g / d    or, with momentum:  b = momentum * b + g / d;  p = p - lr * b

    State: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg``
    (centered).
    """

    rule = rules.rmsprop
    preset_names = dict(
        lr="learning_rate",
        alpha="rho",
        eps="epsilon",
        weight_decay="weight_decay",
        momentum="momentum",
    )
    slot_keys = ("square_avg", "grad_avg", "momentum_buffer")
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("eps", EPS),
        in_bound("momentum", MOMENTUM),
        in_bound("weight_decay", WEIGHT_DECAY),
        in_bound("alpha", ALPHA),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "alpha": bounded(ALPHA),
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        "momentum": bounded(MOMENTUM),
        **flags("centered", "maximize", "capturable", "differentiable", optional=("foreach",)),
    }
    legacy_defaults = dict(
        momentum=0,
        centered=False,
        foreach=None,
        maximize=False,
        differentiable=False,
        capturable=False,
    )
    capturable_xla = (True, True)

    def __init__(
        self,
        params,
        lr=D(1e-2),
        alpha=D(0.99),
        eps=D(1e-8),
        weight_decay=D(0),
        momentum=D(0),
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
        *,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    #: torch's order of the state keys (its state_dict lists them so)
    state_key_order = ("square_avg", "momentum_buffer", "grad_avg")

    def slot_enabled(self, key, group):
        if key == "grad_avg":
            return bool(group["centered"])
        if key == "momentum_buffer":
            return group["momentum"] > 0
        return True

    def rule_arguments(self, group):
        return dict(
            rho=float(group["alpha"]),
            momentum=float(group["momentum"]),
            centered=bool(group["centered"]),
            epsilon=float(group["eps"]),
            epsilon_in_sqrt=False,
            lr_outside=True,
        )


class Adam(_base.Optimizer):
    """Adam, as ``torch.optim.Adam`` (Kingma & Ba, Algorithm 1: epsilon outside the
    bias-corrected root)::

        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),   bc = 1 - beta^t

    AMSGrad uses the running maximum of the raw v. ``weight_decay`` is L2 (g = g + wd * p)
    unless ``decoupled_weight_decay=True`` (p = p - lr * wd * p: AdamW). State: ``step``,
    ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad); with ``state_dtype="int8"``
    each as uint8 codes plus ``<key>.scales``, with ``"bfloat16"`` as bfloat16 tensors
    (parameters of 4096 elements or more; see :mod:`optimlab.torch._narrow`).
    """

    rule = rules.adam
    preset_names = dict(
        lr="learning_rate",
        betas=("beta_1", "beta_2"),
        eps="epsilon",
        weight_decay="weight_decay",
        decoupled_weight_decay="weight_decay_mode",
    )
    slot_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    torch_checks = (
        _checks.adam_tensor_lr,
        in_bound("lr", LR),
        in_bound("eps", EPS),
        in_bound("betas", BETA, 0),
        in_bound("betas", BETA, 1),
        in_bound("weight_decay", WEIGHT_DECAY),
        _checks.adam_betas,
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": pair(SCALAR_TENSOR),
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags(
            "amsgrad",
            "maximize",
            "capturable",
            "differentiable",
            "decoupled_weight_decay",
            optional=("foreach", "fused"),
        ),
    }
    legacy_defaults = dict(
        amsgrad=False,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        decoupled_weight_decay=False,
        fused=None,
    )

    def __init__(
        self,
        params,
        lr=D(1e-3),
        betas=D((0.9, 0.999)),
        eps=D(1e-8),
        weight_decay=D(0),
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=D(False),
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def prepare_defaults(self, defaults):
        # torch keeps a tensor beta as a 0-d tensor
        defaults["betas"] = tuple(
            b.squeeze() if isinstance(b, torch.Tensor) and b.dim() != 0 else b
            for b in defaults["betas"]
        )

    def slot_enabled(self, key, group):
        return key != "max_exp_avg_sq" or bool(group["amsgrad"])

    def _sparse_problem(self, p, group):
        return "Adam does not support sparse gradients, please consider SparseAdam instead"

    def group_scalars(self, group):
        if group["differentiable"] or group["capturable"]:
            return _adam_scalars_on_step_tensor
        return self.rule.scalars

    def _refuse_group(self, group):
        if group["foreach"] and isinstance(group["lr"], torch.Tensor) and not group["capturable"]:
            raise RuntimeError(
                "lr as a Tensor is not supported for capturable=False and foreach=True"
            )

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        return dict(
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            epsilon=float(group["eps"]),
            amsgrad=bool(group["amsgrad"]),
            bias_correction=True,
            epsilon_style="paper",
            amsgrad_max="raw",
        )


def _adam_scalars_on_step_tensor(t, lr, *, beta_1, beta_2, epsilon, amsgrad, **_):
    """torch's Adam under ``differentiable`` or ``capturable``: the bias corrections computed
    on the step tensor, in its dtype (float32 unless the default dtype is float64), and the
    update written as ``p + m / (sqrt(v) / (sqrt(bc2) * -s) + eps / -s)``, s = lr / bc1
    (rounded, in float64, about 4e-9 apart from the exact form). As the rule's scalars:
    alpha = -1, root_scale = 1 / (sqrt(bc2) * -s), epsilon = eps / -s. A tensor ``lr`` (that
    may require grad) stays a tensor."""
    step = torch.tensor(t, dtype=_base.scalar_dtype())
    bc1 = 1 - beta_1**step
    bc2 = 1 - beta_2**step
    negative_step_size = (lr / bc1).neg()
    denominator_scale = bc2.sqrt() * negative_step_size
    eps = epsilon / negative_step_size  # in the step's dtype, as torch's
    if isinstance(lr, torch.Tensor) and lr.requires_grad:
        root_scale = 1 / denominator_scale.double()
    else:
        root_scale, eps = 1.0 / float(denominator_scale), float(eps)
    return (-1.0, beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2, root_scale, eps, amsgrad, False, bc2)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter), as ``torch.optim.AdamW``: Adam with decoupled weight
    decay ``p = p - lr * weight_decay * p`` before the Adam step, weight_decay 1e-2."""

    preset_kind = "AdamW"

    def __init__(
        self,
        params,
        lr=D(1e-3),
        betas=D((0.9, 0.999)),
        eps=D(1e-8),
        weight_decay=D(1e-2),
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            engine=engine,
            nan_policy=nan_policy,
            preset=preset,
            state_dtype=state_dtype,
            bf16_stochastic_round=bf16_stochastic_round,
            seed=seed,
        )

    def _restore_group(self, group):
        # torch's AdamW: a loaded group (an Adam state dict, an old AdamW one) decays decoupled
        group["decoupled_weight_decay"] = True


class NAdam(_base.Optimizer):
    """NAdam (Dozat 2016), as ``torch.optim.NAdam``::

        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)),  mu_product = prod of mu_1..mu_t
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
        p = p - lr * [(1 - mu_t) / (1 - mu_product) * g
                      + mu_{t+1} / (1 - mu_product * mu_{t+1}) * m] / (sqrt(v / bc2) + eps)

    ``mu_product`` is a scalar tensor of torch's default dtype in the state, multiplied in that
    dtype as torch does. State: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``.
    """

    rule = rules.nadam
    preset_kind = "Nadam"
    preset_names = dict(
        lr="learning_rate",
        betas=("beta_1", "beta_2"),
        eps="epsilon",
        weight_decay="weight_decay",
        momentum_decay="momentum_decay",
        decoupled_weight_decay="weight_decay_mode",
    )
    slot_keys = ("exp_avg", "exp_avg_sq")
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("eps", EPS),
        in_bound("betas", BETA, 0),
        in_bound("betas", BETA, 1),
        in_bound("weight_decay", WEIGHT_DECAY),
        in_bound("momentum_decay", MOMENTUM_DECAY),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": betas_pair,
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        "momentum_decay": bounded(MOMENTUM_DECAY),
        **flags(
            "maximize",
            "capturable",
            "differentiable",
            "decoupled_weight_decay",
            optional=("foreach",),
        ),
    }
    legacy_defaults = dict(
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        decoupled_weight_decay=False,
    )
    capturable_words = (
        "params, mu_products and state_steps",
        "params, mu_products, and state_steps",
    )

    def __init__(
        self,
        params,
        lr=D(2e-3),
        betas=D((0.9, 0.999)),
        eps=D(1e-8),
        weight_decay=D(0),
        momentum_decay=D(4e-3),
        decoupled_weight_decay=D(False),
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def _extra_state(self, p, state, group):
        if "mu_product" not in state:
            state["mu_product"] = self._scalar_tensor(1.0, p, group)

    def _tensor_scalars(self, p, state, group, index):
        super()._tensor_scalars(p, state, group, index)
        product = state.get("mu_product")
        if product is not None and not isinstance(product, torch.Tensor):
            value = _checks.state_number(index, "mu_product", product)
            state["mu_product"] = self._scalar_tensor(value, p, group)

    def _checkable(self, group):
        # optax's Nadam: momentum_decay None, a constant mu_t = beta_1 (its preset only)
        if self.preset == "optax" and group.get("momentum_decay", 0.0) is None:
            return {**group, "momentum_decay": 0.0}
        return group

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        decay = group["momentum_decay"]
        return dict(
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            epsilon=float(group["eps"]),
            momentum_decay=None if decay is None else float(decay),
        )

    def _global_values(self, leader):
        # one momentum product for the whole optimizer (global step counting): the one of a
        # parameter that made every step, read before any moves
        return 1.0 if leader is None else float(leader["mu_product"])

    def step_scalars(self, state, t, lr, arguments, p):
        product = state["mu_product"]
        if self.preset != "torch":  # the NumPy dialect's product, a Python float
            shared = self.__dict__.get("_step_global")
            before = float(product) if shared is None else shared[1]
            scalars, (new_product,) = self.rule.scalars(t, lr, (before,), **arguments)
            product.fill_(new_product)
            return scalars
        dtype = np.float64 if product.dtype == torch.float64 else np.float32
        scalars, (new_product,) = self.rule.scalars(
            t, lr, (float(product),), product_dtype=dtype, **arguments
        )
        product.fill_(new_product)
        return scalars


class Adamax(_base.Optimizer):
    """Adamax (Kingma & Ba, section 7.1), as ``torch.optim.Adamax``::

        m = beta1 * m + (1 - beta1) * g;   u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u

    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    rule = rules.adamax
    preset_names = dict(
        lr="learning_rate", betas=("beta_1", "beta_2"), eps="epsilon", weight_decay="weight_decay"
    )
    slot_keys = ("exp_avg", "exp_inf")
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("eps", EPS),
        in_bound("betas", BETA, 0),
        in_bound("betas", BETA, 1),
        in_bound("weight_decay", WEIGHT_DECAY),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": betas_pair,
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags("maximize", "capturable", "differentiable", optional=("foreach",)),
    }
    legacy_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)

    def __init__(
        self,
        params,
        lr=D(2e-3),
        betas=D((0.9, 0.999)),
        eps=D(1e-8),
        weight_decay=D(0),
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        capturable=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        return dict(
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            epsilon=float(group["eps"]),
            epsilon_in_max=True,
        )


class Adadelta(_base.Optimizer):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``::

        v = rho * v + (1 - rho) * g^2
        delta = sqrt(a + eps) / sqrt(v + eps) * g
        a = rho * a + (1 - rho) * delta^2;   p = p - lr * delta

    lr 1.0 (the paper has none). State: ``step``, ``square_avg``, ``acc_delta``.
    """

    rule = rules.adadelta
    preset_names = dict(lr="learning_rate", rho="rho", eps="epsilon", weight_decay="weight_decay")
    slot_keys = ("square_avg", "acc_delta")
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("rho", RHO),
        in_bound("eps", EPS),
        in_bound("weight_decay", WEIGHT_DECAY),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "rho": bounded(RHO),
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags("maximize", "capturable", "differentiable", optional=("foreach",)),
    }
    legacy_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    capturable_xla = (False, False)

    def __init__(
        self,
        params,
        lr=D(1.0),
        rho=D(0.9),
        eps=D(1e-6),
        weight_decay=D(0),
        foreach=None,
        *,
        capturable=False,
        maximize=False,
        differentiable=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def rule_arguments(self, group):
        return dict(rho=float(group["rho"]), epsilon=float(group["eps"]))


class Lion(_base.Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")::

        c = beta1 * m + (1 - beta1) * g;   p = p - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g

    with decoupled weight decay ``p = p - lr * weight_decay * p`` first. torch.optim has no
    Lion (pytorch#94904); the arguments, defaults (lr 1e-4, betas (0.9, 0.99)) and the state
    (``exp_avg`` only) are those of the authors' reference PyTorch implementation.
    """

    rule = rules.lion
    preset_names = dict(lr="learning_rate", betas=("beta_1", "beta_2"), weight_decay="weight_decay")
    slot_keys = ("exp_avg",)
    counts_steps = False
    weight_decay_mode = "decoupled"
    # no torch namesake: optimlab's own checks and messages (argument, value, range)
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": betas_pair,
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags("maximize"),
    }
    legacy_defaults = {"maximize": False}

    def __init__(
        self,
        params,
        lr=D(1e-4),
        betas=D((0.9, 0.99)),
        weight_decay=D(0.0),
        *,
        maximize=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def _advance(self, state, fresh):
        return 1.0  # Lion's update does not depend on the step

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        return dict(beta_1=float(beta_1), beta_2=float(beta_2))


class RAdam(_base.Optimizer):
    """RAdam (Liu et al. 2020), as ``torch.optim.RAdam``::

        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
        rho_inf = 2 / (1 - beta2) - 1;     rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p = p - lr * r * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)
        else:       p = p - lr / bc1 * m

    epsilon added to sqrt(v), as in the authors' implementation (torch's Adam adds it to
    sqrt(v / bc2) instead). ``weight_decay`` is L2 (g = g + wd * p) unless
    ``decoupled_weight_decay=True`` (p = p * (1 - lr * wd) first: RAdamW). State: ``step``,
    ``exp_avg``, ``exp_avg_sq``. See :mod:`optimlab.rules.radam`.
    """

    rule = rules.radam
    preset_names = dict(
        lr="learning_rate",
        betas=("beta_1", "beta_2"),
        eps="epsilon",
        weight_decay="weight_decay",
        decoupled_weight_decay="weight_decay_mode",
    )
    slot_keys = ("exp_avg", "exp_avg_sq")
    torch_checks = (
        tensor_lr,
        in_bound("lr", LR),
        in_bound("eps", EPS),
        in_bound("betas", BETA, 0),
        in_bound("betas", BETA, 1),
        in_bound("weight_decay", WEIGHT_DECAY),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": betas_pair,
        "eps": bounded(EPS),
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags(
            "maximize",
            "capturable",
            "decoupled_weight_decay",
            "differentiable",
            optional=("foreach",),
        ),
    }
    legacy_defaults = dict(
        foreach=None,
        maximize=False,
        differentiable=False,
        decoupled_weight_decay=False,
        capturable=False,
    )

    def __init__(
        self,
        params,
        lr=D(1e-3),
        betas=D((0.9, 0.999)),
        eps=D(1e-8),
        weight_decay=D(0),
        decoupled_weight_decay=D(False),
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        return dict(
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            epsilon=float(group["eps"]),
            epsilon_root=0.0,
            threshold=5.0,
            threshold_inclusive=False,
            nesterov=False,
            epsilon_style="hat",
        )


def _rprop_etas(args: dict) -> None:
    """torch's Rprop: ``0 < etaminus < 1 < etaplus``, with its words."""
    etas = args["etas"]
    if not isinstance(etas, tuple | list | torch.Tensor):
        raise TypeError(
            f"etas must be a pair (etaminus, etaplus), 0 < etaminus < 1 < etaplus, got {etas!r}"
        )
    try:
        refused = not 0.0 < etas[0] < 1.0 < etas[1]
    except Exception:  # noqa: BLE001 - torch's comparison fails on it: optimlab's words next
        return
    if refused:
        raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")


def _rprop_pair(name: str, value, what: str, valid) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair {what}, got {value!r}")
    words = f"{name} must be a pair {what}, got {value!r}"
    low = _checks.number(f"{name}[0]", value[0], "", _checks.NO_TENSOR)
    high = _checks.number(f"{name}[1]", value[1], "", _checks.NO_TENSOR)
    if not (math.isfinite(low) and math.isfinite(high) and valid(low, high)):
        raise ValueError(words)
    return low, high


def _etas_pair(name, value):
    """(etaminus, etaplus): finite floats, 0 < etaminus < 1 < etaplus."""
    return _rprop_pair(
        name,
        value,
        "(etaminus, etaplus) with 0 < etaminus < 1 < etaplus",
        lambda a, b: 0 < a < 1 < b,
    )


def _step_sizes_pair(name, value):
    """(min, max): finite floats, 0 < min <= max (torch checks nothing; a minimum of 0 would let
    a step size shrink to 0, where it could never grow again)."""
    return _rprop_pair(
        name, value, "(min_step, max_step) with 0 < min_step <= max_step", lambda a, b: 0 < a <= b
    )


class Rprop(_base.Optimizer):
    """Rprop (Riedmiller & Braun 1993, resilient backpropagation), as ``torch.optim.Rprop``::

        s = g * prev;   step = step * etaplus where s > 0, * etaminus where s < 0
        step = clamp(step, step_sizes[0], step_sizes[1]);   g = 0 where s < 0
        p = p - sign(g) * step;   prev = g

    The step sizes start at ``lr`` at a parameter's first step (torch creates its state then;
    here the rule starts a step size of 0 at lr, within the step, so that under
    ``differentiable=True`` the gradient reaches a tensor ``lr``, which torch detaches); later
    values of ``lr`` (a scheduler's) change nothing, as in torch. No weight decay (torch's
    Rprop has none). State: ``step``, ``prev``, ``step_size`` (a complex parameter: lr + lr*j,
    its real and imaginary parts each a coordinate). Arguments as torch checks them (etas:
    ``Invalid eta values``), then optimlab's: finite numbers, 0 < etaminus < 1 < etaplus and
    0 < step_sizes[0] <= step_sizes[1] (torch does not check the step sizes). See
    :mod:`optimlab.rules.rprop`.
    """

    rule = rules.rprop
    preset_names = dict(
        lr="learning_rate",
        etas=("eta_minus", "eta_plus"),
        step_sizes=("min_step_size", "max_step_size"),
    )
    slot_keys = ("prev", "step_size")
    torch_checks = (tensor_lr, in_bound("lr", LR), _rprop_etas)
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "etas": _etas_pair,
        "step_sizes": _step_sizes_pair,
        **flags("maximize", "capturable", "differentiable", optional=("foreach",)),
    }
    legacy_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    capturable_xla = (True, True)

    def __init__(
        self,
        params,
        lr=D(1e-2),
        etas=D((0.5, 1.2)),
        step_sizes=D((1e-6, 50)),
        *,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def _weight_decay(self, group, lr):
        return None, None  # torch's Rprop has none: a group's "weight_decay" is ignored, as there

    def _gradient_error(self, p, g):
        # torch's Rprop meets such a gradient in sign = grad.mul(prev).sign(): a shape that does
        # not broadcast fails there (RuntimeError), a complex gradient of a real parameter in
        # torch.sign (NotImplementedError); one that broadcasts fails in step_size.mul_
        # (RuntimeError) unless it has fewer elements and the state exists, then at the mask
        # grad[sign.eq(etaminus)] = 0 (IndexError)
        try:
            shape = torch.broadcast_shapes(g.shape, p.shape)
        except RuntimeError:
            return RuntimeError
        if g.is_complex() and not p.is_complex():
            return NotImplementedError
        if self.state.get(p) and shape == p.shape and g.shape != p.shape:
            return IndexError
        return RuntimeError

    def rule_arguments(self, group):
        eta_minus, eta_plus = group["etas"]
        low, high = group["step_sizes"]
        return dict(
            eta_minus=float(eta_minus),
            eta_plus=float(eta_plus),
            min_step_size=float(low),
            max_step_size=float(high),
            clamp_every_step=True,
            compare_with="gradient",
            delayed_update=False,
        )


def _non_negative(name, value):
    """A finite float >= 0 (ASGD's lambd, alpha and t0, which torch does not check; used as
    Python floats, so they need not fit the parameters' dtype)."""
    x = _checks.number(name, value, ">= 0", _checks.NO_TENSOR)
    if not (math.isfinite(x) and x >= 0.0):
        raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
    return x


class ASGD(_base.Optimizer):
    """ASGD, averaged SGD (Polyak & Juditsky 1992), as ``torch.optim.ASGD``::

        g = g + weight_decay * p                          (L2; -g first with maximize)
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)  if mu != 1,  else  ax = p
        eta = lr / (1 + lambd * lr * step)^alpha;   mu = 1 / max(1, step - t0)

    eta and mu are those computed after the step before (eta = lr and mu = 1 at the first),
    kept as 0-d tensors of torch's default dtype, so they are rounded to it as in torch; a
    scheduler's new lr reaches eta one step late, as there. ``capturable=True`` keeps torch's
    tensor arithmetic of eta and mu and always averages (on the CPU a step raises torch's
    AssertionError, as torch does). State: ``step``, ``eta``, ``mu`` (0-d tensors on the
    parameter's device), ``ax`` (the averaged parameter). torch checks lr and weight_decay;
    optimlab also refuses lambd, alpha or t0 that are not finite floats >= 0. See
    :mod:`optimlab.rules.asgd`.
    """

    rule = rules.asgd
    preset_names = dict(
        lr="learning_rate", lambd="lambd", alpha="alpha", t0="t0", weight_decay="weight_decay"
    )
    slot_keys = ("ax",)
    torch_checks = (tensor_lr, in_bound("lr", LR), in_bound("weight_decay", WEIGHT_DECAY))
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "lambd": _non_negative,
        "alpha": _non_negative,
        "t0": _non_negative,
        "weight_decay": bounded(WEIGHT_DECAY),
        **flags("maximize", "differentiable", "capturable", optional=("foreach",)),
    }
    legacy_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    capturable_words = (
        "params, mus, etas, and state_steps",
        "params, mus, etas, and state_steps",
    )

    def __init__(
        self,
        params,
        lr=D(1e-2),
        lambd=D(1e-4),
        alpha=D(0.75),
        t0=D(1e6),
        weight_decay=D(0),
        foreach=None,
        maximize=False,
        differentiable=False,
        capturable=False,
        *,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )

    def _scalar_tensor(self, value, p, group):
        # torch.optim.ASGD keeps step, eta and mu on the parameter's device (another preset:
        # in float64, the NumPy dialect's Python floats)
        dtype = _base.scalar_dtype() if self.preset == "torch" else torch.float64
        return torch.tensor(value, dtype=dtype, device=p.device)

    def _extra_state(self, p, state, group):
        if "eta" not in state:
            state["eta"] = self._scalar_tensor(_checks.as_float("lr", group["lr"]), p, group)
        if "mu" not in state:
            state["mu"] = self._scalar_tensor(1.0, p, group)

    def _tensor_scalars(self, p, state, group, index):
        super()._tensor_scalars(p, state, group, index)
        for key in ("eta", "mu"):
            value = state.get(key)
            if value is not None and not isinstance(value, torch.Tensor):
                state[key] = self._scalar_tensor(_checks.state_number(index, key, value), p, group)

    def _group_lr(self, group, differentiable):
        return float(_checks.as_float("lr", group["lr"]))  # torch: _to_scalar(lr)

    def rule_arguments(self, group):
        lr = group["lr"]
        # torch keeps a tensor lr a tensor: eta = lr / (...)^alpha is then computed in its dtype
        lr_dtype = None
        if (
            isinstance(lr, torch.Tensor)
            and not group.get("capturable", False)
            and self.preset == "torch"
        ):
            lr_dtype = np.float64 if lr.dtype == torch.float64 else np.float32
        return dict(
            lambd=float(group["lambd"]),
            alpha=float(group["alpha"]),
            t0=float(group["t0"]),
            capturable=bool(group.get("capturable", False)),
            lr_dtype=lr_dtype,
        )

    def step_scalars(self, state, t, lr, arguments, p):
        eta, mu = state["eta"], state["mu"]
        dtype = np.float64 if eta.dtype == torch.float64 else np.float32
        if self.preset != "torch":
            dtype = None  # the NumPy dialect's eta and mu: Python floats
        scalars, (new_eta, new_mu) = self.rule.scalars(
            t, lr, (float(eta), float(mu)), state_dtype=dtype, **arguments
        )
        eta.fill_(new_eta)
        mu.fill_(new_mu)
        return scalars


def _positive_check(key: str, words: str):
    """torch's ``if not 0.0 < x`` of SparseAdam's lr and eps, with its words; a value torch
    cannot compare is a TypeError naming it."""

    def check(args: dict) -> None:
        value = args[key]
        try:
            refused = not 0.0 < value
        except Exception:  # noqa: BLE001 - torch's comparison fails on it: optimlab's words
            _checks.number(key, value, "> 0")
            raise TypeError(f"{key} must be a float > 0, got {value!r}") from None
        if refused:
            raise ValueError(f"{words}: {value}")

    return check


class SparseAdam(_base.Optimizer):
    """SparseAdam, as ``torch.optim.SparseAdam``: Adam made lazy for sparse gradients
    (``nn.Embedding(sparse=True)``). Only the entries a gradient names (its coalesced indices:
    an index named twice has its values summed) move, their moments and their parameter;
    every other row keeps its moments and value. On those entries, with t the parameter's own
    step count (``step``, a Python int, as torch keeps it)::

        m = m + (1 - beta1) * (g - m);   v = v + (1 - beta2) * (g^2 - v)
        p = p - lr * sqrt(bc2) / bc1 * (m / (sqrt(v) + eps))

    the rule of :mod:`optimlab.rules.adam` (epsilon-hat form; ``moment_form="increment"`` and
    ``quotient_first``, torch's order of operations, so the numbers are torch's to the bit),
    run as torch operations on the gathered rows. Dense gradients are refused with torch's
    RuntimeError, before anything moves; sparse or complex parameters at construction with
    torch's ValueError. No weight decay (torch's has none). State: ``step``, ``exp_avg``,
    ``exp_avg_sq``.
    """

    rule = rules.adam
    presets_available = ("torch",)  # neither Keras nor optax has a SparseAdam
    slot_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # (the rule's AMSGrad slot: off)
    torch_checks = (
        tensor_lr,
        _positive_check("lr", LR.words),
        _positive_check("eps", EPS.words),
        in_bound("betas", BETA, 0),
        in_bound("betas", BETA, 1),
    )
    checks = {
        "lr": bounded(LR, ANY_TENSOR),
        "betas": betas_pair,
        "eps": bounded(EPS),
        **flags("maximize"),
    }
    engines = ("auto",)
    fused_kernel = False
    plain_state_keys = ("step",)
    groups_take_defaults = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        maximize=False,
        *,
        engine="auto",
        nan_policy="propagate",
        preset="torch",
        state_dtype="float32",
        bf16_stochastic_round=False,
        seed=None,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        super().__init__(
            params, defaults, engine, nan_policy, preset, state_dtype, bf16_stochastic_round, seed
        )
        sparse, complex_ = [], []
        for index, group in enumerate(self.param_groups):
            for d_index, p in enumerate(group["params"]):
                if p.is_sparse:
                    sparse.append([index, d_index])
                if p.is_complex():
                    complex_.append([index, d_index])
        if sparse:
            raise ValueError(
                f"Sparse params at indices {sparse}: SparseAdam requires dense parameter tensors"
            )
        if complex_:
            raise ValueError(
                f"Complex params at indices {complex_}: SparseAdam does not support complex "
                "parameters"
            )

    def slot_enabled(self, key, group):
        return key != "max_exp_avg_sq"

    def _init_state(self, p, state, group):
        if "step" not in state:
            state["step"] = 0  # a Python int in torch.optim.SparseAdam
        for key in self.slot_keys:
            if key not in state and self.slot_enabled(key, group):
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _tensor_scalars(self, p, state, group, index):
        pass  # torch keeps the step a plain number

    def _advance(self, state, fresh):
        state["step"] += 1
        return float(state["step"])

    def _check_gradient(self, index, p, g, group, fused_only):
        if not g.is_sparse:
            raise RuntimeError(
                "SparseAdam does not support dense gradients, please consider Adam instead"
            )
        super()._check_gradient(index, p, g, group, fused_only)

    def _sparse_problem(self, p, group):
        return None

    def group_scalars(self, group):
        lr = group["lr"]
        if not isinstance(lr, torch.Tensor):
            return self.rule.scalars
        # torch keeps a tensor lr a tensor (_to_scalar): its step size lr * sqrt(bc2) / bc1
        # is a tensor of lr's dtype, rounded at each operation
        lr_tensor = lr.detach().reshape(())

        def scalars(t, lr_value, **arguments):
            numbers = self.rule.scalars(t, lr_value, **arguments)
            bc1 = 1.0 - arguments["beta_1"] ** t
            bc2 = 1.0 - arguments["beta_2"] ** t
            return (float(lr_tensor * math.sqrt(bc2) / bc1), *numbers[1:])

        return scalars

    def rule_arguments(self, group):
        beta_1, beta_2 = group["betas"]
        return dict(
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            epsilon=float(group["eps"]),
            amsgrad=False,
            bias_correction=True,
            epsilon_style="hat",
            amsgrad_max="raw",
            moment_form="increment",
            quotient_first=True,
        )


OPTIMIZERS = {
    cls.__name__: cls
    for cls in (
        SGD,
        Adagrad,
        RMSprop,
        Adam,
        AdamW,
        NAdam,
        Adamax,
        Adadelta,
        Lion,
        RAdam,
        Rprop,
        ASGD,
        SparseAdam,
        Adafactor,
        Muon,
    )
}

__all__ = [*OPTIMIZERS, "OPTIMIZERS"]
