"""Plain result types of the core: face boxes, detections and classified faces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixels: top-left corner (x, y), width w, height h (clamped to the image)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """Area in pixels (0 for a degenerate box)."""
        return max(self.w, 0) * max(self.h, 0)

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) in pixels."""
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box (0.0 when disjoint or degenerate)."""
        ix = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        iy = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        if ix <= 0 or iy <= 0:
            return 0.0
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[int]:
        """``[x, y, w, h]`` as plain ints (JSON-ready)."""
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
        """Box from corner coordinates (pixels, any float), rounded and clamped to a width x height
        image; the result may be degenerate (w or h <= 0) when the corners lie outside it."""
        left = min(max(int(round(x1)), 0), width)
        top = min(max(int(round(y1)), 0), height)
        right = min(max(int(round(x2)), 0), width)
        bottom = min(max(int(round(y2)), 0), height)
        return cls(left, top, right - left, bottom - top)


@dataclass(frozen=True)
class Detection:
    """A face found by a detector: its box and the detector's confidence in [0, 1]."""

    box: Box
    score: float


@dataclass
class FaceResult:
    """A detected and classified face.

    ``probabilities`` is float32 in the classifier's ``labels`` order and sums to 1; ``label`` is
    the most probable class and ``confidence`` its probability. ``track_id`` is -1 when the face
    is not tracked.
    """

    box: Box
    score: float
    label: str
    confidence: float
    probabilities: np.ndarray
    track_id: int = -1

    def as_dict(self, labels: list[str]) -> dict[str, Any]:
        """JSON-ready dict: bbox [x, y, w, h], score, label, confidence, probabilities {label: p}
        (plus track_id when tracked)."""
        out: dict[str, Any] = {
            "bbox": self.box.as_list(),
            "score": round(float(self.score), 4),
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probabilities": {
                name: round(float(p), 4) for name, p in zip(labels, self.probabilities)
            },
        }
        if self.track_id >= 0:
            out["track_id"] = int(self.track_id)
        return out
