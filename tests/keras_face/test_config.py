"""optimlab.keras's configuration and state round trips: get_config/from_config (preset
included), Keras's serialize/deserialize by the registered name, and model.save/load_model
with the optimizer's variables."""

import json

import keras
import numpy as np
import pytest

import optimlab.keras as olk

PRESETS = ("keras", "torch", "optax")


@pytest.mark.parametrize("name", list(olk.CLASSES))
def test_get_config_round_trip(name):
    for preset in PRESETS:
        optimizer = olk.CLASSES[name](learning_rate=0.02, preset=preset, clipvalue=0.5)
        config = optimizer.get_config()
        assert config["preset"] == preset and config["clipvalue"] == 0.5
        json.dumps(config)  # plain JSON
        again = olk.CLASSES[name].from_config(config)
        assert type(again) is type(optimizer)
        assert again.get_config() == config


def test_config_keeps_what_the_preset_resolved():
    """A hyperparameter the preset decides is in the config as resolved, and wins over the
    preset of the rebuilt optimizer as an explicit argument."""
    optimizer = olk.Adam(preset="torch")
    config = optimizer.get_config()
    assert (config["epsilon"], config["epsilon_style"], config["weight_decay_mode"]) == (
        1e-8,
        "paper",
        "l2",
    )
    assert olk.Adam.from_config(config).beta_2 == 0.999


def test_serialize_by_registered_name_with_a_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)
    optimizer = olk.RAdam(learning_rate=schedule, preset="optax", nesterov=True)
    serialized = keras.optimizers.serialize(optimizer)
    assert serialized["registered_name"] == "optimlab>RAdam"
    again = keras.optimizers.deserialize(json.loads(json.dumps(serialized)))
    assert type(again) is olk.RAdam and again.nesterov and again.preset == "optax"
    assert isinstance(again._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert again.get_config() == optimizer.get_config()


def _model(optimizer):
    model = keras.Sequential([keras.Input((3,), dtype="float64"), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_model_save_and_load_keep_the_optimizer_state(tmp_path):
    """Nadam (a slot per variable and the momentum product, a step state) under the torch
    preset: the loaded model continues exactly as the saved one."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model = _model(olk.Nadam(learning_rate=0.05, preset="torch", weight_decay=0.01))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    optimizer = loaded.optimizer
    assert type(optimizer) is olk.Nadam and optimizer.preset == "torch"
    assert optimizer.get_config() == model.optimizer.get_config()
    saved = [np.asarray(v) for v in model.optimizer.variables]
    assert len(saved) == 2 + 2 * 2 + 1  # iterations, learning rate, m and v per variable, mu
    assert int(saved[0]) == 2 and saved[-1] != 1.0  # the momentum product moved
    for a, b in zip(saved, optimizer.variables, strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("name", "preset"), [("Muon", "keras"), ("Adafactor", "optax")])
def test_model_save_and_load_keep_a_tensor_rules_state(tmp_path, name, preset):
    """Slots shaped unlike their variable (Adafactor's factored row and column of the kernel
    with min_dim_size_to_factor=2, Muon's second moment of the bias only) are saved and
    loaded, and the loaded model continues exactly as the saved one."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    options = {"min_dim_size_to_factor": 2} if name == "Adafactor" else {}
    model = _model(olk.CLASSES[name](learning_rate=0.05, preset=preset, **options))
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    shapes = [tuple(v.shape) for v in model.optimizer.variables]
    # iterations, learning rate; Muon: m, (v) per variable; Adafactor (optax's factoring:
    # the rows of its second largest axis, 1, and the columns of its largest, 0): the row
    # and the column of the (3, 2) kernel, v of the (2,) bias
    assert shapes[2:] == ([(3, 2), (2,), (2,)] if name == "Muon" else [(2,), (3,), (2,)])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is olk.CLASSES[name] and loaded.optimizer.preset == preset
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
