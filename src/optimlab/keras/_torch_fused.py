"""optimlab.keras on Keras's torch backend: the fused CPU kernel where it applies, the torch-op
chain elsewhere.

Keras's torch backend runs the optimizer eagerly. For each variable, at each update, the
update is

``fused`` (the fast path)
    the numba loop of :mod:`optimlab.engines.fused` (the one the NumPy dialect's fused engine
    and :mod:`optimlab.torch` run) on ``Tensor.numpy()`` views of the variable's tensor, its
    gradient and its slots' tensors (:class:`optimlab.torch._fused.FusedView`): one pass,
    in place, no full-size temporary. The dialect's gradient transforms and weight decay are
    the loop's pipeline, per element::

        g = g * (sign * clip scale)          (maximize; clipnorm / global_clipnorm)
        g = min(max(g, -clipvalue), clipvalue)
        g = g + wd * p                       (weight_decay_mode "l2")
        p = p - p * (wd * lr)                ("decoupled", unless the rule takes it: DECAY)
        p, s1, s2, ... = rule.update(p, g, s1, s2, ..., *scalars)

    with the clip scale of the norm summed by :func:`optimlab.engines.fused.l2_norm` (the
    dialect's fused engine's). The same loop on the same inputs: the dialect's
    ``engine="fused"`` numbers to the bit.
``torch`` (the fallback)
    the rule's ``update`` on the tensors with torch operations
    (:func:`optimlab.torch._ops.torch_update`, through ``Optimizer.update_step``), the
    gradient transforms applied first (``-g``, ``g * scale``, ``clamp``): the numbers of
    the fused path to float rounding (the same IEEE operations, one at a time).

The choice is made as ``optimlab.torch``'s ``engine="auto"`` makes it, per variable and step:
the fused kernel runs when the rule is elementwise (:func:`optimlab.engines.fused.elementwise`:
not Lamb's trust ratio nor the other tensor-level rules), the dialect fuses this configuration
(``_rule_fusable``: not Ftrl with a general ``learning_rate_power``, whose power NumPy and the
compiled loop round differently), the variable and its slots are contiguous CPU float32/float64
tensors of one dtype (:func:`optimlab.torch._fused.fusable`) and the gradient, cast to the
variable's dtype as Keras casts it, is a dense contiguous CPU tensor of its shape; and not
inside a ``keras.StatelessScope`` (``stateless_apply`` must leave the tensors it is given as
they are) nor while ``torch.compile`` traces the step. Anything else (a GPU, float16,
bfloat16) takes the torch-op chain.

Why no ``engine=`` argument: a Keras optimizer's configuration (``get_config``, saved with the
model by ``model.save``) describes its numbers and loads on any backend; an engine would mean
nothing on JAX (the update is compiled with the train step there), so a model saved on torch
with ``engine="fused"`` would either fail to load on JAX or carry a setting that is silently
ignored. The two paths give the same numbers to float rounding, so the choice is left to the
tensors, as in ``optimlab.torch``'s default.
"""

from __future__ import annotations

import torch

from .. import clipping
from ..engines import fused
from ..torch._fused import FusedView

try:  # (Keras exports no such test; it is the one Keras's variables ask)
    from keras.src.backend.common.stateless_scope import in_stateless_scope
except ImportError:  # pragma: no cover - another layout of Keras's sources

    def in_stateless_scope() -> bool:
        return False


_FLOATS = (torch.float32, torch.float64)


class Clipping:
    """What the dialect's ``maximize`` and clipping do to the gradients of one update, kept
    for the kernel's pipeline instead of applied: ``sign`` (-1 for maximize), ``scales`` (the
    clipnorm scale of each gradient, or the global_clipnorm one for all; None without norm
    clipping) and ``clipvalue`` (None if off). :meth:`apply` is the torch-op form, the
    dialect's order: g = -g, then g * scale or clamp(g, -clipvalue, clipvalue)."""

    __slots__ = ("sign", "scales", "clipvalue")

    def __init__(self, sign: float, scales, clipvalue) -> None:
        self.sign = sign
        self.scales = scales
        self.clipvalue = clipvalue

    @classmethod
    def of(cls, config: dict, style: str, grads: list, backend) -> Clipping:
        """The clipping of ``grads`` under ``config`` (the dialect's resolved configuration)
        and the preset's ``style`` (:func:`optimlab.clipping.norm_scale`)."""
        sign = -1.0 if config["maximize"] else 1.0
        scales = None
        if config["clipnorm"]:
            clip = config["clipnorm"]
            scales = [clipping.norm_scale(backend.l2_norm([g]), clip, style) for g in grads]
        elif config["global_clipnorm"] and grads:
            scale = clipping.norm_scale(backend.l2_norm(grads), config["global_clipnorm"], style)
            scales = [scale] * len(grads)
        clipvalue = None if scales is not None else (config["clipvalue"] or None)
        return cls(sign, scales, clipvalue)

    def gscale(self, k: int) -> float:
        """The factor of gradient ``k``: the sign times its norm clipping scale."""
        return self.sign * (1.0 if self.scales is None else self.scales[k])

    def apply(self, k: int, g):
        """Gradient ``k`` transformed with torch operations (the fallback's)."""
        if self.sign < 0:
            g = -g
        if self.scales is not None:
            return g * self.scales[k]  # a Python float: torch computes in g's dtype
        if self.clipvalue is not None:
            return torch.clamp(g, -self.clipvalue, self.clipvalue)
        return g


