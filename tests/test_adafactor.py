"""Adafactor's pieces on their own: the factored second moment (the rank-1 reconstruction of
the paper), the state's size, which axes each peer factors, the refusals of the tensor-level
runtime, the PyTorch drop-in's face, and the Keras behaviours the preset copies or leaves."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import optimlab as ol
from optimlab.rules import adafactor as rule

from .hostile.world import refuses

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "adafactor_memory.py"

# -- the factored second moment ---------------------------------------------------------------

_MATRICES = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=7),
    elements=st.floats(1e-3, 1e3),
)


@settings(max_examples=60, deadline=None)
@given(a=_MATRICES)
def test_the_factored_moment_is_the_rank_one_reconstruction(a):
    """From zero state with beta_2 = 0 (the first step), R and C are the row and column means
    of A = g^2 and V = R C / mean(R), which in sums is row_sums col_sums / sum(A): the rank-1
    matrix with A's row and column sums (Shazeer & Stern, Section 3), over the last two axes
    of every leading index."""
    r, c = a.ndim - 2, a.ndim - 1
    zero_row, zero_col = np.zeros(a.shape[:-1]), np.zeros(a.shape[:-2] + a.shape[-1:])
    v, v_row, v_col = rule.factored_second_moment(a, zero_row, zero_col, (r, c), 0.0, 1.0)
    np.testing.assert_allclose(v_row, a.mean(axis=c), rtol=1e-13)
    np.testing.assert_allclose(v_col, a.mean(axis=r), rtol=1e-13)
    rows, cols = a.sum(axis=c), a.sum(axis=r)
    total = rows.sum(axis=-1)[..., None, None]
    np.testing.assert_allclose(v, rows[..., :, None] * cols[..., None, :] / total, rtol=1e-12)
    np.testing.assert_allclose(v.sum(axis=c), rows, rtol=1e-12)  # the same marginals
    np.testing.assert_allclose(v.sum(axis=r), cols, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 9), elements=st.floats(1e-3, 1e3)),
    y=hnp.arrays(np.float64, st.integers(1, 9), elements=st.floats(1e-3, 1e3)),
)
def test_a_rank_one_second_moment_is_reproduced_exactly(x, y):
    """A = x y^T is its own rank-1 reconstruction: nothing is lost by factoring it."""
    a = np.outer(x, y)
    v, _, _ = rule.factored_second_moment(a, np.zeros(len(x)), np.zeros(len(y)), (0, 1), 0, 1)
    np.testing.assert_allclose(v, a, rtol=1e-12)


def test_the_moving_averages_of_the_factors_are_the_factors_of_the_average():
    """R and C are EMAs of the row and column means: the means of an EMA of g^2 (mean is
    linear), so their reconstruction is that of the full second moment an RMSprop keeps."""
    rng = np.random.default_rng(0)
    row, col, full = np.zeros(4), np.zeros(3), np.zeros((4, 3))
    for t in range(1, 30):
        g2 = rng.standard_normal((4, 3)) ** 2
        beta = 1 - t**-0.8
        _, row, col = rule.factored_second_moment(g2, row, col, (0, 1), beta, 1 - beta)
        full = beta * full + (1 - beta) * g2
    np.testing.assert_allclose(row, full.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(col, full.mean(axis=0), rtol=1e-13)


# -- the state ------------------------------------------------------------------------------


def _state_sizes(opt) -> dict[str, tuple]:
    return {key: buf.shape for key, buf in opt.state_dict()["slots"].items()}


@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
@pytest.mark.parametrize("n,m", [(3, 5), (64, 17), (300, 200), (129, 1000)])
def test_the_state_of_an_n_by_m_matrix_is_n_plus_m_numbers(preset, n, m):
    """O(n + m) for a factored n x m matrix (optax factors it where both sides have 128
    entries, its default), against Adam's 2 n m."""
    p = np.zeros((n, m))
    opt = ol.Adafactor(learning_rate=0.1, preset=preset)
    opt.build([p])
    adam = ol.Adam()
    adam.build([np.zeros((n, m))])
    count = sum(math.prod(s) for s in _state_sizes(opt).values())
    factored = preset != "optax" or min(n, m) >= 128
    assert count == (n + m if factored else n * m)
    assert sum(math.prod(s) for s in _state_sizes(adam).values()) == 2 * n * m


