"""Who runs a rule. Engines know nothing of a particular optimizer: they receive a rule module
(``optimlab.rules``), the parameter, its gradient, its state buffers and the per-step scalars.

``reference``: NumPy on whole arrays, any float dtype. The ground truth every fast path is
compared with.
"""

from . import reference

ENGINES = {"reference": reference}

__all__ = ["ENGINES", "reference"]
