"""optimlab: the optimizers of deep learning, exact and fast; a library and a lab.

import numpy as np, optimlab as ol
opt = ol.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)   # the lecture's Keras code
opt.apply_gradients(zip(grads, params))                          # NumPy arrays, in place
"""

from . import checkpoint, naming, optimizers, presets, rules, schedules
from .checkpoint import CheckpointError
from .ewma import EWMA, ewma
from .lbfgs import LBFGS
from .optimizer import Optimizer

# every optimizer of the registry (optimizers.OPTIMIZERS) by its class name, with OPTIMIZERS,
# get, serialize and deserialize: optimizers.__all__ lists them, so a new optimizer needs no
# line here
from .optimizers import *  # noqa: F403
from .params import Params
from .wrappers import LossScaleOptimizer, MultiOptimizer, OptimizerMap

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "EWMA",
    "LBFGS",
    "LossScaleOptimizer",
    "MultiOptimizer",
    "Optimizer",
    "OptimizerMap",
    "Params",
    "ewma",
    "checkpoint",
    "naming",
    "presets",
    "rules",
    "schedules",
]
__all__ += optimizers.__all__
