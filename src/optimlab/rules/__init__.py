"""The update rules: one small pure function per optimizer.

Each rule module has two functions and one table:

``SLOTS``
    the per-parameter state buffers the rule reads and writes, in order (``optional`` ones exist
    only with an option switched on, e.g. AMSGrad's running maximum).
``scalars(t, lr, **hyperparameters) -> tuple``
    the per-step numbers that do not depend on the element (bias corrections, the step size),
    computed once per step on the host with Python floats (``math``), so that they never promote
    a float32 computation to float64.
``update(p, g, *slots, *scalars) -> (p, *slots)``
    the elementwise math, written like the lecture writes it (``m = beta_1*m + (1-beta_1)*g``).
    It only uses ``+ - * /``, ``np.sqrt``, ``np.abs``, ``np.maximum``, ``np.sign``,
    comparisons, ``where`` (:mod:`optimlab.rules._scalar`: Rprop's choices between its
    cases, ``np.where`` on arrays, a vector select in the compiled kernels, ``torch.where``
    and ``jax.numpy.where`` in those engines) and, in Ftrl only, ``**`` (on the reference
    engine: see :mod:`optimlab.rules.ftrl`), so the same function runs on whole NumPy arrays
    (the reference engine), on single numbers (compiled by numba) and on torch tensors.
    It has no float literals: ``1 - beta`` and the like come precomputed in the scalars, so that
    a compiled kernel given float32 scalars computes in float32 throughout, exactly as NumPy does
    with float32 arrays (a literal ``1.0`` would promote it to float64).

A tensor-level rule (Muon's Newton-Schulz, Adafactor's factored moments) sets ``TENSOR = True``:
its ``update`` takes whole arrays and may use any NumPy function; it runs on the reference
engine only. It may define ``slot_shape(name, shape, **hyperparameters)``, the shape of a slot
of a parameter of ``shape`` (None where the parameter has no such slot), and ``DECAY = True``
when it applies decoupled weight decay itself: the runtime then passes the decay (or None)
after the scalars instead of decaying the parameter first (an optimizer whose
hyperparameters decide where its decay goes, as Lamb's, says so in ``_rule_takes_decay``).

An elementwise rule may set ``DECAY = True`` too (Schedule-Free AdamW, whose decay at y
joins its z step): then its ``update`` takes the decay as its last argument on both engines.
``PARAMETER_SLOTS`` names the slots that start as a copy of the parameter instead of 0
(Schedule-Free's z).

Notation in the docstrings: p parameter, g gradient, lr learning rate, t the 1-based number of
the update being made, bc1 = 1 - beta_1^t, bc2 = 1 - beta_2^t.
"""

from . import (
    adadelta,
    adafactor,
    adagrad,
    adam,
    adamax,
    asgd,
    ftrl,
    lamb,
    lbfgs,
    lion,
    muon,
    nadam,
    newton_schulz,
    radam,
    rmsprop,
    rprop,
    schedule_free_adamw,
    sgd,
)

RULES = {
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "nadam": nadam,
    "adamax": adamax,
    "adadelta": adadelta,
    "lion": lion,
    "muon": muon,
    "radam": radam,
    "rprop": rprop,
    "lamb": lamb,
    "adafactor": adafactor,
    "ftrl": ftrl,
    "schedule_free_adamw": schedule_free_adamw,
    "asgd": asgd,
}

__all__ = [
    "RULES",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "asgd",
    "ftrl",
    "lamb",
    "lbfgs",
    "lion",
    "muon",
    "nadam",
    "newton_schulz",
    "radam",
    "rmsprop",
    "rprop",
    "schedule_free_adamw",
    "sgd",
]
