"""The world a refused call must leave unchanged, as one snapshot, and the helpers every
hostile test uses: ``refuses`` (a refusal: its type, a message naming the argument, showing the
value and stating the valid range, and an unchanged world) and ``accepted`` (an accepted input
counts too).

A snapshot holds, for every thing passed in: an array's bytes, shape, dtype and flags; an
optimizer's configuration, learning rate, counters (iterations, skipped_steps, the micro step),
built parameters (by identity), every state buffer (slots, accumulators, EMA: their bytes read
from the optimizer's own arrays, not from copies), step state, per-parameter steps and group
options; a wrapper's own fields and its optimizers'; a Params' flat data and gradient buffers;
a schedule's configuration and state; a path's files (name -> bytes, recursively). Two
snapshots are equal when nothing changed.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optimlab as ol
from optimlab import schedules

#: cases executed in this process, by outcome ("refused", "accepted"): read by conftest.py
CASES: Counter = Counter()


def _array(a: np.ndarray) -> tuple:
    return ("array", type(a).__name__, a.shape, a.dtype.str, a.flags.writeable, a.tobytes())


def _value(x: Any) -> Any:
    """Plain data for equality: arrays as bytes, containers recursively, objects by repr."""
    if isinstance(x, np.ndarray):
        return _array(x)
    if isinstance(x, dict):
        return ("dict", tuple((repr(k), _value(v)) for k, v in x.items()))
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(_value(v) for v in x))
    if isinstance(x, float) and math.isnan(x):
        return ("nan",)
    if isinstance(x, schedules.LearningRateSchedule):
        return ("schedule", repr(x), _value(x.state_dict()))
    if x is None or isinstance(x, bool | int | float | str):
        return x
    return ("object", id(x), type(x).__name__)


def _optimizer(opt: ol.Optimizer) -> tuple:
    d = opt.__dict__
    try:
        lr = opt.learning_rate
    except Exception as exc:  # a schedule that fails: its failure is part of the world
        lr = ("raises", type(exc).__name__)
    return (
        "optimizer",
        type(opt).__name__,
        _value(dict(d["_config"])),
        _value(d["_learning_rate"]),
        _value(lr),
        opt.name,
        opt.preset,
        opt.engine,
        opt.iterations,
        opt.skipped_steps,
        d["_micro_step"],
        opt.built,
        tuple(id(p) for p in d["_params"]),
        _value(d["_slots"]),
        _value(d["_accumulators"]),
        _value(d["_accumulated"]),
        _value(d["_ema"]),
        _value(d["_step_state"]),
        _value(d["_param_steps"]),
        _value(d["_group_options"]),
        sorted(k for k in d if not k.startswith("_")),
    )


def _wrapper(w: Any) -> tuple:
    """A LossScaleOptimizer or MultiOptimizer: its own fields and its optimizers'."""
    d = w.__dict__
    own = tuple(
        (k, _value(v.item() if isinstance(v, np.generic) else v))
        for k, v in sorted(d.items())
        if k not in _WRAPPED
    )
    if isinstance(w, ol.LossScaleOptimizer):
        return ("loss scale", own, snapshot(w.inner_optimizer))
    return (
        "multi",
        own,
        _value(
            list(d["_optimizer_map"]) if isinstance(d["_optimizer_map"], ol.OptimizerMap) else None
        ),
        snapshot(*d["_inner_optimizers"]),
    )


#: a wrapper's fields snapshot() takes apart (the optimizers inside, and the map)
_WRAPPED = {"inner_optimizer", "_inner_optimizers", "_optimizer_map", "_index"}


def _files(path: Path) -> tuple:
    if path.is_file():
        return ("file", path.name, path.read_bytes())
    if path.is_dir():
        return (
            "dir",
            tuple(
                (str(p.relative_to(path)), p.read_bytes() if p.is_file() else None)
                for p in sorted(path.rglob("*"))
            ),
        )
    return ("missing", str(path))


def snapshot(*things: Any) -> tuple:
    """The state of ``things`` (optimizers, arrays, lists of arrays, Params, schedules, EWMAs,
    paths) as plain data."""
    out = []
    for thing in things:
        if isinstance(thing, ol.Optimizer):
            out.append(_optimizer(thing))
        elif isinstance(thing, ol.LossScaleOptimizer | ol.MultiOptimizer):
            out.append(_wrapper(thing))
        elif isinstance(thing, ol.OptimizerMap):
            out.append(("map", _value(dict(thing._optimizer_map)), id(thing.default_optimizer)))
        elif isinstance(thing, ol.Params):
            out.append(("params", _array(thing.data), _array(thing.grad), len(thing.groups)))
        elif isinstance(thing, np.ndarray):
            out.append(_array(thing))
        elif isinstance(thing, schedules.LearningRateSchedule):
            out.append(_value(thing) + (_value(thing.get_config()),))
        elif isinstance(thing, ol.EWMA):
            out.append(("ewma", _value(thing.state_dict())))
        elif isinstance(thing, Path | os.PathLike):
            out.append(_files(Path(thing)))
        elif isinstance(thing, list | tuple):
            out.append(snapshot(*thing))
        else:
            raise TypeError(f"snapshot does not know {type(thing).__name__}")
    return tuple(out)


def assert_same(before: tuple, after: tuple) -> None:
    """Equal snapshots, or a failure naming the first thing that changed."""
    if before == after:
        return
    for k, (b, a) in enumerate(zip(before, after, strict=True)):
        if b != a:
            fields = [i for i, (x, y) in enumerate(zip(b, a, strict=False)) if x != y]
            pytest.fail(
                f"thing {k} ({b[0]}) changed in field(s) {fields}: a refused call changed it"
            )
    pytest.fail("the world changed")  # pragma: no cover


def shown(value: Any) -> str:
    """A fragment of ``value`` that a message showing it must contain (computed here, not by
    the library: a huge integer by its exponent, others by the start of their repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**64:
        return f"e+{math.floor(math.log10(abs(value)))}"
    text = repr(value)
    return text[:40]


def refuses(
    call,
    *,
    world: tuple = (),
    exc: type | tuple = (ValueError, TypeError),
    says: tuple[str, ...] = (),
) -> BaseException:
    """``call()`` must raise ``exc`` (never a bare OverflowError, RecursionError, KeyError...),
    with every fragment of ``says`` in its message, and leave ``world`` unchanged."""
    before = snapshot(*world)
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for fragment in says:
        assert fragment in message, f"{fragment!r} not in the message {message!r}"
    assert_same(before, snapshot(*world))
    CASES["refused"] += 1
    return info.value


def accepted() -> None:
    """Count one accepted case (its checks are the test's own)."""
    CASES["accepted"] += 1
