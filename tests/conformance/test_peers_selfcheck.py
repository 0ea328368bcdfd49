"""Self-checks of the peer runners in ``peers.py``, without optimlab.

Where two peers implement the same math, their runners must give the same parameters; where they
differ by a known convention, the difference must show. This validates the translation of our
kwargs, the learning-rate plan, accumulation, clipping, weight decay and EMA in each runner.
"""

from __future__ import annotations

import numpy as np
import pytest

from .peers import PEERS, LrPlan, NotExpressible, run_peer

pytestmark = pytest.mark.conformance

N_CALLS = 60
# lr changes at call 20, follows the exponential decay from call 40 (the 60 calls see all three).
FULL = LrPlan(lr0=0.01, lr1=0.004, change_at=20, schedule_at=40, decay_steps=10, decay_rate=0.9)
# The same phases with a constant value (the Keras schedule object is still swapped in at 40).
CONST = LrPlan(lr0=0.01, lr1=0.01, change_at=20, schedule_at=40, decay_steps=10, decay_rate=1.0)


def make_data(dtype=np.float64, seed=0, n_calls=N_CALLS):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,)]
    params0 = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(n_calls)]
    return params0, grads


P0, GRADS = make_data()

# Keras's JAX backend re-traces a lax.cond on every call when accumulating (~0.1 s per call), so
# the accumulation checks run 24 calls through the same three phases.
ACC_PLAN = LrPlan(lr0=0.01, lr1=0.004, change_at=8, schedule_at=16, decay_steps=2, decay_rate=0.9)
ACC_DATA = make_data(seed=1, n_calls=24)


def run(peer, opt, kwargs, plan=FULL, data=(P0, GRADS)):
    return run_peer(peer, opt, kwargs, data[0], data[1], plan)


def maxdiff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def moved(result, params0=P0):
    """Guard against vacuous agreement: the runs must have moved the parameters."""
    return maxdiff(result["params"], params0)


def assert_same(results, tol, key="params", params0=None):
    ref_name, ref = next(iter(results.items()))
    assert moved(ref, P0 if params0 is None else params0) > 1e-3
    for name, r in results.items():
        d = maxdiff(r[key], ref[key])
        assert d <= tol, f"{name} vs {ref_name}: max |diff| = {d:.3e} > {tol:.0e}"


# --------------------------------------------------------------------------------------------


def test_lr_plan():
    assert FULL.lr_for_call(0) == 0.01
    assert FULL.lr_for_call(19) == 0.01
    assert FULL.lr_for_call(20) == 0.004
    assert FULL.lr_for_call(39) == 0.004
    assert FULL.lr_for_call(40) == pytest.approx(0.004 * 0.9**4.0, rel=1e-15)
    assert FULL.lr_for_call(55) == pytest.approx(0.004 * 0.9**5.5, rel=1e-15)
    # With accumulation the schedule counts real updates: call 59 with k=3 -> 19 updates done.
    assert FULL.lr_for_call(59, 3) == pytest.approx(0.004 * 0.9**1.9, rel=1e-15)
    with pytest.raises(ValueError):
        LrPlan(0.1, 0.1, change_at=50, schedule_at=40)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"clipvalue": 0.5},
    ],
    ids=["plain", "clipvalue"],
)
def test_plain_sgd_identical_in_all_three(kwargs):
    results = {p: run(p, "SGD", {"momentum": 0.0, **kwargs}) for p in PEERS}
    assert_same(results, 1e-13)


@pytest.mark.parametrize(
    "kwargs",
    [{"gradient_accumulation_steps": 3}, {"gradient_accumulation_steps": 4, "clipvalue": 0.3}],
    ids=["accum3", "accum4+clipvalue"],
)
def test_plain_sgd_accumulation_identical_in_all_three(kwargs):
    results = {p: run(p, "SGD", kwargs, ACC_PLAN, ACC_DATA) for p in PEERS}
    assert_same(results, 1e-13, params0=ACC_DATA[0])


