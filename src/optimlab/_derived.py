"""Tables derived from the optimizer registry (:data:`optimlab.optimizers.OPTIMIZERS`) that
stay in step with it: the lab's contenders, the figures' colours, the page's sliders.

A :class:`DerivedTable` is a read-only mapping whose entries a function computes from the
registry when the table is read (again whenever the registry has changed since), so an
optimizer added to ``OPTIMIZERS`` (by its one registry line, or in-process by a test's
``monkeypatch.setitem``) appears in every table at once, and leaves them when it is removed:
no table is frozen at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any


class DerivedTable(Mapping):
    """``build() -> dict``, re-run whenever ``key()`` (a cheap fingerprint of everything the
    table derives from: the registry's names and classes, the hand-written entries) changes;
    without ``key``, on every read. Read-only: the tables are changed through what they derive
    from."""

    def __init__(
        self, build: Callable[[], dict], key: Callable[[], Hashable] | None = None
    ) -> None:
        self._build = build
        self._key = key
        self._cache: tuple[Hashable, dict] | None = None
        self.__doc__ = build.__doc__

    def _table(self) -> dict:
        if self._key is None:
            return self._build()
        key = self._key()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._build())
        return self._cache[1]

    def __getitem__(self, key: Any) -> Any:
        return self._table()[key]

    def __iter__(self) -> Iterator:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __contains__(self, key: object) -> bool:
        return key in self._table()

    def __repr__(self) -> str:
        return repr(self._table())

    def copy(self) -> dict:
        """The table as it is now, as a plain dict."""
        return dict(self._table())
