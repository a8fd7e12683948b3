"""Face detectors by name: one registration per detector module.

A detector is a module with a class that implements :class:`FaceDetector` and a
``build(options)`` function; registering it here gives it a name (the ``detector``
parameter's choices), the parameter that holds its score threshold, and a place in
``make_detector``, the one way the node, ``fer-detect`` and the benchmarks build one.

    ssd     ssd_detector.py  the ResNet-10 SSD on its ONNX graph (default)
    yunet   yunet.py         YuNet
    ssd_tf  ssd_tf.py        the SSD's original 300x300 TensorFlow graph (reference)

The detector modules' public names are re-exported here, so callers import from one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import ssd_detector, ssd_tf, yunet
from ..params import or_default
from .detector_base import DetectorOptions, FaceDetector, check_thresholds, postprocess
from .errors import ConfigError
from .ssd_detector import SSD_ONNX, SSD_ONNX_INT8, SSD_PRECISIONS, SsdOnnxFaceDetector
from .ssd_tf import SSD_CONFIG, SSD_MODEL, SsdTfFaceDetector
from .yunet import YUNET_MODEL, YunetFaceDetector

__all__ = ["DETECTORS", "REGISTRY", "FaceDetector", "DetectorOptions", "check_thresholds",
           "postprocess", "make_detector", "register", "threshold_param", "SSD_ONNX",
           "SSD_ONNX_INT8", "SSD_PRECISIONS", "SSD_MODEL", "SSD_CONFIG", "YUNET_MODEL",
           "SsdOnnxFaceDetector", "SsdTfFaceDetector", "YunetFaceDetector"]


@dataclass(frozen=True)
class DetectorEntry:
    """A registered detector: the parameter holding its score threshold and its builder."""

    threshold_param: str
    build: Callable[[DetectorOptions], FaceDetector]


REGISTRY: dict[str, DetectorEntry] = {}


def register(name: str, threshold_param: str, build: Callable[[DetectorOptions], FaceDetector]) -> None:
    """Make ``build`` the detector called ``name``; its score threshold is the parameter
    ``threshold_param`` (declared in fer_ros/params.py)."""
    REGISTRY[name] = DetectorEntry(threshold_param, build)


register("ssd", "ssd_threshold", ssd_detector.build)
register("yunet", "yunet_threshold", yunet.build)
register("ssd_tf", "ssd_threshold", ssd_tf.build)
DETECTORS = tuple(REGISTRY)


def _entry(name: str) -> DetectorEntry:
    if name not in REGISTRY:
        raise ConfigError(f"unknown detector {name!r}: use one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def threshold_param(name: str) -> str:
    """The name of the parameter that holds detector ``name``'s score threshold."""
    return _entry(name).threshold_param


def make_detector(
    name: str, score_threshold: float | None = None, nms_threshold: float | None = None,
    min_size: int | None = None, runtime: str | None = None, threads: int | None = None,
    device: str | None = None, precision: str | None = None,
) -> FaceDetector:
    """Build the detector called ``name`` (one of :data:`DETECTORS`), its weights found by
    :func:`fer_ros.core.model_files.resolve_model`. Arguments left out take the defaults of
    the parameters of the same meaning (``runtime`` = ``ssd_runtime``, ``threads`` =
    ``detector_threads``, ``precision`` = ``ssd_precision``, ``min_size`` = ``min_face_size``,
    the score threshold = the detector's own threshold parameter)."""
    entry = _entry(name)
    options = DetectorOptions(
        score_threshold=or_default(score_threshold, entry.threshold_param),
        nms_threshold=or_default(nms_threshold, "nms_threshold"),
        min_size=or_default(min_size, "min_face_size"),
        runtime=or_default(runtime, "ssd_runtime"),
        threads=or_default(threads, "detector_threads"),
        device=or_default(device, "device"),
        precision=or_default(precision, "ssd_precision"),
    )
    check_thresholds(options.score_threshold, options.nms_threshold, options.min_size)
    return entry.build(options)
