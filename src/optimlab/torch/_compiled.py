"""The compiled engine: a rule's own ``update``, compiled by ``torch.compile`` into fused
multi-tensor kernels.

``engine="compiled"`` (and ``engine="auto"`` for float16/bfloat16 on the CPU and for every
tensor on another device, where neither torch's own kernels nor the numba kernel apply) runs
the same code as ``engine="torch"`` (the rule's ``update`` on tensors, :mod:`._ops`, with the
gradient pipeline ``g / scale``, ``-g``, ``g + wd * p`` and the decoupled decay ``p * (1 - lr
* wd)`` or ``p - p * (lr * wd)``), traced by dynamo and compiled by inductor (C++ on the CPU,
Triton on a GPU): a chunk of up to :data:`CHUNK` tensors of one device and dtype is one
compiled call, so the Python cost is per chunk, not per tensor, and every elementwise chain is
one pass over memory.

What keeps it from recompiling (torch issues 107076 and 130467: a Python float that changes
is a constant of the graph, so a learning-rate schedule recompiles at every step): every
number of the step (the rule's scalars, bias corrections included, and the pipeline's scale,
L2 coefficient and decay factor) is passed in one float64 tensor of shape (tensors, numbers)
(float32 on a device without float64), read inside the graph as 0-d tensors. Only the rule's
flags (booleans: AMSGrad, Nesterov, whether momentum is on, RAdam's rectified or not), the
tensors' shapes, strides and dtypes, and which pipeline options are on are constants: a graph
is compiled once per such combination, each under its own code object (so that dynamo's
per-function recompile limit never sends a chunk back to eager code), and cached on disk by
inductor's FX graph cache (``torch._inductor.config.fx_graph_cache``, on by default).

The numbers: a 0-d tensor does not promote a tensor's dtype, so each operation has the dtype
of the op-chain engine's (float32 for float32 tensors, bfloat16 results for bfloat16 ones); a
scalar enters the arithmetic as torch's eager kernels take a Python float (rounded to the
tensors' computation dtype). Inductor keeps a chain's intermediates in float32 for bfloat16
and float16 tensors where the eager chain rounds each result to the tensor's dtype, and may
contract a multiply and an add: results agree with ``engine="torch"`` to a few units in the
last place in float32/float64 and are closer to exact arithmetic in bfloat16/float16.

The first step of each graph compiles it. Measured one-off on a loaded 2-core Xeon (load
average 3 to 11, other jobs running): a first graph of 16 small tensors took 20 s on a fresh
inductor cache (inductor's own start-up, its C++ headers) and 2.8 s found in the disk cache;
with the machine at load 11, the first step of 40 bfloat16 tensors (two graphs: 16 and 8
tensors) took 37 to 74 s per optimizer. :data:`COMPILE_SECONDS` records each graph's first
call. If ``torch.compile`` is unavailable or fails (no C++ compiler, an unsupported device),
the chunk runs on the op chain and a warning is issued once.
"""

from __future__ import annotations

import sys
import time
import types
import warnings

import numpy as np
import torch

from . import _ops

#: tensors traced together into one compiled call
CHUNK = 16
#: the dtypes ``engine="auto"`` sends here on the CPU (float32/float64 go to the numba kernel)
AUTO_CPU_DTYPES = (torch.float16, torch.bfloat16)

#: graph key -> seconds its first call took (tracing and compiling included)
COMPILE_SECONDS: dict = {}
_GRAPHS: dict = {}  # graph key -> compiled callable (or None: compiling it failed)
_warned = [False]

_STRIDED = torch.strided
_STATIC = (bool, np.bool_, type(None))
_NUMBER = (int, float, np.floating, np.integer)


def _scalar_layout(scalars) -> tuple | None:
    """``scalars`` (the rule's) split: ``(layout, numbers)``, where layout has ``("n", j)`` for
    the j-th number (read from the step's tensor) and ``("c", value)`` for a flag (a constant
    of the graph); None if a scalar is a tensor (a traced learning rate: not here)."""
    layout, numbers = [], []
    for value in scalars:
        if isinstance(value, _STATIC):
            layout.append(("c", None if value is None else bool(value)))
        elif isinstance(value, _NUMBER):
            layout.append(("n", len(numbers)))
            numbers.append(float(value))
        else:
            return None
    return tuple(layout), numbers


