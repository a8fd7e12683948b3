"""Annotated images: a box and a "label confidence" tag per face, readable at any size.

Line thickness and font scale grow with the image's shorter side (160x120 up to 4K); the tag
sits above the box, or inside it when there is no room above, and is shifted so that it never
leaves the image. All drawing is clipped to the image by OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

from .image_codec import ensure_bgr
from .types import FaceResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR colour per expression (unknown labels fall back to white).
COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 230),
    "disgust": (40, 140, 40),
    "fear": (180, 60, 160),
    "happy": (40, 200, 250),
    "sad": (200, 120, 40),
    "surprise": (230, 200, 40),
    "neutral": (200, 200, 200),
}


def style_for(width: int, height: int) -> tuple[int, float]:
    """(line thickness px, font scale) for an image size: 1 px and 0.3 at 160x120,
    2 px and 0.67 at 640x480, 10 px and 3.0 at 3840x2160."""
    side = min(width, height)
    thickness = max(1, round(side / 220))
    scale = max(0.3, side / 720)
    return thickness, scale


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.114 * bg[0] + 0.587 * bg[1] + 0.299 * bg[2]
    return (0, 0, 0) if luma > 128 else (255, 255, 255)


def draw_results(bgr: np.ndarray, results: list[FaceResult]) -> np.ndarray:
    """A copy of ``bgr`` with each face's box and "label 87%" tag (plus "#id" when tracked)."""
    out = ensure_bgr(bgr).copy()
    height, width = out.shape[:2]
    thickness, scale = style_for(width, height)
    text_thickness = max(1, thickness // 2)
    for r in results:
        color = COLORS.get(r.label, (255, 255, 255))
        x1, y1 = max(r.box.x, 0), max(r.box.y, 0)
        x2 = min(r.box.x + r.box.w, width) - 1
        y2 = min(r.box.y + r.box.h, height) - 1
        if x2 < x1 or y2 < y1:
            continue
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{r.label} {r.confidence * 100:.0f}%"
        if r.track_id >= 0:
            text = f"#{r.track_id} {text}"
        (tw, th), base = cv2.getTextSize(text, FONT, scale, text_thickness)
        pad = max(1, thickness)
        tag_w, tag_h = tw + 2 * pad, th + base + 2 * pad
        tx = min(max(x1, 0), max(width - tag_w, 0))
        ty = y1 - tag_h if y1 - tag_h >= 0 else y1  # above the box, else inside its top
        ty = min(ty, max(height - tag_h, 0))
        cv2.rectangle(out, (tx, ty), (min(tx + tag_w, width) - 1, min(ty + tag_h, height) - 1),
                      color, cv2.FILLED)
        cv2.putText(out, text, (tx + pad, ty + pad + th), FONT, scale, _text_color(color),
                    text_thickness, cv2.LINE_AA)
    return out