def test_plain_sgd_float32_all_three():
    data = make_data(np.float32)
    results = {p: run(p, "SGD", {}, data=data) for p in PEERS}
    for r in results.values():
        assert all(x.dtype == np.float32 for x in r["params"])
    assert moved(results["torch"], data[0]) > 1e-3
    assert_same(results, 2e-6)


def test_global_clipnorm_keras_optax_equal_torch_has_its_epsilon():
    kw = {"global_clipnorm": 1.0}
    r = {p: run(p, "SGD", kw) for p in PEERS}
    assert maxdiff(r["keras"]["params"], r["optax"]["params"]) <= 1e-13
    # torch scales by max_norm / (norm + 1e-6): a small but visible difference.
    d = maxdiff(r["torch"]["params"], r["optax"]["params"])
    assert 1e-10 < d < 1e-6


def test_clipnorm_torch_vs_keras():
    r = {p: run(p, "SGD", {"clipnorm": 0.7}) for p in ("torch", "keras")}
    d = maxdiff(r["torch"]["params"], r["keras"]["params"])
    assert 1e-10 < d < 1e-6  # torch's + 1e-6 again


def test_decoupled_weight_decay_sgd_keras_vs_optax():
    kw = {"momentum": 0.0, "weight_decay": 0.05, "weight_decay_mode": "decoupled"}
    results = {p: run(p, "SGD", kw) for p in ("keras", "optax")}
    assert_same(results, 1e-13)
    plain = run("optax", "SGD", {})
    assert maxdiff(plain["params"], results["optax"]["params"]) > 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.9, "nesterov": False},
        {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01, "weight_decay_mode": "l2"},
        {"momentum": 0.9, "gradient_accumulation_steps": 2, "clipvalue": 1.0},
    ],
    ids=["nesterov", "heavy-ball", "nesterov+l2", "accum2+clipvalue"],
)
def test_torch_sgd_momentum_matches_optax(kwargs):
    # Same convention (lr applied outside the momentum buffer): equal even across lr changes.
    results = {p: run(p, "SGD", kwargs, FULL) for p in ("torch", "optax")}
    assert_same(results, 1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_sgd_momentum_vs_torch(nesterov):
    kw = {"momentum": 0.9, "nesterov": nesterov}
    const = {p: run(p, "SGD", kw, CONST) for p in ("torch", "keras")}
    assert_same(const, 1e-12)
    # Keras keeps lr inside its momentum buffer: after an lr change the two part ways.
    full = {p: run(p, "SGD", kw, FULL) for p in ("torch", "keras")}
    assert maxdiff(full["torch"]["params"], full["keras"]["params"]) > 1e-6


def test_adagrad_all_three():
    kw = {"initial_accumulator_value": 0.1, "epsilon": 0.0}
    results = {p: run(p, "Adagrad", kw) for p in PEERS}
    assert_same(results, 1e-13)


def test_adagrad_torch_l2_vs_optax_l2():
    kw = {
        "initial_accumulator_value": 0.1,
        "epsilon": 0.0,
        "weight_decay": 0.1,
        "weight_decay_mode": "l2",
    }
    results = {p: run(p, "Adagrad", kw) for p in ("torch", "optax")}
    assert_same(results, 1e-13)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rho": 0.9, "epsilon": 1e-3},
        {"rho": 0.95, "epsilon": 1e-3, "centered": True},
        {"rho": 0.9, "epsilon": 1e-3, "momentum": 0.5},
        {"rho": 0.9, "epsilon": 1e-3, "momentum": 0.5, "centered": True},
    ],
    ids=["plain", "centered", "momentum", "momentum+centered"],
)
def test_rmsprop_torch_vs_optax_eps_outside_sqrt(kwargs):
    results = {
        "torch": run("torch", "RMSprop", kwargs, CONST),
        "optax": run("optax", "RMSprop", {**kwargs, "epsilon_in_sqrt": False}, CONST),
    }
    assert_same(results, 1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rho": 0.9, "epsilon": 1e-3},
        {"rho": 0.9, "epsilon": 1e-3, "momentum": 0.5, "centered": True},
    ],
    ids=["plain", "momentum+centered"],
)
def test_rmsprop_keras_vs_optax_eps_inside_sqrt(kwargs):
    # Both put epsilon inside the sqrt and lr inside the momentum buffer: equal under lr changes.
    results = {p: run(p, "RMSprop", kwargs, FULL) for p in ("keras", "optax")}
    assert_same(results, 1e-12)


