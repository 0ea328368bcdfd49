"""The Keras API items of issue 10 (part 3) under each preset, with full before/after snapshots
for every refused call. Keras's own tests of the same behaviour run in test_keras_suite.py;
Keras itself is run beside optimlab for the measured differences in test_keras_differences.py.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import re
import warnings

import numpy as np
import pytest

import optimlab as ol
from optimlab import naming, schedules
from optimlab import optimizers as opts

PRESETS = ("keras", "torch", "optax")


def make(cls=ol.Adam, preset="keras", **kwargs):
    if preset == "optax":
        kwargs.setdefault("learning_rate", 0.01)
    return cls(preset=preset, **kwargs)


def snapshot(opt, params):
    """Everything a refused call must leave as it was."""
    state = opt.state_dict()
    return {
        "params": [p.copy() for p in params],
        "state": copy.deepcopy(state),
        "name": opt.name,
        "built": opt.built,
        "learning_rate": opt.learning_rate_schedule or opt.learning_rate,
        "excluded": (opt._excluded, opt._excluded_arrays),
    }


def assert_same(a, b, path="snapshot"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}/{k}")
    else:
        assert a == b, path


def stepped(cls=ol.Adam, preset="keras", **kwargs):
    """An optimizer after one update of two float64 parameters."""
    opt = make(cls, preset, **kwargs)
    params = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    opt.apply_gradients(zip([np.ones((2, 3)), np.ones(4)], params, strict=True))
    return opt, params


# -- the learning rate as a callable ---------------------------------------------------------


def test_a_callable_of_no_argument_is_called_as_keras_calls_it():
    calls = []

    def lr():
        calls.append(1)
        return 0.1

    opt = ol.SGD(learning_rate=lr)
    p = np.array([1.0, 2.0])
    opt.apply_gradients([(np.ones(2), p)])
    opt.apply_gradients([(np.ones(2), p)])
    np.testing.assert_array_equal(p, [1.0 - 0.1 - 0.1, 2.0 - 0.1 - 0.1])
    assert len(calls) == 2
    assert opt.learning_rate == 0.1 and opt.learning_rate_schedule is lr
    # the step form still gets the step
    seen = []
    opt.learning_rate = lambda step: seen.append(step) or 0.5
    opt.apply_gradients([(np.ones(2), p)])
    assert seen == [2]


@pytest.mark.parametrize(
    "fn, expected_steps",
    [
        (lambda *args: 0.1, [0, 1]),  # either form: the step is passed
        (lambda step=0: 0.1, [0, 1]),
        (lambda: 0.1, []),
    ],
)
def test_the_signature_decides(fn, expected_steps):
    seen = []

    def spy(*args):
        seen.extend(args)
        return fn(*args)

    spy.__signature__ = inspect.signature(fn)  # spy takes fn's signature
    assert (schedules.as_step_function(fn) is fn) == bool(expected_steps)
    opt = ol.SGD(learning_rate=spy)
    p = np.zeros(1)
    for _ in range(2):
        opt.apply_gradients([(np.ones(1), p)])
    assert seen == expected_steps
    assert p[0] == pytest.approx(-0.2, rel=1e-15)


def test_a_zero_argument_learning_rate_survives_state_dict_and_pickle():
    opt = ol.SGD(learning_rate=lambda: 0.25)
    p = np.zeros(1)
    opt.apply_gradients([(np.ones(1), p)])
    other = ol.SGD(learning_rate=0.1, name=opt.name)
    other.load_state_dict(opt.state_dict(), [np.zeros(1)])
    assert other.learning_rate == 0.25
    assert other.learning_rate_schedule is opt.learning_rate_schedule
    with pytest.raises(TypeError, match="plain callable and cannot be serialized"):
        opt.get_config()


@pytest.mark.parametrize("preset", PRESETS)
def test_a_callable_of_neither_form_is_refused_and_changes_nothing(preset):
    with pytest.raises(TypeError, match=r"learning_rate .* signature \(a, b\), which takes"):
        make(ol.SGD, preset, learning_rate=lambda a, b: 0.1)
    opt, params = stepped(ol.SGD, preset, momentum=0.9)
    before = snapshot(opt, params)
    with pytest.raises(TypeError, match=r"signature \(\*, step\)"):
        opt.learning_rate = lambda *, step: 0.1
    assert_same(snapshot(opt, params), before)


# -- None gradients --------------------------------------------------------------------------


def test_keras_no_gradient_at_all_raises_keras_error_and_changes_nothing():
    opt = ol.SGD(learning_rate=1.0)
    p = np.array([[3.0, 4.0], [5.0, 6.0]])
    before = snapshot(opt, [p])
    with pytest.raises(ValueError, match=r"^No gradients provided for any variable\. "):
        opt.apply_gradients([(None, p)])
    assert_same(snapshot(opt, [p]), before)  # not even built (Keras builds first)
    opt, params = stepped(ol.Adam)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"No gradients provided .* 2 gradient\(s\) given"):
        opt.apply_gradients(zip([None, None], params, strict=True))
    assert_same(snapshot(opt, params), before)


def test_keras_some_missing_gradients_warn_and_the_others_update():
    opt, params = stepped(ol.Adam)
    m1 = opt.state_dict()["slots"]["m/1"]
    b = params[1].copy()
    with pytest.warns(UserWarning) as record:
        opt.apply_gradients(zip([np.ones((2, 3)), None], params, strict=True))
    assert [str(w.message) for w in record] == [
        "Gradients do not exist for variables [parameter 1 (shape (4,), float64)] when "
        "minimizing the loss; they and their state are left unchanged."
    ]
    assert opt.iterations == 2
    np.testing.assert_array_equal(params[1], b)
    np.testing.assert_array_equal(opt.state_dict()["slots"]["m/1"], m1)


@pytest.mark.parametrize("preset", ["torch", "optax"])
def test_other_presets_ignore_missing_gradients_silently(preset):
    opt, params = stepped(ol.Adam, preset)
    before = snapshot(opt, params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.apply_gradients(zip([None, None], params, strict=True))  # no error, nothing moves
        assert_same(snapshot(opt, params), before)
        opt.apply_gradients(zip([np.ones((2, 3)), None], params, strict=True))
    assert opt.iterations == 2


@pytest.mark.parametrize("preset", PRESETS)
def test_no_pairs_at_all_is_a_no_op(preset):
    opt, params = stepped(ol.Adam, preset)
    before = snapshot(opt, params)
    opt.apply_gradients([])
    opt.apply([], [])
    assert_same(snapshot(opt, params), before)


# -- names -----------------------------------------------------------------------------------

KERAS_NAMES = {
    "SGD": "sgd",
    "Adagrad": "adagrad",
    "RMSprop": "rm_sprop",
    "Adam": "adam",
    "AdamW": "adam_w",
    "Nadam": "nadam",
    "Adamax": "adamax",
    "Adadelta": "adadelta",
    "Lion": "lion",
    "Muon": "muon",
    "RAdam": "r_adam",  # no Keras RAdam: what Keras's to_snake_case makes of the name
    "Rprop": "rprop",  # Keras has no Rprop: the name its rule would give
    "ASGD": "asgd",  # nor ASGD
    "Lamb": "lamb",
    "Adafactor": "adafactor",
    "Ftrl": "ftrl",
    "ScheduleFreeAdamW": "schedule_free_adam_w",
}


def test_default_names_are_keras_names_counted_up():
    naming.reset_names()
    assert set(KERAS_NAMES) == set(ol.OPTIMIZERS)
    for cls_name, expected in KERAS_NAMES.items():
        assert ol.OPTIMIZERS[cls_name]().name == expected
        assert ol.OPTIMIZERS[cls_name](preset="torch").name == f"{expected}_1"
    assert ol.Adam(name="my_adam").name == "my_adam"  # an explicit name takes no number
    assert ol.Adam().name == "adam_2"
    naming.reset_names()
    assert ol.Adam().name == "adam"


def test_names_round_trip_and_refused_constructions_take_no_number():
    naming.reset_names()
    first = ol.Adam()
    with pytest.raises(ValueError, match="beta_1"):
        ol.Adam(beta_1=2.0)
    second = ol.Adam()
    assert (first.name, second.name) == ("adam", "adam_1")
    assert ol.Adam.from_config(second.get_config()).name == "adam_1"
    assert opts.deserialize(opts.serialize(second)).name == "adam_1"
    assert ol.Adam().name == "adam_2"  # neither the refusal nor the round trips counted
    assert "name='adam_1'" in repr(second)
    assert pickle.loads(pickle.dumps(second)).name == "adam_1"


# -- scale_loss, get, serialize --------------------------------------------------------------


def test_scale_loss():
    assert ol.SGD(loss_scale_factor=1024.0).scale_loss(1.0) == 1024.0
    np.testing.assert_array_equal(ol.SGD(loss_scale_factor=4).scale_loss(np.ones(2)), [4.0, 4.0])
    loss = object()
    assert ol.SGD().scale_loss(loss) is loss


def test_get_takes_what_keras_get_takes():
    assert ol.get(None) is None
    assert type(ol.get("ADAMW")) is ol.AdamW
    assert ol.get("adam", learning_rate=0.5).learning_rate == 0.5
    opt = ol.SGD(0.3)
    assert ol.get(opt) is opt
    built = ol.get({"class_name": "sgd", "config": {"weight_decay": 0.05}})
    assert type(built) is ol.SGD and built.weight_decay == 0.05
    assert type(ol.get({"class_name": "Lion"})) is ol.Lion
    round_trip = ol.get(opts.serialize(ol.Adam(0.2, amsgrad=True, name="a")))
    assert round_trip.get_config() == ol.Adam(0.2, amsgrad=True, name="a").get_config()


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (
            lambda: ol.get("typo"),
            ValueError,
            r"unknown optimizer 'typo'; valid names \(any case\): SGD",
        ),
        (lambda: ol.get(3), ValueError, r"Could not interpret optimizer identifier: 3"),
        (lambda: ol.get(None, learning_rate=0.1), TypeError, r"keyword arguments \['learning"),
        (lambda: ol.get({"config": {}}), ValueError, r'expected a dict \{"class_name"'),
        (lambda: ol.get({"class_name": "sgd", "config": 3}), ValueError, r"must be a dict"),
        (lambda: opts.serialize("adam"), TypeError, r"serialize expects an optimlab optimizer"),
    ],
)
def test_get_refusals(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# -- build([]) -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(ol.OPTIMIZERS.values()), ids=list(ol.OPTIMIZERS))
def test_build_with_no_variables(cls):
    opt = make(cls)
    opt.build([])
    assert opt.built and opt.params == [] and opt.iterations == 0
    assert [v.item() for v in opt.variables] == [0, opt.learning_rate]  # iterations, lr
    p = np.zeros(2)
    before = snapshot(opt, [p])
    with pytest.raises(ValueError, match=r"parameter 0 .* is not one of the 0 parameters"):
        opt.apply_gradients([(np.ones(2), p)])
    with pytest.raises(ValueError, match="already built with 0 parameters"):
        opt.build([p])
    assert_same(snapshot(opt, [p]), before)


# -- Lion's beta_1, SGD's Nesterov without momentum ------------------------------------------


def test_lion_beta_1_range_follows_the_preset():
    assert ol.Lion(beta_1=1.0).beta_1 == 1.0
    for preset in ("torch", "optax"):
        assert make(ol.Lion, preset, beta_1=0.0).beta_1 == 0.0
    opt, params = stepped(ol.Lion)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"beta_1 must be a float in \(0, 1\], got 0.0"):
        opt.beta_1 = 0.0
    assert_same(snapshot(opt, params), before)


@pytest.mark.parametrize("preset", ["keras", "optax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nesterov_without_momentum_is_plain_sgd(preset, dtype):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(5).astype(dtype) for _ in range(4)]
    a, b = np.ones(5, dtype), np.ones(5, dtype)
    nesterov = make(ol.SGD, preset, learning_rate=0.1, nesterov=True)
    plain = make(ol.SGD, preset, learning_rate=0.1)
    for g in grads:
        nesterov.apply_gradients([(g, a)])
        plain.apply_gradients([(g, b)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.ones(5, dtype))
    assert nesterov.state_dict()["slots"] == {}  # no momentum buffer


def test_torch_refuses_nesterov_without_momentum_as_torch_does():
    message = r"^Nesterov momentum requires a momentum and zero dampening \(torch.optim.SGD\)"
    with pytest.raises(ValueError, match=message):
        ol.SGD(nesterov=True, preset="torch")
    with pytest.raises(ValueError, match=message + r".*dampening=0.5"):
        ol.SGD(momentum=0.9, nesterov=True, dampening=0.5, preset="torch")
    opt, params = stepped(ol.SGD, "torch", momentum=0.9, nesterov=True)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=message):
        opt.dampening = 0.1
    assert_same(snapshot(opt, params), before)


# -- exclude_from_weight_decay ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_excluded_parameters_get_no_weight_decay(engine):
    a, b, c = np.full(3, 2.0), np.full(3, 2.0), np.full(3, 2.0)
    opt = ol.SGD(learning_rate=1.0, weight_decay=0.004, engine=engine)
    opt.exclude_from_weight_decay(var_list=[b])
    zero = np.zeros(3)
    opt.apply_gradients([(zero, a), (zero, b), (zero, c)])
    np.testing.assert_array_equal(b, 2.0)
    np.testing.assert_array_equal(a, 2.0 - 2.0 * 0.004)
    np.testing.assert_array_equal(c, a)
    opt.exclude_from_weight_decay(var_list=[a])  # replaces the previous list
    opt.apply_gradients([(zero, a), (zero, b), (zero, c)])
    np.testing.assert_array_equal(a, 2.0 - 2.0 * 0.004)
    assert b[0] == np.float64(2.0) - np.float64(2.0) * 0.004
    opt.exclude_from_weight_decay()
    opt.apply_gradients([(zero, a), (zero, b), (zero, c)])
    assert a[0] < 2.0 - 2.0 * 0.004


def test_excluded_params_group_stays_excluded_on_the_planned_path():
    params = ol.Params(
        {"w": np.full(3, 2.0), "b": np.full(2, 2.0)}, groups={"b": {"params": ["b"]}}
    )
    opt = ol.SGD(learning_rate=1.0, weight_decay=0.1)
    groups = {group.name: data for group, data, _ in params.group_arrays()}
    opt.exclude_from_weight_decay(var_list=[groups["b"]])
    for _ in range(3):
        params.grad[...] = 0.0
        opt.step(params)
    np.testing.assert_array_equal(params["b"], 2.0)
    assert params["w"][0] == pytest.approx(2.0 * 0.9**3, rel=1e-15)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(var_names=["bias"]), TypeError, r"var_names=\['bias'\] cannot be matched: NumPy"),
        (dict(var_names="bias"), TypeError, r"var_names='bias' cannot be matched"),
        (dict(var_list=np.zeros(3)), TypeError, r"var_list must be a list of parameters"),
        (dict(var_list=[np.zeros(3), [1.0]]), TypeError, r"var_list\[1\] must be a NumPy array"),
        (dict(var_list=3), TypeError, r"var_list must be a list of parameters"),
    ],
)
def test_exclude_from_weight_decay_refusals_change_nothing(kwargs, exc, pattern):
    opt, params = stepped(ol.AdamW)
    opt.exclude_from_weight_decay(var_list=[params[0]])
    before = snapshot(opt, params)
    with pytest.raises(exc, match=pattern):
        opt.exclude_from_weight_decay(**kwargs)
    assert_same(snapshot(opt, params), before)
    assert opt._excluded == frozenset({id(params[0])})


def test_exclude_from_weight_decay_accepts_an_empty_var_names():
    opt = ol.SGD(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=[])
    assert opt._excluded == frozenset()


def test_repr_shows_the_name():
    assert re.search(r"name='sgd(_\d+)?', preset='keras'\)$", repr(ol.SGD()))


# -- gradient accumulation, counted as Keras counts ------------------------------------------


def test_gradient_accumulation_as_keras_counts():
    """The public half of Keras's test_gradient_accumulation: parameters move on every k-th
    call only, with the mean gradient, and ``iterations`` counts those updates."""
    p = np.array([4.0, -2.0])
    opt = ol.SGD(learning_rate=0.5, gradient_accumulation_steps=2)
    seen = []
    for g in ([1.0, 3.0], [3.0, 1.0], [2.0, 2.0], [0.0, 0.0]):
        opt.apply_gradients([(np.array(g), p)])
        seen.append((p.tolist(), opt.iterations))
    assert seen == [
        ([4.0, -2.0], 0),
        ([3.0, -3.0], 1),  # mean gradient (2, 2), lr 0.5
        ([3.0, -3.0], 1),
        ([2.5, -3.5], 2),  # mean gradient (1, 1)
    ]


@pytest.mark.conformance
def test_each_preset_does_what_its_peer_does_with_nesterov_and_no_momentum():
    torch = pytest.importorskip("torch")
    optax = pytest.importorskip("optax")
    keras = pytest.importorskip("keras")
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(ValueError, match="^Nesterov momentum requires a momentum and zero damp"):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, nesterov=True)
    g = np.array([0.5, -2.0])
    expected = -0.1 * g  # one plain SGD step from 0
    updates, _ = optax.sgd(0.1, momentum=0.0, nesterov=True).update(
        jnp.asarray(g), optax.sgd(0.1, momentum=0.0, nesterov=True).init(jnp.zeros(2))
    )
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-6)
    v = keras.Variable(np.zeros(2, np.float32))
    keras.optimizers.SGD(learning_rate=0.1, nesterov=True).apply_gradients(
        [(g.astype(np.float32), v)]
    )
    np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6)
    for preset in ("keras", "optax"):
        p = np.zeros(2)
        make(ol.SGD, preset, learning_rate=0.1, nesterov=True).apply_gradients([(g, p)])
        np.testing.assert_array_equal(p, expected)
