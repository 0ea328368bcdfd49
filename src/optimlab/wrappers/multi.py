"""Keras 3's ``OptimizerMap`` and ``MultiOptimizer`` in the NumPy dialect: parameter names
(or regular expressions over them) to optimizers, each parameter updated by exactly one."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from .. import naming
from .._validation import MAX_COUNT, check_float, check_int, show
from ..optimizer import Optimizer, optional_positive
from ..optimizer_checks import _as_list, _check_param
from ..optimizer_pipeline import OWN_LOSS_SCALE
from ._common import (
    Parameter,
    _check_keys,
    _grads_params,
    _load,
    _named,
    _pairs,
    _save,
    _scalar_weight,
)


def _is_loss_scale(obj: Any) -> bool:
    """Whether ``obj`` is a LossScaleOptimizer (imported here: it imports this module)."""
    from .loss_scale import LossScaleOptimizer

    return isinstance(obj, LossScaleOptimizer)


def _check_map_optimizer(where: str, optimizer: Any) -> None:
    """Keras's checks of an optimizer put in an OptimizerMap (its ValueErrors and words)."""
    if _is_loss_scale(optimizer):
        raise ValueError("optimizer cannot be LossScaleOptimizer.")
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError("optimizer cannot be MultiOptimizer.")
    if not isinstance(optimizer, Optimizer):
        raise ValueError(
            f"optimizer must be a Keras Optimizer instance. Received: {show(optimizer)} "
            f"({where}: an optimlab optimizer, ol.SGD(), ol.Adam(), ...)"
        )


def _compiled(key: Any) -> None:
    if not isinstance(key, str):
        raise ValueError(f"key must be a string. Received: {show(key)}")
    try:
        re.compile(key)
    except re.error as error:
        raise ValueError(
            f"key {key!r} is not a regular expression ({error}); an OptimizerMap key is a "
            "parameter name or a pattern that re.fullmatch tries on every name (escape "
            "special characters with re.escape)"
        ) from None


