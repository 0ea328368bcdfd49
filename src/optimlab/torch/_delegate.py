"""Delegation: torch's own multi-tensor kernels where the numbers are torch's.

With torch's numerics (``preset="torch"``) and ``engine="auto"``, a group whose update is
exactly torch.optim's (no optimlab-only option in force: not ``differentiable``, no loss scale
from GradScaler, state buffers in the parameter's dtype) is updated by torch.optim's
functional API (``torch.optim.adam.adam``, ``sgd.sgd``, ``adagrad.adagrad``,
``rmsprop.rmsprop``, ``nadam.nadam``, ``radam.radam``, ``adamax.adamax``,
``adadelta.adadelta``) on the tensors where torch has a multi-tensor kernel that beats the
alternatives: every tensor off the CPU (its ``foreach`` kernels, or ``fused=True``), and on
the CPU float16/bfloat16 tensors, or float32/float64 ones of a group that asks for
``foreach=True`` or ``fused=True`` (elsewhere on the CPU the numba kernel runs). The result is
torch.optim's to the bit (tests/torch/test_compiled.py compares with ``torch.equal``).

The state is torch.optim's own layout (``step`` a 0-d tensor, the same buffer keys), which
optimlab.torch already keeps, so checkpoints load either way and torch's functions advance
the steps themselves. ``foreach`` and ``fused`` are the group's: with ``foreach=None``
torch makes its own choice (its foreach kernels on a GPU, its for-loop on the CPU), as
torch.optim does. (Running the CPU's ``foreach=None`` with foreach kernels would save Python
calls but not keep the bits: measured, SGD with momentum, Adagrad, NAdam, Adadelta, RMSprop
with momentum and Adam's float16 ``exp_avg_sq`` differ from the for-loop in last bits.)
"""

from __future__ import annotations

import torch
import torch.optim.adadelta as _adadelta
import torch.optim.adagrad as _adagrad
import torch.optim.adam as _adam
import torch.optim.adamax as _adamax
import torch.optim.nadam as _nadam
import torch.optim.radam as _radam
import torch.optim.rmsprop as _rmsprop
import torch.optim.sgd as _sgd

_CPU_DTYPES = (torch.float16, torch.bfloat16)


def _buffers(states, params, key):
    return [states[p][key] for p in params]


def _adam_family(opt, group, params, grads, states, common):
    beta1, beta2 = group["betas"]
    amsgrad = bool(group["amsgrad"])
    _adam.adam(
        params,
        grads,
        _buffers(states, params, "exp_avg"),
        _buffers(states, params, "exp_avg_sq"),
        _buffers(states, params, "max_exp_avg_sq") if amsgrad else [],
        _buffers(states, params, "step"),
        foreach=common["foreach"],
        capturable=bool(group["capturable"]),
        differentiable=False,
        fused=group["fused"],
        has_complex=common["has_complex"],
        decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
        amsgrad=amsgrad,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=group["maximize"],
    )


def _sgd_step(opt, group, params, grads, states, common):
    momentum = group["momentum"]
    buffers = [states[p].get("momentum_buffer") if momentum != 0 else None for p in params]
    _sgd.sgd(
        params,
        grads,
        buffers,
        has_sparse_grad=False,
        foreach=common["foreach"],
        fused=group["fused"],
        weight_decay=group["weight_decay"],
        momentum=momentum,
        lr=group["lr"],
        dampening=group["dampening"],
        nesterov=group["nesterov"],
        maximize=group["maximize"],
    )
    if momentum != 0:
        for p, buffer in zip(params, buffers, strict=True):
            states[p]["momentum_buffer"] = buffer


def _adagrad_step(opt, group, params, grads, states, common):
    _adagrad.adagrad(
        params,
        grads,
        _buffers(states, params, "sum"),
        _buffers(states, params, "step"),
        fused=group["fused"],
        has_sparse_grad=False,
        foreach=common["foreach"],
        differentiable=False,
        has_complex=common["has_complex"],
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        lr_decay=group["lr_decay"],
        eps=group["eps"],
        maximize=group["maximize"],
    )


def _rmsprop_step(opt, group, params, grads, states, common):
    centered, momentum = bool(group["centered"]), group["momentum"]
    _rmsprop.rmsprop(
        params,
        grads,
        _buffers(states, params, "square_avg"),
        _buffers(states, params, "grad_avg") if centered else [],
        _buffers(states, params, "momentum_buffer") if momentum > 0 else [],
        _buffers(states, params, "step"),
        foreach=common["foreach"],
        maximize=group["maximize"],
        differentiable=False,
        capturable=bool(group["capturable"]),
        has_complex=common["has_complex"],
        lr=group["lr"],
        alpha=group["alpha"],
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        momentum=momentum,
        centered=centered,
    )


