"""The reference engine: the rule's elementwise function applied to whole NumPy arrays.

    (p', s1', s2', ...) = rule.update(p, g, s1, s2, ..., *scalars);  p[...] = p'; s1[...] = s1'

It allocates temporaries (one per arithmetic operation), which makes it slow but obviously
correct: the rule's code is the only thing it runs.
"""

from __future__ import annotations


def apply(rule, p, g, slots, scalars) -> None:
    """Run ``rule.update`` on ``p`` with gradient ``g`` and write the results back in place.

    ``slots`` is the list of state arrays in the order of ``rule.SLOTS`` (None for a slot that
    is switched off); ``scalars`` the tuple from ``rule.scalars``.
    """
    new = rule.update(p, g, *slots, *scalars)
    p[...] = new[0]
    for buffer, value in zip(slots, new[1:], strict=True):
        if buffer is not None:
            buffer[...] = value