_UPDATES: dict = {}


def _traceable_update(rule):
    """:func:`optimlab.torch._ops.torch_update` of ``rule`` with its globals in a module of
    their own, registered in ``sys.modules`` (dynamo's guards find a function's globals by
    its module's name: the rule's own module holds NumPy as ``np``, not the torch functions),
    memoized."""
    update = _UPDATES.get(rule)
    if update is None:
        eager = _ops.torch_update(rule)
        name = f"{__name__}.traced_{rule.__name__.rsplit('.', 1)[-1]}"
        module = types.ModuleType(name)
        module.__dict__.update(eager.__globals__)
        module.__name__ = name
        sys.modules[name] = module
        update = types.FunctionType(
            eager.__code__, module.__dict__, eager.__name__, eager.__defaults__, eager.__closure__
        )
        _UPDATES[rule] = update
    return update


def _step_source(rule, count, layout, slot_mask, pipe):
    """The chunk's step as a Python function of ``(params, grads, slots, numbers)``: for each
    of ``count`` tensors, the pipeline then the rule's update, written back in place."""
    update = _traceable_update(rule)
    scale, flip, l2, decay = pipe
    width = sum(1 for kind, _ in layout if kind == "n")

    def step(params, grads, slots, numbers):
        for i in range(count):
            row = numbers[i]
            p, g = params[i], grads[i]
            extra = width
            if scale:
                g = g / row[extra]
                extra += 1
            if flip:
                g = -g
            q = p
            if l2:
                g = g + row[extra] * q
                extra += 1
            if decay == "factor":
                q = q * row[extra]
            elif decay == "subtract":
                q = q - q * row[extra]
            buffers = [slots[j][i] if on else None for j, on in enumerate(slot_mask)]
            args = [row[v] if kind == "n" else v for kind, v in layout]
            new = update(q, g, *buffers, *args)
            p.copy_(new[0])
            for buffer, value in zip(buffers, new[1:], strict=True):
                if buffer is not None:
                    buffer.copy_(value)

    return step


def _fresh_code(function):
    """``function`` under a code object of its own (dynamo's compiled-graph cache and its
    recompile limit are per code object: each graph key gets one)."""
    namespace: dict = {"_inner": function}
    exec(
        "def _graph(params, grads, slots, numbers):\n    _inner(params, grads, slots, numbers)\n",
        namespace,
    )  # noqa: E501, S102
    return namespace["_graph"]


def _graph(key, rule, count, layout, slot_mask, pipe):
    graph = _GRAPHS.get(key, _GRAPHS)
    if graph is _GRAPHS:
        function = _fresh_code(_step_source(rule, count, layout, slot_mask, pipe))
        try:
            graph = torch.compile(function, fullgraph=True, dynamic=False)
        except Exception as error:  # noqa: BLE001 - e.g. torch.compile unsupported here
            _fallback_warning(error)
            graph = None
        _GRAPHS[key] = graph
    return graph


def _fallback_warning(error) -> None:
    if not _warned[0]:
        _warned[0] = True
        warnings.warn(
            f"optimlab.torch: torch.compile failed ({type(error).__name__}: {error}); the "
            "compiled engine falls back to the torch-ops chain (engine='torch') for these "
            "tensors",
            RuntimeWarning,
            stacklevel=4,
        )


