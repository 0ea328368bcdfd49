"""The vectorized sweep: every run equals, bit for bit, a separate Optimizer on the same
surface; divergence, noise, steps_to, basin, tuning and argument errors.

The surfaces here are small local stand-ins with the duck-typed API of
``optimlab.lab.surfaces`` (value, gradient, minima, default_start, global_minimum, name).
"""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np
import pytest

import optimlab
from optimlab.lab import sweep as sweep_module
from optimlab.lab.sweep import SweepResult, sweep, tune_learning_rate

Minimum = namedtuple("Minimum", "point value kind")


class Rosenbrock:
    """f = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""

    name = "rosenbrock"
    default_start = np.array([-1.2, 1.0])
    minima = (Minimum((1.0, 1.0), 0.0, "global"),)
    global_minimum = minima[0]

    def value(self, xy):
        xy = np.asarray(xy, float)
        x, y = xy[..., 0], xy[..., 1]
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def gradient(self, xy):
        xy = np.asarray(xy, float)
        x, y = xy[..., 0], xy[..., 1]
        d = y - x * x
        return np.stack([-2 * (1 - x) - 400 * x * d, 200 * d], axis=-1)


class Bowl:
    """f = a/2 (x^2 + y^2) + 1, minimum 1 at the origin: gradient descent multiplies p by
    (1 - lr a) per step."""

    name = "bowl"
    default_start = np.array([1.0, 0.0])

    def __init__(self, a=1.0):
        self.a = a
        self.minima = (Minimum((0.0, 0.0), 1.0, "global"),)
        self.global_minimum = self.minima[0]

    def value(self, xy):
        xy = np.asarray(xy, float)
        return 0.5 * self.a * (xy[..., 0] ** 2 + xy[..., 1] ** 2) + 1.0

    def gradient(self, xy):
        return self.a * np.asarray(xy, float)


class DoubleWell:
    """f = (x^2 - 1)^2 + y^2: minima (-1, 0) and (1, 0), a saddle at the origin."""

    name = "double_well"
    default_start = np.array([0.5, 0.5])
    minima = (Minimum((-1.0, 0.0), 0.0, "global"), Minimum((1.0, 0.0), 0.0, "global"))
    global_minimum = minima[0]

    def value(self, xy):
        xy = np.asarray(xy, float)
        return (xy[..., 0] ** 2 - 1) ** 2 + xy[..., 1] ** 2

    def gradient(self, xy):
        xy = np.asarray(xy, float)
        x, y = xy[..., 0], xy[..., 1]
        return np.stack([4 * x * (x * x - 1), 2 * y], axis=-1)


ROSENBROCK = Rosenbrock()
STARTS = np.array([[-1.2, 1.0], [0.3, -0.4]])
LRS = (1e-4, 4e-4, 1e-3)
STEPS = 50


def separate_run(surface, name, lr, preset, start, steps, noise=None, **hyper):
    """The path of one Optimizer fed ``surface.gradient(p)`` (plus ``noise[t]``)."""
    opt = optimlab.get(name, learning_rate=lr, preset=preset, engine="reference", **hyper)
    p = np.array(start, dtype=float)
    path = [p.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            g = surface.gradient(p)
            if noise is not None:
                g = g + noise[t]
            try:
                opt.apply_gradients([(g, p)])
            except FloatingPointError:  # a non-finite gradient: the run cannot go on
                break
            path.append(p.copy())
    return np.array(path)


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def assert_bitwise(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    mismatch = bits(a) != bits(b)
    assert not mismatch.any(), f"{mismatch.sum()} values differ; max |diff| {np.abs(a - b).max()}"


# every optimizer x its structural/formula variants (run under every preset)
VARIANTS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"momentum": 0.5, "dampening": 0.3}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.01}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"bias_correction": False}),
    ("AdamW", {}),
    ("AdamW", {"amsgrad": True}),
    ("Nadam", {}),
    ("Adamax", {}),
    ("Adadelta", {}),
    ("Lion", {}),
    ("RAdam", {}),
    ("RAdam", {"nesterov": True, "threshold": 8.0}),
    ("Rprop", {}),
    ("Rprop", {"max_step_size": 4e-4}),  # lr 1e-3 above it: clipped at once, or not (optax)
    ("Ftrl", {}),
    ("Ftrl", {"learning_rate_power": 0.0, "l1_regularization_strength": 0.1}),
    ("Ftrl", {"learning_rate_power": -0.3, "beta": 1.0, "l2_regularization_strength": 0.1}),
    ("ScheduleFreeAdamW", {}),
    ("ScheduleFreeAdamW", {"warmup_steps": 10, "weight_decay": 0.1}),  # the rule's own decay
    ("ASGD", {"t0": 5.0, "lambd": 0.1}),  # eta and mu: step state computed from each lr
]
# the Optimizer's pipeline around the rule, each switched on explicitly
PIPELINE = [
    {"weight_decay": 0.1},
    {"weight_decay": 0.1, "weight_decay_mode": "l2"},
    {"clipnorm": 5.0},
    {"global_clipnorm": 5.0},
    {"clipvalue": 3.0},
    {"loss_scale_factor": 4.0},
    {"maximize": True},
]
PRESETS = ("keras", "torch", "optax")


def _case_id(case):
    name, hyper, preset = case
    extra = ",".join(f"{k}={v}" for k, v in hyper.items())
    return f"{name}[{extra}]-{preset}"


CASES = [(n, h, p) for n, h in VARIANTS for p in PRESETS]
CASES += [(n, h, p) for n in ("SGD", "Adam") for h in PIPELINE for p in PRESETS]
CASES += [("SGD", {"momentum": 0.9, **h}, "keras") for h in PIPELINE]
# gradient ascent on Rosenbrock leaves any region within 50 steps unless the step is bounded
CASES = [c for c in CASES if not (c[0] == "SGD" and c[1].get("maximize"))]


def _check_against_separate(result, surface, name, preset, starts, lrs, steps, **hyper):
    assert result.paths.shape == (steps + 1, len(starts), len(lrs), 1, 2)
    for i, start in enumerate(starts):
        for j, lr in enumerate(lrs):
            expected = separate_run(surface, name, lr, preset, start, steps, **hyper)
            assert_bitwise(result.paths[:, i, j, 0], expected)
            assert_bitwise(result.losses[:, i, j, 0], surface.value(expected))


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_sweep_equals_separate_optimizers_bit_for_bit(case):
    name, hyper, preset = case
    hyper = dict(hyper)
    if name == "AdamW" and hyper.get("weight_decay_mode") == "l2":
        pytest.skip("AdamW has decoupled decay only")
    result = sweep(
        ROSENBROCK, name, steps=STEPS, starts=STARTS, learning_rate=LRS, preset=preset, **hyper
    )
    assert not result.diverged.any()
    assert result.optimizer == optimlab.get(name, learning_rate=0.1).__class__.__name__
    _check_against_separate(result, ROSENBROCK, name, preset, STARTS, LRS, STEPS, **hyper)


def test_a_one_ulp_change_is_detected():
    """The exactness tests can fail: a start one ulp away, or another preset, gives other
    bits."""
    result = sweep(ROSENBROCK, "Adam", steps=STEPS, starts=STARTS[:1], learning_rate=1e-3)
    start = STARTS[0].copy()
    start[0] = np.nextafter(start[0], 0.0)
    nearby = separate_run(ROSENBROCK, "Adam", 1e-3, "keras", start, STEPS)
    assert (bits(result.paths[:, 0, 0, 0]) != bits(nearby)).sum() > STEPS
    torch = separate_run(ROSENBROCK, "Adam", 1e-3, "torch", STARTS[0], STEPS)
    assert (bits(result.paths[1:, 0, 0, 0]) != bits(torch[1:])).all()


def test_hyperparameter_grid_axes_match_separate_runs():
    momenta, nesterov = [0.0, 0.5, 0.9], [False, True]
    result = sweep(
        ROSENBROCK,
        "sgd",
        steps=30,
        starts=STARTS,
        learning_rate=[1e-4, 1e-3],
        momentum=momenta[1:],
        nesterov=nesterov,
        seeds=(0,),
    )
    assert list(result.axes) == ["start", "learning_rate", "momentum", "nesterov", "seed"]
    assert result.shape == (2, 2, 2, 2, 1)
    assert result.paths.shape == (31, 2, 2, 2, 2, 1, 2)
    for i, start in enumerate(STARTS):
        for j, lr in enumerate([1e-4, 1e-3]):
            for k, mom in enumerate(momenta[1:]):
                for n, nes in enumerate(nesterov):
                    expected = separate_run(
                        ROSENBROCK, "SGD", lr, "keras", start, 30, momentum=mom, nesterov=nes
                    )
                    assert_bitwise(result.paths[:, i, j, k, n, 0], expected)
    # momentum 0 changes the state (no buffer): a grid may cross that boundary
    plain = sweep(ROSENBROCK, "SGD", steps=30, starts=STARTS, learning_rate=1e-3, momentum=momenta)
    for k, mom in enumerate(momenta):
        expected = separate_run(ROSENBROCK, "SGD", 1e-3, "keras", STARTS[1], 30, momentum=mom)
        assert_bitwise(plain.paths[:, 1, 0, k, 0], expected)


def test_beta_grid_for_adam_and_torch_preset():
    result = sweep(
        ROSENBROCK,
        "Adam",
        steps=40,
        starts=STARTS,
        learning_rate=[1e-3, 1e-2],
        beta_1=np.array([0.5, 0.9]),
        preset="torch",
        amsgrad=True,
    )
    assert result.axes["beta_1"] == (0.5, 0.9)
    assert result.hyperparameters == {"amsgrad": True}
    for k, beta in enumerate((0.5, 0.9)):
        expected = separate_run(
            ROSENBROCK, "Adam", 1e-2, "torch", STARTS[0], 40, beta_1=beta, amsgrad=True
        )
        assert_bitwise(result.paths[:, 0, 1, k, 0], expected)


def test_scalars_that_refuse_arrays_run_one_learning_rate_at_a_time(monkeypatch):
    """A rule whose scalars need a float learning rate is run per rate, still exactly."""
    rule = optimlab.rules.sgd
    original = rule.scalars

    def float_only(t, lr, *, momentum, nesterov, dampening, lr_outside):
        return original(
            t,
            float(lr),
            momentum=momentum,
            nesterov=nesterov,
            dampening=dampening,
            lr_outside=lr_outside,
        )

    monkeypatch.setattr(rule, "scalars", float_only)
    plan = sweep_module._Plan.make("SGD", "keras", {"momentum": 0.9}, np.array(LRS))
    assert not plan.array_lr
    result = sweep(ROSENBROCK, "SGD", steps=STEPS, starts=STARTS, learning_rate=LRS, momentum=0.9)
    monkeypatch.setattr(rule, "scalars", original)
    _check_against_separate(result, ROSENBROCK, "SGD", "keras", STARTS, LRS, STEPS, momentum=0.9)


#: rules whose step state depends on the learning rate (Schedule-Free's lr_max and sum of
#: weights): a sweep runs each of their learning rates on its own (the cases above check it)
LR_STATE = {"ScheduleFreeAdamW"}


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, c in optimlab.OPTIMIZERS.items()
        if not getattr(c.rule, "TENSOR", False) and n not in LR_STATE
    ],
)
def test_every_rule_takes_an_array_learning_rate(name):
    for preset in PRESETS:
        plan = sweep_module._Plan.make(name, preset, {}, np.array(LRS))
        assert plan.array_lr, (name, preset)


@pytest.mark.parametrize(
    "name", [n for n, c in optimlab.OPTIMIZERS.items() if getattr(c.rule, "TENSOR", False)]
)
def test_tensor_rules_are_refused_rather_than_mixing_the_rows(name):
    """A sweep steps every run as one row of a shared array: a whole-parameter rule (Lamb's
    norm, Muon's matrix products) would see all the rows as one parameter."""
    from optimlab.lab.race import Runner, race

    with pytest.raises(ValueError, match=f"optimizer '{name}' cannot run in a sweep or race"):
        sweep(Bowl(a=1.0), name, steps=3, learning_rate=[0.01, 0.02])
    with pytest.raises(ValueError, match="valid: the elementwise optimizers \\(SGD"):
        race(Bowl(a=1.0), [Runner(name, learning_rate=0.01)], start=(1.0, 1.0), steps=3)


# -- divergence ---------------------------------------------------------------------------


def test_divergence_is_detected_marked_and_frozen():
    bowl = Bowl(a=1.0)  # p_k = (1 - lr)^k p_0: |p_k| = 2^k for lr = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sweep(
            bowl,
            "SGD",
            steps=30,
            starts=[[1.0, 0.0]],
            learning_rate=[0.5, 3.0],
            divergence=1000.0,
        )
    assert result.diverged.tolist() == [[[False], [True]]]
    assert result.diverged_at[0, 1, 0] == 10  # 2^10 = 1024 > 1000
    assert result.diverged_at[0, 0, 0] == -1
    frozen = result.paths[:, 0, 1, 0]
    assert_bitwise(frozen[:10, 0], (-2.0) ** np.arange(10))
    assert (frozen[10:] == [(-2.0) ** 9, 0.0]).all()
    assert (result.losses[10:, 0, 1, 0] == result.losses[9, 0, 1, 0]).all()
    assert np.isfinite(result.losses).all() and np.isfinite(result.paths).all()
    assert result.final_points[0, 1, 0].tolist() == [(-2.0) ** 9, 0.0]
    # the converging run is unaffected by its diverging neighbour
    assert_bitwise(result.paths[:, 0, 0, 0, 0], 0.5 ** np.arange(31))


