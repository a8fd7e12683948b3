"""Frames from a video file, an image file, an image folder or a camera index (ROS-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class FrameReader:
    """Iterate BGR frames from ``source``; ``native_fps`` is the video's rate (None for images)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.native_fps: float | None = None
        self._images: list[Path] = []
        self._capture: cv2.VideoCapture | None = None
        path = Path(source).expanduser()
        if source.isdigit():
            self._capture = cv2.VideoCapture(int(source))
            if not self._capture.isOpened():
                raise ImageError(f"camera {source} cannot be opened")
        elif path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise ImageError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder")
        elif not path.exists():
            raise ImageError(f"{path}: no such file, folder or camera index")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self._images = [path]
        else:
            self._capture = cv2.VideoCapture(str(path))
            if not self._capture.isOpened():
                raise ImageError(f"{path}: not a readable video or image")
            fps = self._capture.get(cv2.CAP_PROP_FPS)
            self.native_fps = float(fps) if fps and fps > 0 else None

    def frames(self) -> Iterator[np.ndarray]:
        """Yield frames once; unreadable images in a folder raise ImageError."""
        if self._capture is not None:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            while True:
                ok, frame = self._capture.read()
                if not ok:
                    return
                yield frame
        for path in self._images:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise ImageError(f"{path}: unreadable image")
            yield frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()


def letterbox(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``frame`` to fit width x height keeping its aspect ratio, padding with black."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (nw, nh), interpolation=interp)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out
