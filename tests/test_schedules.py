"""Learning-rate schedules against their peers (Keras 3, torch.optim.lr_scheduler, optax) and
against hand-computed values; serialization, validation and ReduceLROnPlateau's state.

Conventions checked throughout: ``sched(k)`` is the learning rate of update ``k + 1`` (``k``
updates already applied). Keras schedules are called with the same ``k``; a torch scheduler is
compared after ``k`` calls of ``scheduler.step()``; optax schedules are called with ``k``.
"""

from __future__ import annotations

import json
import math
import warnings

import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from optimlab import schedules as S

KS = keras.optimizers.schedules
TL = torch.optim.lr_scheduler


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def keras_f64():
    """Keras at floatx float64 (restored afterwards)."""
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(old)


def close(actual: float, expected: float, rel: float, abs_: float = 0.0) -> bool:
    return abs(actual - expected) <= max(rel * abs(expected), abs_)


def assert_all_close(ours, peer, steps, rel, abs_=0.0, what="peer"):
    bad = [
        (k, a, b) for k, a, b in zip(steps, ours, peer, strict=True) if not close(a, b, rel, abs_)
    ]
    assert not bad, f"ours vs {what} differ at (step, ours, peer): {bad}"


def torch_lrs(make, lr: float, n: int) -> list[float]:
    """``param_groups[0]["lr"]`` after 0, 1, ..., n calls of ``scheduler.step()``."""
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n):
        opt.step()  # no gradient: a no-op, but keeps torch's call-order check quiet
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return [float(x) for x in out]


def torch_plateau(lr: float, metrics, **kwargs) -> list[float]:
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = TL.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(float(opt.param_groups[0]["lr"]))
    return out


def values(sched, steps) -> list[float]:
    return [float(sched(k)) for k in steps]


def around(*points: int) -> list[int]:
    """Each point and its neighbours (>= 0), sorted."""
    return sorted({p + d for p in points for d in (-1, 0, 1) if p + d >= 0})


# -- hand-computed values -----------------------------------------------------------------


HAND = [
    # (schedule, step, expected): worked out by hand from the formulas.
    (S.Constant(0.3), 0, 0.3),
    (S.Constant(0.3), 10**12, 0.3),
    (S.ExponentialDecay(0.1, 10, 0.5), 0, 0.1),
    (S.ExponentialDecay(0.1, 10, 0.5), 20, 0.025),
    (S.ExponentialDecay(0.1, 10, 0.5), 5, 0.1 * 0.5**0.5),
    (S.ExponentialDecay(0.1, 10, 0.5, staircase=True), 19, 0.05),
    (S.ExponentialDecay(0.1, 10, 0.5, staircase=True), 20, 0.025),
    (S.ExponentialDecay(1.0, 10**8, 0.5, staircase=True), 10**8 - 1, 1.0),
    (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 10, 1.0),
    (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 11, 0.5),
    (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 20, 0.5),
    (S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]), 21, 0.1),
    (S.PiecewiseConstantDecay([], [0.7]), 5, 0.7),
    (S.PolynomialDecay(1.0, 10, 0.0), 3, 0.7),
    (S.PolynomialDecay(1.0, 10, 0.0, power=2.0), 5, 0.25),
    (S.PolynomialDecay(1.0, 10, 0.2), 50, 0.2),
    (S.PolynomialDecay(1.0, 10, 0.0, cycle=True), 0, 1.0),
    (S.PolynomialDecay(1.0, 10, 0.0, cycle=True), 10, 0.0),
    (S.PolynomialDecay(1.0, 10, 0.0, cycle=True), 11, 0.45),  # 1 - 11/20
    (S.PolynomialDecay(1.0, 10, 0.0, cycle=True), 21, 0.3),  # 1 - 21/30
    (S.InverseTimeDecay(1.0, 10, 1.0), 10, 0.5),
    (S.InverseTimeDecay(1.0, 10, 1.0), 5, 1 / 1.5),
    (S.InverseTimeDecay(1.0, 10, 1.0, staircase=True), 19, 0.5),
    (S.CosineDecay(1.0, 10), 5, 0.5),
    (S.CosineDecay(1.0, 10, alpha=0.2), 10, 0.2),
    (S.CosineDecay(1.0, 10, alpha=0.2), 1000, 0.2),
    (S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), 0, 0.0),
    (S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), 2, 0.4),
    (S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), 5, 1.0),
    (S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), 10, 0.5),
    (S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5), 15, 0.0),
    (S.CosineDecay(0.5, 10, warmup_target=1.0), 0, 1.0),  # W=0: initial lr unused
    (S.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 10, 0.5),
    (S.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 20, 0.25),  # mid-period 1
    (S.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 30, 0.25),
    (S.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5), 70, 0.125),
    (S.CosineDecayRestarts(1.0, 10, t_mul=1.0, alpha=0.5), 25, 0.75),
    (S.CosineDecayRestarts(1.0, 10, t_mul=1.1), 21, 1.0),  # restart at 10 + 11
    (S.StepLR(1.0, 3, 0.5), 5, 0.5),
    (S.StepLR(1.0, 3, 0.5), 6, 0.25),
    (S.MultiStepLR(1.0, [2, 5, 5], 0.5), 1, 1.0),
    (S.MultiStepLR(1.0, [2, 5, 5], 0.5), 2, 0.5),
    (S.MultiStepLR(1.0, [2, 5, 5], 0.5), 5, 0.125),  # the repeated milestone counts twice
    (S.ExponentialLR(2.0, 0.5), 3, 0.25),
    (S.LinearLR(1.0, 0.25, 1.0, 4), 0, 0.25),
    (S.LinearLR(1.0, 0.25, 1.0, 4), 2, 0.625),
    (S.LinearLR(1.0, 0.25, 1.0, 4), 9, 1.0),
    (S.CosineAnnealingLR(1.0, 10), 5, 0.5),
    (S.CosineAnnealingLR(1.0, 10), 10, 0.0),
    (S.CosineAnnealingLR(1.0, 10, eta_min=0.2), 15, 0.6),  # climbing again past T_max
    (S.CosineAnnealingLR(1.0, 10), 20, 1.0),
    (S.OneCycleLR(1.0, 10, anneal_strategy="linear"), 0, 0.04),
    (S.OneCycleLR(1.0, 10, anneal_strategy="linear"), 1, 0.52),
    (S.OneCycleLR(1.0, 10, anneal_strategy="linear"), 2, 1.0),  # peak at 0.3 * 10 - 1
    (S.OneCycleLR(1.0, 10, anneal_strategy="linear"), 9, 4e-6),  # 1 / 25 / 1e4
    (S.OneCycleLR(1.0, 10, three_phase=True, anneal_strategy="linear"), 4, 0.04),
    (S.CyclicLR(1.0, 3.0, 2), 0, 1.0),
    (S.CyclicLR(1.0, 3.0, 2), 1, 2.0),
    (S.CyclicLR(1.0, 3.0, 2), 2, 3.0),
    (S.CyclicLR(1.0, 3.0, 2), 3, 2.0),
    (S.CyclicLR(1.0, 3.0, 2), 4, 1.0),
    (S.CyclicLR(1.0, 3.0, 2, step_size_down=4), 4, 2.0),  # half way down
    (S.CyclicLR(1.0, 3.0, 2, mode="triangular2"), 6, 2.0),  # second cycle, half height
    (S.CyclicLR(1.0, 3.0, 2, mode="exp_range", gamma=0.5), 2, 1.5),
    (S.LinearWarmup(1.0, 4, start_factor=0.2), 0, 0.2),
    (S.LinearWarmup(1.0, 4, start_factor=0.2), 2, 0.6),
    (S.LinearWarmup(1.0, 4, start_factor=0.2), 4, 1.0),
    (S.LinearWarmup(S.StepLR(1.0, 3, 0.5), 4), 1, 0.25),
    (S.LinearWarmup(S.StepLR(1.0, 3, 0.5), 4), 6, 1.0),  # inner(2), shifted
    (S.LinearWarmup(S.StepLR(1.0, 3, 0.5), 4), 7, 0.5),  # inner(3)
    (S.LinearWarmup(S.StepLR(1.0, 3, 0.5), 0), 3, 0.5),
]


