"""optimlab.keras computes what optimlab's NumPy dialect computes, preset by preset, and with
preset="keras" what Keras's own optimizers compute; inside model.fit's jitted train step too.

Float64 throughout (JAX's x64 mode, floatx float64): the checks are 1e-12 relative, as the
order of XLA's operations may differ from NumPy's in the last bit.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import optimlab as ol
import optimlab.keras as olk

PRESETS = ("keras", "torch", "optax")
STEPS = 7  # RAdam rectifies from the sixth update on (beta_2 = 0.999)
RTOL = 1e-12

_rng = np.random.default_rng(14)
# two variables of one shape: eager JAX compiles each operation once per shape
KERNEL = _rng.normal(size=(3, 2))
BIAS = _rng.normal(size=(3, 2))
GRADIENTS = [(_rng.normal(size=(3, 2)), _rng.normal(size=(3, 2))) for _ in range(STEPS)]

#: (class, arguments) beyond the defaults: the optional slots and the pipeline's options
OPTIONS = [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.05, "clipnorm": 0.5}),
    ("AdamW", {"global_clipnorm": 0.7, "maximize": True}),
    ("Nadam", {"clipvalue": 0.3, "weight_decay": 0.02}),
    ("Lamb", {"weight_decay": 0.01}),
    # the step's choices: ASGD's averaging from t0 + 3 = 5, FTRL's zeros of l1 (a fixed
    # rate), Schedule-Free's warmup and its decay
    ("ASGD", {"t0": 2.0, "lambd": 0.05}),
    ("Ftrl", {"l1_regularization_strength": 0.3, "learning_rate_power": 0.0}),
    ("ScheduleFreeAdamW", {"warmup_steps": 4, "weight_decay": 0.1}),
]


#: where the dialect models a Keras operation that the face runs itself: Muon's Frobenius
#: norm in float32 (Keras's ops.norm, summed by XLA; the dialect rounds the exact norm to
#: float32, an ulp or so away: tests/conformance KNOWN_LIMITS, 2e-8 against Keras)
DIALECT_RTOL = {("Muon", "keras"): 2e-8}


def _arguments(preset, arguments=()):
    arguments = dict(arguments)
    if preset == "optax":  # optax has no default learning rate
        arguments.setdefault("learning_rate", 0.01)
    return arguments


def _keras_run(optimizer, gradients=GRADIENTS):
    variables = [keras.Variable(KERNEL, dtype="float64"), keras.Variable(BIAS, dtype="float64")]
    for g in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables], optimizer


def _dialect_run(optimizer, gradients=GRADIENTS):
    params = [KERNEL.copy(), BIAS.copy()]
    for g in gradients:
        optimizer.apply_gradients(zip([x.copy() for x in g], params, strict=True))
    return params, optimizer


def _assert_close(actual, expected, rtol=RTOL):
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


CASES = [(name, preset, {}) for name in olk.CLASSES for preset in PRESETS] + [
    (name, preset, arguments) for name, arguments in OPTIONS for preset in PRESETS
]


@pytest.mark.parametrize(
    ("name", "preset", "arguments"),
    CASES,
    ids=[f"{n}-{p}-{'-'.join(a) or 'defaults'}" for n, p, a in CASES],
)
def test_matches_the_dialect(name, preset, arguments):
    arguments = _arguments(preset, arguments)
    ours, optimizer = _keras_run(olk.CLASSES[name](preset=preset, **arguments))
    theirs, reference = _dialect_run(
        getattr(ol, name)(preset=preset, engine="reference", **arguments)
    )
    rtol = DIALECT_RTOL.get((name, preset), RTOL)
    _assert_close(ours, theirs, rtol)
    assert int(optimizer.iterations) == reference.iterations == STEPS
    # the whole state, in Keras's order: iterations, learning rate, slots, step state
    mine = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
    # the step state, last here: the dialect lists only Nadam's momentum product under
    # global step counting among its variables (Keras's u_product); the others (ASGD's eta
    # and mu, Schedule-Free's lr_max and weight_sum, per-parameter ones) it keeps per
    # parameter, the same for every parameter here (each steps every update)
    steps = len(getattr(reference.rule, "STEP_STATE", ()))
    if steps and len(mine) == len(reference.variables) + steps:
        _assert_close(mine[-steps:], reference._step_state[0])
        mine = mine[:-steps]
    _assert_close(mine[1:], reference.variables[1:], rtol)


KERAS_OWN = [n for n in olk.CLASSES if hasattr(keras.optimizers, n)]
#: where the face is further from Keras's own than RTOL (none: on the JAX backend Muon's
#: float32 norm and Adafactor's float32 means are Keras's own operations)
KERAS_RTOL: dict = {}


def _keras_shapes_without_copies(own) -> list:
    """Keras's Adafactor variables' shapes without the full-size copy of V it keeps after the
    row and the column of each factored variable (derived at every step, never read back;
    optimlab keeps R and C only)."""
    shapes = [tuple(v.shape) for v in own.variables]
    kept = shapes[:2]  # iterations, learning rate
    for variable in (KERNEL, BIAS):  # (both factored here: 2-D)
        row, column, copy = shapes[len(kept) : len(kept) + 3]
        assert (row, column, copy) == (variable.shape[:-1], variable.shape[1:], variable.shape)
        kept += [row, column]
        shapes = shapes[: len(kept)] + shapes[len(kept) + 1 :]
    return kept


@pytest.mark.parametrize("name", KERAS_OWN)
def test_keras_preset_matches_keras(name):
    ours, optimizer = _keras_run(olk.CLASSES[name]())
    theirs, own = _keras_run(getattr(keras.optimizers, name)())
    _assert_close(ours, theirs, KERAS_RTOL.get(name, RTOL))
    # the same variables in the same order (names aside): the same state to save and load;
    # then the rule's scalar step state where Keras keeps none (Schedule-Free's lr_max and
    # weight_sum: Keras's c_t = 1 / t needs neither); Adafactor without Keras's copies of V
    shapes = [tuple(v.shape) for v in optimizer.variables]
    theirs = [tuple(v.shape) for v in own.variables]
    if name == "Adafactor":
        theirs = _keras_shapes_without_copies(own)
    assert shapes[: len(theirs)] == theirs
    assert shapes[len(theirs) :] == [()] * (len(shapes) - len(theirs))
    assert len(shapes) - len(theirs) in (0, len(getattr(optimizer.dialect.rule, "STEP_STATE", ())))


def _jitted_run(optimizer, gradients=GRADIENTS):
    """``optimizer.stateless_apply`` under ``jax.jit`` (as Keras's train step runs it)."""
    variables = [keras.Variable(KERNEL, dtype="float64"), keras.Variable(BIAS, dtype="float64")]
    optimizer.build(variables)
    step = jax.jit(optimizer.stateless_apply)
    state = [v.value for v in optimizer.variables]
    values = [v.value for v in variables]
    for g in gradients:
        values, state = step(state, [jnp.asarray(x) for x in g], values)
    return [np.asarray(v) for v in values], [np.asarray(v) for v in state]


def test_keras_own_with_options():
    """Keras's weight decay, clipping, EMA and gradient accumulation, taken by name."""
    arguments = {"weight_decay": 0.1, "clipnorm": 0.4, "use_ema": True, "ema_momentum": 0.9}
    arguments["gradient_accumulation_steps"] = 2
    ours, our_state = _jitted_run(olk.AdamW(learning_rate=0.05, **arguments))
    theirs, their_state = _jitted_run(keras.optimizers.AdamW(learning_rate=0.05, **arguments))
    _assert_close(ours, theirs)
    _assert_close(our_state, their_state)


def test_exclude_from_weight_decay_by_name():
    """Keras's exclude_from_weight_decay(var_names=...) matches the variables' names."""
    optimizer = olk.AdamW(learning_rate=0.05, weight_decay=0.5)
    variables = [
        keras.Variable(KERNEL, dtype="float64", name="kernel"),
        keras.Variable(BIAS, dtype="float64", name="bias"),
    ]
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    reference = ol.AdamW(learning_rate=0.05, weight_decay=0.5, engine="reference")
    params = [KERNEL.copy(), BIAS.copy()]
    reference.exclude_from_weight_decay(var_list=[params[1]])
    for g in GRADIENTS[:3]:
        optimizer.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
        reference.apply_gradients(zip([x.copy() for x in g], params, strict=True))
    _assert_close([keras.ops.convert_to_numpy(v) for v in variables], params)


# -- inside model.fit: the update traced and compiled with the train step -------------------

X = _rng.normal(size=(8, 3))
Y = _rng.normal(size=(8, 2))
DENSE_BIAS = _rng.normal(size=(2,))


def _fit(optimizer, epochs):
    model = keras.Sequential([keras.Input((3,), dtype="float64"), keras.layers.Dense(2)])
    model.layers[0].set_weights([KERNEL, DENSE_BIAS])
    model.compile(optimizer=optimizer, loss="mse")
    assert model.jit_compile  # Keras's default on JAX: the optimizer is inside the jit
    model.fit(X, Y, batch_size=len(X), epochs=epochs, shuffle=False, verbose=0)
    return model


def _mse_gradients(kernel, bias):
    """The gradients of mean((x W + b - y)^2) over all elements."""
    r = X @ kernel + bias - Y
    scale = 2.0 / r.size
    return [scale * X.T @ r, scale * r.sum(axis=0)]


FITS = [
    ("Nadam", "keras"),
    ("RAdam", "optax"),
    ("Lamb", "keras"),
    ("Rprop", "torch"),
    # the tensor rules: Muon's Newton-Schulz on the kernel, its NAdamW on the bias; Adafactor's
    # factored kernel and unfactored bias (optax: both factored with min_dim_size_to_factor 2)
    ("Muon", "optax"),
    ("Adafactor", "torch"),
]


@pytest.mark.parametrize(("name", "preset"), FITS)
def test_fit_matches_the_dialect(name, preset):
    arguments = _arguments(preset)
    model = _fit(olk.CLASSES[name](preset=preset, **arguments), STEPS)
    reference = getattr(ol, name)(preset=preset, engine="reference", **arguments)
    params = [KERNEL.copy(), DENSE_BIAS.copy()]
    for _ in range(STEPS):
        reference.apply_gradients(zip(_mse_gradients(*params), params, strict=True))
    _assert_close(model.layers[0].get_weights(), params, rtol=1e-11)


@pytest.mark.parametrize("name", ["Muon", "Adafactor"])
def test_fit_matches_keras_own(name):
    """Inside model.fit's jitted train step, preset="keras" trains the Dense layer as Keras's
    own Muon (Newton-Schulz on the kernel, AdamW on the bias) and Adafactor do."""
    ours = _fit(olk.CLASSES[name](learning_rate=0.05), STEPS).layers[0].get_weights()
    theirs = _fit(getattr(keras.optimizers, name)(learning_rate=0.05), STEPS)
    _assert_close(ours, theirs.layers[0].get_weights(), KERAS_RTOL.get(name, 1e-11))
    moved = [np.max(np.abs(a - b)) for a, b in zip(ours, (KERNEL, DENSE_BIAS), strict=True)]
    assert min(moved) > 1e-3  # (both variables took steps)


def test_fit_with_the_torch_preset_is_torch_adam():
    """Issue 14's example: optimlab.keras.Adam(preset="torch") in model.fit trains the model
    as torch.optim.Adam trains it in PyTorch (L2 weight decay, AMSGrad)."""
    torch = pytest.importorskip("torch")
    model = _fit(olk.Adam(learning_rate=0.1, preset="torch", weight_decay=0.01, amsgrad=True), 5)
    linear = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(KERNEL.T))
        linear.bias.copy_(torch.tensor(DENSE_BIAS))
    optimizer = torch.optim.Adam(linear.parameters(), lr=0.1, weight_decay=0.01, amsgrad=True)
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(5):
        optimizer.zero_grad()
        ((linear(x) - y) ** 2).mean().backward()
        optimizer.step()
    kernel, bias = model.layers[0].get_weights()
    _assert_close([kernel.T, bias], [linear.weight.detach().numpy(), linear.bias.detach().numpy()])


@pytest.mark.parametrize("name", ["Adam", "Nadam", "Muon"])
def test_float32_variables_follow_keras(name):
    """float32 variables are updated in float32 (the step numbers cast to it), within float32
    rounding of Keras's own optimizer (the order of the operations differs)."""
    runs = []
    for optimizer in (olk.CLASSES[name](), getattr(keras.optimizers, name)()):
        variables = [keras.Variable(KERNEL, dtype="float32"), keras.Variable(BIAS, dtype="float32")]
        for g in GRADIENTS:
            grads = [keras.ops.convert_to_tensor(x, dtype="float32") for x in g]
            optimizer.apply(grads, variables)
        runs.append([keras.ops.convert_to_numpy(v) for v in variables])
    assert all(v.dtype == np.float32 for v in runs[0])
    _assert_close(runs[0], runs[1], rtol=1e-6)
