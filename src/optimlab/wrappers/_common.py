"""What both wrappers share: :class:`Parameter` (a named array, as a map or selector sees it),
the forms their calls take (pairs, two lists, names), the checks of their states and weights,
and their files (a nested state in one checkpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validation import show
from ..optimizer_checks import _as_list, _check_param


class Parameter:
    """A named parameter as an :class:`OptimizerMap` or a selector sees it (Keras's variable):
    ``path`` (the full name, e.g. ``"dense/kernel"``), ``name`` (its last part after ``/``),
    ``value`` (the array itself), ``shape``, ``ndim``, ``dtype``."""

    __slots__ = ("path", "value")

    def __init__(self, path: str, value: np.ndarray) -> None:
        self.path = path
        self.value = value

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def __repr__(self) -> str:
        return f"Parameter({self.path!r}, shape={self.shape}, dtype={self.dtype})"


def _pairs(grads_and_vars: Any) -> list[tuple[Any, Any]]:
    pairs = []
    for k, pair in enumerate(_as_list("grads_and_vars", grads_and_vars)):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(
                f"grads_and_vars item {k} must be a (gradient, parameter) pair, got {show(pair)}"
            )
        pairs.append((pair[0], pair[1]))
    return pairs


def _grads_params(grads: Any, params: Any, built_params: list) -> list[tuple[Any, Any]]:
    """``apply``'s pairs: ``params`` default to the parameters of the build."""
    grads = _as_list("grads", grads)
    if params is None:
        if not built_params and not grads:
            return []
        if not built_params:
            raise ValueError("params must be given on the first call (nothing is built yet)")
        params = built_params
    params = _as_list("params", params, arrays=True)
    if len(grads) != len(params):
        raise ValueError(
            f"got {len(grads)} gradients for {len(params)} parameters; there must be exactly "
            "one gradient per parameter"
        )
    return list(zip(grads, params, strict=True))


def _named(params: Any, names: Any) -> tuple[list[np.ndarray], list[str]]:
    """(arrays, names) of a build: a mapping name -> array, or a list of arrays with
    ``names`` (default: each one's place in the list, ``"0"``, ``"1"``, ...)."""
    if isinstance(params, Mapping):
        if names is not None:
            raise TypeError(
                "names go with a list of arrays; a mapping name -> array already names them"
            )
        names = list(params.keys())
        arrays = list(params.values())
    else:
        arrays = _as_list("params", params, arrays=True)
        if names is None:
            names = [str(k) for k in range(len(arrays))]
        else:
            names = _as_list("names", names)
            if len(names) != len(arrays):
                raise ValueError(
                    f"names has {len(names)} entries for {len(arrays)} parameters; give one "
                    "name per parameter"
                )
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"the name of parameter {k} must be a string, got {show(name)}")
        if name in seen:
            raise ValueError(
                f"parameters {seen[name]} and {k} are both named {name!r}; names must be distinct"
            )
        seen[name] = k
    for k, p in enumerate(arrays):
        _check_param(p, k)
    return arrays, names


_NAMES_NEED_MULTI = (
    "names go with a MultiOptimizer (it routes parameters by name); this optimizer takes the "
    "arrays alone"
)


def _check_keys(state: Any, keys: tuple, kind: str) -> None:
    if not isinstance(state, dict):
        raise TypeError(
            f"state must be a dict produced by {kind}.state_dict(), got {show(state)} of type "
            f"{type(state).__name__}"
        )
    missing = [k for k in keys if k not in state]
    unknown = sorted(show(k) for k in state if k not in keys)
    if missing or unknown:
        raise ValueError(
            f"state must have exactly the keys of {kind}.state_dict(): missing {missing}, "
            f"unexpected [{', '.join(unknown)}]"
        )
    if state["optimizer"] != kind:
        raise ValueError(
            f"state['optimizer'] is {show(state['optimizer'])}: the state was saved by "
            f"{show(state['optimizer'])}, cannot load into {kind}"
        )


