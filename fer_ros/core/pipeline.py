"""The whole per-frame inference: detect faces, classify them, optionally track and smooth."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .classifier import EmotionClassifier
from .detector import FaceDetector
from .image_codec import ensure_bgr
from .types import FaceResult


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
        classifier: EmotionClassifier,
        tracker: Tracker | None = None,
        smoother: Smoother | None = None,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker
        self.smoother = smoother

    @property
    def labels(self) -> list[str]:
        """Class names, in the order of every result's ``probabilities``."""
        return self.classifier.labels

    def process(self, bgr: np.ndarray, stamp_s: float | None = None) -> list[FaceResult]:
        """Detect, classify (one batch for all faces), then track and smooth if configured."""
        bgr = ensure_bgr(bgr)
        detections = sorted(self.detector.detect(bgr), key=lambda d: (d.box.x, d.box.y))
        probs = self.classifier.classify(bgr, [d.box for d in detections])
        labels = self.classifier.labels
        results = []
        for det, p in zip(detections, probs):
            best = int(np.argmax(p))
            results.append(FaceResult(box=det.box, score=float(det.score), label=labels[best],
                                      confidence=float(p[best]), probabilities=p))
        tracker, smoother = self.tracker, self.smoother  # the node may swap them meanwhile
        if tracker is not None:
            tracker.assign(results, stamp_s)
        if smoother is not None:
            out = smoother.smooth(results, stamp_s)
            if isinstance(out, list):  # a smoother may return new results instead of editing
                results = out
        return results

