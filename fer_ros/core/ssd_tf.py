"""OpenCV's ResNet-10 SSD on its original TensorFlow graph at 300x300 (``detector: ssd_tf``):
the reference the ONNX path (ssd_detector.py) is checked against. Needs OpenCV < 5.1.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .detector_base import DetectorOptions, FaceDetector, existing_file, postprocess, thresholds
from .errors import ModelError
from .image_codec import ensure_bgr
from .types import Detection

SSD_INPUT_SIZE = (300, 300)
SSD_MEAN = (104.0, 177.0, 123.0)
# File names of the weights (model_files.resolve_model finds manifest entries by unique file
# name too: the entries "ssd_weights" and "ssd_config").
SSD_MODEL = "opencv_face_detector_uint8.pb"
SSD_CONFIG = "opencv_face_detector.pbtxt"


class SsdTfFaceDetector:
    """OpenCV's ResNet-10 SSD face detector (TensorFlow uint8 graph) at 300x300, as shipped:
    the reference the ONNX path is checked against; misses faces under ~48 px at 640x480.

    Arguments left out take the parameters' defaults (``ssd_threshold``, ``nms_threshold``,
    ``min_face_size``)."""

    def __init__(self, pb_path: str | os.PathLike[str], pbtxt_path: str | os.PathLike[str],
                 score_threshold: float | None = None, nms_threshold: float | None = None,
                 min_size: int | None = None) -> None:
        score_threshold, nms_threshold, min_size = thresholds(
            score_threshold, nms_threshold, min_size, "ssd_threshold")
        pb = existing_file(pb_path, "SSD face detector weights (.pb)")
        pbtxt = existing_file(pbtxt_path, "SSD face detector graph (.pbtxt)")
        if not hasattr(cv2.dnn, "readNetFromTensorflow"):
            raise ModelError(
                f"OpenCV {cv2.__version__} has no TensorFlow importer (removed in 5.1): "
                "use detector 'ssd' (the same network as ONNX) or install opencv-python<5.1"
            )
        try:
            self._net = cv2.dnn.readNetFromTensorflow(pb, pbtxt)
        except cv2.error as exc:
            raise ModelError(f"cannot load the SSD face detector from {pb}: {exc}") from exc
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        if cv2.__version__.startswith("4."):  # OpenCV 5's new engine is CPU-only and warns
            self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_size = int(min_size)

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a BGR (or grayscale) uint8 image, highest score first."""
        bgr = ensure_bgr(bgr)
        height, width = bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(bgr, 1.0, SSD_INPUT_SIZE, SSD_MEAN, swapRB=False, crop=False)
        self._net.setInput(blob)
        out = np.asarray(self._net.forward()).reshape(-1, 7)
        out = out[out[:, 2] >= self.score_threshold]
        corners = out[:, 3:7] * np.array([width, height, width, height], dtype=np.float32)
        return postprocess(corners, out[:, 2], width, height, self.score_threshold,
                           self.nms_threshold, self.min_size)


def build(options: DetectorOptions) -> FaceDetector:
    """The registered builder (fer_ros.core.detector): weights from the model files."""
    from .model_files import resolve_model

    return SsdTfFaceDetector(resolve_model(SSD_MODEL), resolve_model(SSD_CONFIG),
                             options.score_threshold, options.nms_threshold, options.min_size)