def test_adadelta_all_three():
    # Adadelta's steps are tiny at first; a larger lr makes the agreement meaningful.
    plan = LrPlan(lr0=1.0, lr1=0.5, change_at=20, schedule_at=40, decay_steps=10, decay_rate=0.9)
    results = {p: run(p, "Adadelta", {"rho": 0.9, "epsilon": 1e-4}, plan) for p in PEERS}
    assert_same(results, 1e-13)


@pytest.mark.parametrize(
    "optimizer,kwargs",
    [
        ("Adam", {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 0.0}),
        ("AdamW", {"epsilon": 0.0, "weight_decay": 0.1}),
        ("Adam", {"epsilon": 0.0, "weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
        ("Adam", {"epsilon": 0.0, "global_clipnorm": 2.0}),
    ],
    ids=["adam", "adamw", "adam-decoupled", "adam+clip"],
)
def test_adam_eps0_all_three(optimizer, kwargs):
    # With epsilon = 0 the three epsilon conventions coincide.
    peers = ("keras", "optax") if "global_clipnorm" in kwargs else PEERS
    results = {p: run(p, optimizer, kwargs) for p in peers}
    assert_same(results, 1e-12)


def test_adam_amsgrad_torch_vs_keras():
    kw = {"beta_2": 0.9, "epsilon": 0.0, "amsgrad": True}
    results = {p: run(p, "Adam", kw) for p in ("torch", "keras")}
    assert_same(results, 1e-12)
    # optax takes the maximum of the bias-corrected second moment instead.
    ams_optax = run("optax", "Adam", kw)
    assert maxdiff(ams_optax["params"], results["torch"]["params"]) > 1e-6


def test_adam_accumulation_torch_vs_keras():
    # Keras counts micro-steps: bias correction uses iterations // k, the schedule step // k.
    kw = {"epsilon": 0.0, "gradient_accumulation_steps": 3}
    results = {p: run(p, "Adam", kw, ACC_PLAN, ACC_DATA) for p in PEERS}
    assert_same(results, 1e-12, params0=ACC_DATA[0])


def test_adamax():
    kw = {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}
    # torch and optax both add epsilon to |g| inside the max.
    assert_same({p: run(p, "Adamax", kw) for p in ("torch", "optax")}, 1e-13)
    kw0 = {**kw, "epsilon": 0.0}
    assert_same({p: run(p, "Adamax", kw0) for p in PEERS}, 1e-13)


def test_nadam_torch_momentum_decay_1_matches_keras():
    kw = {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3, "momentum_decay": 1.0}
    results = {p: run(p, "Nadam", kw) for p in ("torch", "keras")}
    assert_same(results, 1e-12)
    torch_default = run("torch", "Nadam", {**kw, "momentum_decay": 0.004})
    assert maxdiff(torch_default["params"], results["keras"]["params"]) > 1e-4


def _numpy_constant_momentum_nadam(plan, b1, b2, eps):
    params = [p.copy() for p in P0]
    m = [np.zeros_like(p) for p in P0]
    v = [np.zeros_like(p) for p in P0]
    for c, gs in enumerate(GRADS):
        t = c + 1
        lr = plan.lr_for_call(c)
        for i, g in enumerate(gs):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = b1 * m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v[i] / (1 - b2**t)) + eps)
    return params