@pytest.mark.parametrize(("sched", "step", "expected"), HAND, ids=lambda x: repr(x)[:40])
def test_hand_computed(sched, step, expected):
    got = sched(step)
    assert type(got) is float
    assert close(got, expected, 1e-14, 1e-15), (sched, step, got, expected)


# -- Keras 3 ------------------------------------------------------------------------------

# Keras schedules that compute in float64 throughout (floatx float64): 1e-12 relative.
KERAS_EXACT = [
    (
        S.ExponentialDecay(0.1, 10, 0.5),
        lambda: KS.ExponentialDecay(0.1, 10, 0.5),
        around(0, 10, 20) + [100, 1000],
    ),
    (
        S.ExponentialDecay(0.1, 7, 0.9, staircase=True),
        lambda: KS.ExponentialDecay(0.1, 7, 0.9, staircase=True),
        around(0, 7, 14) + [100, 10**6],
    ),
    (
        S.ExponentialDecay(0.01, 3, 1.5),
        lambda: KS.ExponentialDecay(0.01, 3, 1.5),
        [0, 1, 2, 3, 30],
    ),
    (
        S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
        lambda: KS.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
        around(0, 10, 20) + [10**6],
    ),
    (
        S.PiecewiseConstantDecay([5], [0.3, 0.03]),
        lambda: KS.PiecewiseConstantDecay([5], [0.3, 0.03]),
        around(0, 5),
    ),
    (
        S.PolynomialDecay(0.1, 10, 0.001, power=2.0),
        lambda: KS.PolynomialDecay(0.1, 10, 0.001, power=2.0),
        around(0, 5, 10) + [100],
    ),
    (
        S.PolynomialDecay(0.1, 10, power=0.5, cycle=True),
        lambda: KS.PolynomialDecay(0.1, 10, power=0.5, cycle=True),
        around(0, 10, 20, 30) + [1000],
    ),
    (
        S.PolynomialDecay(0.01, 8, 0.1, cycle=True),  # increasing: end > initial
        lambda: KS.PolynomialDecay(0.01, 8, 0.1, cycle=True),
        around(0, 8, 16),
    ),
    (
        S.InverseTimeDecay(0.1, 10, 0.5),
        lambda: KS.InverseTimeDecay(0.1, 10, 0.5),
        around(0, 10, 20) + [10**6],
    ),
    (
        S.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
        lambda: KS.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
        around(0, 10, 20) + [10**6],
    ),
]


@pytest.mark.parametrize(
    ("ours", "make_keras", "steps"), KERAS_EXACT, ids=[repr(c[0])[:50] for c in KERAS_EXACT]
)
def test_keras_float64(keras_f64, ours, make_keras, steps):
    ref = make_keras()
    assert ref(0).dtype == "float64"
    assert_all_close(values(ours, steps), values(ref, steps), steps, 1e-12, what="Keras")


# Keras 3's JAX backend computes ops.cos (and ops.floor) of float64 tensors in float32, so the
# cosine schedules agree to ~3e-8 * peak only (see test_keras_cos_runs_in_float32).
KERAS_COS = [
    (
        S.CosineDecay(0.1, 10, alpha=0.1),
        lambda: KS.CosineDecay(0.1, 10, alpha=0.1),
        around(0, 5, 10) + [1000],
        0.1,
    ),
    (
        S.CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.1, warmup_steps=5),
        lambda: KS.CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.1, warmup_steps=5),
        around(0, 5, 15) + [1000],  # start, end of warmup, end of decay
        0.1,
    ),
    (
        S.CosineDecay(0.01, 20, warmup_target=0.2, warmup_steps=7),
        lambda: KS.CosineDecay(0.01, 20, warmup_target=0.2, warmup_steps=7),
        around(0, 7, 27) + [1000],
        0.2,
    ),
    (
        S.CosineDecay(0.05, 10, warmup_target=0.2),  # warmup_steps=0: decays from the target
        lambda: KS.CosineDecay(0.05, 10, warmup_target=0.2),
        around(0, 10),
        0.2,
    ),
    (
        S.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.1),
        lambda: KS.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.1),
        around(0, 10, 30, 70, 150, 310) + [20, 50],
        0.1,
    ),
    (
        S.CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.8),
        lambda: KS.CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.8),
        around(0, 10, 20, 30) + [15],
        0.1,
    ),
    (
        S.CosineDecayRestarts(0.1, 8, t_mul=1.5, alpha=0.05),
        lambda: KS.CosineDecayRestarts(0.1, 8, t_mul=1.5, alpha=0.05),
        around(0, 8, 20, 38, 65) + [105, 106],  # restarts at 8, 20, 38, 65, 105.5
        0.1,
    ),
    (
        S.CosineDecayRestarts(0.1, 10, t_mul=3.0, m_mul=0.9),
        lambda: KS.CosineDecayRestarts(0.1, 10, t_mul=3.0, m_mul=0.9),
        around(0, 10, 40, 130, 400),
        0.1,
    ),
]


@pytest.mark.parametrize(
    ("ours", "make_keras", "steps", "peak"), KERAS_COS, ids=[repr(c[0])[:50] for c in KERAS_COS]
)
def test_keras_cosine(keras_f64, ours, make_keras, steps, peak):
    ref = make_keras()
    assert_all_close(values(ours, steps), values(ref, steps), steps, 0.0, 1e-7 * peak, "Keras")


def test_keras_cos_runs_in_float32(keras_f64):
    # Why KERAS_COS uses an absolute 1e-7 tolerance. Measured with Keras 3.15.1 (JAX backend,
    # floatx float64): CosineDecay(1.0, 10)(5) = 0.4999999701976776 (= float32 cos), the
    # float64 value is 0.5000000000000001. If this fails, Keras fixed it: tighten KERAS_COS.
    keras_value = float(KS.CosineDecay(1.0, 10)(5))
    ours = S.CosineDecay(1.0, 10)(5)
    assert ours == pytest.approx(0.5, abs=1e-15)
    assert 1e-9 < abs(keras_value - ours) < 1e-7


def test_keras_float32_floor_and_ceil(keras_f64):
    # Keras 3.15.1's JAX backend floors/ceils float64 in float32, so large step counts land in
    # the wrong stair / cycle; here they are integer arithmetic.
    stair = S.ExponentialDecay(1.0, 10**8, 0.5, staircase=True)
    assert stair(10**8 - 1) == 1.0 and stair(10**8) == 0.5
    assert float(KS.ExponentialDecay(1.0, 10**8, 0.5, staircase=True)(10**8 - 1)) == 0.5
    poly = S.PolynomialDecay(1.0, 10**8, 0.0, power=0.5, cycle=True)
    expected = (1 - (10**8 + 1) / (2 * 10**8)) ** 0.5  # second cycle, stretched to 2e8 steps
    assert poly(10**8 + 1) == pytest.approx(expected, rel=1e-15)
    assert math.isnan(float(KS.PolynomialDecay(1.0, 10**8, 0.0, power=0.5, cycle=True)(10**8 + 1)))


def test_keras_restarts_t_mul_below_one_is_nan_in_keras(keras_f64):
    # Keras accepts t_mul < 1; the periods sum to first_decay_steps / (1 - t_mul) = 20 and Keras
    # returns NaN from there on. Refused here.
    ref = KS.CosineDecayRestarts(1.0, 10, t_mul=0.5)
    assert math.isfinite(float(ref(19))) and math.isnan(float(ref(20)))
    with pytest.raises(ValueError, match=r"t_mul must be a float >= 1, got 0.5"):
        S.CosineDecayRestarts(1.0, 10, t_mul=0.5)


