"""lab.race: several optimizers side by side, each run bit for bit its sweep alone."""

from __future__ import annotations

import pytest

from optimlab import schedules
from optimlab.lab import surfaces
from optimlab.lab.race import Runner, race
from optimlab.lab.sweep import sweep

RUNNERS = [
    Runner("SGD", learning_rate=1e-3),
    Runner("SGD", learning_rate=1e-3, hyperparameters={"momentum": 0.9}),
    Runner("SGD", "torch", 1e-3, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    Runner("Adagrad", learning_rate=0.5),
    Runner("RMSprop", learning_rate=0.01, hyperparameters={"centered": True, "momentum": 0.5}),
    Runner("Adam", learning_rate=0.05, hyperparameters={"amsgrad": True}),
    Runner("Adam", "optax", 0.05, {"clipnorm": 1.0}),
    Runner("AdamW", "torch", 0.02),
    Runner("Nadam", learning_rate=0.02),
    Runner("Adamax", learning_rate=0.02),
    Runner("Adadelta", "torch", 1.0),
    Runner("Lion", learning_rate=1e-3),
    Runner("RAdam", "optax", 1e-3, {"nesterov": True}),
    Runner("Rprop", learning_rate=0.01),
    Runner("Rprop", "optax", 0.05, {"max_step_size": 0.02}),
    Runner("Ftrl", learning_rate=0.1, hyperparameters={"l1_regularization_strength": 0.01}),
    Runner("ASGD", "torch", 1e-3, {"t0": 10.0, "weight_decay": 0.01}),
    Runner("SGD", schedule=schedules.ExponentialDecay(0.01, 50, 0.5)),
    Runner("Adam", "torch", 0.05, {"weight_decay": 0.1}, schedules.CosineDecay(0.05, 200)),
    Runner("SGD", learning_rate=5.0),  # diverges on most surfaces
]  # fmt: skip


def _alone(surface, r: Runner, start, steps, seed, noise):
    result = sweep(
        surface,
        r.optimizer,
        steps=steps,
        starts=[start],
        learning_rate=r.learning_rate,
        seeds=(seed,),
        gradient_noise=noise,
        preset=r.preset,
        schedule=r.schedule,
        **r.hyperparameters,
    )
    return result.paths[:, 0, 0, 0], result.losses[:, 0, 0, 0], int(result.diverged_at[0, 0, 0])


@pytest.mark.parametrize("name", ["rosenbrock", "ackley", "rastrigin", "saddle", "two_well"])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_each_run_is_its_sweep_alone_to_the_last_bit(name, noise):
    surface = surfaces.get(name)
    start = surface.default_start
    result = race(surface, RUNNERS, start=start, steps=300, seed=3, gradient_noise=noise)
    assert result.paths.shape == (301, len(RUNNERS), 2)
    diverged = 0
    for i, r in enumerate(RUNNERS):
        path, loss, at = _alone(surface, r, start, 300, 3, noise)
        assert result.paths[:, i].tobytes() == path.tobytes(), (i, r)
        assert result.losses[:, i].tobytes() == loss.tobytes(), (i, r)
        assert int(result.diverged_at[i]) == at
        diverged += at >= 0
    if name == "saddle":
        assert diverged  # the freezing of a diverged run is compared too


def test_bad_runners_are_refused():
    surface = surfaces.get("bowl")
    with pytest.raises(TypeError, match="runners"):
        race(surface, [], start=(1.0, 1.0))
    with pytest.raises(ValueError, match="beta_1"):
        race(surface, [Runner("Adam", hyperparameters={"beta_1": 2.0})], start=(1.0, 1.0))
    with pytest.raises(ValueError, match="preset"):
        race(surface, [Runner("Adam", preset="jax")], start=(1.0, 1.0))
    with pytest.raises(ValueError, match="steps"):
        race(surface, [Runner("Adam")], start=(1.0, 1.0), steps=0)