def test_optax_nadam_is_constant_momentum_nadam():
    kw = {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}
    r = run("optax", "Nadam", kw)
    ref = _numpy_constant_momentum_nadam(FULL, 0.9, 0.99, 1e-3)
    assert moved(r) > 1e-3
    assert maxdiff(r["params"], ref) <= 1e-12
    # decoupled decay goes through optax.nadamw
    rw = run("optax", "Nadam", {**kw, "weight_decay": 0.1, "weight_decay_mode": "decoupled"})
    assert maxdiff(rw["params"], r["params"]) > 1e-5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"beta_1": 0.9, "beta_2": 0.99, "weight_decay": None},  # optax.lion's default is 1e-3
        {"beta_1": 0.95, "beta_2": 0.98, "weight_decay": 0.5},
    ],
    ids=["plain", "decoupled-wd"],
)
def test_lion_keras_vs_optax(kwargs):
    results = {p: run(p, "Lion", kwargs) for p in ("keras", "optax")}
    assert_same(results, 1e-13)


def test_lion_accumulation_keras_vs_optax():
    kw = {"beta_1": 0.9, "beta_2": 0.99, "weight_decay": 0.5, "gradient_accumulation_steps": 2}
    results = {p: run(p, "Lion", kw, ACC_PLAN, ACC_DATA) for p in ("keras", "optax")}
    assert_same(results, 1e-13, params0=ACC_DATA[0])


def test_optax_l2_lion_differs_from_decoupled():
    base = {"beta_1": 0.9, "beta_2": 0.99, "weight_decay": 0.5}
    dec = run("optax", "Lion", {**base, "weight_decay_mode": "decoupled"})
    l2 = run("optax", "Lion", {**base, "weight_decay_mode": "l2"})
    assert maxdiff(dec["params"], l2["params"]) > 1e-4


def _numpy_rprop(eta_minus, eta_plus, low, high, optax_style, params0=P0, grads=GRADS, lr=0.01):
    """Rprop written out with np.where, both peers' way: torch keeps the previous gradient and
    clips every step; optax (0.2.8) keeps the previous update, clips only where the step size
    changes, and applies the update computed one step earlier."""
    params = [p.copy() for p in params0]
    prev = [np.zeros_like(p) for p in params0]
    step = [np.full_like(p, lr) for p in params0]
    for gs in grads:
        for i, g in enumerate(gs):
            s = g * prev[i]
            new = np.where(s > 0, step[i] * eta_plus, np.where(s < 0, step[i] * eta_minus, step[i]))
            new = np.clip(new, low, high)
            if optax_style:
                new = np.where(s == 0, step[i], new)
            kept = np.where(s < 0, 0.0, g)
            if optax_style:
                applied = np.where(s < 0, 0.0, prev[i])
                prev[i] = np.sign(kept) * new
            else:
                applied = np.sign(kept) * new
                prev[i] = kept
            params[i] = params[i] - applied
            step[i] = new
    return params


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"eta_minus": 0.3, "eta_plus": 1.5, "min_step_size": 1e-3, "max_step_size": 0.005}],
    ids=["defaults", "bounds"],
)
def test_rprop_torch_and_optax_each_match_their_written_out_rule(kwargs):
    """The lr plan's later learning rates change nothing (both peers read lr once), and the two
    peers differ: optax 0.2.8 applies each update one step late (and clips the first step size
    only once it changes)."""
    args = (
        kwargs.get("eta_minus", 0.5),
        kwargs.get("eta_plus", 1.2),
        kwargs.get("min_step_size", 1e-6),
        kwargs.get("max_step_size", 50.0),
    )
    results = {p: run(p, "Rprop", kwargs) for p in ("torch", "optax")}
    for peer, r in results.items():
        assert moved(r) > 1e-3
        expected = _numpy_rprop(*args, optax_style=peer == "optax")
        assert maxdiff(r["params"], expected) <= 1e-13, peer
    assert maxdiff(results["torch"]["params"], results["optax"]["params"]) > 1e-3