def test_linear_warmup_equals_keras_cosine_warmup(keras_f64):
    steps = around(0, 6, 26) + [3, 1000]
    ours = S.LinearWarmup(S.CosineDecay(0.2, 20, alpha=0.1), 6, start_factor=0.0)
    ref = KS.CosineDecay(0.0, 20, alpha=0.1, warmup_target=0.2, warmup_steps=6)
    assert_all_close(values(ours, steps), values(ref, steps), steps, 0.0, 2e-8, "Keras")
    ours2 = S.LinearWarmup(S.CosineDecay(0.2, 20), 6, start_factor=0.25)
    ref2 = KS.CosineDecay(0.05, 20, warmup_target=0.2, warmup_steps=6)
    assert_all_close(values(ours2, steps), values(ref2, steps), steps, 0.0, 2e-8, "Keras")


# -- PyTorch ------------------------------------------------------------------------------

TORCH = [
    # (ours, torch factory, base lr, steps to compare, relative tolerance)
    (S.StepLR(0.1, 3, 0.5), lambda o: TL.StepLR(o, 3, 0.5), 0.1, around(0, 3, 6, 30), 1e-10),
    (S.StepLR(0.1, 1), lambda o: TL.StepLR(o, 1), 0.1, range(12), 1e-10),
    (
        S.MultiStepLR(0.1, [2, 5, 5, 9], 0.1),
        lambda o: TL.MultiStepLR(o, [2, 5, 5, 9], 0.1),
        0.1,
        around(0, 2, 5, 9) + [40],
        1e-10,
    ),
    (
        S.MultiStepLR(0.1, [0, 3], 0.5),  # a milestone at 0 already applies at step 0
        lambda o: TL.MultiStepLR(o, [0, 3], 0.5),
        0.1,
        around(0, 3),
        1e-10,
    ),
    (S.ExponentialLR(0.1, 0.9), lambda o: TL.ExponentialLR(o, 0.9), 0.1, [0, 1, 2, 50, 200], 1e-10),
    (
        S.LinearLR(0.1, 0.25, 1.0, 6),
        lambda o: TL.LinearLR(o, 0.25, 1.0, 6),
        0.1,
        around(0, 6) + [3, 30],
        1e-10,
    ),
    (S.LinearLR(0.1), lambda o: TL.LinearLR(o), 0.1, around(0, 5) + [20], 1e-10),
    (
        S.LinearLR(0.1, 1.0, 0.1, 4),  # decreasing factor
        lambda o: TL.LinearLR(o, 1.0, 0.1, 4),
        0.1,
        around(0, 4) + [20],
        1e-10,
    ),
    (
        S.CosineAnnealingLR(0.1, 10, 0.001),
        lambda o: TL.CosineAnnealingLR(o, 10, 0.001),
        0.1,
        around(0, 5, 10, 20, 30) + [15, 45],  # past T_max the cosine climbs back up
        1e-10,
    ),
    (
        S.CosineAnnealingLR(0.1, 7),
        lambda o: TL.CosineAnnealingLR(o, 7),
        0.1,
        [0, 1, 3, 6, 8, 13, 14, 15],  # eta_min = 0: exactly 0 at 7 and 21
        1e-10,
    ),
    (
        S.OneCycleLR(1.0, 100),
        lambda o: TL.OneCycleLR(o, 1.0, total_steps=100, cycle_momentum=False),
        1.0,
        around(0, 29, 99)[:-1] + [50],  # peak at 0.3 * 100 - 1 = 29, last step 99
        1e-15,
    ),
    (
        S.OneCycleLR(0.5, 25, pct_start=0.3, anneal_strategy="linear", div_factor=10.0),
        lambda o: TL.OneCycleLR(
            o, 0.5, total_steps=25, anneal_strategy="linear", div_factor=10.0, cycle_momentum=False
        ),
        0.5,
        list(range(25)),  # phase end 6.5: a boundary between steps
        1e-15,
    ),
    (
        S.OneCycleLR(1.0, 40, pct_start=0.25, three_phase=True, final_div_factor=100.0),
        lambda o: TL.OneCycleLR(
            o,
            1.0,
            total_steps=40,
            pct_start=0.25,
            three_phase=True,
            final_div_factor=100.0,
            cycle_momentum=False,
        ),
        1.0,
        around(0, 9, 18, 39)[:-1],  # phase ends 9, 18, 39
        1e-15,
    ),
    (
        S.CyclicLR(0.1, 1.0, 4, 6),
        lambda o: TL.CyclicLR(o, 0.1, 1.0, 4, 6, cycle_momentum=False),
        0.1,
        around(0, 4, 10, 14, 20) + [7, 99],
        1e-15,
    ),
    (
        S.CyclicLR(0.1, 1.0, 3, mode="triangular2"),
        lambda o: TL.CyclicLR(o, 0.1, 1.0, 3, mode="triangular2", cycle_momentum=False),
        0.1,
        around(0, 3, 6, 9, 12, 15) + [60],
        1e-15,
    ),
    (
        S.CyclicLR(0.1, 1.0, 5, 2, mode="exp_range", gamma=0.99),
        lambda o: TL.CyclicLR(
            o, 0.1, 1.0, 5, 2, mode="exp_range", gamma=0.99, cycle_momentum=False
        ),
        0.1,
        around(0, 5, 7, 12, 14) + [70],
        1e-15,
    ),
]


@pytest.mark.parametrize(
    ("ours", "make_torch", "lr", "steps", "rel"), TORCH, ids=[repr(c[0])[:50] for c in TORCH]
)
def test_torch(ours, make_torch, lr, steps, rel):
    steps = list(steps)
    ref = torch_lrs(make_torch, lr, max(steps))
    assert_all_close(values(ours, steps), [ref[k] for k in steps], steps, rel, 1e-15 * lr, "torch")


def test_torch_cosine_annealing_recursive_form_rounding():
    # torch updates CosineAnnealingLR recursively; the closed form agrees to rounding only.
    # Measured: past T_max=10 torch's lr(20) = 1.0000000000000042 (above the base lr),
    # the closed form gives exactly 1.0.
    ref = torch_lrs(lambda o: TL.CosineAnnealingLR(o, 10), 1.0, 20)
    ours = S.CosineAnnealingLR(1.0, 10)
    assert ours(20) == 1.0
    assert ref[20] != 1.0 and ref[20] == pytest.approx(1.0, rel=1e-14)


