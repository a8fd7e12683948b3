"""What every face detector shares: the interface, how it is built, and its post-processing.

A detector module (ssd_detector.py, yunet.py, ssd_tf.py) imports this, never another
detector module; :mod:`fer_ros.core.detector` registers them by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import ConfigError
from .file_checks import require_file
from .types import Box, Detection


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR uint8 image.

    Detections are sorted by score (highest first), with boxes clamped to the image; boxes
    that are degenerate, smaller than ``min_size`` (shorter side, pixels) or that overlap a
    better box by more than ``nms_threshold`` IoU are dropped. ``score_threshold``,
    ``nms_threshold`` and ``min_size`` may be changed between frames (live parameters)."""

    score_threshold: float
    nms_threshold: float
    min_size: int

    def detect(self, bgr: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class DetectorOptions:
    """Everything a detector may be built with: the parameters of the same meaning in
    fer_ros/params.py (each detector uses what applies to it)."""

    score_threshold: float
    nms_threshold: float
    min_size: int
    runtime: str
    threads: int
    device: str
    precision: str


def check_thresholds(score_threshold: float, nms_threshold: float, min_size: int) -> None:
    if not 0.0 <= score_threshold <= 1.0:
        raise ConfigError(f"detector score_threshold must be in [0, 1], got {score_threshold}")
    if not 0.0 <= nms_threshold <= 1.0:
        raise ConfigError(f"detector nms_threshold must be in [0, 1], got {nms_threshold}")
    if min_size < 0:
        raise ConfigError(f"detector min_size must be >= 0 pixels, got {min_size}")


def existing_file(path: str | os.PathLike[str], what: str) -> str:
    """``path`` as a string if it is a readable regular file, else a one-line ModelError."""
    return str(require_file(path, what, " (run `make setup` or check FER_MODEL_MIRROR)"))


def thresholds(score_threshold: float | None, nms_threshold: float | None,
               min_size: int | None, threshold_param: str) -> tuple[float, float, int]:
    """The detector's filters, checked; one left out takes its parameter's default
    (``threshold_param`` for the score, ``nms_threshold``, ``min_face_size``)."""
    from ..params import or_default  # local: params imports the core's errors

    score = or_default(score_threshold, threshold_param)
    nms = or_default(nms_threshold, "nms_threshold")
    size = or_default(min_size, "min_face_size")
    check_thresholds(score, nms, size)
    return float(score), float(nms), int(size)


def postprocess(
    corners: np.ndarray,
    scores: np.ndarray,
    width: int,
    height: int,
    score_threshold: float,
    nms_threshold: float,
    min_size: int,
) -> list[Detection]:
    """Pixel corners (N, 4) [x1, y1, x2, y2] + scores (N,) -> clamped, filtered, NMS-ed
    detections sorted by score (highest first)."""
    keep_boxes: list[Box] = []
    keep_scores: list[float] = []
    for (x1, y1, x2, y2), score in zip(corners.tolist(), scores.tolist()):
        if not score >= score_threshold or not all(map(np.isfinite, (x1, y1, x2, y2))):
            continue
        box = Box.from_corners(x1, y1, x2, y2, width, height)
        if box.w <= 0 or box.h <= 0 or min(box.w, box.h) < min_size:
            continue
        keep_boxes.append(box)
        keep_scores.append(min(max(float(score), 0.0), 1.0))
    if not keep_boxes:
        return []
    idx = cv2.dnn.NMSBoxes(
        [b.as_list() for b in keep_boxes], keep_scores, float(score_threshold), float(nms_threshold)
    )
    order = sorted(np.asarray(idx, dtype=int).reshape(-1).tolist(), key=lambda i: -keep_scores[i])
    return [Detection(keep_boxes[i], keep_scores[i]) for i in order]