def test_rprop_accumulation_and_clipvalue_match_the_written_out_rule():
    """With accumulation and value clipping both drivers feed Rprop the same gradients: the
    written-out rule of each peer on those gradients gives its parameters."""
    k, clip = 3, 0.3
    p0, grads = ACC_DATA
    merged = []
    for u in range(len(grads) // k):
        calls = grads[u * k : (u + 1) * k]
        acc = [np.zeros_like(g) for g in calls[0]]
        for gs in calls[:-1]:
            acc = [g + a for g, a in zip(gs, acc, strict=True)]
        merged.append(
            [np.clip((g + a) / k, -clip, clip) for g, a in zip(calls[-1], acc, strict=True)]
        )
    kw = {"gradient_accumulation_steps": k, "clipvalue": clip}
    for peer in ("torch", "optax"):
        r = run(peer, "Rprop", kw, ACC_PLAN, ACC_DATA)
        expected = _numpy_rprop(0.5, 1.2, 1e-6, 50.0, peer == "optax", p0, merged)
        assert maxdiff(r["params"], expected) <= 1e-13, peer


def test_rprop_maximize_torch():
    neg = [[-g for g in gs] for gs in GRADS]
    r = run_peer("torch", "Rprop", {"maximize": True}, P0, neg, FULL)
    ref = run("torch", "Rprop", {})
    assert maxdiff(r["params"], ref["params"]) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0},
        {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 0.0},
        {"epsilon": 0.0, "weight_decay": 0.1, "weight_decay_mode": "l2"},
        {"epsilon": 0.0, "clipvalue": 0.5},
    ],
    ids=["radam", "betas", "l2", "clipvalue"],
)
def test_radam_eps0_torch_equals_optax(kwargs):
    # With epsilon = 0 torch's sqrt(bc2) / sqrt(v) is optax's 1 / sqrt(v / bc2), and neither
    # run meets rho_t = 5 exactly, where torch's > and optax's >= would differ.
    results = {p: run(p, "RAdam", kwargs) for p in ("torch", "optax")}
    assert_same(results, 1e-12)


def test_radam_epsilon_torch_hat_vs_optax_paper():
    # torch adds epsilon to sqrt(v), optax to sqrt(v / bc2): the same epsilon acts 1/sqrt(bc2)
    # larger in torch, visibly so with epsilon 1e-3.
    kw = {"epsilon": 1e-3}
    r = {p: run(p, "RAdam", kw) for p in ("torch", "optax")}
    assert maxdiff(r["torch"]["params"], r["optax"]["params"]) > 1e-5


def _numpy_radam(plan, b1, b2, eps, threshold, inclusive, hat):
    """RAdam written out: the first moment bias-corrected, rectified when rho_t passes the
    threshold, epsilon added to sqrt(v) (hat) or to sqrt(v / bc2)."""
    params = [p.copy() for p in P0]
    m = [np.zeros_like(p) for p in P0]
    v = [np.zeros_like(p) for p in P0]
    rho_inf = 2 / (1 - b2) - 1
    for c, gs in enumerate(GRADS):
        t = c + 1
        lr = plan.lr_for_call(c)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        rho = rho_inf - 2 * t * b2**t / bc2
        rectified = rho >= threshold if inclusive else rho > threshold
        for i, g in enumerate(gs):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / bc1
            if not rectified:
                params[i] = params[i] - lr * m_hat
                continue
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            if hat:
                params[i] = params[i] - lr * r * m_hat * np.sqrt(bc2) / (np.sqrt(v[i]) + eps)
            else:
                params[i] = params[i] - lr * r * m_hat / (np.sqrt(v[i] / bc2) + eps)
    return params


