"""Face detectors behind one small interface: the ResNet-10 SSD on its ONNX graph (default,
ssd_detector.py), the same SSD's original TensorFlow graph through OpenCV (``ssd_tf``: the
300x300 reference path, needs OpenCV < 5.1), and YuNet.

All return :class:`Detection` lists sorted by score (highest first) with boxes clamped to the
image; boxes that are degenerate, smaller than ``min_size`` (shorter side, pixels) or that
overlap a better box by more than ``nms_threshold`` IoU are dropped.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

from .. import deps
from .errors import ConfigError, ModelError
from .file_checks import file_problem
from .image_codec import ensure_bgr
from .types import Box, Detection

SSD_INPUT_SIZE = (300, 300)
SSD_MEAN = (104.0, 177.0, 123.0)
# File names of the detector weights (model_files.resolve_model finds manifest entries by
# unique file name too: these are the entries "ssd_weights", "ssd_config" and "yunet").
SSD_MODEL = "opencv_face_detector_uint8.pb"
SSD_CONFIG = "opencv_face_detector.pbtxt"
SSD_ONNX = "opencv_face_detector_res10.onnx"  # made from the two above by ssd_export
SSD_ONNX_INT8 = "ssd_res10_int8.onnx"  # SSD_ONNX quantised by scripts/quantize_ssd.py
SSD_PRECISIONS = ("int8", "float")
YUNET_MODEL = "face_detection_yunet_2026may.onnx"
YUNET_OPENCV_MINIMUM = (4, 8)  # OpenCV 4.6 fails at YuNet's first forward pass
DETECTORS = ("ssd", "yunet", "ssd_tf")


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR uint8 image."""

    def detect(self, bgr: np.ndarray) -> list[Detection]: ...


def check_thresholds(score_threshold: float, nms_threshold: float, min_size: int) -> None:
    if not 0.0 <= score_threshold <= 1.0:
        raise ConfigError(f"detector score_threshold must be in [0, 1], got {score_threshold}")
    if not 0.0 <= nms_threshold <= 1.0:
        raise ConfigError(f"detector nms_threshold must be in [0, 1], got {nms_threshold}")
    if min_size < 0:
        raise ConfigError(f"detector min_size must be >= 0 pixels, got {min_size}")


def _existing(path: str | os.PathLike[str], what: str) -> str:
    p = Path(path)
    problem = file_problem(p)
    if problem == "no such file":
        raise ModelError(f"{what} not found: {p} (run `make setup` or check FER_MODEL_MIRROR)")
    if problem is not None:
        raise ModelError(f"{what} {p}: {problem}")
    return str(p)


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


class SsdTfFaceDetector:
    """OpenCV's ResNet-10 SSD face detector (TensorFlow uint8 graph) at 300x300, as shipped:
    the reference the ONNX path is checked against; misses faces under ~48 px at 640x480.

    ``score_threshold``, ``nms_threshold`` and ``min_size`` may be changed between frames."""

    def __init__(
        self,
        pb_path: str | os.PathLike[str],
        pbtxt_path: str | os.PathLike[str],
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        min_size: int = 0,
    ) -> None:
        check_thresholds(score_threshold, nms_threshold, min_size)
        pb = _existing(pb_path, "SSD face detector weights (.pb)")
        pbtxt = _existing(pbtxt_path, "SSD face detector graph (.pbtxt)")
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

    ``score_threshold``, ``nms_threshold`` and ``min_size`` may be changed between frames (as on
    the SSD detector)."""

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        score_threshold: float = 0.5,
        nms_threshold: float = 0.3,
        min_size: int = 0,
    ) -> None:
        check_thresholds(score_threshold, nms_threshold, min_size)
        onnx = _existing(onnx_path, "YuNet face detector weights (.onnx)")
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


def make_detector(
    name: str, score_threshold: float = 0.5, nms_threshold: float = 0.3, min_size: int = 0,
    runtime: str = "openvino", threads: int = 1, device: str = "cpu", precision: str = "int8",
) -> FaceDetector:
    """Build the detector called ``name`` (one of :data:`DETECTORS`), finding its weights
    through :func:`fer_ros.core.model_files.resolve_model`; ``runtime``, ``threads`` and
    ``device`` choose how the SSD's ONNX graph runs (ssd_runtime.py), ``precision`` which form
    of it: ``int8`` (quantised) or ``float`` (f32; bf16 in OpenVINO where the CPU has it)."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector {name!r}: use one of {', '.join(DETECTORS)}")
    if precision not in SSD_PRECISIONS:
        raise ConfigError(f"unknown ssd_precision {precision!r}: use one of "
                          f"{', '.join(SSD_PRECISIONS)}")
    from .model_files import resolve_model  # local: keeps this module importable on its own

    if name == "ssd":
        from .ssd_detector import SsdOnnxFaceDetector
        from .ssd_runtime import make_runtime

        model = resolve_model(SSD_ONNX_INT8 if precision == "int8" else SSD_ONNX)
        return SsdOnnxFaceDetector(make_runtime(runtime, model, threads, device),
                                   score_threshold, nms_threshold, min_size)
    if name == "ssd_tf":
        return SsdTfFaceDetector(resolve_model(SSD_MODEL), resolve_model(SSD_CONFIG),
                                 score_threshold, nms_threshold, min_size)
    return YunetFaceDetector(resolve_model(YUNET_MODEL), score_threshold, nms_threshold, min_size)
