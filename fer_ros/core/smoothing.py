"""Per-track exponential moving average of the emotion probabilities, frame-rate independent.

For a track seen ``dt`` seconds after its previous update, the smoothed vector becomes
``s += alpha * (p - s)`` with ``alpha = 1 - exp(-dt / tau)``: the same time constant at any
frame rate (and a track that comes back after a gap catches up faster). The first observation
of a track initialises it; ``tau = 0`` disables smoothing (pass-through).

Time comes from ``stamp_s`` (seconds, e.g. the image header stamp). When it is None, or does
not advance (dt <= 0: repeated stamp, bag loop, clock reset), one nominal frame interval
(``nominal_dt_s``, default 1/30 s) is assumed for that call. The smoother keeps its own
monotonic clock built from these intervals, so stamps that jump back never break it.

Tracks not updated for ``stale_after_s`` seconds of that clock (default ``10 * tau``, at
least 1 s) are forgotten, and at most ``max_tracks`` are kept (least recently seen dropped
first), so memory stays bounded. Results with ``track_id == -1`` pass through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..params import or_default
from .errors import ConfigError
from .types import FaceResult

# Class names used when none are given, chosen by the probability vector's length (the
# classifier checkpoints' orders: FER2013, and 6-class with disgust merged into angry).
DEFAULT_LABELS: dict[int, list[str]] = {
    7: ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
    6: ["angry", "fear", "happy", "sad", "surprise", "neutral"],
}


@dataclass
class _TrackState:
    probs: np.ndarray  # float64 smoothed vector
    last_seen: float  # smoother clock (s) of the last update


class EmaSmoother:
    """Smooths ``FaceResult.probabilities`` per ``track_id`` and re-derives label/confidence."""

    def __init__(
        self,
        time_constant_s: float | None = None,  # default: smoothing_time_constant_s
        labels: Sequence[str] | None = None,
        nominal_dt_s: float = 1.0 / 30.0,
        stale_after_s: float | None = None,
        max_tracks: int = 64,
    ) -> None:
        time_constant_s = or_default(time_constant_s, "smoothing_time_constant_s")
        if not math.isfinite(time_constant_s) or time_constant_s < 0:
            raise ConfigError(
                f"time_constant_s must be >= 0 (0 disables smoothing), got {time_constant_s}"
            )
        if not nominal_dt_s > 0:
            raise ConfigError(f"nominal_dt_s must be > 0 seconds, got {nominal_dt_s}")
        if stale_after_s is not None and not stale_after_s > 0:
            raise ConfigError(f"stale_after_s must be > 0 seconds or None, got {stale_after_s}")
        if max_tracks < 1:
            raise ConfigError(f"max_tracks must be >= 1, got {max_tracks}")
        self.time_constant_s = float(time_constant_s)
        self.labels: list[str] | None = list(labels) if labels is not None else None
        self.nominal_dt_s = float(nominal_dt_s)
        if stale_after_s is None:
            stale_after_s = max(10.0 * self.time_constant_s, 1.0)
        self.stale_after_s = float(stale_after_s)
        self.max_tracks = int(max_tracks)
        self._tracks: dict[int, _TrackState] = {}
        self._clock = 0.0
        self._last_stamp: float | None = None

    @property
    def tracked_ids(self) -> list[int]:
        """Ids with smoothing state held now."""
        return list(self._tracks)

    def reset(self) -> None:
        """Forget all smoothing state and the time base."""
        self._tracks.clear()
        self._clock = 0.0
        self._last_stamp = None

    def smooth(self, results: list[FaceResult], stamp_s: float | None = None) -> None:
        """Replace probabilities, label and confidence of tracked results in place (one frame)."""
        self._advance_clock(stamp_s)
        if self.time_constant_s == 0.0:
            return
        for r in results:
            if r.track_id < 0:
                continue
            probs = np.asarray(r.probabilities, dtype=np.float64).reshape(-1)
            labels = self._labels_for(probs.size)
            state = self._tracks.get(r.track_id)
            if state is None or state.probs.shape != probs.shape:
                state = _TrackState(probs.copy(), self._clock)
                self._tracks[r.track_id] = state
            else:
                dt = self._clock - state.last_seen
                alpha = 1.0 - math.exp(-dt / self.time_constant_s)
                state.probs += alpha * (probs - state.probs)
                state.last_seen = self._clock
            smoothed = state.probs / state.probs.sum()
            best = int(np.argmax(smoothed))
            r.probabilities = smoothed.astype(np.float32)
            r.label = labels[best]
            r.confidence = float(smoothed[best])
        self._drop_stale()

    def _advance_clock(self, stamp_s: float | None) -> None:
        dt = self.nominal_dt_s
        if stamp_s is not None and math.isfinite(stamp_s):
            if self._last_stamp is not None and stamp_s - self._last_stamp > 0:
                dt = stamp_s - self._last_stamp
            self._last_stamp = float(stamp_s)
        self._clock += dt

    def _labels_for(self, n: int) -> list[str]:
        if self.labels is not None:
            if len(self.labels) != n:
                raise ConfigError(
                    f"smoother has {len(self.labels)} labels but got a {n}-class probability "
                    "vector; pass the classifier's labels to EmaSmoother(labels=...)"
                )
            return self.labels
        if n not in DEFAULT_LABELS:
            raise ConfigError(
                f"no default labels for {n} classes; pass the classifier's labels to "
                "EmaSmoother(labels=...)"
            )
        return DEFAULT_LABELS[n]

    def _drop_stale(self) -> None:
        limit = self._clock - self.stale_after_s
        stale = [t for t, s in self._tracks.items() if s.last_seen < limit]
        for tid in stale:
            del self._tracks[tid]
        if len(self._tracks) > self.max_tracks:
            by_age = sorted(self._tracks, key=lambda t: (self._tracks[t].last_seen, t))
            for tid in by_age[: len(self._tracks) - self.max_tracks]:
                del self._tracks[tid]


def label_flips(frames: Iterable[Sequence[FaceResult]]) -> tuple[int, int]:
    """(label changes, pairs of consecutive frames) over all tracks: how steady the labels
    are. A track missing in a frame starts its count again."""
    last: dict[int, str] = {}
    flips = pairs = 0
    for results in frames:
        seen = {}
        for r in results:
            if r.track_id in last:
                pairs += 1
                flips += r.label != last[r.track_id]
            seen[r.track_id] = r.label
        last = seen
    return flips, pairs