@pytest.mark.parametrize("peer", ["torch", "optax"])
def test_radam_is_the_rule_written_out(peer):
    kw = {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3}
    r = run(peer, "RAdam", kw)
    ref = _numpy_radam(FULL, 0.8, 0.95, 1e-3, 5.0, peer == "optax", hat=peer == "torch")
    assert moved(r) > 1e-3
    assert maxdiff(r["params"], ref) <= 1e-12


def test_optax_radam_threshold_and_nesterov_change_the_run():
    plain = run("optax", "RAdam", {})
    late = run("optax", "RAdam", {"threshold": 30.0})
    assert maxdiff(late["params"], _numpy_radam(FULL, 0.9, 0.999, 1e-8, 30.0, True, False)) < 1e-12
    assert maxdiff(late["params"], plain["params"]) > 1e-4
    assert maxdiff(run("optax", "RAdam", {"nesterov": True})["params"], plain["params"]) > 1e-4


@pytest.mark.parametrize("kwargs", [{"epsilon": 1e-6}, {"beta_1": 0.5, "epsilon": 1e-3}])
def test_lamb_keras_vs_optax(kwargs):
    """Without weight decay the two Lambs are one rule (Keras's epsilon set to optax's)."""
    results = {p: run(p, "Lamb", kwargs) for p in ("keras", "optax")}
    assert_same(results, 1e-13)


def test_lamb_weight_decay_keras_vs_optax_differ():
    """Keras decays before the step (the ratio sees the decayed weights), optax inside the
    trust ratio: the same weight_decay moves the two apart."""
    kw = {"epsilon": 1e-6, "weight_decay": 0.1}
    keras_r, optax_r = (run(p, "Lamb", kw) for p in ("keras", "optax"))
    assert maxdiff(keras_r["params"], optax_r["params"]) > 1e-4
    plain = run("optax", "Lamb", {"epsilon": 1e-6})
    assert maxdiff(optax_r["params"], plain["params"]) > 1e-4


@pytest.mark.parametrize(
    "optimizer,kwargs",
    [
        ("SGD", {}),
        ("Adam", {"epsilon": 0.0}),
    ],
)
def test_ema_torch_vs_keras(optimizer, kwargs):
    kw = {**kwargs, "use_ema": True, "ema_momentum": 0.9}
    results = {p: run(p, optimizer, kw) for p in ("torch", "keras")}
    assert_same(results, 1e-12, key="params")
    assert_same(results, 1e-12, key="ema")
    r = results["torch"]
    assert maxdiff(r["ema"], r["params"]) > 1e-4  # the EMA lags behind


def test_ema_default_momentum_is_the_same_in_torch_and_keras():
    results = {p: run(p, "SGD", {"use_ema": True}) for p in ("torch", "keras")}
    assert_same(results, 1e-12, key="ema")


def test_absent_keys_take_the_peer_defaults():
    # AdamW's weight decay: torch 1e-2, Keras 0.004, optax 1e-4; optax Lion 1e-3.
    for peer, wd in (("torch", 0.01), ("keras", 0.004), ("optax", 1e-4)):
        absent = run(peer, "AdamW", {})
        explicit = run(peer, "AdamW", {"weight_decay": wd, "weight_decay_mode": "decoupled"})
        none = run(peer, "AdamW", {"weight_decay": None})
        assert maxdiff(absent["params"], explicit["params"]) == 0.0, peer
        assert maxdiff(absent["params"], none["params"]) > 1e-7, peer
    absent = run("optax", "Lion", {})
    explicit = run("optax", "Lion", {"weight_decay": 1e-3, "weight_decay_mode": "decoupled"})
    assert maxdiff(absent["params"], explicit["params"]) == 0.0
    # weight_decay_mode when absent: optax Adam goes through adamw (decoupled), SGD through l2.
    kw = {"weight_decay": 0.1}
    assert (
        maxdiff(
            run("optax", "Adam", kw)["params"],
            run("optax", "Adam", {**kw, "weight_decay_mode": "decoupled"})["params"],
        )
        == 0.0
    )
    assert (
        maxdiff(
            run("optax", "SGD", kw)["params"],
            run("optax", "SGD", {**kw, "weight_decay_mode": "l2"})["params"],
        )
        == 0.0
    )
    assert (
        maxdiff(
            run("torch", "Adam", kw)["params"],
            run("torch", "Adam", {**kw, "weight_decay_mode": "l2"})["params"],
        )
        == 0.0
    )


