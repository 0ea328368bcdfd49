"""Learning-rate schedules as pure functions of the update count.

A schedule is called with ``step``, the number of optimizer updates already applied (0 for the
first update), and returns the learning rate of the next update as a Python ``float``::

    sched = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    sched(0)     # 0.1, the learning rate of the first update
    sched(1000)  # 0.096

Everything is computed in float64 (Python floats), with integer arithmetic wherever a peer
floors or ceils a ratio of step counts, so that step counts far beyond float32's 2**24 stay exact.

Two families, with the peers' class and argument names:

* Keras 3 (``keras.optimizers.schedules``): :class:`ExponentialDecay`,
  :class:`PiecewiseConstantDecay`, :class:`PolynomialDecay`, :class:`InverseTimeDecay`,
  :class:`CosineDecay`, :class:`CosineDecayRestarts`. ``sched(step)`` equals the Keras object
  called with the same ``step``.
* PyTorch (``torch.optim.lr_scheduler``) as closed forms that take the base learning rate
  explicitly: :class:`StepLR`, :class:`MultiStepLR`, :class:`ExponentialLR`, :class:`LinearLR`,
  :class:`CosineAnnealingLR`, :class:`OneCycleLR`, :class:`CyclicLR` and the stateful
  :class:`ReduceLROnPlateau`. ``sched(k)`` equals the optimizer's ``param_groups[0]["lr"]``
  after ``k`` calls of ``scheduler.step()`` (torch updates most of these recursively, by
  multiplying the previous learning rate, so the two agree up to rounding: about ``k`` ulps).

Plus :class:`Constant` and the generic :class:`LinearWarmup` wrapper.

Conventions shared by every class:

* every constructor argument is validated up front (errors name the argument, its value and
  the valid range; integers are accepted where floats are meant);
* ``get_config()`` returns the constructor keyword arguments (JSON-serializable) and
  ``from_config(config)`` rebuilds; :func:`serialize` / :func:`deserialize` add the class name;
* ``state_dict()`` / ``load_state_dict()`` carry the counters of stateful schedules
  (:class:`ReduceLROnPlateau`); stateless schedules return ``{}``;
* ``repr`` shows the configuration, ``==`` compares class, configuration and state;
* the six Keras classes take Keras's ``name=`` (default: Keras's own, e.g.
  ``"ExponentialDecay"``, ``"PiecewiseConstant"``, ``"SGDRDecay"``), kept in ``get_config``
  and shown by ``repr`` when it is not the default; it does not change any value.

A plain callable learning rate is either ``step -> float`` (optimlab, optax) or a function of
no argument (Keras calls ``lr()``): :func:`as_step_function` tells them apart by signature.

Keras 3 computes these schedules in float32 in its default configuration (its JAX, PyTorch and
NumPy backends without JAX's 64-bit mode); optimlab computes them in float64 under every preset.
``optimlab differences`` measures what that changes ("Keras's schedules in float32").
"""

from __future__ import annotations

from .base import Constant, LearningRateSchedule
from .keras import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
)
from .pytorch import (
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
)
from .serialization import deserialize, serialize
from .wrappers import LinearWarmup, ZeroArgumentLearningRate, as_step_function

__all__ = [
    "LearningRateSchedule",
    "Constant",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "LinearLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "CyclicLR",
    "ReduceLROnPlateau",
    "LinearWarmup",
    "serialize",
    "deserialize",
    "as_step_function",
    "ZeroArgumentLearningRate",
]
