"""The whole per-frame inference: detect faces, classify them, optionally track and smooth.

With a tracker that confirms faces (core/tracking.py ``update``), only confirmed faces are
classified and returned: a face must be seen in several frames before a robot hears of it.
With a schedule (core/schedule.py), the schedule decides per frame whether the detector
looks at the whole frame or only around the tracked faces. A single photo goes through
:meth:`EmotionPipeline.process_image`: no tracking, and a second-stage check instead.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from .classifier_base import FaceClassifier
from .detector_base import FaceDetector
from .errors import ModelError
from .image_codec import ensure_bgr
from .schedule import FrameSchedule
from .verify import FaceVerifier
from .types import Box, Detection, FaceResult


class Tracker(Protocol):
    def assign(self, results: list[FaceResult], stamp_s: float | None = None) -> None: ...


class Smoother(Protocol):
    def smooth(self, results: list[FaceResult], stamp_s: float | None = None) -> Any: ...


class EmotionPipeline:
    """BGR frame -> list of :class:`FaceResult`, sorted left to right (by box x, then y).

    Left-to-right order is stable for a static scene (score order flickers when two faces have
    similar scores) and matches how people read an annotated image. With a ``tracker``
    (``assign(results, stamp_s)`` sets ``track_id``) and a ``smoother``
    (``smooth(results, stamp_s)`` replaces probabilities/label/confidence, per track), both
    are called in that order on every frame.
    """

    def __init__(
        self,
        detector: FaceDetector,
        classifier: FaceClassifier,
        tracker: Tracker | None = None,
        smoother: Smoother | None = None,
        schedule: FrameSchedule | None = None,
        verifier: FaceVerifier | None = None,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker
        self.smoother = smoother
        self.schedule = schedule
        self.verifier = verifier

    @property
    def labels(self) -> list[str]:
        """Class names, in the order of every result's ``probabilities``."""
        return self.classifier.labels

    def warm_up(self, width: int = 640, height: int = 480) -> None:
        """Run the detector on a blank ``width`` x ``height`` frame and the classifier on one
        face box of it, so the first real frame is not slow (lazy allocations, oneDNN kernel
        choice), and check what the classifier gives: finite probabilities summing to 1, one
        per label. Raises ModelError naming the problem otherwise (e.g. weights that overflow
        to infinity). Tracker and smoother are not touched."""
        blank = np.full((height, width, 3), 128, dtype=np.uint8)
        self.detector.detect(blank)
        schedule = self.schedule
        if schedule is not None:  # the patch shapes too (OpenVINO compiles once per shape)
            self.detector.detect(blank[:schedule.patch_size, :schedule.patch_size])
            if schedule.background_detector is not None:
                schedule.background_detector.detect(blank)
        if self.verifier is not None:
            self.verifier.detector.detect(blank[:128, :128])
        side = max(min(width, height) // 2, 1)
        box = Box((width - side) // 2, (height - side) // 2, side, side)
        probs = np.asarray(self.classifier.classify(blank, [box]))
        labels = self.classifier.labels
        where = getattr(self.classifier, "checkpoint_path", "the classifier")
        if probs.shape != (1, len(labels)):
            raise ModelError(f"{where}: the classifier gives {probs.shape[-1]} probabilities for "
                             f"{len(labels)} labels")
        if not np.isfinite(probs).all():
            raise ModelError(f"{where}: the classifier gives non-finite probabilities on a "
                             "blank face crop (its weights overflow or are corrupt)")
        if abs(float(probs.sum()) - 1.0) > 1e-3 or (probs < 0).any():
            raise ModelError(f"{where}: the classifier's probabilities on a blank face crop sum to "
                             f"{float(probs.sum()):.4f}, not 1")

    def process(self, bgr: np.ndarray, stamp_s: float | None = None) -> list[FaceResult]:
        """One video frame: detect (as the schedule says), track, classify the confirmed
        faces (one batch), smooth."""
        bgr = ensure_bgr(bgr)
        t0 = time.perf_counter()
        schedule, tracker, smoother = self.schedule, self.tracker, self.smoother
        if schedule is not None:
            detections = schedule.detect(bgr, stamp_s)
        else:
            detections = self.detector.detect(bgr)
            if self.verifier is not None and tracker is None:  # nothing confirms: check all
                detections = self.verifier.filter(bgr, detections)
        detect_ms = (time.perf_counter() - t0) * 1e3
        detections = sorted(detections, key=lambda d: (d.box.x, d.box.y))
        ids: list[int] = [-1] * len(detections)
        update = getattr(tracker, "update", None)
        if update is not None:  # a confirming tracker: only confirmed faces go on
            kept = [(d, tid) for d, (tid, ok) in zip(detections, update([d.box for d in
                                                                         detections])) if ok]
            detections, ids = [d for d, _ in kept], [tid for _, tid in kept]
        results = self._classify(bgr, detections)
        for result, tid in zip(results, ids):
            result.track_id = tid
        if tracker is not None and update is None:
            tracker.assign(results, stamp_s)
        if smoother is not None:
            out = smoother.smooth(results, stamp_s)
            if isinstance(out, list):  # a smoother may return new results instead of editing
                results = out
        if schedule is not None:
            schedule.note_frame((time.perf_counter() - t0) * 1e3, detect_ms)
        return results

    def process_image(self, bgr: np.ndarray) -> list[FaceResult]:
        """One photo: a full detection, the second-stage check of every face (when there is a
        verifier), classification; no tracking, smoothing or schedule."""
        bgr = ensure_bgr(bgr)
        detections = self.detector.detect(bgr)
        if self.verifier is not None:
            detections = self.verifier.filter(bgr, detections)
        return self._classify(bgr, sorted(detections, key=lambda d: (d.box.x, d.box.y)))

    def _classify(self, bgr: np.ndarray, detections: list[Detection]) -> list[FaceResult]:
        probs = self.classifier.classify(bgr, [d.box for d in detections]) if detections else []
        labels = self.classifier.labels
        results = []
        for det, p in zip(detections, probs):
            best = int(np.argmax(p))
            results.append(FaceResult(box=det.box, score=float(det.score), label=labels[best],
                                      confidence=float(p[best]), probabilities=p))
        return results

    @property
    def detectors(self) -> list[FaceDetector]:
        """The face detector and its copy on the schedule's worker thread, if any: a live
        threshold change goes to both."""
        schedule = self.schedule
        extra = schedule.background_detector if schedule is not None else None
        return [self.detector] + ([extra] if extra is not None else [])

    def stats(self) -> dict[str, Any]:
        """What the schedule and the checks are doing (empty without a schedule)."""
        return self.schedule.stats() if self.schedule is not None else {}

    def close(self) -> None:
        """Stop the schedule's worker thread, if any."""
        if self.schedule is not None:
            self.schedule.close()
