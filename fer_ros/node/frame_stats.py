"""Rolling counters for diagnostics: input/processed rates, processing-time percentiles."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class FrameStats:
    """Thread-safe counters; ``snapshot()`` returns rates over the last window and resets it."""

    def __init__(self, window: int = 1000) -> None:
        self._lock = threading.Lock()
        self._times_ms: deque[float] = deque(maxlen=window)
        self._faces: deque[int] = deque(maxlen=window)
        self.received = self.processed = self.bad = self.errors = 0
        self._mark = (time.monotonic(), 0, 0)

    def on_received(self) -> None:
        with self._lock:
            self.received += 1

    def on_processed(self, ms: float, faces: int) -> None:
        with self._lock:
            self.processed += 1
            self._times_ms.append(ms)
            self._faces.append(faces)

    def on_bad(self) -> None:
        with self._lock:
            self.bad += 1

    def on_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> dict[str, float]:
        """Rates since the previous snapshot, percentiles over the recent window."""
        with self._lock:
            now = time.monotonic()
            t0, rec0, proc0 = self._mark
            dt = max(now - t0, 1e-6)
            times = np.array(self._times_ms) if self._times_ms else np.zeros(1)
            snap = {
                "input_rate_hz": (self.received - rec0) / dt,
                "processed_rate_hz": (self.processed - proc0) / dt,
                "processing_ms_p50": float(np.percentile(times, 50)),
                "processing_ms_p95": float(np.percentile(times, 95)),
                "faces_mean": float(np.mean(self._faces)) if self._faces else 0.0,
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_bad": self.bad,
                "errors": self.errors,
            }
            self._mark = (now, self.received, self.processed)
            self._times_ms.clear()
            self._faces.clear()
            return snap
