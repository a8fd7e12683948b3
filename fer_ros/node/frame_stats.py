"""Rolling counters for diagnostics: input/processed rates, processing-time percentiles, the
refusals of the last few seconds per reason, and how long a frame has waited unanswered."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

REFUSAL_WINDOW_S = 5.0  # refusals are judged over the frames checked in the last 5 s
MAX_REASON_CHARS = 200  # a refusal reason is kept (and counted) by its first 200 characters
MAX_OUTCOMES = 65536  # bounds the window's memory at any input rate


class FrameStats:
    """Thread-safe counters; ``snapshot()`` returns rates over the last window and resets it.

    Besides the totals it keeps, for the diagnostics levels:
    * the outcome (processed, or refused with the ImageError's text) of every frame the worker
      checked in the last :data:`REFUSAL_WINDOW_S` seconds (:meth:`refusals`);
    * since when a frame has waited without an answer (:meth:`unanswered_s`): from the first
      frame received after the last one the worker finished, or from the moment the worker took
      the frame it is still busy with, whichever is older.
    """

    def __init__(self, window: int = 1000, refusal_window_s: float = REFUSAL_WINDOW_S) -> None:
        self._lock = threading.Lock()
        self._times_ms: deque[float] = deque(maxlen=window)
        self._faces: deque[int] = deque(maxlen=window)
        self.received = self.processed = self.bad = self.errors = 0
        self._mark = (time.monotonic(), 0, 0)
        self._recent = (0.0, 0.0, 0.0)  # p50 ms, p95 ms, mean faces of the last non-empty window
        self._refusal_window_s = refusal_window_s
        self._outcomes: deque[tuple[float, str | None]] = deque(maxlen=MAX_OUTCOMES)  # (time, reason or None)
        self._waiting_since: float | None = None  # first frame received after the last finished
        self._busy_since: float | None = None  # the worker took a frame and has not finished it
        self._reject_ms: deque[float] = deque(maxlen=10000)  # the most recent bad frames
        self._reject_max = 0.0

    def on_received(self) -> None:
        with self._lock:
            self.received += 1
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()

    def on_taken(self) -> None:
        """The worker started on a frame."""
        with self._lock:
            self._busy_since = time.monotonic()

    def on_processed(self, ms: float, faces: int) -> None:
        with self._lock:
            self.processed += 1
            self._times_ms.append(ms)
            self._faces.append(faces)
            self._finished(None)

    def on_bad(self, reason: str = "bad image", ms: float = 0.0) -> None:
        """A frame refused as malformed or unsupported, ``ms`` after the worker took it;
        ``reason`` is the ImageError's text."""
        with self._lock:
            self.bad += 1
            self._reject_ms.append(ms)
            self._reject_max = max(self._reject_max, ms)
            self._finished(reason[:MAX_REASON_CHARS] or "bad image")

    def on_abandoned(self) -> None:
        """The worker dropped its frame unanswered (the node was deactivated meanwhile)."""
        with self._lock:
            self._busy_since = None

    def on_error(self) -> None:
        with self._lock:
            self.errors += 1
            self._finished(None)

    def _finished(self, reason: str | None) -> None:
        now = time.monotonic()
        self._outcomes.append((now, reason))
        self._expire(now)
        self._waiting_since = self._busy_since = None

    def _expire(self, now: float) -> None:
        while self._outcomes and self._outcomes[0][0] < now - self._refusal_window_s:
            self._outcomes.popleft()

    def refusals(self) -> tuple[int, int, list[tuple[str, int]]]:
        """(frames refused, frames checked, [(reason, count)] most frequent first) over the
        last ``refusal_window_s`` seconds."""
        with self._lock:
            self._expire(time.monotonic())
            reasons = Counter(r for _, r in self._outcomes if r is not None)
            return sum(reasons.values()), len(self._outcomes), reasons.most_common()

    def unanswered_s(self) -> float:
        """Seconds the oldest frame not yet answered (processed or refused) has waited: 0.0
        when every frame received so far has been answered or replaced by a newer one that
        was."""
        with self._lock:
            starts = [t for t in (self._waiting_since, self._busy_since) if t is not None]
            return time.monotonic() - min(starts) if starts else 0.0

    def reset_waiting(self) -> None:
        """Forget waiting frames (on deactivate: the slot is emptied, nothing will answer them)."""
        with self._lock:
            self._waiting_since = self._busy_since = None

    def snapshot(self) -> dict[str, float]:
        """Rates since the previous snapshot; processing-time percentiles and mean faces over
        the frames processed since then or, when none were (processing slower than the
        snapshot period, or input stopped), over the most recent window that had frames."""
        refused, checked, _ = self.refusals()
        unanswered = self.unanswered_s()
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
                "recent_frames_checked": checked,
                "recent_frames_refused": refused,
                "unanswered_s": unanswered,
                # time to refuse a bad frame: the maximum since start, p99 of the last 10,000
                "reject_ms_max": self._reject_max,
                "reject_ms_p99": (float(np.percentile(self._reject_ms, 99))
                                  if self._reject_ms else 0.0),
            }
            self._mark = (now, self.received, self.processed)
            self._times_ms.clear()
            self._faces.clear()
            return snap