class OptimizerMap(MutableMapping):
    """Parameter names (or regular expressions over them) -> optimizers, with a default for
    the names no key matches (Keras 3's ``keras.optimizers.OptimizerMap``)::

        map[name] = the optimizer of the key equal to name, if any;
                    else of the one key k with re.fullmatch(k, name);
                    more than one such key: ValueError; none: default_optimizer

    A key ``"encoder"`` matches only that name; ``"encoder/.*"`` every name under it.
    ``map(parameter)`` is ``map[parameter.path]``. ``default_optimizer=None`` (an optimlab
    extension; Keras requires one) makes a name that no key matches an error at the build.
    Keys are checked as regular expressions when set (Keras would fail at the first lookup).
    """

    def __init__(self, default_optimizer: Any, optimizer_map: Any = None) -> None:
        if default_optimizer is not None and not isinstance(default_optimizer, Optimizer):
            raise TypeError(
                "default_optimizer must be a Keras Optimizer instance (an optimlab optimizer, "
                f"or None for no default). Received: {show(default_optimizer)}"
            )
        if default_optimizer is not None:
            _check_map_optimizer("default_optimizer", default_optimizer)
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {show(optimizer_map)}")
        for key, optimizer in (optimizer_map or {}).items():
            _compiled(key)
            _check_map_optimizer(f"optimizer_map[{key!r}]", optimizer)
        self._default_optimizer = default_optimizer
        self._optimizer_map = dict(optimizer_map or {})

    @property
    def default_optimizer(self) -> Optimizer | None:
        return self._default_optimizer

    def matching_keys(self, key: str) -> list[str]:
        """The keys that decide ``key``'s optimizer: ``[key]`` if it is a key, else every key
        whose pattern matches all of it."""
        if key in self._optimizer_map:
            return [key]
        return [k for k in self._optimizer_map if re.fullmatch(k, key)]

    def __getitem__(self, key: str) -> Optimizer | None:
        if not isinstance(key, str):
            raise TypeError(f"an OptimizerMap is looked up by a name (a string), got {show(key)}")
        matching = self.matching_keys(key)
        if len(matching) > 1:
            raise ValueError(
                f"Multiple optimizers assigned to variable {key}. (keys "
                f"{', '.join(map(repr, matching))} all match it; each parameter must have "
                "exactly one optimizer)"
            )
        if matching:
            return self._optimizer_map[matching[0]]
        return self._default_optimizer

    def __setitem__(self, key: str, optimizer: Any) -> None:
        if isinstance(key, str) and key in self._optimizer_map:
            raise ValueError(
                f"'{key}' already exists in the OptimizerMap with value "
                f"{self._optimizer_map[key]}. Please make sure to not use duplicated keys."
            )
        _compiled(key)
        _check_map_optimizer(f"map[{key!r}]", optimizer)
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key: str) -> None:
        del self._optimizer_map[key]

    def __len__(self) -> int:
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, variable: Any) -> Optimizer | None:
        path = getattr(variable, "path", None)
        if not isinstance(path, str):
            raise TypeError(
                f"an OptimizerMap is called with a parameter that has a path (a Parameter), got "
                f"{show(variable)}; look a name up with map[name]"
            )
        return self[path]

    def get_config(self) -> dict:
        """The default and every key's optimizer, serialized (:func:`optimlab.serialize`)."""
        from ..optimizers import serialize

        default = self._default_optimizer
        return {
            "default_optimizer": None if default is None else serialize(default),
            "optimizer_map": {k: serialize(v) for k, v in self._optimizer_map.items()},
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> OptimizerMap:
        from ..optimizers import deserialize

        if not isinstance(config, Mapping) or "default_optimizer" not in config:
            raise ValueError(
                f"config must be a dict from OptimizerMap.get_config(), got {show(config)}"
            )
        default = config["default_optimizer"]
        table = config.get("optimizer_map") or {}
        if not isinstance(table, Mapping):
            raise ValueError(f"config['optimizer_map'] must be a dict, got {show(table)}")
        return cls(
            None if default is None else deserialize(default),
            {k: deserialize(v) for k, v in table.items()},
        )

    def __repr__(self) -> str:
        keys = ", ".join(f"{k!r}: {v.name}" for k, v in self._optimizer_map.items())
        default = getattr(self._default_optimizer, "name", None)
        return f"OptimizerMap(default_optimizer={default}, {{{keys}}})"


class MultiOptimizer:
    """Each parameter updated by exactly one of several optimizers, chosen by its name
    (Keras 3's ``keras.optimizers.MultiOptimizer``)::

        opt = ol.MultiOptimizer(ol.OptimizerMap(ol.AdamW(), {".*kernel": ol.Muon()}))
        opt.apply_gradients(zip(grads, params), names=["dense/kernel", "dense/bias"])

    ``optimizer_map``: an :class:`OptimizerMap`, or a callable ``Parameter -> optimizer``
    (Keras's selector; it sees ``path``, ``shape``, ``ndim``: ``lambda v: muon if v.ndim ==
    2 else adamw``), or one optimizer for every parameter. At the build each parameter goes
    to its optimizer, and each optimizer is built with its parameters (``optimizers`` lists
    them: the map's in order, then the default, then those a selector returns). One call
    updates every optimizer that has parameters, with their own learning rates, schedules
    and iterations; ``iterations`` counts the calls. Every optimizer's checks pass before any
    changes: a refused call changes nothing.

    ``loss_scale_factor`` replaces the sub-optimizers' own (Keras: it is set on each of them,
    None included); ``learning_rate`` is refused (each sub-optimizer has its own).
    """

    def __init__(
        self, optimizer_map: Any, loss_scale_factor: Any = None, name: str | None = None
    ) -> None:
        if _is_loss_scale(optimizer_map) or isinstance(optimizer_map, MultiOptimizer):
            kind = type(optimizer_map).__name__
            raise ValueError(f"{kind} cannot be used inside an MultiOptimizer.")
        if isinstance(optimizer_map, Optimizer):  # an optimlab extension: one for all
            optimizer_map = OptimizerMap(optimizer_map)
        if not callable(optimizer_map):
            raise TypeError(
                "optimizer_map must be an OptimizerMap, a callable Parameter -> optimizer, or "
                f"an optimizer, got {show(optimizer_map)} of type {type(optimizer_map).__name__}"
            )
        factor = optional_positive("loss_scale_factor", loss_scale_factor)
        subs: list[Optimizer] = []
        if isinstance(optimizer_map, OptimizerMap):  # (a wrapper in it is refused at the build)
            listed = [*optimizer_map.values(), optimizer_map.default_optimizer]
            listed = [o for o in listed if isinstance(o, Optimizer)]
            subs = [o for k, o in enumerate(listed) if _first(listed, o, k)]
        for sub in subs:  # each checks the factor against its dtype before any is changed
            sub._check_in_dtype({**sub._config, "loss_scale_factor": factor}, 0.0, sub._narrowest)
        self._optimizer_map = optimizer_map
        self._inner_optimizers = subs
        self.name = "" if name is None else str(name)
        self._loss_scale_factor = factor
        self._iterations = 0
        self._placeholder_lr = 0.0
        self._built = False
        self._params: list[np.ndarray] = []
        self._names: list[str] = []
        self._owner: list[int] = []  # index in optimizers of each parameter's optimizer
        self._index: dict[int, int] = {}  # id of a parameter -> its place in the build
        for sub in subs:
            sub.loss_scale_factor = factor
        if name is None:  # only once every check has passed: a refused call uses no name
            self.name = naming.auto_name("MultiOptimizer")

    # -- Keras's attributes -----------------------------------------------------------------

    @property
    def optimizers(self) -> list[Optimizer]:
        """The sub-optimizers (Keras's ``optimizers``)."""
        return list(self._inner_optimizers)

    @property
    def optimizer_map(self) -> Any:
        return self._optimizer_map

    @property
    def built(self) -> bool:
        return self._built

    @property
    def iterations(self) -> int:
        """The number of calls that updated (Keras counts them apart from the
        sub-optimizers' own)."""
        return self._iterations

    @property
    def params(self) -> list[np.ndarray]:
        """The parameters, in build order."""
        return list(self._params)

    @property
    def names(self) -> list[str]:
        """The parameters' names, in build order."""
        return list(self._names)

    def assignment(self) -> dict[str, Optimizer]:
        """name -> the optimizer that updates it."""
        return {n: self._inner_optimizers[i] for n, i in zip(self._names, self._owner, strict=True)}

    @property
    def learning_rate(self) -> Any:
        raise AttributeError(
            "Learning rate cannot be accessed on a MultiOptimizer. Access the learning rate on "
            "the individual sub-optimizers instead."
        )

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        raise AttributeError(
            "Learning rate cannot be set on a MultiOptimizer. Set the learning rate on the "
            "individual sub-optimizers instead."
        )

    @property
    def loss_scale_factor(self) -> float | None:
        return self._loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: Any) -> None:
        factor = optional_positive("loss_scale_factor", value)
        for sub in self._inner_optimizers:  # each checks it against its dtype first
            sub._check_in_dtype({**sub._config, "loss_scale_factor": factor}, 0.0, sub._narrowest)
        self._loss_scale_factor = factor
        for sub in self._inner_optimizers:
            sub.loss_scale_factor = factor

    def scale_loss(self, loss: Any) -> Any:
        """``loss * loss_scale_factor`` (``loss`` without one)."""
        factor = self._loss_scale_factor
        return loss if factor is None else loss * factor

    # -- the build --------------------------------------------------------------------------

    def _plan(self, arrays: list[np.ndarray], names: list[str]) -> dict:
        """Where every parameter goes, with every check of the build (nothing changes)."""
        if self._built:
            raise ValueError(f"{self.name} is already built with {len(self._params)} parameters")
        seen: dict[int, int] = {}
        for k, p in enumerate(arrays):
            if id(p) in seen:
                raise ValueError(f"parameters {seen[id(p)]} and {k} are the same array")
            seen[id(p)] = k
        subs = list(self._inner_optimizers)
        owner = []
        for name, p in zip(names, arrays, strict=True):
            opt = self._optimizer_map(Parameter(name, p))
            if opt is None and isinstance(self._optimizer_map, OptimizerMap):
                raise ValueError(
                    f"parameter {name!r} matches no key of the OptimizerMap "
                    f"({', '.join(map(repr, self._optimizer_map)) or 'none'}) and the map has "
                    "no default_optimizer; add a key for it or give a default"
                )
            if _is_loss_scale(opt):
                raise ValueError("LossScaleOptimizer cannot be used inside an MultiOptimizer.")
            if isinstance(opt, MultiOptimizer):
                raise ValueError("MultiOptimizer cannot be used inside an MultiOptimizer.")
            if not isinstance(opt, Optimizer):
                raise ValueError(
                    f"Optimizer for variable {name!r} is not an Optimizer instance (the "
                    f"selector returned {show(opt)})."
                )
            index = next((i for i, s in enumerate(subs) if s is opt), None)
            if index is None:
                subs.append(opt)
                index = len(subs) - 1
            owner.append(index)
        groups = [
            [p for p, i in zip(arrays, owner, strict=True) if i == k] for k in range(len(subs))
        ]
        for sub, group in zip(subs, groups, strict=True):
            if group:
                if sub.built:
                    raise ValueError(
                        f"sub-optimizer {sub.name} is already built (with "
                        f"{len(sub.params)} parameters); give a MultiOptimizer fresh optimizers"
                    )
                sub._checked_build_params(group)
                narrowest = min((p.dtype for p in group), key=lambda d: d.itemsize)
                factor = self._loss_scale_factor
                sub._check_in_dtype(
                    {**sub._config, "loss_scale_factor": factor}, sub._learning_rate, narrowest
                )
        return {"arrays": arrays, "names": names, "subs": subs, "owner": owner, "groups": groups}

    def _adopt(self, plan: dict, build_subs: bool) -> None:
        """Take ``plan`` (from :meth:`_plan`; raises nothing); ``build_subs``: build each
        sub-optimizer with its parameters now (else their first step builds them)."""
        new = plan["subs"][len(self._inner_optimizers) :]
        self._inner_optimizers = list(plan["subs"])
        for sub in new:
            sub.loss_scale_factor = self._loss_scale_factor
        self._params = list(plan["arrays"])
        self._names = list(plan["names"])
        self._owner = list(plan["owner"])
        self._index = {id(p): k for k, p in enumerate(self._params)}
        self._built = True
        if build_subs:
            for sub, group in zip(self._inner_optimizers, plan["groups"], strict=True):
                if group and not sub.built:
                    sub.build(group)

    def build(self, params: Any, names: Any = None) -> None:
        """Route every parameter to its optimizer and build each with its own: ``params`` a
        mapping name -> array (a dict or a :class:`~optimlab.Params`), or a list of arrays
        with ``names``."""
        arrays, names = _named(params, names)
        self._adopt(self._plan(arrays, names), build_subs=True)

    # -- the step ---------------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars: Iterable, names: Any = None) -> None:
        """One update of every parameter by its optimizer; ``names`` name the parameters on
        the first call (or build with them first)."""
        self._commit_step(self._prepare_step(_pairs(grads_and_vars), names=names))

    def apply(self, grads: Sequence[Any], params: Any = None, names: Any = None) -> None:
        """:meth:`apply_gradients` with two lists (``params`` default to those of the build)."""
        if len(_as_list("grads", grads)) == 0:
            return  # Keras: no gradients, nothing to do
        pairs = _grads_params(grads, params, self._params)
        self._commit_step(self._prepare_step(pairs, names=names))

    def step(self, params: Any) -> None:
        """One update of a :class:`~optimlab.Params` (its names route it; its views are the
        arrays); groups with their own ``lr_scale`` or ``weight_decay`` are refused (give them
        their own optimizer in the map instead)."""
        from ..params import Params

        if not isinstance(params, Params):
            raise TypeError(f"step() takes an optimlab.Params, got {type(params).__name__}")
        for group in params.groups:
            if group.lr_scale != 1.0 or group.weight_decay is not None:
                raise ValueError(
                    f"Params group {group.name!r} has its own lr_scale or weight_decay, which a "
                    "MultiOptimizer would not apply; give its parameters their own optimizer "
                    "in the OptimizerMap instead"
                )
        names = list(params)
        pairs = [(params.grads[n], params[n]) for n in names]
        self._commit_step(self._prepare_step(pairs, names=None if self._built else names))

    def _route(self, pairs: list, names: Any) -> tuple[dict | None, list]:
        """(build plan or None, [(sub-optimizer, its pairs' gradients, its pairs)]) with every
        check of the routing (nothing changes)."""
        arrays = [p for _, p in pairs]
        plan = None
        if not self._built:
            arrays, names = _named(arrays, names)
            plan = self._plan(arrays, names)
            subs, owner = plan["subs"], plan["owner"]
            where = list(range(len(arrays)))
        else:
            for k, p in enumerate(arrays):
                _check_param(p, k)
            if len(pairs) != len(self._params):
                raise ValueError(
                    "Gradients must match trainable variables one-to-one. Received "
                    f"{len(pairs)} gradients and {len(self._params)} variables."
                )
            where = []
            for k, p in enumerate(arrays):
                place = self._index.get(id(p))
                if place is None:
                    raise ValueError(
                        f"parameter {k} (shape {p.shape}, {p.dtype}) is not one of the "
                        f"{len(self._params)} parameters {self.name} was built with"
                    )
                if place in where:
                    raise ValueError(f"parameter {k} appears twice in this update")
                where.append(place)
            if names is not None:
                names = _as_list("names", names)
                expected = [self._names[i] for i in where]
                if names != expected:
                    raise ValueError(
                        f"names {show(names)} are not the names these parameters were built "
                        f"with ({show(expected)})"
                    )
            subs, owner = self._inner_optimizers, self._owner
        routed = []
        for i, sub in enumerate(subs):
            sub_pairs = [pair for pair, k in zip(pairs, where, strict=True) if owner[k] == i]
            if sub_pairs:
                items, _ = sub._checked_pairs(sub_pairs)
                routed.append((sub, [g for _, _, g in items], sub_pairs))
        return plan, routed

    def _prepare_step(
        self, pairs, trusted=None, finite=False, loss_scale: Any = OWN_LOSS_SCALE, names=None
    ) -> Any:
        """Every sub-optimizer's checks of its part of the call (nothing changes)."""
        plan, routed = self._route(pairs, names)
        new = (
            set() if plan is None else {id(s) for s in plan["subs"][len(self._inner_optimizers) :]}
        )
        prepared = []
        for sub, _, sub_pairs in routed:
            scale = loss_scale
            if scale is OWN_LOSS_SCALE and id(sub) in new:  # its factor is set at the commit
                scale = self._loss_scale_factor
            prepared.append((sub, sub._prepare_step(sub_pairs, finite=finite, loss_scale=scale)))
        return plan, prepared

    def _commit_step(self, prepared: Any) -> None:
        plan, steps = prepared
        if plan is not None:
            self._adopt(plan, build_subs=False)
        for sub, step in steps:
            sub._commit_step(step)
        if plan is not None:  # those whose parameters had no gradient: built as Keras does
            for sub, group in zip(self._inner_optimizers, plan["groups"], strict=True):
                if group and not sub.built:
                    sub.build(group)
        self._iterations += 1

    def finalize_variable_values(self, params: Any = None) -> None:
        """Each sub-optimizer's, on its parameters (its EMA overwrites them)."""
        targets = self._params if params is None else _as_list("params", params, arrays=True)
        for k, p in enumerate(targets):
            if id(p) not in self._index:
                raise ValueError(
                    f"finalize_variable_values got parameter {k} ({show(p)}), which "
                    f"{self.name} does not track; nothing was changed"
                )
        for i, sub in enumerate(self._inner_optimizers):
            mine = [p for p in targets if self._owner[self._index[id(p)]] == i]
            if mine:
                sub.finalize_variable_values(mine)

    # -- Keras's variables ------------------------------------------------------------------

    @property
    def variables(self) -> list[np.ndarray]:
        """Keras's list: [iteration, learning_rate (a 0 placeholder, as in Keras)] + each
        sub-optimizer's variables, in :attr:`optimizers` order."""
        out = [
            np.array(self._iterations, dtype=np.int64),
            np.array(self._placeholder_lr, dtype=np.float64),
        ]
        for sub in self._inner_optimizers:
            out.extend(sub.variables)
        return out

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Write :attr:`variables` back; every sub-optimizer's part is checked before any is
        written (a refused list changes nothing)."""
        if not self._built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Please call `optimizer.build(trainable_variables)` to create the optimizer "
                "weights before calling `set_weights()`."
            )
        weights = _as_list("weights", weights)
        counts = [len(sub.variables) for sub in self._inner_optimizers]
        if len(weights) != 2 + sum(counts):
            raise ValueError(
                f"weights must hold {2 + sum(counts)} arrays ({self.name}'s iteration and "
                f"learning_rate, then its sub-optimizers' {counts}), got {len(weights)}"
            )
        iteration = check_int(
            "weights[0] (iteration)", _scalar_weight(0, "iteration", weights[0]), 0, MAX_COUNT
        )
        lr = check_float(
            "weights[1] (learning_rate)", _scalar_weight(1, "learning_rate", weights[1]), 0.0
        )
        parts, start = [], 2
        for sub, n in zip(self._inner_optimizers, counts, strict=True):
            parts.append((sub, weights[start : start + n]))
            start += n
        # check every part on a copy first: set_weights of a sub checks before it writes
        for sub, part in parts:
            if sub.built:
                probe = copy.deepcopy(sub)
                probe.set_weights(part)
        for sub, part in parts:
            if sub.built:
                sub.set_weights(part)
        self._iterations, self._placeholder_lr = iteration, lr

    # -- configuration and state ------------------------------------------------------------

    def get_config(self) -> dict:
        """Keras's keys: optimizer_map (serialized), loss_scale_factor, name. A selector
        function cannot be serialized."""
        if not isinstance(self._optimizer_map, OptimizerMap):
            raise TypeError(
                f"{self.name}'s optimizer_map is a callable {show(self._optimizer_map)}, which "
                "cannot be serialized; use an OptimizerMap"
            )
        return {
            "optimizer_map": {
                "class_name": "OptimizerMap",
                "config": self._optimizer_map.get_config(),
            },
            "loss_scale_factor": self._loss_scale_factor,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: Any = None) -> MultiOptimizer:
        if not isinstance(config, Mapping) or "optimizer_map" not in config:
            raise ValueError(
                f"config must be a dict from MultiOptimizer.get_config(), got {show(config)}"
            )
        config = dict(config)
        table = config.pop("optimizer_map")
        if isinstance(table, Mapping):
            table = OptimizerMap.from_config(dict(table).get("config", table))
        return cls(table, **config)

    def state_dict(self) -> dict:
        """The routing (names and owners), the call count and every sub-optimizer's
        ``state_dict()``."""
        return {
            "optimizer": "MultiOptimizer",
            "config": {"name": self.name, "loss_scale_factor": self._loss_scale_factor},
            "iterations": self._iterations,
            "names": list(self._names),
            "owners": list(self._owner),
            "optimizers": [sub.state_dict() for sub in self._inner_optimizers],
        }

    def load_state_dict(self, state: dict, params: Any = None, names: Any = None) -> None:
        """Restore :meth:`state_dict`'s output. Unbuilt, pass ``params`` (and ``names``, by
        default the saved ones); the routing must be the saved one. Every sub-optimizer's
        state is checked before any is loaded: a refused state changes nothing."""
        keys = ("optimizer", "config", "iterations", "names", "owners", "optimizers")
        _check_keys(state, keys, "MultiOptimizer")
        config = state["config"]
        if not isinstance(config, Mapping) or set(config) != {"name", "loss_scale_factor"}:
            raise ValueError(
                f"state['config'] must hold name and loss_scale_factor, got {show(config)}"
            )
        factor = optional_positive(
            "state['config']['loss_scale_factor']", config["loss_scale_factor"]
        )
        iterations = check_int("state['iterations']", state["iterations"], 0, MAX_COUNT)
        saved_names = _as_list("state['names']", state["names"])
        saved_owners = _as_list("state['owners']", state["owners"])
        plan = None
        if params is not None:
            if self._built:
                raise ValueError(f"{self.name} is already built; call load_state_dict(state)")
            arrays, names = _named(params, saved_names if names is None else names)
            plan = self._plan(arrays, names)
            subs, owner, groups, built_names = (
                plan["subs"],
                plan["owner"],
                plan["groups"],
                plan["names"],
            )
        elif not self._built:
            raise ValueError(
                f"{self.name} is not built: pass its parameters, load_state_dict(state, params)"
            )
        else:
            subs, owner, built_names = self._inner_optimizers, self._owner, self._names
            groups = [
                [p for p, i in zip(self._params, owner, strict=True) if i == k]
                for k in range(len(subs))
            ]
        if saved_names != built_names or saved_owners != owner:
            saved = dict(zip(saved_names, saved_owners, strict=False))
            ours = dict(zip(built_names, owner, strict=True))
            raise ValueError(
                f"the state routes {show(saved)} (name -> optimizer index), this "
                f"MultiOptimizer {show(ours)}"
            )
        states = _as_list("state['optimizers']", state["optimizers"])
        if len(states) != len(subs):
            raise ValueError(
                f"state['optimizers'] holds {len(states)} states for {len(subs)} sub-optimizers"
            )
        probes = []
        for k, (sub, sub_state, group) in enumerate(zip(subs, states, groups, strict=True)):
            with_params = group if (plan is not None and group) else None
            try:
                probes.append(sub._loaded_probe(sub_state, with_params))
            except (TypeError, ValueError) as error:
                raise type(error)(f"state['optimizers'][{k}] ({sub.name}): {error}") from None
        if plan is not None:
            self._adopt(plan, build_subs=False)
        for k, (sub, probe) in enumerate(zip(subs, probes, strict=True)):
            sub._adopt_probe(probe, groups[k] if plan is not None and groups[k] else None)
        self.name = str(config["name"])
        self._loss_scale_factor = factor
        self._iterations = iterations

    def save(self, path: Any, params: Any = None) -> None:
        """Write :meth:`state_dict` (and the parameters, if given) to ``path``: optimlab's
        checkpoint file (pickle-free, verified, atomic; :mod:`optimlab.checkpoint`)."""
        _save(self, path, params)

    def load(self, path: Any, params: Any = None, names: Any = None) -> None:
        """Restore :meth:`save`'s file (verified before anything changes)."""
        _load(self, path, params, names)

    def __repr__(self) -> str:
        subs = ", ".join(s.name for s in self._inner_optimizers)
        return f"MultiOptimizer([{subs}], iterations={self._iterations}, name={self.name!r})"


def _first(items: list, item: Any, k: int) -> bool:
    """Whether ``items[k]`` is the first occurrence of ``item`` (by identity)."""
    return next(i for i, x in enumerate(items) if x is item) == k
