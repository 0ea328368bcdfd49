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

Narrow state (``state_dtype="int8"``, ``"int4"`` or ``"bfloat16"``,
:mod:`optimlab.quantization.state`):
``QUANTIZED_SLOTS`` maps the slots that may be stored narrow to the code their values need,
``"signed"`` or ``"unsigned"`` (>= 0); the other slots stay float32. A rule that declares none
may say why in ``FLOAT32_STATE`` (the refusal's message), and one whose hyperparameters decide
may define ``narrow_state_refusal(**hyperparameters)``: the reason, or None where narrow state
is fine (RMSprop's centered form).

An elementwise rule may set ``DECAY = True`` too (Schedule-Free AdamW, whose decay at y
joins its z step): then its ``update`` takes the decay as its last argument on both engines.
``PARAMETER_SLOTS`` names the slots that start as a copy of the parameter instead of 0
(Schedule-Free's z).

Notation in the docstrings: p parameter, g gradient, lr learning rate, t the 1-based number of
the update being made, bc1 = 1 - beta_1^t, bc2 = 1 - beta_2^t.
"""

import importlib
import pkgutil


def _is_rule(module) -> bool:
    """A rule module: its ``SLOTS`` table and its ``scalars`` and ``update`` functions (the
    helpers, Muon's Newton-Schulz iteration and the L-BFGS recursion, have no ``SLOTS``)."""
    return all(hasattr(module, name) for name in ("SLOTS", "scalars", "update"))


def discover() -> dict:
    """``{module name: module}`` of every public module of this package, in alphabetical
    order, each imported (so that ``optimlab.rules.adam`` is an attribute of the package and
    ``from optimlab.rules import adam`` works). A new rule is a new module here, nothing else."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


#: every public module of the package: the rules and their helpers
MODULES = discover()
#: rule name (its module's name) -> rule module: the modules of :data:`MODULES` that are rules
RULES = {name: module for name, module in MODULES.items() if _is_rule(module)}

__all__ = ["MODULES", "RULES", "discover", *MODULES]