@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
def test_a_vector_and_a_scalar_keep_an_unfactored_v(preset):
    """A 1-D (or 0-d) parameter has the second moment of RMSprop: v of its own shape,
    v = g^2 (+ epsilon_1) after the first step (beta_2 = 1 - 1^-0.8 = 0)."""
    g_vec, g_scalar = np.array([1.0, -2.0, 0.5, 3.0, -0.25]), np.array(0.7)
    vec, scalar = np.ones(5), np.array(2.0)
    opt = ol.Adafactor(learning_rate=0.01, preset=preset)
    opt.apply_gradients([(g_vec, vec), (g_scalar, scalar)])
    assert _state_sizes(opt) == {"v/0": (5,), "v/1": ()}
    epsilon = 0.0 if preset == "torch" else 1e-30  # torch's epsilon_1 is a floor
    np.testing.assert_array_equal(opt.state_dict()["slots"]["v/0"], g_vec**2 + epsilon)
    assert opt.state_dict()["slots"]["v/1"] == g_scalar**2 + epsilon


def test_which_axes_each_peer_factors():
    """Keras and torch: the last two axes of anything of two or more; optax: the second
    largest (r) and the largest (c), only where the second largest has >= 128 entries."""
    last, largest = ("last_two", 0), ("two_largest", 128)
    assert rule.factored_axes((4, 3), True, *last) == (0, 1)
    assert rule.factored_axes((2, 5, 3), True, *last) == (1, 2)
    assert rule.factored_axes((1, 7), True, *last) == (0, 1)
    assert rule.factored_axes((7,), True, *last) is None
    assert rule.factored_axes((4, 3), False, *last) is None
    assert rule.factored_axes((130, 4), True, *largest) is None  # 4 < 128
    assert rule.factored_axes((130, 128), True, *largest) == (1, 0)
    assert rule.factored_axes((3, 200, 129), True, *largest) == (2, 1)
    assert rule.factored_axes((2, 5, 3), True, "two_largest", 2) == (2, 1)
    assert rule.factored_axes((4, 4), True, "two_largest", 2) == (0, 1)  # argsort's tie order
    shapes = {"keras": {}, "optax": {}}
    for preset in shapes:
        opt = ol.Adafactor(learning_rate=0.1, preset=preset, min_dim_size_to_factor=2)
        opt.build([np.zeros((2, 5, 3))])
        shapes[preset] = _state_sizes(opt)
    assert shapes["keras"] == {"v_row/0": (2, 5), "v_col/0": (2, 3)}
    assert shapes["optax"] == {"v_row/0": (2, 3), "v_col/0": (2, 5)}


def test_the_state_round_trips_and_keras_variables_hold_the_factors():
    rng = np.random.default_rng(1)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    opt = ol.Adafactor(learning_rate=0.1)
    for _ in range(3):
        opt.apply_gradients([(rng.standard_normal(p.shape), p) for p in params])
    assert [v.shape for v in opt.variables] == [(), (), (4,), (3,), (5,)]
    twin = ol.Adafactor(learning_rate=0.5)
    copies = [p.copy() for p in params]
    twin.build(copies)
    twin.set_weights(opt.variables)
    grads = [rng.standard_normal(p.shape) for p in params]
    opt.apply_gradients(zip(grads, params, strict=True))
    twin.apply_gradients(zip(grads, copies, strict=True))
    for a, b in zip(params, copies, strict=True):
        np.testing.assert_array_equal(a, b)


