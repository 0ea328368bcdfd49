"""Default optimizer names, as Keras 3 gives them: the class name in snake case, made unique in
the process by a counter per name::

    Adam().name     # 'adam'        then 'adam_1', 'adam_2', ...
    AdamW().name    # 'adam_w'
    RMSprop().name  # 'rm_sprop'

Keras keeps the counters in its global state and resets them in ``keras.backend.
clear_session()``; :func:`reset_names` is that reset here. An explicit ``name=`` (or a name from
``get_config``) uses no counter.
"""

from __future__ import annotations

import re
from collections import defaultdict

__all__ = ["snake_case", "auto_name", "reset_names"]

_COUNTS: defaultdict[str, int] = defaultdict(int)


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``"AdamW"`` -> ``"adam_w"``, ``"SGD"`` -> ``"sgd"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def auto_name(class_name: str) -> str:
    """The next default name for an instance of ``class_name``: ``snake`` for the first,
    ``snake_1``, ``snake_2``, ... after (Keras's ``auto_name``)."""
    base = snake_case(class_name)
    count = _COUNTS[base]
    _COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Start every default name again from its first form (``adam``), as Keras's
    ``keras.backend.clear_session()`` does."""
    _COUNTS.clear()