def _scalar_weight(i: int, name: str, weight: Any) -> Any:
    try:
        array = np.asarray(weight)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"weights[{i}] ({name}) must be an array, got {show(weight)}: {error}"
        ) from None
    if array.shape != () or array.dtype.kind not in "iuf":
        raise ValueError(
            f"weights[{i}] ({name}) must be a 0-d array of a real number, got {show(weight)}"
        )
    return array.item()


# ---------------------------------------------------------------------------------------------
# files: a wrapper's nested state in one checkpoint (arrays as members, the rest as JSON)
# ---------------------------------------------------------------------------------------------

_ARRAY = "__array__"


def _flatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``obj`` as JSON data, each array replaced by ``{"__array__": its member's key}``."""
    if isinstance(obj, np.ndarray):
        key = f"a.{len(arrays)}"
        arrays[key] = obj
        return {_ARRAY: key}
    if isinstance(obj, dict):
        return {str(k): _flatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_flatten(v, arrays) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(
        f"{show(obj)} in the optimizer's state cannot be saved (a plain callable learning "
        "rate?); use a schedule from optimlab.schedules or a float"
    )


def _unflatten(obj: Any, arrays: dict[str, np.ndarray], used: set[str], where: str) -> Any:
    from ..checkpoint import CheckpointError

    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            key = obj[_ARRAY]
            if not (isinstance(key, str) and key in arrays) or key in used:
                raise CheckpointError(f"{where}: {show(key)} names no array of the file, or twice")
            used.add(key)
            return arrays[key]
        return {k: _unflatten(v, arrays, used, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays, used, where) for v in obj]
    return obj


def _save(wrapper: Any, path: Any, params: Any) -> None:
    from .. import checkpoint

    arrays: dict[str, np.ndarray] = {}
    state = _flatten(wrapper.state_dict(), arrays)
    params = [] if params is None else _as_list("params", params, arrays=True)
    for i, p in enumerate(params):
        _check_param(p, i)
        arrays[f"param.{i}"] = np.asarray(p)
    meta = {"kind": type(wrapper).__name__, "state": state, "num_saved_params": len(params)}
    checkpoint.save_arrays(path, arrays, meta)


def _load(wrapper: Any, path: Any, params: Any, names: Any) -> None:
    import os

    from .. import checkpoint

    arrays, meta = checkpoint.load_arrays(path)
    kind = type(wrapper).__name__
    where = f"checkpoint {os.fspath(path)!r}"
    if meta.get("kind") != kind:
        raise checkpoint.CheckpointError(
            f"{where} holds a {show(meta.get('kind'))}, not a {kind} (its save())"
        )
    n = meta.get("num_saved_params")
    if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= len(arrays)):
        raise checkpoint.CheckpointError(f"{where}: num_saved_params is {show(n)}")
    used = {f"param.{i}" for i in range(n)}
    if not used <= set(arrays):
        raise checkpoint.CheckpointError(f"{where} lacks some of its {n} saved parameters")
    state = _unflatten(meta.get("state"), arrays, used, where)
    if set(arrays) - used:
        raise checkpoint.CheckpointError(f"{where} has unnamed arrays {sorted(set(arrays) - used)}")
    saved = [arrays[f"param.{i}"] for i in range(n)]
    targets = None if params is None else _named(params, names)[0]
    if targets is not None and n:
        if len(targets) != n:
            raise ValueError(f"checkpoint holds {n} parameters, got {len(targets)}")
        for i, (src, dst) in enumerate(zip(saved, targets, strict=True)):
            if src.shape != dst.shape or src.dtype != dst.dtype:
                raise ValueError(
                    f"parameter {i}: checkpoint has shape {src.shape} {src.dtype}, the target "
                    f"{dst.shape} {dst.dtype}"
                )
    build_with = params if (params is not None and not wrapper.built) else None
    extra = {} if names is None else {"names": names}
    wrapper.load_state_dict(state, build_with, **extra)
    if targets is not None and n:
        for src, dst in zip(saved, targets, strict=True):
            dst[...] = src
