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
a cache line). The gaps are no parameter's: ``params.data``'s stay zero as long as the
gradient's do, and a step that takes the full path (the first one; norm clipping, gradient
accumulation and the reference engine always do) zeroes the gradient's gaps, so that a write
to the whole of ``params.grad`` never reaches a norm or a parameter.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ._validation import check_float, check_in_dtype, real_array, show

DEFAULT_GROUP = "default"


class UnknownNameError(KeyError, ValueError):
    """A name that is not a parameter (a ``KeyError`` for lookups, a ``ValueError`` for the
    arguments that name it); ``str()`` is the plain message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


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
        except (KeyError, TypeError):  # TypeError: an unhashable name
            raise UnknownNameError(
                f"no parameter named {show(name)}; have {sorted(self._views)}"
            ) from None

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
            raise TypeError(f"arrays must be a non-empty mapping name -> array, got {show(arrays)}")
        values = _named_values(arrays)
        if dtype is None:
            dtype = np.result_type(*values.values(), np.float32)
        given = dtype
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {show(given)}")
        try:
            step_bytes = None if isinstance(align, bool) else operator.index(align)
        except TypeError:
            step_bytes = None
        if step_bytes is None or step_bytes < dtype.itemsize or step_bytes & (step_bytes - 1):
            raise ValueError(
                f"align must be a power of two >= {dtype.itemsize} bytes, got {show(align)}"
            )
        align = step_bytes
        for name, value in values.items():
            _check_castable(name, value, dtype)
        membership, options = _parse_groups(groups, values, dtype)

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
        # the padding between arrays (no parameter's): a step clears it in the gradient
        padding = np.ones(total, dtype=bool)
        for seg in segments:
            padding[seg.offset : seg.offset + seg.size] = False
        self._gaps = np.flatnonzero(padding)
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


def _named_values(arrays: Mapping) -> dict[str, np.ndarray]:
    """name -> array of the ``arrays`` argument; keys are made strings, and two keys that
    become the same string (``1`` and ``"1"``) are refused rather than one array dropped."""
    values: dict[str, np.ndarray] = {}
    originals: dict[str, object] = {}
    for key, value in arrays.items():
        name = str(key)
        if name in values:
            raise ValueError(
                f"arrays has the keys {show(originals[name])} and {show(key)}, which both name "
                f"the parameter {name!r}; parameter names must be distinct as strings"
            )
        arr, kind = real_array(value)
        if arr is None:
            raise TypeError(
                f"arrays[{name!r}] must be an array of real numbers (integers or floats), got "
                f"{show(value)} ({kind})"
            )
        values[name] = arr
        originals[name] = key
    return values


def _check_castable(name: str, value: np.ndarray, dtype: np.dtype) -> None:
    """Refuse finite values that become Inf in ``dtype`` (1e300 in float32)."""
    if value.dtype.kind == "f" and value.dtype.itemsize > dtype.itemsize and value.size:
        limit = float(np.finfo(dtype).max)
        with np.errstate(invalid="ignore"):
            big = np.abs(value) > limit
        if np.any(big & np.isfinite(value)):
            raise ValueError(
                f"arrays[{name!r}] holds {float(value[big].flat[0])!r}, which {dtype} cannot hold "
                f"(its values must be within +-{limit!r}, or pass dtype=np.float64)"
            )


def _group_option(group: str, spec: Mapping, key: str, dtype: np.dtype) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    name = f"groups[{group!r}][{key!r}]"
    x = check_float(name, value, 0.0)
    check_in_dtype(name, value, dtype)  # the message shows the value as given
    return x


def _parse_groups(groups, values, dtype):
    membership = dict.fromkeys(values, DEFAULT_GROUP)
    options = [(DEFAULT_GROUP, {})]
    if groups is None:
        return membership, options
    if not isinstance(groups, Mapping):
        raise TypeError(
            f"groups must be a mapping group name -> {{'params': [names], ...}}, got {show(groups)}"
        )
    seen: dict[str, object] = {DEFAULT_GROUP: DEFAULT_GROUP}
    for raw_name, spec in groups.items():
        group_name = str(raw_name)
        if group_name in seen:
            raise ValueError(
                f"groups has a group named {show(raw_name)}, but "
                + (
                    f"{DEFAULT_GROUP!r} is the group of the parameters in no group"
                    if group_name == DEFAULT_GROUP
                    else f"{show(seen[group_name])} names the same group"
                )
                + "; group names must be distinct strings"
            )
        seen[group_name] = raw_name
        if not isinstance(spec, Mapping) or "params" not in spec:
            raise TypeError(
                f"group {group_name!r} must be a mapping with a 'params' list, got {show(spec)}"
            )
        unknown = set(spec) - {"params", "lr_scale", "weight_decay"}
        if unknown:
            raise TypeError(
                f"group {group_name!r} has unknown option(s) {sorted(map(show, unknown))}; "
                "valid: params, lr_scale, weight_decay"
            )
        opts = {}
        for key in ("lr_scale", "weight_decay"):
            value = _group_option(group_name, spec, key, dtype)
            if value is not None:
                opts[key] = value
        names = spec["params"]
        if isinstance(names, str | bytes | Mapping) or not hasattr(names, "__iter__"):
            raise TypeError(
                f"groups[{group_name!r}]['params'] must be a list of parameter names, got "
                f"{show(names)}"
            )
        for raw in names:
            name = str(raw)
            if name not in membership:
                raise UnknownNameError(
                    f"group {group_name!r} names {show(raw)}, which is not a parameter; "
                    f"parameters: {sorted(membership)}"
                )
            if membership[name] == group_name:
                raise ValueError(f"group {group_name!r} names parameter {name!r} twice")
            if membership[name] != DEFAULT_GROUP:
                raise ValueError(
                    f"parameter {name!r} is in two groups, {membership[name]!r} and {group_name!r}"
                )
            membership[name] = group_name
        options.append((group_name, opts))
    return membership, options


def _aligned_zeros(n: int, dtype: np.dtype, align: int) -> np.ndarray:
    """A zeroed 1-D array of ``n`` elements whose first byte sits on an ``align`` boundary."""
    raw = np.zeros(n * dtype.itemsize + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + n * dtype.itemsize].view(dtype)
