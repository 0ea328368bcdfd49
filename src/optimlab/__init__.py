"""optimlab: the optimizers of deep learning, exact and fast; a library and a lab.

import numpy as np, optimlab as ol
opt = ol.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)   # the lecture's Keras code
opt.apply_gradients(zip(grads, params))                          # NumPy arrays, in place
"""

from . import checkpoint, naming, presets, rules, schedules
from .checkpoint import CheckpointError
from .ewma import EWMA, ewma
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .optimizers import (
    ASGD,
    OPTIMIZERS,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lamb,
    Lion,
    Muon,
    Nadam,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
    get,
)
from .params import Params
from .wrappers import LossScaleOptimizer, MultiOptimizer, OptimizerMap

__version__ = "0.1.0"

__all__ = [
    "ASGD",
    "CheckpointError",
    "EWMA",
    "OPTIMIZERS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "LBFGS",
    "Lamb",
    "Lion",
    "LossScaleOptimizer",
    "MultiOptimizer",
    "Muon",
    "Nadam",
    "Optimizer",
    "OptimizerMap",
    "Params",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ScheduleFreeAdamW",
    "ewma",
    "checkpoint",
    "get",
    "naming",
    "presets",
    "rules",
    "schedules",
]
