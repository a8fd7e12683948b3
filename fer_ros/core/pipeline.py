"""The whole per-frame inference: detect faces, classify them, optionally track and smooth."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .classifier_base import FaceClassifier
from .detector_base import FaceDetector
from .errors import ModelError
from .image_codec import ensure_bgr
from .types import Box, FaceResult


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
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker
        self.smoother = smoother

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

