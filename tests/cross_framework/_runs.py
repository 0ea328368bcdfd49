"""The digits MLP of the tour's porting chapter trained in three frameworks, each with its own
autodiff: a Keras 3 model (JAX backend, float64) by ``train_on_batch``, a torch ``nn.Module``
loop, and a ``jax.jit`` step with an optax GradientTransformation.

Every run starts from :func:`optimlab.lab.experiments.porting.setup`'s parameters, sees its
batches in its order and sets its learning rates (:func:`~porting.learning_rates`): Keras by
assigning ``optimizer.learning_rate``, torch each param group's ``lr``, optax through a
schedule of the update count. Runs are cached by their arguments, so that the tests, the
chapter check and ``python -m tests.cross_framework`` share them: one Keras train function
and one jitted JAX step per (optimizer, preset, framework).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from optimlab.lab.experiments import porting

FRAMEWORKS = ("keras", "torch", "jax")
PRESETS = ("keras", "torch", "optax")
NAMES = ("W1", "b1", "W2", "b2")

#: optimizer -> (learning rate, the arguments the script writes beyond it); the optimizers
#: the three faces share (optimlab.torch, optimlab.keras, optimlab.optax), and Lamb (no torch)
OPTIMIZERS = {
    "SGD": (0.05, {"momentum": 0.9, "nesterov": True}),
    "Adagrad": (0.05, {}),
    "RMSprop": (1e-3, {}),
    "Adam": (1e-3, {}),
    "AdamW": (3e-3, {}),
    "Nadam": (3e-3, {}),
    "Adamax": (5e-3, {}),
    "Adadelta": (1.0, {}),
    "Lion": (3e-4, {}),
    "RAdam": (3e-3, {}),
    "Rprop": (3e-3, {}),
    "Lamb": (3e-3, {}),
    "ASGD": (0.05, {}),
    "Ftrl": (0.05, {"l1_regularization_strength": 1e-4}),
    "ScheduleFreeAdamW": (3e-3, {"warmup_steps": 4}),
    # the tensor-level rules: Muon's Newton-Schulz on W1 and W2, its fallback on the biases;
    # Adafactor's factored W1 and W2 (optax: none, both have an axis under 128)
    "Muon": (0.02, {}),
    "Adafactor": (0.05, {}),
}
#: the presets an optimizer runs under on this model: Muon's torch preset (torch.optim.Muon)
#: refuses the biases, which are not matrices
PRESETS_OF = {"Muon": ("keras", "optax")}
#: optimizers of the full run only (HYPOTHESIS_PROFILE=explore): each of their cells costs
#: about 2.5 s (Newton-Schulz and the factored means compiled in each face) and the default
#: run is at its budget; tests/keras_face and tests/optax compare their faces with the
#: dialect and with Keras's, torch's and optax's own in every default run
FULL_RUN_ONLY = ("Muon", "Adafactor")
#: (optimizer, preset) -> the gap allowed where a face is the NumPy dialect's model of a
#: peer's operation: optimlab.torch.Adafactor(preset="keras") takes Keras's float32 means by
#: the dialect's model (index-order sums, exact for short axes; tests/conformance
#: KNOWN_LIMITS, 2e-7), which the JAX faces compute as Keras does (measured on this model:
#: torch 1.41e-7 from Keras's own, the JAX faces 3.6e-16)
LIMITS = {("Adafactor", "keras"): 2e-7}
#: Rprop's learning rate is its initial step size (torch and optax read it once): constant
CONSTANT = ("Rprop",)
#: the names torch.optim and optimlab.torch give (where they differ); None: no torch class
#: (optimlab.torch.Muon takes matrices only, as torch.optim.Muon: not the MLP's biases)
TORCH_NAMES = {
    "Nadam": "NAdam",
    "Lamb": None,
    "Ftrl": None,
    "ScheduleFreeAdamW": None,
    "Muon": None,
}
#: the frameworks' own optimizers, where the preset's peer has one (presets.PEERS)
NATIVE = {
    "keras": ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Adamax", "Adadelta",
              "Lion", "Lamb", "Ftrl", "Muon", "Adafactor"),
    "torch": ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Adamax", "Adadelta",
              "RAdam", "Rprop", "ASGD", "Adafactor"),
    "optax": ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Adamax", "Adadelta",
              "Lion", "RAdam", "Rprop", "Lamb", "Muon", "Adafactor"),
}  # fmt: skip
#: optimlab.optax's factory names where they are not the class's lower-cased (optax's names)
FACTORY_NAMES = {"ScheduleFreeAdamW": "schedule_free_adamw"}
#: the preset of each framework's own numerics
OWN_PRESET = {"keras": "keras", "torch": "torch", "jax": "optax"}


def frameworks_of(optimizer: str) -> tuple[str, ...]:
    """The frameworks whose optimlab face has ``optimizer``."""
    return tuple(f for f in FRAMEWORKS if f != "torch" or TORCH_NAMES.get(optimizer, 1))


def _rates(optimizer: str, learning_rate: float | None = None) -> np.ndarray:
    lr = OPTIMIZERS[optimizer][0] if learning_rate is None else learning_rate
    return porting.learning_rates(lr, constant=optimizer in CONSTANT)


def _as_list(params) -> list[np.ndarray]:
    return [np.asarray(p, dtype=np.float64) for p in params]


# -- Keras -------------------------------------------------------------------------------------


def keras_float64():
    """Keras in float64 (floatx) on its JAX backend with x64 (set by tests/conftest.py); the
    previous floatx, to restore."""
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"the cross-framework runs need Keras's JAX backend, not "
                           f"{keras.backend.backend()!r} (set KERAS_BACKEND=jax)")  # fmt: skip
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    return previous


def keras_train(optimizer, rates) -> list[np.ndarray]:
    """A Keras Sequential 64-16-10 trained by ``train_on_batch`` with ``optimizer``.

    The activation is ``jax.numpy.tanh``: Keras 3.15's ``keras.activations.tanh`` (like every
    ``keras.ops`` function that promotes with ``keras.backend.result_type``) returns float32
    for float64 input on the JAX and torch backends (``BIT64_TO_BIT32_DTYPE``), which would
    round the hidden layer to float32."""
    import jax.numpy as jnp
    import keras

    problem, init, rows = porting.setup()
    model = keras.Sequential(
        [
            keras.Input((problem.n_features,), dtype="float64"),
            keras.layers.Dense(porting.HIDDEN, activation=jnp.tanh, dtype="float64"),
            keras.layers.Dense(problem.n_classes, dtype="float64"),
        ]
    )
    model.set_weights([init[k] for k in NAMES])
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x, y = np.asarray(problem.X), np.asarray(problem.labels)
    for rate, batch in zip(rates, rows, strict=True):
        optimizer.learning_rate = float(rate)
        model.train_on_batch(x[batch], y[batch])
    return _as_list(model.get_weights())


# -- torch -------------------------------------------------------------------------------------


class TorchMLP:
    """Factory of the torch model: ``Linear(64, 16) -> tanh -> Linear(16, 10)`` in float64 with
    the chapter's initial parameters (torch's weights are the transposes)."""

    @staticmethod
    def make():
        import torch

        problem, init, _ = porting.setup()
        model = torch.nn.Sequential(
            torch.nn.Linear(problem.n_features, porting.HIDDEN, dtype=torch.float64),
            torch.nn.Tanh(),
            torch.nn.Linear(porting.HIDDEN, problem.n_classes, dtype=torch.float64),
        )
        with torch.no_grad():
            for layer, w, b in ((model[0], "W1", "b1"), (model[2], "W2", "b2")):
                layer.weight.copy_(torch.from_numpy(init[w].T.copy()))
                layer.bias.copy_(torch.from_numpy(init[b]))
        return model


def torch_train(make_optimizer, rates) -> list[np.ndarray]:
    """The torch loop: ``zero_grad``, ``cross_entropy(model(x), y).backward()``, ``step``,
    with each param group's ``lr`` set before the step, under
    ``torch.set_default_dtype(torch.float64)`` (restored afterwards): torch keeps an
    optimizer's scalar state in the default dtype, and with the float32 default
    ``torch.optim.NAdam``'s ``mu_product`` is rounded to float32 at every step (2.3e-9 relative
    in this model's parameters after 24 updates, measured; ``optimlab.torch.NAdam`` does the
    same, the NumPy dialect's ``preset="torch"`` computes the product in float64)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _torch_loop(make_optimizer, rates)
    finally:
        torch.set_default_dtype(previous)


