"""Build the whole pipeline from one parameter dict (see fer_ros/params.py), ROS-free.

The node and ``fer-detect`` both go through here, so a parameter means the same in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .classifier import EmotionClassifier
from .classifier_base import FaceClassifier
from .detector import make_detector, threshold_param
from .detector_base import FaceDetector
from .file_checks import require_file
from .pipeline import EmotionPipeline
from .smoothing import EmaSmoother
from .tracking import FaceTracker


def classifier_path(model: str) -> Path:
    """A shipped model name (``fer7``, ``fer6``) or a path to a checkpoint -> its file."""
    if model.endswith(".pt") or "/" in model or "\\" in model:
        return require_file(Path(model).expanduser(), "classifier checkpoint")
    from .model_files import resolve_model  # local: only shipped names need the manifest

    return resolve_model(model, kind="classifier")


def score_threshold_param(detector: str) -> str:
    """The name of the parameter that holds ``detector``'s score threshold (its registration
    in fer_ros.core.detector says which)."""
    return threshold_param(detector)


def build_detector(params: Mapping[str, Any]) -> FaceDetector:
    """The face detector the parameters describe."""
    return make_detector(
        params["detector"],
        score_threshold=params[score_threshold_param(params["detector"])],
        nms_threshold=params["nms_threshold"],
        min_size=params["min_face_size"],
        runtime=params["ssd_runtime"],
        precision=params["ssd_precision"],
        threads=params["detector_threads"],
        device=params["device"],
    )


def detector_description(params: Mapping[str, Any], detector: object) -> str:
    """The detector in a few words for the start-up log, with the SSD runtime that runs it and,
    when ``auto`` chose it, why: "ssd (int8, ssd_runtime auto -> onnxruntime (openvino is not
    installed))"."""
    runtime = getattr(detector, "runtime", None)
    if params["detector"] != "ssd" or runtime is None:
        return params["detector"]
    return (f"ssd ({params['ssd_precision']}, ssd_runtime "
            f"{getattr(runtime, 'choice', getattr(runtime, 'name', '?'))})")


def build_classifier(params: Mapping[str, Any]) -> FaceClassifier:
    """The expression classifier the parameters describe."""
    return EmotionClassifier(
        classifier_path(params["classifier_model"]),
        device=params["device"],
        crop_margin=params["crop_margin"],
        flip_tta=params["flip_tta"],
        bf16=params["classifier_bf16"],
    )


def build_pipeline(params: Mapping[str, Any]) -> EmotionPipeline:
    """Detector, classifier, and (when enabled) tracker and smoother, from validated params."""
    detector = build_detector(params)
    classifier = build_classifier(params)
    tracker = smoother = None
    if params["tracking"]:
        tracker = FaceTracker(
            iou_threshold=params["track_iou_threshold"], max_missed=params["track_max_missed"]
        )
        smoother = build_smoother(params, classifier.labels)
    return EmotionPipeline(detector, classifier, tracker=tracker, smoother=smoother)


def build_smoother(params: Mapping[str, Any], labels: list[str]) -> EmaSmoother | None:
    """The per-track smoother for ``smoothing_time_constant_s`` (None for 0 = off); it needs
    tracking (the caller's job)."""
    tau = params["smoothing_time_constant_s"]
    return EmaSmoother(tau, labels=labels) if tau > 0 else None