def test_linear_warmup_equals_torch_sequential_lr():
    # torch's SequentialLR([LinearLR, CosineAnnealingLR], milestones=[W]) restarts the second
    # scheduler at W: the shifted convention of LinearWarmup.
    def make(o):
        return TL.SequentialLR(
            o, [TL.LinearLR(o, 0.1, 1.0, 4), TL.CosineAnnealingLR(o, 10)], milestones=[4]
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch_lrs(make, 0.5, 20)
    ours = S.LinearWarmup(S.CosineAnnealingLR(0.5, 10), 4, start_factor=0.1)
    steps = list(range(21))
    assert_all_close(values(ours, steps), ref, steps, 1e-10, 1e-16, "torch")


def test_onecycle_past_the_end():
    # torch extrapolates at k = total_steps (pct > 1) and raises only at total_steps + 1.
    # Measured (max_lr=1, total_steps=10, linear): torch lr(10) = -0.14285257142857133 (a
    # negative learning rate); cos: lr(10) = 0.04951936798652623 (climbing back up). Here any
    # step >= total_steps raises.
    lin = torch_lrs(
        lambda o: TL.OneCycleLR(o, 1.0, 10, anneal_strategy="linear", cycle_momentum=False),
        1.0,
        10,
    )
    assert lin[10] == pytest.approx(-0.14285257142857133, rel=1e-12)
    with pytest.raises(ValueError, match="total steps is 10"):
        torch_lrs(lambda o: TL.OneCycleLR(o, 1.0, 10, cycle_momentum=False), 1.0, 11)
    ours = S.OneCycleLR(1.0, 10, anneal_strategy="linear")
    assert ours(9) == pytest.approx(lin[9], rel=1e-15)
    for k in (10, 11, 10**6):
        with pytest.raises(ValueError, match=rf"step={k} .*total_steps=10"):
            ours(k)


def test_onecycle_degenerate_warmup_refused():
    # torch: pct_start * total_steps == 1 divides by zero in the constructor; < 1 silently
    # skips the warmup (pct_start=0.05, total_steps=10: lr(0) = 0.9931806789787544, not 0.04).
    with pytest.raises(ZeroDivisionError):
        torch_lrs(lambda o: TL.OneCycleLR(o, 1.0, 10, pct_start=0.1, cycle_momentum=False), 1, 0)
    skip = torch_lrs(
        lambda o: TL.OneCycleLR(o, 1.0, 10, pct_start=0.05, cycle_momentum=False), 1, 0
    )
    assert skip[0] == pytest.approx(0.9931806789787544, rel=1e-12)
    for pct in (0.1, 0.05):
        with pytest.raises(ValueError, match=r"pct_start \* total_steps must be > 1"):
            S.OneCycleLR(1.0, 10, pct_start=pct)


def test_linear_lr_total_iters_zero_is_stuck_in_torch():
    # torch accepts total_iters=0 and stays at start_factor forever; refused here.
    ref = torch_lrs(lambda o: TL.LinearLR(o, 0.5, 1.0, 0), 1.0, 3)
    assert ref == [0.5, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="total_iters must be an integer >= 1, got 0"):
        S.LinearLR(1.0, 0.5, 1.0, 0)


# -- optax --------------------------------------------------------------------------------

OPTAX = [
    # (ours, optax schedule, steps): where the formulas agree.
    (
        S.ExponentialDecay(0.1, 10, 0.5),
        optax.exponential_decay(0.1, 10, 0.5),
        around(0, 10, 20) + [1000],
    ),
    (
        S.ExponentialDecay(0.1, 7, 0.9, staircase=True),
        optax.exponential_decay(0.1, 7, 0.9, staircase=True),
        around(0, 7, 14),
    ),
    (
        S.PolynomialDecay(0.1, 10, 0.001, power=2.0),
        optax.polynomial_schedule(0.1, 0.001, 2.0, 10),
        around(0, 5, 10) + [100],
    ),
    (
        S.CosineDecay(0.1, 10, alpha=0.1),
        optax.cosine_decay_schedule(0.1, 10, alpha=0.1),
        around(0, 5, 10) + [100],
    ),
    (
        S.CosineDecay(0.01, 20, alpha=0.1, warmup_target=0.2, warmup_steps=7),
        optax.warmup_cosine_decay_schedule(0.01, 0.2, 7, 27, end_value=0.02),
        around(0, 7, 27) + [100],
    ),
    (
        S.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.2),
        optax.sgdr_schedule(
            [
                # peak of period i: lr * ((1 - alpha) * m_mul**i + alpha); floor alpha * lr
                dict(
                    init_value=p,
                    peak_value=p,
                    warmup_steps=0,
                    decay_steps=10 * 2**i,
                    end_value=0.02,
                )
                for i, p in enumerate(0.1 * (0.8 * 0.5**i + 0.2) for i in range(4))
            ]
        ),
        around(0, 10, 30, 70) + [20, 100],
    ),
    (S.Constant(0.3), optax.constant_schedule(0.3), [0, 1, 10**6]),
    (
        S.StepLR(0.1, 3, 0.5),
        optax.exponential_decay(0.1, 3, 0.5, staircase=True),
        around(0, 3, 6, 30),
    ),
    (
        S.MultiStepLR(0.1, [2, 5, 9], 0.1),
        optax.piecewise_constant_schedule(0.1, {2: 0.1, 5: 0.1, 9: 0.1}),
        around(0, 2, 5, 9),
    ),
    (S.ExponentialLR(0.1, 0.9), optax.exponential_decay(0.1, 1, 0.9), [0, 1, 2, 50, 200]),
    (
        S.LinearLR(0.1, 0.25, 1.0, 6),
        optax.linear_schedule(0.025, 0.1, 6),
        around(0, 3, 6) + [60],
    ),
    (
        S.CosineAnnealingLR(0.1, 10, 0.01),  # up to T_max only (see the pinned difference)
        optax.cosine_decay_schedule(0.1, 10, alpha=0.1),
        [0, 1, 5, 9, 10],
    ),
    (
        S.LinearWarmup(S.ExponentialDecay(0.2, 10, 0.5), 5, start_factor=0.1),
        optax.join_schedules(
            [optax.linear_schedule(0.02, 0.2, 5), optax.exponential_decay(0.2, 10, 0.5)], [5]
        ),
        around(0, 5, 15) + [2],
    ),
]


@pytest.mark.parametrize(("ours", "ref", "steps"), OPTAX, ids=[repr(c[0])[:50] for c in OPTAX])
def test_optax(ours, ref, steps):
    ref_values = [float(ref(jnp.asarray(k))) for k in steps]
    assert_all_close(values(ours, steps), ref_values, steps, 1e-12, 1e-16, "optax")


def test_optax_differs_piecewise_boundary():
    # Keras (and PiecewiseConstantDecay) switch after a boundary, t > b; optax at it, t >= b.
    # Measured: boundaries [10, 20], values [1.0, 0.5, 0.1]: ours(10) = 1.0, optax(10) = 0.5;
    # ours(20) = 0.5, optax(20) = 0.1; they agree at 9, 11 and 21.
    ours = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    ref = optax.piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.2})
    assert [ours(k) for k in (10, 20)] == [1.0, 0.5]
    assert [float(ref(k)) for k in (10, 20)] == pytest.approx([0.5, 0.1], rel=1e-15)
    for k in (9, 11, 21):
        assert ours(k) == pytest.approx(float(ref(k)), rel=1e-15)
    # One step later, optax's value is ours: ours(k + 1) == optax(k) at the boundaries.
    for k in (10, 20):
        assert ours(k + 1) == pytest.approx(float(ref(k)), rel=1e-15)


def test_optax_differs_onecycle():
    # torch's OneCycleLR peaks at pct_start * T - 1 and reaches the floor at T - 1; optax's
    # cosine_onecycle_schedule at int(pct_start * T) and T. Measured (T=100, peak 1.0):
    #   step     ours (torch)         optax
    #   29       1.0                  0.9973705097767712
    #   30       0.9994965352845243   1.0
    #   99       4e-06                0.0005074647154757879
    # The decay phase is optax's shifted by one step: ours(k) == optax(k + 1) for k >= 29.
    ours = S.OneCycleLR(1.0, 100)
    ref = optax.cosine_onecycle_schedule(100, 1.0)
    assert ours(29) == 1.0 and float(ref(30)) == 1.0
    assert float(ref(29)) == pytest.approx(0.9973705097767712, rel=1e-12)
    assert ours(99) == pytest.approx(4e-6, rel=1e-12)
    assert float(ref(99)) == pytest.approx(0.0005074647154757879, rel=1e-12)
    assert ours(0) == pytest.approx(float(ref(0)), rel=1e-15)
    for k in (29, 30, 50, 98, 99):
        assert ours(k) == pytest.approx(float(ref(k + 1)), rel=1e-12)
    assert ours(1) != pytest.approx(float(ref(1)), rel=1e-3)  # the warmup phases differ


def test_optax_differs_cosine_annealing_past_t_max():
    # torch's cosine keeps going past T_max and climbs back; optax stays at the floor.
    # Measured (lr 1.0, T_max 10, eta_min 0.1): step 15: ours 0.55, optax 0.1; step 20: 1.0, 0.1.
    ours = S.CosineAnnealingLR(1.0, 10, 0.1)
    ref = optax.cosine_decay_schedule(1.0, 10, alpha=0.1)
    assert ours(10) == pytest.approx(float(ref(10)), rel=1e-15)
    assert ours(15) == pytest.approx(0.55, rel=1e-14) and float(ref(15)) == pytest.approx(0.1)
    assert ours(20) == pytest.approx(1.0, rel=1e-15) and float(ref(20)) == pytest.approx(0.1)