def test_scalar_parameter():
    rng = np.random.default_rng(3)
    params0 = [rng.normal(size=(4, 3)), np.asarray(rng.normal())]
    grads = [[rng.normal(size=(4, 3)), np.asarray(rng.normal())] for _ in range(30)]
    kw = {"momentum": 0.0, "clipvalue": 0.5}
    results = {p: run_peer(p, "SGD", kw, params0, grads, FULL) for p in PEERS}
    for r in results.values():
        assert r["params"][1].shape == ()
    assert_same(results, 1e-13, params0=params0)


def test_ema_overwrite_frequency_keras():
    r = run("keras", "SGD", {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 5})
    plain = run("keras", "SGD", {"use_ema": True, "ema_momentum": 0.9})
    assert maxdiff(r["params"], plain["params"]) > 1e-4


def test_loss_scale_factor_keras():
    scaled = [[g * 8.0 for g in gs] for gs in GRADS]
    r = run_peer("keras", "SGD", {"loss_scale_factor": 8.0}, P0, scaled, FULL)
    ref = run("keras", "SGD", {})
    assert maxdiff(r["params"], ref["params"]) <= 1e-13


def test_maximize_torch():
    neg = [[-g for g in gs] for gs in GRADS]
    r = run_peer("torch", "Adam", {"maximize": True}, P0, neg, FULL)
    ref = run("torch", "Adam", {})
    assert maxdiff(r["params"], ref["params"]) <= 1e-13


