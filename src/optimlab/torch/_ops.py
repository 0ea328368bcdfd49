"""The torch-ops engine: a rule's own elementwise code run on torch tensors.

For tensors the fused kernels cannot take (a GPU, float16/bfloat16, a strided layout), the
update is the rule's ``update`` function itself, executed with ``np.sqrt``, ``np.abs``,
``np.maximum`` and ``np.sign`` bound to their torch counterparts (and the rules' ``where`` to
``torch.where``): the same equation, term for term, as the reference and fused engines (see
:mod:`optimlab.rules`). Python-float scalars keep a tensor's dtype in torch as in NumPy, so a
float32 tensor is updated in float32 throughout.

The gradient first goes through the same pipeline as in the fused kernels
(``engines.fused._prepare_args``)::

    g = g / scale               (GradScaler's scale, handed to a fused=True optimizer)
    g = -g                      (maximize)
    g = g + wd * p              (L2 weight decay, PyTorch's ``weight_decay``)
    p = p * (1 - lr * wd)       (decoupled weight decay, as torch's AdamW: param.mul_(...);
                                 under a Keras or optax preset Keras's p = p - p * (lr * wd))

Under ``differentiable=True`` the rule reads copies of the parameter and its state (so that no
tensor autograd saved is overwritten afterwards) and each new value is written back with one
``copy_``, which autograd records.
"""

from __future__ import annotations

import types

import torch


def _maximum(a, b):
    """``np.maximum`` on tensors, one side possibly a Python number (a rule's scalar, such as
    Rprop's bounds, which ``torch.maximum`` does not take): ``torch.clamp`` against it, which
    propagates a NaN as ``torch.maximum`` does."""
    if isinstance(a, torch.Tensor):
        return torch.maximum(a, b) if isinstance(b, torch.Tensor) else torch.clamp(a, min=b)
    if isinstance(b, torch.Tensor):
        return torch.clamp(b, min=a)
    return max(a, b)


def _sign(x):
    """``np.sign`` on a tensor: -1, 0 or 1, and NaN for NaN (NumPy's and the fused kernel's;
    ``torch.sign`` gives 0 there, which would stop a NaN gradient at Lion's sign)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


class _TorchMath:
    """The four NumPy functions the rules use, as torch functions."""

    sqrt = staticmethod(torch.sqrt)
    abs = staticmethod(torch.abs)
    maximum = staticmethod(_maximum)
    sign = staticmethod(_sign)


_UPDATES: dict = {}


def torch_update(rule):
    """``rule.update`` with its module's ``np`` replaced by torch's functions, and its
    ``where`` (``rules._scalar``, where the rule uses it) by ``torch.where`` (memoized)."""
    update = _UPDATES.get(rule)
    if update is None:
        source = rule.update
        namespace = dict(source.__globals__, np=_TorchMath)
        if "where" in namespace:
            namespace["where"] = torch.where
        update = types.FunctionType(
            source.__code__, namespace, source.__name__, source.__defaults__, source.__closure__
        )
        _UPDATES[rule] = update
    return update


def apply(
    rule,
    p,
    g,
    slots,
    scalars,
    *,
    maximize=False,
    l2=None,
    decoupled_wdlr=None,
    loss_scale=None,
    differentiable=False,
    decay_form="factor",
) -> None:
    """One update of ``p`` (in place) with torch operations; ``slots`` are the state tensors in
    the order of ``rule.SLOTS`` (None where off), ``scalars`` the tuple of ``rule.scalars``.
    ``decay_form``: ``"factor"`` p * (1 - lr * wd) (torch's), ``"subtract"`` p - p * (lr * wd)
    (Keras's, the NumPy dialect's)."""
    if loss_scale is not None:
        g = g / loss_scale
    if maximize:
        g = -g
    if differentiable:
        q = p.clone()
        inputs = [None if s is None else s.clone() for s in slots]
    else:
        q, inputs = p, slots
    if l2 is not None:
        g = g + l2 * q
    if decoupled_wdlr is not None and decay_form == "subtract":
        q = q - q * decoupled_wdlr
    elif decoupled_wdlr is not None:
        if differentiable:
            q = q * (1.0 - decoupled_wdlr)
        else:
            q.mul_(1.0 - decoupled_wdlr)
    new = torch_update(rule)(q, g, *inputs, *scalars)
    p.copy_(new[0])
    for buffer, value in zip(slots, new[1:], strict=True):
        if buffer is not None:
            buffer.copy_(value)
