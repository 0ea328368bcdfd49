"""The reference engine: the rule's elementwise function applied to whole NumPy arrays.

    (p', s1', s2', ...) = rule.update(p, g, s1, s2, ..., *scalars);  p[...] = p'; s1[...] = s1'

It allocates temporaries (one per arithmetic operation), which makes it slow but obviously
correct: the rule's code is the only thing it runs.

A slot held narrow (``state_dtype="int8"``, ``"int4"`` or ``"bfloat16"``:
:mod:`optimlab.quantization`)
is dequantized to float32 first, the rule runs on those float32 moments, and the new moments
are requantized after the parameter has moved.
"""

from __future__ import annotations

from ..quantization.state import is_narrow


def apply(rule, p, g, slots, scalars) -> None:
    """Run ``rule.update`` on ``p`` with gradient ``g`` and write the results back in place.

    ``slots`` is the list of state arrays in the order of ``rule.SLOTS`` (None for a slot that
    is switched off); ``scalars`` the tuple from ``rule.scalars``.
    """
    narrow = [is_narrow(s) for s in slots]
    values = [s.dequantize() if n else s for s, n in zip(slots, narrow, strict=True)]
    new = rule.update(p, g, *values, *scalars)
    p[...] = new[0]
    for buffer, value, n in zip(slots, new[1:], narrow, strict=True):
        if n:
            buffer.assign(value)
        elif buffer is not None:
            buffer[...] = value