def test_non_finite_points_are_caught_without_warnings():
    """With divergence=inf only overflow ends a run: no NaN or warning leaks out."""
    bowl = Bowl(a=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sweep(
            bowl,
            "Adam",
            steps=5,
            starts=[[1.0, 1.0]],
            learning_rate=1.0,
        )
        exploding = sweep(
            bowl,
            "SGD",
            steps=1100,
            starts=[[1.0, 0.0]],
            learning_rate=[3.0, 0.1],
            divergence=np.inf,
            keep_paths=False,
        )
    assert not result.diverged.any()
    assert exploding.diverged_at[0, 0, 0] == 1024  # 2^1024 overflows to inf
    assert exploding.diverged_at[0, 1, 0] == -1
    assert exploding.paths is None
    assert not np.isnan(exploding.losses).any()  # f overflows to inf near 2^1023: no NaN
    assert exploding.final_points[0, 0, 0].tolist() == [(-2.0) ** 1023, 0.0]


def test_diverged_runs_match_separate_runs_until_they_leave():
    lrs = [1e-3, 5e-3, 2e-2]
    result = sweep(ROSENBROCK, "SGD", steps=60, starts=STARTS, learning_rate=lrs, divergence=1e3)
    assert result.diverged.any() and not result.diverged.all()
    for i, start in enumerate(STARTS):
        for j, lr in enumerate(lrs):
            expected = separate_run(ROSENBROCK, "SGD", lr, "keras", start, 60)
            k = result.diverged_at[i, j, 0]
            if k < 0:
                assert_bitwise(result.paths[:, i, j, 0], expected)
                assert np.abs(expected).max() <= 1e3
            else:
                assert_bitwise(result.paths[:k, i, j, 0], expected[:k])
                assert np.abs(expected[:k]).max() <= 1e3
                # the separate run leaves the region at step k (or refuses its gradient)
                assert len(expected) == k or not np.abs(expected[k]).max() <= 1e3
                assert (result.paths[k:, i, j, 0] == expected[k - 1]).all()


def test_diverging_rows_leave_the_batch_with_their_noise_and_decay():
    """Compaction after a divergence keeps each remaining run's seed, rate and decay."""
    lrs = [1e-3, 2e-2, 4e-3]
    seeds = (5, 6)
    result = sweep(
        ROSENBROCK,
        "SGD",
        steps=40,
        starts=STARTS,
        learning_rate=lrs,
        seeds=seeds,
        gradient_noise=3.0,
        weight_decay=0.05,
        divergence=1e3,
    )
    assert result.diverged.any() and not result.diverged.all()
    for s_index, seed in enumerate(seeds):
        noise = 3.0 * np.random.default_rng(seed).standard_normal((40, 2))
        for i, start in enumerate(STARTS):
            for j, lr in enumerate(lrs):
                expected = separate_run(
                    ROSENBROCK, "SGD", lr, "keras", start, 40, noise=noise, weight_decay=0.05
                )
                k = result.diverged_at[i, j, s_index]
                k = 41 if k < 0 else k
                assert_bitwise(result.paths[:k, i, j, s_index], expected[:k])


def test_keep_paths_false_gives_the_same_losses_with_and_without_the_path_buffer(monkeypatch):
    kwargs = dict(steps=40, starts=STARTS, learning_rate=[1e-3, 2e-2], divergence=1e3)
    full = sweep(ROSENBROCK, "SGD", momentum=0.9, **kwargs)
    lean = sweep(ROSENBROCK, "SGD", momentum=0.9, keep_paths=False, **kwargs)
    monkeypatch.setattr(sweep_module, "_PATH_BUDGET", 0)  # losses computed step by step
    stepwise = sweep(ROSENBROCK, "SGD", momentum=0.9, keep_paths=False, **kwargs)
    assert full.diverged.any()
    for other in (lean, stepwise):
        assert other.paths is None
        assert_bitwise(other.losses, full.losses)
        assert_bitwise(other.final_points, full.final_points)
        assert (other.diverged_at == full.diverged_at).all()


# -- noise --------------------------------------------------------------------------------


def test_noise_is_deterministic_per_seed_and_shared_across_runs():
    kwargs = dict(steps=30, starts=STARTS, learning_rate=[1e-4, 1e-3], gradient_noise=2.0)
    a = sweep(ROSENBROCK, "Adam", seeds=(0, 1, 7), **kwargs)
    b = sweep(ROSENBROCK, "Adam", seeds=(0, 1, 7), **kwargs)
    only_7 = sweep(ROSENBROCK, "Adam", seeds=(7,), **kwargs)
    assert a.axes["seed"] == (0, 1, 7)
    assert_bitwise(a.paths, b.paths)
    assert_bitwise(a.paths[..., 2:3, :], only_7.paths)  # a seed's runs ignore other seeds
    assert (bits(a.paths[..., 0, :]) != bits(a.paths[..., 1, :])).any()
    # the documented noise: z = default_rng(seed).standard_normal((steps, 2)), g + sigma * z_t
    for s_index, seed in enumerate((0, 1, 7)):
        noise = 2.0 * np.random.default_rng(seed).standard_normal((30, 2))
        for i, start in enumerate(STARTS):
            expected = separate_run(ROSENBROCK, "Adam", 1e-3, "keras", start, 30, noise=noise)
            assert_bitwise(a.paths[:, i, 1, s_index], expected)


def test_without_noise_seeds_give_identical_runs():
    result = sweep(ROSENBROCK, "SGD", steps=20, learning_rate=1e-3, seeds=[3, 4])
    assert_bitwise(result.paths[..., 0, :], result.paths[..., 1, :])


# -- steps_to, basin, median_over, select ---------------------------------------------------


def test_steps_to_on_a_bowl():
    bowl = Bowl(a=1.0)  # lr 0.5: f - f_min = 0.5 * 0.25^k from (1, 0)
    result = sweep(bowl, "SGD", steps=20, starts=[[1.0, 0.0]], learning_rate=[0.5, 0.0])
    assert result.f_min == 1.0
    gap = 0.5 * 0.25 ** np.arange(21)
    for target in (0.5, 0.1, 1e-3, 1e-9):
        expected = int(np.flatnonzero(gap <= target)[0])
        assert result.steps_to(target)[0, :, 0].tolist() == [expected, 0 if target >= 0.5 else -1]
    assert result.steps_to(0.0).tolist() == [[[-1], [-1]]]
    assert result.steps_to(0.0).dtype == np.int64


def test_steps_to_uses_zero_without_a_global_minimum():
    class NoMinimum(Bowl):
        def __init__(self):
            super().__init__()
            self.global_minimum = None

    surface = NoMinimum()
    result = sweep(surface, "SGD", steps=5, starts=[[0.0, 0.0]], learning_rate=0.1)
    assert result.f_min == 0.0
    assert result.steps_to(1.0).tolist() == [[[0]]]  # f = 1 everywhere on the path
    assert result.steps_to(0.5).tolist() == [[[-1]]]


def test_basin_on_a_double_well():
    well = DoubleWell()
    starts = [[0.5, 0.3], [-0.4, -0.2], [2.0, 1.0], [0.0, 0.5], [0.5, 0.3]]
    result = sweep(well, "SGD", steps=300, starts=starts, learning_rate=[0.05, 1e-5])
    basins = result.basin()
    assert basins.shape == (5, 2, 1)
    # at lr 0.05: right well, left well, right well, the saddle's stable manifold x = 0
    assert basins[:, 0, 0].tolist() == [1, 0, 1, -1, 1]
    assert (basins[:, 1, 0] == -1).all()  # lr 1e-5 has not arrived
    assert result.basin(tolerance=10.0)[3, 0, 0] in (0, 1)
    # a diverged run is in no basin, even if its frozen point were close to one
    wild = sweep(well, "SGD", steps=50, starts=[[2.0, 0.0]], learning_rate=1.0, divergence=10)
    assert wild.diverged.all() and wild.basin(tolerance=1e9).tolist() == [[[-1]]]


def test_median_over_starts_and_seeds():
    result = sweep(
        ROSENBROCK,
        "SGD",
        steps=40,
        starts=STARTS,
        learning_rate=[1e-4, 1e-3, 5e-2],
        seeds=(0, 1, 2),
        gradient_noise=0.5,
        divergence=100,
    )
    spread = result.median_over()
    assert spread.over == ("start", "seed")
    assert list(spread.axes) == ["learning_rate"]
    final = np.where(result.diverged, np.inf, result.final_loss)
    flat = final.transpose(1, 0, 2).reshape(3, -1)
    assert_bitwise(spread.median, np.median(flat, axis=1))
    assert_bitwise(spread.low, flat.min(axis=1))
    assert_bitwise(spread.high, flat.max(axis=1))
    assert np.isinf(spread.median[2])  # 5e-2 diverges on Rosenbrock
    gap = result.median_over("seed", of="final_gap", diverged_as=None)
    assert gap.median.shape == (2, 3)
    steps = result.median_over("start", "seed", of=result.steps_to(1.0), spread=(0.25, 0.75))
    assert steps.of == "values" and steps.median.shape == (3,)
    log_gap = result.median_over(of="mean_log_gap")
    assert np.isfinite(log_gap.median[:2]).all() and np.isinf(log_gap.median[2])


def test_select_keeps_axes():
    result = sweep(ROSENBROCK, "SGD", steps=10, starts=STARTS, learning_rate=LRS, momentum=[0.5])
    picked = result.select(learning_rate=-1, start=1)
    assert isinstance(picked, SweepResult)
    assert picked.shape == (1, 1, 1, 1)
    assert picked.axes["learning_rate"].tolist() == [LRS[-1]]
    assert picked.axes["momentum"] == (0.5,)
    assert_bitwise(picked.paths[:, 0, 0, 0, 0], result.paths[:, 1, 2, 0, 0])


# -- tuning -------------------------------------------------------------------------------


def test_tune_learning_rate_on_a_bowl():
    bowl = Bowl(a=1.0)  # gradient descent: exact at lr 1 in one step, diverges above 2
    lrs = [0.01, 0.1, 1.0, 1.9, 4.0]
    tuned = tune_learning_rate(bowl, "SGD", learning_rates=lrs, steps=25, starts=[[1.0, 0.5]])
    assert tuned.learning_rate == 1.0 and tuned.index == 2
    assert tuned.objective == "final_loss"
    assert tuned.scores[-1] == np.inf and tuned.best_score == 1.0
    assert tuned.paths.shape == (26, 1, 1, 2)  # the tuned horizon, (steps + 1, starts, seeds)
    assert tuned.paths[1:, 0, 0].tolist() == [[0.0, 0.0]] * 25
    assert_bitwise(tuned.losses, tuned.sweep.losses[:, :, 2])


def test_tune_learning_rate_default_grid_and_mean_log_gap():
    tuned = tune_learning_rate(
        ROSENBROCK, "Adam", steps=100, starts=STARTS, seeds=(0, 1), gradient_noise=0.1
    )
    assert len(tuned.learning_rates) == 36
    assert tuned.learning_rates[0] == pytest.approx(1e-5) and tuned.learning_rates[-1] == 100
    by_area = tune_learning_rate(
        ROSENBROCK,
        "Adam",
        steps=100,
        starts=STARTS,
        seeds=(0, 1),
        gradient_noise=0.1,
        objective="mean_log_gap",
    )
    expected = np.median(by_area.sweep.mean_log_gap(), axis=(0, 2))
    assert_bitwise(by_area.scores, expected)
    assert by_area.index == int(np.argmin(expected))
    assert np.median(tuned.sweep.final_loss, axis=(0, 2))[tuned.index] == tuned.best_score
    assert tuned.paths.shape == (101, 2, 2, 2)


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"steps": 0}, ValueError, ["steps", "0", ">= 1"]),
        ({"steps": 2.5}, ValueError, ["steps", "2.5"]),
        ({"learning_rate": -0.1}, ValueError, ["learning_rate", "-0.1", ">= 0"]),
        ({"learning_rate": "fast"}, TypeError, ["learning_rate", "fast"]),
        ({"learning_rate": []}, ValueError, ["learning_rate", "non-empty"]),
        ({"learning_rate": [[0.1]]}, ValueError, ["learning_rate", "1-D"]),
        (
            {"learning_rate": optimlab.schedules.ExponentialDecay(0.1, 10, 0.5)},
            TypeError,
            ["learning_rate"],
        ),
        ({"seeds": [-1]}, ValueError, ["seeds", "-1", ">= 0"]),
        ({"seeds": []}, ValueError, ["seeds", "[]"]),
        ({"gradient_noise": -1.0}, ValueError, ["gradient_noise", "-1.0", ">= 0"]),
        ({"preset": "jax"}, ValueError, ["preset", "jax", "keras", "torch", "optax"]),
        ({"keep_paths": "yes"}, TypeError, ["keep_paths", "yes"]),
        ({"divergence": 0.0}, ValueError, ["divergence", "0.0", "> 0"]),
        ({"starts": [1.0, 2.0, 3.0]}, ValueError, ["starts", "(3,)", "(S, 2)"]),
        ({"starts": [[np.nan, 0.0]]}, ValueError, ["starts", "nan", "finite"]),
        ({"starts": [[2e6, 0.0]]}, ValueError, ["starts", "divergence"]),
        ({"betta": 0.9}, TypeError, ["betta", "momentum"]),
        ({"momentum": [0.5, 1.5]}, ValueError, ["momentum", "1.5", "[0, 1)"]),
        ({"momentum": [[0.5]]}, ValueError, ["momentum", "1-D"]),
        ({"momentum": []}, ValueError, ["momentum", "non-empty"]),
        ({"nesterov": True, "preset": "torch"}, ValueError, ["nesterov", "momentum"]),
        ({"use_ema": True}, ValueError, ["use_ema", "True", "False"]),
        ({"gradient_accumulation_steps": 2}, ValueError, ["gradient_accumulation_steps", "2"]),
        ({"engine": "fused"}, TypeError, ["engine", "fused"]),
    ],
)
def test_argument_errors_name_argument_value_and_valid_values(kwargs, error, words):
    with pytest.raises(error) as info:
        sweep(ROSENBROCK, "SGD", steps=kwargs.pop("steps", 5), **kwargs)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


