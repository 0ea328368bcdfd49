"""Who runs a rule. Engines know nothing of a particular optimizer: they receive a rule module
(``optimlab.rules``), the parameter, its gradient, its state buffers and the per-step scalars.

``reference``: NumPy on whole arrays, any float dtype. The ground truth every fast path is
compared with.
``fused``: numba, one compiled in-place pass per parameter (float32/float64 C-contiguous arrays).
``engine="auto"`` (the optimizers' default) takes ``fused`` where it can run, ``reference``
elsewhere.
"""

from . import fused, reference

ENGINES = {"reference": reference, "fused": fused}
ENGINE_CHOICES = ("auto", *ENGINES)

__all__ = ["ENGINES", "ENGINE_CHOICES", "fused", "reference"]
