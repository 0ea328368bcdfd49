"""The fused engine against the reference engine: parameters and every state buffer.

Every optimizer x option x preset, float32 and float64, 100 steps. The two engines run the same
rule function with the same scalars in the same dtype, so they agree bit for bit; the one
exception is norm clipping, whose norm the fused engine sums in another order (its last bit may
differ, and with it the scale): there float64 must agree within 1e-12 and float32 within 1e-6.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import optimlab as ol
from optimlab.engines import fused

from .conformance.cases import COMMON_OPTIONS, OWN_OPTIONS

STEPS = 100
SHAPES = ((7, 5), (300,), ())  # () and (7, 5) run serially, so does (300,) below the threshold
EXTRA_OPTIONS = [
    {"weight_decay": 0.05, "weight_decay_mode": "l2"},
    {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 7},
    {"maximize": True, "clipvalue": 0.5},
]


def cases():
    for (name, own), preset, dtype in itertools.product(
        OWN_OPTIONS.items(), ol.presets.PRESETS, ("float64", "float32")
    ):
        for options in own + COMMON_OPTIONS + EXTRA_OPTIONS:
            yield name, preset, dtype, options


def _fusable(name, options) -> bool:
    """A tensor-level rule (Muon) has no fused engine, nor has Ftrl with a learning-rate power
    other than -0.5 or 0 (``**`` rounds differently in NumPy and the kernel): engine="fused"
    is refused for them (tests/test_ftrl.py)."""
    if getattr(ol.OPTIMIZERS[name].rule, "TENSOR", False):
        return False
    return name != "Ftrl" or options.get("learning_rate_power", -0.5) in (-0.5, 0.0)


CASES = [c for c in cases() if _fusable(c[0], c[3])]


def run(engine, name, preset, dtype, options, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    kwargs = dict(options)
    if preset == "optax":
        kwargs.setdefault("learning_rate", 0.01)
    opt = ol.get(name, preset=preset, engine=engine, **kwargs)
    for step in range(STEPS):
        scale = np.exp(rng.standard_normal())
        grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
        if step == 40:
            opt.learning_rate = opt.learning_rate * 0.5
        opt.apply_gradients(zip(grads, params, strict=True))
    state = opt.state_dict()
    state["config"].pop("name")  # Keras's default names count up: adam, adam_1, ...
    return params, state


def assert_same(x, y, tol, path="state"):
    """Recursive comparison of two state dicts: arrays within ``tol`` (0: bit for bit)."""
    if isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.shape == y.shape and x.dtype == y.dtype, path
        if tol == 0.0:
            np.testing.assert_array_equal(x, y, err_msg=path)
        elif x.size:
            scale = max(float(np.max(np.abs(x))), 1e-30)
            assert float(np.max(np.abs(x - y))) / scale <= tol, path
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), path
        for k in x:
            assert_same(x[k], y[k], tol, f"{path}/{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), path
        for k, (a, b) in enumerate(zip(x, y, strict=True)):
            assert_same(a, b, tol, f"{path}/{k}")
    else:
        assert x == y or (tol and abs(x - y) <= tol * abs(x)), path


@pytest.mark.parametrize(
    "name,preset,dtype,options",
    CASES,
    ids=[f"{n}-{p}-{d}-{o or 'defaults'}" for n, p, d, o in CASES],
)
def test_fused_matches_reference(name, preset, dtype, options):
    try:
        ref_params, ref_state = run("reference", name, preset, dtype, options)
    except (ValueError, TypeError) as error:  # a combination the optimizer refuses
        with pytest.raises(type(error)):
            run("fused", name, preset, dtype, options)
        return
    fused_params, fused_state = run("fused", name, preset, dtype, options)
    clipped = bool({"clipnorm", "global_clipnorm"} & set(options))
    tol = 0.0 if not clipped else {"float64": 1e-12, "float32": 1e-6}[dtype]
    ref_state["config"].pop("engine")
    fused_state["config"].pop("engine")
    assert_same(ref_params, fused_params, tol, "params")
    assert_same(ref_state, fused_state, tol)


def test_auto_uses_fused_for_float_arrays_and_reference_otherwise(monkeypatch):
    calls = []
    monkeypatch.setattr(fused, "apply", lambda *a, **k: calls.append("fused"))
    opt = ol.Adam(0.1)
    opt.apply_gradients([(np.ones(3), np.zeros(3))])
    assert calls == ["fused"]
    strided = np.zeros(6)[::2]  # not contiguous: the reference engine takes it
    opt2 = ol.Adam(0.1)
    opt2.apply_gradients([(np.ones(3), strided)])
    assert calls == ["fused"] and strided[0] != 0.0


def test_forcing_fused_on_unsupported_arrays_is_a_clear_error():
    opt = ol.SGD(0.1, engine="fused")
    with pytest.raises(TypeError, match="engine='fused' needs float32/float64 C-contiguous"):
        opt.apply_gradients([(np.ones(3), np.zeros(6)[::2])])


def test_engine_is_validated_and_kept_in_the_config():
    with pytest.raises(ValueError, match="engine"):
        ol.SGD(engine="gpu")
    opt = ol.SGD(engine="reference")
    assert opt.get_config()["engine"] == "reference"
    assert ol.SGD.from_config(opt.get_config()).engine == "reference"


def test_large_arrays_take_the_parallel_loop_and_agree():
    n = fused.PARALLEL_THRESHOLD * 3 + 5
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(n).astype(np.float32)
    results = []
    for engine in ("reference", "fused"):
        p = p0.copy()
        opt = ol.Adam(1e-2, amsgrad=True, engine=engine)
        for _ in range(5):
            opt.apply_gradients([(rng.standard_normal(n).astype(np.float32), p)])
        results.append(p)
        rng = np.random.default_rng(1)
        rng.standard_normal(n)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize(
    "name, options",
    [
        ("Adam", {}),
        ("Adam", {"amsgrad": True, "global_clipnorm": 1.0, "use_ema": True}),
        ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
        ("RMSprop", {"centered": True, "momentum": 0.5, "clipnorm": 1.0}),
        ("Lion", {"maximize": True, "clipvalue": 0.1}),
        ("Rprop", {"preset": "optax", "learning_rate": 0.01}),
        ("Ftrl", {"l1_regularization_strength": 0.01, "use_ema": True}),
        # its decay handed to the rule after the scalars (DECAY), on the parallel loop
        ("ScheduleFreeAdamW", {"preset": "optax", "weight_decay": 0.01, "warmup_steps": 5}),
        ("ASGD", {"preset": "torch", "learning_rate": 0.05, "t0": 3.0, "weight_decay": 0.1}),
    ],
)
def test_a_fused_step_allocates_no_full_size_temporary(name, options):
    import tracemalloc

    n = 200_000
    peaks = {}
    for engine in ("fused", "reference"):
        params = ol.Params({"w": np.zeros(n, np.float32)})
        params.grads["w"][...] = 0.5
        opt = ol.get(name, engine=engine, **options)
        opt.step(params)  # build the state and compile first
        tracemalloc.start()
        opt.step(params)
        peaks[engine] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    param_bytes = 4 * n
    assert peaks["fused"] < 0.01 * param_bytes, peaks
    assert peaks["reference"] > 0.5 * param_bytes  # the measurement sees NumPy temporaries


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_bad_value_in_a_large_gradient_changes_nothing(dtype, bad):
    n = 5000  # above the size where the NaN check runs as a compiled kernel
    params = ol.Params({"w": np.ones(n, dtype)})
    opt = ol.Adam(0.1)
    params.grads["w"][...] = 0.5
    opt.step(params)
    before_p, before_state = params.data.copy(), opt.state_dict()
    params.grads["w"][n - 3] = bad
    with pytest.raises(FloatingPointError, match="has 1 non-finite value"):
        opt.step(params)
    np.testing.assert_array_equal(params.data, before_p)
    assert_same(before_state, opt.state_dict(), 0.0)
    skipping = ol.Adam(0.1, nan_policy="skip")
    skipping.step(params)
    assert skipping.skipped_steps == 1 and skipping.iterations == 0


def test_count_non_finite_counts_exactly_and_sees_overflow_of_the_loss_scale():
    g = np.ones(10_000, np.float32)
    assert fused.count_non_finite(g) == 0
    g[[3, 500, 9999]] = [np.nan, np.inf, -np.inf]
    assert fused.count_non_finite(g) == 3
    big = np.full(10_000, 3e38, np.float32)
    assert fused.count_non_finite(big, loss_scale=1.0) == 0
    assert fused.count_non_finite(big, loss_scale=0.5) == 10_000  # g / 0.5 overflows float32


@pytest.mark.parametrize("n", [10, 100_000])  # the serial and the parallel kernel
def test_all_finite_is_exact_where_a_sum_would_overflow(n):
    big = np.full(n, 3e38, np.float32)  # its sum overflows: a factored sum(g) * 0 would be NaN
    big[::2] *= -1
    assert fused.all_finite(big) and fused.FiniteCheck(big)()
    for bad in (np.nan, np.inf, -np.inf):
        g = big.copy()
        g[n // 2] = bad
        assert not fused.all_finite(g) and not fused.FiniteCheck(g)()
    assert not fused.all_finite(np.full(n, 1e30, np.float32), loss_scale=1e-30)  # g/s overflows


def test_importing_optimlab_compiles_no_kernel():
    import subprocess
    import sys

    code = (
        "import optimlab\n"
        "from optimlab.engines import fused\n"
        "from numba.core.registry import CPUDispatcher\n"
        "kernels = [n for n, f in vars(fused).items() if isinstance(f, CPUDispatcher)]\n"
        "compiled = [n for n in kernels if getattr(fused, n).signatures]\n"
        "print(len(kernels), len(fused._LOOPS), compiled)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loops, compiled = done.stdout.strip().split(" ", 2)
    # the pipeline's and the reductions' kernels; the rules' loops are generated on first use
    assert int(count) >= 7 and loops == "0" and compiled == "[]"