NOT_EXPRESSIBLE = [
    ("torch", "Lion", {}),
    ("torch", "Lamb", {}),
    ("keras", "Lamb", {"weight_decay": 0.1, "weight_decay_in_trust_ratio": True}),
    ("keras", "Lamb", {"nan_trust_ratio": "nan"}),
    ("optax", "Lamb", {"weight_decay": 0.1, "weight_decay_in_trust_ratio": False}),
    ("optax", "Lamb", {"nan_trust_ratio": "one"}),
    ("torch", "SGD", {"loss_scale_factor": 2.0}),
    ("torch", "SGD", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "RMSprop", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "Adamax", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "SGD", {"momentum": 0.9, "nesterov": True, "dampening": 0.1}),
    ("torch", "Nadam", {"momentum_decay": None}),
    ("keras", "SGD", {"dampening": 0.1}),
    ("keras", "SGD", {"maximize": True}),
    ("keras", "Adagrad", {"lr_decay": 0.01}),
    ("keras", "Adam", {"weight_decay": 0.1, "weight_decay_mode": "l2"}),
    ("keras", "Nadam", {"momentum_decay": 0.004}),
    ("keras", "Nadam", {"momentum_decay": None}),
    ("keras", "SGD", {"use_ema": True, "gradient_accumulation_steps": 2}),
    ("keras", "Lion", {"beta_1": 0.0}),
    ("optax", "SGD", {"momentum": 0.9, "dampening": 0.5}),
    ("optax", "SGD", {"maximize": True}),
    ("optax", "SGD", {"clipnorm": 1.0}),
    ("optax", "SGD", {"use_ema": True}),
    ("optax", "SGD", {"loss_scale_factor": 2.0}),
    ("optax", "Adagrad", {"lr_decay": 0.01}),
    ("optax", "Nadam", {"momentum_decay": 0.004}),
    ("optax", "RMSprop", {"momentum": 0.9, "weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "SGD", {"clipnorm": 1.0, "clipvalue": 1.0}),
    ("keras", "SGD", {"clipnorm": 1.0, "global_clipnorm": 1.0}),
    ("torch", "SGD", {"use_ema": True, "ema_overwrite_frequency": 10}),
    ("torch", "Adam", {"bias_correction": False}),
    ("keras", "Adam", {"bias_correction": False}),
    ("optax", "AdamW", {"bias_correction": False}),
    ("keras", "RAdam", {}),
    ("torch", "RAdam", {"nesterov": True}),
    ("torch", "RAdam", {"threshold": 6.0}),
    ("torch", "RAdam", {"epsilon_root": 1e-8}),
    ("torch", "RAdam", {"loss_scale_factor": 2.0}),
    ("optax", "RAdam", {"maximize": True}),
    ("keras", "Rprop", {}),
    ("torch", "Rprop", {"weight_decay": 0.1}),
    ("optax", "Rprop", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
]


@pytest.mark.parametrize(
    "peer,optimizer,kwargs",
    NOT_EXPRESSIBLE,
    ids=[f"{p}-{o}-{'-'.join(k)}" for p, o, k in NOT_EXPRESSIBLE],
)
def test_not_expressible(peer, optimizer, kwargs):
    with pytest.raises(NotExpressible):
        run(peer, optimizer, kwargs)


NEUTRAL = [
    ("torch", "SGD", {"loss_scale_factor": None}),
    ("keras", "SGD", {"dampening": 0.0, "maximize": False}),
    ("keras", "Adagrad", {"lr_decay": 0.0}),
    ("keras", "Adam", {"weight_decay": 0.0, "weight_decay_mode": "l2"}),
    ("keras", "Nadam", {"momentum_decay": 1.0}),
    ("optax", "SGD", {"dampening": 0.0, "maximize": False, "clipnorm": None}),
    ("optax", "Nadam", {"momentum_decay": None}),
    ("optax", "RMSprop", {"momentum": 0.9, "weight_decay": 0.1, "weight_decay_mode": "l2"}),
    ("optax", "RMSprop", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "Adam", {"momentum_style": "x", "epsilon_style": "y", "preset": "z"}),
    ("optax", "AdamW", {"amsgrad": True, "weight_decay": 0.1}),
    ("optax", "Adadelta", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "AdamW", {"weight_decay": 0.1, "weight_decay_mode": "l2"}),
    ("keras", "AdamW", {}),
    ("torch", "SGD", {"ema_overwrite_frequency": 10}),
    ("keras", "Adam", {"bias_correction": True}),
    ("torch", "RAdam", {"nesterov": False, "threshold": 5.0, "epsilon_root": 0.0}),
    ("torch", "RAdam", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("optax", "RAdam", {"threshold_inclusive": False, "epsilon_style": "hat"}),
    ("optax", "RAdam", {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}),
    ("torch", "Rprop", {"weight_decay": 0.0, "clamp_every_step": True}),
    ("optax", "Rprop", {"weight_decay": 0.1, "compare_with": "update"}),
    ("keras", "Lamb", {"weight_decay_in_trust_ratio": True}),  # no decay: nothing to place
    ("optax", "Lamb", {"weight_decay_in_trust_ratio": False, "nan_trust_ratio": "nan"}),
]


@pytest.mark.parametrize(
    "peer,optimizer,kwargs", NEUTRAL, ids=[f"{p}-{o}-{'-'.join(k)}" for p, o, k in NEUTRAL]
)
def test_neutral_values_are_accepted(peer, optimizer, kwargs):
    r = run_peer(peer, optimizer, kwargs, P0, GRADS[:5], FULL)
    assert moved(r) > 0


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        run("torch", "SGD", {"learning_rate": 0.1})
    with pytest.raises(ValueError):
        run("torch", "SGD", {"momentun": 0.9})
    with pytest.raises(ValueError):
        run("jax", "SGD", {})
    with pytest.raises(ValueError):
        run_peer("torch", "SGD", {}, [P0[0], P0[1].astype(np.float32)], GRADS, FULL)
