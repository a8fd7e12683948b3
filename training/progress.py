"""A dependency-free progress bar on stderr (quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``bar = Progress(total, "desc"); bar.update(done, "extra"); bar.close()``."""

    def __init__(self, total: int, desc: str = "", enabled: bool = True) -> None:
        self.total, self.desc = max(total, 1), desc
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self._last = time.monotonic()

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.desc} [{bar:<30}] {done}/{self.total} eta {eta:4.0f}s {extra}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