# -- refusals -------------------------------------------------------------------------------


def test_refusals_name_the_argument_and_change_nothing():
    with pytest.raises(ValueError, match="engine='fused' is not available for Adafactor"):
        ol.Adafactor(engine="fused")
    with pytest.raises(TypeError, match="updates whole matrices"):
        ol.Adafactor().step(ol.Params({"w": np.ones((2, 3))}))
    with pytest.raises(ValueError, match=r"beta_2_decay must be a float <= 0, got 0.5"):
        ol.Adafactor(beta_2_decay=0.5)
    with pytest.raises(ValueError, match=r"momentum must be a float in \[0, 1\), got 1.0"):
        ol.Adafactor(momentum=1.0)
    with pytest.raises(ValueError, match=r"factored_dims must be one of"):
        ol.Adafactor(factored_dims="first_two")
    p = np.ones((3, 4))
    opt = ol.Adafactor(learning_rate=0.1)
    opt.apply_gradients([(np.ones((3, 4)), p)])
    refuses(
        lambda: setattr(opt, "momentum", 0.9),
        world=(opt, p),
        says=("momentum", "after the optimizer is built"),
    )
    refuses(
        lambda: setattr(opt, "factored_dims", "two_largest"),
        world=(opt, p),
        says=("factored_dims", "after the optimizer is built"),
    )
    opt.clip_threshold = None  # not structural: the next step is not clipped
    opt.apply_gradients([(np.ones((3, 4)), p)])


def test_an_empty_parameter_is_left_alone():
    p = np.zeros((3, 0))
    opt = ol.Adafactor(learning_rate=0.1, preset="torch")
    with np.errstate(all="raise"):
        opt.apply_gradients([(np.zeros((3, 0)), p)])
    assert _state_sizes(opt) == {"v_row/0": (3,), "v_col/0": (0,)}
    assert np.isfinite(opt.state_dict()["slots"]["v_row/0"]).all()


# -- the memory figure ------------------------------------------------------------------------


def test_adafactor_keeps_under_one_percent_of_adams_state():
    """The issue's figure, from the built optimizers: one 4096 x 4096 float32 matrix, 8192
    float32 numbers (32 KiB) against Adam's 2 x 16.8 M (128 MiB): 0.024%."""
    p = np.zeros((4096, 4096), np.float32)
    sizes = {}
    for name in ("Adafactor", "Adam"):
        opt = ol.get(name)
        opt.build([p])
        sizes[name] = sum(buf.nbytes for buf in opt.state_dict()["slots"].values())
    assert sizes == {"Adafactor": 2 * 4096 * 4, "Adam": 2 * 4096 * 4096 * 4}
    assert sizes["Adafactor"] / sizes["Adam"] < 0.01


def test_the_memory_benchmark_prints_every_library():
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--size", "256"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| library | Adafactor bytes | Adam bytes | Adafactor / Adam |"
    rows = {cells[0]: cells[1:] for cells in (r.strip("| ").split(" | ") for r in table[1:])}
    assert set(rows) == {"optimlab", "optimlab.torch", "torch.optim"}
    assert rows["optimlab"][:2] == [str(2 * 256 * 4), str(2 * 256 * 256 * 4)]
    for factored, adam, ratio in rows.values():
        assert int(factored) / int(adam) < 0.01 and ratio.endswith("%")
    # the drop-in keeps what torch.optim keeps
    assert rows["optimlab.torch"] == rows["torch.optim"]


# -- the PyTorch drop-in --------------------------------------------------------------------