# -- ReduceLROnPlateau --------------------------------------------------------------------


def run_plateau(sched: S.ReduceLROnPlateau, metrics) -> list[float]:
    return [sched.step(m) for m in metrics]


PLATEAU = [
    # (constructor kwargs, metrics)
    (dict(patience=2), [1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6, 0.6]),
    (dict(patience=0, cooldown=2), [1.0] * 8),
    (dict(patience=1, min_lr=0.05), [1.0] * 10),
    (dict(patience=0, threshold=0.1), [10.0, 9.5, 9.5, 8.0, 7.9]),
    (dict(patience=0, threshold=0.1, threshold_mode="abs"), [10.0, 9.5, 9.5, 9.45, 9.3]),
    (dict(mode="max", patience=1), [0.5, 0.6, 0.6, 0.6, 0.7, 0.65, 0.65, 0.65]),
    (dict(mode="max", patience=0, threshold=0.5, threshold_mode="abs"), [1.0, 1.4, 1.6, 2.2]),
    (dict(patience=0, threshold=0.1), [-1.0, -0.95, -0.94, -0.5]),  # negative metrics, rel
    (dict(patience=1, cooldown=1, factor=0.5, eps=0.0), [3, 2, 2, 2, 2, 2, 1, 1, 1, 1]),
    (dict(patience=0, factor=0.0), [1.0, 2.0, 3.0]),
    (dict(patience=0, factor=0.5, eps=0.5), [1.0, 1.0, 1.0]),  # a cut of exactly eps is dropped
    (dict(patience=0, factor=0.5, eps=0.25), [1.0, 1.0, 1.0, 1.0]),  # 0.5, then 0.25 - eps
]


@pytest.mark.parametrize(("kwargs", "metrics"), PLATEAU, ids=[str(p[0]) for p in PLATEAU])
def test_plateau_torch(kwargs, metrics):
    ours = S.ReduceLROnPlateau(1.0, **kwargs)
    assert run_plateau(ours, metrics) == torch_plateau(1.0, metrics, **kwargs)
    assert ours(0) == ours(10**9) == ours.state_dict()["lr"]
    assert ours.last_epoch == len(metrics)


def test_plateau_patience_hand():
    s = S.ReduceLROnPlateau(1.0, patience=2)
    # first report sets best; three bad reports (> patience=2) reduce
    assert run_plateau(s, [1.0, 1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0, 0.1]
    assert s.num_bad_epochs == 0 and s.best == 1.0


def test_plateau_cooldown_hand():
    s = S.ReduceLROnPlateau(1.0, patience=0, cooldown=2)
    lrs = run_plateau(s, [1.0] * 6)
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.1, 0.01, 0.01], rel=1e-15)
    assert s.cooldown_counter == 1


def test_plateau_min_lr_hand():
    s = S.ReduceLROnPlateau(1.0, patience=0, min_lr=0.05)
    assert run_plateau(s, [1.0] * 5) == pytest.approx([1.0, 0.1, 0.05, 0.05, 0.05], rel=1e-15)


def test_plateau_threshold_modes_hand():
    rel = S.ReduceLROnPlateau(1.0, patience=5, threshold=0.1)
    abs_ = S.ReduceLROnPlateau(1.0, patience=5, threshold=0.1, threshold_mode="abs")
    run_plateau(rel, [10.0, 9.5])  # rel needs < 9.0
    run_plateau(abs_, [10.0, 9.5])  # abs needs < 9.9
    assert (rel.best, rel.num_bad_epochs) == (10.0, 1)
    assert (abs_.best, abs_.num_bad_epochs) == (9.5, 0)


def test_plateau_max_mode_hand():
    s = S.ReduceLROnPlateau(1.0, mode="max", patience=0, threshold=0.0)
    assert run_plateau(s, [0.5, 0.6, 0.6, 0.4]) == pytest.approx([1.0, 1.0, 0.1, 0.01])
    assert s.best == 0.6


def test_plateau_odd_peer_behaviour():
    # rel mode with negative metrics: -0.95 (worse than -1.0) counts as an improvement because
    # -0.95 < -1.0 * (1 - 0.1); torch does the same.
    s = S.ReduceLROnPlateau(1.0, patience=0, threshold=0.1)
    assert run_plateau(s, [-1.0, -0.95, -0.94]) == [1.0, 1.0, 1.0]
    assert s.best == -0.94
    # reductions <= eps are dropped: lr 1e-8 never moves (torch: [1e-08] * 4 as well)
    tiny = S.ReduceLROnPlateau(1e-8, patience=0)
    assert run_plateau(tiny, [1.0] * 4) == [1e-8] * 4
    assert torch_plateau(1e-8, [1.0] * 4, patience=0) == [1e-8] * 4
    # a cut of exactly eps is dropped too (lr - new > eps, strictly)
    edge = S.ReduceLROnPlateau(1.0, patience=0, factor=0.5, eps=0.5)
    assert run_plateau(edge, [1.0] * 3) == [1.0, 1.0, 1.0]
    assert run_plateau(S.ReduceLROnPlateau(1.0, patience=0, factor=0.5, eps=0.49), [1.0] * 2) == [
        1.0,
        0.5,
    ]


def test_plateau_nan_metric():
    s = S.ReduceLROnPlateau(1.0)
    with pytest.raises(ValueError, match="metric must not be NaN"):
        s.step(float("nan"))
    with pytest.raises(TypeError, match="metric must be a real number"):
        s.step("0.5")
    assert s.last_epoch == 0 and s.state_dict()["best"] is None
    s.step(np.float32(0.5))
    s.step(torch.tensor(0.25))
    assert s.best == 0.25


def test_plateau_state_dict_round_trip():
    kwargs = dict(patience=1, cooldown=2, factor=0.5, min_lr=1e-3, threshold=0.01)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.9, 0.9, 0.9]
    a = S.ReduceLROnPlateau(0.1, **kwargs)
    run_plateau(a, metrics[:6])
    state = json.loads(json.dumps(a.state_dict()))
    assert set(state) == {"lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch"}
    b = S.deserialize(S.serialize(a))  # config only: fresh counters
    assert b.state_dict() != a.state_dict() and b != a
    b.load_state_dict(state)
    assert b == a and b.state_dict() == a.state_dict()
    rest = metrics[6:]
    assert run_plateau(b, rest) == run_plateau(a, rest)
    assert b.state_dict() == a.state_dict()
    # and the continuation matches torch fed the whole sequence
    assert a(0) == torch_plateau(0.1, metrics, **kwargs)[-1]


def test_plateau_state_dict_fresh_and_bad():
    s = S.ReduceLROnPlateau(0.1, mode="max")
    assert s.state_dict() == {
        "lr": 0.1,
        "best": None,
        "num_bad_epochs": 0,
        "cooldown_counter": 0,
        "last_epoch": 0,
    }
    with pytest.raises(ValueError, match="must have the keys"):
        s.load_state_dict({"lr": 0.1})
    bad = dict(s.state_dict(), num_bad_epochs=-1)
    with pytest.raises(ValueError, match="num_bad_epochs must be an integer >= 0, got -1"):
        s.load_state_dict(bad)
    assert s.state_dict()["num_bad_epochs"] == 0  # nothing replaced


# -- serialization ------------------------------------------------------------------------

