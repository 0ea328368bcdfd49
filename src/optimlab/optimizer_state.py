"""The state I/O of the optimizer runtime (:class:`StateIO`, a base of
:class:`optimlab.optimizer.Optimizer`): ``state_dict`` / ``load_state_dict`` (every field
checked, the whole state loaded into a fresh optimizer before it is adopted), files
(``save`` / ``load``), and Keras's ``variables`` / ``set_weights``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import schedules
from ._validation import (
    MAX_COUNT,
    check_bool,
    check_float,
    check_int,
    show,
)
from .optimizer_checks import (
    FLOAT_DTYPES,
    _as_list,
    _check_param,
    check_learning_rate,
)
from .quantization.state import is_narrow

if TYPE_CHECKING:  # the class that has StateIO as a base
    from .optimizer import Optimizer


class StateIO:
    """Everything that reads out or writes back an optimizer's state as a whole; a refused
    state or list of weights changes nothing."""

    #: Keras's order of an optimizer's slot variables: groups of slots, each group created
    #: per parameter in turn (``add_optimizer_variables(vars, ["momentum", "velocity"])``
    #: gives m_0, v_0, m_1, v_1, ...); default: one group per slot, in ``rule.SLOTS`` order
    keras_variable_groups: tuple[tuple[str, ...], ...] | None = None

    @property
    def variables(self) -> list[np.ndarray]:
        """Keras's ``optimizer.variables``: the optimizer's own state, as copies, in Keras's
        order::

            [iterations, learning_rate, EMA averages..., gradient accumulators..., slots...]

        ``iterations`` is a 0-d int64 array (the micro steps under gradient accumulation, as
        Keras counts them), ``learning_rate`` a 0-d float64 array present only while the
        learning rate is a number (a schedule or callable is not a variable, as in Keras),
        then per parameter its EMA average (``use_ema``) and its accumulator
        (``gradient_accumulation_steps``; it holds sum(g / k), where Keras's holds sum(g):
        the mean of finite gradients cannot overflow), the slots grouped as Keras creates them
        (:attr:`keras_variable_groups`; slots off under the current hyperparameters are
        absent), and last Nadam's momentum product (where steps are counted globally). The
        parameters themselves are :attr:`params`.
        :meth:`set_weights` writes such a list back."""
        return [value.copy() for _, value, _ in self._keras_variables()]

    @property
    def params(self) -> list[np.ndarray]:
        """The tracked parameters, in build order (the arrays themselves)."""
        return list(self._params)

    def _keras_variables(self) -> list[tuple[str, np.ndarray, Callable[[np.ndarray], None]]]:
        """(name, value, write back) of each of :attr:`variables`, in Keras's order."""
        k = self._config["gradient_accumulation_steps"] or 0
        out: list = [
            (
                "iterations",
                np.array(self._iterations * k + self._micro_step if k else self._iterations),
                self._set_keras_iterations,
            )
        ]
        if isinstance(self._learning_rate, float):
            out.append(
                ("learning_rate", np.array(self._learning_rate), self._set_keras_learning_rate)
            )
        if not self.built:
            return out
        for name, buffers in (("average", self._ema), ("gradient_accumulator", self._accumulators)):
            for i, buf in enumerate(buffers or ()):
                out.append((f"{name}/{i}", buf, _writer(buf)))
        names = [name for name, _ in self.rule.SLOTS]
        groups = self.keras_variable_groups or tuple((name,) for name in names)
        for group in groups:
            for i, buffers in enumerate(self._slots):
                for name in group:
                    buf = buffers[names.index(name)]
                    if is_narrow(buf):  # as float32 (Keras's variables hold the moments)
                        out.append((f"{name}/{i}", buf.dequantize(), buf.assign))
                    elif buf is not None:
                        out.append((f"{name}/{i}", buf, _writer(buf)))
        global_steps = len(self._step_state) == 1 and self._params
        if global_steps and "mu_product" in dict(getattr(self.rule, "STEP_STATE", ())):
            out.append(("u_product", np.array(self._step_state[0][0]), self._set_mu_product))
        return out

    def _set_keras_iterations(self, value: np.ndarray) -> None:
        k = self._config["gradient_accumulation_steps"] or 0
        count = int(value)
        self._iterations, self._micro_step = divmod(count, k) if k else (count, 0)
        if k:  # a parameter takes part in the next update if its accumulator holds anything
            self._accumulated = [
                bool(self._micro_step) and bool(np.any(a)) for a in self._accumulators
            ]

    def _set_keras_learning_rate(self, value: np.ndarray) -> None:
        self.learning_rate = float(value)

    def _set_mu_product(self, value: np.ndarray) -> None:
        self._step_state[0] = (float(value), *self._step_state[0][1:])

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Keras's ``set_weights``: write ``weights`` (one array per entry of
        :attr:`variables`, in that order) into the optimizer. The optimizer must be built.
        Every weight is checked first (the count, each shape, iterations an integer >= 0,
        the learning rate a finite number >= 0 within the parameters' dtype, slots real
        numbers their dtype holds); a refused list changes nothing."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Please call `optimizer.build(trainable_variables)` to create the optimizer "
                "weights before calling `set_weights()`."
            )
        weights = _as_list("weights", weights)
        targets = self._keras_variables()
        if len(weights) != len(targets):
            raise ValueError(
                f"weights must hold {len(targets)} arrays (this optimizer's variables: "
                f"{', '.join(name for name, _, _ in targets[:6])}"
                f"{', ...' if len(targets) > 6 else ''}), got {len(weights)}"
            )
        values = []
        for i, ((name, current, _), weight) in enumerate(zip(targets, weights, strict=True)):
            where = f"weights[{i}] ({name})"
            try:
                array = np.asarray(weight)
            except (TypeError, ValueError) as error:
                raise TypeError(f"{where} must be an array, got {show(weight)}: {error}") from None
            if array.shape != current.shape:
                raise ValueError(
                    f"Optimizer variable {i} ({name}) has shape {current.shape} not compatible "
                    f"with provided weight shape {array.shape}."
                )
            if array.dtype.kind not in "biuf":
                raise TypeError(f"{where} must hold real numbers, got dtype {array.dtype}")
            if name == "iterations":
                check_int(where, array.item(), 0, MAX_COUNT)
            elif name == "learning_rate":
                lr = check_learning_rate(
                    array.item(), self._preset, type(self).__name__, self.learning_rate_positive
                )
                self._check_in_dtype(self._config, lr, self._narrowest)
            elif name == "u_product":
                check_float(where, array.item())
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    cast = array.astype(current.dtype)
                if np.any(np.isfinite(array) & ~np.isfinite(cast)):
                    raise ValueError(
                        f"{where} holds values {current.dtype} cannot hold (largest "
                        f"{np.finfo(current.dtype).max:.3g}), got {show(weight)}"
                    )
                array = cast
            values.append(array)
        for (_, _, write), array in zip(targets, values, strict=True):
            write(array)
        self._plan = None

    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically: config, counters, learning rate
        (with a stateful schedule's state) and every state buffer, as copies."""
        slots = {}
        if self.built:
            for i, buffers in enumerate(self._slots):
                for (name, _), buf in zip(self.rule.SLOTS, buffers, strict=True):
                    if is_narrow(buf):  # its stored arrays, bit for bit: m/0, m.scales/0
                        for suffix, array in buf.arrays().items():
                            slots[f"{name}{suffix}/{i}"] = array.copy()
                    elif buf is not None:
                        slots[f"{name}/{i}"] = buf.copy()
        sched_state = None
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            sched_state = self._learning_rate.state_dict()
        return {
            "optimizer": type(self).__name__,
            "config": self._config_dict(allow_callables=True),
            "iterations": self.iterations,
            "skipped_steps": self.skipped_steps,
            "micro_step": self._micro_step,
            "num_params": len(self._params),
            "shapes": [list(p.shape) for p in self._params],
            "dtypes": [p.dtype.str for p in self._params],
            "param_steps": list(self._param_steps),
            "step_state": [list(s) for s in self._step_state],
            "schedule_state": sched_state,
            "slots": slots,
            "accumulators": None
            if self._accumulators is None
            else [a.copy() for a in self._accumulators],
            "accumulated": list(self._accumulated),
            "ema": None if self._ema is None else [a.copy() for a in self._ema],
        }

    def load_state_dict(self, state: dict, params: Sequence[np.ndarray] | None = None) -> None:
        """Restore :meth:`state_dict`'s output. The optimizer must be built (pass ``params`` to
        build it now). The saved configuration (preset, engine, hyperparameters, learning
        rate) replaces the optimizer's. Every field is checked, and the whole state is loaded
        into a fresh optimizer first: a refused state leaves this one exactly as it was."""
        self._adopt_probe(self._loaded_probe(state, params), params)

    def _adopt_probe(self, probe: Optimizer, params: Sequence[np.ndarray] | None) -> None:
        """Become ``probe`` (from :meth:`_loaded_probe`), which raises nothing: a wrapper
        that loads several optimizers checks every state first, then adopts each."""
        groups = self._group_options if params is None else {}
        self.__dict__.update(probe.__dict__)  # adopt everything at once
        self.__dict__.update(
            _group_options=groups,
            _fused_key=None,
            _power_dtype_memo=(None, None),
            _hyper_memo=None,
            _plan=None,
        )

    _STATE_KEYS = (
        "optimizer",
        "config",
        "iterations",
        "skipped_steps",
        "micro_step",
        "num_params",
        "shapes",
        "dtypes",
        "param_steps",
        "step_state",
        "schedule_state",
        "slots",
        "accumulators",
        "accumulated",
        "ema",
    )

    def _loaded_probe(self, state: Any, params: Sequence[np.ndarray] | None) -> Optimizer:
        """A new optimizer of this class with ``state`` loaded, every field validated."""
        kind = type(self).__name__
        if not isinstance(state, dict):
            raise TypeError(
                f"state must be a dict produced by {kind}.state_dict(), got {show(state)} of "
                f"type {type(state).__name__}"
            )
        missing = [k for k in self._STATE_KEYS if k not in state]
        unknown = sorted(show(k) for k in state if k not in self._STATE_KEYS)
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
        n = check_int("state['num_params']", state["num_params"], 0, MAX_COUNT)
        if params is not None:
            if self.built:
                raise ValueError("the optimizer is already built; call load_state_dict(state)")
            plist = _as_list("params", params, arrays=True)
        elif not self.built and n:
            raise ValueError(
                "the optimizer is not built: pass its parameters, "
                "optimizer.load_state_dict(state, params)"
            )
        else:
            plist = list(self._params)
        if len(plist) != n:
            raise ValueError(
                f"state['num_params'] is {n}: the state holds {n} parameters, the optimizer "
                f"has {len(plist)}"
            )

        config = state["config"]
        if not isinstance(config, dict):
            raise TypeError(f"state['config'] must be a dict from get_config(), got {show(config)}")
        config = dict(config)
        # the storage is this optimizer's own choice: a state saved with another converts
        config["state_dtype"] = self._state_dtype
        if isinstance(config.get("learning_rate"), schedules.LearningRateSchedule):
            config["learning_rate"] = copy.deepcopy(config["learning_rate"])  # not shared
        probe = type(self).from_config(config)  # validates every value
        lacking = sorted(set(probe._config_dict(allow_callables=True)) - set(config))
        if lacking:
            raise ValueError(
                f"state['config'] lacks {lacking}: a state_dict() holds every argument"
            )

        shapes = _list_field(state, "shapes", n)
        dtypes = _list_field(state, "dtypes", n)
        for i, p in enumerate(plist):
            _check_param(p, i)
            shape = _shape_field(f"state['shapes'][{i}]", shapes[i])
            if not (isinstance(dtypes[i], str) and dtypes[i] in {d.str for d in FLOAT_DTYPES}):
                raise ValueError(
                    f"state['dtypes'][{i}] must be one of "
                    f"{', '.join(repr(d.str) for d in FLOAT_DTYPES)}, got {show(dtypes[i])}"
                )
            if p.shape != shape or p.dtype.str != dtypes[i]:
                raise ValueError(
                    f"parameter {i} has shape {p.shape} and dtype {p.dtype}, the state was saved "
                    f"for shape {shape} and dtype {np.dtype(dtypes[i])}"
                )
        if n:
            probe.build(plist)  # checks the parameters (aliasing, dtype limits) once more

        slots = state["slots"]
        if not isinstance(slots, dict):
            raise TypeError(f"state['slots'] must be a dict name/index -> array, got {show(slots)}")
        targets = {}
        for i, buffers in enumerate(probe._slots):
            for (name, _), buf in zip(probe.rule.SLOTS, buffers, strict=True):
                if buf is not None:
                    targets[f"{name}/{i}"] = buf
        slots = _slot_values(slots, targets, probe.rule)
        if set(slots) != set(targets):
            raise ValueError(
                f"state['slots'] do not match the optimizer's buffers: missing "
                f"{sorted(set(targets) - set(slots))}, unexpected "
                f"[{', '.join(sorted(show(k) for k in slots if k not in targets))}]"
            )
        for key, buf in targets.items():
            value = slots[key]
            if isinstance(value, NarrowSaved):  # the same storage: its arrays, bit for bit
                for suffix, target in buf.arrays().items():
                    where = f"state['slots'][{value.key(suffix)!r}]"
                    target[...] = _array_field(where, value.arrays[suffix], target)
            elif is_narrow(buf):  # a float32 (or other narrow) state: requantized
                like = np.empty(buf.shape, np.float32)
                buf.assign(_array_field(f"state['slots'][{key!r}]", value, like))
            else:
                buf[...] = _array_field(f"state['slots'][{key!r}]", value, buf)
        for what, buffers in (("accumulators", probe._accumulators), ("ema", probe._ema)):
            saved = state[what]
            if (saved is None) != (buffers is None):
                raise ValueError(
                    f"state['{what}'] is {'None' if saved is None else 'present'}, but the "
                    f"saved configuration {'keeps' if buffers is not None else 'has no'} {what}"
                )
            if buffers is not None:
                saved = _list_field(state, what, n)
                for i, buf in enumerate(buffers):
                    buf[...] = _array_field(f"state['{what}'][{i}]", saved[i], buf)

        k = probe._config["gradient_accumulation_steps"]
        probe._iterations = check_int("state['iterations']", state["iterations"], 0, MAX_COUNT)
        probe._skipped_steps = check_int(
            "state['skipped_steps']", state["skipped_steps"], 0, MAX_COUNT
        )
        probe._micro_step = check_int("state['micro_step']", state["micro_step"], 0, (k or 1) - 1)
        probe._param_steps = [
            check_int(f"state['param_steps'][{i}]", s, 0, MAX_COUNT)
            for i, s in enumerate(_list_field(state, "param_steps", n))
        ]
        width = len(getattr(probe.rule, "STEP_STATE", ()))
        probe._step_state = [
            tuple(
                check_float(f"state['step_state'][{i}][{j}]", x)
                for j, x in enumerate(_sequence(f"state['step_state'][{i}]", entry, width))
            )
            for i, entry in enumerate(_list_field(state, "step_state", len(probe._step_state)))
        ]
        accumulated = state["accumulated"]
        if k:
            probe._accumulated = [
                check_bool(f"state['accumulated'][{i}]", x)
                for i, x in enumerate(_list_field(state, "accumulated", n))
            ]
        elif not (
            accumulated is None or (isinstance(accumulated, list | tuple) and not accumulated)
        ):
            raise ValueError(
                f"state['accumulated'] must be [] without gradient accumulation, got "
                f"{show(accumulated)}"
            )

        # Last, as it is the only step that touches an object the caller may hold: a schedule.
        sched_state = state["schedule_state"]
        lr = probe._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            if sched_state is not None:
                try:
                    lr.load_state_dict(sched_state)
                except (TypeError, ValueError) as error:
                    raise type(error)(f"state['schedule_state']: {error}") from None
        elif not (sched_state is None or (isinstance(sched_state, dict) and not sched_state)):
            raise ValueError(
                f"state['schedule_state'] must be None when the learning rate is not a "
                f"schedule, got {show(sched_state)}"
            )
        return probe

    def save(self, path, params: Sequence[np.ndarray] | None = None) -> None:
        """Write the optimizer state (and, if given, the parameters) to ``path`` atomically,
        without pickle; see :func:`optimlab.checkpoint.save`."""
        from . import checkpoint

        checkpoint.save(path, self, params=params)

    def load(self, path, params: Sequence[np.ndarray] | None = None) -> None:
        """Restore the state written by :meth:`save` (verified before anything changes)."""
        from . import checkpoint

        checkpoint.restore(path, self, params=params)


class NarrowSaved:
    """The saved arrays of one narrow slot (``m/0`` and ``m.scales/0``), matched to a narrow
    buffer of the same kind: loaded bit for bit."""

    def __init__(self, name: str, index: str, arrays: dict) -> None:
        self.name, self.index, self.arrays = name, index, arrays

    def key(self, suffix: str) -> str:
        return f"{self.name}{suffix}/{self.index}"


def _slot_values(saved: dict, targets: dict, rule) -> dict:
    """``state['slots']`` by the keys of ``targets`` (``name/i``): a plain array, a
    :class:`NarrowSaved` where the saved slot and the buffer are stored alike (int8 or int4
    codes with their ``.scales``, or bfloat16 bits), or the saved narrow slot dequantized to
    float32 where they differ (an int8 state loading into a float32 or bfloat16 optimizer)."""
    from .quantization import state as narrow

    out = dict(saved)
    for key, buf in targets.items():
        name, index = key.rsplit("/", 1)
        scales_key = f"{name}.scales/{index}"
        value = saved.get(key)
        kind = None
        if scales_key in saved:  # blockwise codes: int8 one an element, int4 two a byte
            kind = "int8" if np.size(value) == int(np.prod(buf.shape, dtype=np.int64)) else "int4"
        if kind is None and isinstance(value, np.ndarray) and value.dtype == np.uint16:
            kind = "bfloat16"
        if kind is None:
            continue
        out.pop(scales_key, None)
        if is_narrow(buf) and buf.kind == kind:
            arrays = (
                {"": value} if kind == "bfloat16" else {"": value, ".scales": saved[scales_key]}
            )
            out[key] = NarrowSaved(name, index, arrays)
            continue
        signed = getattr(rule, "QUANTIZED_SLOTS", {}).get(name) == "signed"
        stored = narrow.new_state(kind, np.shape(value) if kind != "int4" else buf.shape, signed)
        for suffix, target in stored.arrays().items():
            part = value if suffix == "" else saved[scales_key]
            target[...] = _array_field(
                f"state['slots'][{name + suffix + '/' + index!r}]", part, target
            )
        out[key] = stored.dequantize()
    return out


def _writer(buffer: np.ndarray) -> Callable[[np.ndarray], None]:
    """Write a value into ``buffer`` in place (its identity, and every view of it, kept)."""

    def write(value: np.ndarray) -> None:
        buffer[...] = value

    return write


def _sequence(name: str, value: Any, length: int) -> list:
    """A list or tuple of exactly ``length`` items (a loaded field), as a list."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of {length} items, got {show(value)}")
    if len(value) != length:
        raise ValueError(f"{name} must have {length} items, got {len(value)}: {show(value)}")
    return list(value)


def _list_field(state: dict, key: str, length: int) -> list:
    return _sequence(f"state[{key!r}]", state[key], length)


def _shape_field(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of integers >= 0 (a shape), got {show(value)}")
    return tuple(check_int(f"{name}[{j}]", x, 0, MAX_COUNT) for j, x in enumerate(value))


def _array_field(name: str, value: Any, like: np.ndarray) -> np.ndarray:
    """A loaded state buffer: an array of exactly ``like``'s shape and dtype."""
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and the like
        arr = None
    if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
        got = "not an array" if arr is None else f"shape {arr.shape} and dtype {arr.dtype}"
        raise ValueError(f"{name} must have shape {like.shape} and dtype {like.dtype}, got {got}")
    return arr