def test_the_torch_drop_in_has_torchs_signature_defaults_and_state():
    torch = pytest.importorskip("torch")
    import optimlab.torch as ot

    theirs = inspect.signature(torch.optim.Adafactor.__init__).parameters
    ours = dict(inspect.signature(ot.Adafactor.__init__).parameters)
    assert ours.pop("engine").default == "auto" and ours.pop("nan_policy").default == "propagate"
    assert ours.pop("preset").default == "torch"
    assert list(ours) == list(theirs)
    assert all(ours[k].default == v.default and ours[k].kind == v.kind for k, v in theirs.items())
    params = [torch.nn.Parameter(torch.ones(3, 4)), torch.nn.Parameter(torch.ones(5))]
    opt, ref = ot.Adafactor(params), torch.optim.Adafactor([torch.nn.Parameter(torch.ones(1))])
    assert opt.defaults == ref.defaults
    for p in params:
        p.grad = torch.full_like(p, 0.5)
    opt.step()
    assert list(opt.state[params[0]]) == ["step", "row_var", "col_var"]
    assert opt.state[params[0]]["row_var"].shape == (3, 1)
    assert opt.state[params[0]]["col_var"].shape == (1, 4)
    assert list(opt.state[params[1]]) == ["step", "variance"]


def test_the_torch_drop_in_refuses_what_numpy_cannot_update_and_changes_nothing():
    torch = pytest.importorskip("torch")
    import optimlab.torch as ot

    with pytest.raises(ValueError, match="engine must be one of 'auto'"):
        ot.Adafactor([torch.nn.Parameter(torch.ones(2))], engine="fused")
    with pytest.raises(ValueError, match=r"^Clipping threshold d should be >= 1 but is: 0.5$"):
        ot.Adafactor([torch.nn.Parameter(torch.ones(2))], d=0.5)
    good = torch.nn.Parameter(torch.ones(2, 3))
    half = torch.nn.Parameter(torch.ones(4, dtype=torch.float16))
    good.grad, half.grad = torch.ones(2, 3), torch.ones(4, dtype=torch.float16)
    opt = ot.Adafactor([good, half])
    with pytest.raises(TypeError, match="parameter 1 is a torch.float16 tensor"):
        opt.step()
    assert torch.equal(good, torch.ones(2, 3)) and not opt.state


def test_the_torch_drop_in_takes_the_first_parameters_machine_epsilon():
    """torch's loop sets eps1 = finfo(dtype).eps once, from the group's first parameter with a
    gradient: a float64 parameter after a float32 one is floored at float32's epsilon."""
    torch = pytest.importorskip("torch")
    import optimlab.torch as ot

    def run(cls):
        first = torch.nn.Parameter(torch.ones(3, dtype=torch.float32))
        second = torch.nn.Parameter(torch.ones(4, 2, dtype=torch.float64))
        opt = cls([first, second], lr=0.1)
        for _ in range(3):
            first.grad = torch.full_like(first, 1e-9)
            second.grad = torch.full_like(second, 1e-9)
            opt.step()
        return second.detach().clone()

    theirs, ours = run(torch.optim.Adafactor), run(ot.Adafactor)
    assert float((ours - theirs).abs().max()) <= 1e-15
    # U = g / max(|g|, eps1): 1e-9 / 1.2e-7 under float32's epsilon (1 under float64's), so
    # three steps of 0.1 * 0.0084
    assert float((theirs - 1).abs().max()) == pytest.approx(3 * 0.1 * 1e-9 / 2**-23, rel=1e-3)


# -- Keras: what the preset copies and what it leaves -----------------------------------------


@pytest.fixture
def keras_float64():
    keras = pytest.importorskip("keras")
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)


