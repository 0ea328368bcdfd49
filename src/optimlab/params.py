"""Params: a model's parameters in one contiguous, aligned buffer, with named views.

An optimizer step over many small arrays pays a fixed cost per array; over one flat buffer it
pays it once, and the fused engine then runs at the speed of one big array. ``Params`` keeps
every parameter as a view into one buffer (and every gradient as a view into a second one), so
the user still reads and writes ``params["w"]`` while ``optimizer.step(params)`` runs one kernel
per parameter group::

    params = ol.Params({"w": np.zeros((784, 10)), "b": np.zeros(10)}, dtype=np.float32,
                       groups={"no_decay": {"params": ["b"], "weight_decay": 0.0}})
    params.grads["w"][...] = dL_dw            # views: write gradients in place
    opt.step(params)                          # one pass per group over the flat buffers

Layout: parameters are ordered by group (so that each group is one contiguous range, the
*segment table*), then by insertion order; each starts at a multiple of ``align`` bytes (64:
a cache line), the gaps are zero and never change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class Segment:
    """One named parameter: its place in the flat buffer."""

    name: str
    offset: int
    size: int
    shape: tuple[int, ...]
    group: str


@dataclass(frozen=True)
class Group:
    """A contiguous range of the flat buffer with its own optimizer options.

    ``lr_scale`` multiplies the optimizer's learning rate (so schedules still apply);
    ``weight_decay`` replaces the optimizer's (None: the optimizer's own).
    """

    name: str
    offset: int
    length: int
    lr_scale: float = 1.0
    weight_decay: float | None = None


class _Views(Mapping):
    """Read-only mapping name -> view of a flat buffer."""

    def __init__(self, views: dict[str, np.ndarray]):
        self._views = views

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"no parameter named {name!r}; have {sorted(self._views)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


class Params(_Views):
    """Parameters held in one contiguous, aligned buffer, with named views (a read-only
    mapping name -> array view; write through the views).

    ``arrays``: name -> initial values (copied). ``dtype``: float32 or float64 (default: the
    arrays' common float type). ``groups``: group name -> ``{"params": [names], "lr_scale":
    float, "weight_decay": float}``; names in no group form the group ``"default"``.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        dtype=None,
        groups: Mapping[str, Mapping] | None = None,
        align: int = 64,
    ) -> None:
        if not isinstance(arrays, Mapping) or not arrays:
            raise TypeError("arrays must be a non-empty mapping name -> array")
        values = {str(k): np.asarray(v) for k, v in arrays.items()}
        if dtype is None:
            dtype = np.result_type(*values.values(), np.float32)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if not isinstance(align, int) or align < dtype.itemsize or align & (align - 1):
            raise ValueError(f"align must be a power of two >= {dtype.itemsize} bytes, got {align}")
        membership, options = _parse_groups(groups, values)

        rank = {group: k for k, (group, _) in enumerate(options)}
        order = sorted(values, key=lambda n: rank[membership[n]])  # stable: insertion order
        step = align // dtype.itemsize
        segments, offset = [], 0
        for name in order:
            offset = -(-offset // step) * step
            size = int(values[name].size)
            segments.append(Segment(name, offset, size, values[name].shape, membership[name]))
            offset += size
        total = -(-offset // step) * step

        self.dtype = dtype
        self.align = align
        self.data = _aligned_zeros(total, dtype, align)
        self.grad = _aligned_zeros(total, dtype, align)
        self.segments = tuple(segments)
        views, grad_views = {}, {}
        for seg in segments:
            views[seg.name] = self.data[seg.offset : seg.offset + seg.size].reshape(seg.shape)
            views[seg.name][...] = values[seg.name]
            grad_views[seg.name] = self.grad[seg.offset : seg.offset + seg.size].reshape(seg.shape)
        super().__init__({n: views[n] for n in values})  # the caller's order
        self.grads = _Views({n: grad_views[n] for n in values})

        table = []
        for group_name, opts in options:
            members = [s for s in segments if s.group == group_name]
            if not members:
                continue
            start = members[0].offset
            end = members[-1].offset + members[-1].size
            table.append(Group(group_name, start, end - start, **opts))
        self.groups = tuple(table)
        # stable view objects per group: the optimizer keys its state on them
        self._group_data = [self.data[g.offset : g.offset + g.length] for g in self.groups]
        self._group_grad = [self.grad[g.offset : g.offset + g.length] for g in self.groups]

    @property
    def size(self) -> int:
        """The number of parameters (padding excluded)."""
        return sum(s.size for s in self.segments)

    def zero_grad(self) -> None:
        """Set every gradient to 0 (one pass over the gradient buffer)."""
        self.grad[...] = 0

    def group_arrays(self) -> list[tuple[Group, np.ndarray, np.ndarray]]:
        """(group, its parameter range, its gradient range) per group: the same view objects on
        every call."""
        return list(zip(self.groups, self._group_data, self._group_grad, strict=True))

    def __repr__(self) -> str:
        return (
            f"Params({len(self)} arrays, {self.size} parameters, {self.dtype}, "
            f"groups={[g.name for g in self.groups]})"
        )


def _parse_groups(groups, values):
    membership = dict.fromkeys(values, DEFAULT_GROUP)
    options = [(DEFAULT_GROUP, {})]
    for group_name, spec in (groups or {}).items():
        if not isinstance(spec, Mapping) or "params" not in spec:
            raise TypeError(f"group {group_name!r} must be a mapping with a 'params' list")
        unknown = set(spec) - {"params", "lr_scale", "weight_decay"}
        if unknown:
            raise TypeError(
                f"group {group_name!r} has unknown option(s) {sorted(unknown)}; valid: "
                "params, lr_scale, weight_decay"
            )
        opts = {}
        if spec.get("lr_scale") is not None:
            lr_scale = float(spec["lr_scale"])
            if not np.isfinite(lr_scale) or lr_scale < 0:
                raise ValueError(f"lr_scale of group {group_name!r} must be >= 0, got {lr_scale}")
            opts["lr_scale"] = lr_scale
        if spec.get("weight_decay") is not None:
            wd = float(spec["weight_decay"])
            if not np.isfinite(wd) or wd < 0:
                raise ValueError(f"weight_decay of group {group_name!r} must be >= 0, got {wd}")
            opts["weight_decay"] = wd
        for name in spec["params"]:
            if name not in membership:
                raise KeyError(f"group {group_name!r} names {name!r}, which is not a parameter")
            if membership[name] != DEFAULT_GROUP:
                raise ValueError(f"parameter {name!r} is in two groups")
            membership[name] = str(group_name)
        options.append((str(group_name), opts))
    return membership, options


def _aligned_zeros(n: int, dtype: np.dtype, align: int) -> np.ndarray:
    """A zeroed 1-D array of ``n`` elements whose first byte sits on an ``align`` boundary."""
    raw = np.zeros(n * dtype.itemsize + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + n * dtype.itemsize].view(dtype)
