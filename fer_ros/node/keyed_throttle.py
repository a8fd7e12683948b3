"""One warning per key (e.g. per image encoding) every ``period_s``."""

from __future__ import annotations

import threading
import time


class KeyedThrottle:
    """``ready(key)`` is True at most once per ``period_s`` for each key; past ``max_keys``
    distinct keys (a flood of made-up encodings), the new ones share one throttle."""

    def __init__(self, period_s: float, max_keys: int = 16) -> None:
        self.period_s = period_s
        self._max_keys = max_keys
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def ready(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if key not in self._last and len(self._last) >= self._max_keys:
                key = "(other)"
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            self._last[key] = now
            return True
