"""Thin stand-ins that let Keras 3's own optimizer and schedule tests drive optimlab.

A Keras test module is run with these names substituted in its namespace:

``backend.Variable``
    :class:`Variable`: a NumPy array (``.value``, the array optimlab updates in place) with the
    few methods the tests call (``numpy()``, ``assign()``, ``name``); dtype floatx (float32)
    unless given, as Keras's ``Variable`` documents.
``ops`` / ``backend.convert_to_tensor``
    float32 NumPy arrays (Keras's floatx).
the optimizer class (``Adam``...), ``optimizers``, ``schedules``
    optimlab's classes, each optimizer wrapped by :func:`keras_face`, which only translates
    Keras's objects (variables, their names) into NumPy arrays, and maps the few Keras
    attributes the tests read onto optimlab's public API (``ema``, the clipping of the
    pipeline through a throwaway ``SGD(learning_rate=1)``); Muon also answers the internals
    its Keras test calls (:class:`MuonInternals`: optimlab's Newton-Schulz, shape factor,
    rule step and weight decay).

Nothing here computes an update: every number the tests check comes from optimlab.
"""

from __future__ import annotations

import contextlib
import re
import types

import numpy as np

import optimlab
from optimlab import optimizers as ol_optimizers
from optimlab import schedules as ol_schedules
from optimlab.rules import muon as rules_muon
from optimlab.rules import newton_schulz

FLOATX = "float32"


_SCOPES: list[str] = []


@contextlib.contextmanager
def name_scope(name, **kwargs):
    """``keras.name_scope``: the variables created inside have the path ``name/...``."""
    _SCOPES.append(name)
    try:
        yield
    finally:
        _SCOPES.pop()


class Variable:
    """``keras.Variable`` on a NumPy array: ``value`` is the array (created once, so that
    optimlab, which tracks parameters by identity, sees the same array on every call);
    ``path`` is its name under the enclosing :func:`name_scope` (``"dense/kernel"``)."""

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, name=None):
        if callable(initializer):
            initializer = initializer(shape, dtype=dtype or FLOATX)
        self.value = np.array(np.asarray(initializer), dtype=dtype or FLOATX)
        self.name = "variable" if name is None else name
        self.path = "/".join([*_SCOPES, self.name])
        self.trainable = trainable

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value) -> None:
        self.value[...] = np.asarray(value)

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return str(self.value.dtype)

    def __add__(self, other):
        return self.value + np.asarray(other)

    def __sub__(self, other):
        return self.value - np.asarray(other)

    def __mul__(self, other):
        return self.value * np.asarray(other)

    def __repr__(self) -> str:
        return f"<Variable {self.name} {self.value!r}>"


def unwrap(x):
    """A Variable's array (None stays None, arrays and numbers pass through)."""
    return x.value if isinstance(x, Variable) else x


def _array(x, dtype=None):
    return np.asarray(unwrap(x), dtype=dtype or FLOATX)


ops = types.SimpleNamespace(
    array=lambda x, dtype=None: _array(x, dtype),
    convert_to_tensor=lambda x, dtype=None: _array(x, dtype),
    zeros=lambda shape, dtype=None: np.zeros(shape, dtype=dtype or FLOATX),
    ones=lambda shape, dtype=None: np.ones(shape, dtype=dtype or FLOATX),
    full=lambda shape, value, dtype=None: np.full(shape, value, dtype=dtype or FLOATX),
    arange=lambda *args, dtype=None: np.arange(*args, dtype=dtype or FLOATX),
)

backend = types.SimpleNamespace(
    Variable=Variable,
    convert_to_tensor=ops.convert_to_tensor,
    floatx=lambda: FLOATX,
    backend=lambda: "numpy",
    numpy=types.SimpleNamespace(zeros=ops.zeros),
    name_scope=name_scope,
)