ONE_OF_EACH = [
    S.Constant(0.1),
    S.ExponentialDecay(0.1, 10, 0.5, staircase=True),
    S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
    S.PolynomialDecay(0.1, 10, 0.01, power=2.0, cycle=True),
    S.InverseTimeDecay(0.1, 10, 0.5),
    S.CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.1, warmup_steps=5),
    S.CosineDecayRestarts(0.1, 10, t_mul=1.5, m_mul=0.5, alpha=0.1),
    S.StepLR(0.1, 3),
    S.MultiStepLR(0.1, [2, 5, 5]),
    S.ExponentialLR(0.1, 0.9),
    S.LinearLR(0.1, 0.5, 1.0, 4),
    S.CosineAnnealingLR(0.1, 10, 0.001),
    S.OneCycleLR(0.1, 100, three_phase=True),
    S.CyclicLR(0.01, 0.1, 5, 3, mode="exp_range", gamma=0.9),
    S.ReduceLROnPlateau(0.1, mode="max", patience=3),
    S.LinearWarmup(S.CosineDecayRestarts(0.1, 10), 5, start_factor=0.1),
    S.LinearWarmup(0.2, 3),
]


def test_one_of_each_covers_every_class():
    classes = {
        n
        for n in S.__all__
        if isinstance(getattr(S, n), type)
        and issubclass(getattr(S, n), S.LearningRateSchedule)
        and n != "LearningRateSchedule"
    }
    assert {type(s).__name__ for s in ONE_OF_EACH} == classes


@pytest.mark.parametrize("sched", ONE_OF_EACH, ids=lambda s: type(s).__name__)
def test_serialize_round_trip(sched):
    data = S.serialize(sched)
    assert data["class_name"] == type(sched).__name__
    text = json.dumps(data, allow_nan=False)
    back = S.deserialize(json.loads(text))
    assert type(back) is type(sched)
    assert back == sched and hash(back) == hash(sched)
    assert back.get_config() == sched.get_config()
    assert repr(back) == repr(sched)
    assert type(sched).from_config(sched.get_config()) == sched
    for k in (0, 1, 5, 6, 17, 99):
        assert back(k) == sched(k)
    assert sched.state_dict() == back.state_dict()


def test_repr_and_config():
    s = S.ExponentialDecay(1, 10.0, 1)  # ints where floats are meant, an integral float count
    assert repr(s) == (
        "ExponentialDecay(initial_learning_rate=1.0, decay_steps=10, decay_rate=1.0, "
        "staircase=False)"
    )
    config = s.get_config()
    assert config == {
        "initial_learning_rate": 1.0,
        "decay_steps": 10,
        "decay_rate": 1.0,
        "staircase": False,
        "name": "ExponentialDecay",  # Keras's default name, as in Keras's get_config
    }
    assert type(config["initial_learning_rate"]) is float and type(config["decay_steps"]) is int
    w = S.LinearWarmup(S.Constant(0.1), 3)
    assert repr(w) == (
        "LinearWarmup(schedule_or_lr=Constant(learning_rate=0.1), warmup_steps=3, start_factor=0.0)"
    )
    assert S.PiecewiseConstantDecay((1,), np.array([1.0, 2.0])).get_config() == {
        "boundaries": [1],
        "values": [1.0, 2.0],
        "name": "PiecewiseConstant",
    }


KERAS_CLASSES = [
    (S.ExponentialDecay, (0.1, 10, 0.5), "ExponentialDecay"),
    (S.PiecewiseConstantDecay, ([10], [0.1, 0.01]), "PiecewiseConstant"),
    (S.PolynomialDecay, (0.1, 10), "PolynomialDecay"),
    (S.InverseTimeDecay, (0.1, 10, 0.5), "InverseTimeDecay"),
    (S.CosineDecay, (0.1, 10), "CosineDecay"),
    (S.CosineDecayRestarts, (0.1, 10), "SGDRDecay"),
]


@pytest.mark.parametrize(("cls", "args", "default"), KERAS_CLASSES, ids=lambda c: str(c)[:30])
def test_keras_name_argument(cls, args, default):
    plain, named = cls(*args), cls(*args, name="my_schedule")
    assert plain.name == default and plain.get_config()["name"] == default  # Keras's defaults
    assert named.get_config()["name"] == "my_schedule"
    back = cls.from_config(json.loads(json.dumps(named.get_config())))
    assert back.name == "my_schedule" and back == named and back != plain
    assert "name=" not in repr(plain) and "name='my_schedule'" in repr(named)
    assert [named(k) for k in (0, 3, 11)] == [plain(k) for k in (0, 3, 11)]
    config = plain.get_config()
    del config["name"]  # a config saved before names existed
    assert cls.from_config(config) == plain
    with pytest.raises(TypeError, match=r"name must be a string, got None of type NoneType"):
        cls(*args, name=None)


def test_cosine_decay_takes_keras_positional_order():
    # Keras: CosineDecay(initial_learning_rate, decay_steps, alpha, name, warmup_target, ...)
    s = S.CosineDecay(0.0, 10, 0.0, "warm", 1.0, 5)
    assert (s.name, s.warmup_target, s.warmup_steps) == ("warm", 1.0, 5)
    with pytest.raises(TypeError, match=r"name must be a string, got 1.0"):
        S.CosineDecay(0.0, 10, 0.0, 1.0)  # the old positional warmup_target


def test_equality():
    assert S.StepLR(0.1, 3) == S.StepLR(0.1, 3, gamma=0.1)
    assert S.StepLR(0.1, 3) != S.StepLR(0.1, 4)
    assert S.StepLR(0.1, 3) != S.ExponentialLR(0.1, 0.1)
    assert len({S.StepLR(0.1, 3), S.StepLR(0.1, 3), S.StepLR(0.2, 3)}) == 2
    a, b = S.ReduceLROnPlateau(0.1), S.ReduceLROnPlateau(0.1)
    assert a == b
    a.step(1.0)
    assert a != b


def test_serialize_errors():
    with pytest.raises(TypeError, match="plain Python callable.*not serializable"):
        S.serialize(lambda step: 0.1)
    warm = S.LinearWarmup(lambda step: 0.1 / (1 + step), 3)
    assert warm(3) == 0.1 and warm(4) == 0.05  # works, but cannot be saved
    with pytest.raises(TypeError, match="plain Python callable.*not serializable"):
        S.serialize(warm)
    with pytest.raises(TypeError, match="expects a LearningRateSchedule"):
        S.serialize(0.1)

    class Mine(S.Constant):
        pass

    with pytest.raises(TypeError, match="Mine is not a schedule of optimlab.schedules"):
        S.serialize(Mine(0.1))


def test_deserialize_errors():
    with pytest.raises(ValueError, match=r"unknown schedule class_name 'Nope'; valid names: .*"):
        S.deserialize({"class_name": "Nope", "config": {}})
    try:
        S.deserialize({"class_name": "Nope", "config": {}})
    except ValueError as e:
        for name in ("CosineDecay", "OneCycleLR", "ReduceLROnPlateau", "LinearWarmup"):
            assert name in str(e)
    with pytest.raises(ValueError, match="expected a dict"):
        S.deserialize({"config": {}})
    with pytest.raises(ValueError, match=r"unknown config keys \['name'\] for StepLR"):
        S.deserialize(
            {"class_name": "StepLR", "config": {"learning_rate": 0.1, "step_size": 3, "name": "x"}}
        )
    with pytest.raises(ValueError, match="decay_steps must be an integer >= 1, got 0"):
        S.deserialize(
            {
                "class_name": "ExponentialDecay",
                "config": {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5},
            }
        )


def test_stateless_state_dict():
    for sched in ONE_OF_EACH:
        if isinstance(sched, S.ReduceLROnPlateau):
            continue
        assert sched.state_dict() == {}
        sched.load_state_dict({})
        with pytest.raises(ValueError, match="has no state"):
            sched.load_state_dict({"lr": 0.1})


def test_linear_warmup_delegates_state():
    inner = S.ReduceLROnPlateau(0.1, patience=0)
    warm = S.LinearWarmup(inner, 4)
    assert warm(2) == pytest.approx(0.05)
    inner.step(1.0)
    inner.step(2.0)
    assert warm.state_dict() == inner.state_dict() and warm(4) == pytest.approx(0.01)
    other = S.deserialize(S.serialize(warm))
    other.load_state_dict(json.loads(json.dumps(warm.state_dict())))
    assert other == warm and other(9) == warm(9)


