"""The fused kernel on a torch parameter's own memory, and the gradient checks it shares.

A parameter on the CPU in float32/float64 (complex: its real view), contiguous, with a dense
gradient of its dtype, is updated by the fused numba kernel of :mod:`optimlab.engines.fused`
through ``Tensor.numpy()`` views of the parameter, its gradient and its state buffers: one
parallel pass, no copies, no temporaries. ``FusedView`` keeps those views (and the compiled
entry) from step to step; ``shard_of`` sees through a ``DTensor`` to its shard.
"""

from __future__ import annotations

import torch

from ..engines import fused

_FUSED_DTYPES = (torch.float32, torch.float64)


class HeldView:
    """What the CPU fast paths' views share (:class:`FusedView`, and
    :class:`optimlab.torch._narrow.NarrowView`): whether a parameter and its state still hold
    the tensors a view was made of, and the step count advanced through the view. A subclass
    sets ``param``, ``spec`` (a DTensor's placement, else None), ``pointer``, ``state``,
    ``keys``, ``held`` ((key, tensor) of the buffers in use), ``step`` and ``step_array``."""

    __slots__ = ()

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


class FusedView(HeldView):
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
        "shape",
        "complex",
        "loop",
        "entry",
        "entry_key",
        "keys",
        "held",
    )

    @classmethod
    def make(cls, rule, p, state, keys):
        """The view of ``p`` and its ``state`` buffers (``keys``, None where off) for ``rule``'s
        kernel, or None where the kernel cannot run on their memory."""
        tensors = tuple(None if k is None else state[k] for k in keys)
        local, spec = shard_of(p)
        locals_ = []
        for t in tensors:
            t_local, t_spec = (None, spec) if t is None else shard_of(t)
            if t_spec != spec:  # a buffer laid out unlike its parameter
                return None
            locals_.append(t_local)
        if local is None or not fusable(local, locals_):
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
        view.shape = tuple(real(local).shape)
        view.complex = complex_
        view.loop = fused.loop(rule, view.size)
        view.entry = None
        view.entry_key = None
        return view

    def grad_array(self, g):
        """The gradient ``g`` as the flat NumPy array the kernel reads (its memory, no copy),
        or None if it cannot be: not the parameter's shape or dtype, not contiguous, not on
        the CPU, requiring grad, sparse (a DTensor: its shard, if laid out as the
        parameter's)."""
        if self.spec is not None:
            g, spec = shard_of(g)
            if spec != self.spec or g is None:
                return None
        try:
            grad = (torch.view_as_real(g) if self.complex else g).numpy()
        except (RuntimeError, TypeError):  # another device, sparse, requires grad...
            return None
        if grad.dtype != self.dtype or grad.shape != self.shape or not grad.flags.c_contiguous:
            return None
        return grad if grad.ndim == 1 else grad.reshape(-1)

    def run(self, grad, scalars, pipe, pipe_key) -> None:
        """One fused update with the gradient array ``grad`` (see :meth:`grad_array`).
        ``pipe_key`` tells which options of the pipeline are off (None): the compiled entry
        is only reused for the same ones."""
        p, *slots = self.arrays
        if self.entry is not None and self.entry_key == pipe_key:
            self.entry(p, grad, *slots, None, scalars, pipe)
            return
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


_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def fused_message(p, g) -> str:
    """Why ``engine="fused"`` cannot step ``p`` with ``g``, in words."""
    return (
        f"engine='fused' needs CPU float32/float64 contiguous tensors with a dense gradient of "
        f"the same dtype; got a {p.dtype} tensor on {p.device} (gradient {g.dtype} on "
        f"{g.device}, contiguous: {p.is_contiguous() and g.is_contiguous()}); use engine='auto'"
    )


def fused_problem(p, g) -> str | None:
    """Why the fused kernel cannot step ``p`` with the dense gradient ``g`` (None if it can;
    its state buffers are made like ``p``)."""
    local, spec = shard_of(p)
    g_local, g_spec = shard_of(g)
    if (
        local is not None
        and g_local is not None
        and spec == g_spec
        and fusable(local, [])
        and g_local.dtype == local.dtype
        and g_local.device.type == "cpu"
        and g_local.layout == torch.strided
        and g_local.is_contiguous()
    ):
        return None
    return fused_message(p, g)


def finite(g) -> bool:
    """Whether every value of the gradient ``g`` is finite (one read of it)."""
    if g.is_sparse:
        g = g.coalesce()._values()
    if getattr(g, "placements", None) is not None:
        # a DTensor: the count over all its shards (a collective), so that every rank takes
        # the same decision
        return non_finite_count(g) == 0
    if (
        g.device.type == "cpu"
        and _COMPLEX.get(g.dtype, g.dtype) in _FUSED_DTYPES
        and g.is_contiguous()
        and not g.requires_grad
    ):
        real = torch.view_as_real(g) if g.is_complex() else g
        return fused.all_finite(real.numpy())
    return bool(torch.isfinite(g).all())


def non_finite_count(g) -> int:
    """The number of NaN/Inf values of the gradient ``g``; for a DTensor, over all its shards
    (the local counts summed across the ranks)."""
    if g.is_sparse:
        g = g.coalesce()._values()
    count = (~torch.isfinite(g)).sum()
    if getattr(count, "placements", None) is not None:
        count = count.full_tensor()
    return int(count)


def shard_of(t):
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


def fusable(p, slots) -> bool:
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
