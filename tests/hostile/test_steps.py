"""apply_gradients / apply / build / step misuse, bad gradients, bad parameters: every refusal
names the culprit and changes nothing; every accepted input steps as the math says (finite
where the math is finite)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import optimlab as ol

from .world import accepted, refuses

OPTIMIZERS = sorted(ol.OPTIMIZERS)
#: those with a fused engine (Muon's rule works on whole matrices only)
FUSED = [n for n in OPTIMIZERS if not getattr(ol.OPTIMIZERS[n].rule, "TENSOR", False)]


def built(name="Adam", engine="auto", **kwargs):
    """An optimizer after two updates of two float64 parameters (all its state is non-zero)."""
    opt = ol.get(name, learning_rate=0.1, engine=engine, **kwargs)
    params = [np.linspace(-1, 1, 6).reshape(2, 3), np.ones(4)]
    for _ in range(2):
        opt.apply_gradients(zip([np.full((2, 3), 0.3), np.full(4, -0.2)], params, strict=True))
    return opt, params


def _masked():
    return np.ma.masked_array(np.ones(4), mask=[0, 1, 0, 0])


# (label, gradients for the two parameters, exception, message fragments)
BAD_GRADIENTS = [
    (
        "wrong shape",
        lambda p: [np.ones((3, 2)), np.ones(4)],
        ValueError,
        ["gradient 0", "(3, 2)", "(2, 3)"],
    ),
    ("broadcastable", lambda p: [np.ones(3), np.ones(4)], ValueError, ["gradient 0", "shape (3,)"]),
    ("scalar for array", lambda p: [1.0, np.ones(4)], ValueError, ["gradient 0", "shape ()"]),
    (
        "float32 for float64",
        lambda p: [np.ones((2, 3), np.float32), np.ones(4)],
        TypeError,
        ["gradient 0", "float32", "float64"],
    ),
    (
        "int array",
        lambda p: [np.ones((2, 3), np.int64), np.ones(4)],
        TypeError,
        ["gradient 0", "int64"],
    ),
    (
        "bool array",
        lambda p: [np.ones((2, 3), bool), np.ones(4)],
        TypeError,
        ["gradient 0", "bool"],
    ),
    (
        "complex array",
        lambda p: [np.ones((2, 3), complex), np.ones(4)],
        TypeError,
        ["gradient 0", "complex128"],
    ),
    (
        "object array",
        lambda p: [np.array([[1.0, None, 1.0]] * 2, dtype=object), np.ones(4)],
        TypeError,
        ["gradient 0", "object"],
    ),
    ("string", lambda p: [np.ones((2, 3)), "abc"], TypeError, ["gradient 1", "'abc'"]),
    (
        "list of strings",
        lambda p: [np.ones((2, 3)), ["1", "2", "3", "4"]],
        TypeError,
        ["gradient 1", "'1'"],
    ),
    ("list of bools", lambda p: [np.ones((2, 3)), [True] * 4], TypeError, ["gradient 1", "bool"]),
    (
        "list of complex",
        lambda p: [np.ones((2, 3)), [1j] * 4],
        TypeError,
        ["gradient 1", "complex"],
    ),
    (
        "ragged list",
        lambda p: [np.ones((2, 3)), [[1.0], [1.0, 2.0]]],
        TypeError,
        ["gradient 1", "ragged"],
    ),
    ("huge int list", lambda p: [np.ones((2, 3)), [10**400] * 4], TypeError, ["gradient 1"]),
    ("dict", lambda p: [np.ones((2, 3)), {"a": 1}], TypeError, ["gradient 1", "dict"]),
    ("masked array", lambda p: [np.ones((2, 3)), _masked()], TypeError, ["gradient 1", "masked"]),
    (
        "the parameter itself",
        lambda p: [p[0], np.ones(4)],
        ValueError,
        ["gradient of parameter 0", "shares memory", "its own parameter"],
    ),
    ("a view of the parameter", lambda p: [p[0][:, :], np.ones(4)], ValueError, ["shares memory"]),
    (
        "a view of another parameter",
        lambda p: [np.ones((2, 3)), p[0].reshape(-1)[:4]],
        ValueError,
        ["gradient of parameter 1", "parameter 0"],
    ),
    (
        "NaN",
        lambda p: [np.ones((2, 3)), np.array([1, np.nan, 1, 1])],
        FloatingPointError,
        ["gradient 1", "1 non-finite", "nothing was changed"],
    ),
    (
        "Inf",
        lambda p: [np.full((2, 3), -np.inf), np.ones(4)],
        FloatingPointError,
        ["gradient 0", "6 non-finite"],
    ),
]


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("engine", ["auto", "reference"])
@pytest.mark.parametrize("label,grads,exc,says", BAD_GRADIENTS, ids=[b[0] for b in BAD_GRADIENTS])
def test_bad_gradients_change_nothing(name, engine, label, grads, exc, says):
    opt, params = built(name, engine, use_ema=True)
    refuses(
        lambda: opt.apply_gradients(zip(grads(params), params, strict=True)),
        world=(opt, params),
        exc=exc,
        says=tuple(says),
    )


def test_a_gradient_aliasing_its_parameter_made_the_engines_disagree():
    """Why such a gradient is refused: with decoupled weight decay the reference engine
    decayed the gradient too (it is the parameter), the fused engine did not."""
    results = {}
    for engine in ("reference", "fused"):
        q = np.ones(4)
        opt = ol.SGD(0.1, weight_decay=0.5, engine=engine)
        refuses(lambda: opt.apply_gradients([(q, q)]), world=(opt, q), says=("shares memory",))  # noqa: B023
        g = q.copy()
        opt.apply_gradients([(g, q)])
        results[engine] = q
    np.testing.assert_array_equal(results["reference"], results["fused"])


def _fortran():
    return np.asfortranarray(np.ones((2, 3)))


BAD_PARAMETERS = [
    ("a list", lambda: [[0.0, 1.0]], TypeError, ["parameter 0", "NumPy array"]),
    ("int64", lambda: [np.zeros(2, np.int64)], TypeError, ["parameter 0", "int64"]),
    ("float16", lambda: [np.zeros(2, np.float16)], TypeError, ["parameter 0", "float16"]),
    ("big-endian", lambda: [np.zeros(2, ">f8")], TypeError, ["parameter 0", ">f8"]),
    ("complex", lambda: [np.zeros(2, complex)], TypeError, ["parameter 0", "complex"]),
    ("read-only", lambda: [np.zeros(2)[:]], ValueError, ["parameter 0", "read-only"]),
    ("np.matrix", lambda: [np.matrix(np.ones((1, 5)))], TypeError, ["parameter 0", "matrix"]),
    ("np.matrix column", lambda: [np.matrix(np.ones((5, 1)))], TypeError, ["matrix"]),  # crashed
    ("masked", lambda: [np.ma.masked_array(np.ones(3))], TypeError, ["parameter 0", "MaskedArray"]),
    ("twice", lambda: [np.zeros(2)] * 2, ValueError, ["parameter 1", "twice"]),
    (
        "two views of one buffer",
        lambda: (lambda a: [a, a[:]])(np.zeros(4)),
        ValueError,
        ["parameter 0 and parameter 1", "share memory"],
    ),
    (
        "overlapping slices",
        lambda: (lambda a: [a[:3], a[2:]])(np.zeros(5)),
        ValueError,
        ["share memory"],
    ),
    (
        "a reshaped view",
        lambda: (lambda a: [np.ones(2), a, a.reshape(2, 3)])(np.zeros(6)),
        ValueError,
        ["parameter 1 and parameter 2"],
    ),
    (
        "a transposed view",
        lambda: (lambda a: [a, a.T])(np.zeros((2, 3))),
        ValueError,
        ["share memory"],
    ),
]


def _readonly(params):
    for p in params:
        if p.base is not None and p.ndim == 1 and p.size == 2 and p.dtype == np.float64:
            p.flags.writeable = False
    return params


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("how", ["apply_gradients", "apply", "build"])
@pytest.mark.parametrize("label,make,exc,says", BAD_PARAMETERS, ids=[b[0] for b in BAD_PARAMETERS])
def test_bad_parameters_are_refused_before_anything_is_built(how, label, make, exc, says):
    params = make()
    if label == "read-only":
        params[0].flags.writeable = False
    arrays = [p for p in params if isinstance(p, np.ndarray)]
    opt = ol.Adam(0.1)
    grads = [np.ones(np.shape(p)) for p in params]
    call = {
        "apply_gradients": lambda: opt.apply_gradients(zip(grads, params, strict=True)),
        "apply": lambda: opt.apply(grads, params),
        "build": lambda: opt.build(params),
    }[how]
    refuses(call, world=(opt, arrays), exc=exc, says=tuple(says))
    assert not opt.built


def test_interleaved_views_that_share_no_element_are_separate_parameters():
    a = np.zeros(10)
    even, odd = a[::2], a[1::2]
    opt = ol.SGD(1.0)
    opt.apply_gradients([(np.ones(5), even), (np.full(5, 2.0), odd)])
    np.testing.assert_array_equal(a, np.tile([-1.0, -2.0], 5))
    accepted()


SHAPES = [(0,), (3, 0), (), (1,), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_zero_size_and_0d_parameters(shape, name):
    """Zero-size and 0-d parameters step (with norm clipping, EMA and accumulation too) and
    stay finite."""
    for options in (
        {},
        {"clipnorm": 1.0, "use_ema": True},
        {"global_clipnorm": 1.0, "gradient_accumulation_steps": 2},
    ):
        p = np.full(shape, 0.5)
        opt = ol.get(name, learning_rate=0.1, **options)
        for _ in range(3):
            opt.apply_gradients([(np.full(shape, 0.25), p)])
        assert p.shape == shape and np.isfinite(p).all()
    accepted()


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Lion", "Rprop", "Ftrl", "ASGD"])
def test_fortran_and_strided_parameters_match_contiguous_ones(name):
    """Layouts the fused engine cannot take run on the reference engine, with the same
    numbers."""
    base = np.arange(12.0).reshape(3, 4) / 10
    layouts = {
        "C": base.copy(),
        "F": np.asfortranarray(base),
        "strided": np.repeat(base, 2, axis=1)[:, ::2],
    }
    out = {}
    for label, p in layouts.items():
        opt = (
            ol.get(name, learning_rate=0.1, momentum=0.5)
            if name == "SGD"
            else ol.get(name, learning_rate=0.1)
        )
        for k in range(3):
            opt.apply_gradients([(np.full((3, 4), 0.1 * (k + 1)), p)])
        out[label] = np.array(p)
    np.testing.assert_array_equal(out["C"], out["F"])
    np.testing.assert_array_equal(out["C"], out["strided"])
    accepted()


def test_memmap_parameters_are_updated_in_place(tmp_path):
    m = np.memmap(tmp_path / "w.dat", dtype=np.float32, mode="w+", shape=(4,))
    m[:] = 1.0
    ol.Adam(0.1).apply_gradients([(np.ones(4, np.float32), m)])
    m.flush()
    np.testing.assert_allclose(np.fromfile(tmp_path / "w.dat", np.float32), 0.9, rtol=1e-5)
    accepted()


MISUSE = [
    (
        "apply_gradients(None)",
        lambda o, p: o.apply_gradients(None),
        TypeError,
        ["grads_and_vars", "None"],
    ),
    ("apply_gradients(5)", lambda o, p: o.apply_gradients(5), TypeError, ["grads_and_vars", "5"]),
    (
        "apply_gradients([g, p]) not pairs",
        lambda o, p: o.apply_gradients([np.ones(4), p[1]]),
        TypeError,
        ["grads_and_vars item 0", "pair"],
    ),
    ("a triple", lambda o, p: o.apply_gradients([(np.ones(4), p[1], 1)]), TypeError, ["item 0"]),
    ("apply(None)", lambda o, p: o.apply(None), TypeError, ["grads", "None"]),
    (
        "apply(grads, None params list)",
        lambda o, p: o.apply([np.ones(4)], 3),
        TypeError,
        ["params", "3"],
    ),
    (
        "apply one array as params",
        lambda o, p: o.apply([np.ones(4)] * 3, np.zeros((3, 4))),
        TypeError,
        ["params", "[array]"],
    ),
    (
        "apply too few",
        lambda o, p: o.apply([np.ones((2, 3))], p),
        ValueError,
        ["1 gradients for 2 parameters"],
    ),
    (
        "apply too many",
        lambda o, p: o.apply([np.ones((2, 3)), np.ones(4), np.ones(1)], p),
        ValueError,
        ["3 gradients for 2"],
    ),
    (
        "unknown parameter",
        lambda o, p: o.apply_gradients([(np.ones(3), np.zeros(3))]),
        ValueError,
        ["parameter 0", "not one of the 2 parameters"],
    ),
    ("build again", lambda o, p: o.build(p), ValueError, ["already built"]),
    ("step a list", lambda o, p: o.step(p), TypeError, ["step() takes an optimlab.Params", "list"]),
    (
        "step other Params",
        lambda o, p: o.step(ol.Params({"w": np.ones(2)})),
        ValueError,
        ["built for other parameters"],
    ),
    (
        "finalize an untracked array",
        lambda o, p: o.finalize_variable_values([p[0], np.ones(4)]),
        ValueError,
        ["parameter 1", "does not track"],
    ),
    ("finalize None items", lambda o, p: o.finalize_variable_values(5), TypeError, ["params", "5"]),
    ("load junk", lambda o, p: o.load_state_dict("junk"), TypeError, ["state", "'junk'"]),
]


@pytest.mark.parametrize("label,call,exc,says", MISUSE, ids=[m[0] for m in MISUSE])
def test_misuse_of_the_update_methods(label, call, exc, says):
    opt, params = built("Adam", use_ema=True, gradient_accumulation_steps=3)
    opt.apply_gradients(zip([np.full((2, 3), 0.3), np.full(4, -0.2)], params, strict=True))
    refuses(lambda: call(opt, params), world=(opt, params), exc=exc, says=tuple(says))


def test_build_and_apply_refuse_junk_before_anything_exists():
    for call, says in [
        (lambda o: o.build(None), ("params", "None")),
        (lambda o: o.build(5), ("params", "5")),
        (lambda o: o.build("w"), ("params", "'w'")),
        (lambda o: o.build(np.zeros((3, 4))), ("params", "[array]")),
        (lambda o: o.apply([np.ones(2)]), ("params must be given",)),
    ]:
        opt = ol.SGD()
        refuses(lambda: call(opt), world=(opt,), says=says)  # noqa: B023
        assert not opt.built


# -- NaN / Inf under every nan_policy, every engine ---------------------------------------


@settings(max_examples=40)
@given(
    name=st.sampled_from(OPTIMIZERS),
    engine=st.sampled_from(["auto", "reference"]),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.integers(0, 9),
    options=st.sampled_from(
        [
            {},
            {"gradient_accumulation_steps": 2},
            {"use_ema": True},
            {"loss_scale_factor": 4.0},
            {"clipnorm": 1.0},
        ]
    ),
)
def test_non_finite_gradients_under_every_policy(name, engine, bad, where, options):
    g = np.linspace(-1, 1, 10)
    g[where] = bad
    for policy in ("raise", "skip", "propagate"):
        _one_policy(name, engine, policy, options, g)


def _one_policy(name, engine, policy, options, g):
    p = [np.ones(10)]
    opt = ol.get(name, learning_rate=0.1, engine=engine, nan_policy=policy, **options)
    opt.apply_gradients([(np.full(10, 0.5), p[0])])
    if policy == "raise":
        refuses(
            lambda: opt.apply_gradients([(g, p[0])]),
            world=(opt, p),
            exc=FloatingPointError,
            says=("gradient 0", "1 non-finite"),
        )
    elif policy == "skip":
        from .world import snapshot

        before = snapshot(opt, p)
        skipped = opt.skipped_steps
        opt.apply_gradients([(g, p[0])])
        assert opt.skipped_steps == skipped + 1
        opt.skipped_steps = skipped
        assert snapshot(opt, p) == before  # only the count moved
        accepted()
    else:
        with np.errstate(all="ignore"):  # NaN in, NaN out: what the peers do
            opt.apply_gradients([(g, p[0])])
        accepted()


def test_params_gaps_are_no_gradient():
    """A NaN or a value written into the padding of ``params.grad`` (outside every named
    array, e.g. by ``params.grad[...] = 1``) used to fail the step with a message naming no
    array, and entered the norms of norm clipping."""
    P = ol.Params({"a": np.ones(3), "b": np.ones(2)})
    P.grad[...] = 1.0
    ol.SGD(1.0, clipnorm=1.0).step(P)
    np.testing.assert_allclose(P["a"], 1 - 1 / np.sqrt(5))  # the norm of the 5 named values
    Q = ol.Params({"a": np.ones(3), "b": np.ones(2)})
    Q.grad[...] = np.nan
    Q.grads["a"][...] = 1.0
    Q.grads["b"][...] = 1.0
    ol.SGD(0.5).step(Q)
    np.testing.assert_array_equal(Q["a"], 0.5)
    Q.grad[Q._gaps] = np.nan
    skipping = ol.SGD(0.5, nan_policy="skip")
    skipping.step(Q)  # NaN in no parameter's gradient: nothing to skip
    assert skipping.skipped_steps == 0 and skipping.iterations == 1
    np.testing.assert_array_equal(Q["a"], 0.0)
    accepted()


# -- finite float gradients stay finite through the pipeline ---------------------------------

F32 = np.finfo(np.float32).max
BIG = float(np.float32(1e30))


@settings(max_examples=60)
@given(
    grads=st.lists(
        hnp.arrays(np.float32, 6, elements=st.floats(-F32, F32, width=32)), min_size=2, max_size=6
    ),
    k=st.integers(2, 5),
    engine=st.sampled_from(["auto", "reference"]),
)
def test_accumulating_finite_float32_gradients_never_overflows(grads, k, engine):
    """Accumulation summed before dividing: k gradients of 3e38 overflowed to Inf and the
    parameters became NaN under nan_policy='raise'. The mean of finite gradients is finite."""
    p = np.zeros(6, np.float32)
    opt = ol.SGD(1e-30, gradient_accumulation_steps=k, engine=engine)
    for g in grads:
        opt.apply_gradients([(g, p)])
        assert np.isfinite(p).all() and all(np.isfinite(a).all() for a in opt._accumulators)
    accepted()


def test_accumulation_is_the_mean():
    g = np.full(3, np.float32(3e38))
    p = np.zeros(3, np.float32)
    opt = ol.SGD(1e-30, gradient_accumulation_steps=3)
    for _ in range(3):
        opt.apply_gradients([(g, p)])
    np.testing.assert_allclose(p, -3e8, rtol=1e-6)
    accepted()


@settings(max_examples=60)
@given(
    scale=st.floats(1e150, 1e307),
    size=st.integers(1, 40),
    clip=st.sampled_from(["clipnorm", "global_clipnorm"]),
    preset=st.sampled_from(["keras", "torch", "optax"]),
    engine=st.sampled_from(["auto", "reference"]),
)
def test_norm_clipping_of_huge_finite_gradients(scale, size, clip, preset, engine):
    """A float64 gradient of 1e200 has a finite norm, but its squares overflow: the norm came
    out Inf and clipping scaled the gradient by 0 (the parameters never moved)."""
    g = np.full(size, scale)
    p = np.zeros(size)
    ol.SGD(1.0, preset=preset, engine=engine, **{clip: 1.0}).apply_gradients([(g, p)])
    assert np.isfinite(p).all()
    np.testing.assert_allclose(np.linalg.norm(p), 1.0, rtol=1e-5)  # clipped to the threshold
    accepted()


@settings(max_examples=40)
@given(
    g=hnp.arrays(np.float32, 5, elements=st.floats(-BIG, BIG, width=32)),
    name=st.sampled_from(OPTIMIZERS),
    options=st.sampled_from(
        [
            {"use_ema": True},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "weight_decay_mode": "l2"},
            {"clipvalue": 1.0},
            {"loss_scale_factor": 1e10},
            {"maximize": True},
        ]
    ),
)
def test_large_finite_gradients_keep_the_state_finite(g, name, options):
    """Rules whose math is bounded (sign, clipped or normalized steps) stay finite for any
    finite float32 gradient up to 1e30 (g^2 overflows float32 beyond 1.8e19)."""
    if name in ("AdamW", "Muon") and options.get("weight_decay_mode") == "l2":
        return  # both refuse L2 decay (tested in test_hyperparameters)
    p = np.ones(5, np.float32)
    opt = ol.get(name, learning_rate=1e-3, **options)
    for _ in range(3):
        opt.apply_gradients([(g, p)])
    assert not np.isnan(p).any()
    accepted()


@settings(max_examples=30)
@given(exponent=st.integers(-1074, -1022), name=st.sampled_from(FUSED))
def test_subnormal_gradients(exponent, name):
    """Subnormal gradients are numbers like any other: the step is finite and both engines
    agree."""
    g = np.full(4, np.ldexp(1.0, exponent))
    out = []
    for engine in ("fused", "reference"):
        p = np.ones(4)
        ol.get(name, learning_rate=0.1, engine=engine).apply_gradients([(g, p)])
        out.append(p)
    assert np.isfinite(out[0]).all()
    np.testing.assert_array_equal(out[0], out[1])
    accepted()


def test_accumulation_steps_cannot_change_while_gradients_are_accumulated():
    """Changing gradient_accumulation_steps from 3 to 2 after two micro steps left the micro
    step past k - 1: the optimizer never updated again."""
    opt = ol.SGD(0.1, gradient_accumulation_steps=3)
    p = np.ones(2)
    opt.apply_gradients([(np.ones(2), p)])
    opt.apply_gradients([(np.ones(2), p)])
    refuses(
        lambda: setattr(opt, "gradient_accumulation_steps", 2),
        world=(opt, p),
        exc=ValueError,
        says=("gradient_accumulation_steps", "from 3 to 2", "2 gradient(s)"),
    )
    opt.apply_gradients([(np.ones(2), p)])  # the third: an update, the accumulators are empty
    assert opt.iterations == 1
    opt.gradient_accumulation_steps = 2
    for _ in range(2):
        opt.apply_gradients([(np.full(2, 2.0), p)])
    assert opt.iterations == 2
    np.testing.assert_allclose(p, 1 - 0.1 - 0.2)
    accepted()


def test_a_refused_params_step_leaves_the_group_options_alone():
    """step(params) recorded the Params' group options before checking its gradients."""
    P = ol.Params(
        {"a": np.ones(3), "b": np.ones(2)}, groups={"g": {"params": ["b"], "lr_scale": 0.5}}
    )
    P.grads["a"][...] = np.nan
    opt = ol.SGD(0.1)
    refuses(lambda: opt.step(P), world=(opt, P), exc=FloatingPointError, says=("'a' (3)",))