def test_more_argument_errors():
    with pytest.raises(ValueError, match=r"optimizer must be one of .*'Adam'.*got 'Adamm'"):
        sweep(ROSENBROCK, "Adamm")
    with pytest.raises(TypeError, match="value.*gradient"):
        sweep(object(), "SGD")

    class Flat(Bowl):
        def gradient(self, xy):
            return np.zeros(3)

    with pytest.raises(ValueError, match="surface.gradient"):
        sweep(Flat(), "SGD", steps=3)

    class Single(Bowl):
        def gradient(self, xy):
            return np.asarray(xy, np.float32)

    with pytest.raises(TypeError, match="float64.*float32"):
        sweep(Single(), "SGD", steps=3)
    with pytest.raises(TypeError, match="learning_rate must be a float >= 0 .* got None"):
        sweep(ROSENBROCK, "SGD", preset="optax", learning_rate=None)
    result = sweep(ROSENBROCK, "SGD", steps=3)
    with pytest.raises(ValueError, match="target"):
        result.steps_to(np.nan)
    with pytest.raises(ValueError, match=r"tolerance must be a float > 0, got 0"):
        result.basin(tolerance=0)
    with pytest.raises(ValueError, match=r"axis_names .* got 'epoch'; valid: 'start'"):
        result.median_over("epoch")
    with pytest.raises(ValueError, match=r"of must be one of 'final_loss'"):
        result.median_over(of="best")
    with pytest.raises(ValueError, match=r"shape \(1, 1, 1\), got an array of shape \(2,\)"):
        result.median_over(of=np.zeros(2))
    with pytest.raises(ValueError, match=r"spread\[1\]"):
        result.median_over(spread=(0.5, 0.2))
    with pytest.raises(ValueError, match=r"select\(\) got axis 'beta'"):
        result.select(beta=0)
    with pytest.raises(ValueError, match=r"objective must be one of 'final_loss', 'mean_log_gap'"):
        tune_learning_rate(ROSENBROCK, "SGD", objective="best")
    with pytest.raises(ValueError, match=r"momentum must be a single value"):
        tune_learning_rate(ROSENBROCK, "SGD", momentum=[0.5, 0.9])
    with pytest.raises(ValueError, match=r"learning_rates must be a float >= 0, got -1"):
        tune_learning_rate(ROSENBROCK, "SGD", learning_rates=[0.1, -1])


