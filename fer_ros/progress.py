"""A small progress bar on stderr (redrawn in place on a terminal, a line per 25 % otherwise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """``update(done)`` as work goes on, ``close()`` at the end; silent when not enabled."""

    def __init__(self, total: int | None, label: str, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self._t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_step = -1
        self._drawn = False

    def update(self, done: int, extra: str = "") -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(extra) + "\033[K")
                self.stream.flush()
                self._drawn = True
        elif self.total:  # a log file: one line per 25 %
            step = done * 4 // self.total
            if step != self._last_step and step > 0:
                self._last_step = step
                self.stream.write(self._line(extra) + "\n")
                self.stream.flush()

    def _line(self, extra: str) -> str:
        elapsed = time.monotonic() - self._t0
        if self.total:
            filled = WIDTH * self.done // self.total
            bar = "#" * filled + "." * (WIDTH - filled)
            text = f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f} s"
        else:
            text = f"{self.label} {self.done} {elapsed:5.1f} s"
        return f"{text} {extra}".rstrip()

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