def keras_face(cls):
    """``cls`` (an optimlab optimizer class) as the Keras tests address it: Variables in,
    Keras's attribute names for optimlab's public state out."""

    class Face(cls):
        __doc__ = f"Keras's view of :class:`optimlab.{cls.__name__}` (test adapter)."
        _pending_names: tuple = ()
        _pending_list: tuple = ()

        def _arrays(self, variables):
            variables = list(variables)
            # Keras matches names when it meets the variables (optimlab's own build, from the
            # first update, passes arrays: nothing to match then)
            if self._pending_names and any(isinstance(v, Variable) for v in variables):
                pattern = re.compile("|".join(self._pending_names))
                named = [v for v in variables if isinstance(v, Variable) and pattern.search(v.name)]
                super().exclude_from_weight_decay(
                    [unwrap(v) for v in (*self._pending_list, *named)]
                )
            return [unwrap(v) for v in variables]

        def build(self, variables):
            super().build(self._arrays(variables))

        def apply_gradients(self, grads_and_vars):
            pairs = [(unwrap(g), v) for g, v in grads_and_vars]
            arrays = self._arrays(v for _, v in pairs)
            super().apply_gradients([(g, a) for (g, _), a in zip(pairs, arrays, strict=True)])
            return self.iterations

        def apply(self, grads, trainable_variables=None):
            arrays = None if trainable_variables is None else self._arrays(trainable_variables)
            super().apply([unwrap(g) for g in grads], arrays)

        def exclude_from_weight_decay(self, var_list=None, var_names=None):
            self._pending_names = tuple(var_names or ())
            self._pending_list = tuple(var_list or ())
            super().exclude_from_weight_decay([unwrap(v) for v in self._pending_list])

        def finalize_variable_values(self, var_list=None):
            super().finalize_variable_values(None if var_list is None else self._arrays(var_list))

        @property
        def _model_variables_moving_average(self):
            return self.ema

        def _clip_gradients(self, grads):
            """The clipped gradients as optimlab's pipeline makes them: one update of
            ``SGD(learning_rate=1)`` with this optimizer's clip settings, from zero."""
            config = self.get_config()
            clip = {k: config[k] for k in ("clipnorm", "clipvalue", "global_clipnorm")}
            sgd = optimlab.SGD(learning_rate=1.0, preset=self.preset, **clip)
            arrays = [np.asarray(unwrap(g)) for g in grads]
            params = [np.zeros_like(g) for g in arrays]
            sgd.apply_gradients(zip(arrays, params, strict=True))
            return [-p for p in params]

    Face.__name__ = Face.__qualname__ = cls.__name__
    Face.__module__ = __name__
    return Face


class MuonInternals:
    """The Keras internals of ``keras.optimizers.Muon`` that Keras's muon_test calls, each
    answered by optimlab's own rule or pipeline (nothing computed here):

    ``zeropower_via_newtonschulz5(x, steps)``
        :func:`optimlab.rules.newton_schulz.orthogonalize` with the optimizer's
        coefficients, epsilon and norm settings;
    ``lr_adjust(x)``
        x times :func:`optimlab.rules.muon.shape_factor` (1 where ``rms_rate`` is None);
    ``update_step(gradient, variable, learning_rate)``
        Keras's rule step of one variable at ``learning_rate``, with neither the weight decay
        nor an iteration counted: one ``apply_gradients`` of a twin loaded with this
        optimizer's state at that learning rate and no decay, whose new state buffers are
        loaded back (the counters stay);
    ``_apply_weight_decay(variables)``
        the decay alone, as optimlab's pipeline applies it: one step of a fresh twin on a zero
        gradient (from a zero state Muon and AdamW move nothing; p - lr wd p remains, with
        ``weight_decay`` for matrices and ``adam_weight_decay`` for the rest).
    """

    def zeropower_via_newtonschulz5(self, x, steps):
        c = self.get_config()
        eps = c["epsilon"] if c["ns_epsilon"] is None else c["ns_epsilon"]
        return newton_schulz.orthogonalize(
            _array(x), c["muon_a"], c["muon_b"], c["muon_c"], steps, eps,
            c["ns_epsilon_style"], c["ns_dtype"], c["ns_norm_dtype"],
        )  # fmt: skip

    def lr_adjust(self, x):
        c = self.get_config()
        scaling = "none" if c["rms_rate"] is None else c["shape_scaling"]
        x = _array(x)
        return x * rules_muon.shape_factor(x.shape, scaling, c["rms_rate"])

    def update_step(self, gradient, variable, learning_rate):
        saved = self.state_dict()
        config = dict(saved["config"], learning_rate=learning_rate)
        config.update(weight_decay=None, adam_weight_decay=None)
        twin = optimlab.Muon()
        twin.load_state_dict(dict(saved, config=config), params=self.params)
        twin.apply_gradients([(_array(gradient, unwrap(variable).dtype), unwrap(variable))])
        self.load_state_dict(dict(saved, slots=twin.state_dict()["slots"]))

    def _apply_weight_decay(self, variables):
        for variable in variables:
            array = unwrap(variable)
            twin = optimlab.Muon.from_config(self.get_config())
            twin.apply_gradients([(np.zeros_like(array), array)])


