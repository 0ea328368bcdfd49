"""State round trips: state_dict, get_config, checkpoint files, and a resume in a new process
that continues bit-identically."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import optimlab as ol

# a frozen parameter (a None gradient) warns under preset="keras", as in Keras
pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist for variables")

CONFIGS = [
    ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9, dampening=0.2, preset="torch")),
    ("Adagrad", dict(learning_rate=0.1, lr_decay=0.01, preset="torch")),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True, use_ema=True, ema_overwrite_frequency=7)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True, preset="optax")),
    ("AdamW", dict(learning_rate=0.01, gradient_accumulation_steps=3, global_clipnorm=1.0)),
    ("Nadam", dict(learning_rate=0.01, preset="torch")),
    ("Nadam", dict(learning_rate=0.01)),
    ("Adamax", dict(learning_rate=0.01, clipvalue=0.5)),
    ("Adadelta", dict(learning_rate=1.0, weight_decay=0.01, preset="torch")),
    ("Lion", dict(learning_rate=0.001, weight_decay=0.1, nan_policy="skip")),
    ("RAdam", dict(learning_rate=0.01, preset="torch", weight_decay=0.01)),
    ("RAdam", dict(learning_rate=0.01, nesterov=True, use_ema=True, preset="optax")),
    ("Rprop", dict(learning_rate=0.01, preset="torch")),
    ("Rprop", dict(learning_rate=0.01, max_step_size=0.005, preset="optax")),
    # ASGD's step state (eta and mu of each parameter; the frozen one lags a step) and ax,
    # averaging from the 4th update
    ("ASGD", dict(learning_rate=0.05, t0=1.0, lambd=0.1, preset="torch", weight_decay=0.01)),
    ("ASGD", dict(learning_rate=0.05, t0=2.0, use_ema=True, clipnorm=1.0)),
    ("Lamb", dict(learning_rate=0.01, weight_decay=0.05, use_ema=True)),
    ("Lamb", dict(learning_rate=0.01, weight_decay=0.05, clipnorm=1.0, preset="optax")),
    # Adafactor's state of another shape than the parameter: the (3, 2) matrix keeps its row
    # and column factors, the vector its v (and optax's momentum buffer m)
    ("Adafactor", dict(learning_rate=0.1, weight_decay=0.01, gradient_accumulation_steps=2)),
    ("Adafactor", dict(learning_rate=0.01, preset="torch", use_ema=True)),
    ("Adafactor", dict(learning_rate=0.1, preset="optax", momentum=0.9, min_dim_size_to_factor=2)),
    # Ftrl: the fused engine (a square root), and a general power on the reference engine
    ("Ftrl", dict(learning_rate=0.1, l1_regularization_strength=0.01, use_ema=True)),
    (
        "Ftrl",
        dict(
            learning_rate=0.1,
            learning_rate_power=-0.3,
            l2_shrinkage_regularization_strength=0.01,
            gradient_accumulation_steps=2,
            preset="torch",
        ),
    ),
    # Schedule-Free's step state (lr_max, the sum of the averaging weights) and its z slot,
    # with a warmup that the resume crosses
    ("ScheduleFreeAdamW", dict(learning_rate=0.01, warmup_steps=8, weight_decay=0.05)),
    ("ScheduleFreeAdamW", dict(learning_rate=0.01, preset="optax", warmup_steps=8, use_ema=True)),
    ("ScheduleFreeAdamW", dict(learning_rate=0.01, preset="torch", weight_decay=0.05)),
]


def problem(seed, steps, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(4).astype(dtype)]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(steps)]
    if steps > 5:  # a frozen parameter (no gradient) for one step
        grads[5][1] = None
    return params, grads


def run(opt, params, grads):
    for g in grads:
        opt.apply_gradients(zip(g, params, strict=True))


def assert_same(a_opt, a_params, b_opt, b_params):
    for x, y in zip(a_params, b_params, strict=True):
        np.testing.assert_array_equal(x, y)
    sa, sb = a_opt.state_dict(), b_opt.state_dict()
    assert sa["iterations"] == sb["iterations"]
    assert sa["param_steps"] == sb["param_steps"]
    assert sa["step_state"] == sb["step_state"]
    assert sa["slots"].keys() == sb["slots"].keys()
    for key in sa["slots"]:
        np.testing.assert_array_equal(sa["slots"][key], sb["slots"][key])
    for field in ("accumulators", "ema"):
        if sa[field] is not None:
            for x, y in zip(sa[field], sb[field], strict=True):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_continues_identically(name, kwargs, dtype):
    params, grads = problem(1, 40, dtype)
    opt = ol.get(name, **kwargs)
    run(opt, params, grads[:20])
    state = opt.state_dict()
    clone_params = [p.copy() for p in params]
    clone = ol.get(name, **kwargs)
    clone.load_state_dict(state, clone_params)
    run(opt, params, grads[20:])
    run(clone, clone_params, grads[20:])
    assert_same(opt, params, clone, clone_params)


@pytest.mark.parametrize(
    "name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]
)
def test_checkpoint_file_round_trip(name, kwargs, tmp_path):
    params, grads = problem(2, 30)
    opt = ol.get(name, **kwargs)
    run(opt, params, grads[:13])
    path = tmp_path / "ckpt.npz"
    opt.save(path, params)
    restored_params = [np.zeros_like(p) for p in params]
    fresh = ol.get(name, learning_rate=123.0)  # a different config: the file's wins
    fresh.load(path, restored_params)
    assert fresh.get_config() == opt.get_config()
    run(opt, params, grads[13:])
    run(fresh, restored_params, grads[13:])
    assert_same(opt, params, fresh, restored_params)


def test_schedule_survives_a_checkpoint(tmp_path):
    sched = ol.schedules.CosineDecay(0.1, decay_steps=50, warmup_target=0.2, warmup_steps=10)
    params, grads = problem(3, 40)
    opt = ol.SGD(sched, momentum=0.9)
    run(opt, params, grads[:15])
    opt.save(tmp_path / "s.npz", params)
    other = ol.SGD(0.5)
    restored = [p.copy() for p in params]
    other.load(tmp_path / "s.npz", restored)
    assert isinstance(other.learning_rate_schedule, ol.schedules.CosineDecay)
    assert other.learning_rate == opt.learning_rate == sched(15)
    run(opt, params, grads[15:])
    run(other, restored, grads[15:])
    assert_same(opt, params, other, restored)


def test_plain_callable_learning_rate_cannot_be_saved(tmp_path):
    opt = ol.SGD(lambda step: 0.1)
    p = np.zeros(2)
    opt.apply_gradients([(np.ones(2), p)])
    with pytest.raises(TypeError, match="plain callable and cannot be saved"):
        opt.save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_corrupt_checkpoint_is_rejected_and_changes_nothing(tmp_path):
    params, grads = problem(4, 10)
    opt = ol.Adam(0.01)
    run(opt, params, grads)
    path = tmp_path / "c.npz"
    opt.save(path, params)
    data = bytearray(path.read_bytes())
    target = ol.Adam(0.01)
    target_params = [p.copy() + 1 for p in params]
    run(target, target_params, grads[:3])
    before = target.state_dict()
    saved_target_params = [p.copy() for p in target_params]
    for broken in (data[: len(data) // 2], data[:-1]):
        path.write_bytes(bytes(broken))
        with pytest.raises(ol.CheckpointError):
            target.load(path, target_params)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(ol.CheckpointError):
        target.load(path, target_params)
    for a, b in zip(target_params, saved_target_params, strict=True):
        np.testing.assert_array_equal(a, b)
    after = target.state_dict()
    assert after["iterations"] == before["iterations"]
    for key in before["slots"]:
        np.testing.assert_array_equal(after["slots"][key], before["slots"][key])


def test_loading_into_the_wrong_optimizer_or_shapes_is_rejected():
    params, grads = problem(5, 5)
    opt = ol.Adam(0.01)
    run(opt, params, grads)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="saved by 'Adam', cannot load into SGD"):
        ol.SGD().load_state_dict(state, params)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(2, 3\)"):
        ol.Adam().load_state_dict(state, [np.zeros((2, 3)), np.zeros(4)])
    with pytest.raises(ValueError, match="state holds 2 parameters, the optimizer has 1"):
        ol.Adam().load_state_dict(state, [np.zeros((3, 2))])
    with pytest.raises(ValueError, match="not built: pass its parameters"):
        ol.Adam().load_state_dict(state)
    broken = dict(state, slots={k: v for k, v in state["slots"].items() if k != "v/1"})
    with pytest.raises(ValueError, match=r"missing \['v/1'\]"):
        ol.Adam().load_state_dict(broken, [p.copy() for p in params])


@pytest.mark.parametrize("name", sorted(ol.OPTIMIZERS))
@pytest.mark.parametrize("preset", ["keras", "torch", "optax"])
def test_get_config_round_trip(name, preset):
    opt = ol.get(
        name, learning_rate=ol.schedules.ExponentialDecay(0.1, 10, 0.5), preset=preset, clipnorm=2.0
    )
    config = opt.get_config()
    json.dumps(config)  # JSON-serializable
    again = type(opt).from_config(config)
    assert again.get_config() == config
    assert again.learning_rate_schedule == opt.learning_rate_schedule


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, optimlab as ol
    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (7,))]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in params] for _ in range(60)]
    def make():
        return ol.Adam(ol.schedules.ExponentialDecay(0.01, 10, 0.9), amsgrad=True, use_ema=True,
                       gradient_accumulation_steps=2, global_clipnorm=3.0)
    if mode == "first-half":
        opt = make()
        for g in grads[:31]:
            opt.apply_gradients(zip(g, params))
        opt.save(path, params)
    elif mode == "second-half":
        opt = make()
        opt.load(path, params)
        for g in grads[31:]:
            opt.apply_gradients(zip(g, params))
    else:
        opt = make()
        for g in grads:
            opt.apply_gradients(zip(g, params))
    np.savez(out, *params, *opt.ema)
    """
)


def test_resume_in_a_new_process_is_bit_identical(tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    ckpt = tmp_path / "mid.npz"

    def call(mode, out):
        subprocess.run([sys.executable, str(script), mode, str(ckpt), str(out)], check=True)
        with np.load(out) as f:
            return [f[k] for k in sorted(f.files)]

    call("first-half", tmp_path / "half.npz")
    resumed = call("second-half", tmp_path / "resumed.npz")
    straight = call("straight", tmp_path / "straight.npz")
    for a, b in zip(resumed, straight, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
