"""optimlab.keras refuses nonsense with the dialect's messages (the argument, its value, the
valid range), and a refused call changes nothing: no Keras variable, no automatic name, no
changed hyperparameter."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import optimlab as ol
import optimlab.keras as olk
from optimlab import naming


def _auto_name():
    return olk.Adam().name  # Keras's automatic name: adam, adam_1, ... (one per call)


def _number(name):
    return int(name.rsplit("_", 1)[1]) if "_" in name else 0


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"preset": "pytorch"}, ValueError, ["preset", "'pytorch'", "keras"]),
        ({"beta_1": 1.5}, ValueError, ["beta_1", "1.5"]),
        ({"epsilon": -1e-8}, ValueError, ["epsilon", "-1e-08"]),
        ({"learning_rate": -0.1}, ValueError, ["learning_rate", "-0.1"]),
        ({"learning_rate": "fast"}, TypeError, ["learning_rate", "fast"]),
        ({"preset": "optax"}, TypeError, ["learning_rate is required", "optax"]),
        ({"betas": (0.9, 0.99)}, TypeError, ["betas", "valid ones"]),
        ({"clipnorm": 1.0, "clipvalue": 1.0}, ValueError, ["clipnorm", "clipvalue"]),
        ({"nan_policy": "raise"}, ValueError, ["nan_policy", "'raise'", "propagate"]),
        ({"nan_policy": "ignore"}, ValueError, ["nan_policy", "'ignore'"]),
        ({"learning_rate": ol.schedules.CosineDecay(0.1, 10)}, TypeError, ["optimlab schedule"]),
    ],
)
def test_bad_arguments_are_refused_and_take_no_name(arguments, error, words):
    before = _number(_auto_name())
    counts = dict(naming._COUNTS)
    with pytest.raises(error) as caught:
        olk.Adam(**arguments)
    for word in words:
        assert word in str(caught.value)
    assert _number(_auto_name()) == before + 1  # the refused call took no Keras name
    assert dict(naming._COUNTS) == counts  # nor one of optimlab's


def test_too_many_positional_arguments():
    with pytest.raises(TypeError, match="at most"):
        olk.Lion(*range(20))
    with pytest.raises(TypeError, match="multiple values for argument 'learning_rate'"):
        olk.Lion(0.1, learning_rate=0.2)


def test_assignments_are_checked_and_a_refused_one_changes_nothing():
    optimizer = olk.Adam(learning_rate=0.01)
    with pytest.raises(ValueError, match=r"beta_1.*1\.5"):
        optimizer.beta_1 = 1.5
    assert optimizer.beta_1 == 0.9
    optimizer.beta_1 = 0.8
    assert optimizer.beta_1 == 0.8 and optimizer.get_config()["beta_1"] == 0.8
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = -1.0
    assert float(optimizer.learning_rate) == 0.01
    optimizer.learning_rate = 0.5
    assert float(optimizer.learning_rate) == 0.5
    with pytest.raises(ValueError, match="clipnorm"):
        optimizer.clipnorm = -2.0
    assert optimizer.clipnorm is None


def test_what_decides_the_variables_is_fixed_after_the_build():
    optimizer = olk.SGD(learning_rate=0.1)
    optimizer.build([keras.Variable(np.zeros(3))])
    count = len(optimizer.variables)
    with pytest.raises(ValueError, match="momentum cannot change from 0.0 to 0.9"):
        optimizer.momentum = 0.9
    with pytest.raises(ValueError, match="use_ema cannot change"):
        optimizer.use_ema = True
    assert optimizer.momentum == 0.0 and not optimizer.use_ema
    assert len(optimizer.variables) == count
    optimizer.nesterov = True  # changes no variable: allowed


def test_build_checks_the_variables():
    optimizer = olk.Adam()
    with pytest.raises(TypeError, match="variable 0 .* has dtype int32; optimlab updates float"):
        optimizer.build([keras.Variable(np.zeros(3, np.int32), dtype="int32")])
    assert not optimizer.built
    huge = olk.Adam(epsilon=1e300)  # beyond float32: refused against the variables' dtype
    with pytest.raises(ValueError, match="epsilon"):
        huge.build([keras.Variable(np.zeros(3, np.float32), dtype="float32")])
    assert not huge.built and not huge.variables[2:]


def test_update_step_needs_apply():
    optimizer = olk.Adam()
    variable = keras.Variable(np.zeros(3))
    optimizer.build([variable])
    with pytest.raises(RuntimeError, match="inside apply"):
        optimizer.update_step(np.ones(3), variable, 0.1)


def test_not_yet():
    assert set(olk.NOT_YET) <= set(ol.OPTIMIZERS) and not set(olk.NOT_YET) & set(olk.CLASSES)
    with pytest.raises(AttributeError, match="has no attribute 'Muonn'"):
        olk.Muonn  # noqa: B018
    # every optimizer of OPTIMIZERS, as optimlab.optax has a factory for each (the same rules)
    assert set(olk.CLASSES) == {
        "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Adamax", "Adadelta", "Lion",
        "Muon", "RAdam", "Rprop", "ASGD", "Lamb", "Adafactor", "Ftrl", "ScheduleFreeAdamW",
    }  # fmt: skip
    assert set(olk.CLASSES) == set(ol.OPTIMIZERS)


def test_optimlab_does_not_import_keras_and_a_missing_keras_says_what_to_install():
    code = (
        "import sys, optimlab\n"
        "print('keras' in sys.modules, 'jax' in sys.modules)\n"
        "sys.modules['keras'] = None\n"
        "try:\n"
        "    import optimlab.keras\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "False False"
    assert "pip install 'optimlab[keras]'" in out[1]


def test_the_base_class_is_not_an_optimizer():
    with pytest.raises(TypeError, match="base class"):
        olk.Optimizer()


def test_torchs_muon_refuses_a_non_matrix_and_builds_nothing():
    """Muon with the torch preset takes matrices only (torch.optim.Muon's refusal): the build
    names the variable's shape and creates no variable; the optimizer then builds on
    matrices."""
    optimizer = olk.Muon(preset="torch")
    before = list(optimizer.variables)  # (Keras's iterations and learning rate)
    with pytest.raises(ValueError, match=r"parameter 1 has shape \(3,\)"):
        optimizer.build([keras.Variable(np.ones((2, 2))), keras.Variable(np.ones(3))])
    assert not optimizer.built and optimizer.variables == before
    optimizer.build([keras.Variable(np.ones((2, 2)))])
    assert [tuple(v.shape) for v in optimizer.variables] == [(), (), (2, 2)]


@pytest.mark.parametrize(
    ("name", "arguments", "words"),
    [
        ("Adafactor", {"beta_2_decay": 0.5}, ["beta_2_decay", "0.5"]),
        ("Adafactor", {"factored_dims": "all"}, ["factored_dims", "'all'"]),
        ("Muon", {"ns_steps": 100}, ["ns_steps", "100"]),
        ("Muon", {"non_matrix": "sgd"}, ["non_matrix", "'sgd'"]),
    ],
)
def test_tensor_rules_refuse_as_the_dialect(name, arguments, words):
    with pytest.raises(ValueError) as caught:
        olk.CLASSES[name](**arguments)
    with pytest.raises(ValueError) as dialect:
        getattr(ol, name)(**arguments)
    assert str(caught.value) == str(dialect.value)
    for word in words:
        assert word in str(caught.value)
