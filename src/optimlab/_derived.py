"""Tables derived from the optimizer registry (:data:`optimlab.optimizers.OPTIMIZERS`) that
stay in step with it: the lab's contenders, the figures' colours, the page's sliders.

A :class:`DerivedTable` is a read-only mapping whose entries a function computes from the
registry each time the table is read, so an optimizer added to ``OPTIMIZERS`` (by its one
registry line, or in-process by a test's ``monkeypatch.setitem``) appears in every table at
once, and leaves them when it is removed: no table is frozen at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class DerivedTable(Mapping):
    """``build() -> dict``, re-run on every read (the tables are a few dozen entries: a
    read costs microseconds). Read-only: the tables are changed through what they derive
    from (the registry and the hand-written entries next to them)."""

    def __init__(self, build: Callable[[], dict], doc: str = "") -> None:
        self._build = build
        self.__doc__ = doc or build.__doc__

    def __getitem__(self, key: Any) -> Any:
        return self._build()[key]

    def __iter__(self) -> Iterator:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __contains__(self, key: object) -> bool:
        return key in self._build()

    def __repr__(self) -> str:
        return repr(self._build())

    def copy(self) -> dict:
        """The table as it is now, as a plain dict."""
        return dict(self._build())