SGD = keras_face(optimlab.SGD)
Adagrad = keras_face(optimlab.Adagrad)
RMSprop = keras_face(optimlab.RMSprop)
Adam = keras_face(optimlab.Adam)
AdamW = keras_face(optimlab.AdamW)
Nadam = keras_face(optimlab.Nadam)
Adamax = keras_face(optimlab.Adamax)
Adadelta = keras_face(optimlab.Adadelta)
Lion = keras_face(optimlab.Lion)
Lamb = keras_face(optimlab.Lamb)
Adafactor = keras_face(optimlab.Adafactor)
Muon = keras_face(type("Muon", (MuonInternals, optimlab.Muon), {"__doc__": optimlab.Muon.__doc__}))
Ftrl = keras_face(optimlab.Ftrl)


class Counter(int):
    """An ``int`` with Keras's ``.value`` (``optimizer.iterations.value``)."""

    @property
    def value(self) -> int:
        return int(self)


def _named(variables):
    """(arrays, names) of Keras variables: their paths name them, as Keras's wrappers read."""
    variables = list(variables)
    return [unwrap(v) for v in variables], [
        getattr(v, "path", str(k)) for k, v in enumerate(variables)
    ]


class LossScaleOptimizer(optimlab.LossScaleOptimizer):
    """Keras's view of :class:`optimlab.LossScaleOptimizer` (test adapter): Variables in (their
    paths as names when it wraps a MultiOptimizer), ``iterations.value``."""

    def _names(self, names):
        return names if isinstance(self.inner_optimizer, optimlab.MultiOptimizer) else None

    def build(self, variables):
        arrays, names = _named(variables)
        super().build(arrays, names=self._names(names))

    def apply(self, grads, trainable_variables=None):
        grads = [unwrap(g) for g in grads]
        if trainable_variables is None:
            return super().apply(grads)
        arrays, names = _named(trainable_variables)
        super().apply(grads, arrays, names=self._names(names))

    @property
    def iterations(self):
        return Counter(super().iterations)

    @property
    def variables(self):
        """optimlab's list (copies), each with Keras's ``.value``."""
        return [Variable(v, dtype=v.dtype, name="") for v in super().variables]


class MultiOptimizer(optimlab.MultiOptimizer):
    """Keras's view of :class:`optimlab.MultiOptimizer` (test adapter): Variables in, their
    paths as the names; Keras's ``_var_key`` and ``_var_to_optimizer_idx`` read optimlab's
    public ``names`` and ``assignment()``."""

    def build(self, variables, names=None):
        arrays, paths = _named(variables)
        super().build(arrays, names=paths if names is None else names)

    def apply(self, grads, trainable_variables=None, names=None):
        grads = [unwrap(g) for g in grads]
        if trainable_variables is None:
            return super().apply(grads)
        arrays, paths = _named(trainable_variables)
        super().apply(grads, arrays, names=paths if names is None else names)

    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars)
        arrays, names = _named(v for _, v in pairs)
        super().apply_gradients(
            [(unwrap(g), a) for (g, _), a in zip(pairs, arrays, strict=True)], names=names
        )

    @staticmethod
    def _var_key(variable):
        return variable.path

    @property
    def _var_to_optimizer_idx(self):
        subs = self.optimizers
        return {
            name: next(i for i, s in enumerate(subs) if s is opt)
            for name, opt in self.assignment().items()
        }


ScheduleFreeAdamW = keras_face(optimlab.ScheduleFreeAdamW)
FACES = {
    cls.__name__: cls
    for cls in (
        SGD,
        Adagrad,
        RMSprop,
        Adam,
        AdamW,
        Nadam,
        Adamax,
        Adadelta,
        Lion,
        Lamb,
        Adafactor,
        Muon,
        Ftrl,
        LossScaleOptimizer,
        MultiOptimizer,
        ScheduleFreeAdamW,
    )
}


def _get(identifier):
    """``optimizers.get`` on the faces (optimlab.get's rules: name, dict, None)."""
    got = ol_optimizers.get(identifier)
    return got if got is None else FACES[type(got).__name__].from_config(got.get_config())


def _deserialize(config):
    got = ol_optimizers.deserialize(config)
    return FACES[type(got).__name__].from_config(got.get_config())


schedules = types.SimpleNamespace(
    **{name: getattr(ol_schedules, name) for name in ol_schedules.__all__},
)

optimizers = types.SimpleNamespace(
    **FACES,
    OptimizerMap=optimlab.OptimizerMap,
    get=_get,
    serialize=ol_optimizers.serialize,
    deserialize=_deserialize,
    schedules=schedules,
)
