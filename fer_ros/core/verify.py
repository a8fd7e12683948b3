"""Second-stage check of a new face: a second, different detector must agree on a patch.

The SSD's confident mistakes (dogs' faces, an ear, a shirt pattern) are mostly not YuNet's:
YuNet, run on the patch of twice the box around a candidate (the candidate at 64 px), must
find a face overlapping it. The check costs about one small YuNet run per *new* face (the
schedule checks only faces no track already holds), so a camera pays it once per person,
while a single photo (``fer-detect``) gets it for every box. benchmarks/detector_recall.py
measures what it keeps and what it removes.
"""

from __future__ import annotations

from .detector import FaceDetector
from .regions import cut_patch
from .types import Box, Detection

PATCH = 128  # patch side (pixels); the candidate is PATCH / SCALE = 64 px in it
SCALE = 2.0
MIN_IOU = 0.3


class FaceVerifier:
    """Keeps a candidate box only when ``detector`` (YuNet) finds a face on it in a patch."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.checked = 0
        self.rejected = 0

    def agrees(self, bgr, box: Box) -> bool:
        """Whether the second detector finds a face overlapping ``box`` (IoU >= MIN_IOU)."""
        patch, _ = cut_patch(bgr, box, SCALE, PATCH)
        side = PATCH / SCALE
        ref = Box(round((PATCH - side) / 2), round((PATCH - side) / 2), round(side), round(side))
        ok = any(d.box.iou(ref) >= MIN_IOU for d in self.detector.detect(patch))
        self.checked += 1
        self.rejected += not ok
        return ok

    def filter(self, bgr, detections: list[Detection]) -> list[Detection]:
        """The detections the second detector agrees with, in the same order."""
        return [d for d in detections if self.agrees(bgr, d.box)]