LR = st.one_of(st.floats(0.0, 10.0, allow_nan=False), st.integers(0, 5))
STEPS = st.integers(1, 500)
FRAC = st.floats(0.0, 1.0)
SCHEDULES = st.one_of(
    st.builds(S.Constant, LR),
    st.builds(S.ExponentialDecay, LR, STEPS, st.floats(0.01, 2.0), st.booleans()),
    st.lists(st.integers(0, 1000), max_size=4, unique=True).flatmap(
        lambda b: st.builds(
            S.PiecewiseConstantDecay,
            st.just(sorted(b)),
            st.lists(LR, min_size=len(b) + 1, max_size=len(b) + 1),
        )
    ),
    st.builds(S.PolynomialDecay, LR, STEPS, LR, st.floats(0.1, 3.0), st.booleans()),
    st.builds(S.InverseTimeDecay, LR, STEPS, st.floats(0.0, 5.0), st.booleans()),
    st.builds(S.CosineDecay, LR, STEPS, FRAC),
    st.builds(S.CosineDecay, LR, STEPS, FRAC, warmup_target=LR, warmup_steps=st.integers(0, 100)),
    st.builds(S.ExponentialDecay, LR, STEPS, st.floats(0.01, 2.0), name=st.text(max_size=8)),
    st.builds(S.CosineDecayRestarts, LR, STEPS, st.floats(1.0, 3.0), FRAC, FRAC),
    st.builds(S.StepLR, LR, STEPS, st.floats(0.01, 1.0)),
    st.builds(
        S.MultiStepLR, LR, st.lists(st.integers(0, 500), max_size=4).map(sorted), st.floats(0.1, 1)
    ),
    st.builds(S.ExponentialLR, LR, st.floats(0.5, 1.0)),
    st.builds(S.LinearLR, LR, st.floats(0.01, 1.0), FRAC, STEPS),
    st.builds(S.CosineAnnealingLR, LR, STEPS, LR),
    st.builds(
        S.OneCycleLR,
        LR,
        st.integers(10, 1000),
        st.floats(0.2, 0.45),
        st.sampled_from(["cos", "linear"]),
        st.floats(1.0, 100.0),
        st.floats(1.0, 1e5),
        st.booleans(),
    ),
    st.builds(
        lambda lo, extra, up, down, mode, gamma: S.CyclicLR(lo, lo + extra, up, down, mode, gamma),
        LR,
        LR,
        STEPS,
        st.one_of(st.none(), STEPS),
        st.sampled_from(S.CyclicLR.MODES),
        st.floats(0.5, 1.0),
    ),
    st.builds(
        S.ReduceLROnPlateau,
        LR,
        st.sampled_from(["min", "max"]),
        st.floats(0.0, 0.99),
        st.integers(0, 20),
        st.floats(0.0, 0.5),
        st.sampled_from(["rel", "abs"]),
        st.integers(0, 5),
        LR,
    ),
)


@settings(max_examples=150, deadline=None)
@given(SCHEDULES, st.integers(0, 3000), st.integers(0, 30), FRAC)
def test_round_trip_property(sched, step, warmup, start_factor):
    for s in (sched, S.LinearWarmup(sched, warmup, start_factor)):
        back = S.deserialize(json.loads(json.dumps(S.serialize(s), allow_nan=False)))
        assert back == s and repr(back) == repr(s)
        try:
            expected = s(step)
        except ValueError as e:  # OneCycleLR past total_steps
            with pytest.raises(ValueError, match=str(e).split(":")[0]):
                back(step)
            continue
        got = back(step)
        assert type(got) is float and got == expected
        assert math.isfinite(got) and got >= 0.0


# -- the step argument --------------------------------------------------------------------


@pytest.mark.parametrize("sched", ONE_OF_EACH, ids=lambda s: type(s).__name__)
def test_step_argument(sched):
    assert sched(np.int64(7)) == sched(7) == sched(7.0) == sched(np.array(7))
    assert sched(np.array(7.0, dtype=np.float32)) == sched(7)  # Keras passes a 0-d tensor
    assert type(sched(np.int32(3))) is float
    with pytest.raises(TypeError, match=r"step must be an integer.*array of shape \(1,\)"):
        sched(np.array([7]))
    with pytest.raises(TypeError, match=r"step must be an integer.*shape \(\) and dtype bool"):
        sched(np.array(True))
    with pytest.raises(ValueError, match=r"step must be an integer >= 0.*got array\(-1\.\)"):
        sched(np.array(-1.0))
    with pytest.raises(ValueError, match=r"step must be an integer >= 0.*got -1"):
        sched(-1)
    with pytest.raises(ValueError, match=r"step must be an integer >= 0.*got 2\.5"):
        sched(2.5)
    with pytest.raises(ValueError, match=r"step must be an integer >= 0.*got nan"):
        sched(float("nan"))
    with pytest.raises(TypeError, match="step must be an integer"):
        sched("3")
    with pytest.raises(TypeError, match="step must be an integer"):
        sched(True)


# -- validation ---------------------------------------------------------------------------

