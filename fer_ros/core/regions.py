"""Look for a face in a small patch around a known box, with any :class:`FaceDetector`.

A patch is the square of ``scale`` times the box's longer side around its centre, warped to a
fixed ``size`` x ``size`` (one input shape: OpenVINO compiles once per shape) and padded with
the SSD's mean colour where it leaves the frame. At the default scale the face fills a third
of the patch, where the SSD and YuNet are most sure of it, whatever its size in the frame: a
24 px face is enlarged, a close-up shrunk. Finding a known face this way costs a fraction of a
full-frame detection, which is what lets a slow CPU keep camera rate (core/schedule.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from .detector import FaceDetector
from .types import Box, Detection

PAD_BGR = (104.0, 117.0, 123.0)  # mean colour of the SSD's training images


def patch_transform(box: Box, scale: float, size: int) -> tuple[float, float, float]:
    """(x0, y0, pixels per patch pixel) of the square patch around ``box``."""
    side = max(scale * max(box.w, box.h), 1.0)
    cx, cy = box.center
    return cx - side / 2, cy - side / 2, side / size


def cut_patch(bgr: np.ndarray, box: Box, scale: float, size: int
              ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The ``size`` x ``size`` patch around ``box`` and its transform (see patch_transform)."""
    x0, y0, step = patch_transform(box, scale, size)
    m = np.array([[1 / step, 0, -x0 / step], [0, 1 / step, -y0 / step]], dtype=np.float32)
    interp = cv2.INTER_AREA if step > 1 else cv2.INTER_LINEAR
    patch = cv2.warpAffine(bgr, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=PAD_BGR)
    return patch, (x0, y0, step)


def to_frame(box: Box, transform: tuple[float, float, float], width: int, height: int) -> Box:
    """A patch box in frame pixels, clamped to the frame."""
    x0, y0, step = transform
    return Box.from_corners(x0 + box.x * step, y0 + box.y * step, x0 + (box.x + box.w) * step,
                            y0 + (box.y + box.h) * step, width, height)


def find_near(detector: FaceDetector, bgr: np.ndarray, box: Box, scale: float = 3.0,
              size: int = 96, min_iou: float = 0.2) -> Detection | None:
    """The detection in the patch around ``box`` that overlaps it most (IoU >= ``min_iou``),
    in frame pixels; None when the face is not there. Other faces in the patch are ignored:
    finding new faces is the full detection's job."""
    h, w = bgr.shape[:2]
    patch, transform = cut_patch(bgr, box, scale, size)
    best: tuple[float, Detection] | None = None
    for det in detector.detect(patch):
        framed = to_frame(det.box, transform, w, h)
        if framed.w <= 0 or framed.h <= 0:
            continue
        overlap = framed.iou(box)
        if overlap >= min_iou and (best is None or overlap > best[0]):
            best = (overlap, Detection(framed, det.score))
    return best[1] if best else None
