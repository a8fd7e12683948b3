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
        self._recent = (0.0, 0.0, 0.0)  # p50 ms, p95 ms, mean faces of the last non-empty window
        self._reject_ms: deque[float] = deque(maxlen=10000)  # the most recent bad frames
        self._reject_max = 0.0

    def on_received(self) -> None:
        with self._lock:
            self.received += 1

    def on_processed(self, ms: float, faces: int) -> None:
        with self._lock:
            self.processed += 1
            self._times_ms.append(ms)
            self._faces.append(faces)

    def on_bad(self, ms: float = 0.0) -> None:
        """A frame refused as bad, ``ms`` after the worker took it."""
        with self._lock:
            self.bad += 1
            self._reject_ms.append(ms)
            self._reject_max = max(self._reject_max, ms)

    def on_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> dict[str, float]:
        """Rates since the previous snapshot; processing-time percentiles and mean faces over
        the frames processed since then or, when none were (processing slower than the
        snapshot period, or input stopped), over the most recent window that had frames."""
        with self._lock:
            now = time.monotonic()
            t0, rec0, proc0 = self._mark
            dt = max(now - t0, 1e-6)
            if self._times_ms:
                times = np.array(self._times_ms)
                self._recent = (float(np.percentile(times, 50)), float(np.percentile(times, 95)),
                                float(np.mean(self._faces)))
            p50, p95, faces = self._recent
            snap = {
                "input_rate_hz": (self.received - rec0) / dt,
                "processed_rate_hz": (self.processed - proc0) / dt,
                "processing_ms_p50": p50,
                "processing_ms_p95": p95,
                "faces_mean": faces,
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_bad": self.bad,
                "errors": self.errors,
                # time to refuse a bad frame: the maximum since start, p99 of the last 10,000
                "reject_ms_max": self._reject_max,
                "reject_ms_p99": (float(np.percentile(self._reject_ms, 99))
                                  if self._reject_ms else 0.0),
            }
            self._mark = (now, self.received, self.processed)
            self._times_ms.clear()
            self._faces.clear()
            return snap