def _torch_loop(make_optimizer, rates) -> list[np.ndarray]:
    import torch

    problem, _, rows = porting.setup()
    model = TorchMLP.make()
    optimizer = make_optimizer(model.parameters())
    x = torch.from_numpy(np.array(problem.X))
    y = torch.from_numpy(np.array(problem.labels, dtype=np.int64))
    for rate, batch in zip(rates, rows, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = float(rate)
        optimizer.zero_grad()
        index = torch.from_numpy(batch)
        torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        optimizer.step()
    first, last = model[0], model[2]
    return _as_list(
        p.detach().numpy() for p in (first.weight.T, first.bias, last.weight.T, last.bias)
    )


# -- JAX / optax -------------------------------------------------------------------------------


def schedule(rates):
    """The optax schedule of ``rates``: ``rates[count]`` (count = updates made so far), the
    same float64 numbers the other frameworks are given."""
    import jax.numpy as jnp

    table = jnp.asarray(np.asarray(rates, dtype=np.float64))
    return lambda count: table[count]


def jax_train(make_transformation, rates) -> list[np.ndarray]:
    """A ``jax.jit`` step: ``jax.value_and_grad`` of the mean cross-entropy
    (``jax.nn.log_softmax``), ``tx.update``, ``optax.apply_updates``; ``make_transformation``
    receives the schedule of ``rates``."""
    import jax
    import jax.numpy as jnp
    import optax

    problem, init, rows = porting.setup()
    tx = make_transformation(schedule(rates))
    x, y = jnp.asarray(np.asarray(problem.X)), jnp.asarray(np.asarray(problem.labels))

    def loss(p, xb, yb):
        z = jnp.tanh(xb @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), yb[:, None], axis=1))

    @jax.jit
    def step(p, state, batch):
        _, g = jax.value_and_grad(loss)(p, x[batch], y[batch])
        updates, state = tx.update(g, state, p)
        return optax.apply_updates(p, updates), state

    params = {k: jnp.asarray(init[k]) for k in NAMES}
    state = tx.init(params)
    for batch in rows:
        params, state = step(params, state, jnp.asarray(batch))
    return _as_list(params[k] for k in NAMES)