def _nadam_step(opt, group, params, grads, states, common):
    beta1, beta2 = group["betas"]
    _nadam.nadam(
        params,
        grads,
        _buffers(states, params, "exp_avg"),
        _buffers(states, params, "exp_avg_sq"),
        _buffers(states, params, "mu_product"),
        _buffers(states, params, "step"),
        decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
        foreach=common["foreach"],
        capturable=bool(group["capturable"]),
        differentiable=False,
        has_complex=common["has_complex"],
        maximize=group["maximize"],
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        momentum_decay=group["momentum_decay"],
        eps=group["eps"],
    )


def _radam_step(opt, group, params, grads, states, common):
    beta1, beta2 = group["betas"]
    _radam.radam(
        params,
        grads,
        _buffers(states, params, "exp_avg"),
        _buffers(states, params, "exp_avg_sq"),
        _buffers(states, params, "step"),
        decoupled_weight_decay=bool(group["decoupled_weight_decay"]),
        foreach=common["foreach"],
        differentiable=False,
        capturable=bool(group["capturable"]),
        has_complex=common["has_complex"],
        maximize=group["maximize"],
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
    )


def _adamax_step(opt, group, params, grads, states, common):
    beta1, beta2 = group["betas"]
    _adamax.adamax(
        params,
        grads,
        _buffers(states, params, "exp_avg"),
        _buffers(states, params, "exp_inf"),
        _buffers(states, params, "step"),
        foreach=common["foreach"],
        maximize=group["maximize"],
        differentiable=False,
        capturable=bool(group["capturable"]),
        has_complex=common["has_complex"],
        eps=group["eps"],
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
    )


def _adadelta_step(opt, group, params, grads, states, common):
    _adadelta.adadelta(
        params,
        grads,
        _buffers(states, params, "square_avg"),
        _buffers(states, params, "acc_delta"),
        _buffers(states, params, "step"),
        capturable=bool(group["capturable"]),
        foreach=common["foreach"],
        differentiable=False,
        has_complex=common["has_complex"],
        lr=group["lr"],
        rho=group["rho"],
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        maximize=group["maximize"],
    )


#: optimlab.torch's class name -> the step of torch.optim's functional API it delegates to
STEPS = {
    "Adam": _adam_family,
    "AdamW": _adam_family,
    "SGD": _sgd_step,
    "Adagrad": _adagrad_step,
    "RMSprop": _rmsprop_step,
    "NAdam": _nadam_step,
    "RAdam": _radam_step,
    "Adamax": _adamax_step,
    "Adadelta": _adadelta_step,
}

#: whether torch's step creates the buffers itself (SGD's momentum: a copy of the gradient)
_TORCH_INITIALIZES = ("SGD",)


def _takes(p, g, group: dict) -> bool:
    """Whether torch's kernels update ``p`` (gradient ``g``) in this group."""
    if g.is_sparse or g.dtype != p.dtype or g.device != p.device:
        return False
    if p.layout != torch.strided or getattr(p, "placements", None) is not None:
        return False
    if p.device.type != "cpu" or p.dtype in _CPU_DTYPES:
        return True
    return bool(group.get("foreach") or group.get("fused"))


def _state_is_torchs(opt, p, state: dict, keys) -> bool:
    """Whether ``state`` holds torch.optim's buffers for ``p`` (its dtype and device; not a
    narrow or quantized copy)."""
    for key in keys:
        if key is None or key not in state:
            continue
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.dtype != p.dtype:
            return False
        if value.device != p.device or value.shape != p.shape:
            return False
    return True


def run(opt, group: dict, keys: tuple, entries: list) -> list:
    """Update, with torch's kernels, the entries ``(p, g, view, array)`` of ``group`` they
    take (see :func:`_takes`); returns the others, for optimlab's engines. Only under
    ``preset="torch"``, ``engine="auto"``, without ``differentiable`` or a loss scale (the
    caller's conditions)."""
    name = type(opt).__name__
    step = STEPS.get(name)
    if step is None or type(opt).__module__ != "optimlab.torch.optimizers":
        return entries  # a subclass may change the rule: optimlab's engines
    states = opt.state
    params, grads, rest = [], [], []
    for entry in entries:
        p, g = entry[0], entry[1]
        if _takes(p, g, group) and _state_is_torchs(opt, p, states.get(p, {}), keys):
            params.append(p)
            grads.append(g)
        else:
            rest.append(entry)
    if not params:
        return entries
    if name not in _TORCH_INITIALIZES:
        for p in params:
            state = states[p]
            if not state or any(k is not None and k not in state for k in keys):
                opt._init_state(p, state, group)
    common = dict(
        foreach=group.get("foreach"), has_complex=any(torch.is_complex(p) for p in params)
    )
    step(opt, group, params, grads, states, common)
    return rest