def test_optax_preset_needs_no_default_rate_and_default_start_is_used():
    result = sweep(ROSENBROCK, "Lion", steps=10, preset="optax", learning_rate=1e-3)
    assert result.axes["start"].tolist() == [[-1.2, 1.0]]
    expected = separate_run(ROSENBROCK, "Lion", 1e-3, "optax", [-1.2, 1.0], 10)
    assert_bitwise(result.paths[:, 0, 0, 0], expected)


# -- the real surfaces, when the module exists ------------------------------------------


def test_against_the_real_rosenbrock_surface():
    surfaces = pytest.importorskip("optimlab.lab.surfaces")
    rosenbrock = surfaces.get("rosenbrock")
    starts = np.array([rosenbrock.default_start, [0.3, -0.4]], float)
    for name, hyper in (("SGD", {"momentum": 0.9}), ("Adam", {}), ("Nadam", {})):
        result = sweep(rosenbrock, name, steps=STEPS, starts=starts, learning_rate=LRS, **hyper)
        for i, start in enumerate(starts):
            for j, lr in enumerate(LRS):
                expected = separate_run(rosenbrock, name, lr, "keras", start, STEPS, **hyper)
                assert_bitwise(result.paths[:, i, j, 0], expected)
    assert sweep(rosenbrock, "SGD", steps=5).basin().shape == (1, 1, 1)