# -- the runs ----------------------------------------------------------------------------------


@functools.cache
def face_run(optimizer: str, preset: str, framework: str) -> tuple[np.ndarray, ...]:
    """The final parameters (W1, b1, W2, b2 in the chapter's layout) of ``optimizer`` with
    ``preset`` through optimlab's face of ``framework``: optimlab.keras in Keras,
    optimlab.torch in torch, optimlab.optax in a JAX loop."""
    lr, extra = OPTIMIZERS[optimizer]
    rates = _rates(optimizer)
    if framework == "keras":
        import optimlab.keras as olk

        return tuple(keras_train(getattr(olk, optimizer)(lr, preset=preset, **extra), rates))
    if framework == "torch":
        import optimlab.torch as olt

        cls = getattr(olt, TORCH_NAMES.get(optimizer) or optimizer)
        return tuple(torch_train(lambda ps: cls(ps, lr=lr, preset=preset, **extra), rates))
    import optimlab.optax as olx

    factory = getattr(olx, FACTORY_NAMES.get(optimizer, optimizer.lower()))
    return tuple(jax_train(lambda s: factory(s, preset=preset, **extra), rates))


def _native_keras(optimizer, lr, extra):
    import keras

    return getattr(keras.optimizers, optimizer)(lr, **extra)


