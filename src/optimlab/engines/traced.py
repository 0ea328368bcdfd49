"""Which optimizers the traced faces run: :mod:`optimlab.optax` and :mod:`optimlab.keras`
(on Keras's JAX backend through :mod:`optimlab.engines.jax_engine`, on its torch backend
with the step numbers on the host) take the same rules, so they have the same list.

A rule runs traced when its ``scalars`` take a traced step count and learning rate (a
``where`` for a choice the step decides, ``rules._scalar.divide``, ``number`` and ``rounded_to``
for IEEE divisions and narrower dtypes) and its ``update`` is elementwise, or is one of
:data:`TENSOR_OPTIMIZERS` (whose ``update`` casts each step number to the parameter's dtype
itself, ``np.asarray(x, p.dtype)``, and whose NumPy-specific helpers have a JAX form in
:mod:`optimlab.engines.jax_tensor`). This module imports neither jax nor keras.
"""

from __future__ import annotations

from ..optimizers import OPTIMIZERS

#: the tensor-level optimizers whose rule runs traced (Lamb: its norms and trust ratio;
#: Muon: Newton-Schulz, :mod:`optimlab.engines.jax_tensor`; Adafactor: its factored means)
TENSOR_OPTIMIZERS = ("Lamb", "Muon", "Adafactor")
#: optimizers the faces do not have yet, and why (a name not in OPTIMIZERS is ignored)
NOT_YET: dict = {}


def traced_optimizers() -> dict:
    """``{name: dialect class}`` of the optimizers of OPTIMIZERS the faces run, in its order:
    every elementwise one and those of TENSOR_OPTIMIZERS, but NOT_YET."""
    return {
        name: cls
        for name, cls in OPTIMIZERS.items()
        if name not in NOT_YET
        and (not getattr(cls.rule, "TENSOR", False) or name in TENSOR_OPTIMIZERS)
    }


__all__ = ["NOT_YET", "TENSOR_OPTIMIZERS", "traced_optimizers"]