@pytest.mark.conformance
def test_keras_relative_step_changes_nothing_and_its_means_are_float32(keras_float64):
    """keras.optimizers.Adafactor takes min(lr, 1/sqrt(t)) whatever ``relative_step`` (the
    reason optimlab's relative_step=False has no Keras peer), and ops.mean of a float64
    tensor is a float32 number (the reason for mean_dtype="float32")."""
    keras = keras_float64
    rng = np.random.default_rng(2)
    p0, grads = rng.standard_normal(6), [rng.standard_normal(6) for _ in range(12)]
    results = []
    for relative_step in (True, False):
        v = keras.Variable(p0.copy(), dtype="float64")
        opt = keras.optimizers.Adafactor(learning_rate=0.9, relative_step=relative_step)
        for g in grads:
            opt.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
        results.append(np.asarray(v))
    np.testing.assert_array_equal(results[0], results[1])
    x = np.array([0.1, 0.2, 0.7])
    keras_mean = float(keras.ops.mean(keras.ops.convert_to_tensor(x)))
    assert keras_mean == float(np.float32(np.float32(x).sum() * np.float32(1 / 3)))
    assert keras_mean != float(np.mean(x))
    ours = ol.Adafactor(learning_rate=0.9)
    p = p0.copy()
    for g in grads:
        ours.apply_gradients([(g, p)])
    # a vector: Keras's float32 means exactly, so the last float64 bit (XLA's pow) only
    np.testing.assert_allclose(p, results[0], rtol=1e-14)


@pytest.mark.conformance
def test_keras_variables_are_optimlabs_plus_placeholders_and_full_velocities(keras_float64):
    """Keras keeps two 0-d placeholders beside the v of a vector, and beside R and C of a
    matrix a full-size velocity it recomputes at every step and never reads; optimlab keeps
    neither: without them the two lists are the same."""
    keras = keras_float64
    rng = np.random.default_rng(3)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    variables = [keras.Variable(p.copy(), dtype="float64") for p in params]
    theirs = keras.optimizers.Adafactor(learning_rate=0.1)
    ours = ol.Adafactor(learning_rate=0.1)
    for _ in range(3):
        grads = [rng.standard_normal(p.shape) for p in params]
        theirs.apply_gradients(
            zip([keras.ops.convert_to_tensor(g) for g in grads], variables, strict=True)
        )
        ours.apply_gradients(zip(grads, params, strict=True))
    kept = [np.asarray(v) for v in theirs.variables]
    # [iterations, lr, R_0, C_0, V_0 (4 x 3), placeholder, placeholder, v_1]
    assert [a.shape for a in kept] == [(), (), (4,), (3,), (4, 3), (), (), (5,)]
    kept = kept[:4] + kept[7:]
    mine = ours.variables
    assert [a.shape for a in mine] == [a.shape for a in kept]
    for a, b in zip(mine[2:], kept[2:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7)


@pytest.mark.conformance
@pytest.mark.parametrize("dtype,tolerance", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_optax_factors_at_its_default_of_128_entries(dtype, tolerance):
    """optax.adafactor itself, live, on a (130, 128) matrix (factored: both axes have 128
    entries; its largest axis is the first) beside a (4, 3) one (not factored): 30 calls with
    a change of the learning rate and a schedule, as the conformance grid runs them (whose
    stored answers keep to small tensors)."""
    from tests.conformance import peers

    rng = np.random.default_rng(4)
    shapes = ((130, 128), (4, 3), (5,))
    params0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(30)]
    plan = peers.LrPlan(lr0=0.3, lr1=0.1, change_at=10, schedule_at=20)
    theirs = peers.run_peer("optax", "Adafactor", {}, params0, grads, plan)["params"]
    opt = ol.Adafactor(learning_rate=plan.lr0, preset="optax")
    params = [p.copy() for p in params0]
    for call, g in enumerate(grads):
        if call == plan.change_at:
            opt.learning_rate = plan.lr1
        if call == plan.schedule_at:
            opt.learning_rate = ol.schedules.ExponentialDecay(
                plan.lr1, decay_steps=plan.decay_steps, decay_rate=plan.decay_rate
            )
        opt.apply(g, params)
    assert _state_sizes(opt) == {"v_row/0": (128,), "v_col/0": (130,), "v/1": (4, 3), "v/2": (5,)}
    for ours, peer in zip(params, theirs, strict=True):
        assert np.max(np.abs(ours - peer)) <= tolerance * np.max(np.abs(peer))