def _native_torch(optimizer, params, lr, extra):
    import torch

    return getattr(torch.optim, TORCH_NAMES.get(optimizer) or optimizer)(params, lr=lr, **extra)


def _native_optax(optimizer, learning_rate, extra):
    import optax

    own = optax.contrib.muon if optimizer == "Muon" else getattr(optax, optimizer.lower())
    return own(learning_rate, **extra)


def native_run(optimizer: str, peer: str, learning_rate: float | None = None, **extra):
    """The final parameters of the framework's OWN optimizer (``peer``: "keras" for
    keras.optimizers.<X> in Keras, "torch" for torch.optim.<X>, "optax" for optax.<x> in the
    JAX loop) with its default numerics: the learning rate and the arguments given, nothing
    else (by default :data:`OPTIMIZERS`'s; the porting chapter's Adam, SGD and RMSprop are
    these, so that its check and the tests share the runs)."""
    lr, default_extra = OPTIMIZERS[optimizer]
    if learning_rate is not None:
        lr, default_extra = learning_rate, {}
    extra = {**default_extra, **extra}
    return _native_run(optimizer, peer, float(lr), tuple(sorted(extra.items())))


@functools.cache
def _native_run(optimizer, peer, lr, extra):
    extra = dict(extra)
    rates = _rates(optimizer, lr)
    if peer == "keras":
        return tuple(keras_train(_native_keras(optimizer, lr, extra), rates))
    if peer == "torch":
        return tuple(torch_train(lambda ps: _native_torch(optimizer, ps, lr, extra), rates))
    fixed = optimizer in CONSTANT  # optax.rprop's learning rate is a float, read once
    return tuple(jax_train(lambda s: _native_optax(optimizer, lr if fixed else s, extra), rates))


def cells(full: bool | None = None) -> list[tuple[str, str]]:
    """(optimizer, preset) pairs to check: every pair when ``full`` (by default when
    ``HYPOTHESIS_PROFILE=explore``, the suite's flag for deeper runs; Muon without its torch
    preset, :data:`PRESETS_OF`), else each optimizer but :data:`FULL_RUN_ONLY` once with the
    presets in turn (every preset five times)."""
    if full is None:
        full = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
    if full:
        return [(o, p) for o in OPTIMIZERS for p in PRESETS_OF.get(o, PRESETS)]
    return [
        (o, PRESETS[i % len(PRESETS)]) for i, o in enumerate(OPTIMIZERS) if o not in FULL_RUN_ONLY
    ]


def deviation(a, b) -> float:
    """The chapter's gap: ``max_k max|a_k - b_k| / max|b_k|`` over the tensors."""
    return porting.deviation(list(a), list(b))


def format_table(deviations: dict) -> list[str]:
    """Lines of a table: one row per (optimizer, preset), one column per pair of frameworks
    (and the framework's own optimizer against the preset run), the largest deviation."""
    columns = sorted({k[2] for k in deviations}, key=_column_order)
    rows = sorted({k[:2] for k in deviations}, key=_row_order)
    width = max(12, *(len(c) for c in columns))
    first = max(10, *(len(r[0]) for r in rows))
    lines = [f"{'optimizer':<{first}} preset " + "".join(f"{c:>{width + 2}}" for c in columns)]
    for optimizer, preset in rows:
        cells = [deviations.get((optimizer, preset, c)) for c in columns]
        lines.append(f"{optimizer:<{first}} {preset:<6} " + "".join(
            f"{'-' if v is None else f'{v:.2e}':>{width + 2}}" for v in cells))  # fmt: skip
    worst = max(deviations.values())
    lines.append(f"largest: {worst:.2e} over {len(deviations)} comparisons")
    return lines


def _row_order(row: tuple[str, str]) -> tuple[int, str, int]:
    names = list(OPTIMIZERS)
    return (names.index(row[0]) if row[0] in names else len(names), row[0], PRESETS.index(row[1]))


def _column_order(column: str) -> tuple[int, str]:
    return (column.startswith("own") + 2 * column.startswith("chapter"), column)
