"""The AlgoPerf-style verdict's pieces: performance profiles, the quasi-random budget, the
declared search spaces and the time to a target."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from optimlab.lab.contenders import CONTENDERS
from optimlab.lab.experiments import benchmark as B

times = arrays(
    float,
    st.tuples(st.integers(1, 6), st.integers(1, 5)),
    elements=st.one_of(st.floats(1.0, 1e4), st.just(np.inf)),
)
TAUS = np.logspace(0, np.log10(B.TAU_MAX), 9)


@settings(max_examples=60, deadline=None)
@given(times)
def test_profiles_are_fractions_that_rise_with_tau_and_count_the_fastest_at_one(t):
    rho = B.profiles(t, TAUS)
    assert rho.shape == (t.shape[1], TAUS.size)
    assert np.all((rho >= 0) & (rho <= 1)) and np.all(np.diff(rho, axis=1) >= 0)
    solved = np.isfinite(t).any(axis=1)
    fastest = (t == t.min(axis=1, keepdims=True)) & np.isfinite(t)
    np.testing.assert_allclose(rho[:, 0], fastest.mean(axis=0))  # tau = 1: the winners
    assert np.all(rho[:, -1] <= np.isfinite(t).mean(axis=0))  # never above what it solves
    # a workload nobody solves counts for nobody; one that is solved counts for its winners
    assert np.isclose(rho[:, 0].sum() * t.shape[0], fastest[solved].sum())


def test_profiles_of_a_known_table():
    t = np.array([[10.0, 20.0, np.inf], [30.0, 15.0, 60.0]])
    rho = B.profiles(t, np.array([1.0, 2.0, 4.0]))
    np.testing.assert_array_equal(rho, [[0.5, 1.0, 1.0], [0.5, 1.0, 1.0], [0.0, 0.0, 0.5]])


def test_profiles_are_unchanged_by_a_common_time_unit():
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 100, (5, 4))
    np.testing.assert_array_equal(B.profiles(t, TAUS), B.profiles(t * 0.001, TAUS))


def test_the_budget_is_the_same_quasi_random_points_for_every_optimizer():
    u = B.trial_points(B.TRIALS)
    assert u.shape == (B.TRIALS,) and np.all((u >= 0) & (u < 1))
    assert np.all(np.diff(u) > 0)
    np.testing.assert_array_equal(u, B.trial_points(B.TRIALS))
    # a Sobol set of 8 points has one point in each eighth of [0, 1)
    assert sorted(np.floor(u * 8).astype(int)) == list(range(8))


@pytest.mark.parametrize("label", list(CONTENDERS))
def test_every_contender_has_a_declared_positive_range(label):
    low, high = B.search_space(label)
    assert 0 < low < high


def test_time_to_target_is_the_first_evaluation_after_which_the_loss_stays_below():
    workload = B.Workload("noisy_quadratic", 2, 32, 4, 0.5)
    problem = workload.build()
    run = B.train(workload, problem, "SGD", {}, 0.1, 0)
    k = int(np.flatnonzero(run.updates == run.steps_to_target)[0])
    assert np.all(run.losses[k:] <= 0.5) and run.losses[k - 1] > 0.5
    assert run.seconds_to_target == run.seconds[k]
    never = B.train(B.Workload("noisy_quadratic", 1, 32, 4, 1e-12), problem, "SGD", {}, 0.1, 0)
    assert never.steps_to_target == np.inf and never.seconds_to_target == np.inf
