"""Message counts and time range of a storage file: what is on disk and what is buffered."""

from __future__ import annotations

from collections import Counter

DEFAULT_CACHE_BYTES = 1024 * 1024   # bytes buffered before a chunk / transaction is written
FLUSH_INTERVAL_S = 0.5              # the recorder writes what it received this soon (a crash
                                    # loses no more)


class Tally:
    """``add`` per message written to the storage's buffer, ``commit`` once it is on disk."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()     # on disk, per topic id
        self.pending: Counter[int] = Counter()    # buffered, per topic id
        self._range: tuple[int, int] | None = None
        self._pending_range: tuple[int, int] | None = None

    @staticmethod
    def _widen(span: tuple[int, int] | None, lo: int, hi: int) -> tuple[int, int]:
        return (lo, hi) if span is None else (min(span[0], lo), max(span[1], hi))

    def add(self, topic_id: int, stamp_ns: int) -> None:
        self.pending[topic_id] += 1
        self._pending_range = self._widen(self._pending_range, stamp_ns, stamp_ns)

    def commit(self) -> None:
        self.counts.update(self.pending)
        self.pending.clear()
        if self._pending_range:
            self._range = self._widen(self._range, *self._pending_range)
            self._pending_range = None

    def drop_pending(self) -> None:
        self.pending.clear()
        self._pending_range = None

    def totals(self, pending: bool) -> tuple[Counter[int], tuple[int, int] | None]:
        """(messages per topic id, (first, last) stamp) on disk, plus buffered if ``pending``."""
        counts, span = self.counts.copy(), self._range
        if pending:
            counts.update(self.pending)
            if self._pending_range:
                span = self._widen(span, *self._pending_range)
        return counts, span
