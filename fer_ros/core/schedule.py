"""Which frames pay for a full face detection, and how known faces are found in the others.

A full detection of a 640x480 frame is the costliest step of a frame (about 12 ms with
AVX-512/AMX, 4-5x that on an AVX2-only CPU). Between full detections each face that a track
holds is looked for in a small patch around its predicted box (core/regions.py), with the same
detector, a fraction of the cost; so every frame still answers for every known face.

A full detection runs:
- at the start and every ``interval`` frames; with ``detect_every`` 0 (the default) the
  interval follows the CPU: the smallest one whose average cost per frame fits the budget
  (``frame_budget_ms``, or 0.7 of the measured frame period), from the running costs of a
  full detection, a patch and the rest of the frame; never more than ``detect_every_max``;
- when a confirmed face is not found in its patch (it turned away, or moved too fast);
- when the scene changes (the mean grey-level change of a 32x24 thumbnail since the previous
  frame exceeds ``scene_change`` of the full range: a cut, a camera pan).

With ``background`` (the default), a full detection that is not needed at once (interval,
lost face) runs on a worker thread while the frames go on through patches; its faces join the
frame after it finishes. So a slow full detection never holds up a frame: on two cores one
runs the frames, the other the full detection. The first frame, and any frame without a
tracked face, waits for its full detection. When the budget allows a full detection on every
frame (a fast CPU), every frame gets one, inline, as without a schedule.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from .detector import FaceDetector
from .errors import ConfigError
from .regions import find_near
from .tracking import FaceTracker
from .types import Detection
from .verify import FaceVerifier

THUMB = (32, 24)
EMA = 0.1  # weight of the newest sample in the running costs
DEFAULT_PERIOD_MS = 1000.0 / 30.0  # frame period assumed until stamps tell
BUDGET_SHARE = 0.7  # of the frame period, when frame_budget_ms is 0
MERGE_IOU = 0.3  # a full-detection face overlapping a known one by this much is that one


class FrameSchedule:
    """Detections of one camera's frames, full or by patches, as the budget allows."""

    def __init__(
        self,
        detector: FaceDetector,
        tracker: FaceTracker,
        detect_every: int = 0,
        detect_every_max: int = 30,
        frame_budget_ms: float = 0.0,
        scene_change: float = 0.1,
        verifier: FaceVerifier | None = None,
        background_detector: FaceDetector | None = None,
        patch_scale: float = 3.0,
        patch_size: int = 96,
    ) -> None:
        if detect_every < 0 or detect_every_max < 1:
            raise ConfigError(f"detect_every must be >= 0 and detect_every_max >= 1, got "
                              f"{detect_every} and {detect_every_max}")
        self.detector = detector
        self.tracker = tracker
        self.detect_every = int(detect_every)
        self.detect_every_max = int(detect_every_max)
        self.frame_budget_ms = float(frame_budget_ms)
        self.scene_change = float(scene_change)
        self.verifier = verifier
        self.patch_scale = float(patch_scale)
        self.patch_size = int(patch_size)
        # the worker thread gets its own detector: detectors keep per-shape state
        self.background_detector = background_detector
        self._pool = ThreadPoolExecutor(1, "fer_full_detect") if background_detector else None
        self._pending: Future | None = None
        self._since_full: int | None = None
        self._thumb: np.ndarray | None = None
        self._last_stamp: float | None = None
        self.period_ms = DEFAULT_PERIOD_MS
        self.full_ms: float | None = None
        self.patch_ms: float | None = None
        self.other_ms = 0.0
        self.reasons: Counter[str] = Counter()
        self.frames = 0
        self.full_frames = 0

    # ----- the cost model --------------------------------------------------------------------
    @property
    def budget_ms(self) -> float:
        """The time one frame may take: ``frame_budget_ms`` or a share of the frame period."""
        return self.frame_budget_ms or BUDGET_SHARE * self.period_ms

    def interval(self, faces: int | None = None) -> int:
        """Frames from one full detection to the next (1: every frame)."""
        if self.detect_every:
            return self.detect_every
        if self.full_ms is None:
            return 2  # learn the cost of a full detection first
        if self.full_ms + self.other_ms <= self.budget_ms:
            return 1
        if self.patch_ms is None:
            return self.detect_every_max  # patches until their cost is known
        n = len(self.tracker.tracks) if faces is None else faces
        patches = n * self.patch_ms
        if patches >= self.full_ms:
            return 1  # many faces: one full detection costs less than their patches
        spare = self.budget_ms - self.other_ms - patches
        if spare <= 0:
            return self.detect_every_max
        need = math.ceil((self.full_ms - patches) / spare)
        return max(1, min(self.detect_every_max, need))

    def note_frame(self, total_ms: float, detect_ms: float) -> None:
        """The whole frame's time and its detection part (the pipeline calls this)."""
        self.other_ms += EMA * (max(total_ms - detect_ms, 0.0) - self.other_ms)

    def _note(self, name: str, ms: float) -> None:
        old = getattr(self, name)
        setattr(self, name, ms if old is None else old + EMA * (ms - old))

    # ----- one frame -------------------------------------------------------------------------
    def detect(self, bgr: np.ndarray, stamp_s: float | None = None) -> list[Detection]:
        """Detections of this frame: a full detection's, or the tracked faces' patches' (plus
        the faces of a background full detection that has finished meanwhile)."""
        self.frames += 1
        if stamp_s is not None:
            if self._last_stamp is not None and 0 < stamp_s - self._last_stamp < 1.0:
                self.period_ms += EMA * ((stamp_s - self._last_stamp) * 1e3 - self.period_ms)
            self._last_stamp = stamp_s
        scene = self._scene_changed(bgr)
        tracks = [t for t in self.tracker.tracks if t.missed == 0]
        interval = self.interval(len(tracks))
        if self._since_full is None or scene or interval == 1:
            why = "start" if self._since_full is None else "scene" if scene else "interval"
            return self._full(bgr, why)
        found: list[Detection] = []
        lost = False
        if tracks:
            t0 = time.perf_counter()
            for track in tracks:
                det = find_near(self.detector, bgr, track.predicted_box(), self.patch_scale,
                                self.patch_size)
                if det is not None:
                    found.append(det)
                elif track.confirmed:
                    lost = True
            self._note("patch_ms", (time.perf_counter() - t0) * 1e3 / len(tracks))
        self._since_full += 1
        due = self._since_full >= interval
        why = "lost face" if lost else ("interval" if tracks else "no faces") if due else ""
        if why:
            if self._pool is None:
                return self._merge(bgr, found, self._full_detections(bgr, why))
            self._submit(bgr, why)
        return self._collect_background(bgr, found)

    def _full(self, bgr: np.ndarray, reason: str) -> list[Detection]:
        if self._pending is not None and self._pending.done():
            self._pending = None  # superseded by this frame's own full detection
        return self._merge(bgr, [], self._full_detections(bgr, reason))

    def _full_detections(self, bgr: np.ndarray, reason: str) -> list[Detection]:
        self.reasons[reason] += 1
        self.full_frames += 1
        self._since_full = 0
        t0 = time.perf_counter()
        out = self.detector.detect(bgr)
        if reason != "start":  # the first frame pays for lazy set-up: not a cost sample
            self._note("full_ms", (time.perf_counter() - t0) * 1e3)
        return out

    def _submit(self, bgr: np.ndarray, reason: str) -> None:
        if self._pending is not None:
            return  # one at a time; the one running answers this need too
        self.reasons[reason] += 1
        self.full_frames += 1
        self._since_full = 0
        frame = bgr.copy()
        detector = self.background_detector

        def run() -> tuple[list[Detection], float]:
            t0 = time.perf_counter()
            return detector.detect(frame), (time.perf_counter() - t0) * 1e3

        self._pending = self._pool.submit(run)

    def _collect_background(self, bgr: np.ndarray, found: list[Detection]) -> list[Detection]:
        pending = self._pending
        if pending is None or not pending.done():
            return found
        self._pending = None
        try:
            dets, ms = pending.result()
        except Exception:  # a failed background detection is retried at the next interval
            return found
        self._note("full_ms", ms)
        return self._merge(bgr, found, dets)

    def _merge(self, bgr: np.ndarray, found: list[Detection], full: list[Detection]
               ) -> list[Detection]:
        """``found`` plus the full detection's faces that are new: not overlapping a face
        found now or a live track; new faces pass the verifier first."""
        known = [d.box for d in found] + [t.predicted_box() for t in self.tracker.tracks]
        out = list(found)
        for det in full:
            if any(det.box.iou(k) >= MERGE_IOU for k in known):
                if not any(det.box.iou(d.box) >= MERGE_IOU for d in found):
                    out.append(det)  # a tracked face, found again by the full detection
                continue
            if self.verifier is None or self.verifier.agrees(bgr, det.box):
                out.append(det)
        return out

    def _scene_changed(self, bgr: np.ndarray) -> bool:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        thumb = cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)
        before, self._thumb = self._thumb, thumb
        if before is None or self.scene_change <= 0:
            return False
        return float(np.abs(thumb - before).mean()) > self.scene_change * 255.0

    def reset(self) -> None:
        """Start over (a new video): the next frame gets a full detection."""
        self._since_full = None
        self._pending = None  # a detection of the previous video: its result is dropped
        self._thumb = None
        self._last_stamp = None

    # ----- reporting -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """What the schedule is doing, for diagnostics (every value's unit in its key)."""
        out: dict[str, Any] = {
            "schedule_interval_frames": self.interval(),
            "schedule_full_detection_share": round(self.full_frames / max(self.frames, 1), 3),
            "schedule_budget_ms": round(self.budget_ms, 1),
            "schedule_full_detection_ms": round(self.full_ms or 0.0, 1),
            "schedule_patch_ms": round(self.patch_ms or 0.0, 1),
            "schedule_background": int(self._pool is not None),
        }
        for reason, count in sorted(self.reasons.items()):
            out[f"schedule_full_detections_{reason.replace(' ', '_')}"] = count
        if self.verifier is not None:
            out["verifier_rejected"] = self.verifier.rejected
        return out

    def close(self) -> None:
        """Stop the worker thread (a running detection finishes first)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
