"""A one-slot mailbox: the newest frame replaces an unprocessed one (latest frame wins)."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; ``put`` overwrites (counting the dropped one), ``take`` waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        """Store ``item``; an item not yet taken is dropped and counted."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, or None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return None if self._closed else item

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake and stop any waiting ``take``; later puts are ignored by takers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None