ERRORS = [
    # (constructor call in optimlab.schedules, exception, message regex)
    ("Constant(-0.1)", ValueError, r"learning_rate must be a float >= 0, got -0\.1"),
    ("Constant('0.1')", TypeError, r"learning_rate must be a float >= 0, got '0\.1'"),
    ("Constant(True)", TypeError, r"learning_rate must be a float"),
    ("ExponentialDecay(0.1, 0, 0.5)", ValueError, r"decay_steps must be an integer >= 1, got 0"),
    (
        "ExponentialDecay(0.1, 2.5, 0.5)",
        ValueError,
        r"decay_steps must be an integer >= 1, got 2\.5",
    ),
    ("ExponentialDecay(0.1, 10, -1)", ValueError, r"decay_rate must be a float > 0, got -1"),
    ("ExponentialDecay(0.1, 10, 0)", ValueError, r"decay_rate must be a float > 0, got 0"),
    (
        "ExponentialDecay(float('nan'), 10, 0.5)",
        ValueError,
        r"initial_learning_rate must be a finite float",
    ),
    (
        "ExponentialDecay(0.1, 10, 0.5, staircase=1)",
        TypeError,
        r"staircase must be True or False, got 1",
    ),
    (
        "PiecewiseConstantDecay([10, 10], [1, 2, 3])",
        ValueError,
        r"boundaries must be strictly increasing, got \[10, 10\]",
    ),
    (
        "PiecewiseConstantDecay([10, 5], [1, 2, 3])",
        ValueError,
        r"boundaries must be strictly increasing",
    ),
    (
        "PiecewiseConstantDecay([10], [1.0])",
        ValueError,
        r"values must have len\(boundaries\) \+ 1 = 2 entries, got 1",
    ),
    ("PiecewiseConstantDecay([10], [1, 2, 3])", ValueError, r"= 2 entries, got 3"),
    (
        "PiecewiseConstantDecay([-1], [1, 2])",
        ValueError,
        r"boundaries\[0\] must be an integer >= 0, got -1",
    ),
    (
        "PiecewiseConstantDecay([1.5], [1, 2])",
        ValueError,
        r"boundaries\[0\] must be an integer >= 0, got 1\.5",
    ),
    (
        "PiecewiseConstantDecay([1], [1, -2])",
        ValueError,
        r"values\[1\] must be a float >= 0, got -2",
    ),
    ("PiecewiseConstantDecay('12', [1, 2, 3])", TypeError, r"boundaries must be a list"),
    ("PolynomialDecay(0.1, 10, power=0)", ValueError, r"power must be a float > 0, got 0"),
    (
        "PolynomialDecay(0.1, 10, end_learning_rate=-1e-3)",
        ValueError,
        r"end_learning_rate must be a float >= 0",
    ),
    ("PolynomialDecay(0.1, 10, cycle='yes')", TypeError, r"cycle must be True or False"),
    ("InverseTimeDecay(0.1, 10, -1)", ValueError, r"decay_rate must be a float >= 0, got -1"),
    ("InverseTimeDecay(0.1, -10, 1)", ValueError, r"decay_steps must be an integer >= 1, got -10"),
    ("CosineDecay(0.1, 10, alpha=1.5)", ValueError, r"alpha must be a float in \[0, 1\], got 1\.5"),
    ("CosineDecay(0.1, 10, warmup_steps=5)", ValueError, r"warmup_steps=5 needs a warmup_target"),
    (
        "CosineDecay(0.1, 10, warmup_target=-1.0, warmup_steps=5)",
        ValueError,
        r"warmup_target must be a float >= 0, got -1\.0",
    ),
    (
        "CosineDecay(0.1, 10, warmup_target=1.0, warmup_steps=-1)",
        ValueError,
        r"warmup_steps must be an integer >= 0, got -1",
    ),
    (
        "CosineDecayRestarts(0.1, 0)",
        ValueError,
        r"first_decay_steps must be an integer >= 1, got 0",
    ),
    (
        "CosineDecayRestarts(0.1, 10, t_mul=0.5)",
        ValueError,
        r"t_mul must be a float >= 1, got 0\.5",
    ),
    ("CosineDecayRestarts(0.1, 10, m_mul=-0.5)", ValueError, r"m_mul must be a float >= 0"),
    ("CosineDecayRestarts(0.1, 10, alpha=-0.1)", ValueError, r"alpha must be a float in \[0, 1\]"),
    ("StepLR(0.1, 0)", ValueError, r"step_size must be an integer >= 1, got 0"),
    ("StepLR(0.1, 3, gamma=0)", ValueError, r"gamma must be a float > 0, got 0"),
    (
        "MultiStepLR(0.1, [5, 2])",
        ValueError,
        r"milestones must be sorted \(non-decreasing\), got \[5, 2\]",
    ),
    ("MultiStepLR(0.1, [1.5])", ValueError, r"milestones\[0\] must be an integer >= 0, got 1\.5"),
    ("MultiStepLR(0.1, 5)", TypeError, r"milestones must be a list, got 5"),
    ("ExponentialLR(0.1, -0.5)", ValueError, r"gamma must be a float > 0, got -0\.5"),
    (
        "LinearLR(0.1, start_factor=0)",
        ValueError,
        r"start_factor must be a float in \(0, 1\], got 0",
    ),
    (
        "LinearLR(0.1, end_factor=1.5)",
        ValueError,
        r"end_factor must be a float in \[0, 1\], got 1\.5",
    ),
    ("LinearLR(0.1, total_iters=0)", ValueError, r"total_iters must be an integer >= 1, got 0"),
    ("CosineAnnealingLR(0.1, 0)", ValueError, r"T_max must be an integer >= 1, got 0"),
    ("CosineAnnealingLR(0.1, 10, eta_min=-1)", ValueError, r"eta_min must be a float >= 0, got -1"),
    ("OneCycleLR(0.1, 1)", ValueError, r"total_steps must be an integer >= 2, got 1"),
    (
        "OneCycleLR(0.1, 100, pct_start=0)",
        ValueError,
        r"pct_start must be a float in \(0, 1\), got 0",
    ),
    (
        "OneCycleLR(0.1, 100, pct_start=1.0)",
        ValueError,
        r"pct_start must be a float in \(0, 1\), got 1\.0",
    ),
    (
        "OneCycleLR(0.1, 10, pct_start=0.1)",
        ValueError,
        r"pct_start \* total_steps must be > 1.*pct_start=0\.1, total_steps=10",
    ),
    (
        "OneCycleLR(0.1, 10, pct_start=0.6, three_phase=True)",
        ValueError,
        r"three_phase=True, 2 \* pct_start \* total_steps - 2 must be < total_steps - 1",
    ),
    (
        "OneCycleLR(0.1, 100, anneal_strategy='exp')",
        ValueError,
        r"anneal_strategy must be one of 'cos', 'linear', got 'exp'",
    ),
    ("OneCycleLR(0.1, 100, div_factor=0)", ValueError, r"div_factor must be a float > 0, got 0"),
    (
        "OneCycleLR(0.1, 100, final_div_factor=-1)",
        ValueError,
        r"final_div_factor must be a float > 0",
    ),
    ("OneCycleLR(0.1, 100, three_phase=None)", TypeError, r"three_phase must be True or False"),
    (
        "CyclicLR(0.1, 1.0, mode='sawtooth')",
        ValueError,
        r"mode must be one of 'triangular', 'triangular2', 'exp_range', got 'sawtooth'",
    ),
    ("CyclicLR(0.1, 0.05)", ValueError, r"max_lr must be a float >= 0\.1, got 0\.05"),
    (
        "CyclicLR(0.1, 1.0, step_size_up=0)",
        ValueError,
        r"step_size_up must be an integer >= 1, got 0",
    ),
    (
        "CyclicLR(0.1, 1.0, step_size_down=0)",
        ValueError,
        r"step_size_down must be an integer >= 1, got 0",
    ),
    ("CyclicLR(0.1, 1.0, gamma=1.5)", ValueError, r"gamma must be a float in \(0, 1\], got 1\.5"),
    (
        "ReduceLROnPlateau(0.1, mode='avg')",
        ValueError,
        r"mode must be one of 'min', 'max', got 'avg'",
    ),
    (
        "ReduceLROnPlateau(0.1, threshold_mode='pct')",
        ValueError,
        r"threshold_mode must be one of 'rel', 'abs', got 'pct'",
    ),
    (
        "ReduceLROnPlateau(0.1, factor=1.0)",
        ValueError,
        r"factor must be a float in \[0, 1\), got 1\.0",
    ),
    (
        "ReduceLROnPlateau(0.1, patience=-1)",
        ValueError,
        r"patience must be an integer >= 0, got -1",
    ),
    (
        "ReduceLROnPlateau(0.1, threshold=1.0)",
        ValueError,
        r"threshold must be a float in \[0, 1\), got 1\.0",
    ),
    (
        "ReduceLROnPlateau(0.1, threshold=-1, threshold_mode='abs')",
        ValueError,
        r"threshold must be a float >= 0, got -1",
    ),
    (
        "ReduceLROnPlateau(0.1, cooldown=-1)",
        ValueError,
        r"cooldown must be an integer >= 0, got -1",
    ),
    ("ReduceLROnPlateau(0.1, min_lr=-1)", ValueError, r"min_lr must be a float >= 0, got -1"),
    ("ReduceLROnPlateau(0.1, eps=-1e-8)", ValueError, r"eps must be a float >= 0"),
    (
        "LinearWarmup('fast', 5)",
        TypeError,
        r"schedule_or_lr must be a LearningRateSchedule, a callable",
    ),
    ("LinearWarmup(-0.1, 5)", ValueError, r"schedule_or_lr must be a float >= 0, got -0\.1"),
    ("LinearWarmup(0.1, -5)", ValueError, r"warmup_steps must be an integer >= 0, got -5"),
    (
        "LinearWarmup(0.1, 5, start_factor=2)",
        ValueError,
        r"start_factor must be a float in \[0, 1\], got 2",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        eval(call, vars(S))


def test_large_steps_are_exact():
    # float32 would give up long before these; the schedules use integer arithmetic.
    big = 2**53 + 2  # beyond float64's exact integers too
    assert S.StepLR(1.0, 2**52, 0.5)(big) == 0.25
    assert S.MultiStepLR(1.0, [2**53 + 1], 0.5)(2**53) == 1.0
    assert S.MultiStepLR(1.0, [2**53 + 1], 0.5)(2**53 + 1) == 0.5
    assert S.PiecewiseConstantDecay([big - 1], [1.0, 2.0])(big - 1) == 1.0
    assert S.PiecewiseConstantDecay([big - 1], [1.0, 2.0])(big) == 2.0
    assert S.ExponentialDecay(1.0, 10**15, 0.5, staircase=True)(3 * 10**15 - 1) == 0.25