NO_CLIPPING = Clipping(1.0, None, None)


def l2_norm(grads) -> float | None:
    """sqrt(sum of squares) of ``grads`` in float64, one parallel read of each
    (:func:`optimlab.engines.fused.l2_norm`, as the dialect's fused engine sums it), when
    every gradient is a CPU float32/float64 tensor; None otherwise."""
    arrays = []
    for g in grads:
        if g.device.type != "cpu" or g.dtype not in _FLOATS or g.layout != torch.strided:
            return None
        arrays.append(g.detach().numpy())
    return fused.l2_norm(arrays)


def kernel_applies(optimizer) -> bool:
    """Whether the fused kernel may run this optimizer's update at all (its rule and
    configuration; the tensors are checked per variable)."""
    dialect = optimizer._optimlab
    return (
        getattr(optimizer, "_fused_kernel", True)
        and fused.elementwise(dialect.rule)
        and dialect._rule_fusable()
        and not in_stateless_scope()
        and not torch.compiler.is_compiling()
    )


def update(optimizer, grads, variables, learning_rate) -> None:
    """One update of ``variables`` on the torch backend (the step numbers are already in
    ``optimizer._step``): the fused kernel for each variable it can take, else
    ``optimizer.update_step`` on the gradient transformed with torch operations."""
    clip = optimizer.__dict__.pop("_clipping", None) or NO_CLIPPING
    views = optimizer.__dict__.setdefault("_fused_views", {})
    fast = kernel_applies(optimizer)
    with torch.no_grad():
        for k, (g, variable) in enumerate(zip(grads, variables, strict=True)):
            if fast and _fused_step(optimizer, views, k, g, variable, clip):
                continue
            optimizer.update_step(clip.apply(k, g), variable, learning_rate)


def _fused_step(optimizer, views: dict, k: int, g, variable, clip: Clipping) -> bool:
    """Update ``variable`` with the fused kernel; False (nothing changed) where it cannot."""
    dialect = optimizer._optimlab
    rule = dialect.rule
    i = optimizer._get_variable_index(variable)
    p = variable.value
    slots = optimizer._slot_variables
    tensors = tuple(slots[name][i].value if name in slots else None for name, _ in rule.SLOTS)
    held = views.get(i)
    if (
        held is None
        or held[0] is not p
        or any(a is not b for a, b in zip(held[1], tensors, strict=True))
        or p.data_ptr() != held[2].pointer
    ):
        pairs = zip(rule.SLOTS, tensors, strict=True)
        keys = tuple(None if t is None else name for (name, _), t in pairs)
        state = {name: t for name, t in zip(keys, tensors, strict=True) if name is not None}
        view = FusedView.make(rule, p, state, keys)
        if view is None:
            views.pop(i, None)
            return False
        held = views[i] = (p, tensors, view)
    view = held[2]
    if g.dtype != p.dtype:  # (Keras's cast of the gradient to the variable's dtype)
        g = g.to(p.dtype)
    array = view.grad_array(g.detach())
    if array is None:
        return False
    numbers, lr = optimizer.__dict__["_step"]
    config = dialect._config
    decay = config["weight_decay"] if optimizer._use_weight_decay(variable) else None
    decoupled = config["weight_decay_mode"] == "decoupled"
    l2 = decay if decay is not None and not decoupled else None
    wdlr = None
    if dialect._rule_takes_decay():
        numbers = (*numbers, decay if decoupled else None)
    elif decay is not None and decoupled:
        wdlr = decay * lr
    pipe = fused.pipeline(
        gscale=clip.gscale(k), clipvalue=clip.clipvalue, l2=l2, decoupled_wdlr=wdlr
    )
    # the compiled entry is reused for the same options and the same kinds of scalars only
    key = (tuple(x is None for x in pipe), tuple(map(type, numbers)))
    view.run(array, numbers, pipe, key)
    return True
