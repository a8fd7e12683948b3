"""OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, ONNX), run on the CPU
(``detector: yunet``)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np

from .. import deps
from .detector_base import DetectorOptions, FaceDetector, existing_file, postprocess, thresholds
from .errors import ModelError
from .image_codec import ensure_bgr
from .types import Detection

YUNET_MODEL = "face_detection_yunet_2026may.onnx"  # the manifest's "yunet" entry
YUNET_OPENCV_MINIMUM = (4, 8)  # OpenCV 4.6 fails at YuNet's first forward pass


@contextmanager
def _opencv_log_quiet() -> Iterator[None]:
    """OpenCV's own log held at ERROR inside the block: ``FaceDetectorYN.create`` always sets a
    DNN target, which OpenCV 5's new graph engine answers with a WARN at every start."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(min(previous, logging.LOG_LEVEL_ERROR))
    try:
        yield
    finally:
        logging.setLogLevel(previous)


class YunetFaceDetector:
    """OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, ONNX), run on the CPU.

    Arguments left out take the parameters' defaults (``yunet_threshold``, ``nms_threshold``,
    ``min_face_size``)."""

    def __init__(self, onnx_path: str | os.PathLike[str], score_threshold: float | None = None,
                 nms_threshold: float | None = None, min_size: int | None = None) -> None:
        score_threshold, nms_threshold, min_size = thresholds(
            score_threshold, nms_threshold, min_size, "yunet_threshold")
        onnx = existing_file(onnx_path, "YuNet face detector weights (.onnx)")
        if deps.parse_version(cv2.__version__) < YUNET_OPENCV_MINIMUM:
            need = ".".join(map(str, YUNET_OPENCV_MINIMUM))
            raise ModelError(f"YuNet ({YUNET_MODEL}) needs OpenCV >= {need}, this is "
                             f"{cv2.__version__}: use detector 'ssd' (with onnxruntime or "
                             f"openvino) or pip install 'opencv-python>={need}'")
        try:
            with _opencv_log_quiet():  # OpenCV 5 WARNs that its new engine ignores the target
                self._net = cv2.FaceDetectorYN.create(
                    onnx, "", (320, 320), float(score_threshold), float(nms_threshold), 5000
                )
        except cv2.error as exc:
            raise ModelError(f"cannot load the YuNet face detector from {onnx}: {exc}") from exc
        self._input_size = (320, 320)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self._thresholds = (self.score_threshold, self.nms_threshold)
        self.min_size = int(min_size)

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a BGR (or grayscale) uint8 image, highest score first."""
        bgr = ensure_bgr(bgr)
        height, width = bgr.shape[:2]
        if self._input_size != (width, height):
            self._net.setInputSize((width, height))
            self._input_size = (width, height)
        if self._thresholds != (self.score_threshold, self.nms_threshold):  # changed at run time
            self._net.setScoreThreshold(float(self.score_threshold))
            self._net.setNMSThreshold(float(self.nms_threshold))
            self._thresholds = (self.score_threshold, self.nms_threshold)
        _, faces = self._net.detect(bgr)
        if faces is None or len(faces) == 0:
            return []
        faces = np.asarray(faces, dtype=np.float32).reshape(len(faces), -1)
        corners = np.concatenate([faces[:, 0:2], faces[:, 0:2] + faces[:, 2:4]], axis=1)
        return postprocess(corners, faces[:, -1], width, height, self.score_threshold,
                           self.nms_threshold, self.min_size)


def build(options: DetectorOptions) -> FaceDetector:
    """The registered builder (fer_ros.core.detector): weights from the model files."""
    from .model_files import resolve_model

    return YunetFaceDetector(resolve_model(YUNET_MODEL), options.score_threshold,
                             options.nms_threshold, options.min_size)