def _numbers_dtype(device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class Batch:
    """The tensors of one group's step that the compiled engine updates, gathered during the
    group's loop and run by :meth:`flush` in chunks of up to :data:`CHUNK` tensors of one
    device, dtype, shape and flag set.

    ``pipe``: ``(loss_scale, maximize, l2, decoupled_wdlr, decay_form)`` of the group, as
    :func:`optimlab.torch._ops.apply` takes them; ``forced``: ``engine="compiled"`` (every
    dense tensor), else ``"auto"`` (float16/bfloat16 on the CPU, anything on another device).
    """

    __slots__ = ("rule", "forced", "pipe_flags", "pipe_numbers", "pending", "last")

    def __init__(self, rule, pipe, forced: bool) -> None:
        loss_scale, maximize, l2, decoupled_wdlr, decay_form = pipe
        decay = None if decoupled_wdlr is None else decay_form
        self.rule = rule
        self.forced = forced
        self.pipe_flags = (loss_scale is not None, bool(maximize), l2 is not None, decay)
        numbers = [] if loss_scale is None else [float(loss_scale)]
        if l2 is not None:
            numbers.append(float(l2))
        if decay == "factor":
            numbers.append(1.0 - float(decoupled_wdlr))
        elif decay == "subtract":
            numbers.append(float(decoupled_wdlr))
        self.pipe_numbers = numbers
        self.pending: dict = {}
        self.last: tuple = (None, None)

    def add(self, p, g, slots, scalars) -> bool:
        """Take ``p`` (gradient ``g``, state ``slots``, the rule's ``scalars``) into the batch;
        False (and nothing taken) where the compiled engine does not update it."""
        if g.is_sparse or p.layout != _STRIDED or g.layout != _STRIDED:
            return False
        device, dtype = p.device, p.dtype
        if not self.forced and device.type == "cpu" and dtype not in AUTO_CPU_DTYPES:
            return False
        if g.dtype != dtype or g.device != device:
            return False
        strides = [g.stride()]
        for s in slots:
            if s is not None:
                if s.dtype != dtype or s.device != device:
                    return False  # a narrow or quantized state (state_dtype): the op chain's
                strides.append(s.stride())
        if scalars is self.last[0]:  # (the group's parameters at one step share the tuple)
            split = self.last[1]
        else:
            split = _scalar_layout(scalars)
            self.last = (scalars, split)
        if split is None:
            return False
        layout, numbers = split
        original = (p, g, slots, scalars)
        if p.is_complex():
            p, g = torch.view_as_real(p), torch.view_as_real(g)
            slots = [None if s is None else torch.view_as_real(s) for s in slots]
            strides = [g.stride(), *(s.stride() for s in slots if s is not None)]
        mask = tuple(s is not None for s in slots)
        kind = (device, p.dtype, layout, mask, p.shape, p.stride(), tuple(strides))
        self.pending.setdefault(kind, []).append((p, g, slots, numbers, original))
        return True

    def flush(self) -> list:
        """Run every pending chunk; returns ``(p, g, slots, scalars)`` of the tensors the
        compiled engine could not run (their graph failed to compile), for the op chain."""
        left = []
        for kind, items in self.pending.items():
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                if not self._run(kind, chunk):
                    left.extend(item[4] for item in chunk)
        self.pending = {}
        return left

    def _run(self, kind, chunk) -> bool:
        device = kind[0]
        mask = kind[3]
        layout = kind[2]
        key = (self.rule.__name__, len(chunk), self.pipe_flags, *kind)
        graph = _graph(key, self.rule, len(chunk), layout, mask, self.pipe_flags)
        if graph is None:
            return False
        rows = [item[3] + self.pipe_numbers for item in chunk]
        numbers = torch.tensor(rows, dtype=_numbers_dtype(device))
        if device.type != "cpu":
            numbers = numbers.to(device, non_blocking=True)
        params = [item[0] for item in chunk]
        grads = [item[1] for item in chunk]
        slots = [[item[2][j] for item in chunk] if on else None for j, on in enumerate(mask)]
        first = key not in COMPILE_SECONDS
        start = time.perf_counter()
        try:
            graph(params, grads, slots, numbers)
        except Exception as error:  # noqa: BLE001 - a compiler missing, a backend failing
            if not first:
                raise
            _GRAPHS[key] = None
            _fallback_warning(error)
            return False
        if first:
            COMPILE_SECONDS[key] = time.perf_counter() - start
        return True
